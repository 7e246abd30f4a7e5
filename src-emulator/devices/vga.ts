/**
 * VGA adapter with the Bochs VBE extensions, as a PCI function like QEMU's "std" VGA
 * (vendor 0x1234, device 0x1111, BAR0 = linear framebuffer).
 *
 * Video memory layout: one `vram` array serves both worlds. The four VGA planes are interleaved,
 * byte `planeAddr * 4 + plane` (so a 32-bit read at `planeAddr` gives all four planes, which makes
 * the latch and write-mode logic word-wide), and VBE modes use `vram` linearly from offset 0.
 * CPU addresses map to planes as on real hardware: chain-4 uses plane A&3 at A&~3, odd/even uses
 * plane A&1 (| 2 for planes 2/3) at A&~1, planar uses A. The CRT side scales its address counter
 * by 4 (doubleword mode), 2 (word mode) or 1 (byte mode), so mode 13h, mode X, planar and text modes
 * all fall out of the same rule.
 *
 * Output: `renderRgba()` keeps an RGBA frame at the mode's native resolution (mode 13h is 320x200,
 * text 80x25 with a 9x16 font is 720x400) and only redraws what changed: writes mark 4 KiB pages of
 * `vram` dirty, register writes force a full redraw. `takeDirtyRect()` hands out the changed area.
 */
import type { IoBus } from '../machine/io-bus';
import type { MmioHandler, PhysicalMemory } from '../machine/memory';
import type { VirtualClock } from '../machine/clock';
import type { DeviceState } from '../machine/device';
import { PciDevice } from './pci-bus';
import { VGA_FONT_8X16 } from './vga-font';
import { CP437_TO_UNICODE } from '../display/cp437';

export interface VgaOptions {
  io: IoBus;
  mem: PhysicalMemory;
  clock: VirtualClock;
  /** Video memory in MiB (config.display.vramMiB); at least 1, rounded up to a power of two for the BAR. */
  vramMiB: number;
  /**
   * A VGA BIOS image (e.g. SeaBIOS's vgabios-stdvga.bin) offered through the PCI expansion ROM BAR,
   * as QEMU's std VGA does, so a firmware that scans option ROMs runs it for this function.
   */
  romImage?: Uint8Array;
}

export type VgaMode =
  | {
      kind: 'text';
      /** Pixel size of the rendered screen. */
      width: number;
      height: number;
      cols: number;
      rows: number;
      charWidth: number;
      charHeight: number;
    }
  | {
      kind: 'graphics';
      width: number;
      height: number;
      /** 2/4 (planar or CGA-style), 8 (mode 13h / VBE 8 bpp), 15, 16, 24, 32. */
      bpp: number;
      /** True when the Bochs VBE interface drives the display. */
      vbe: boolean;
    }
  | { kind: 'blank'; width: number; height: number };

export interface DirtyRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface RgbaFrame {
  width: number;
  height: number;
  /** RGBA, row-major, `width * 4` bytes per row. Reused between calls: copy what you keep. */
  data: Uint8ClampedArray;
}

// Bochs VBE "DISPI" interface.
const VBE_INDEX_PORT = 0x1ce;
// The DISPI data port is 0x1cf: every port but the index port in 0x1ce-0x1cf reads and writes data.
const VBE_ID = 0;
const VBE_XRES = 1;
const VBE_YRES = 2;
const VBE_BPP = 3;
const VBE_ENABLE = 4;
const VBE_BANK = 5;
const VBE_VIRT_WIDTH = 6;
const VBE_VIRT_HEIGHT = 7;
const VBE_X_OFFSET = 8;
const VBE_Y_OFFSET = 9;
const VBE_VIDEO_MEMORY_64K = 10;
const VBE_ENABLED = 0x01;
const VBE_GETCAPS = 0x02;
const VBE_8BIT_DAC = 0x20;
const VBE_LFB_ENABLED = 0x40;
const VBE_NOCLEARMEM = 0x80;
const VBE_MAX_XRES = 2560;
const VBE_MAX_YRES = 1600;
const VBE_MAX_BPP = 32;

/** 60 Hz-ish frame, with the vertical retrace pulse at its end. */
const FRAME_NS = 14_268_000; // 70 Hz, the 400-line modes' refresh
const RETRACE_NS = 1_200_000;
/** Virtual time charged per status-register poll, so a retrace loop makes progress inside a CPU slice. */
const POLL_NS = 500;
/** Cursor blinks every 16 frames, characters every 32 (as the hardware counts). */
const CURSOR_BLINK_NS = FRAME_NS * 16;
const CHAR_BLINK_NS = FRAME_NS * 32;

/** Byte i of the result is 0xff where bit i of the 4-bit `m` is set. */
const PLANE_MASK = new Uint32Array(16);
for (let m = 0; m < 16; m++) {
  PLANE_MASK[m] = ((m & 1 ? 0xff : 0) | (m & 2 ? 0xff00 : 0) | (m & 4 ? 0xff0000 : 0) | (m & 8 ? 0xff000000 : 0)) >>> 0;
}

/** Power-on register values of mode 3 (80x25 colour text), so a screen is readable before any BIOS runs. */
const MODE3_SEQ = [0x03, 0x00, 0x03, 0x00, 0x02];
const MODE3_CRTC = [
  0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28,
  0x1f, 0x96, 0xb9, 0xa3, 0xff,
];
const MODE3_GC = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x0f, 0xff];
const MODE3_ATTR = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08,
  0x00,
];

/** The 16 EGA colours followed by a 6-bit greyscale/colour cube, as the VGA BIOS loads for mode 3 (DAC 0-63). */
function defaultPalette(): Uint8Array {
  const p = new Uint8Array(768);
  for (let i = 0; i < 64; i++) {
    // EGA 6-bit colour rgbRGB: primary bits weigh 2/3, secondary 1/3.
    const r = ((i >> 2) & 1) * 42 + ((i >> 5) & 1) * 21;
    const g = ((i >> 1) & 1) * 42 + ((i >> 4) & 1) * 21;
    const b = (i & 1) * 42 + ((i >> 3) & 1) * 21;
    p[i * 3] = r;
    p[i * 3 + 1] = g;
    p[i * 3 + 2] = b;
  }
  for (let i = 64; i < 256; i++) {
    const v = (i * 63) / 255;
    p[i * 3] = p[i * 3 + 1] = p[i * 3 + 2] = v;
  }
  return p;
}

interface Layout {
  key: string;
  kind: 'text' | 'graphics' | 'blank';
  width: number;
  height: number;
  // text / planar / 256-colour
  startAddr: number;
  pitch: number; // counter units per line (char row for text)
  scale: number; // address = counter * scale
  // text
  cols: number;
  rows: number;
  charWidth: number;
  charHeight: number;
  // graphics
  shift: number; // GR5 shift control: 0 = 16 colour, 1 = CGA 4 colour, 2 = 256 colour
  /** Graphics: scan lines per address row, and which row-scan bits replace address bits 13/14 (CGA/Hercules interleave: CR17 bits 0/1 clear). */
  scanPerRow: number;
  rowScanSub: number;
  /** Split screen: after this physical scan line the address restarts at 0; and physical lines per output line. */
  lineCompare: number;
  linesPerOutput: number;
  /** Horizontal pel panning in pixels (AR13). */
  pan: number;
  bpp: number;
  vbe: boolean;
  lineBytes: number; // VBE: bytes per line
  vbeStart: number; // VBE: byte offset of the first visible pixel
}

