/** A raw disk with an MBR partition table, an ext2 partition and extlinux boots from the IDE disk. */
import { test } from 'node:test';
import { requireGuest } from '../../support/guests';
import { BOOT_MS, bootToInit, seabiosArgs } from '../../support/linux';

test('an MBR hard disk with extlinux boots through the built-in BIOS', { timeout: BOOT_MS + 60_000 }, async () => {
  await bootToInit(['--hda', requireGuest('linux-hd.img'), '--boot', 'c']);
});

test("an MBR hard disk with extlinux boots through Debian's SeaBIOS", { timeout: BOOT_MS + 60_000 }, async () => {
  await bootToInit(['--hda', requireGuest('linux-hd.img'), '--boot', 'c', ...seabiosArgs()]);
});
