/** The isolinux ISO built from Debian's packages boots from the emulated ATAPI CD-ROM (El Torito). */
import { test } from 'node:test';
import { requireGuest } from '../../support/guests';
import { BOOT_MS, bootToInit, seabiosArgs } from '../../support/linux';

test('the isolinux ISO boots from the emulated CD-ROM through the built-in BIOS', { timeout: BOOT_MS + 60_000 }, async () => {
  await bootToInit(['--cdrom', requireGuest('linux.iso'), '--boot', 'd']);
});

test("the isolinux ISO boots from the emulated CD-ROM through Debian's SeaBIOS", { timeout: BOOT_MS + 60_000 }, async () => {
  await bootToInit(['--cdrom', requireGuest('linux.iso'), '--boot', 'd', ...seabiosArgs()]);
});