export class Vga extends PciDevice implements MmioHandler {
  readonly vram: Uint8Array;
  private readonly vram32: Uint32Array;
  private readonly vramView: DataView;
  readonly vramSize: number;
  private readonly io: IoBus;
  private readonly mem: PhysicalMemory;
  private readonly clock: VirtualClock;

  // Registers.
  private misc = 0x67;
  private seqIndex = 0;
  private readonly seq = new Uint8Array(8);
  private crtcIndex = 0;
  private readonly crtc = new Uint8Array(0x19);
  private gcIndex = 0;
  private readonly gc = new Uint8Array(9);
  private attrIndex = 0x20;
  private attrFlipFlop = false;
  private readonly attr = new Uint8Array(0x15);
  private readonly dac = new Uint8Array(768);
  private dacReadIndex = 0;
  private dacWriteIndex = 0;
  private dacComponent = 0;
  /** 0 = last DAC index write was for reading (3C7), 3 = for writing (3C8); read back at 3C7. */
  private dacState = 0;
  private pelMask = 0xff;
  private featureControl = 0;
  private vgaEnable = 1;
  private latch = 0;

  // VBE.
  private vbeIndex = 0;
  private readonly vbeRegs = new Uint16Array(11);
  private vbeId = 0xb0c5;

  // Retrace model.
  private lastPollTime = -1;
  private pollsAtTime = 0;

  // Rendering state.
  private frame: RgbaFrame = { width: 0, height: 0, data: new Uint8ClampedArray(0) };
  private frame32 = new Uint32Array(0);
  private readonly dirtyPages: Uint8Array;
  private anyDirtyPage = true;
  private fullRedraw = true;
  private lastLayoutKey = '';
  private pending: { x0: number; y0: number; x1: number; y1: number } | null = null;
  private lastCursorPhase = -1;
  private lastCharPhase = -1;
  private readonly palette32 = new Uint32Array(256);
  /** 4-bit pixel to RGBA through the attribute controller, refreshed each render. */
  private readonly lut16 = new Uint32Array(16);
  /** Host byte order is little-endian on every platform we run on; RGBA bytes = ABGR words. */
  private readonly lfb: MmioHandler;
  private lfbBase: number | null = null;

  constructor(opts: VgaOptions) {
    super('vga', { vendorId: 0x1234, deviceId: 0x1111, classCode: 0x030000, revision: 2, subsystemVendorId: 0x1af4, subsystemId: 0x1100 });
    this.io = opts.io;
    this.mem = opts.mem;
    this.clock = opts.clock;
    const mib = Math.max(1, Math.min(256, Math.ceil(opts.vramMiB)));
    let size = 1 << 20;
    while (size < mib << 20) size <<= 1;
    this.vramSize = size;
    this.vram = new Uint8Array(size);
    this.vram32 = new Uint32Array(this.vram.buffer);
    this.vramView = new DataView(this.vram.buffer);
    this.dirtyPages = new Uint8Array(size >> 12);

    this.lfb = this.makeLfbHandler();
    this.defineBar(0, {
      kind: 'mem',
      size,
      prefetchable: true,
      mmio: this.lfb,
      onRemap: (base) => {
        this.lfbBase = base;
      },
    });

    if (opts.romImage && opts.romImage.length) {
      let romSize = 2048;
      while (romSize < opts.romImage.length) romSize <<= 1;
      const rom = new Uint8Array(romSize);
      rom.set(opts.romImage);
      this.rom = rom;
      const mask = romSize - 1;
      this.romHandler = { read8: (addr) => rom[(addr - (this.romBase ?? 0)) & mask], write8: () => {} };
      this.config[0x30] = 0; // base 0, disabled
    }

    this.registerPorts();
    this.mem.mapMmio(0xa0000, 0x20000, this);
    this.resetVga();
  }

  // ------------------------------------------------------------------ PCI expansion ROM (offset 30h)

  private rom: Uint8Array | null = null;
  private romHandler: MmioHandler | null = null;
  private romBase: number | null = null;

  override writeConfig(offset: number, value: number, size: 1 | 2 | 4): void {
    if (offset >= 0x30 && offset < 0x34) {
      if (!this.rom) return; // no ROM: the register reads as zero
      let v = this.get32(0x30);
      const shift = (offset - 0x30) * 8;
      const mask = size === 4 ? 0xffffffff : ((1 << (size * 8)) - 1) << shift;
      v = ((v & ~mask) | ((value << shift) & mask)) >>> 0;
      this.set32(0x30, (v & (~(this.rom.length - 1) | 1)) >>> 0);
      this.updateMappings();
      return;
    }
    super.writeConfig(offset, value, size);
  }

  /** BARs as the base class does, plus the expansion ROM (decoded when enabled with memory space on). */
  override updateMappings(): void {
    super.updateMappings();
    if (!this.rom || !this.romHandler) return;
    const reg = this.get32(0x30);
    const base = (reg & ~(this.rom.length - 1) & ~1) >>> 0;
    const next = reg & 1 && this.command & 2 && base !== 0 && base + this.rom.length <= 0x1_0000_0000 ? base : null;
    if (next === this.romBase) return;
    const mem = this.bus?.mem ?? this.mem;
    mem.unmapMmio(this.romHandler);
    this.romBase = next;
    if (next !== null) {
      const start = next - (next % 4096);
      const end = Math.ceil((next + this.rom.length) / 4096) * 4096;
      mem.mapMmio(start, end - start, this.romHandler);
    }
  }

  // ------------------------------------------------------------------ Device

  override reset(): void {
    super.reset();
    this.resetVga();
  }

  private resetVga(): void {
    this.misc = 0x67;
    this.seq.fill(0);
    this.seq.set(MODE3_SEQ);
    this.crtc.fill(0);
    this.crtc.set(MODE3_CRTC);
    this.gc.fill(0);
    this.gc.set(MODE3_GC);
    this.attr.fill(0);
    this.attr.set(MODE3_ATTR);
    this.seqIndex = this.crtcIndex = this.gcIndex = 0;
    this.attrIndex = 0x20;
    this.attrFlipFlop = false;
    this.dac.set(defaultPalette());
    this.dacReadIndex = this.dacWriteIndex = this.dacComponent = this.dacState = 0;
    this.pelMask = 0xff;
    this.featureControl = 0;
    this.vgaEnable = 1;
    this.latch = 0;
    this.vbeIndex = 0;
    this.vbeRegs.fill(0);
    this.vbeId = 0xb0c5;
    this.vram.fill(0);
    // Blank text cells are spaces in light grey, and plane 2 holds the 8x16 font, so a text screen
    // is meaningful before (or without) a BIOS mode set.
    for (let i = 0; i < 0x4000; i += 2) {
      this.vram[i * 4] = 0x20;
      this.vram[i * 4 + 1] = 0x07;
    }
    this.loadFont(VGA_FONT_8X16, 16, 0);
    this.invalidate();
  }

