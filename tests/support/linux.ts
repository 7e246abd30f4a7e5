/**
 * Shared pieces of the real-Linux peer tests: time budgets, Debian's SeaBIOS paths, and booting a
 * guest through `boxwood run` to the marker /init prints.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runCli } from './run-cli';

/** A boot of Debian's 686 kernel is a few billion guest instructions: minutes, not seconds. */
export const BOOT_MS = 20 * 60_000;
export const SEABIOS = '/usr/share/seabios/bios.bin';
export const SEAVGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';

export function seabiosArgs(): string[] {
  assert.ok(existsSync(SEABIOS), `${SEABIOS} missing: install the Debian package 'seabios'`);
  assert.ok(existsSync(SEAVGABIOS), `${SEAVGABIOS} missing: install the Debian package 'seabios'`);
  return ['--firmware', `seabios:${SEABIOS}`, '--vga-bios', SEAVGABIOS];
}

/** Boots with `boxwood run ... --until BOXWOOD-INIT-OK` and checks it got there. */
export async function bootToInit(args: string[]): Promise<void> {
  const r = await runCli(['run', '--memory', '256', ...args, '--serial', 'stdio', '--until', 'BOXWOOD-INIT-OK', '--timeout', String(BOOT_MS / 1000)], BOOT_MS + 30_000);
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr.slice(-800)}\n${r.stdout.slice(-800)}`);
  assert.match(r.stdout, /BOXWOOD-INIT-OK/);
}
