/**
 * Local APIC (xAPIC, MMIO at 0xFEE00000) of the single CPU.
 *
 * It accepts fixed interrupts from the I/O APIC, its own timer, LVT entries and self-IPIs into IRR,
 * delivers the highest one above the processor priority, moves it to ISR on acknowledge, and on EOI
 * of a level-triggered vector broadcasts the EOI to the I/O APIC. LINT0 is wired to the 8259's INTR:
 * in ExtINT mode (the virtual-wire setting firmware leaves, and our reset value, as QEMU's) the PIC
 * reaches the CPU through it. LINT1 in NMI mode raises an NMI. The timer counts on the virtual clock
 * at 1 GHz / divide configuration; one-shot and periodic modes; TSC-deadline is not offered.
 * INIT/STARTUP IPIs are accepted and ignored (one CPU).
 */
import type { MmioHandler, PhysicalMemory } from '../machine/memory';
import type { VirtualClock, Timer } from '../machine/clock';
import type { Device, DeviceState } from '../machine/device';

export const LAPIC_BASE = 0xfee00000;
const BUS_NS = 1; // timer input clock: 1 GHz before the divider

const LVT_TIMER = 0, LVT_THERMAL = 1, LVT_PERF = 2, LVT_LINT0 = 3, LVT_LINT1 = 4, LVT_ERROR = 5, LVT_CMCI = 6;
const LVT_MASKED = 1 << 16;
const DM_FIXED = 0, DM_SMI = 2, DM_NMI = 4, DM_INIT = 5, DM_EXTINT = 7;
const SVR_ENABLE = 1 << 8;

export interface LocalApicCpu {
  setIntr(level: boolean): void;
  raiseNmi(): void;
}

export class LocalApic implements Device, MmioHandler {
  readonly name = 'lapic';
  id = 0;
  private tpr = 0;
  private ldr = 0;
  private dfr = 0xffffffff;
  private svr = 0xff;
  private readonly isr = new Uint32Array(8);
  private readonly tmr = new Uint32Array(8);
  private readonly irr = new Uint32Array(8);
  private esr = 0;
  private pendingEsr = 0;
  private icrLow = 0;
  private icrHigh = 0;
  private readonly lvt = new Uint32Array(7);
  private initialCount = 0;
  private divideConfig = 0;
  /** Virtual time the current count started from. */
  private timerStart = 0;
  private readonly timer: Timer;
  /** State of the 8259's INTR on LINT0, and the last level seen on LINT1. */
  private lint0Level = false;
  private lint1Level = false;
  /** Global enable (IA32_APIC_BASE bit 11); when off the PIC goes straight to the CPU. */
  globalEnable = true;
  private intrOut = false;

  /** Set by the machine: the CPU pins, the 8259 acknowledge, and the I/O APIC's EOI input. */
  cpu: LocalApicCpu | null = null;
  picAcknowledge: () => number = () => 0x0f;
  onEoi: (vector: number) => void = () => {};

  constructor(
    mem: PhysicalMemory,
    private readonly clock: VirtualClock,
  ) {
    this.timer = clock.createTimer('lapic-timer', () => this.timerFired());
    mem.mapMmio(LAPIC_BASE, 0x1000, this);
    this.reset();
  }

  // ---- MMIO (32-bit registers at 16-byte strides; narrower reads extract from them)

  read8(addr: number): number {
    return (this.read32(addr & ~3) >>> ((addr & 3) * 8)) & 0xff;
  }
  read16(addr: number): number {
    return (this.read32(addr & ~3) >>> ((addr & 2) * 8)) & 0xffff;
  }
  write8(addr: number, value: number): void {
    if ((addr & 0xf) === 0) this.write32(addr, value);
  }
  write16(addr: number, value: number): void {
    if ((addr & 0xf) === 0) this.write32(addr, value);
  }

