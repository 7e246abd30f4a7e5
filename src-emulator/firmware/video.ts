/**
 * INT 10h for the built-in BIOS: a VGA BIOS written in TypeScript that programs the VGA device
 * through its I/O ports and memory window exactly as a ROM would (so it works with any VGA that
 * decodes the standard registers), plus VBE 2.0 on top of the Bochs VBE "DISPI" registers.
 *
 * State that guests inspect lives where they expect it: the BIOS data area (mode, columns, cursor
 * positions, rows, character height). Nothing here is cached in TypeScript except the VBE mode.
 */
import { BDA } from './bda';
import type { BiosEnv } from './env';
import type { Regs } from './regs';
import { ROM_BASE, ROM_SEGMENT, RomOffset } from './layout';

interface StdMode {
  /** planar: 4 planes (or 1 for 11h); linear8: mode 13h; cga2/cga1: interleaved CGA 2-bit/1-bit at B8000. */
  kind: 'text' | 'planar' | 'linear8' | 'cga2' | 'cga1';
  /** Palette for the DAC: EGA 64 colours (350/400/480 lines), CGA-style (200 lines), 256 (13h). */
  dac?: 'ega' | 'cga' | 'vga256';
  /** Mode 11h: one bit per pixel (only plane 0 matters). */
  mono?: boolean;
  width: number;
  height: number;
  cols: number;
  rows: number;
  charHeight: number;
  misc: number;
  seq: number[];
  crtc: number[];
  attr: number[];
  gc: number[];
}

const TEXT_ATTR = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00,
];
const TEXT_GC = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff];
const MODE3: StdMode = {
  kind: 'text',
  width: 720,
  height: 400,
  cols: 80,
  rows: 25,
  charHeight: 16,
  misc: 0x67,
  seq: [0x03, 0x00, 0x03, 0x00, 0x02],
  crtc: [
    0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96,
    0xb9, 0xa3, 0xff,
  ],
  attr: TEXT_ATTR,
  gc: TEXT_GC,
};
const MODE1: StdMode = {
  ...MODE3,
  width: 360,
  cols: 40,
  seq: [0x03, 0x08, 0x03, 0x00, 0x02],
  crtc: [
    0x2d, 0x27, 0x28, 0x90, 0x2b, 0xa0, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x14, 0x1f, 0x96,
    0xb9, 0xa3, 0xff,
  ],
};
const MODE12: StdMode = {
  kind: 'planar',
  width: 640,
  height: 480,
  cols: 80,
  rows: 30,
  charHeight: 16,
  misc: 0xe3,
  seq: [0x03, 0x01, 0x0f, 0x00, 0x06],
  crtc: [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7,
    0x04, 0xe3, 0xff,
  ],
  attr: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00, 0x00],
  gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff],
};
const MODE13: StdMode = {
  kind: 'linear8',
  width: 320,
  height: 200,
  cols: 40,
  rows: 25,
  charHeight: 8,
  misc: 0x63,
  seq: [0x03, 0x01, 0x0f, 0x00, 0x0e],
  crtc: [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x40, 0x96,
    0xb9, 0xa3, 0xff,
  ],
  attr: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x41, 0x00, 0x0f, 0x00, 0x00],
  gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff],
};
const GC_PLANAR = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff];
const ATTR_200 = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x01, 0x00, 0x0f, 0x00, 0x00,
];
const MODE0D: StdMode = {
  kind: 'planar',
  dac: 'cga',
  width: 320,
  height: 200,
  cols: 40,
  rows: 25,
  charHeight: 8,
  misc: 0x63,
  seq: [0x03, 0x09, 0x0f, 0x00, 0x06],
  crtc: [
    0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x14, 0x00, 0x96,
    0xb9, 0xe3, 0xff,
  ],
  attr: ATTR_200,
  gc: GC_PLANAR,
};
const MODE0E: StdMode = {
  ...MODE0D,
  width: 640,
  cols: 80,
  seq: [0x03, 0x01, 0x0f, 0x00, 0x06],
  crtc: [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x00, 0x96,
    0xb9, 0xe3, 0xff,
  ],
};
const MODE10: StdMode = {
  kind: 'planar',
  width: 640,
  height: 350,
  cols: 80,
  rows: 25,
  charHeight: 14,
  misc: 0xa3,
  seq: [0x03, 0x01, 0x0f, 0x00, 0x06],
  crtc: [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x83, 0x85, 0x5d, 0x28, 0x0f, 0x63,
    0xba, 0xe3, 0xff,
  ],
  attr: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00, 0x00],
  gc: GC_PLANAR,
};
const MODE11: StdMode = {
  ...MODE12,
  mono: true,
  attr: [0x00, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x01, 0x00, 0x0f, 0x00, 0x00],
};
const MODE04: StdMode = {
  kind: 'cga2',
  dac: 'cga',
  width: 320,
  height: 200,
  cols: 40,
  rows: 25,
  charHeight: 8,
  misc: 0x63,
  seq: [0x03, 0x09, 0x03, 0x00, 0x02],
  crtc: [
    0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x14, 0x00, 0x96,
    0xb9, 0xa2, 0xff,
  ],
  attr: [0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x01, 0x00, 0x03, 0x00, 0x00],
  gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0f, 0x0f, 0xff],
};
const MODE06: StdMode = {
  kind: 'cga1',
  dac: 'cga',
  width: 640,
  height: 200,
  cols: 80,
  rows: 25,
  charHeight: 8,
  misc: 0x63,
  seq: [0x03, 0x01, 0x01, 0x00, 0x06],
  crtc: [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x00, 0x96,
    0xb9, 0xc2, 0xff,
  ],
  attr: [0x00, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x01, 0x00, 0x01, 0x00, 0x00],
  gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x0f, 0xff],
};
const STD_MODES: Record<number, StdMode> = {
  0x00: MODE1,
  0x01: MODE1,
  0x02: MODE3,
  0x03: MODE3,
  0x04: MODE04,
  0x05: MODE04,
  0x06: MODE06,
  0x0d: MODE0D,
  0x0e: MODE0E,
  0x10: MODE10,
  0x11: MODE11,
  0x12: MODE12,
  0x13: MODE13,
};

/** Linear address of the first byte of pixel row `y` in a graphics mode, and bytes per row. */
function rowAddr(m: StdMode, y: number): number {
  if (m.kind === 'linear8') return 0xa0000 + y * 320;
  if (m.kind === 'planar') return 0xa0000 + y * (m.width >> 3);
  return 0xb8000 + (y & 1) * 0x2000 + (y >> 1) * 80;
}

/** Bytes one character cell is wide in a graphics mode. */
function cellBytes(m: StdMode): number {
  return m.kind === 'linear8' ? 8 : m.kind === 'cga2' ? 2 : 1;
}

