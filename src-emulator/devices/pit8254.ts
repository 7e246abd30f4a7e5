/**
 * Intel 8254 programmable interval timer at 0x40-0x43 (1.193182 MHz), with the PC's wiring:
 * channel 0 drives IRQ 0, channel 2 is gated by port 0x61 bit 0 and drives the speaker, and port
 * 0x61 also shows OUT2 (bit 5) and the DRAM refresh toggle (bit 4, every 15.085 us).
 *
 * Counters are computed from virtual time rather than ticked: a channel remembers when counting
 * started, so reading it costs nothing while it is not read. Only channel 0 arms a clock timer, at
 * the instant its output next rises (the IRQ 0 edge).
 */
import type { IoBus } from '../machine/io-bus';
import type { IrqLine } from '../machine/irq';
import type { VirtualClock, Timer } from '../machine/clock';
import type { Device, DeviceState } from '../machine/device';

export const PIT_HZ = 1193182;
const NS_PER_S = 1e9;
const REFRESH_NS = 15085;

interface Channel {
  /** Reload value as written (raw 16 bits; BCD digits in BCD mode). */
  countReg: number;
  mode: number;
  /** 1 LSB, 2 MSB, 3 LSB then MSB. */
  rw: number;
  bcd: boolean;
  gate: boolean;
  /** Virtual time (ns) at which the current count started, or -1 when not counting (waiting for a count or a gate trigger). */
  start: number;
  /** Ticks already counted when the gate paused counting (modes 0 and 4). */
  pausedTicks: number;
  latched: boolean;
  latchValue: number;
  latchReadHigh: boolean;
  statusLatched: boolean;
  status: number;
  readHigh: boolean;
  writeHigh: boolean;
  /** A count was written but counting has not picked it up (status bit 6). */
  nullCount: boolean;
  /** Next IRQ tick (channel 0), relative to `start`. */
  nextIrqTick: number;
  outLatchedHigh: boolean;
}

function newChannel(gate: boolean): Channel {
  return {
    countReg: 0, mode: 0, rw: 3, bcd: false, gate, start: -1, pausedTicks: 0, latched: false, latchValue: 0,
    latchReadHigh: false, statusLatched: false, status: 0, readHigh: false, writeHigh: false, nullCount: true,
    nextIrqTick: 0, outLatchedHigh: false,
  };
}

function fromBcd(v: number): number {
  return ((v >> 12) & 15) * 1000 + ((v >> 8) & 15) * 100 + ((v >> 4) & 15) * 10 + (v & 15);
}
function toBcd(v: number): number {
  return (((v / 1000) | 0) % 10 << 12) | (((v / 100) | 0) % 10 << 8) | (((v / 10) | 0) % 10 << 4) | (v % 10);
}

export class Pit8254 implements Device {
  readonly name = 'pit';
  private readonly ch: Channel[] = [newChannel(true), newChannel(true), newChannel(false)];
  private port61 = 0;
  private readonly timer: Timer;
  /** Speaker tone in Hz when channel 2 drives it in mode 3 with the gate and data bits set, else 0. */
  onSpeaker: (hz: number) => void = () => {};

  constructor(
    io: IoBus,
    private readonly irq: IrqLine,
    private readonly clock: VirtualClock,
  ) {
    this.timer = clock.createTimer('pit', () => this.fireChannel0());
    io.register(0x40, 3, {
      in8: (p) => this.readCounter(p - 0x40),
      out8: (p, v) => this.writeCounter(p - 0x40, v),
    });
    io.register(0x43, 1, { out8: (_p, v) => this.writeControl(v), in8: () => 0xff });
    io.register(0x61, 1, { in8: () => this.read61(), out8: (_p, v) => this.write61(v) });
  }

  // ---- counting arithmetic

  private period(c: Channel): number {
    if (c.bcd) return fromBcd(c.countReg) || 10000;
    return c.countReg || 0x10000;
  }

  private ticksAt(c: Channel, now: number): number {
    if (c.start < 0) return c.pausedTicks;
    if (!c.gate && (c.mode === 0 || c.mode === 4 || c.mode === 2 || c.mode === 3)) return c.pausedTicks;
    return c.pausedTicks + Math.floor(((now - c.start) * PIT_HZ) / NS_PER_S + 1e-6);
  }

  private tickTime(c: Channel, tick: number): number {
    return c.start + Math.ceil(((tick - c.pausedTicks) * NS_PER_S) / PIT_HZ);
  }

