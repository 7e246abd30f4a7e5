/**
 * Starts the web twin (`boxwood serve --port 0`) on a temporary library and opens it in Debian's
 * Chromium through Playwright, as every end-to-end test does; `close` tears both down.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface WebTwin {
  server: ChildProcess;
  url: string;
  context: BrowserContext;
  page: Page;
  serverLog(): string;
  close(): Promise<void>;
}

export async function openWebTwin(opts: { dir: string; library: string; viewport: { width: number; height: number }; timeoutMs: number }): Promise<WebTwin> {
  let log = '';
  const server = spawn(process.execPath, ['bin/boxwood.mjs', 'serve', '--port', '0'], {
    env: { ...process.env, BOXWOOD_LIBRARY: opts.library, BOXWOOD_CONFIG_DIR: join(opts.dir, 'config') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stderr!.on('data', (d) => (log += d));
  const url = await new Promise<string>((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`the web twin did not print its URL: ${log}`)), 180_000);
    let out = '';
    server.stdout!.on('data', (d) => {
      out += d;
      const m = /Boxwood web UI: (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        ok(m[1]);
      }
    });
    server.on('exit', (code) => fail(new Error(`boxwood serve exited with ${code}: ${log}`)));
  });
  const context = await chromium.launchPersistentContext(join(opts.dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    viewport: opts.viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(opts.timeoutMs);
  await page.goto(url);
  await page.getByRole('listbox', { name: 'VM library' }).waitFor();
  return {
    server,
    url,
    context,
    page,
    serverLog: () => log,
    async close() {
      await context.close().catch(() => {});
      if (server.exitCode !== null) return;
      server.kill('SIGTERM');
      await new Promise((ok) => {
        const t = setTimeout(() => {
          server.kill('SIGKILL');
          ok(null);
        }, 5000);
        server.on('exit', () => {
          clearTimeout(t);
          ok(null);
        });
      });
    },
  };
}

/** The end of a VM's newest log (its folder is named after it): what a failing test shows. */
export function vmLogTail(library: string, name: string, lines = 40): string {
  const logs = join(library, name, 'logs');
  if (!existsSync(logs)) return `(no log folder ${logs})`;
  const newest = readdirSync(logs).filter((f) => f.endsWith('.log')).sort().pop();
  if (!newest) return '(no VM log yet)';
  return `${newest}:\n${readFileSync(join(logs, newest), 'utf8').split('\n').slice(-lines).join('\n')}`;
}