  override saveState(): DeviceState {
    return {
      pci: super.saveState(),
      vram: this.vram.slice(),
      misc: this.misc,
      seqIndex: this.seqIndex,
      seq: this.seq.slice(),
      crtcIndex: this.crtcIndex,
      crtc: this.crtc.slice(),
      gcIndex: this.gcIndex,
      gc: this.gc.slice(),
      attrIndex: this.attrIndex,
      attrFlipFlop: this.attrFlipFlop,
      attr: this.attr.slice(),
      dac: this.dac.slice(),
      dacReadIndex: this.dacReadIndex,
      dacWriteIndex: this.dacWriteIndex,
      dacComponent: this.dacComponent,
      dacState: this.dacState,
      pelMask: this.pelMask,
      featureControl: this.featureControl,
      vgaEnable: this.vgaEnable,
      latch: this.latch,
      vbeIndex: this.vbeIndex,
      vbeRegs: [...this.vbeRegs],
      vbeId: this.vbeId,
    };
  }

  override loadState(s: DeviceState): void {
    super.loadState(s.pci as DeviceState);
    const vram = s.vram as Uint8Array;
    this.vram.fill(0);
    this.vram.set(vram.subarray(0, Math.min(vram.length, this.vramSize)));
    this.misc = s.misc as number;
    this.seqIndex = s.seqIndex as number;
    this.seq.set(s.seq as Uint8Array);
    this.crtcIndex = s.crtcIndex as number;
    this.crtc.set(s.crtc as Uint8Array);
    this.gcIndex = s.gcIndex as number;
    this.gc.set(s.gc as Uint8Array);
    this.attrIndex = s.attrIndex as number;
    this.attrFlipFlop = s.attrFlipFlop as boolean;
    this.attr.set(s.attr as Uint8Array);
    this.dac.set(s.dac as Uint8Array);
    this.dacReadIndex = s.dacReadIndex as number;
    this.dacWriteIndex = s.dacWriteIndex as number;
    this.dacComponent = s.dacComponent as number;
    this.dacState = s.dacState as number;
    this.pelMask = s.pelMask as number;
    this.featureControl = s.featureControl as number;
    this.vgaEnable = s.vgaEnable as number;
    this.latch = s.latch as number;
    this.vbeIndex = s.vbeIndex as number;
    this.vbeRegs.set(s.vbeRegs as number[]);
    this.vbeId = s.vbeId as number;
    this.invalidate();
  }

  // ------------------------------------------------------------------ helpers for the BIOS

  /**
   * Writes a font into plane 2 at character map `map` (0-7), `height` bytes per glyph, as INT 10h
   * AX=11xxh does (the built-in BIOS may call this instead of programming the planes by hand).
   */
  loadFont(glyphs: Uint8Array, height: number, map = 0, firstChar = 0): void {
    const base = Vga.fontMapBase(map);
    const count = Math.floor(glyphs.length / height);
    for (let c = 0; c < count && firstChar + c < 256; c++) {
      const at = base + (firstChar + c) * 32;
      for (let line = 0; line < 32; line++) this.vram[(at + line) * 4 + 2] = line < height ? glyphs[c * height + line] : 0;
    }
    this.markDirtyRange(base * 4, 256 * 32 * 4);
  }

  /** Plane-2 offset of character map `n` (the order the sequencer's character map select uses). */
  private static fontMapBase(n: number): number {
    return ((n & 3) << 14) | ((n & 4) << 11);
  }

  /** Current base of the linear framebuffer (BAR0) when decoded, for the BIOS's VBE mode info. */
  get linearFramebufferBase(): number | null {
    return this.lfbBase;
  }

  // ------------------------------------------------------------------ I/O ports

  private registerPorts(): void {
    this.io.register(0x3b0, 0x30, {
      in8: (p) => this.portRead(p),
      out8: (p, v) => this.portWrite(p, v),
      out16: (p, v) => {
        this.portWrite(p, v & 0xff);
        this.portWrite(p + 1, v >> 8);
      },
    });
    this.io.register(VBE_INDEX_PORT, 2, {
      in16: (p) => (p === VBE_INDEX_PORT ? this.vbeIndex : this.vbeRead()),
      out16: (p, v) => {
        if (p === VBE_INDEX_PORT) this.vbeIndex = v;
        else this.vbeWrite(v);
      },
      in8: (p) => (p === VBE_INDEX_PORT ? this.vbeIndex & 0xff : this.vbeRead() & 0xff),
      out8: (p, v) => {
        if (p === VBE_INDEX_PORT) this.vbeIndex = v;
        else this.vbeWrite(v);
      },
    });
  }

  /** 3Bx answers in monochrome emulation, 3Dx in colour (misc output bit 0); 3Cx always. */
  private portDecoded(port: number): boolean {
    if (port < 0x3c0) return !(this.misc & 1);
    if (port >= 0x3d0) return (this.misc & 1) !== 0;
    return true;
  }

  portRead(port: number): number {
    if (!this.portDecoded(port)) return 0xff;
    switch (port) {
      case 0x3c0:
        return this.attrIndex;
      case 0x3c1:
        return this.attr[this.attrIndex & 0x1f] ?? 0;
      case 0x3c2:
        return 0x10; // input status 0: switch sense (a colour monitor)
      case 0x3c3:
        return this.vgaEnable;
      case 0x3c4:
        return this.seqIndex;
      case 0x3c5:
        return this.seq[this.seqIndex] ?? 0xff;
      case 0x3c6:
        return this.pelMask;
      case 0x3c7:
        return this.dacState;
      case 0x3c8:
        return this.dacWriteIndex;
      case 0x3c9: {
        let v = this.dac[this.dacReadIndex * 3 + this.dacComponent];
        if (++this.dacComponent === 3) {
          this.dacComponent = 0;
          this.dacReadIndex = (this.dacReadIndex + 1) & 0xff;
        }
        if (!(this.vbeRegs[VBE_ENABLE] & VBE_8BIT_DAC)) v &= 0x3f;
        return v;
      }
      case 0x3ca:
        return this.featureControl;
      case 0x3cc:
        return this.misc;
      case 0x3ce:
        return this.gcIndex;
      case 0x3cf:
        return this.gc[this.gcIndex] ?? 0xff;
      case 0x3b4:
      case 0x3d4:
        return this.crtcIndex;
      case 0x3b5:
      case 0x3d5:
        return this.crtc[this.crtcIndex] ?? 0xff;
      case 0x3ba:
      case 0x3da:
        this.attrFlipFlop = false;
        return this.inputStatus1();
      default:
        return 0xff;
    }
  }

