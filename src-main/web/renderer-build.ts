/**
 * The web twin serves the renderer bundle that vite builds into out/renderer (the same bundle the
 * Electron app loads). When the bundle is missing or older than the sources, it is rebuilt first.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RENDERER_SRC = join(ROOT, 'src-renderer');
export const RENDERER_OUT = join(ROOT, 'out', 'renderer');

function newest(dir: string): number {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newest(p) : st.mtimeMs);
  }
  return t;
}

export function rendererIsStale(): boolean {
  const index = join(RENDERER_OUT, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  return newest(RENDERER_SRC) > built || newest(join(ROOT, 'src-main', 'api')) > built;
}

const LOCK = join(ROOT, 'out', '.renderer-build.lock');
const LOCK_STALE_MS = 5 * 60_000;

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Builds the renderer if needed; returns an error message, or null on success. Two servers
 * starting at once (parallel e2e files) must not both empty out/renderer: a lock directory makes
 * the second wait for the first's build.
 */
export function ensureRendererBuilt(log: (line: string) => void = () => {}): string | null {
  if (!rendererIsStale()) return null;
  mkdirSync(join(ROOT, 'out'), { recursive: true });
  for (let waited = 0; ; waited += 200) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > LOCK_STALE_MS) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        /* the other build just finished */
      }
      if (waited > LOCK_STALE_MS) return 'another renderer build holds out/.renderer-build.lock';
      sleepMs(200);
    }
  }
  try {
    if (!rendererIsStale()) return null;
    return buildRenderer(log);
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

function buildRenderer(log: (line: string) => void): string | null {
  log('building the user interface (vite)...');
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const r = spawnSync(process.execPath, [vite, 'build', '--config', join(RENDERER_SRC, 'vite.config.ts'), '--logLevel', 'warn'], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) return `the renderer build failed (vite exited with ${r.status ?? r.signal})`;
  return null;
}
