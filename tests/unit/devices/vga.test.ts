import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { PciBus } from '../../../src-emulator/devices/pci-bus';
import { Vga } from '../../../src-emulator/devices/vga';
import { VGA_FONT_8X16, VGA_FONT_8X8 } from '../../../src-emulator/devices/vga-font';

function setup(vramMiB = 16) {
  const mem = new PhysicalMemory(32 << 20);
  const io = new IoBus();
  const clock = new VirtualClock();
  const vga = new Vga({ io, mem, clock, vramMiB });
  return { mem, io, clock, vga };
}

interface RegTable {
  misc: number;
  seq: number[];
  crtc: number[];
  gc: number[];
  attr: number[];
}

// Register tables of the standard BIOS modes (IBM VGA Technical Reference).
const MODE_13H: RegTable = {
  misc: 0x63,
  seq: [0x03, 0x01, 0x0f, 0x00, 0x0e],
  crtc: [0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0, 0, 0, 0, 0, 0, 0x9c, 0x0e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff],
  gc: [0, 0, 0, 0, 0, 0x40, 0x05, 0x0f, 0xff],
  attr: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x41, 0x00, 0x0f, 0x00, 0x00],
};
const MODE_12H: RegTable = {
  misc: 0xe3,
  seq: [0x03, 0x01, 0x0f, 0x00, 0x06],
  crtc: [0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0xea, 0x0c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff],
  gc: [0, 0, 0, 0, 0, 0x00, 0x05, 0x0f, 0xff],
  attr: [0, 1, 2, 3, 4, 5, 0x14, 7, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00, 0x00],
};

function program(io: IoBus, t: RegTable) {
  io.out8(0x3c2, t.misc);
  t.seq.forEach((v, i) => io.out16(0x3c4, i | (v << 8)));
  io.out16(0x3d4, 0x11 | ((t.crtc[0x11] & 0x7f) << 8)); // unlock CR0-7
  t.crtc.forEach((v, i) => io.out16(0x3d4, i | (v << 8)));
  t.gc.forEach((v, i) => io.out16(0x3ce, i | (v << 8)));
  io.in8(0x3da);
  t.attr.forEach((v, i) => {
    io.out8(0x3c0, i);
    io.out8(0x3c0, v);
  });
  io.out8(0x3c0, 0x20);
}

const px = (f: { width: number; data: Uint8ClampedArray }, x: number, y: number) => {
  const i = (y * f.width + x) * 4;
  return [f.data[i], f.data[i + 1], f.data[i + 2]];
};

test('power-on state is 80x25 colour text, blank screen', () => {
  const { vga } = setup();
  assert.deepEqual(vga.getMode(), { kind: 'text', width: 720, height: 400, cols: 80, rows: 25, charWidth: 9, charHeight: 16 });
  assert.equal(vga.getTextScreen(), new Array(25).fill('').join('\n'));
  assert.equal(vga.config[0] | (vga.config[1] << 8), 0x1234);
  assert.equal(vga.config[2] | (vga.config[3] << 8), 0x1111);
});

test('text written at B8000 reads back as text (CP437 decoded) and renders with the font', () => {
  const { mem, io, vga } = setup();
  io.out16(0x3d4, 0x0a | (0x20 << 8)); // cursor off
  const s = 'Hello, VGA';
  for (let i = 0; i < s.length; i++) {
    mem.write8(0xb8000 + i * 2, s.charCodeAt(i));
    mem.write8(0xb8000 + i * 2 + 1, 0x1e); // yellow on blue
  }
  mem.write16(0xb8000 + 160 * 2 + 4, 0x07c9); // row 2, col 2: box corner
  const lines = vga.getTextScreen()!.split('\n');
  assert.equal(lines[0], s);
  assert.equal(lines[2], '  ╔');
  assert.equal(mem.read8(0xb8000), 'H'.charCodeAt(0));
  assert.equal(mem.read8(0xb8001), 0x1e);

  const f = vga.renderRgba();
  assert.equal(f.width, 720);
  assert.equal(f.height, 400);
  const yellow = [0xff, 0xff, 0x55];
  const blue = [0x00, 0x00, 0xaa];
  for (let ci = 0; ci < s.length; ci++) {
    const c = s.charCodeAt(ci);
    for (let line = 0; line < 16; line++) {
      const bits = VGA_FONT_8X16[c * 16 + line];
      for (let x = 0; x < 9; x++) {
        const on = x < 8 && (bits & (0x80 >> x)) !== 0;
        assert.deepEqual(px(f, ci * 9 + x, line), on ? yellow : blue, `char ${s[ci]} line ${line} x ${x}`);
      }
    }
  }
  // Line-graphics character 0xC9 extends its 8th column into the 9th.
  const glyph = VGA_FONT_8X16[0xc9 * 16 + 8];
  assert.deepEqual(px(f, 2 * 9 + 8, 32 + 8), glyph & 1 ? [0xaa, 0xaa, 0xaa] : [0, 0, 0]);
});

