/**
 * Runs `boxwood <args>` as a child process the way a user would, and lets a test talk to its serial
 * console (stdin/stdout with `--serial stdio`) and wait for text with a bounded timeout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './guests';

export interface CliSession {
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything printed so far on stdout (serial output) and stderr. */
  stdout(): string;
  stderr(): string;
  /** Resolves with stdout once `text` has appeared after `from` (an offset into stdout). */
  waitFor(text: string | RegExp, timeoutMs: number, from?: number): Promise<string>;
  type(text: string): void;
  exit(): Promise<number | null>;
  kill(): void;
}

export function startCli(args: string[]): CliSession {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'boxwood.mjs'), ...args], { cwd: repoRoot, stdio: 'pipe' });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString('latin1');
    for (const w of waiters) w();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString('latin1');
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    for (const w of waiters) w();
    resolve(code);
  }));
  let done = false;
  child.on('exit', () => (done = true));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(text, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const match = () => (typeof text === 'string' ? out.indexOf(text, from) >= 0 : text.test(out.slice(from)));
        const check = () => {
          if (match()) {
            cleanup();
            resolve(out);
          } else if (done) {
            cleanup();
            reject(new Error(`boxwood exited (code ${child.exitCode}) before ${String(text)} appeared.\nstdout tail: ${out.slice(-1500)}\nstderr tail: ${err.slice(-1500)}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(text)}.\nstdout tail: ${out.slice(-1500)}\nstderr tail: ${err.slice(-1500)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    type(text) {
      child.stdin.write(text);
    },
    exit: () => exited,
    kill() {
      if (!done) child.kill('SIGKILL');
    },
  };
}

/** Runs `boxwood <args>` to completion (bounded). */
export async function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const s = startCli(args);
  const timer = setTimeout(() => s.kill(), timeoutMs);
  const code = await s.exit();
  clearTimeout(timer);
  return { code, stdout: s.stdout(), stderr: s.stderr() };
}