/** The 200-line modes' DAC: the 16 CGA colours at 0-7 and 0x10-0x17 (bit 4 = intensity). */
function cgaColor(i: number): [number, number, number] {
  const c = (bit: number) => ((i >> bit) & 1) * 42 + ((i >> 4) & 1) * 21;
  const rgb: [number, number, number] = [c(2), c(1), c(0)];
  if ((i & 0x17) === 0x06) rgb[1] = 21; // brown, as on a CGA monitor
  return rgb;
}

export interface VbeMode {
  number: number;
  width: number;
  height: number;
  bpp: number;
}

const VBE_MODE_LIST: VbeMode[] = [
  { number: 0x100, width: 640, height: 400, bpp: 8 },
  { number: 0x101, width: 640, height: 480, bpp: 8 },
  { number: 0x103, width: 800, height: 600, bpp: 8 },
  { number: 0x105, width: 1024, height: 768, bpp: 8 },
  { number: 0x110, width: 640, height: 480, bpp: 15 },
  { number: 0x111, width: 640, height: 480, bpp: 16 },
  { number: 0x112, width: 640, height: 480, bpp: 24 },
  { number: 0x113, width: 800, height: 600, bpp: 15 },
  { number: 0x114, width: 800, height: 600, bpp: 16 },
  { number: 0x115, width: 800, height: 600, bpp: 24 },
  { number: 0x116, width: 1024, height: 768, bpp: 15 },
  { number: 0x117, width: 1024, height: 768, bpp: 16 },
  { number: 0x118, width: 1024, height: 768, bpp: 24 },
  { number: 0x11a, width: 1280, height: 1024, bpp: 16 },
  { number: 0x11b, width: 1280, height: 1024, bpp: 24 },
  { number: 0x140, width: 640, height: 480, bpp: 32 },
  { number: 0x141, width: 800, height: 600, bpp: 32 },
  { number: 0x142, width: 1024, height: 768, bpp: 32 },
  { number: 0x143, width: 1280, height: 1024, bpp: 32 },
  { number: 0x144, width: 1280, height: 720, bpp: 32 },
  { number: 0x145, width: 1920, height: 1080, bpp: 32 },
];

const VBE_INDEX = 0x1ce;
const VBE_DATA = 0x1cf;
const DISPI_ID = 0,
  DISPI_XRES = 1,
  DISPI_YRES = 2,
  DISPI_BPP = 3,
  DISPI_ENABLE = 4,
  DISPI_BANK = 5,
  DISPI_VIRT_WIDTH = 6,
  DISPI_X_OFFSET = 8,
  DISPI_Y_OFFSET = 9,
  DISPI_VIDEO_MEMORY_64K = 0x0a;
const DISPI_ENABLED = 0x01,
  DISPI_LFB_ENABLED = 0x40,
  DISPI_NOCLEARMEM = 0x80;

function bytesPerPixel(bpp: number): number {
  return bpp === 15 ? 2 : Math.ceil(bpp / 8);
}

/** The EGA/VGA 64-colour palette (6-bit DAC values): bits rgbRGB. */
function egaColor(i: number): [number, number, number] {
  const c = (hi: number, lo: number) => ((i >> hi) & 1) * 42 + ((i >> lo) & 1) * 21;
  return [c(2, 5), c(1, 4), c(0, 3)];
}

/** The default 256-colour palette of mode 13h: CGA colours, a grey ramp, then hue wheels. */
function mode13Palette(): [number, number, number][] {
  const pal: [number, number, number][] = [];
  const cga = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f];
  for (const c of cga) pal.push(egaColor(c));
  const greys = [0, 5, 8, 11, 14, 17, 20, 24, 28, 32, 36, 40, 45, 50, 56, 63];
  for (const g of greys) pal.push([g, g, g]);
  const wheel = (hi: number, lo: number): [number, number, number][] => {
    const steps = [lo, lo + (hi - lo) / 4, lo + (hi - lo) / 2, lo + ((hi - lo) * 3) / 4, hi].map(Math.round);
    const out: [number, number, number][] = [];
    // Blue -> magenta -> red -> yellow -> green -> cyan -> back, 24 entries.
    for (const s of steps.slice(0, 4)) out.push([s, lo, hi]);
    for (const s of [...steps].reverse().slice(0, 4)) out.push([hi, lo, s]);
    for (const s of steps.slice(0, 4)) out.push([hi, s, lo]);
    for (const s of [...steps].reverse().slice(0, 4)) out.push([s, hi, lo]);
    for (const s of steps.slice(0, 4)) out.push([lo, hi, s]);
    for (const s of [...steps].reverse().slice(0, 4)) out.push([lo, s, hi]);
    return out;
  };
  for (const [hi, lo] of [
    [63, 0],
    [63, 31],
    [63, 45],
    [28, 0],
    [28, 14],
    [28, 20],
    [16, 0],
    [16, 8],
    [16, 11],
  ]) {
    pal.push(...wheel(hi, lo));
  }
  while (pal.length < 256) pal.push([0, 0, 0]);
  return pal;
}

export class VideoBios {
  /** Linear framebuffer address (BAR0 of the VGA), found at POST. */
  lfbAddress = 0xe0000000;
  vramBytes = 16 * 1024 * 1024;
  vbeMode = 0;
  /** Far pointers written at POST into the ROM for VBE 4F00. */
  private vbeModeListPtr = 0;
  private vbeOemStringPtr = 0;
  private modes: VbeMode[] = [];

  constructor(private readonly env: BiosEnv) {}

  private get mem() {
    return this.env.mem;
  }
  private out(p: number, v: number) {
    this.env.io.out8(p, v);
  }
  private in(p: number) {
    return this.env.io.in8(p);
  }
  private seq(i: number, v: number) {
    this.out(0x3c4, i);
    this.out(0x3c5, v);
  }
  private crtc(i: number, v: number) {
    this.out(0x3d4, i);
    this.out(0x3d5, v);
  }
  private crtcRead(i: number): number {
    this.out(0x3d4, i);
    return this.in(0x3d5);
  }
  private gc(i: number, v: number) {
    this.out(0x3ce, i);
    this.out(0x3cf, v);
  }
  private attrWrite(i: number, v: number) {
    this.in(0x3da);
    this.out(0x3c0, i);
    this.out(0x3c0, v);
    this.out(0x3c0, 0x20);
  }
  private attrRead(i: number): number {
    this.in(0x3da);
    this.out(0x3c0, i);
    const v = this.in(0x3c1);
    this.in(0x3da);
    this.out(0x3c0, 0x20);
    return v;
  }
  private dacWrite(i: number, rgb: [number, number, number]) {
    this.out(0x3c8, i);
    this.out(0x3c9, rgb[0]);
    this.out(0x3c9, rgb[1]);
    this.out(0x3c9, rgb[2]);
  }
  private dispiWrite(i: number, v: number) {
    this.env.io.out16(VBE_INDEX, i);
    this.env.io.out16(VBE_DATA, v);
  }
  private dispiRead(i: number): number {
    this.env.io.out16(VBE_INDEX, i);
    return this.env.io.in16(VBE_DATA);
  }