test('cursor is drawn at the CRTC cursor location between start and end lines, and blinks on the virtual clock', () => {
  const { io, vga, clock } = setup();
  io.out16(0x3d4, 0x0e | (0 << 8));
  io.out16(0x3d4, 0x0f | (81 << 8)); // row 1, col 1
  io.out16(0x3d4, 0x0a | (14 << 8));
  io.out16(0x3d4, 0x0b | (15 << 8));
  assert.deepEqual(vga.getCursor(), { col: 1, row: 1 });
  let f = vga.renderRgba();
  assert.deepEqual(px(f, 9 + 3, 16 + 14), [0xaa, 0xaa, 0xaa]);
  assert.deepEqual(px(f, 9 + 3, 16 + 13), [0, 0, 0]);
  clock.advanceTo(16 * 14_268_000 + 1); // next blink phase: cursor off
  const r = vga.takeDirtyRect();
  assert.ok(r && r.y <= 16 && r.y + r.height >= 32);
  f = vga.renderRgba();
  assert.deepEqual(px(f, 9 + 3, 16 + 14), [0, 0, 0]);
});

test('80x50 text with the 8x8 font in map 1', () => {
  const { io, mem, vga } = setup();
  vga.loadFont(VGA_FONT_8X8, 8, 1);
  io.out16(0x3c4, 0x03 | (0x05 << 8)); // maps A and B = 1
  io.out16(0x3d4, 0x09 | (0x47 << 8)); // 8 scan lines per row
  const mode = vga.getMode();
  assert.equal(mode.kind, 'text');
  assert.equal(mode.kind === 'text' && mode.rows, 50);
  mem.write16(0xb8000 + 49 * 160, 0x0741);
  assert.equal(vga.getTextScreen()!.split('\n')[49], 'A');
  const f = vga.renderRgba();
  assert.equal(f.height, 400);
  for (let line = 0; line < 8; line++) {
    const bits = VGA_FONT_8X8[0x41 * 8 + line];
    for (let x = 0; x < 8; x++) assert.equal(px(f, x, 49 * 8 + line)[0], bits & (0x80 >> x) ? 0xaa : 0);
  }
});

test('register files: index/data, CRTC write protect, attribute flip-flop, DAC auto-increment', () => {
  const { io, vga } = setup();
  io.out8(0x3c4, 0x02);
  io.out8(0x3c5, 0x05);
  assert.equal(io.in8(0x3c5), 0x05);
  io.out16(0x3ce, 0x08 | (0x3c << 8));
  io.out8(0x3ce, 0x08);
  assert.equal(io.in8(0x3cf), 0x3c);
  // CR11 bit 7 protects CR00-07.
  io.out16(0x3d4, 0x11 | (0x80 << 8));
  io.out16(0x3d4, 0x01 | (0x27 << 8));
  io.out8(0x3d4, 0x01);
  assert.equal(io.in8(0x3d5), 0x4f);
  io.out16(0x3d4, 0x11 | (0x00 << 8));
  io.out16(0x3d4, 0x01 | (0x27 << 8));
  assert.equal(io.in8(0x3d5), 0x27);
  // Mono ports don't decode in colour mode.
  io.out8(0x3b4, 0x01);
  assert.equal(io.in8(0x3b5), 0xff);
  // Attribute controller: 3DA read resets the flip-flop to "index".
  io.out8(0x3c0, 0x11); // index (flip-flop now at data)
  io.in8(0x3da);
  io.out8(0x3c0, 0x12); // index again, not data
  io.out8(0x3c0, 0x0a); // data for 0x12
  io.out8(0x3c0, 0x32); // index 0x12 | PAS
  assert.equal(io.in8(0x3c1), 0x0a);
  assert.equal(io.in8(0x3c0), 0x32);
  // DAC: write index, R G B, auto-increment; read back 6-bit values.
  io.out8(0x3c8, 5);
  for (const v of [1, 2, 3, 4, 5, 0xff]) io.out8(0x3c9, v);
  assert.equal(io.in8(0x3c7), 3);
  io.out8(0x3c7, 5);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => io.in8(0x3c9)), [1, 2, 3, 4, 5, 0x3f]);
  assert.equal(io.in8(0x3c7), 0);
  assert.equal(io.in8(0x3cc), 0x67);
  void vga;
});

