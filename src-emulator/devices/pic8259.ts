/**
 * The two cascaded 8259A programmable interrupt controllers of a PC: master at 0x20/0x21 (IRQ 0-7),
 * slave at 0xA0/0xA1 (IRQ 8-15) on the master's IR2. Edge or level triggering per line comes from
 * the ELCR (0x4D0/0x4D1, decoded by the PIIX3, stored here).
 *
 * Fully nested mode with rotation, specific/non-specific/rotating EOI, auto-EOI, special mask mode,
 * special fully nested mode, poll mode, IRR/ISR reads; an INTA with nothing pending gives the
 * spurious vector IR7 (or IR15 through the slave) without setting ISR, as the chip does.
 */
import type { IoBus } from '../machine/io-bus';
import type { IrqSink, InterruptAcknowledge } from '../machine/irq';
import type { Device, DeviceState } from '../machine/device';

const FIELDS = [
  'irr', 'imr', 'isr', 'lastLevel', 'elcr', 'base', 'priorityAdd', 'initState', 'init4', 'single',
  'autoEoi', 'rotateOnAutoEoi', 'specialFullyNested', 'specialMask', 'readIsr', 'poll',
] as const;
type Field = (typeof FIELDS)[number];

export class Pic8259Pair implements Device, IrqSink, InterruptAcknowledge {
  readonly name = 'pic';
  /** Per-chip registers, index 0 = master, 1 = slave. */
  private readonly r: Record<Field, Uint8Array>;
  /** The master's INT output, i.e. the CPU's INTR (through the local APIC's LINT0). */
  onIntr: (level: boolean) => void = () => {};
  private intrOut = false;

  constructor(io: IoBus) {
    this.r = Object.fromEntries(FIELDS.map((f) => [f, new Uint8Array(2)])) as Record<Field, Uint8Array>;
    for (const [chip, base] of [[0, 0x20], [1, 0xa0]] as const) {
      io.register(base, 2, {
        in8: (p) => this.read(chip, p & 1),
        out8: (p, v) => this.write(chip, p & 1, v),
      });
    }
    this.reset();
  }

  // ---- ELCR (edge/level control), decoded by the PIIX3 at 0x4D0/0x4D1

  getElcr(chip: 0 | 1): number {
    return this.r.elcr[chip];
  }

  setElcr(chip: 0 | 1, value: number): void {
    // IRQ 0, 1, 2, 8 and 13 are always edge-triggered.
    this.r.elcr[chip] = value & (chip === 0 ? 0xf8 : 0xde);
  }

  // ---- IrqSink

  setIrq(line: number, level: boolean): void {
    if (line > 15) return;
    const chip = line >> 3;
    const mask = 1 << (line & 7);
    const r = this.r;
    if (r.elcr[chip] & mask) {
      if (level) {
        r.irr[chip] |= mask;
        r.lastLevel[chip] |= mask;
      } else {
        r.irr[chip] &= ~mask;
        r.lastLevel[chip] &= ~mask;
      }
    } else if (level) {
      if (!(r.lastLevel[chip] & mask)) r.irr[chip] |= mask;
      r.lastLevel[chip] |= mask;
    } else {
      r.lastLevel[chip] &= ~mask;
    }
    this.update();
  }

  /** True when the master's INT output is asserted. */
  get intr(): boolean {
    return this.intrOut;
  }

  // ---- InterruptAcknowledge

  acknowledge(): number {
    const r = this.r;
    let vector: number;
    const irq = this.pendingIrq(0);
    if (irq >= 0) {
      this.intAck(0, irq);
      if (irq === 2 && !r.single[0]) {
        let irq2 = this.pendingIrq(1);
        if (irq2 >= 0) this.intAck(1, irq2);
        else irq2 = 7; // spurious IRQ15
        vector = r.base[1] + irq2;
      } else {
        vector = r.base[0] + irq;
      }
    } else {
      vector = r.base[0] + 7; // spurious IRQ7
    }
    this.update();
    return vector;
  }

  // ---- internals

  /** Highest priority (0 = highest) among `mask`'s bits, 8 when none. */
  private priority(chip: number, mask: number): number {
    if (mask === 0) return 8;
    let p = 0;
    while ((mask & (1 << ((p + this.r.priorityAdd[chip]) & 7))) === 0) p++;
    return p;
  }

  /** The IRQ (0-7) this chip would deliver now, or -1. */
  private pendingIrq(chip: number): number {
    const r = this.r;
    const p = this.priority(chip, r.irr[chip] & ~r.imr[chip]);
    if (p === 8) return -1;
    let inService = r.isr[chip];
    if (r.specialMask[chip]) inService &= ~r.imr[chip];
    // Special fully nested: the master lets a higher slave IRQ through while IR2 is in service.
    if (chip === 0 && r.specialFullyNested[0]) inService &= ~(1 << 2);
    const cur = this.priority(chip, inService);
    return p < cur ? (p + r.priorityAdd[chip]) & 7 : -1;
  }