  hasDispi(): boolean {
    const id = this.dispiRead(DISPI_ID);
    return id >= 0xb0c0 && id <= 0xb0cf;
  }

  /** POST: find the framebuffer, build the VBE tables in ROM, set mode 3. */
  init(lfbAddress: number | null): void {
    this.prepareVbe(lfbAddress);
    this.setMode(0x03, false);
  }

  /** The VBE mode list and strings in ROM, and the LFB address (also after a saved state is loaded). */
  prepareVbe(lfbAddress: number | null): void {
    if (lfbAddress) this.lfbAddress = lfbAddress;
    if (this.hasDispi()) {
      const mem64k = this.dispiRead(DISPI_VIDEO_MEMORY_64K);
      if (mem64k) this.vramBytes = mem64k * 65536;
    }
    this.modes = VBE_MODE_LIST.filter((m) => m.width * m.height * bytesPerPixel(m.bpp) <= this.vramBytes);
    // VBE strings and mode list in the ROM tables area, near its end.
    const base = ROM_BASE + RomOffset.TABLES_END - 0x200;
    const oem = new TextEncoder().encode('Boxwood VBE (Bochs DISPI)\0');
    this.env.writeRom(base, oem);
    this.vbeOemStringPtr = (ROM_SEGMENT << 16) | (base - ROM_BASE);
    const list = new Uint8Array(2 * (this.modes.length + 1));
    const dv = new DataView(list.buffer);
    this.modes.forEach((m, i) => dv.setUint16(2 * i, m.number, true));
    dv.setUint16(2 * this.modes.length, 0xffff, true);
    this.env.writeRom(base + 0x40, list);
    this.vbeModeListPtr = (ROM_SEGMENT << 16) | (base + 0x40 - ROM_BASE);
  }

  // ------------------------------------------------------------------ mode setting

  private currentMode(): number {
    return this.mem.read8(BDA.VIDEO_MODE) & 0x7f;
  }
  private std(): StdMode | null {
    if (this.vbeMode) return null;
    return STD_MODES[this.currentMode()] ?? null;
  }

  setMode(mode: number, noClear: boolean): boolean {
    const m = STD_MODES[mode];
    if (!m) return false;
    if (this.hasDispi()) this.dispiWrite(DISPI_ENABLE, 0);
    this.vbeMode = 0;
    this.in(0x3da);
    this.out(0x3c0, 0x00); // screen off while reprogramming
    this.out(0x3c2, m.misc);
    this.seq(0, 0x01);
    for (let i = 1; i < 5; i++) this.seq(i, m.seq[i]);
    this.seq(0, 0x03);
    this.crtc(0x11, this.crtcRead(0x11) & 0x7f);
    m.crtc.forEach((v, i) => this.crtc(i, v));
    this.in(0x3da);
    m.attr.forEach((v, i) => {
      this.out(0x3c0, i);
      this.out(0x3c0, v);
    });
    m.gc.forEach((v, i) => this.gc(i, v));
    this.out(0x3c6, 0xff);
    if (m.kind === 'linear8') mode13Palette().forEach((c, i) => this.dacWrite(i, c));
    else for (let i = 0; i < 64; i++) this.dacWrite(i, m.dac === 'cga' ? cgaColor(i) : egaColor(i));
    this.in(0x3da);
    this.out(0x3c0, 0x20);

    const w8 = (a: number, v: number) => this.mem.write8(a, v);
    const w16 = (a: number, v: number) => this.mem.write16(a, v);
    w8(BDA.VIDEO_MODE, mode);
    w16(BDA.VIDEO_COLS, m.cols);
    w16(BDA.VIDEO_PAGE_START, 0);
    for (let i = 0; i < 16; i++) w8(BDA.CURSOR_POS + i, 0);
    w8(BDA.VIDEO_PAGE, 0);
    w16(BDA.CRTC_ADDRESS, 0x3d4);
    w8(BDA.VIDEO_MSR, m.kind === 'text' ? 0x29 : 0x09);
    w8(BDA.VIDEO_PAL, 0x30);
    w8(BDA.VIDEO_ROWS, m.rows - 1);
    w8(BDA.CHAR_HEIGHT, m.charHeight);
    w8(BDA.CHAR_HEIGHT + 1, 0);
    w8(BDA.VIDEO_CTL, 0x60 | (noClear ? 0x80 : 0));
    w8(BDA.VIDEO_SWITCHES, 0xf9);
    w8(BDA.VIDEO_MODESET_CTL, 0x51);
    w8(BDA.DCC_INDEX, 0x08);
    if (m.kind === 'text') {
      w16(BDA.VIDEO_PAGE_SIZE, m.cols === 80 ? 0x1000 : 0x800);
      this.loadFont(RomOffset.FONT_8X16, 16, 0, 256, 0);
      if (!noClear) for (let a = 0; a < 0x8000; a += 2) w16(0xb8000 + a, 0x0720);
      this.setCursorShape(0x06, 0x07);
    } else {
      w16(
        BDA.VIDEO_PAGE_SIZE,
        m.kind === 'linear8' ? 0xfa00 : m.kind === 'planar' ? Math.ceil(((m.width >> 3) * m.height) / 0x100) * 0x100 : 0x4000,
      );
      if (!noClear) this.clearGraphics(m);
    }
    this.updateCursor();
    return true;
  }

  private clearGraphics(m: StdMode): void {
    if (m.kind === 'cga2' || m.kind === 'cga1') {
      for (let a = 0; a < 0x8000; a += 4) this.mem.write32(0xb8000 + a, 0);
      return;
    }
    if (m.kind === 'planar') this.seq(2, 0x0f);
    for (let a = 0; a < 0x10000; a += 4) this.mem.write32(0xa0000 + a, 0);
  }

