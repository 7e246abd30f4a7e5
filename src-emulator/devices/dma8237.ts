/**
 * The PC/AT's two 8237A DMA controllers and their page registers: controller 1 (ports 00-0F)
 * serves 8-bit channels 0-3, controller 2 (C0-DF, registers on even ports) 16-bit channels 4-7,
 * with channel 4 cascading controller 1. Page registers sit at 81-8F.
 *
 * Devices pull or push data with `writeToMemory` / `readFromMemory`; the controller applies the
 * channel's mode (direction, increment/decrement, auto-initialise), wraps the address within its
 * 64 KiB (128 KiB for 16-bit channels) page as the hardware does, and sets terminal count.
 * Memory goes through `PhysicalMemory.writeBytes` so decoded-code caches see DMA writes.
 */
import type { IoBus } from '../machine/io-bus';
import type { PhysicalMemory } from '../machine/memory';
import type { Device, DeviceState } from '../machine/device';

const PAGE_PORTS = [0x87, 0x83, 0x81, 0x82, 0x8f, 0x8b, 0x89, 0x8a];

/** Mode register transfer types. */
export const DMA_VERIFY = 0;
export const DMA_WRITE = 1; // device to memory
export const DMA_READ = 2; // memory to device

export interface Dma8237Options {
  io: IoBus;
  mem: PhysicalMemory;
}

export class Dma8237 implements Device {
  readonly name = 'dma';
  private readonly mem: PhysicalMemory;
  // Per channel (0-7).
  private readonly baseAddr = new Uint16Array(8);
  private readonly baseCount = new Uint16Array(8);
  private readonly curAddr = new Uint16Array(8);
  private readonly curCount = new Uint16Array(8);
  private readonly mode = new Uint8Array(8);
  private readonly page = new Uint8Array(8);
  /** Unused page-register bytes (84-86, 88, 8C-8E) keep what is written, as on the board. */
  private readonly extraPages = new Uint8Array(16);
  // Per controller (0 = 8-bit, 1 = 16-bit).
  private readonly mask = new Uint8Array([0x0f, 0x0f]);
  private readonly status = new Uint8Array(2);
  private readonly command = new Uint8Array(2);
  private readonly request = new Uint8Array(2);
  private readonly flipFlop = [false, false];
  /**
   * Per channel: the latest transfer ended on terminal count (the TC/EOP pulse a device sees).
   * Kept apart from the status register's TC bits, which stay set until the CPU reads status:
   * a driver that never reads status would otherwise make every later transfer look finished.
   */
  private readonly tcPulse = new Uint8Array(8);

  constructor(opts: Dma8237Options) {
    this.mem = opts.mem;
    const io = opts.io;
    io.register(0x00, 0x10, {
      in8: (p) => this.readCtl(0, p),
      out8: (p, v) => this.writeCtl(0, p, v),
    });
    for (let r = 0; r < 16; r++) {
      io.register(0xc0 + r * 2, 1, {
        in8: () => this.readCtl(1, r),
        out8: (_p, v) => this.writeCtl(1, r, v),
      });
    }
    io.register(0x81, 0x0f, {
      in8: (p) => {
        const ch = PAGE_PORTS.indexOf(p);
        return ch >= 0 ? this.page[ch] : this.extraPages[p & 15];
      },
      out8: (p, v) => {
        const ch = PAGE_PORTS.indexOf(p);
        if (ch >= 0) this.page[ch] = v;
        else this.extraPages[p & 15] = v;
      },
    });
  }

  private readCtl(ctl: number, reg: number): number {
    if (reg < 8) {
      const ch = ctl * 4 + (reg >> 1);
      const v = reg & 1 ? this.curCount[ch] : this.curAddr[ch];
      const hi = this.flipFlop[ctl];
      this.flipFlop[ctl] = !hi;
      return hi ? v >> 8 : v & 0xff;
    }
    switch (reg) {
      case 8: {
        // Status: TC bits clear on read.
        const v = this.status[ctl] | (this.request[ctl] << 4);
        this.status[ctl] = 0;
        return v;
      }
      case 0x0f:
        return this.mask[ctl] | 0xf0;
      default:
        return 0;
    }
  }