  portWrite(port: number, value: number): void {
    value &= 0xff;
    if (!this.portDecoded(port)) return;
    switch (port) {
      case 0x3c0:
        if (!this.attrFlipFlop) {
          const wasEnabled = this.attrIndex & 0x20;
          this.attrIndex = value & 0x3f;
          if ((value & 0x20) !== wasEnabled) this.fullRedraw = true;
        } else {
          const i = this.attrIndex & 0x1f;
          if (i < 0x15) {
            this.attr[i] = i < 16 ? value & 0x3f : value;
            this.fullRedraw = true;
          }
        }
        this.attrFlipFlop = !this.attrFlipFlop;
        return;
      case 0x3c2:
        this.misc = value;
        this.fullRedraw = true;
        return;
      case 0x3c3:
        this.vgaEnable = value & 1;
        return;
      case 0x3c4:
        this.seqIndex = value & 7;
        return;
      case 0x3c5:
        if (this.seqIndex < 5) {
          this.seq[this.seqIndex] = value;
          if (this.seqIndex !== 2) this.fullRedraw = true;
        }
        return;
      case 0x3c6:
        this.pelMask = value;
        this.fullRedraw = true;
        return;
      case 0x3c7:
        this.dacReadIndex = value;
        this.dacComponent = 0;
        this.dacState = 0;
        return;
      case 0x3c8:
        this.dacWriteIndex = value;
        this.dacComponent = 0;
        this.dacState = 3;
        return;
      case 0x3c9:
        this.dac[this.dacWriteIndex * 3 + this.dacComponent] = this.vbeRegs[VBE_ENABLE] & VBE_8BIT_DAC ? value : value & 0x3f;
        if (++this.dacComponent === 3) {
          this.dacComponent = 0;
          this.dacWriteIndex = (this.dacWriteIndex + 1) & 0xff;
        }
        this.fullRedraw = true;
        return;
      case 0x3ba:
      case 0x3da:
        this.featureControl = value;
        return;
      case 0x3ce:
        this.gcIndex = value & 0x0f;
        return;
      case 0x3cf:
        if (this.gcIndex < 9) {
          this.gc[this.gcIndex] = value;
          if (this.gcIndex >= 5 && this.gcIndex <= 6) this.fullRedraw = true;
        }
        return;
      case 0x3b4:
      case 0x3d4:
        this.crtcIndex = value & 0x3f;
        return;
      case 0x3b5:
      case 0x3d5: {
        const i = this.crtcIndex;
        if (i >= 0x19) return;
        // CR11 bit 7 write-protects CR00-CR07, except the line-compare bit of CR07.
        if (this.crtc[0x11] & 0x80 && i <= 7) {
          if (i === 7) this.crtc[7] = (this.crtc[7] & ~0x10) | (value & 0x10);
          return;
        }
        this.crtc[i] = value;
        this.fullRedraw = true;
        return;
      }
      default:
        return;
    }
  }

  /**
   * Input status 1: bit 3 vertical retrace, bit 0 display disabled (any blanking). Time is virtual;
   * each poll at an unchanged clock reading counts as a little elapsed time, so a loop waiting for
   * retrace finishes inside one CPU slice instead of spinning until the slice ends.
   */
  private inputStatus1(): number {
    const now = this.clock.now();
    if (now !== this.lastPollTime) {
      this.lastPollTime = now;
      this.pollsAtTime = 0;
    } else {
      this.pollsAtTime++;
    }
    const t = (now + this.pollsAtTime * POLL_NS) % FRAME_NS;
    const retrace = t >= FRAME_NS - RETRACE_NS;
    // Horizontal blanking: ~20% of each 31.5 kHz line.
    const hblank = t % 31_778 > 25_400;
    return (retrace ? 0x08 : 0) | (retrace || hblank ? 0x01 : 0);
  }

  // ------------------------------------------------------------------ VBE

  get vbeEnabled(): boolean {
    return (this.vbeRegs[VBE_ENABLE] & VBE_ENABLED) !== 0;
  }

  private vbeRead(): number {
    const i = this.vbeIndex;
    if (i === VBE_ID) return this.vbeId;
    if (i === VBE_VIDEO_MEMORY_64K) return this.vramSize >> 16;
    if (i > VBE_VIDEO_MEMORY_64K) return 0;
    if (this.vbeRegs[VBE_ENABLE] & VBE_GETCAPS) {
      if (i === VBE_XRES) return VBE_MAX_XRES;
      if (i === VBE_YRES) return VBE_MAX_YRES;
      if (i === VBE_BPP) return VBE_MAX_BPP;
    }
    return this.vbeRegs[i];
  }

  private vbeWrite(v: number): void {
    v &= 0xffff;
    const i = this.vbeIndex;
    const r = this.vbeRegs;
    switch (i) {
      case VBE_ID:
        if (v >= 0xb0c0 && v <= 0xb0c5) this.vbeId = v;
        return;
      case VBE_XRES:
      case VBE_YRES:
      case VBE_BPP:
        if (r[VBE_ENABLE] & VBE_ENABLED) return; // ignored while a mode is active, as Bochs does
        if (i === VBE_XRES && (v > VBE_MAX_XRES || v & 7)) return;
        if (i === VBE_YRES && v > VBE_MAX_YRES) return;
        if (i === VBE_BPP) {
          if (v === 0) v = 8;
          if (![4, 8, 15, 16, 24, 32].includes(v)) return;
        }
        r[i] = v;
        return;
      case VBE_BANK: {
        const banks = this.vramSize >> 16;
        r[VBE_BANK] = v % banks;
        return;
      }
      case VBE_ENABLE:
        this.vbeSetEnable(v);
        return;
      case VBE_VIRT_WIDTH: {
        if (!(r[VBE_ENABLE] & VBE_ENABLED)) {
          r[i] = v;
          return;
        }
        const bpl = this.vbeBytesPerLine(v);
        if (bpl * r[VBE_YRES] > this.vramSize) return;
        r[VBE_VIRT_WIDTH] = v;
        r[VBE_VIRT_HEIGHT] = Math.min(0xffff, Math.floor(this.vramSize / bpl));
        this.fullRedraw = true;
        return;
      }
      case VBE_X_OFFSET:
      case VBE_Y_OFFSET:
        r[i] = v;
        this.fullRedraw = true;
        return;
      default:
        return;
    }
  }

  private vbeBytesPerLine(width: number): number {
    const bpp = this.vbeRegs[VBE_BPP];
    return bpp === 4 ? width >> 1 : width * ((bpp + 7) >> 3);
  }

  private vbeSetEnable(v: number): void {
    const r = this.vbeRegs;
    const wasEnabled = r[VBE_ENABLE] & VBE_ENABLED;
    if (v & VBE_ENABLED && !wasEnabled) {
      if (!r[VBE_XRES] || !r[VBE_YRES]) return;
      if (!r[VBE_BPP]) r[VBE_BPP] = 8;
      const bpl = this.vbeBytesPerLine(r[VBE_XRES]);
      if (bpl * r[VBE_YRES] > this.vramSize) return; // does not fit: stay in VGA mode
      r[VBE_VIRT_WIDTH] = r[VBE_XRES];
      r[VBE_VIRT_HEIGHT] = Math.min(0xffff, Math.floor(this.vramSize / bpl));
      r[VBE_X_OFFSET] = r[VBE_Y_OFFSET] = 0;
      r[VBE_BANK] = 0;
      if (!(v & VBE_NOCLEARMEM)) {
        this.vram.fill(0, 0, Math.min(this.vramSize, bpl * r[VBE_YRES]));
      }
      // Put the VGA side in a graphics mode with a 64 KiB A0000 window (banked access), as the
      // Bochs/QEMU adapters do, so VGA-aware code sees a consistent state.
      this.gc[6] = (this.gc[6] & ~0x0c) | 0x05;
      this.seq[4] |= 0x08;
      this.crtc[0x17] |= 0x03;
    } else if (!(v & VBE_ENABLED) && wasEnabled) {
      r[VBE_BANK] = 0;
    }
    r[VBE_ENABLE] = v & (VBE_ENABLED | VBE_GETCAPS | VBE_8BIT_DAC | VBE_LFB_ENABLED | VBE_NOCLEARMEM);
    this.fullRedraw = true;
  }