  read32(addr: number): number {
    const reg = (addr & 0xff0) >> 4;
    switch (reg) {
      case 0x02:
        return (this.id << 24) >>> 0;
      case 0x03:
        return 0x00050014; // version 0x14, 6 LVT entries (max LVT index 5)
      case 0x08:
        return this.tpr;
      case 0x09:
        return 0;
      case 0x0a:
        return this.ppr();
      case 0x0b:
        return 0;
      case 0x0d:
        return this.ldr;
      case 0x0e:
        return this.dfr;
      case 0x0f:
        return this.svr;
      case 0x28:
        return this.esr;
      case 0x2f:
        return this.lvt[LVT_CMCI];
      case 0x30:
        return this.icrLow;
      case 0x31:
        return this.icrHigh;
      case 0x32: case 0x33: case 0x34: case 0x35: case 0x36: case 0x37:
        return this.lvt[reg - 0x32];
      case 0x38:
        return this.initialCount;
      case 0x39:
        return this.currentCount();
      case 0x3e:
        return this.divideConfig;
      default:
        if (reg >= 0x10 && reg < 0x18) return this.isr[reg - 0x10];
        if (reg >= 0x18 && reg < 0x20) return this.tmr[reg - 0x18];
        if (reg >= 0x20 && reg < 0x28) return this.irr[reg - 0x20];
        return 0;
    }
  }

  write32(addr: number, value: number): void {
    value >>>= 0;
    const reg = (addr & 0xff0) >> 4;
    switch (reg) {
      case 0x02:
        this.id = value >>> 24;
        break;
      case 0x08:
        this.tpr = value & 0xff;
        this.update();
        break;
      case 0x0b:
        this.eoi();
        break;
      case 0x0d:
        this.ldr = value & 0xff000000;
        break;
      case 0x0e:
        this.dfr = (value | 0x0fffffff) >>> 0;
        break;
      case 0x0f:
        this.svr = value & 0x3ff;
        // Software disable masks every LVT entry.
        if (!(this.svr & SVR_ENABLE)) for (let i = 0; i < 7; i++) this.lvt[i] |= LVT_MASKED;
        this.update();
        break;
      case 0x28:
        // A write latches the errors collected since the last write.
        this.esr = this.pendingEsr;
        this.pendingEsr = 0;
        break;
      case 0x2f:
        this.writeLvt(LVT_CMCI, value);
        break;
      case 0x30:
        this.icrLow = value & ~(1 << 12);
        this.sendIpi();
        break;
      case 0x31:
        this.icrHigh = value & 0xff000000;
        break;
      case 0x32: case 0x33: case 0x34: case 0x35: case 0x36: case 0x37:
        this.writeLvt(reg - 0x32, value);
        break;
      case 0x38:
        this.initialCount = value;
        this.timerStart = this.clock.now();
        this.scheduleTimer();
        break;
      case 0x3e:
        this.divideConfig = value & 0xb;
        this.timerStart = this.clock.now();
        this.scheduleTimer();
        break;
      default:
        break;
    }
  }

  private writeLvt(i: number, value: number): void {
    if (!(this.svr & SVR_ENABLE)) value |= LVT_MASKED;
    const masks = [0x700ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff, 0x107ff];
    const keep = this.lvt[i] & (1 << 14); // remote IRR of LINT0/1 is read-only
    this.lvt[i] = ((value & masks[i]) | keep) >>> 0;
    if (i === LVT_TIMER) this.scheduleTimer();
    if (i === LVT_LINT0) this.updateOutput();
  }

  // ---- priorities

  private static highest(bits: Uint32Array): number {
    for (let w = 7; w >= 0; w--) {
      const v = bits[w];
      if (v) return w * 32 + 31 - Math.clz32(v);
    }
    return -1;
  }

  private ppr(): number {
    const isrv = LocalApic.highest(this.isr);
    const isrClass = isrv < 0 ? 0 : isrv & 0xf0;
    return (this.tpr & 0xf0) >= isrClass ? this.tpr : isrClass;
  }

  /** The vector that would be delivered now, or -1. */
  private deliverable(): number {
    if (!(this.svr & SVR_ENABLE) || !this.globalEnable) return -1;
    const v = LocalApic.highest(this.irr);
    if (v < 0) return -1;
    return (v & 0xf0) > (this.ppr() & 0xf0) ? v : -1;
  }

  /** True when LINT0 passes the 8259 through (APIC globally disabled, or LINT0 unmasked ExtINT). */
  private extIntOpen(): boolean {
    if (!this.globalEnable) return true;
    const l = this.lvt[LVT_LINT0];
    return !(l & LVT_MASKED) && ((l >> 8) & 7) === DM_EXTINT;
  }

  private update(): void {
    this.updateOutput();
  }

  private updateOutput(): void {
    const out = this.deliverable() >= 0 || (this.lint0Level && this.extIntOpen());
    if (out !== this.intrOut) {
      this.intrOut = out;
      this.cpu?.setIntr(out);
    }
  }