  /** Loads `count` glyphs of `height` bytes from the ROM font at `romOff` into plane 2 (block `block`). */
  loadFont(romOff: number, height: number, first: number, count: number, block: number, src?: number): void {
    const srcAddr = src ?? ROM_BASE + romOff;
    // Plane 2, sequential addressing, A0000 window.
    this.seq(0, 0x01);
    this.seq(2, 0x04);
    this.seq(4, 0x07);
    this.seq(0, 0x03);
    this.gc(4, 0x02);
    this.gc(5, 0x00);
    this.gc(6, 0x04);
    const blockBase = [0x0000, 0x4000, 0x8000, 0xc000, 0x2000, 0x6000, 0xa000, 0xe000][block & 7];
    for (let c = 0; c < count; c++) {
      const dst = 0xa0000 + blockBase + (first + c) * 32;
      for (let y = 0; y < 32; y++) this.mem.write8(dst + y, y < height ? this.mem.read8(srcAddr + c * height + y) : 0);
    }
    this.seq(0, 0x01);
    this.seq(2, 0x03);
    this.seq(4, 0x02);
    this.seq(0, 0x03);
    this.gc(4, 0x00);
    this.gc(5, 0x10);
    this.gc(6, 0x0e);
  }

  /** After loading a font of `height` lines into a text mode: rows, cursor, BDA (AX=111xh). */
  private applyCharHeight(height: number): void {
    const scanLines = 400;
    const rows = Math.floor(scanLines / height);
    this.crtc(0x09, (this.crtcRead(0x09) & 0xe0) | (height - 1));
    this.crtc(0x0a, height - 2);
    this.crtc(0x0b, height - 1);
    const vde = rows * height - 1;
    this.crtc(0x12, vde & 0xff);
    let ovf = this.crtcRead(0x07) & ~0x42;
    if (vde & 0x100) ovf |= 0x02;
    if (vde & 0x200) ovf |= 0x40;
    this.crtc(0x07, ovf);
    this.mem.write8(BDA.VIDEO_ROWS, rows - 1);
    this.mem.write16(BDA.CHAR_HEIGHT, height);
    const cols = this.mem.read16(BDA.VIDEO_COLS);
    this.mem.write16(BDA.VIDEO_PAGE_SIZE, Math.ceil((cols * rows * 2) / 0x100) * 0x100);
  }

  // ------------------------------------------------------------------ cursor and text

  private cursor(page: number): { row: number; col: number } {
    return { col: this.mem.read8(BDA.CURSOR_POS + page * 2), row: this.mem.read8(BDA.CURSOR_POS + page * 2 + 1) };
  }

  private setCursor(page: number, row: number, col: number): void {
    this.mem.write8(BDA.CURSOR_POS + page * 2, col);
    this.mem.write8(BDA.CURSOR_POS + page * 2 + 1, row);
    if (page === this.mem.read8(BDA.VIDEO_PAGE)) this.updateCursor();
  }

  private updateCursor(): void {
    const page = this.mem.read8(BDA.VIDEO_PAGE);
    const { row, col } = this.cursor(page);
    const cols = this.mem.read16(BDA.VIDEO_COLS) || 80;
    const pos = (this.mem.read16(BDA.VIDEO_PAGE_START) >> 1) + row * cols + col;
    this.crtc(0x0e, (pos >> 8) & 0xff);
    this.crtc(0x0f, pos & 0xff);
  }

  private setCursorShape(start: number, end: number): void {
    this.mem.write16(BDA.CURSOR_SHAPE, (start << 8) | end);
    const h = this.mem.read8(BDA.CHAR_HEIGHT) || 16;
    let s = start & 0x3f;
    let e = end & 0x1f;
    // CGA-compatible cursor emulation: scale 8-line shapes to the character height.
    if (!(this.mem.read8(BDA.VIDEO_CTL) & 1) && h > 8 && e < 8 && s < 0x20) {
      if (e !== s + 1) s = Math.floor(((s + 1) * h) / 8) - 1;
      else s = Math.floor(((e + 1) * h) / 8) - 2;
      e = Math.floor(((e + 1) * h) / 8) - 1;
    }
    this.crtc(0x0a, s | (start & 0x20));
    this.crtc(0x0b, e);
  }

  private textAddr(page: number, row: number, col: number): number {
    const cols = this.mem.read16(BDA.VIDEO_COLS) || 80;
    const pageSize = this.mem.read16(BDA.VIDEO_PAGE_SIZE) || 0x1000;
    return 0xb8000 + page * pageSize + (row * cols + col) * 2;
  }

  private rows(): number {
    return this.mem.read8(BDA.VIDEO_ROWS) + 1;
  }
  private cols(): number {
    return this.mem.read16(BDA.VIDEO_COLS) || 80;
  }

  /** Draws a glyph in a graphics mode at character cell (row, col); colour bit 7 = XOR. */
  private drawGlyph(m: StdMode, row: number, col: number, ch: number, color: number): void {
    const h = m.charHeight;
    const font = ROM_BASE + (h === 8 ? RomOffset.FONT_8X8_FULL : h === 14 ? RomOffset.FONT_8X14 : RomOffset.FONT_8X16);
    const xor = (color & 0x80) !== 0;
    const cb = cellBytes(m);
    for (let y = 0; y < h; y++) {
      const bits = this.mem.read8(font + ch * h + y);
      const a = rowAddr(m, row * h + y) + col * cb;
      if (m.kind === 'linear8') {
        for (let x = 0; x < 8; x++) {
          const on = (bits >> (7 - x)) & 1;
          if (xor) {
            if (on) this.mem.write8(a + x, this.mem.read8(a + x) ^ (color & 0x7f));
          } else this.mem.write8(a + x, on ? color : 0);
        }
      } else if (m.kind === 'cga2') {
        let word = 0;
        for (let x = 0; x < 8; x++) if ((bits >> (7 - x)) & 1) word |= (color & 3) << (14 - 2 * x);
        const hi = word >> 8,
          lo = word & 0xff;
        this.mem.write8(a, xor ? this.mem.read8(a) ^ hi : hi);
        this.mem.write8(a + 1, xor ? this.mem.read8(a + 1) ^ lo : lo);
      } else if (m.kind === 'cga1') {
        const v = color & 1 ? bits : 0;
        this.mem.write8(a, xor ? this.mem.read8(a) ^ v : v);
      } else {
        for (let p = 0; p < 4; p++) {
          this.seq(2, 1 << p);
          this.gc(4, p);
          const set = (color >> p) & 1 ? bits : 0;
          this.mem.write8(a, xor ? this.mem.read8(a) ^ set : set);
        }
      }
    }
    if (m.kind === 'planar') {
      this.seq(2, 0x0f);
      this.gc(4, 0);
    }
  }

  private writeCell(page: number, row: number, col: number, ch: number, attr: number | null): void {
    const m = this.std();
    if (!m) return;
    if (m.kind === 'text') {
      const a = this.textAddr(page, row, col);
      this.mem.write8(a, ch);
      if (attr !== null) this.mem.write8(a + 1, attr);
    } else {
      this.drawGlyph(m, row, col, ch, attr ?? 0x0f);
    }
  }

