/**
 * The PS/2 pointing-device BIOS (INT 15h AH=C2h) and its IRQ12 handler, which DOS mouse drivers
 * use: commands go to the mouse through the i8042 (D4h), packets are collected in the EBDA and
 * handed to the far handler the driver installed (C207h) with the status, X, Y and Z words on the
 * stack, as IBM's BIOS does.
 */
import type { BiosEnv } from './env';
import type { Regs } from './regs';
import { EBDA_BASE } from './layout';

/** EBDA offsets (the layout is ours; only this file and the IRQ12 stub use it). */
export const MouseEbda = {
  HANDLER: 0x22, // far pointer (offset, segment)
  INDEX: 0x26,
  PACKET_SIZE: 0x27,
  PACKET: 0x28, // up to 8 bytes
  ENABLED: 0x2f,
  /** Status, X, Y, Z words the IRQ12 stub pushes before calling the handler. */
  ARGS: 0x30,
} as const;

const SAMPLE_RATES = [10, 20, 40, 60, 80, 100, 200];
const CB_AUX_INT = 0x02;
const CB_AUX_OFF = 0x20;

export class MouseBios {
  constructor(private readonly env: BiosEnv) {}

  private get mem() {
    return this.env.mem;
  }
  private e(off: number): number {
    return EBDA_BASE + off;
  }

  init(): void {
    for (let i = 0x22; i < 0x38; i++) this.mem.write8(this.e(i), 0);
    this.mem.write8(this.e(MouseEbda.PACKET_SIZE), 3);
  }

  /** Sends a byte to the mouse and returns its reply bytes (ACK first), reading them synchronously. */
  private send(cmd: number, replies = 1): number[] | null {
    const io = this.env.io;
    io.out8(0x64, 0xd4);
    io.out8(0x60, cmd);
    const out: number[] = [];
    for (let tries = 0; tries < 64 && out.length < replies; tries++) {
      const st = io.in8(0x64);
      if (st & 0x01) out.push(io.in8(0x60));
    }
    if (out.length < replies || out[0] !== 0xfa) return null;
    return out;
  }

  private commandByte(set: number, clear: number): void {
    const io = this.env.io;
    io.out8(0x64, 0x20);
    let cb = 0;
    for (let tries = 0; tries < 16; tries++) {
      if (io.in8(0x64) & 1) {
        cb = io.in8(0x60);
        break;
      }
    }
    io.out8(0x64, 0x60);
    io.out8(0x60, (cb | set) & ~clear);
  }

  /** INT 15h AH=C2h. */
  handle(r: Regs): void {
    const mem = this.mem;
    const fail = (st: number) => r.fail(st);
    switch (r.al) {
      case 0x00: {
        if (r.bh === 1) {
          if (!(mem.read16(this.e(MouseEbda.HANDLER)) | mem.read16(this.e(MouseEbda.HANDLER + 2)))) return fail(0x05);
          this.commandByte(CB_AUX_INT, CB_AUX_OFF);
          // Let IRQ12 through the slave PIC.
          this.env.io.out8(0xa1, this.env.io.in8(0xa1) & ~0x10);
          mem.write8(this.e(MouseEbda.INDEX), 0);
          if (!this.send(0xf4)) return fail(0x03);
          mem.write8(this.e(MouseEbda.ENABLED), 1);
        } else if (r.bh === 0) {
          this.send(0xf5);
          mem.write8(this.e(MouseEbda.ENABLED), 0);
        } else return fail(0x01);
        r.ok();
        return;
      }
      case 0x01: {
        const rep = this.send(0xff, 3);
        if (!rep) return fail(0x03);
        mem.write8(this.e(MouseEbda.INDEX), 0);
        mem.write8(this.e(MouseEbda.ENABLED), 0);
        r.bl = rep[1];
        r.bh = rep[2];
        r.ok();
        return;
      }
      case 0x02: {
        const rate = SAMPLE_RATES[r.bh];
        if (rate === undefined) return fail(0x02);
        if (!this.send(0xf3) || !this.send(rate)) return fail(0x03);
        r.ok();
        return;
      }
      case 0x03:
        if (r.bh > 3) return fail(0x02);
        if (!this.send(0xe8) || !this.send(r.bh)) return fail(0x03);
        r.ok();
        return;
      case 0x04: {
        const rep = this.send(0xf2, 2);
        if (!rep) return fail(0x03);
        r.bh = rep[1];
        r.ok();
        return;
      }
      case 0x05:
        if (r.bh !== 3) return fail(0x02); // only 3-byte packets (standard PS/2 mouse)
        mem.write8(this.e(MouseEbda.PACKET_SIZE), 3);
        mem.write8(this.e(MouseEbda.INDEX), 0);
        if (!this.send(0xf6)) return fail(0x03);
        r.ok();
        return;
      case 0x06: {
        if (r.bh === 0) {
          const rep = this.send(0xe9, 4);
          if (!rep) return fail(0x03);
          r.bl = rep[1];
          r.cl = rep[2];
          r.dl = rep[3];
        } else if (r.bh === 1 || r.bh === 2) {
          if (!this.send(r.bh === 1 ? 0xe6 : 0xe7)) return fail(0x03);
        } else return fail(0x01);
        r.ok();
        return;
      }
      case 0x07:
        mem.write16(this.e(MouseEbda.HANDLER), r.bx);
        mem.write16(this.e(MouseEbda.HANDLER + 2), r.es);
        r.ok();
        return;
      default:
        fail(0x01);
    }
  }

  /** IRQ12: one byte from the mouse. Returns true when a complete packet should go to the handler. */
  irq(): boolean {
    const io = this.env.io;
    const mem = this.mem;
    const st = io.in8(0x64);
    if ((st & 0x21) !== 0x21) return false;
    const b = io.in8(0x60);
    let i = mem.read8(this.e(MouseEbda.INDEX));
    const size = mem.read8(this.e(MouseEbda.PACKET_SIZE)) || 3;
    // Byte 0 always has bit 3 set: resynchronise on anything else.
    if (i === 0 && !(b & 0x08)) return false;
    mem.write8(this.e(MouseEbda.PACKET + i), b);
    i++;
    if (i < size) {
      mem.write8(this.e(MouseEbda.INDEX), i);
      return false;
    }
    mem.write8(this.e(MouseEbda.INDEX), 0);
    mem.write16(this.e(MouseEbda.ARGS), mem.read8(this.e(MouseEbda.PACKET)));
    mem.write16(this.e(MouseEbda.ARGS + 2), mem.read8(this.e(MouseEbda.PACKET + 1)));
    mem.write16(this.e(MouseEbda.ARGS + 4), mem.read8(this.e(MouseEbda.PACKET + 2)));
    mem.write16(this.e(MouseEbda.ARGS + 6), 0);
    const handler = mem.read32(this.e(MouseEbda.HANDLER));
    return mem.read8(this.e(MouseEbda.ENABLED)) !== 0 && handler !== 0;
  }
}
