/**
 * I/O APIC (82093AA style) at 0xFEC00000 with 24 pins: IOREGSEL at +0x00, IOWIN at +0x10.
 *
 * ISA IRQ n arrives on pin n except IRQ 0 (the PIT), which is wired to pin 2, as on QEMU's PC and as
 * the MADT's interrupt source override says. Edge-triggered pins latch a rising edge (delivered when
 * unmasked); level-triggered pins deliver while asserted, set Remote IRR, and deliver again after
 * the local APIC broadcasts the EOI if the line is still asserted. Polarity is recorded but lines
 * are modelled as "asserted" booleans, so it does not invert them (as in QEMU).
 */
import type { MmioHandler, PhysicalMemory } from '../machine/memory';
import type { IrqSink } from '../machine/irq';
import type { Device, DeviceState } from '../machine/device';

export const IOAPIC_BASE = 0xfec00000;
export const IOAPIC_PINS = 24;

const RTE_MASKED = 0x10000;
const RTE_LEVEL = 0x8000;
const RTE_REMOTE_IRR = 0x4000;
const RTE_DELIVERY_STATUS = 0x1000;

/** Where the I/O APIC sends interrupt messages (the local APIC). */
export interface ApicMessageSink {
  acceptMessage(mode: number, vector: number, levelTriggered: boolean): void;
}

export class IoApic implements Device, MmioHandler, IrqSink {
  readonly name = 'ioapic';
  id = 0;
  private select = 0;
  /** Redirection entries: low and high dwords. */
  private readonly rteLo = new Uint32Array(IOAPIC_PINS);
  private readonly rteHi = new Uint32Array(IOAPIC_PINS);
  /** Current input levels and latched edges, one bit per pin. */
  private levels = 0;
  private irr = 0;
  target: ApicMessageSink | null = null;

  constructor(mem: PhysicalMemory) {
    mem.mapMmio(IOAPIC_BASE, 0x1000, this);
    this.reset();
  }

  /** ISA IRQ -> pin. */
  static pinForIrq(line: number): number {
    return line === 0 ? 2 : line;
  }

  // ---- IrqSink (lines numbered as ISA IRQs; 16-23 map to pins 16-23)

  setIrq(line: number, level: boolean): void {
    if (line === 2) return; // the cascade input exists only on the 8259
    this.setPin(IoApic.pinForIrq(line), level);
  }

  setPin(pin: number, level: boolean): void {
    if (pin >= IOAPIC_PINS) return;
    const bit = 1 << pin;
    const was = (this.levels & bit) !== 0;
    if (level) this.levels |= bit;
    else this.levels &= ~bit;
    const lo = this.rteLo[pin];
    if (lo & RTE_LEVEL) {
      if (level) {
        this.irr |= bit;
        this.service();
      } else this.irr &= ~bit;
    } else if (level && !was) {
      this.irr |= bit;
      this.service();
    }
  }

  /** EOI broadcast from the local APIC for a level-triggered vector. */
  eoi(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const lo = this.rteLo[pin];
      if ((lo & 0xff) !== vector || !(lo & RTE_REMOTE_IRR)) continue;
      this.rteLo[pin] = lo & ~RTE_REMOTE_IRR;
      if (lo & RTE_LEVEL && this.levels & (1 << pin)) this.irr |= 1 << pin;
    }
    this.service();
  }

  private service(): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const bit = 1 << pin;
      if (!(this.irr & bit)) continue;
      const lo = this.rteLo[pin];
      if (lo & RTE_MASKED) continue;
      const level = (lo & RTE_LEVEL) !== 0;
      if (level) {
        if (lo & RTE_REMOTE_IRR) continue;
        this.rteLo[pin] = lo | RTE_REMOTE_IRR;
      }
      this.irr &= ~bit;
      this.target?.acceptMessage((lo >> 8) & 7, lo & 0xff, level);
    }
  }

  // ---- MMIO

  read8(addr: number): number {
    return (this.read32(addr & ~3) >>> ((addr & 3) * 8)) & 0xff;
  }
  write8(addr: number, value: number): void {
    if ((addr & 0xff) === 0) this.select = value;
    else if ((addr & 0xfc) === 0x10) this.write32(addr & ~3, value);
  }

  read32(addr: number): number {
    const off = addr & 0xff;
    if (off === 0x00) return this.select;
    if (off !== 0x10) return 0;
    const r = this.select;
    if (r === 0) return (this.id << 24) >>> 0;
    if (r === 1) return ((IOAPIC_PINS - 1) << 16) | 0x11;
    if (r === 2) return (this.id << 24) >>> 0;
    if (r >= 0x10 && r < 0x10 + IOAPIC_PINS * 2) {
      const pin = (r - 0x10) >> 1;
      return r & 1 ? this.rteHi[pin] : this.rteLo[pin];
    }
    return 0;
  }

  write32(addr: number, value: number): void {
    const off = addr & 0xff;
    value >>>= 0;
    if (off === 0x00) {
      this.select = value & 0xff;
      return;
    }
    if (off !== 0x10) return;
    const r = this.select;
    if (r === 0) {
      this.id = (value >>> 24) & 0x0f;
      return;
    }
    if (r >= 0x10 && r < 0x10 + IOAPIC_PINS * 2) {
      const pin = (r - 0x10) >> 1;
      if (r & 1) {
        this.rteHi[pin] = value & 0xff000000;
        return;
      }
      const ro = this.rteLo[pin] & (RTE_REMOTE_IRR | RTE_DELIVERY_STATUS);
      this.rteLo[pin] = ((value & ~(RTE_REMOTE_IRR | RTE_DELIVERY_STATUS)) | ro) >>> 0;
      // Switching to edge clears Remote IRR; a level pin still asserted is pending again.
      if (!(value & RTE_LEVEL)) this.rteLo[pin] &= ~RTE_REMOTE_IRR;
      else if (this.levels & (1 << pin)) this.irr |= 1 << pin;
      this.service();
    }
  }

  /** Redirection entry of `pin` as [low, high] (tests, diagnostics). */
  entry(pin: number): [number, number] {
    return [this.rteLo[pin], this.rteHi[pin]];
  }

  // ---- Device

  reset(): void {
    this.id = 0;
    this.select = 0;
    this.rteLo.fill(RTE_MASKED);
    this.rteHi.fill(0);
    this.irr = 0;
  }

  saveState(): DeviceState {
    return { id: this.id, select: this.select, rteLo: Array.from(this.rteLo), rteHi: Array.from(this.rteHi), levels: this.levels, irr: this.irr };
  }

  loadState(s: DeviceState): void {
    this.id = s.id as number;
    this.select = s.select as number;
    this.rteLo.set(s.rteLo as number[]);
    this.rteHi.set(s.rteHi as number[]);
    this.levels = s.levels as number;
    this.irr = s.irr as number;
  }
}