  private readCell(page: number, row: number, col: number): number {
    const m = this.std();
    if (!m || m.kind !== 'text') return 0;
    return this.mem.read16(this.textAddr(page, row, col));
  }

  /** Scrolls the window up (dir > 0) or down by `lines` (0 = clear), filling with `attr`. */
  private scroll(lines: number, attr: number, top: number, left: number, bottom: number, right: number, up: boolean, page?: number): void {
    const m = this.std();
    if (!m) return;
    const rows = this.rows();
    const cols = this.cols();
    bottom = Math.min(bottom, rows - 1);
    right = Math.min(right, cols - 1);
    if (top > bottom || left > right) return;
    const height = bottom - top + 1;
    if (lines === 0 || lines > height) lines = height;
    const pg = page ?? this.mem.read8(BDA.VIDEO_PAGE);
    if (m.kind === 'text') {
      const moveRow = (dst: number, src: number) => {
        for (let c = left; c <= right; c++) this.mem.write16(this.textAddr(pg, dst, c), this.mem.read16(this.textAddr(pg, src, c)));
      };
      const clearRow = (r: number) => {
        for (let c = left; c <= right; c++) this.mem.write16(this.textAddr(pg, r, c), (attr << 8) | 0x20);
      };
      if (up) {
        for (let r = top; r <= bottom - lines; r++) moveRow(r, r + lines);
        for (let r = bottom - lines + 1; r <= bottom; r++) clearRow(r);
      } else {
        for (let r = bottom; r >= top + lines; r--) moveRow(r, r - lines);
        for (let r = top; r < top + lines; r++) clearRow(r);
      }
      return;
    }
    // Graphics: copy character rows as runs of pixel-row bytes, plane by plane when planar.
    const h = m.charHeight;
    const cb = cellBytes(m);
    const x0 = left * cb;
    const n = (right - left + 1) * cb;
    const planes = m.kind === 'planar' ? 4 : 1;
    for (let p = 0; p < planes; p++) {
      if (m.kind === 'planar') {
        this.seq(2, 1 << p);
        this.gc(4, p);
      }
      const fillByte =
        m.kind === 'planar'
          ? (attr >> p) & 1
            ? 0xff
            : 0
          : m.kind === 'linear8'
            ? attr
            : m.kind === 'cga2'
              ? (attr & 3) * 0x55
              : attr & 1
                ? 0xff
                : 0;
      const copy = (dstRow: number, srcRow: number) => {
        for (let y = 0; y < h; y++) {
          const d = rowAddr(m, dstRow * h + y) + x0;
          const s = rowAddr(m, srcRow * h + y) + x0;
          for (let i = 0; i < n; i++) this.mem.write8(d + i, this.mem.read8(s + i));
        }
      };
      const fill = (r: number) => {
        for (let y = 0; y < h; y++) {
          const d = rowAddr(m, r * h + y) + x0;
          for (let i = 0; i < n; i++) this.mem.write8(d + i, fillByte);
        }
      };
      if (up) {
        for (let r = top; r <= bottom - lines; r++) copy(r, r + lines);
        for (let r = bottom - lines + 1; r <= bottom; r++) fill(r);
      } else {
        for (let r = bottom; r >= top + lines; r--) copy(r, r - lines);
        for (let r = top; r < top + lines; r++) fill(r);
      }
    }
    if (m.kind === 'planar') {
      this.seq(2, 0x0f);
      this.gc(4, 0);
    }
  }

  /** INT 10h AH=0Eh semantics; also used for BIOS messages. */
  teletype(ch: number, page = this.mem.read8(BDA.VIDEO_PAGE), color: number | null = null): void {
    let { row, col } = this.cursor(page);
    const cols = this.cols();
    const rows = this.rows();
    const m = this.std();
    if (ch === 0x07) return;
    if (ch === 0x08) {
      if (col > 0) col--;
    } else if (ch === 0x0d) col = 0;
    else if (ch === 0x0a) row++;
    else {
      this.writeCell(page, row, col, ch, m && m.kind !== 'text' ? (color ?? 0x0f) : null);
      col++;
    }
    if (col >= cols) {
      col = 0;
      row++;
    }
    if (row >= rows) {
      const attr = m && m.kind === 'text' ? this.mem.read8(this.textAddr(page, rows - 1, cols - 1) + 1) : 0;
      this.scroll(1, attr || 0x07, 0, 0, rows - 1, cols - 1, true, page);
      row = rows - 1;
    }
    this.setCursor(page, row, col);
  }

  print(text: string): void {
    for (const c of text) this.teletype(c.charCodeAt(0) & 0xff);
  }

  // ------------------------------------------------------------------ INT 10h

  handle(r: Regs): void {
    const ah = r.ah;
    switch (ah) {
      case 0x00: {
        const mode = r.al & 0x7f;
        if (this.setMode(mode, (r.al & 0x80) !== 0)) {
          r.al = mode <= 0x03 || mode === 0x07 ? 0x30 : mode === 0x06 ? 0x3f : 0x20;
        }
        return;
      }
      case 0x01:
        this.setCursorShape(r.ch, r.cl);
        return;
      case 0x02:
        this.setCursor(r.bh & 7, r.dh, r.dl);
        return;
      case 0x03: {
        const { row, col } = this.cursor(r.bh & 7);
        r.dx = (row << 8) | col;
        r.cx = this.mem.read16(BDA.CURSOR_SHAPE);
        r.ax = 0;
        return;
      }
      case 0x04:
        r.ah = 0; // no light pen
        return;
      case 0x05: {
        const page = r.al & 7;
        const size = this.mem.read16(BDA.VIDEO_PAGE_SIZE);
        this.mem.write8(BDA.VIDEO_PAGE, page);
        this.mem.write16(BDA.VIDEO_PAGE_START, page * size);
        const start = (page * size) >> 1;
        this.crtc(0x0c, start >> 8);
        this.crtc(0x0d, start & 0xff);
        this.updateCursor();
        return;
      }
      case 0x06:
      case 0x07:
        this.scroll(r.al, r.bh, r.ch, r.cl, r.dh, r.dl, ah === 0x06);
        return;
      case 0x08: {
        const page = r.bh & 7;
        const { row, col } = this.cursor(page);
        r.ax = this.readCell(page, row, col);
        return;
      }
      case 0x09:
      case 0x0a: {
        const page = r.bh & 7;
        const { row, col } = this.cursor(page);
        const cols = this.cols();
        const m = this.std();
        const attr = ah === 0x09 || (m && m.kind !== 'text') ? r.bl : null;
        let c = col,
          rr = row;
        for (let i = 0; i < r.cx; i++) {
          this.writeCell(page, rr, c, r.al, attr);
          if (++c >= cols) {
            c = 0;
            if (++rr >= this.rows()) break;
          }
        }
        return;
      }
      case 0x0b:
        if (r.bh === 0) this.attrWrite(0x11, r.bl & 0x0f);
        return;
      case 0x0c:
        this.writePixel(r.cx, r.dx, r.al);
        return;
      case 0x0d:
        r.al = this.readPixel(r.cx, r.dx);
        return;
      case 0x0e:
        this.teletype(r.al, this.mem.read8(BDA.VIDEO_PAGE), r.bl);
        return;
      case 0x0f:
        r.al = this.vbeMode ? 0x03 : this.mem.read8(BDA.VIDEO_MODE) | (this.mem.read8(BDA.VIDEO_CTL) & 0x80);
        r.ah = this.cols();
        r.bh = this.mem.read8(BDA.VIDEO_PAGE);
        return;
      case 0x10:
        this.palette(r);
        return;
      case 0x11:
        this.font(r);
        return;
      case 0x12:
        this.alternate(r);
        return;
      case 0x13:
        this.writeString(r);
        return;
      case 0x1a:
        if (r.al === 0x00) {
          r.al = 0x1a;
          r.bx = 0x0008;
        } else if (r.al === 0x01) r.al = 0x1a;
        return;
      case 0x1b:
        this.functionality(r);
        return;
      case 0x4f:
        this.vbe(r);
        return;
      default:
        return;
    }
  }

