/**
 * The PS/2 pointing-device BIOS (INT 15h AH=C2h) and its IRQ12 handler, which DOS mouse drivers
 * use: commands go to the mouse through the i8042 (D4h), packets are collected in the EBDA and
 * handed to the far handler the driver installed (C207h) with the status, X, Y and Z words on the
 * stack, as IBM's BIOS does.
 *
 * The controller delivers the mouse's replies some time after a command (as hardware does), and no
 * guest time passes inside a trap, so a C2h call that talks to the mouse is a small state machine:
 * it sends a command and answers "wait" to the stub, which halts with interrupts on; the next trap
 * (after IRQ12 or the timer tick) collects the reply bytes and sends the next command or finishes.
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
/** Traps (each after a halt: IRQ12 or a 55 ms tick) before a command counts as unanswered. */
const MAX_TRIES = 6;

interface MouseCommand {
  byte: number;
  /** Reply bytes after the ACK. */
  extra: number;
}

interface PendingCall {
  fn: number;
  bh: number;
  commands: MouseCommand[];
  /** Index of the command in flight. */
  current: number;
  replies: number[];
  /** Replies of every command, ACKs included. */
  all: number[];
  tries: number;
}

export class MouseBios {
  private pending: PendingCall | null = null;

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
    this.pending = null;
  }

  private sendByte(b: number): void {
    this.env.io.out8(0x64, 0xd4);
    this.env.io.out8(0x60, b);
  }

  private commandByte(set: number, clear: number): void {
    const io = this.env.io;
    io.out8(0x64, 0x20);
    let cb = 0x45;
    for (let tries = 0; tries < 16; tries++) {
      const st = io.in8(0x64);
      if (st & 1 && !(st & 0x20)) {
        cb = io.in8(0x60);
        break;
      }
    }
    io.out8(0x64, 0x60);
    io.out8(0x60, (cb | set) & ~clear);
  }

  /** Mouse bytes already in the controller's output buffer go to the call in flight. */
  private drain(p: PendingCall): void {
    const io = this.env.io;
    for (let n = 0; n < 8; n++) {
      const st = io.in8(0x64);
      if ((st & 0x21) !== 0x21) return;
      p.replies.push(io.in8(0x60));
    }
  }

  /** The commands a C2h function sends, or null when it needs none (or the input is bad: `fail`). */
  private plan(r: Regs): { commands: MouseCommand[] } | { fail: number } | null {
    const bh = r.bh;
    switch (r.al) {
      case 0x00:
        if (bh === 1) {
          if (!this.mem.read32(this.e(MouseEbda.HANDLER))) return { fail: 0x05 };
          return { commands: [{ byte: 0xf4, extra: 0 }] };
        }
        if (bh === 0) return { commands: [{ byte: 0xf5, extra: 0 }] };
        return { fail: 0x01 };
      case 0x01:
        return { commands: [{ byte: 0xff, extra: 2 }] };
      case 0x02: {
        const rate = SAMPLE_RATES[bh];
        if (rate === undefined) return { fail: 0x02 };
        return {
          commands: [
            { byte: 0xf3, extra: 0 },
            { byte: rate, extra: 0 },
          ],
        };
      }
      case 0x03:
        if (bh > 3) return { fail: 0x02 };
        return {
          commands: [
            { byte: 0xe8, extra: 0 },
            { byte: bh, extra: 0 },
          ],
        };
      case 0x04:
        return { commands: [{ byte: 0xf2, extra: 1 }] };
      case 0x05:
        if (bh !== 3) return { fail: 0x02 }; // 3-byte packets only (standard PS/2 mouse)
        return { commands: [{ byte: 0xf6, extra: 0 }] };
      case 0x06:
        if (bh === 0) return { commands: [{ byte: 0xe9, extra: 3 }] };
        if (bh === 1 || bh === 2) return { commands: [{ byte: bh === 1 ? 0xe6 : 0xe7, extra: 0 }] };
        return { fail: 0x01 };
      case 0x07:
        return null;
      default:
        return { fail: 0x01 };
    }
  }

  /** INT 15h AH=C2h. Returns true when the stub must wait for an interrupt and trap again. */
  handle(r: Regs): boolean {
    const mem = this.mem;
    if (!this.pending) {
      if (r.al === 0x07) {
        mem.write16(this.e(MouseEbda.HANDLER), r.bx);
        mem.write16(this.e(MouseEbda.HANDLER + 2), r.es);
        r.ok();
        return false;
      }
      const plan = this.plan(r);
      if (!plan) {
        r.fail(0x01);
        return false;
      }
      if ('fail' in plan) {
        r.fail(plan.fail);
        return false;
      }
      if (r.al === 0x00 && r.bh === 1) {
        this.commandByte(CB_AUX_INT, CB_AUX_OFF);
        // Let IRQ12 through the slave PIC.
        this.env.io.out8(0xa1, this.env.io.in8(0xa1) & ~0x10);
      }
      this.pending = { fn: r.al, bh: r.bh, commands: plan.commands, current: 0, replies: [], all: [], tries: 0 };
      this.sendByte(plan.commands[0].byte);
      return true;
    }
    const p = this.pending;
    this.drain(p);
    const want = 1 + p.commands[p.current].extra;
    if (p.replies.length < want) {
      if (++p.tries <= MAX_TRIES) return true;
      this.pending = null;
      r.fail(0x03);
      return false;
    }
    const got = p.replies.splice(0, want);
    if (got[0] !== 0xfa) {
      this.pending = null;
      r.fail(got[0] === 0xfe ? 0x04 : 0x03);
      return false;
    }
    p.all.push(...got);
    if (++p.current < p.commands.length) {
      p.tries = 0;
      this.sendByte(p.commands[p.current].byte);
      return true;
    }
    this.pending = null;
    this.finish(r, p);
    return false;
  }

  private finish(r: Regs, p: PendingCall): void {
    const mem = this.mem;
    switch (p.fn) {
      case 0x00:
        mem.write8(this.e(MouseEbda.INDEX), 0);
        mem.write8(this.e(MouseEbda.ENABLED), p.bh === 1 ? 1 : 0);
        break;
      case 0x01:
        mem.write8(this.e(MouseEbda.INDEX), 0);
        mem.write8(this.e(MouseEbda.ENABLED), 0);
        r.bl = p.all[1];
        r.bh = p.all[2];
        break;
      case 0x04:
        r.bh = p.all[1];
        break;
      case 0x05:
        mem.write8(this.e(MouseEbda.PACKET_SIZE), 3);
        mem.write8(this.e(MouseEbda.INDEX), 0);
        break;
      case 0x06:
        if (p.bh === 0) {
          r.bl = p.all[1];
          r.cl = p.all[2];
          r.dl = p.all[3];
        }
        break;
      default:
        break;
    }
    r.ok();
  }

  /** IRQ12: one byte from the mouse. Returns true when a complete packet should go to the handler. */
  irq(): boolean {
    const io = this.env.io;
    const mem = this.mem;
    const st = io.in8(0x64);
    if ((st & 0x21) !== 0x21) return false;
    const b = io.in8(0x60);
    // A reply to a C2h call in flight, not movement.
    if (this.pending) {
      this.pending.replies.push(b);
      return false;
    }
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