  /** The counting element's value now (0..period-1 or the full period). */
  private countNow(c: Channel, now: number): number {
    const n = this.period(c);
    if (c.start < 0) return c.bcd ? fromBcd(c.countReg) : c.countReg;
    const d = this.ticksAt(c, now);
    let v: number;
    switch (c.mode) {
      case 2:
      case 6:
        v = n - (d % n);
        break;
      case 3:
      case 7:
        v = n - ((2 * d) % n);
        break;
      default:
        // One-shot modes keep counting down through zero, wrapping at 16 bits.
        v = c.bcd ? (((n - d) % 10000) + 10000) % 10000 : (n - d) & 0xffff;
    }
    return v;
  }

  private outNow(c: Channel, now: number): boolean {
    if (c.start < 0) return c.mode !== 0;
    const n = this.period(c);
    const d = this.ticksAt(c, now);
    switch (c.mode) {
      case 0:
        return d >= n;
      case 1:
        return d >= n;
      case 2:
      case 6:
        return d % n !== n - 1;
      case 3:
      case 7:
        return d % n < (n + 1) >> 1;
      case 4:
      case 5:
        return d !== n;
      default:
        return true;
    }
  }

  // ---- channel 0 interrupt

  private scheduleChannel0(): void {
    const c = this.ch[0];
    if (c.start < 0) {
      this.timer.cancel();
      return;
    }
    this.timer.armAt(this.tickTime(c, c.nextIrqTick));
  }

  private fireChannel0(): void {
    const c = this.ch[0];
    if (c.start < 0) return;
    const now = this.clock.now();
    const n = this.period(c);
    const d = this.ticksAt(c, now);
    switch (c.mode) {
      case 0:
      case 1:
        // OUT rises at terminal count and stays high until reprogrammed.
        this.irq.raise();
        return;
      case 4:
      case 5:
        this.irq.pulse();
        return;
      default: {
        this.irq.pulse();
        // Ticks missed while the host was busy are dropped, as the PIC would only latch one edge.
        c.nextIrqTick = (Math.floor(d / n) + 1) * n;
        this.scheduleChannel0();
      }
    }
  }

  private startCounting(i: number): void {
    const c = this.ch[i];
    c.nullCount = false;
    c.pausedTicks = 0;
    // Modes 1 and 5 wait for a gate edge.
    if ((c.mode === 1 || c.mode === 5) && i !== 0) {
      c.start = -1;
      return;
    }
    c.start = this.clock.now();
    if (i === 0) {
      if (c.mode === 0 || c.mode === 1) this.irq.lower();
      c.nextIrqTick = this.period(c);
      this.scheduleChannel0();
    }
    if (i === 2) this.speakerChanged();
  }

  // ---- ports

  private writeControl(v: number): void {
    const sel = v >> 6;
    if (sel === 3) {
      // Read-back: bit 5 = 0 latches counts, bit 4 = 0 latches status, bits 1-3 select channels.
      const now = this.clock.now();
      for (let i = 0; i < 3; i++) {
        if (!(v & (2 << i))) continue;
        const c = this.ch[i];
        if (!(v & 0x20) && !c.latched) this.latch(c, now);
        if (!(v & 0x10) && !c.statusLatched) {
          c.status = (this.outNow(c, now) ? 0x80 : 0) | (c.nullCount ? 0x40 : 0) | (c.rw << 4) | (c.mode << 1) | (c.bcd ? 1 : 0);
          c.statusLatched = true;
        }
      }
      return;
    }
    const c = this.ch[sel];
    const rw = (v >> 4) & 3;
    if (rw === 0) {
      if (!c.latched) this.latch(c, this.clock.now());
      return;
    }
    c.rw = rw;
    c.mode = (v >> 1) & 7;
    if (c.mode > 5) c.mode -= 4; // 6 and 7 alias 2 and 3
    c.bcd = (v & 1) !== 0;
    c.readHigh = false;
    c.writeHigh = false;
    c.latched = false;
    c.statusLatched = false;
    c.nullCount = true;
    // Writing a control word stops the counter until a count arrives; OUT goes to its mode's initial level.
    c.start = -1;
    c.pausedTicks = 0;
    if (sel === 0) {
      this.timer.cancel();
      if (c.mode === 0) this.irq.lower();
    }
    if (sel === 2) this.speakerChanged();
  }