  private intAck(chip: number, irq: number): void {
    const r = this.r;
    if (r.autoEoi[chip]) {
      if (r.rotateOnAutoEoi[chip]) r.priorityAdd[chip] = (irq + 1) & 7;
    } else {
      r.isr[chip] |= 1 << irq;
    }
    // A level-triggered request stays in IRR while the line is high.
    if (!(r.elcr[chip] & (1 << irq))) r.irr[chip] &= ~(1 << irq);
  }

  private update(): void {
    const r = this.r;
    // The slave's INT drives the master's IR2 (level: it follows the slave's output).
    const slaveOut = this.pendingIrq(1) >= 0;
    if (slaveOut) r.irr[0] |= 4;
    else r.irr[0] &= ~4;
    const out = this.pendingIrq(0) >= 0;
    if (out !== this.intrOut) {
      this.intrOut = out;
      this.onIntr(out);
    }
  }

  private read(chip: number, a0: number): number {
    const r = this.r;
    if (a0 === 1) return r.imr[chip];
    if (r.poll[chip]) {
      r.poll[chip] = 0;
      const irq = this.pendingIrq(chip);
      if (irq < 0) return 0;
      this.intAck(chip, irq);
      this.update();
      return 0x80 | irq;
    }
    return r.readIsr[chip] ? r.isr[chip] : r.irr[chip];
  }

  private write(chip: number, a0: number, v: number): void {
    const r = this.r;
    if (a0 === 0) {
      if (v & 0x10) {
        // ICW1: restart initialisation.
        this.initReset(chip);
        r.initState[chip] = 1;
        r.init4[chip] = v & 1;
        r.single[chip] = (v >> 1) & 1;
      } else if (v & 0x08) {
        // OCW3
        if (v & 0x04) r.poll[chip] = 1;
        if (v & 0x02) r.readIsr[chip] = v & 1;
        if (v & 0x40) r.specialMask[chip] = (v >> 5) & 1;
      } else {
        // OCW2
        const cmd = v >> 5;
        switch (cmd) {
          case 0:
          case 4:
            r.rotateOnAutoEoi[chip] = cmd >> 2;
            break;
          case 1: // non-specific EOI
          case 5: {
            // rotate on non-specific EOI
            const p = this.priority(chip, r.isr[chip]);
            if (p !== 8) {
              const irq = (p + r.priorityAdd[chip]) & 7;
              r.isr[chip] &= ~(1 << irq);
              if (cmd === 5) r.priorityAdd[chip] = (irq + 1) & 7;
            }
            break;
          }
          case 3: // specific EOI
            r.isr[chip] &= ~(1 << (v & 7));
            break;
          case 6: // set priority
            r.priorityAdd[chip] = (v + 1) & 7;
            break;
          case 7: // rotate on specific EOI
            r.isr[chip] &= ~(1 << (v & 7));
            r.priorityAdd[chip] = ((v & 7) + 1) & 7;
            break;
          default:
            break;
        }
      }
    } else {
      switch (r.initState[chip]) {
        case 0: // OCW1
          r.imr[chip] = v;
          break;
        case 1: // ICW2
          r.base[chip] = v & 0xf8;
          r.initState[chip] = r.single[chip] ? (r.init4[chip] ? 3 : 0) : 2;
          break;
        case 2: // ICW3 (cascade wiring is fixed on a PC)
          r.initState[chip] = r.init4[chip] ? 3 : 0;
          break;
        case 3: // ICW4
          r.specialFullyNested[chip] = (v >> 4) & 1;
          r.autoEoi[chip] = (v >> 1) & 1;
          r.initState[chip] = 0;
          break;
      }
    }
    this.update();
  }

  private initReset(chip: number): void {
    const r = this.r;
    r.lastLevel[chip] = 0;
    r.irr[chip] &= r.elcr[chip];
    r.imr[chip] = 0;
    r.isr[chip] = 0;
    r.priorityAdd[chip] = 0;
    r.base[chip] = 0;
    r.readIsr[chip] = 0;
    r.poll[chip] = 0;
    r.specialMask[chip] = 0;
    r.initState[chip] = 0;
    r.autoEoi[chip] = 0;
    r.rotateOnAutoEoi[chip] = 0;
    r.specialFullyNested[chip] = 0;
    r.init4[chip] = 0;
    r.single[chip] = 0;
  }

  // ---- Device

  reset(): void {
    for (const f of FIELDS) this.r[f].fill(0);
    this.update();
  }

  saveState(): DeviceState {
    const out: DeviceState = {};
    for (const f of FIELDS) out[f] = [this.r[f][0], this.r[f][1]];
    return out;
  }

  loadState(state: DeviceState): void {
    for (const f of FIELDS) {
      const v = state[f] as number[] | undefined;
      if (v) this.r[f].set(v);
    }
    this.intrOut = false;
    const out = this.pendingIrq(0) >= 0 || false;
    this.intrOut = out;
    this.onIntr(out);
  }
}