  // ------------------------------------------------------------------ A0000-BFFFF window

  /** Offset of `addr` inside the window GR6 selects, or -1 when the window does not decode it. */
  private windowOffset(addr: number): number {
    const off = addr - 0xa0000;
    switch ((this.gc[6] >> 2) & 3) {
      case 0:
        return off;
      case 1:
        return off < 0x10000 ? off : -1;
      case 2:
        return off >= 0x10000 && off < 0x18000 ? off - 0x10000 : -1;
      default:
        return off >= 0x18000 ? off - 0x18000 : -1;
    }
  }

  read8(addr: number): number {
    if (this.vbeEnabled) {
      const off = addr - 0xa0000;
      if (off >= 0x10000) return 0xff;
      return this.vram[((this.vbeRegs[VBE_BANK] << 16) + off) & (this.vramSize - 1)];
    }
    let off = this.windowOffset(addr);
    if (off < 0) return 0xff;
    const seq4 = this.seq[4];
    if (seq4 & 0x08) {
      // chain-4
      return this.vram[((off & ~3) << 2) | (off & 3)];
    }
    let plane: number;
    if (this.gc[5] & 0x10) {
      // host odd/even
      plane = (this.gc[4] & 2) | (off & 1);
      off &= ~1;
    } else {
      plane = this.gc[4] & 3;
    }
    off &= 0xffff;
    const latch = this.vram32[off];
    this.latch = latch;
    if (!(this.gc[5] & 0x08)) return (latch >>> (plane * 8)) & 0xff;
    // Read mode 1: colour compare across planes; 1 bits where every cared-about plane matches.
    const dontCare = PLANE_MASK[this.gc[7] & 15];
    const diff = (latch ^ PLANE_MASK[this.gc[2] & 15]) & dontCare;
    return ~(diff | (diff >>> 8) | (diff >>> 16) | (diff >>> 24)) & 0xff;
  }

  write8(addr: number, value: number): void {
    if (this.vbeEnabled) {
      const off = addr - 0xa0000;
      if (off >= 0x10000) return;
      const i = ((this.vbeRegs[VBE_BANK] << 16) + off) & (this.vramSize - 1);
      this.vram[i] = value;
      this.markDirty(i);
      return;
    }
    let off = this.windowOffset(addr);
    if (off < 0) return;
    const seq4 = this.seq[4];
    const mapMask = this.seq[2] & 15;
    if (seq4 & 0x08) {
      const plane = off & 3;
      if (mapMask & (1 << plane)) {
        const i = ((off & ~3) << 2) | plane;
        this.vram[i & (this.vramSize - 1)] = value;
        this.markDirty(i);
      }
      return;
    }
    if (!(seq4 & 0x04)) {
      // Odd/even: even addresses reach planes 0/2, odd ones planes 1/3, at the even address.
      const planes = mapMask & (off & 1 ? 0b1010 : 0b0101);
      off &= 0xfffe;
      for (let p = 0; p < 4; p++) if (planes & (1 << p)) this.vram[off * 4 + p] = value;
      this.markDirty(off * 4);
      return;
    }
    off &= 0xffff;
    const gc = this.gc;
    const mode = gc[5] & 3;
    const latch = this.latch;
    let data: number;
    let bitMask = gc[8];
    switch (mode) {
      case 0: {
        const rot = gc[3] & 7;
        const v = ((value >> rot) | (value << (8 - rot))) & 0xff;
        const set = PLANE_MASK[gc[1] & 15];
        data = ((v * 0x01010101) & ~set) | (PLANE_MASK[gc[0] & 15] & set);
        break;
      }
      case 1:
        this.writePlanes(off, latch, mapMask);
        return;
      case 2:
        data = PLANE_MASK[value & 15];
        break;
      default: {
        const rot = gc[3] & 7;
        const v = ((value >> rot) | (value << (8 - rot))) & 0xff;
        bitMask &= v;
        data = PLANE_MASK[gc[0] & 15];
        break;
      }
    }
    switch ((gc[3] >> 3) & 3) {
      case 1:
        data &= latch;
        break;
      case 2:
        data |= latch;
        break;
      case 3:
        data ^= latch;
        break;
    }
    const m = bitMask * 0x01010101;
    data = (data & m) | (latch & ~m);
    this.writePlanes(off, data >>> 0, mapMask);
  }

  private writePlanes(planeAddr: number, data: number, mapMask: number): void {
    const keep = ~PLANE_MASK[mapMask];
    this.vram32[planeAddr] = ((this.vram32[planeAddr] & keep) | (data & ~keep)) >>> 0;
    this.markDirty(planeAddr * 4);
  }

  private markDirty(index: number): void {
    this.dirtyPages[(index >>> 12) & (this.dirtyPages.length - 1)] = 1;
    this.anyDirtyPage = true;
  }

  private markDirtyRange(index: number, length: number): void {
    for (let p = index >>> 12; p <= (index + length - 1) >>> 12 && p < this.dirtyPages.length; p++) this.dirtyPages[p] = 1;
    this.anyDirtyPage = true;
  }

  // ------------------------------------------------------------------ linear framebuffer (BAR0)

  private makeLfbHandler(): MmioHandler {
    const mask = this.vramSize - 1;
    const view = this.vramView;
    const vram = this.vram;
    const pages = this.dirtyPages;
    const offset = (addr: number): number => (addr - (this.lfbBase ?? 0)) & mask;
    return {
      read8: (addr) => vram[offset(addr)],
      write8: (addr, v) => {
        const o = offset(addr);
        vram[o] = v;
        pages[o >>> 12] = 1;
        this.anyDirtyPage = true;
      },
      read16: (addr) => {
        const o = offset(addr);
        return o + 1 <= mask ? view.getUint16(o, true) : vram[o] | (vram[(o + 1) & mask] << 8);
      },
      write16: (addr, v) => {
        const o = offset(addr);
        if (o + 1 <= mask) view.setUint16(o, v, true);
        pages[o >>> 12] = 1;
        this.anyDirtyPage = true;
      },
      read32: (addr) => {
        const o = offset(addr);
        return o + 3 <= mask ? view.getInt32(o, true) : 0;
      },
      write32: (addr, v) => {
        const o = offset(addr);
        if (o + 3 <= mask) view.setInt32(o, v, true);
        pages[o >>> 12] = 1;
        this.anyDirtyPage = true;
      },
    };
  }

  // ------------------------------------------------------------------ mode decoding

