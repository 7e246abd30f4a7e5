#!/usr/bin/env node
// `npm start`: the desktop app when Electron's runtime is installed; otherwise one line saying so,
// then the web twin (same UI in a browser), which keeps serving until interrupted.
// Extra arguments go to `boxwood serve` (e.g. `npm start -- --port 8080`).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The Electron binary, if its runtime was downloaded (node_modules/electron/path.txt names it). */
function electronBinary() {
  const pkg = join(root, 'node_modules', 'electron');
  const pathFile = join(pkg, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const bin = join(pkg, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(bin) ? bin : null;
}

function run(cmd, args) {
  const child = spawn(cmd, args, { cwd: root, stdio: 'inherit' });
  const forward = (sig) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

const electron = electronBinary();
if (electron) {
  spawnSync(process.execPath, [join(root, 'scripts', 'build-demo-guest.mjs')], { cwd: root, stdio: 'inherit' });
  const build = spawnSync(process.execPath, [join(root, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (build.status !== 0) process.exit(build.status ?? 1);
  run(electron, ['.']);
} else {
  console.log('Boxwood: the Electron runtime is not installed here (it downloads on first launch), so starting the web UI instead:');
  run(process.execPath, [join(root, 'bin', 'boxwood.mjs'), 'serve', ...process.argv.slice(2)]);
}
