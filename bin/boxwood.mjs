#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx, so `npx boxwood` works straight after `npm install`.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

register();
const here = dirname(fileURLToPath(import.meta.url));
const { main } = await import(join(here, '..', 'src-main', 'cli', 'main.ts'));
const code = await main(process.argv.slice(2));
process.exitCode = code;
