/**
 * `boxwood serve [--port N] [--library DIR] [--no-build]`: the web twin. Serves the UI and the API
 * on 127.0.0.1 only and prints the URL with its access token; runs until interrupted.
 */
import { createNodeHypervisor } from '../hypervisor/node-host';
import { WebTwin } from '../web/server';
import { ensureRendererBuilt, RENDERER_OUT } from '../web/renderer-build';

export interface ServeArgs {
  port: number;
  library?: string;
  build: boolean;
}

export function parseServeArgs(args: string[]): ServeArgs | string {
  const out: ServeArgs = { port: 0, build: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--port' || a === '-p') {
      const n = Number(args[++i]);
      if (!Number.isInteger(n) || n < 0 || n > 65535) return `--port needs a port number (0-65535), got ${args[i] ?? 'nothing'}`;
      out.port = n;
    } else if (a === '--library') {
      if (!args[i + 1]) return '--library needs a folder';
      out.library = args[++i];
    } else if (a === '--no-build') out.build = false;
    else if (a === '--help' || a === '-h') return 'help';
    else return `unknown option ${a}`;
  }
  return out;
}

const USAGE = 'usage: boxwood serve [--port N] [--library DIR] [--no-build]\n';

export async function main(args: string[]): Promise<number> {
  const parsed = parseServeArgs(args);
  if (typeof parsed === 'string') {
    if (parsed === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    process.stderr.write(`boxwood serve: ${parsed}\n${USAGE}`);
    return 2;
  }
  if (parsed.build) {
    const err = ensureRendererBuilt((l) => process.stderr.write(`${l}\n`));
    if (err) {
      process.stderr.write(`boxwood serve: ${err}\n`);
      return 1;
    }
  }
  const hv = createNodeHypervisor({ libraryRoot: parsed.library, shell: 'web' });
  const twin = new WebTwin({ hv, rendererDir: RENDERER_OUT, port: parsed.port });
  try {
    await twin.start();
  } catch (err) {
    process.stderr.write(`boxwood serve: cannot listen on 127.0.0.1:${parsed.port}: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`Boxwood web UI: ${twin.url}\n`);
  process.stdout.write(`VM library: ${hv.library.root}\n`);
  await new Promise<void>((done) => {
    const stop = () => done();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  hv.shutdown();
  await twin.close();
  return 0;
}