  private writePixel(x: number, y: number, color: number): void {
    const m = this.std();
    if (!m || m.kind === 'text' || x >= m.width || y >= m.height) return;
    const xor = (color & 0x80) !== 0;
    const row = rowAddr(m, y);
    if (m.kind === 'linear8') {
      const a = row + x;
      this.mem.write8(a, xor ? this.mem.read8(a) ^ (color & 0x7f) : color);
    } else if (m.kind === 'cga2' || m.kind === 'cga1') {
      const bpp = m.kind === 'cga2' ? 2 : 1;
      const perByte = 8 / bpp;
      const a = row + Math.floor(x / perByte);
      const shift = (perByte - 1 - (x % perByte)) * bpp;
      const mask = ((1 << bpp) - 1) << shift;
      const c = ((color & ((1 << bpp) - 1)) << shift) & mask;
      const old = this.mem.read8(a);
      this.mem.write8(a, xor ? old ^ c : (old & ~mask) | c);
    } else {
      const a = row + (x >> 3);
      const bit = 0x80 >> (x & 7);
      if (m.mono) color &= 0x81;
      for (let p = 0; p < 4; p++) {
        this.seq(2, 1 << p);
        this.gc(4, p);
        let v = this.mem.read8(a);
        const on = (color >> p) & 1;
        if (xor) v ^= on ? bit : 0;
        else v = on ? v | bit : v & ~bit;
        this.mem.write8(a, v);
      }
      this.seq(2, 0x0f);
      this.gc(4, 0);
    }
  }

  private readPixel(x: number, y: number): number {
    const m = this.std();
    if (!m || m.kind === 'text' || x >= m.width || y >= m.height) return 0;
    const row = rowAddr(m, y);
    if (m.kind === 'linear8') return this.mem.read8(row + x);
    if (m.kind === 'cga2' || m.kind === 'cga1') {
      const bpp = m.kind === 'cga2' ? 2 : 1;
      const perByte = 8 / bpp;
      const shift = (perByte - 1 - (x % perByte)) * bpp;
      return (this.mem.read8(row + Math.floor(x / perByte)) >> shift) & ((1 << bpp) - 1);
    }
    const a = row + (x >> 3);
    let c = 0;
    for (let p = 0; p < (m.mono ? 1 : 4); p++) {
      this.gc(4, p);
      if (this.mem.read8(a) & (0x80 >> (x & 7))) c |= 1 << p;
    }
    this.gc(4, 0);
    return c;
  }

  private palette(r: Regs): void {
    const mem = this.mem;
    switch (r.al) {
      case 0x00:
        if (r.bl < 0x14) this.attrWrite(r.bl, r.bh);
        return;
      case 0x01:
        this.attrWrite(0x11, r.bh);
        return;
      case 0x02: {
        const a = r.esAddr(r.dx);
        for (let i = 0; i < 16; i++) this.attrWrite(i, mem.read8(a + i));
        this.attrWrite(0x11, mem.read8(a + 16));
        return;
      }
      case 0x03: {
        const v = this.attrRead(0x10);
        this.attrWrite(0x10, r.bl ? v | 0x08 : v & ~0x08);
        return;
      }
      case 0x07:
        r.bh = this.attrRead(r.bl & 0x1f);
        return;
      case 0x08:
        r.bh = this.attrRead(0x11);
        return;
      case 0x09: {
        const a = r.esAddr(r.dx);
        for (let i = 0; i < 16; i++) mem.write8(a + i, this.attrRead(i));
        mem.write8(a + 16, this.attrRead(0x11));
        return;
      }
      case 0x10:
        this.dacWrite(r.bx & 0xff, [r.dh, r.ch, r.cl]);
        return;
      case 0x12: {
        const a = r.esAddr(r.dx);
        this.out(0x3c8, r.bx & 0xff);
        for (let i = 0; i < r.cx * 3; i++) this.out(0x3c9, mem.read8(a + i));
        return;
      }
      case 0x15:
        this.out(0x3c7, r.bx & 0xff);
        r.dh = this.in(0x3c9);
        r.ch = this.in(0x3c9);
        r.cl = this.in(0x3c9);
        return;
      case 0x17: {
        const a = r.esAddr(r.dx);
        this.out(0x3c7, r.bx & 0xff);
        for (let i = 0; i < r.cx * 3; i++) mem.write8(a + i, this.in(0x3c9));
        return;
      }
      case 0x18:
        this.out(0x3c6, r.bl);
        return;
      case 0x19:
        r.bl = this.in(0x3c6);
        return;
      case 0x1a:
        r.bx = 0;
        return;
      default:
        return;
    }
  }