  // ---- inputs

  /** Accepts a fixed interrupt (from the I/O APIC, an IPI, an LVT entry). */
  acceptInterrupt(vector: number, levelTriggered: boolean): void {
    if (vector < 16) {
      this.error(1 << 6); // received illegal vector
      return;
    }
    const w = vector >> 5;
    const bit = 1 << (vector & 31);
    this.irr[w] |= bit;
    if (levelTriggered) this.tmr[w] |= bit;
    else this.tmr[w] &= ~bit;
    this.update();
  }

  /** Delivery of a non-fixed mode message (NMI, INIT, ExtINT) from the I/O APIC. */
  acceptMessage(mode: number, vector: number, levelTriggered: boolean): void {
    switch (mode) {
      case DM_FIXED:
      case 1: // lowest priority: we are the only CPU
        this.acceptInterrupt(vector, levelTriggered);
        break;
      case DM_NMI:
        this.cpu?.raiseNmi();
        break;
      default:
        break; // SMI, INIT, SIPI, ExtINT through the I/O APIC: not used with one CPU
    }
  }

  /** The 8259's INTR output. */
  setLint0(level: boolean): void {
    this.lint0Level = level;
    const l = this.lvt[LVT_LINT0];
    if (level && !(l & LVT_MASKED) && this.globalEnable) {
      const mode = (l >> 8) & 7;
      if (mode === DM_NMI) this.cpu?.raiseNmi();
      else if (mode === DM_FIXED) this.acceptInterrupt(l & 0xff, ((l >> 15) & 1) === 1);
    }
    this.updateOutput();
  }

  /** The NMI input. */
  setLint1(level: boolean): void {
    const rising = level && !this.lint1Level;
    this.lint1Level = level;
    if (!rising) return;
    const l = this.lvt[LVT_LINT1];
    if (!this.globalEnable || (!(l & LVT_MASKED) && ((l >> 8) & 7) === DM_NMI)) this.cpu?.raiseNmi();
  }

  /** INTA: the vector to deliver (APIC first, then the 8259 through ExtINT, else the spurious vector). */
  acknowledge(): number {
    const v = this.deliverable();
    if (v >= 0) {
      const w = v >> 5;
      const bit = 1 << (v & 31);
      this.irr[w] &= ~bit;
      this.isr[w] |= bit;
      this.update();
      return v;
    }
    if (this.lint0Level && this.extIntOpen()) {
      const vector = this.picAcknowledge();
      this.updateOutput();
      return vector;
    }
    this.updateOutput();
    return this.svr & 0xff;
  }

  private eoi(): void {
    const v = LocalApic.highest(this.isr);
    if (v < 0) return;
    const w = v >> 5;
    const bit = 1 << (v & 31);
    this.isr[w] &= ~bit;
    const level = (this.tmr[w] & bit) !== 0;
    this.update();
    if (level) this.onEoi(v);
  }

  private error(bits: number): void {
    this.pendingEsr |= bits;
    const l = this.lvt[LVT_ERROR];
    if (!(l & LVT_MASKED)) {
      const vector = l & 0xff;
      if (vector >= 16) {
        const w = vector >> 5;
        this.irr[w] |= 1 << (vector & 31);
        this.tmr[w] &= ~(1 << (vector & 31));
        this.update();
      }
    }
  }

  private sendIpi(): void {
    const mode = (this.icrLow >> 8) & 7;
    const vector = this.icrLow & 0xff;
    const shorthand = (this.icrLow >> 18) & 3;
    let toSelf: boolean;
    if (shorthand === 1 || shorthand === 2) toSelf = true;
    else if (shorthand === 3) toSelf = false;
    else {
      const dest = this.icrHigh >>> 24;
      const logical = (this.icrLow & (1 << 11)) !== 0;
      toSelf = logical ? (dest & (this.ldr >>> 24)) !== 0 : dest === this.id || dest === 0xff;
    }
    if (!toSelf) return; // no other CPUs: the IPI goes nowhere
    if (mode === DM_FIXED || mode === 1) this.acceptInterrupt(vector, false);
    else if (mode === DM_NMI) this.cpu?.raiseNmi();
    // INIT and STARTUP to ourselves are ignored: there is no second CPU to start.
  }

  // ---- timer

