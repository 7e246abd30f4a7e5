/**
 * INT 11h, 12h, 14h, 15h, 17h and 1Ah of the built-in BIOS, and the IRQ0 tick.
 */
import { BDA, TICKS_PER_DAY } from './bda';
import type { BiosEnv } from './env';
import type { Regs } from './regs';
import { encodeE820, type E820Entry } from './e820';
import { EBDA_SEGMENT, PM1A_CNT, ROM_SEGMENT } from './layout';
import { pciRead, pciWrite } from './pci-init';

const SMAP = 0x534d4150;

export class SystemBios {
  e820: E820Entry[] = [];
  /** Usable RAM end (bytes) for E801/88h. */
  ramTop = 0;
  /** Offset in F000 of the INT 15h C0h configuration table. */
  configTableOffset = 0;
  private waitDeadline: number | null = null;

  constructor(private readonly env: BiosEnv) {}

  private get mem() {
    return this.env.mem;
  }

  private cmos(reg: number): number {
    this.env.io.out8(0x70, reg);
    return this.env.io.in8(0x71);
  }
  private cmosWrite(reg: number, v: number): void {
    this.env.io.out8(0x70, reg);
    this.env.io.out8(0x71, v);
  }
  private bcd(): boolean {
    return (this.cmos(0x0b) & 0x04) === 0;
  }
  /** Register value as BCD for the caller whatever the RTC's data mode. */
  private cmosBcd(reg: number): number {
    const v = this.cmos(reg);
    if (this.bcd()) return v;
    return ((Math.floor(v / 10) % 10) << 4) | (v % 10);
  }
  private toCmos(bcdValue: number): number {
    if (this.bcd()) return bcdValue;
    return (bcdValue >> 4) * 10 + (bcdValue & 0xf);
  }

  /** POST: ticks since midnight from the RTC. */
  initTicks(): void {
    const fromBcd = (v: number) => (v >> 4) * 10 + (v & 0xf);
    const secs = fromBcd(this.cmosBcd(0x04)) * 3600 + fromBcd(this.cmosBcd(0x02)) * 60 + fromBcd(this.cmosBcd(0x00));
    this.mem.write32(BDA.TICKS, Math.floor((secs * TICKS_PER_DAY) / 86400));
    this.mem.write8(BDA.TICKS_ROLLOVER, 0);
  }

  /** IRQ0. */
  tick(): void {
    let t = (this.mem.read32(BDA.TICKS) >>> 0) + 1;
    if (t >= TICKS_PER_DAY) {
      t = 0;
      this.mem.write8(BDA.TICKS_ROLLOVER, 1);
    }
    this.mem.write32(BDA.TICKS, t);
    const motor = this.mem.read8(BDA.FLOPPY_MOTOR_TIMEOUT);
    if (motor) this.mem.write8(BDA.FLOPPY_MOTOR_TIMEOUT, motor - 1);
  }

  int11(r: Regs): void {
    r.ax = this.mem.read16(BDA.EQUIPMENT);
  }

  int12(r: Regs): void {
    r.ax = this.mem.read16(BDA.MEMORY_KIB);
  }

  /** Serial port services on the UART registers. */
  int14(r: Regs): void {
    const port = this.mem.read16(BDA.COM_PORTS + 2 * (r.dx & 3));
    if (!port || (r.dx & 0xffff) > 3) {
      r.ah = 0x80;
      return;
    }
    const io = this.env.io;
    switch (r.ah) {
      case 0x00: {
        const divisors = [1047, 768, 384, 192, 96, 48, 24, 12];
        const div = divisors[r.al >> 5];
        io.out8(port + 3, 0x80);
        io.out8(port, div & 0xff);
        io.out8(port + 1, div >> 8);
        io.out8(port + 3, r.al & 0x1f);
        io.out8(port + 1, 0);
        break;
      }
      case 0x01:
        io.out8(port, r.al);
        r.ah = io.in8(port + 5);
        return;
      case 0x02: {
        const lsr = io.in8(port + 5);
        if (lsr & 1) {
          r.al = io.in8(port);
          r.ah = lsr & 0x1e;
        } else r.ah = 0x80 | lsr;
        return;
      }
      default:
        break;
    }
    r.ah = io.in8(port + 5);
    r.al = io.in8(port + 6);
  }

  int17(r: Regs): void {
    // No printer: time-out.
    r.ah = 0x01;
  }