  private writeCtl(ctl: number, reg: number, v: number): void {
    if (reg < 8) {
      const ch = ctl * 4 + (reg >> 1);
      const hi = this.flipFlop[ctl];
      this.flipFlop[ctl] = !hi;
      if (reg & 1) {
        this.baseCount[ch] = hi ? (this.baseCount[ch] & 0xff) | (v << 8) : (this.baseCount[ch] & 0xff00) | v;
        this.curCount[ch] = this.baseCount[ch];
      } else {
        this.baseAddr[ch] = hi ? (this.baseAddr[ch] & 0xff) | (v << 8) : (this.baseAddr[ch] & 0xff00) | v;
        this.curAddr[ch] = this.baseAddr[ch];
      }
      return;
    }
    switch (reg) {
      case 8:
        this.command[ctl] = v;
        return;
      case 9: {
        const bit = 1 << (v & 3);
        if (v & 4) this.request[ctl] |= bit;
        else this.request[ctl] &= ~bit;
        return;
      }
      case 0x0a: {
        const bit = 1 << (v & 3);
        if (v & 4) this.mask[ctl] |= bit;
        else this.mask[ctl] &= ~bit;
        return;
      }
      case 0x0b:
        this.mode[ctl * 4 + (v & 3)] = v;
        return;
      case 0x0c:
        this.flipFlop[ctl] = false;
        return;
      case 0x0d: // master clear
        this.flipFlop[ctl] = false;
        this.mask[ctl] = 0x0f;
        this.status[ctl] = 0;
        this.command[ctl] = 0;
        this.request[ctl] = 0;
        return;
      case 0x0e:
        this.mask[ctl] = 0;
        return;
      case 0x0f:
        this.mask[ctl] = v & 0x0f;
        return;
    }
  }

  // ------------------------------------------------------------------ device side

  /** The channel is unmasked (programmed and armed by the driver). */
  isUnmasked(ch: number): boolean {
    return !(this.mask[ch >> 2] & (1 << (ch & 3)));
  }

  /** Transfer type of the channel's mode: DMA_VERIFY, DMA_WRITE (to memory) or DMA_READ (from memory). */
  transferType(ch: number): number {
    return (this.mode[ch] >> 2) & 3;
  }

  /** Bytes left before terminal count. */
  remaining(ch: number): number {
    return (this.curCount[ch] + 1) * (ch >= 4 ? 2 : 1);
  }

  /** Terminal count reached since the status register was last read (the sticky status bit). */
  terminalCount(ch: number): boolean {
    return (this.status[ch >> 2] & (1 << (ch & 3))) !== 0;
  }

  /**
   * The latest `writeToMemory` / `readFromMemory` on the channel reached terminal count. This is
   * what a device must use to end its command (the 8237's TC line), not `terminalCount`.
   */
  endedOnTerminalCount(ch: number): boolean {
    return this.tcPulse[ch] !== 0;
  }

  /** Device-to-memory: writes as much of `data` as the channel accepts; returns the bytes taken. */
  writeToMemory(ch: number, data: Uint8Array): number {
    return this.transfer(ch, data.length, (addr, offset, n) => {
      if (this.transferType(ch) === DMA_WRITE) this.mem.writeBytes(addr, data.subarray(offset, offset + n));
    });
  }

  /** Memory-to-device: up to `length` bytes from the channel's buffer (fewer at terminal count). */
  readFromMemory(ch: number, length: number): Uint8Array {
    const out = new Uint8Array(Math.min(length, this.remaining(ch)));
    const n = this.transfer(ch, out.length, (addr, offset, len) => {
      if (this.transferType(ch) === DMA_READ) out.set(this.mem.readBytes(addr, len), offset);
    });
    return out.subarray(0, n);
  }