  private divisor(): number {
    const v = (this.divideConfig & 3) | ((this.divideConfig >> 1) & 4);
    return v === 7 ? 1 : 2 << v;
  }

  private tickNs(): number {
    return BUS_NS * this.divisor();
  }

  private currentCount(): number {
    if (this.initialCount === 0) return 0;
    const elapsed = Math.floor((this.clock.now() - this.timerStart) / this.tickNs());
    const periodic = ((this.lvt[LVT_TIMER] >> 17) & 3) === 1;
    if (periodic) return this.initialCount - (elapsed % this.initialCount);
    return elapsed >= this.initialCount ? 0 : this.initialCount - elapsed;
  }

  private scheduleTimer(): void {
    if (this.initialCount === 0) {
      this.timer.cancel();
      return;
    }
    const period = this.initialCount * this.tickNs();
    const now = this.clock.now();
    const periodic = ((this.lvt[LVT_TIMER] >> 17) & 3) === 1;
    const elapsed = now - this.timerStart;
    if (periodic) {
      this.timer.armAt(this.timerStart + (Math.floor(elapsed / period) + 1) * period);
    } else if (elapsed < period) {
      this.timer.armAt(this.timerStart + period);
    } else this.timer.cancel();
  }

  private timerFired(): void {
    const l = this.lvt[LVT_TIMER];
    if (!(l & LVT_MASKED)) this.acceptInterrupt(l & 0xff, false);
    const periodic = ((l >> 17) & 3) === 1;
    if (periodic && this.initialCount) {
      const period = this.initialCount * this.tickNs();
      const now = this.clock.now();
      // Keep the phase; drop periods missed while the host was busy.
      this.timerStart += Math.floor((now - this.timerStart) / period) * period;
      this.timer.armAt(this.timerStart + period);
    }
  }

  // ---- Device

  reset(): void {
    this.id = 0;
    this.tpr = 0;
    this.ldr = 0;
    this.dfr = 0xffffffff;
    this.svr = 0xff;
    this.isr.fill(0);
    this.tmr.fill(0);
    this.irr.fill(0);
    this.esr = this.pendingEsr = 0;
    this.icrLow = this.icrHigh = 0;
    this.lvt.fill(LVT_MASKED);
    // As QEMU does for the BSP: LINT0 starts as unmasked ExtINT so the 8259 works before firmware touches the APIC.
    this.lvt[LVT_LINT0] = DM_EXTINT << 8;
    this.initialCount = 0;
    this.divideConfig = 0;
    this.timerStart = 0;
    this.timer.cancel();
    this.globalEnable = true;
    this.updateOutput();
  }

  saveState(): DeviceState {
    return {
      id: this.id, tpr: this.tpr, ldr: this.ldr, dfr: this.dfr, svr: this.svr,
      isr: Array.from(this.isr), tmr: Array.from(this.tmr), irr: Array.from(this.irr), esr: this.esr, pendingEsr: this.pendingEsr,
      icrLow: this.icrLow, icrHigh: this.icrHigh, lvt: Array.from(this.lvt), initialCount: this.initialCount,
      divideConfig: this.divideConfig, timerStart: this.timerStart, lint0Level: this.lint0Level, lint1Level: this.lint1Level,
      globalEnable: this.globalEnable,
    };
  }

  loadState(s: DeviceState): void {
    this.id = s.id as number;
    this.tpr = s.tpr as number;
    this.ldr = s.ldr as number;
    this.dfr = s.dfr as number;
    this.svr = s.svr as number;
    this.isr.set(s.isr as number[]);
    this.tmr.set(s.tmr as number[]);
    this.irr.set(s.irr as number[]);
    this.esr = s.esr as number;
    this.pendingEsr = s.pendingEsr as number;
    this.icrLow = s.icrLow as number;
    this.icrHigh = s.icrHigh as number;
    this.lvt.set(s.lvt as number[]);
    this.initialCount = s.initialCount as number;
    this.divideConfig = s.divideConfig as number;
    this.timerStart = s.timerStart as number;
    this.lint0Level = s.lint0Level as boolean;
    this.lint1Level = s.lint1Level as boolean;
    this.globalEnable = s.globalEnable as boolean;
    this.scheduleTimer();
    this.intrOut = this.deliverable() >= 0 || (this.lint0Level && this.extIntOpen());
    this.cpu?.setIntr(this.intrOut);
  }
}

export { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, DM_SMI, DM_INIT };