  /** INT 15h. Returns true when the caller must wait and retry (86h). */
  int15(r: Regs): boolean {
    const ah = r.ah;
    switch (ah) {
      case 0x24:
        return (this.a20(r), false);
      case 0x4f:
        r.cf = true; // process the scancode unchanged
        return false;
      case 0x53:
        this.apm(r);
        return false;
      case 0x86:
        return this.wait(r);
      case 0x87:
        this.blockMove(r);
        return false;
      case 0x88:
        r.ax = Math.min(Math.max(0, Math.floor((this.ramTop - 0x100000) / 1024)), 0xfc00);
        r.cf = false;
        return false;
      case 0x90:
      case 0x91:
        r.ah = 0;
        r.cf = false;
        return false;
      case 0xc0:
        r.es = ROM_SEGMENT;
        r.bx = this.configTableOffset;
        r.ok();
        return false;
      case 0xc1:
        r.es = EBDA_SEGMENT;
        r.cf = false;
        return false;
      case 0xe8:
        if (r.al === 0x20) this.e820Call(r);
        else if (r.al === 0x01 || r.al === 0x81) this.e801(r);
        else r.fail(0x86);
        return false;
      default:
        r.fail(0x86);
        return false;
    }
  }

  private a20(r: Regs): void {
    const io = this.env.io;
    const p92 = io.in8(0x92);
    switch (r.al) {
      case 0x00:
        io.out8(0x92, p92 & ~0x02 & ~0x01);
        r.ok();
        return;
      case 0x01:
        io.out8(0x92, (p92 | 0x02) & ~0x01);
        r.ok();
        return;
      case 0x02:
        r.al = (p92 >> 1) & 1;
        r.ok();
        return;
      case 0x03:
        r.bx = 0x0003; // keyboard controller and port 92h
        r.ok();
        return;
      default:
        r.fail(0x86);
    }
  }

  private apm(r: Regs): void {
    switch (r.al) {
      case 0x00:
        if (r.bx !== 0) return r.fail(0x09);
        r.ah = 1;
        r.al = 2; // APM 1.2
        r.bh = 0x50; // 'P'
        r.bl = 0x4d; // 'M'
        r.cx = 0x0000; // no protected-mode interfaces
        r.cf = false;
        return;
      case 0x01:
      case 0x04:
      case 0x08:
      case 0x0d:
      case 0x0f:
        r.ok();
        return;
      case 0x0e:
        r.ah = 1;
        r.al = 2;
        r.cf = false;
        return;
      case 0x07:
        if (r.bx === 0x0001 && r.cx === 0x0003) {
          // Power off through the ACPI PM1 control register: SLP_TYP 0 (S5) | SLP_EN.
          this.env.io.out16(PM1A_CNT, 0x2000);
          r.ok();
          return;
        }
        r.ok();
        return;
      default:
        r.fail(0x86);
    }
  }

  private wait(r: Regs): boolean {
    const us = ((r.cx << 16) | r.dx) >>> 0;
    const now = this.env.clock.now();
    if (this.waitDeadline === null) {
      // Short waits return at once: the guest's timer tick is our only wake-up source (55 ms).
      if (us < 10000) {
        r.ok();
        return false;
      }
      this.waitDeadline = now + us * 1000;
    }
    if (now < this.waitDeadline) return true;
    this.waitDeadline = null;
    r.ok();
    return false;
  }

  private blockMove(r: Regs): void {
    const mem = this.mem;
    const gdt = r.esAddr(r.si);
    const base = (d: number) => (mem.read16(d + 2) | (mem.read8(d + 4) << 16) | (mem.read8(d + 7) << 24)) >>> 0;
    const src = base(gdt + 0x10);
    const dst = base(gdt + 0x18);
    const bytes = r.cx * 2;
    mem.writeBytes(dst, mem.readBytes(src, bytes));
    r.ok();
  }

  private e820Call(r: Regs): void {
    if (r.edx !== SMAP || r.ecx < 20) return r.fail(0x86);
    const i = r.ebx;
    if (i >= this.e820.length) return r.fail(0x86);
    const entry = encodeE820([this.e820[i]]);
    const extended = r.ecx >= 24;
    const a = r.esAddr(r.di);
    this.mem.writeBytes(a, entry);
    if (extended) this.mem.write32(a + 20, 1);
    r.ecx = extended ? 24 : 20;
    r.eax = SMAP;
    r.ebx = i + 1 < this.e820.length ? i + 1 : 0;
    r.cf = false;
  }

  private e801(r: Regs): void {
    const top = this.ramTop;
    const below16 = Math.min(Math.max(0, top - 0x100000), 0xf00000) / 1024;
    const above16 = Math.max(0, top - 0x1000000) / 65536;
    r.ax = below16;
    r.cx = below16;
    r.bx = Math.floor(above16);
    r.dx = Math.floor(above16);
    r.cf = false;
  }