test('input status 1 shows vertical retrace within a frame of polling, and toggles back', () => {
  const { io } = setup();
  let sawRetrace = false;
  let sawDisplay = false;
  for (let i = 0; i < 100_000 && !(sawRetrace && sawDisplay); i++) {
    const v = io.in8(0x3da);
    if (v & 8) sawRetrace = true;
    else if (sawRetrace) sawDisplay = true;
  }
  assert.ok(sawRetrace && sawDisplay);
});

test('planar write modes 0-3, latches, set/reset, logic ops, bit mask, read modes 0/1', () => {
  const { io, mem, vga } = setup();
  program(io, MODE_12H);
  vga.vram.fill(0);
  assert.deepEqual(vga.getMode(), { kind: 'graphics', width: 640, height: 480, bpp: 4, vbe: false });
  const gc = (i: number, v: number) => io.out16(0x3ce, i | (v << 8));
  const planesAt = (off: number) => [0, 1, 2, 3].map((p) => vga.vram[off * 4 + p]);
  // Mode 0 plain: value to every plane in the map mask.
  io.out16(0x3c4, 0x02 | (0x05 << 8)); // planes 0 and 2
  mem.write8(0xa0000, 0xa5);
  assert.deepEqual(planesAt(0), [0xa5, 0, 0xa5, 0]);
  // Mode 0 with set/reset on planes 1,2 (colour 0b0110), all planes enabled.
  io.out16(0x3c4, 0x02 | (0x0f << 8));
  gc(0, 0x06);
  gc(1, 0x0f);
  mem.write8(0xa0001, 0x00);
  assert.deepEqual(planesAt(1), [0x00, 0xff, 0xff, 0x00]);
  gc(1, 0x00);
  // Rotate 4 with XOR against latches.
  mem.read8(0xa0001); // latch = [00 ff ff 00]
  gc(3, (3 << 3) | 4);
  mem.write8(0xa0002, 0x0f); // rotated -> 0xf0; XOR latch
  assert.deepEqual(planesAt(2), [0xf0, 0x0f, 0x0f, 0xf0]);
  gc(3, 0);
  // Bit mask keeps latch bits outside the mask.
  mem.read8(0xa0001);
  gc(8, 0x0f);
  mem.write8(0xa0003, 0xaa);
  assert.deepEqual(planesAt(3), [0x0a, 0xfa, 0xfa, 0x0a]);
  gc(8, 0xff);
  // Write mode 1 copies the latches (a screen-to-screen blit).
  mem.read8(0xa0002);
  gc(5, 0x01);
  mem.write8(0xa0010, 0x12);
  assert.deepEqual(planesAt(0x10), planesAt(2));
  // Write mode 2: low nibble is the colour for every bit in the bit mask.
  gc(5, 0x02);
  gc(8, 0xc0);
  mem.read8(0xa0020); // zero latches
  mem.write8(0xa0020, 0x09);
  assert.deepEqual(planesAt(0x20), [0xc0, 0x00, 0x00, 0xc0]);
  // Write mode 3: rotated value ANDs the bit mask, set/reset gives the colour.
  gc(5, 0x03);
  gc(8, 0xff);
  gc(0, 0x0c);
  mem.read8(0xa0030);
  mem.write8(0xa0030, 0x3c);
  assert.deepEqual(planesAt(0x30), [0x00, 0x00, 0x3c, 0x3c]);
  // Read mode 0 selects a plane via GR4.
  gc(5, 0x00);
  gc(4, 2);
  assert.equal(mem.read8(0xa0002), 0x0f);
  // Read mode 1: colour compare (colour 0b0110 at pixels where planes 1,2 set, 0,3 clear).
  gc(5, 0x08);
  gc(2, 0x06);
  gc(7, 0x0f);
  assert.equal(mem.read8(0xa0002), 0x0f);
  gc(7, 0x00); // don't care about any plane: everything matches
  assert.equal(mem.read8(0xa0002), 0xff);
  gc(5, 0x00);
  // Rendering: pixel 0 at (0,0) gets colour from planes bit7: [1,0,1,0] -> 5 -> DAC via attr 5 (magenta).
  const f = vga.renderRgba();
  assert.equal(f.width, 640);
  assert.deepEqual(px(f, 0, 0), [0xaa, 0x00, 0xaa]);
  // Pixel 1: planes bit6 of a5 = 0 -> colour 0.
  assert.deepEqual(px(f, 1, 0), [0, 0, 0]);
});

