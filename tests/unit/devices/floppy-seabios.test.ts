/**
 * End to end: the demo floppy boots under Debian's SeaBIOS, which loads the payload through the
 * emulated 82077AA and 8237 (not by reading the image directly, as the built-in BIOS does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../../../src-emulator/machine/machine';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';

const SEABIOS = '/usr/share/seabios/bios.bin';
const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';
const DEMO = join(dirname(fileURLToPath(import.meta.url)), '../../../resources/demo-guest/demo-floppy.img');
const have = existsSync(SEABIOS) && existsSync(VGABIOS) && existsSync(DEMO);

test(
  'SeaBIOS boots the demo floppy and the 4-sector payload load arrives whole (full banner)',
  { skip: have ? false : 'needs seabios and the demo floppy image' },
  async () => {
    const config = defaultMachineConfig({
      memoryMiB: 32,
      deterministic: true,
      firmware: { kind: 'seabios', biosPath: SEABIOS, vgaBiosPath: VGABIOS },
      bootOrder: ['floppy'],
      disks: [{ kind: 'floppy', path: DEMO, readOnly: true }],
    });
    const m = await Machine.create(config);
    const screen = () => m.display?.getTextScreen() ?? '';
    const want = 'Bytes sent to the serial console are echoed back here too.';
    // Bounded by virtual time (deterministic mode), with a host-time backstop for a stuck slice.
    const end = m.clock.now() + 30e9;
    const hostEnd = Date.now() + 300_000;
    while (m.state !== 'off' && !screen().includes(want) && m.clock.now() < end && Date.now() < hostEnd) m.runSlice(5);
    assert.match(screen(), /This machine booted from a floppy image/);
    assert.ok(screen().includes(want), `banner incomplete:\n${screen()}`);
  },
);
