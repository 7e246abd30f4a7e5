import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hardDiskGeometry, floppyGeometry, chsToLba, lbaToChs } from '../../../src-emulator/firmware/disk';
import { translateScancode } from '../../../src-emulator/firmware/keyboard';

test('LBA-assisted translation picks 16/32/64/128/255 heads at the classic limits', () => {
  const mb = (n: number) => (n * 1024 * 1024) / 512;
  assert.deepEqual(hardDiskGeometry(mb(8)), { cylinders: 16, heads: 16, sectors: 63 });
  assert.equal(hardDiskGeometry(1024 * 16 * 63).heads, 16);
  assert.equal(hardDiskGeometry(1024 * 16 * 63 + 1).heads, 32);
  assert.equal(hardDiskGeometry(mb(1000)).heads, 32);
  assert.equal(hardDiskGeometry(mb(1500)).heads, 64);
  assert.equal(hardDiskGeometry(mb(3000)).heads, 128);
  const big = hardDiskGeometry(mb(100 * 1024));
  assert.deepEqual(big, { cylinders: 1024, heads: 255, sectors: 63 });
});

test('floppy geometries by image size', () => {
  assert.deepEqual(floppyGeometry(1474560), { geometry: { cylinders: 80, heads: 2, sectors: 18 }, type: 4 });
  assert.deepEqual(floppyGeometry(737280), { geometry: { cylinders: 80, heads: 2, sectors: 9 }, type: 3 });
  assert.deepEqual(floppyGeometry(2949120).geometry.sectors, 36);
  assert.equal(floppyGeometry(368640).geometry.cylinders, 40);
});

test('CHS <-> LBA round trip', () => {
  const g = { cylinders: 1024, heads: 16, sectors: 63 };
  assert.equal(chsToLba(g, 0, 0, 1), 0);
  assert.equal(chsToLba(g, 0, 1, 1), 63);
  assert.equal(chsToLba(g, 1, 0, 1), 16 * 63);
  for (const lba of [0, 1, 62, 63, 1007, 1008, 123456]) {
    const { c, h, s } = lbaToChs(g, lba);
    assert.equal(chsToLba(g, c, h, s), lba);
    assert.ok(s >= 1 && s <= 63 && h < 16);
  }
  const fd = { cylinders: 80, heads: 2, sectors: 18 };
  assert.deepEqual(lbaToChs(fd, 36), { c: 1, h: 0, s: 1 });
});

test('set-1 scancodes become BIOS key codes with shift, caps, ctrl, alt and keypad states', () => {
  const SHIFT = 0x02,
    CTRL = 0x04,
    ALT = 0x08,
    NUM = 0x20,
    CAPS = 0x40;
  assert.equal(translateScancode(0x1e, 0, false), 0x1e61); // a
  assert.equal(translateScancode(0x1e, SHIFT, false), 0x1e41); // A
  assert.equal(translateScancode(0x1e, CAPS, false), 0x1e41);
  assert.equal(translateScancode(0x1e, CAPS | SHIFT, false), 0x1e61);
  assert.equal(translateScancode(0x02, CAPS, false), 0x0231, 'caps does not shift digits');
  assert.equal(translateScancode(0x02, SHIFT, false), 0x0221); // !
  assert.equal(translateScancode(0x2e, CTRL, false), 0x2e03); // ctrl-C
  assert.equal(translateScancode(0x2d, ALT, false), 0x2d00); // alt-X
  assert.equal(translateScancode(0x1c, 0, false), 0x1c0d);
  assert.equal(translateScancode(0x1c, 0, true), 0xe00d, 'keypad enter');
  assert.equal(translateScancode(0x48, 0, true), 0x48e0, 'grey up arrow');
  assert.equal(translateScancode(0x48, 0, false), 0x4800, 'keypad 8 without num lock');
  assert.equal(translateScancode(0x48, NUM, false), 0x4838, 'keypad 8 with num lock');
  assert.equal(translateScancode(0x3b, 0, false), 0x3b00); // F1
  assert.equal(translateScancode(0x3b, SHIFT, false), 0x5400);
  assert.equal(translateScancode(0x58, 0, false), 0x8600); // F12
  assert.equal(translateScancode(0x39, 0, false), 0x3920);
  assert.equal(translateScancode(0x0e, 0, false), 0x0e08);
  assert.equal(translateScancode(0x7f, 0, false), 0);
});