test('mode 13h: chain-4 pixels through the DAC, 320x200', () => {
  const { io, mem, vga } = setup();
  program(io, MODE_13H);
  vga.vram.fill(0);
  assert.deepEqual(vga.getMode(), { kind: 'graphics', width: 320, height: 200, bpp: 8, vbe: false });
  io.out8(0x3c8, 0x80);
  io.out8(0x3c9, 63);
  io.out8(0x3c9, 32);
  io.out8(0x3c9, 0);
  mem.write8(0xa0000 + 199 * 320 + 317, 0x80);
  mem.write8(0xa0000 + 5, 0x04);
  assert.equal(mem.read8(0xa0000 + 199 * 320 + 317), 0x80);
  const f = vga.renderRgba();
  assert.equal(f.width, 320);
  assert.equal(f.height, 200);
  assert.deepEqual(px(f, 317, 199), [0xff, 0x82, 0x00]);
  assert.deepEqual(px(f, 5, 0), [0xaa, 0x00, 0x00]);
  assert.deepEqual(px(f, 4, 0), [0, 0, 0]);
  // Only the touched line is reported dirty.
  vga.takeDirtyRect();
  mem.write8(0xa0000 + 100 * 320 + 10, 0x0f);
  const r = vga.takeDirtyRect()!;
  assert.ok(r.y <= 100 && r.y + r.height > 100 && r.height < 40, JSON.stringify(r));
  assert.equal(vga.takeDirtyRect(), null);
  assert.equal(vga.getTextScreen(), null);
});

function vbe(io: IoBus, index: number, value?: number): number {
  io.out16(0x1ce, index);
  if (value !== undefined) io.out16(0x1cf, value);
  return io.in16(0x1cf);
}

test('Bochs VBE: ID, caps, 32 bpp mode through the PCI BAR0 linear framebuffer', () => {
  const { io, mem, vga } = setup(8);
  const pci = new PciBus(io, mem);
  pci.attach(vga, 2);
  pci.writeConfig(0, 2, 0, 0x10, 0xffffffff, 4);
  assert.equal(pci.readConfig(0, 2, 0, 0x10, 4), (~(8 * 1024 * 1024 - 1) | 8) >>> 0);
  pci.writeConfig(0, 2, 0, 0x10, 0xfd000000, 4);
  pci.writeConfig(0, 2, 0, 0x04, 0x0003, 2);
  assert.equal(vga.linearFramebufferBase, 0xfd000000);

  assert.equal(vbe(io, 0, 0xb0c0), 0xb0c0);
  assert.equal(vbe(io, 0, 0xb0c5), 0xb0c5);
  assert.equal(vbe(io, 0, 0x1234), 0xb0c5);
  assert.equal(vbe(io, 10), 128);
  vbe(io, 4, 0x02);
  assert.equal(vbe(io, 1), 2560);
  vbe(io, 4, 0);
  vbe(io, 1, 640);
  vbe(io, 2, 480);
  vbe(io, 3, 32);
  vbe(io, 4, 0x41);
  assert.deepEqual(vga.getMode(), { kind: 'graphics', width: 640, height: 480, bpp: 32, vbe: true });
  assert.equal(vbe(io, 6), 640);
  mem.write32(0xfd000000 + (10 * 640 + 20) * 4, 0x00112233); // XRGB
  assert.equal(mem.read32(0xfd000000 + (10 * 640 + 20) * 4), 0x00112233);
  let f = vga.renderRgba();
  assert.equal(f.width, 640);
  assert.deepEqual(px(f, 20, 10), [0x11, 0x22, 0x33]);
  // Y offset pans: line 10 of vram becomes line 5 of the screen.
  vbe(io, 9, 5);
  f = vga.renderRgba();
  assert.deepEqual(px(f, 20, 5), [0x11, 0x22, 0x33]);
  // Resolution registers are locked while enabled.
  vbe(io, 1, 800);
  assert.equal(vbe(io, 1), 640);
  // Disabling returns to VGA text.
  vbe(io, 4, 0);
  assert.equal(vga.getMode().kind, 'graphics'); // GR6 left in graphics by the VBE enable
});