  private font(r: Regs): void {
    const al = r.al;
    switch (al) {
      case 0x00:
      case 0x10: {
        const h = r.bh || 16;
        this.loadFont(0, h, r.dx, r.cx, r.bl, r.esAddr(r.bp));
        if (al === 0x10) this.applyCharHeight(h);
        return;
      }
      case 0x01:
      case 0x11:
        this.loadFont(RomOffset.FONT_8X14, 14, 0, 256, r.bl);
        if (al === 0x11) this.applyCharHeight(14);
        return;
      case 0x02:
      case 0x12:
        this.loadFont(RomOffset.FONT_8X8_FULL, 8, 0, 256, r.bl);
        if (al === 0x12) this.applyCharHeight(8);
        return;
      case 0x04:
      case 0x14:
        this.loadFont(RomOffset.FONT_8X16, 16, 0, 256, r.bl);
        if (al === 0x14) this.applyCharHeight(16);
        return;
      case 0x03:
        this.seq(3, r.bl);
        return;
      case 0x20:
        this.mem.write16(0x1f * 4, r.bp);
        this.mem.write16(0x1f * 4 + 2, r.es);
        return;
      case 0x21:
      case 0x22:
      case 0x23:
      case 0x24: {
        const fonts: Record<number, [number, number]> = {
          0x22: [RomOffset.FONT_8X14, 14],
          0x23: [RomOffset.FONT_8X8_FULL, 8],
          0x24: [RomOffset.FONT_8X16, 16],
        };
        let seg = ROM_SEGMENT,
          off: number,
          h: number;
        if (al === 0x21) {
          seg = r.es;
          off = r.bp;
          h = r.cx;
        } else [off, h] = fonts[al];
        this.mem.write16(0x43 * 4, off);
        this.mem.write16(0x43 * 4 + 2, seg);
        const rowsCode = r.bl;
        const rows = rowsCode === 1 ? 14 : rowsCode === 2 ? 25 : rowsCode === 3 ? 43 : r.dl;
        this.mem.write8(BDA.VIDEO_ROWS, rows - 1);
        this.mem.write16(BDA.CHAR_HEIGHT, h);
        return;
      }
      case 0x30: {
        const ptrs: Record<number, [number, number]> = {
          2: [ROM_SEGMENT, RomOffset.FONT_8X14],
          3: [ROM_SEGMENT, RomOffset.FONT_8X8],
          4: [ROM_SEGMENT, RomOffset.FONT_8X8_FULL + 128 * 8],
          5: [ROM_SEGMENT, RomOffset.FONT_8X14],
          6: [ROM_SEGMENT, RomOffset.FONT_8X16],
          7: [ROM_SEGMENT, RomOffset.FONT_8X16],
        };
        let seg: number, off: number;
        if (r.bh === 0 || r.bh === 1) {
          const v = r.bh === 0 ? 0x1f : 0x43;
          off = this.mem.read16(v * 4);
          seg = this.mem.read16(v * 4 + 2);
        } else [seg, off] = ptrs[r.bh] ?? [ROM_SEGMENT, RomOffset.FONT_8X16];
        r.es = seg;
        r.bp = off;
        r.cx = this.mem.read16(BDA.CHAR_HEIGHT);
        r.dl = this.mem.read8(BDA.VIDEO_ROWS);
        return;
      }
      default:
        return;
    }
  }

  private alternate(r: Regs): void {
    switch (r.bl) {
      case 0x10:
        r.bh = 0; // colour
        r.bl = 3; // 256 KiB
        r.cx = 0x0009;
        return;
      case 0x20:
        return;
      case 0x30:
      case 0x31:
      case 0x32:
      case 0x33:
      case 0x34:
      case 0x35:
      case 0x36:
        r.al = 0x12;
        return;
      default:
        return;
    }
  }

  private writeString(r: Regs): void {
    const page = r.bh & 7;
    const mode = r.al;
    const saved = this.cursor(page);
    this.setCursor(page, r.dh, r.dl);
    let a = r.esAddr(r.bp);
    let attr = r.bl;
    for (let i = 0; i < r.cx; i++) {
      const ch = this.mem.read8(a++);
      if (mode & 2) attr = this.mem.read8(a++);
      if (ch === 0x07 || ch === 0x08 || ch === 0x0a || ch === 0x0d) this.teletype(ch, page);
      else {
        const { row, col } = this.cursor(page);
        this.writeCell(page, row, col, ch, attr);
        const cols = this.cols();
        if (col + 1 >= cols) {
          this.setCursor(page, row, cols - 1);
          this.teletype(0x0d, page);
          this.teletype(0x0a, page);
        } else this.setCursor(page, row, col + 1);
      }
    }
    if (!(mode & 1)) this.setCursor(page, saved.row, saved.col);
  }

  private functionality(r: Regs): void {
    if (r.bx !== 0) return;
    const a = r.esAddr(r.di);
    const buf = new Uint8Array(64);
    const dv = new DataView(buf.buffer);
    // Static functionality table pointer: none (0:0) is tolerated by most callers.
    buf[4] = this.mem.read8(BDA.VIDEO_MODE);
    dv.setUint16(5, this.cols(), true);
    dv.setUint16(7, this.mem.read16(BDA.VIDEO_PAGE_SIZE), true);
    dv.setUint16(9, this.mem.read16(BDA.VIDEO_PAGE_START), true);
    for (let i = 0; i < 16; i++) buf[11 + i] = this.mem.read8(BDA.CURSOR_POS + i);
    dv.setUint16(27, this.mem.read16(BDA.CURSOR_SHAPE), true);
    buf[29] = this.mem.read8(BDA.VIDEO_PAGE);
    dv.setUint16(30, 0x3d4, true);
    buf[34] = this.rows();
    dv.setUint16(35, this.mem.read16(BDA.CHAR_HEIGHT), true);
    buf[37] = 0x08;
    buf[39] = 16;
    buf[41] = 8;
    buf[42] = 2; // 400 scan lines
    buf[49] = 3; // 256 KiB
    this.mem.writeBytes(a, buf);
    r.al = 0x1b;
  }

  // ------------------------------------------------------------------ VBE