  private layout(): Layout {
    const r = this.vbeRegs;
    const base: Layout = {
      key: '',
      kind: 'blank',
      width: 0,
      height: 0,
      startAddr: 0,
      pitch: 0,
      scale: 1,
      cols: 0,
      rows: 0,
      charWidth: 8,
      charHeight: 16,
      shift: 0,
      scanPerRow: 1,
      rowScanSub: 0,
      lineCompare: 0x3ff,
      linesPerOutput: 1,
      pan: 0,
      bpp: 0,
      vbe: false,
      lineBytes: 0,
      vbeStart: 0,
    };
    if (r[VBE_ENABLE] & VBE_ENABLED) {
      const bpp = r[VBE_BPP];
      const bytesPp = (bpp + 7) >> 3;
      const lineBytes = this.vbeBytesPerLine(r[VBE_VIRT_WIDTH] || r[VBE_XRES]);
      base.kind = 'graphics';
      base.vbe = true;
      base.width = r[VBE_XRES];
      base.height = r[VBE_YRES];
      base.bpp = bpp;
      base.lineBytes = lineBytes;
      base.vbeStart = r[VBE_Y_OFFSET] * lineBytes + (bpp === 4 ? r[VBE_X_OFFSET] >> 1 : r[VBE_X_OFFSET] * bytesPp);
      base.key = `vbe:${base.width}x${base.height}x${bpp}:${lineBytes}:${base.vbeStart}`;
      return base;
    }
    const cr = this.crtc;
    const cols = cr[1] + 1;
    const vde = (cr[0x12] | ((cr[7] & 0x02) << 7) | ((cr[7] & 0x40) << 3)) + 1;
    const maxScan = (cr[9] & 0x1f) + 1;
    const doubleScan = cr[9] & 0x80 ? 2 : 1;
    base.startAddr = (cr[0x0c] << 8) | cr[0x0d];
    base.pitch = cr[0x13] * 2;
    base.scale = cr[0x14] & 0x40 ? 4 : cr[0x17] & 0x40 ? 1 : 2;
    const blank = !(this.attrIndex & 0x20) || (this.seq[1] & 0x20) !== 0;
    if (!(this.gc[6] & 1)) {
      base.kind = 'text';
      base.cols = cols;
      base.charWidth = this.seq[1] & 1 ? 8 : 9;
      base.charHeight = maxScan;
      base.rows = Math.max(1, Math.floor(vde / maxScan / doubleScan));
      base.width = cols * base.charWidth;
      base.height = base.rows * maxScan;
    } else {
      base.kind = 'graphics';
      base.shift = (this.gc[5] >> 5) & 3;
      base.rowScanSub = (cr[0x17] & 1 ? 0 : 1) | (cr[0x17] & 2 ? 0 : 2);
      // With interleave, each scan line of an address row shows a different bank; else rows repeat.
      base.scanPerRow = base.rowScanSub ? maxScan : 1;
      base.linesPerOutput = doubleScan * (base.rowScanSub ? 1 : maxScan);
      base.height = Math.max(1, Math.floor(vde / base.linesPerOutput));
      base.lineCompare = cr[0x18] | ((cr[7] & 0x10) << 4) | ((cr[9] & 0x40) << 3);
      const pel = this.attr[0x13] & 0x0f;
      if (base.shift >= 2 || this.attr[0x10] & 0x40) {
        base.shift = 2;
        base.bpp = 8;
        base.width = (cols * 8) >> 1;
        base.pan = (pel >> 1) & 3;
      } else {
        base.bpp = base.shift === 1 ? 2 : 4;
        base.width = cols * 8;
        base.pan = base.shift === 0 && pel < 8 ? pel : 0;
      }
    }
    base.key = `${base.kind}:${base.width}x${base.height}:${base.cols}x${base.rows}:${base.charWidth}x${base.charHeight}:${base.shift}:${base.rowScanSub}:${base.scanPerRow}:${base.lineCompare}:${base.pan}:${base.startAddr}:${base.pitch}:${base.scale}:${blank}`;
    if (blank && base.kind !== 'text') base.kind = 'blank';
    return base;
  }

  getMode(): VgaMode {
    const l = this.layout();
    if (l.kind === 'text') {
      return { kind: 'text', width: l.width, height: l.height, cols: l.cols, rows: l.rows, charWidth: l.charWidth, charHeight: l.charHeight };
    }
    if (l.kind === 'graphics') return { kind: 'graphics', width: l.width, height: l.height, bpp: l.bpp, vbe: l.vbe };
    return { kind: 'blank', width: l.width, height: l.height };
  }

  /** The text screen (CP437 decoded to Unicode), rows joined by \n, trailing spaces trimmed; null outside text modes. */
  getTextScreen(): string | null {
    const l = this.layout();
    if (l.kind !== 'text') return null;
    const lines: string[] = [];
    const vram = this.vram;
    const mask = 0xffff;
    for (let row = 0; row < l.rows; row++) {
      let s = '';
      const rowAddr = l.startAddr + row * l.pitch;
      for (let col = 0; col < l.cols; col++) {
        const a = ((rowAddr + col) * l.scale) & mask;
        s += CP437_TO_UNICODE[vram[a * 4]];
      }
      lines.push(s.replace(/\s+$/, ''));
    }
    return lines.join('\n');
  }

  /** Text cursor position (column, row) in text modes when enabled, else null. */
  getCursor(): { col: number; row: number } | null {
    const l = this.layout();
    if (l.kind !== 'text' || this.crtc[0x0a] & 0x20) return null;
    const pos = ((this.crtc[0x0e] << 8) | this.crtc[0x0f]) - l.startAddr;
    if (pos < 0 || l.pitch === 0) return null;
    const row = Math.floor(pos / l.pitch);
    const col = pos % l.pitch;
    if (row >= l.rows || col >= l.cols) return null;
    return { col, row };
  }

  // ------------------------------------------------------------------ rendering

  /** Forces the next render to redraw everything (after state loads, resets). */
  invalidate(): void {
    this.fullRedraw = true;
    this.anyDirtyPage = true;
    this.dirtyPages.fill(1);
  }

  /** True when something may have changed since the last render. */
  get dirty(): boolean {
    return this.fullRedraw || this.anyDirtyPage || this.pending !== null || this.blinkPhaseChanged();
  }

  private blinkPhaseChanged(): boolean {
    const now = this.clock.now();
    return Math.floor(now / CURSOR_BLINK_NS) !== this.lastCursorPhase || Math.floor(now / CHAR_BLINK_NS) !== this.lastCharPhase;
  }