test('VBE 16 and 8 bpp, banked window at A0000, 8-bit DAC', () => {
  const { io, mem, vga } = setup(4);
  vbe(io, 1, 320);
  vbe(io, 2, 240);
  vbe(io, 3, 16);
  vbe(io, 4, 0x01);
  // Bank 1, offset 0 is byte 65536 = pixel 32768 = (128, 102).
  vbe(io, 5, 1);
  mem.write16(0xa0000, 0xf800); // pure red in RGB565
  assert.equal(vga.vram[65536 + 1], 0xf8);
  let f = vga.renderRgba();
  assert.deepEqual(px(f, 32768 % 320, Math.floor(32768 / 320)), [0xff, 0, 0]);
  vbe(io, 4, 0);
  vbe(io, 3, 8);
  vbe(io, 4, 0x21); // 8-bit DAC
  io.out8(0x3c8, 7);
  io.out8(0x3c9, 200);
  io.out8(0x3c9, 100);
  io.out8(0x3c9, 50);
  mem.write8(0xa0000 + 3, 7); // bank reset to 0 by enable
  f = vga.renderRgba();
  assert.deepEqual(px(f, 3, 0), [200, 100, 50]);
});

test('saveState/loadState restores registers and video memory', () => {
  const a = setup();
  program(a.io, MODE_13H);
  a.mem.write8(0xa0000 + 640 + 3, 0x0c);
  const state = a.vga.saveState();
  const b = setup();
  b.vga.loadState(structuredClone(state));
  assert.deepEqual(b.vga.getMode(), a.vga.getMode());
  assert.deepEqual(px(b.vga.renderRgba(), 3, 2), px(a.vga.renderRgba(), 3, 2));
  assert.notDeepEqual(px(b.vga.renderRgba(), 3, 2), [0, 0, 0]);
  b.vga.reset();
  assert.equal(b.vga.getMode().kind, 'text');
});

test('blinking characters: only their rows are redrawn when the blink phase flips', () => {
  const { mem, io, vga, clock } = setup();
  io.out16(0x3d4, 0x0a | (0x20 << 8)); // cursor off
  mem.write16(0xb8000 + 160 * 5, 0x8f41); // blinking bright white 'A' on row 5
  mem.write16(0xb8000 + 160 * 9, 0x0f42); // steady 'B' on row 9
  vga.takeDirtyRect();
  const glyphRow = VGA_FONT_8X16[0x41 * 16 + 5];
  const lit = [...Array(8).keys()].find((x) => glyphRow & (0x80 >> x))!;
  assert.deepEqual(px(vga.renderRgba(), lit, 5 * 16 + 5), [0xff, 0xff, 0xff]);
  clock.advanceTo(32 * 14_268_000 + 1); // blink phase 1: blinking text hidden
  const r = vga.takeDirtyRect()!;
  assert.deepEqual([r.y, r.height], [5 * 16, 16]);
  assert.deepEqual(px(vga.renderRgba(), lit, 5 * 16 + 5), [0, 0, 0]);
  // With blink disabled (AR10 bit 3 clear) bit 7 is a bright background instead.
  io.in8(0x3da);
  io.out8(0x3c0, 0x10);
  io.out8(0x3c0, 0x04);
  io.out8(0x3c0, 0x20);
  assert.deepEqual(px(vga.renderRgba(), 0, 5 * 16), [0x55, 0x55, 0x55]);
});

