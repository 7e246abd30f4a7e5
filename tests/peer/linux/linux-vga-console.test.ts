/**
 * The same Debian kernel with `console=tty0`: the shell prompt appears on the VGA text screen, and
 * keys sent as PS/2 scancodes through the i8042 reach the shell.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src-emulator/machine/machine';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';
import { requireGuest } from '../../support/guests';
import { textToScancodes } from '../../support/scancodes';
import { BOOT_MS } from '../../support/linux';


async function waitForScreen(m: Machine, re: RegExp, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const screen = m.display?.getTextScreen() ?? '';
    if (re.test(screen)) return screen;
    if (Date.now() > until) throw new Error(`timed out waiting for ${re} on the text screen; screen:\n${screen}`);
    if (m.state === 'off') throw new Error(`machine is off before ${re} appeared; screen:\n${screen}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('console=tty0: prompt on the VGA text screen, PS/2 keys reach the shell', { timeout: BOOT_MS + 300_000 }, async () => {
  const config = defaultMachineConfig({
    memoryMiB: 256,
    kernel: { kernelPath: requireGuest('vmlinuz-686'), initrdPath: requireGuest('initramfs.cpio.gz'), cmdline: 'console=tty0 cryptomgr.notests' },
  });
  const m = await Machine.create(config);
  const running = m.start();
  try {
    await waitForScreen(m, /BOXWOOD-INIT-OK/, BOOT_MS);
    await waitForScreen(m, /boxwood#\s*$/m, 120_000);
    m.keyboard.sendScancodes(textToScancodes('echo "sum=$((40+2))"\n'));
    const screen = await waitForScreen(m, /^sum=42$/m, 120_000);
    assert.match(screen, /^sum=42$/m);
  } finally {
    m.stop();
    await running.catch(() => {});
  }
});