  /** Brings the frame up to date and returns it (the same object each time; its size follows the mode). */
  renderRgba(): RgbaFrame {
    const l = this.layout();
    let full = this.fullRedraw || l.key !== this.lastLayoutKey;
    if (l.width !== this.frame.width || l.height !== this.frame.height) {
      const w = Math.max(0, l.width);
      const h = Math.max(0, l.height);
      const data = new Uint8ClampedArray(w * h * 4);
      this.frame = { width: w, height: h, data };
      this.frame32 = new Uint32Array(data.buffer);
      full = true;
    }
    this.lastLayoutKey = l.key;
    this.fullRedraw = false;
    this.updatePalette();
    for (let v = 0; v < 16; v++) this.lut16[v] = this.palette32[this.attrToDac(v)];
    const now = this.clock.now();
    const cursorPhase = Math.floor(now / CURSOR_BLINK_NS);
    const charPhase = Math.floor(now / CHAR_BLINK_NS);
    let y0 = Infinity;
    let y1 = -1;
    if (l.kind === 'text') {
      const cursorOn = (cursorPhase & 1) === 0;
      const range = this.renderText(l, full, cursorOn, (charPhase & 1) === 0, cursorPhase !== this.lastCursorPhase, charPhase !== this.lastCharPhase);
      y0 = range[0];
      y1 = range[1];
    } else if (l.kind === 'graphics') {
      for (let y = 0; y < l.height; y++) {
        if (!full && !this.lineDirty(l, y)) continue;
        if (l.vbe) this.renderVbeLine(l, y);
        else this.renderVgaLine(l, y);
        if (y < y0) y0 = y;
        y1 = y;
      }
    } else if (full) {
      this.frame32.fill(0xff000000);
      y0 = 0;
      y1 = l.height - 1;
    }
    this.lastCursorPhase = cursorPhase;
    this.lastCharPhase = charPhase;
    if (this.anyDirtyPage) {
      this.dirtyPages.fill(0);
      this.anyDirtyPage = false;
    }
    if (y1 >= y0) {
      const p = this.pending;
      if (!p) this.pending = { x0: 0, y0, x1: l.width, y1: y1 + 1 };
      else {
        p.x0 = 0;
        p.x1 = Math.max(p.x1, l.width);
        p.y0 = Math.min(p.y0, y0);
        p.y1 = Math.max(p.y1, y1 + 1);
      }
    }
    if (full && this.pending) {
      this.pending = { x0: 0, y0: 0, x1: l.width, y1: l.height };
    }
    return this.frame;
  }

  /** Renders if needed and returns the area changed since the previous call (null when nothing did). */
  takeDirtyRect(): DirtyRect | null {
    this.renderRgba();
    const p = this.pending;
    this.pending = null;
    if (!p) return null;
    const x1 = Math.min(p.x1, this.frame.width);
    const y1 = Math.min(p.y1, this.frame.height);
    if (x1 <= p.x0 || y1 <= p.y0) return null;
    return { x: p.x0, y: p.y0, width: x1 - p.x0, height: y1 - p.y0 };
  }