test('a font loaded through the ports (plane 2, sequential addressing) is what text mode draws', () => {
  const { io, mem, vga } = setup();
  io.out16(0x3d4, 0x0a | (0x20 << 8));
  // The VGA BIOS sequence: map mask plane 2, sequential, A0000 64K window, read plane 2.
  io.out16(0x3c4, 0x0402);
  io.out16(0x3c4, 0x0704);
  io.out16(0x3ce, 0x0204);
  io.out16(0x3ce, 0x0005);
  io.out16(0x3ce, 0x0406);
  const glyph = [0xff, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0xff];
  glyph.forEach((b, i) => mem.write8(0xa0000 + 0x41 * 32 + i, b));
  assert.equal(mem.read8(0xa0000 + 0x41 * 32 + 1), 0x81, 'plane 2 reads back');
  // Back to text addressing.
  io.out16(0x3c4, 0x0302);
  io.out16(0x3c4, 0x0204);
  io.out16(0x3ce, 0x0004);
  io.out16(0x3ce, 0x1005);
  io.out16(0x3ce, 0x0e06);
  mem.write16(0xb8000, 0x0741);
  const f = vga.renderRgba();
  for (let line = 0; line < 16; line++) {
    for (let x = 0; x < 8; x++) assert.equal(px(f, x, line)[0], glyph[line] & (0x80 >> x) ? 0xaa : 0, `line ${line} x ${x}`);
  }
  assert.equal(vga.getTextScreen()!.split('\n')[0], 'A');
});

test('unchained 256-colour "mode X": planes chosen by the map mask, byte-mode scan-out', () => {
  const { io, mem, vga } = setup();
  program(io, MODE_13H);
  vga.vram.fill(0);
  io.out16(0x3c4, 0x0604); // chain-4 off, odd/even off
  io.out16(0x3d4, 0x0014); // doubleword off
  io.out16(0x3d4, 0xe317); // byte mode
  // Pixel x lives in plane x&3 at address y*80 + x/4.
  const put = (x: number, y: number, c: number) => {
    io.out16(0x3c4, 0x02 | ((1 << (x & 3)) << 8));
    mem.write8(0xa0000 + y * 80 + (x >> 2), c);
  };
  put(0, 0, 1);
  put(1, 0, 2);
  put(2, 0, 3);
  put(7, 5, 4);
  const f = vga.renderRgba();
  assert.equal(f.width, 320);
  assert.deepEqual(px(f, 0, 0), [0, 0, 0xaa]);
  assert.deepEqual(px(f, 1, 0), [0, 0xaa, 0]);
  assert.deepEqual(px(f, 2, 0), [0, 0xaa, 0xaa]);
  assert.deepEqual(px(f, 3, 0), [0, 0, 0]);
  assert.deepEqual(px(f, 7, 5), [0xaa, 0, 0]);
  // Start address moves the view (page flipping).
  io.out16(0x3d4, 0x0d | (80 << 8));
  assert.deepEqual(px(vga.renderRgba(), 7, 4), [0xaa, 0, 0]);
});

test('CGA mode 4: 2 bits per pixel, even lines at B8000 and odd lines at BA000 (row-scan substitution)', () => {
  const { io, mem, vga } = setup();
  program(io, {
    misc: 0x63,
    seq: [0x03, 0x09, 0x03, 0x00, 0x02],
    crtc: [0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0, 0, 0, 0, 0, 0, 0x9c, 0x8e, 0x8f, 0x14, 0x00, 0x96, 0xb9, 0xa2, 0xff],
    gc: [0, 0, 0, 0, 0, 0x30, 0x0f, 0x0f, 0xff],
    attr: [0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x01, 0x00, 0x03, 0x00, 0x00],
  });
  vga.vram.fill(0);
  assert.deepEqual(vga.getMode(), { kind: 'graphics', width: 320, height: 200, bpp: 2, vbe: false });
  mem.write8(0xb8000, 0xc0); // line 0, pixel 0 = 3
  mem.write8(0xba000, 0x40); // line 1, pixel 0 = 1
  mem.write8(0xb8000 + 80, 0x80); // line 2, pixel 0 = 2
  mem.write8(0xba000 + 1, 0x03); // line 1, pixel 7 = 3 (odd byte: second plane)
  const f = vga.renderRgba();
  assert.deepEqual(px(f, 0, 0), [0xaa, 0xff, 0xaa]);
  assert.deepEqual(px(f, 0, 1), [0x00, 0xff, 0xaa]);
  assert.deepEqual(px(f, 0, 2), [0xaa, 0x55, 0xaa]);
  assert.deepEqual(px(f, 7, 1), [0xaa, 0xff, 0xaa]);
  assert.deepEqual(px(f, 1, 0), [0, 0, 0]);
});