  /** INT 1Ah. */
  int1a(r: Regs): void {
    const mem = this.mem;
    switch (r.ah) {
      case 0x00: {
        const t = mem.read32(BDA.TICKS) >>> 0;
        r.cx = t >>> 16;
        r.dx = t & 0xffff;
        r.al = mem.read8(BDA.TICKS_ROLLOVER);
        mem.write8(BDA.TICKS_ROLLOVER, 0);
        r.cf = false;
        return;
      }
      case 0x01:
        mem.write32(BDA.TICKS, ((r.cx << 16) | r.dx) >>> 0);
        mem.write8(BDA.TICKS_ROLLOVER, 0);
        r.cf = false;
        return;
      case 0x02:
        r.ch = this.cmosBcd(0x04);
        r.cl = this.cmosBcd(0x02);
        r.dh = this.cmosBcd(0x00);
        r.dl = (this.cmos(0x0b) & 1) as number;
        r.ok();
        return;
      case 0x03:
        this.cmosWrite(0x04, this.toCmos(r.ch));
        this.cmosWrite(0x02, this.toCmos(r.cl));
        this.cmosWrite(0x00, this.toCmos(r.dh));
        r.ok();
        return;
      case 0x04:
        r.ch = this.cmosBcd(0x32) || 0x20;
        r.cl = this.cmosBcd(0x09);
        r.dh = this.cmosBcd(0x08);
        r.dl = this.cmosBcd(0x07);
        r.ok();
        return;
      case 0x05:
        this.cmosWrite(0x32, this.toCmos(r.ch));
        this.cmosWrite(0x09, this.toCmos(r.cl));
        this.cmosWrite(0x08, this.toCmos(r.dh));
        this.cmosWrite(0x07, this.toCmos(r.dl));
        r.ok();
        return;
      case 0xb1:
        this.pciBios(r);
        return;
      default:
        r.cf = true;
        return;
    }
  }

  private pciBios(r: Regs): void {
    const SUCCESSFUL = 0x00,
      FUNC_NOT_SUPPORTED = 0x81,
      DEVICE_NOT_FOUND = 0x86,
      BAD_REGISTER = 0x87;
    const done = (status: number) => {
      r.ah = status;
      r.cf = status !== 0;
    };
    const io = this.env.io;
    const bus = r.bh,
      devfn = r.bl,
      reg = r.di & 0xff;
    switch (r.al) {
      case 0x01:
        r.al = 0x01; // configuration mechanism #1
        r.bx = 0x0210;
        r.cl = 0;
        r.edx = 0x20494350; // "PCI "
        r.edi = 0;
        done(SUCCESSFUL);
        return;
      case 0x02:
      case 0x03: {
        let index = r.si;
        for (let df = 0; df < 256; df++) {
          const id = pciRead(io, 0, df, 0, 4) >>> 0;
          if (id === 0xffffffff) continue;
          const match = r.al === 0x02 ? id === ((r.cx << 16) | r.dx) >>> 0 : pciRead(io, 0, df, 8, 4) >>> 8 === (r.ecx & 0xffffff);
          if (match && index-- === 0) {
            r.bh = 0;
            r.bl = df;
            done(SUCCESSFUL);
            return;
          }
        }
        done(DEVICE_NOT_FOUND);
        return;
      }
      case 0x08:
        r.cl = pciRead(io, bus, devfn, reg, 1);
        done(SUCCESSFUL);
        return;
      case 0x09:
        if (reg & 1) return done(BAD_REGISTER);
        r.cx = pciRead(io, bus, devfn, reg, 2);
        done(SUCCESSFUL);
        return;
      case 0x0a:
        if (reg & 3) return done(BAD_REGISTER);
        r.ecx = pciRead(io, bus, devfn, reg, 4);
        done(SUCCESSFUL);
        return;
      case 0x0b:
        pciWrite(io, bus, devfn, reg, r.cl, 1);
        done(SUCCESSFUL);
        return;
      case 0x0c:
        if (reg & 1) return done(BAD_REGISTER);
        pciWrite(io, bus, devfn, reg, r.cx, 2);
        done(SUCCESSFUL);
        return;
      case 0x0d:
        if (reg & 3) return done(BAD_REGISTER);
        pciWrite(io, bus, devfn, reg, r.ecx, 4);
        done(SUCCESSFUL);
        return;
      default:
        done(FUNC_NOT_SUPPORTED);
    }
  }
}