  /** Moves up to `length` bytes in contiguous pieces, updating address/count, TC and auto-init. */
  private transfer(ch: number, length: number, move: (addr: number, offset: number, n: number) => void): number {
    this.tcPulse[ch] = 0;
    if (!this.isUnmasked(ch)) return 0;
    const wide = ch >= 4;
    const unit = wide ? 2 : 1;
    const decrement = (this.mode[ch] & 0x20) !== 0;
    let done = 0;
    while (done < length) {
      const unitsLeft = this.curCount[ch] + 1;
      const wantUnits = Math.ceil((length - done) / unit);
      let units = Math.min(unitsLeft, wantUnits);
      const a = this.curAddr[ch];
      // Stay inside the address counter's 16-bit range (it wraps; the page does not carry).
      units = decrement ? Math.min(units, a + 1) : Math.min(units, 0x10000 - a);
      const n = Math.min(units * unit, length - done);
      const pageBase = wide ? (this.page[ch] & 0xfe) << 16 : this.page[ch] << 16;
      if (decrement) {
        // Descending transfer: byte by byte so each lands at the falling address.
        for (let i = 0; i < n; i++) {
          const addr = pageBase + (wide ? (a << 1) - i : a - i);
          move(addr, done + i, 1);
        }
      } else {
        move(pageBase + (wide ? a << 1 : a), done, n);
      }
      done += n;
      this.curAddr[ch] = decrement ? (a - units) & 0xffff : (a + units) & 0xffff;
      const newCount = this.curCount[ch] - units;
      if (newCount < 0) {
        this.status[ch >> 2] |= 1 << (ch & 3);
        this.tcPulse[ch] = 1;
        if (this.mode[ch] & 0x10) {
          this.curAddr[ch] = this.baseAddr[ch];
          this.curCount[ch] = this.baseCount[ch];
        } else {
          this.curCount[ch] = 0xffff;
          this.mask[ch >> 2] |= 1 << (ch & 3);
          break;
        }
      } else {
        this.curCount[ch] = newCount;
      }
    }
    return done;
  }

  // ------------------------------------------------------------------ Device

  reset(): void {
    this.baseAddr.fill(0);
    this.baseCount.fill(0);
    this.curAddr.fill(0);
    this.curCount.fill(0);
    this.mode.fill(0);
    this.page.fill(0);
    this.extraPages.fill(0);
    this.mask.fill(0x0f);
    this.status.fill(0);
    this.command.fill(0);
    this.request.fill(0);
    this.tcPulse.fill(0);
    this.flipFlop[0] = this.flipFlop[1] = false;
  }

  saveState(): DeviceState {
    return {
      baseAddr: [...this.baseAddr],
      baseCount: [...this.baseCount],
      curAddr: [...this.curAddr],
      curCount: [...this.curCount],
      mode: this.mode.slice(),
      page: this.page.slice(),
      extraPages: this.extraPages.slice(),
      mask: this.mask.slice(),
      status: this.status.slice(),
      command: this.command.slice(),
      request: this.request.slice(),
      flipFlop: [...this.flipFlop],
    };
  }

  loadState(s: DeviceState): void {
    this.baseAddr.set(s.baseAddr as number[]);
    this.baseCount.set(s.baseCount as number[]);
    this.curAddr.set(s.curAddr as number[]);
    this.curCount.set(s.curCount as number[]);
    this.mode.set(s.mode as Uint8Array);
    this.page.set(s.page as Uint8Array);
    this.extraPages.set(s.extraPages as Uint8Array);
    this.mask.set(s.mask as Uint8Array);
    this.status.set(s.status as Uint8Array);
    this.command.set(s.command as Uint8Array);
    this.request.set(s.request as Uint8Array);
    const ff = s.flipFlop as boolean[];
    this.flipFlop[0] = ff[0];
    this.flipFlop[1] = ff[1];
  }
}