test('PCI expansion ROM BAR offers the VGA BIOS image when given one', () => {
  const mem = new PhysicalMemory(32 << 20);
  const io = new IoBus();
  const rom = new Uint8Array(40 * 1024);
  rom.set([0x55, 0xaa, 80]);
  rom[rom.length - 1] = 0x77;
  const vga = new Vga({ io, mem, clock: new VirtualClock(), vramMiB: 4, romImage: rom });
  const pci = new PciBus(io, mem);
  pci.attach(vga, 2);
  pci.writeConfig(0, 2, 0, 0x30, 0xfffff800, 4);
  assert.equal(pci.readConfig(0, 2, 0, 0x30, 4), (~(64 * 1024 - 1)) >>> 0, '64 KiB ROM BAR');
  pci.writeConfig(0, 2, 0, 0x30, 0xfeb00001, 4);
  assert.equal(mem.read8(0xfeb00000), 0xff, 'not decoded until memory space is on');
  pci.writeConfig(0, 2, 0, 0x04, 0x0002, 2);
  assert.equal(mem.read16(0xfeb00000), 0xaa55);
  assert.equal(mem.read8(0xfeb00000 + rom.length - 1), 0x77);
  pci.writeConfig(0, 2, 0, 0x30, 0xfeb00000, 4);
  assert.equal(mem.read8(0xfeb00000), 0xff, 'disabled again');
  // Without an image the register stays zero.
  const plain = setup();
  plain.vga.writeConfig(0x30, 0xfffff800, 4);
  assert.equal(plain.vga.readConfig(0x30, 4), 0);
});

test('line compare splits the screen: lines below it show memory from address 0', () => {
  const { io, mem, vga } = setup();
  program(io, MODE_13H);
  vga.vram.fill(0);
  mem.write8(0xa0000 + 0, 0x01); // line 0
  mem.write8(0xa0000 + 320 * 50, 0x02); // line 50
  io.out16(0x3d4, 0x0c | (((50 * 80) >> 8) << 8)); // start address = line 50
  io.out16(0x3d4, 0x0d | (((50 * 80) & 0xff) << 8));
  let f = vga.renderRgba();
  assert.deepEqual(px(f, 0, 0), [0, 0xaa, 0], 'line 50 (green) at the top');
  // Split at physical scan line 199 (output line 100 in this double-scanned mode).
  io.out16(0x3d4, 0x18 | (199 << 8));
  io.out16(0x3d4, 0x07 | ((0x1f & ~0x10) << 8));
  io.out16(0x3d4, 0x09 | ((0x41 & ~0x40) << 8));
  f = vga.renderRgba();
  assert.deepEqual(px(f, 0, 0), [0, 0xaa, 0]);
  assert.deepEqual(px(f, 0, 100), [0, 0, 0xaa], 'line 0 of memory (blue) right below the split');
  assert.deepEqual(px(f, 0, 99), [0, 0, 0]);
});

test('horizontal pel panning shifts planar and 256-colour lines', () => {
  const { io, mem, vga } = setup();
  program(io, MODE_12H);
  vga.vram.fill(0);
  io.out16(0x3c4, 0x0f02);
  mem.write8(0xa0000, 0x20); // pixel 2 white (colour 15)
  const pan = (v: number) => {
    io.in8(0x3da);
    io.out8(0x3c0, 0x13);
    io.out8(0x3c0, v);
    io.out8(0x3c0, 0x20);
  };
  assert.deepEqual(px(vga.renderRgba(), 2, 0), [0xff, 0xff, 0xff]);
  pan(2);
  let f = vga.renderRgba();
  assert.deepEqual(px(f, 0, 0), [0xff, 0xff, 0xff]);
  assert.deepEqual(px(f, 2, 0), [0, 0, 0]);
  program(io, MODE_13H);
  vga.vram.fill(0);
  mem.write8(0xa0000 + 3, 0x0f);
  pan(2); // 256-colour modes pan in units of two pel-panning steps
  f = vga.renderRgba();
  assert.notDeepEqual(px(f, 2, 0), [0, 0, 0]);
  assert.deepEqual(px(f, 3, 0), [0, 0, 0]);
});