  private updatePalette(): void {
    const shift = this.vbeRegs[VBE_ENABLE] & VBE_8BIT_DAC ? 0 : 2;
    const d = this.dac;
    for (let i = 0; i < 256; i++) {
      let r = d[i * 3];
      let g = d[i * 3 + 1];
      let b = d[i * 3 + 2];
      if (shift) {
        r = (r << 2) | (r >> 4);
        g = (g << 2) | (g >> 4);
        b = (b << 2) | (b >> 4);
      }
      this.palette32[i] = (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
    }
  }

  /** Attribute-controller path from a 4-bit pixel to a DAC index. */
  private attrToDac(v: number): number {
    const a = this.attr;
    v &= a[0x12] & 15;
    let idx = a[v];
    if (a[0x10] & 0x80) idx = (idx & 0x0f) | ((a[0x14] & 3) << 4);
    idx |= (a[0x14] & 0x0c) << 4;
    return idx & this.pelMask;
  }

  /** Plane address where graphics line `y` starts, with CGA-style row-scan substitution into address bits 13/14. */
  private lineAddress(l: Layout, y: number): number {
    let start = l.startAddr;
    const phys = y * l.linesPerOutput;
    if (phys > l.lineCompare) {
      // Below the split line the display shows memory from address 0 (status bars of DOS games).
      start = 0;
      y = Math.floor((phys - l.lineCompare - 1) / l.linesPerOutput);
    }
    const row = Math.floor(y / l.scanPerRow);
    let a = (start + row * l.pitch) * l.scale;
    if (l.rowScanSub) {
      const scan = y % l.scanPerRow;
      if (l.rowScanSub & 1) a = (a & ~0x2000) | ((scan & 1) << 13);
      if (l.rowScanSub & 2) a = (a & ~0x4000) | ((scan & 2) << 13);
    }
    return a & 0xffff;
  }

  private lineDirty(l: Layout, y: number): boolean {
    if (!this.anyDirtyPage) return false;
    let from: number;
    let to: number;
    if (l.vbe) {
      from = l.vbeStart + y * l.lineBytes;
      to = from + l.lineBytes;
    } else {
      from = this.lineAddress(l, y) * 4;
      to = from + l.pitch * l.scale * 4;
    }
    const pages = this.dirtyPages;
    const n = pages.length;
    for (let p = from >>> 12; p <= (to - 1) >>> 12; p++) if (pages[p % n]) return true;
    return false;
  }

  private renderVbeLine(l: Layout, y: number): void {
    const out = this.frame32;
    const vram = this.vram;
    const mask = this.vramSize - 1;
    let o = y * l.width;
    let a = l.vbeStart + y * l.lineBytes;
    const w = l.width;
    switch (l.bpp) {
      case 32:
        for (let x = 0; x < w; x++, a += 4) {
          const i = a & mask;
          out[o++] = (0xff000000 | (vram[i] << 16) | (vram[i + 1] << 8) | vram[i + 2]) >>> 0;
        }
        break;
      case 24:
        for (let x = 0; x < w; x++, a += 3) {
          const i = a & mask;
          out[o++] = (0xff000000 | (vram[i] << 16) | (vram[(i + 1) & mask] << 8) | vram[(i + 2) & mask]) >>> 0;
        }
        break;
      case 16:
        for (let x = 0; x < w; x++, a += 2) {
          const i = a & mask;
          const v = vram[i] | (vram[i + 1] << 8);
          const r = (v >> 11) & 31;
          const g = (v >> 5) & 63;
          const b = v & 31;
          out[o++] = (0xff000000 | (((b << 3) | (b >> 2)) << 16) | (((g << 2) | (g >> 4)) << 8) | ((r << 3) | (r >> 2))) >>> 0;
        }
        break;
      case 15:
        for (let x = 0; x < w; x++, a += 2) {
          const i = a & mask;
          const v = vram[i] | (vram[i + 1] << 8);
          const r = (v >> 10) & 31;
          const g = (v >> 5) & 31;
          const b = v & 31;
          out[o++] = (0xff000000 | (((b << 3) | (b >> 2)) << 16) | (((g << 3) | (g >> 2)) << 8) | ((r << 3) | (r >> 2))) >>> 0;
        }
        break;
      case 8:
        for (let x = 0; x < w; x++) out[o++] = this.palette32[vram[(a + x) & mask] & this.pelMask];
        break;
      default: // 4 bpp packed
        for (let x = 0; x < w; x++) {
          const b = vram[(a + (x >> 1)) & mask];
          out[o++] = this.palette32[(x & 1 ? b & 15 : b >> 4) & this.pelMask];
        }
    }
  }

  private renderVgaLine(l: Layout, y: number): void {
    const out = this.frame32;
    const vram32 = this.vram32;
    const pal = this.palette32;
    let o = y * l.width;
    const lineAddr = this.lineAddress(l, y);
    const scale = l.scale;
    const w = l.width;
    // Below a split line the panning may be reset (AR10 bit 5), so the status bar stays still.
    const pan = y * l.linesPerOutput > l.lineCompare && this.attr[0x10] & 0x20 ? 0 : l.pan;
    if (pan && l.shift === 2) {
      for (let x = 0; x < w; x++) {
        const sx = x + pan;
        out[o++] = pal[((vram32[(lineAddr + (sx >> 2) * scale) & 0xffff] >>> ((sx & 3) * 8)) & 0xff) & this.pelMask];
      }
      return;
    }
    if (pan && l.shift === 0) {
      const lut = this.lut16;
      for (let x = 0; x < w; x++) {
        const sx = x + pan;
        const planes = vram32[(lineAddr + (sx >> 3) * scale) & 0xffff];
        const b = 7 - (sx & 7);
        out[o++] = lut[((planes >>> b) & 1) | (((planes >>> (8 + b)) & 1) << 1) | (((planes >>> (16 + b)) & 1) << 2) | (((planes >>> (24 + b)) & 1) << 3)];
      }
      return;
    }
    if (l.shift === 2) {
      // 256 colours: each address holds four pixels, one per plane.
      for (let x = 0; x < w; x += 4) {
        const planes = vram32[(lineAddr + (x >> 2) * scale) & 0xffff];
        for (let p = 0; p < 4 && x + p < w; p++) out[o++] = pal[((planes >>> (p * 8)) & 0xff) & this.pelMask];
      }
      return;
    }
    if (l.shift === 1) {
      // CGA-style 4 colours: two bits per pixel, even/odd planes interleaved.
      for (let x = 0; x < w; x += 8) {
        const planes = vram32[(lineAddr + (x >> 3) * scale) & 0xffff];
        const lo = (planes & 0xff) | ((planes >>> 8) & 0xff) << 8;
        for (let p = 0; p < 8 && x + p < w; p++) {
          const byte = p < 4 ? lo & 0xff : lo >> 8;
          const v = (byte >> (6 - (p & 3) * 2)) & 3;
          out[o++] = pal[this.attrToDac(v)];
        }
      }
      return;
    }
    // 16 colours planar: bit 7-x of each plane byte forms the 4-bit pixel.
    const lut = this.lut16;
    for (let x = 0; x < w; x += 8) {
      const planes = vram32[(lineAddr + (x >> 3) * scale) & 0xffff];
      const p0 = planes & 0xff;
      const p1 = (planes >>> 8) & 0xff;
      const p2 = (planes >>> 16) & 0xff;
      const p3 = planes >>> 24;
      for (let b = 7; b >= 0 && x + 7 - b < w; b--) {
        const v = ((p0 >> b) & 1) | (((p1 >> b) & 1) << 1) | (((p2 >> b) & 1) << 2) | (((p3 >> b) & 1) << 3);
        out[o++] = lut[v];
      }
    }
  }

  /** Redraws dirty text rows; returns [firstLine, lastLine] of pixels touched (or [Inf, -1]). */
  private renderText(
    l: Layout,
    full: boolean,
    cursorOn: boolean,
    blinkOn: boolean,
    cursorPhaseChanged: boolean,
    blinkPhaseChanged: boolean,
  ): [number, number] {
    const out = this.frame32;
    const vram = this.vram;
    const pal = this.palette32;
    const a = this.attr;
    const cw = l.charWidth;
    const ch = l.charHeight;
    const width = l.width;
    const blinkEnabled = (a[0x10] & 0x08) !== 0;
    const lineGraphics = (a[0x10] & 0x04) !== 0;
    const sel = this.seq[3];
    const mapA = Vga.fontMapBase(((sel >> 5) & 1) << 2 | ((sel >> 2) & 3));
    const mapB = Vga.fontMapBase(((sel >> 4) & 1) << 2 | (sel & 3));
    const fg = new Uint32Array(16);
    for (let v = 0; v < 16; v++) fg[v] = pal[this.attrToDac(v)];
    const blankScreen = !(this.attrIndex & 0x20) || (this.seq[1] & 0x20) !== 0;
    // Cursor.
    const cursorDisabled = (this.crtc[0x0a] & 0x20) !== 0;
    const cStart = this.crtc[0x0a] & 0x1f;
    const cEnd = this.crtc[0x0b] & 0x1f;
    const cursorAddr = (this.crtc[0x0e] << 8) | this.crtc[0x0f];
    let cursorRow = -1;
    const cursorRel = cursorAddr - l.startAddr;
    if (l.pitch > 0 && cursorRel >= 0) cursorRow = Math.floor(cursorRel / l.pitch);
    let y0 = Infinity;
    let y1 = -1;
    for (let row = 0; row < l.rows; row++) {
      const rowCounter = l.startAddr + row * l.pitch;
      let need = full;
      if (!need && !cursorDisabled && cursorPhaseChanged && row === cursorRow) need = true;
      if (!need && blinkPhaseChanged && blinkEnabled) {
        // Only rows holding blinking characters change when the blink phase flips.
        for (let col = 0; col < l.cols && !need; col++) if (vram[(((rowCounter + col) * l.scale) & 0xffff) * 4 + 1] & 0x80) need = true;
      }
      if (!need && this.anyDirtyPage) {
        const from = rowCounter * l.scale * 4;
        const to = (rowCounter + l.cols) * l.scale * 4;
        for (let p = from >>> 12; p <= (to - 1) >>> 12; p++) if (this.dirtyPages[p & (this.dirtyPages.length - 1)]) need = true;
      }
      if (!need) continue;
      const py = row * ch;
      if (py < y0) y0 = py;
      y1 = py + ch - 1;
      if (blankScreen) {
        out.fill(0xff000000, py * width, (py + ch) * width);
        continue;
      }
      for (let col = 0; col < l.cols; col++) {
        const addr = ((rowCounter + col) * l.scale) & 0xffff;
        const c = vram[addr * 4];
        const at = vram[addr * 4 + 1];
        let bgIndex = at >> 4;
        let showFg = true;
        if (blinkEnabled) {
          bgIndex &= 7;
          if (at & 0x80 && !blinkOn) showFg = false;
        }
        const fgColor = fg[at & 15];
        const bgColor = fg[bgIndex];
        const fontBase = at & 0x08 ? mapA : mapB;
        const glyphAddr = fontBase + c * 32;
        const isCursor = !cursorDisabled && cursorOn && rowCounter + col === cursorAddr;
        const lineGfx = lineGraphics && c >= 0xc0 && c <= 0xdf;
        let o = py * width + col * cw;
        for (let line = 0; line < ch; line++, o += width) {
          let bits = showFg ? vram[((glyphAddr + line) & 0xffff) * 4 + 2] : 0;
          if (isCursor && line >= cStart && line <= cEnd) bits = 0xff;
          for (let x = 0; x < 8; x++) out[o + x] = bits & (0x80 >> x) ? fgColor : bgColor;
          if (cw === 9) out[o + 8] = lineGfx && bits & 1 ? fgColor : bgColor;
        }
      }
    }
    return [y0, y1];
  }
}
