import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBiosRom, SERVICE_VECTORS } from '../../../src-emulator/firmware/rom';
import { RomOffset, TRAP_PORT } from '../../../src-emulator/firmware/layout';

test('ROM image: reset vector jumps into the POST stub; date and model byte', () => {
  const rom = buildBiosRom();
  const img = rom.image;
  assert.equal(img.length, 0x10000);
  assert.equal(img[0xfff0], 0xea);
  const target = img[0xfff1] | (img[0xfff2] << 8);
  assert.equal(img[0xfff3] | (img[0xfff4] << 8), 0xf000);
  assert.ok(target >= RomOffset.CODE && target < RomOffset.DISKETTE_PARAMS);
  assert.equal(img[target], 0xfa, 'POST starts with CLI');
  assert.equal(String.fromCharCode(...img.subarray(0xfff5, 0xfffd)), '01/01/26');
  assert.equal(img[0xfffe], 0xfc);
});

test('every service vector points at a stub that traps with its own number on TRAP_PORT', () => {
  const rom = buildBiosRom();
  for (const v of SERVICE_VECTORS) {
    const o = rom.vectors[v];
    const stub = [...rom.image.subarray(o, o + 11)];
    assert.deepEqual(
      stub,
      [0x50, 0x52, 0xba, TRAP_PORT & 0xff, TRAP_PORT >> 8, 0xb0, v, 0xee, 0xec, 0x84, 0xc0],
      `vector ${v.toString(16)}`,
    );
  }
  // Unused vectors land on an IRET; IRQ vectors have their own handlers.
  assert.equal(rom.image[rom.vectors[0x00]], 0xcf);
  for (const v of [0x08, 0x09, 0x0a, 0x0f, 0x70, 0x77]) assert.notEqual(rom.image[rom.vectors[v]], 0xcf);
  // Fonts at the traditional places.
  assert.ok(
    rom.image.subarray(RomOffset.FONT_8X16 + 0x41 * 16, RomOffset.FONT_8X16 + 0x42 * 16).some((b) => b !== 0),
    'glyph A',
  );
  assert.deepEqual(
    [...rom.image.subarray(RomOffset.FONT_8X8, RomOffset.FONT_8X8 + 8 * 128)],
    [...rom.image.subarray(RomOffset.FONT_8X8_FULL, RomOffset.FONT_8X8_FULL + 8 * 128)],
  );
});
