#!/usr/bin/env node
// Builds the demo guest (resources/demo-guest/demo.asm) into its floppy image with nasm.
// The built image is committed too, so a machine without nasm still has a bootable demo VM; the
// unit test tests/unit/guest/demo-guest.test.ts keeps the two from drifting apart.
// Usage: node scripts/build-demo-guest.mjs [output.img]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'resources', 'demo-guest', 'demo.asm');
const output = resolve(process.argv[2] ?? join(root, 'resources', 'demo-guest', 'demo-floppy.img'));

const r = spawnSync('nasm', ['-f', 'bin', '-o', output, source], { stdio: 'inherit' });
if (r.error && r.error.code === 'ENOENT') {
  console.log('demo guest: nasm not found; keeping the committed image resources/demo-guest/demo-floppy.img');
  process.exit(0);
}
if (r.status !== 0) {
  console.error(`demo guest: nasm failed on ${source}`);
  process.exit(1);
}
console.log(`demo guest: built ${output}`);