  private latch(c: Channel, now: number): void {
    const v = this.countNow(c, now);
    c.latchValue = c.bcd ? toBcd(v % 10000) : v & 0xffff;
    c.latched = true;
    c.latchReadHigh = false;
  }

  private readCounter(i: number): number {
    const c = this.ch[i];
    if (c.statusLatched) {
      c.statusLatched = false;
      return c.status;
    }
    let value: number;
    let high: boolean;
    if (c.latched) {
      value = c.latchValue;
      if (c.rw === 3) {
        high = c.latchReadHigh;
        c.latchReadHigh = !c.latchReadHigh;
        if (high) c.latched = false;
      } else {
        high = c.rw === 2;
        c.latched = false;
      }
    } else {
      const v = this.countNow(c, this.clock.now());
      value = c.bcd ? toBcd(v % 10000) : v & 0xffff;
      if (c.rw === 3) {
        high = c.readHigh;
        c.readHigh = !c.readHigh;
      } else high = c.rw === 2;
    }
    return high ? (value >> 8) & 0xff : value & 0xff;
  }

  private writeCounter(i: number, v: number): void {
    const c = this.ch[i];
    switch (c.rw) {
      case 1:
        c.countReg = v;
        this.startCounting(i);
        break;
      case 2:
        c.countReg = v << 8;
        this.startCounting(i);
        break;
      default:
        if (!c.writeHigh) {
          c.countReg = (c.countReg & 0xff00) | v;
          c.writeHigh = true;
          // Mode 0 stops counting when the first byte of a new count is written.
          if (c.mode === 0) {
            c.start = -1;
            if (i === 0) {
              this.timer.cancel();
              this.irq.lower();
            }
          }
        } else {
          c.countReg = (c.countReg & 0xff) | (v << 8);
          c.writeHigh = false;
          this.startCounting(i);
        }
    }
  }

  private read61(): number {
    const now = this.clock.now();
    const refresh = Math.floor(now / REFRESH_NS) & 1;
    const out2 = this.outNow(this.ch[2], now) ? 0x20 : 0;
    return (this.port61 & 0x0f) | (refresh << 4) | out2;
  }

  private write61(v: number): void {
    const c = this.ch[2];
    const gate = (v & 1) !== 0;
    if (gate !== c.gate) this.setGate2(gate);
    this.port61 = v & 0x0f;
    this.speakerChanged();
  }

  private setGate2(gate: boolean): void {
    const c = this.ch[2];
    const now = this.clock.now();
    if (gate && !c.gate) {
      c.gate = true;
      if (c.nullCount && c.start < 0 && !(c.mode === 1 || c.mode === 5)) return;
      if (c.mode === 0 || c.mode === 4) {
        // Counting resumes where it paused.
        if (c.start >= 0) c.start = now;
        else if (!c.nullCount) c.start = now;
      } else {
        // Modes 1, 2, 3, 5: a rising gate (re)starts the count.
        c.pausedTicks = 0;
        c.start = now;
      }
    } else if (!gate && c.gate) {
      if (c.start >= 0 && (c.mode === 0 || c.mode === 4 || c.mode === 2 || c.mode === 3)) {
        c.pausedTicks = this.ticksAt(c, now);
        c.start = now;
      }
      c.gate = false;
    }
  }

  private speakerChanged(): void {
    const c = this.ch[2];
    const on = (this.port61 & 3) === 3 && c.start >= 0 && c.mode === 3;
    this.onSpeaker(on ? PIT_HZ / this.period(c) : 0);
  }

  /** Output of channel `i` now (tests, speaker). */
  out(i: number): boolean {
    return this.outNow(this.ch[i], this.clock.now());
  }

  // ---- Device

  reset(): void {
    this.ch[0] = newChannel(true);
    this.ch[1] = newChannel(true);
    this.ch[2] = newChannel(false);
    this.port61 = 0;
    this.timer.cancel();
    this.irq.lower();
  }

  saveState(): DeviceState {
    return {
      port61: this.port61,
      channels: this.ch.map((c) => ({ ...c }) as unknown as { [k: string]: number | boolean }),
      timer: this.timer.deadline === Infinity ? -1 : this.timer.deadline,
    };
  }

  loadState(state: DeviceState): void {
    this.port61 = state.port61 as number;
    const chs = state.channels as unknown as Channel[];
    for (let i = 0; i < 3; i++) this.ch[i] = { ...newChannel(i !== 2), ...chs[i] };
    const t = state.timer as number;
    if (t >= 0) this.timer.armAt(t);
    else this.timer.cancel();
  }
}