  private vbe(r: Regs): void {
    const ok = () => {
      r.ax = 0x004f;
    };
    if (!this.hasDispi()) {
      r.ax = 0x0100;
      return;
    }
    switch (r.al) {
      case 0x00: {
        const a = r.esAddr(r.di);
        const wantsV2 = this.mem.read32(a) === 0x32454256; // "VBE2"
        const buf = new Uint8Array(wantsV2 ? 512 : 256);
        const dv = new DataView(buf.buffer);
        buf.set([0x56, 0x45, 0x53, 0x41], 0); // "VESA"
        dv.setUint16(4, 0x0200, true);
        dv.setUint32(6, this.vbeOemStringPtr, true);
        dv.setUint32(10, 0x00000000, true); // DAC fixed at 6 bits, VGA compatible
        dv.setUint32(14, this.vbeModeListPtr, true);
        dv.setUint16(18, Math.min(Math.floor(this.vramBytes / 65536), 0xffff), true);
        if (wantsV2) {
          dv.setUint16(20, 0x0100, true);
          dv.setUint32(22, this.vbeOemStringPtr, true);
          dv.setUint32(26, this.vbeOemStringPtr, true);
          dv.setUint32(30, this.vbeOemStringPtr, true);
        }
        this.mem.writeBytes(a, buf);
        ok();
        return;
      }
      case 0x01: {
        const mode = this.modes.find((m) => m.number === (r.cx & 0x1ff));
        if (!mode) {
          r.ax = 0x014f;
          return;
        }
        this.mem.writeBytes(r.esAddr(r.di), this.modeInfo(mode));
        ok();
        return;
      }
      case 0x02: {
        const num = r.bx & 0x1ff;
        const lfb = (r.bx & 0x4000) !== 0;
        const noClear = (r.bx & 0x8000) !== 0;
        if (num < 0x100) {
          if (!this.setMode(num, noClear)) {
            r.ax = 0x014f;
            return;
          }
          ok();
          return;
        }
        const mode = this.modes.find((m) => m.number === num);
        if (!mode) {
          r.ax = 0x014f;
          return;
        }
        this.dispiWrite(DISPI_ENABLE, 0);
        this.dispiWrite(DISPI_BPP, mode.bpp);
        this.dispiWrite(DISPI_XRES, mode.width);
        this.dispiWrite(DISPI_YRES, mode.height);
        this.dispiWrite(DISPI_BANK, 0);
        this.dispiWrite(DISPI_ENABLE, DISPI_ENABLED | (lfb ? DISPI_LFB_ENABLED : 0) | (noClear ? DISPI_NOCLEARMEM : 0));
        this.vbeMode = num | (lfb ? 0x4000 : 0);
        // 8-bpp modes use the DAC: give them the standard 256-colour palette.
        if (mode.bpp === 8) mode13Palette().forEach((c, i) => this.dacWrite(i, c));
        ok();
        return;
      }
      case 0x03:
        r.bx = this.vbeMode || this.mem.read8(BDA.VIDEO_MODE);
        ok();
        return;
      case 0x04:
        // Save/restore state: report a tiny buffer and do nothing (no caller in our guests needs it).
        if (r.dl === 0x00) r.bx = 1;
        ok();
        return;
      case 0x05:
        if (r.bh === 0) this.dispiWrite(DISPI_BANK, r.dx);
        else r.dx = this.dispiRead(DISPI_BANK);
        ok();
        return;
      case 0x06: {
        const bpp = this.dispiRead(DISPI_BPP) || 8;
        const bytes = bytesPerPixel(bpp);
        if (r.bl === 0x00) this.dispiWrite(DISPI_VIRT_WIDTH, r.cx);
        else if (r.bl === 0x02) this.dispiWrite(DISPI_VIRT_WIDTH, Math.floor(r.cx / bytes));
        const vw = this.dispiRead(DISPI_VIRT_WIDTH);
        r.bx = vw * bytes;
        r.cx = vw;
        r.dx = Math.floor(this.vramBytes / (vw * bytes || 1));
        ok();
        return;
      }
      case 0x07:
        if (r.bl === 0x00 || r.bl === 0x80) {
          this.dispiWrite(DISPI_X_OFFSET, r.cx);
          this.dispiWrite(DISPI_Y_OFFSET, r.dx);
        } else if (r.bl === 0x01) {
          r.bh = 0;
          r.cx = this.dispiRead(DISPI_X_OFFSET);
          r.dx = this.dispiRead(DISPI_Y_OFFSET);
        }
        ok();
        return;
      case 0x08:
        r.bh = 6;
        ok();
        return;
      case 0x09: {
        const a = r.esAddr(r.di);
        if (r.bl === 0x00 || r.bl === 0x80) {
          for (let i = 0; i < r.cx; i++) {
            const b = this.mem.read8(a + i * 4),
              g = this.mem.read8(a + i * 4 + 1),
              rr = this.mem.read8(a + i * 4 + 2);
            this.dacWrite(r.dx + i, [rr & 0x3f, g & 0x3f, b & 0x3f]);
          }
        } else if (r.bl === 0x01) {
          this.out(0x3c7, r.dx & 0xff);
          for (let i = 0; i < r.cx; i++) {
            const rr = this.in(0x3c9),
              g = this.in(0x3c9),
              b = this.in(0x3c9);
            this.mem.write8(a + i * 4, b);
            this.mem.write8(a + i * 4 + 1, g);
            this.mem.write8(a + i * 4 + 2, rr);
            this.mem.write8(a + i * 4 + 3, 0);
          }
        }
        ok();
        return;
      }
      case 0x0a:
        r.ax = 0x014f; // no protected-mode interface
        return;
      case 0x15:
        r.ax = 0x014f; // no DDC
        return;
      default:
        r.ax = 0x014f;
        return;
    }
  }

  modeInfo(mode: VbeMode): Uint8Array {
    const buf = new Uint8Array(256);
    const dv = new DataView(buf.buffer);
    const bpp = mode.bpp;
    const bytes = bytesPerPixel(bpp);
    const pitch = mode.width * bytes;
    // Supported, TTY output, colour, graphics, linear framebuffer.
    dv.setUint16(0, 0x009f, true);
    buf[2] = 0x07; // window A: exists, readable, writable
    buf[3] = 0x00;
    dv.setUint16(4, 64, true); // granularity KiB
    dv.setUint16(6, 64, true); // window size KiB
    dv.setUint16(8, 0xa000, true);
    dv.setUint16(10, 0x0000, true);
    dv.setUint32(12, 0, true); // window function: use INT 10h 4F05
    dv.setUint16(16, pitch, true);
    dv.setUint16(18, mode.width, true);
    dv.setUint16(20, mode.height, true);
    buf[22] = 8;
    buf[23] = 16;
    buf[24] = 1; // planes
    buf[25] = bpp;
    buf[26] = 1; // banks
    buf[27] = bpp === 8 ? 4 : 6; // packed pixel / direct colour
    buf[28] = 0;
    buf[29] = Math.max(0, Math.floor(this.vramBytes / (pitch * mode.height)) - 1);
    buf[30] = 1;
    const masks: Record<number, number[]> = {
      15: [5, 10, 5, 5, 5, 0, 1, 15],
      16: [5, 11, 6, 5, 5, 0, 0, 0],
      24: [8, 16, 8, 8, 8, 0, 0, 0],
      32: [8, 16, 8, 8, 8, 0, 8, 24],
    };
    const m = masks[bpp];
    if (m) {
      buf.set(m, 31);
      buf[39] = bpp === 32 ? 0x02 : 0x00;
    }
    dv.setUint32(40, this.lfbAddress, true);
    dv.setUint32(44, 0, true);
    dv.setUint16(48, 0, true);
    // VBE 3.0 fields.
    dv.setUint16(50, pitch, true);
    buf[52] = buf[29];
    buf[53] = buf[29];
    if (m) buf.set(m, 54);
    dv.setUint32(62, 0, true);
    return buf;
  }

  /** Modes offered (after VRAM filtering); for tests. */
  vbeModes(): VbeMode[] {
    return this.modes;
  }
}
