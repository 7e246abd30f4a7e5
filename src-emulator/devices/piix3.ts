/**
 * Intel 82371SB (PIIX3) PCI-to-ISA bridge, function 0 of slot 1 (multi-function: IDE is 1.1, the
 * PIIX4-style power management function 1.3).
 *
 * PIRQ route control (0x60-0x63) maps PCI INTA#-INTD# to ISA IRQs; a PCI function's pin lands on
 * PIRQ ((slot - 1) + (pin - 1)) & 3, the swizzle QEMU and the firmware's _PRT/MP table use. Routed
 * levels drive the ISA line wire-ORed with everything else on it, so the 8259 (level mode via ELCR)
 * and the I/O APIC (pin = IRQ) both see it. ELCR is decoded here at 0x4D0/0x4D1 and stored in the
 * 8259 pair. The reset control register at 0xCF9 lives here too.
 */
import { PciDevice } from './pci-bus';
import type { IoBus } from '../machine/io-bus';
import type { IrqLine, IrqRouter } from '../machine/irq';
import type { Pic8259Pair } from './pic8259';
import type { DeviceState } from '../machine/device';

const VALID_IRQS = 0xdef8; // 3-7, 9-12, 14, 15

export class Piix3IsaBridge extends PciDevice {
  /** Guest asked for a reset through 0xCF9 (bit 2 rising; bit 1 asks for a hard reset). */
  onReset: () => void = () => {};
  private rcr = 0;
  /** Assert counts per PIRQ A-D. */
  private readonly pirqCount = new Uint8Array(4);
  private readonly slotPinLevel = new Map<number, boolean>();
  /** Which ISA IRQ each PIRQ currently drives (-1 none), and that line's shared source. */
  private readonly driven = [-1, -1, -1, -1];
  private readonly lines: IrqLine[][] = [];

  constructor(
    io: IoBus,
    private readonly irqRouter: IrqRouter,
    private readonly pic: Pic8259Pair,
  ) {
    super('piix3', { vendorId: 0x8086, deviceId: 0x7000, classCode: 0x060100, headerType: 0x80 });
    for (let r = 0x60; r <= 0x63; r++) {
      this.writeMask[r] = 0x8f;
      this.config[r] = 0x80;
    }
    for (const r of [0x4c, 0x4e, 0x4f, 0x69, 0x6a, 0x70, 0x76, 0x77, 0x80, 0x82, 0xa0, 0xa2, 0xa8, 0xaa, 0xab, 0xac, 0xae]) this.writeMask[r] = 0xff;
    this.config[0x4c] = 0x4d;
    this.config[0x4e] = 0x03;
    this.config[0x69] = 0x02;
    this.config[0x70] = 0x80;
    this.config[0x76] = this.config[0x77] = 0x0c;
    this.config[0x07] = 0x02;
    // One shared-line source per (PIRQ, IRQ) so that PCI levels wire-OR with ISA devices.
    for (let p = 0; p < 4; p++) {
      this.lines.push([]);
      for (let irq = 0; irq < 16; irq++) this.lines[p].push(irqRouter.sharedLine(irq));
    }
    io.register(0x4d0, 2, {
      in8: (p) => pic.getElcr((p - 0x4d0) as 0 | 1),
      out8: (p, v) => pic.setElcr((p - 0x4d0) as 0 | 1, v),
    });
    io.register(0xcf9, 1, {
      in8: () => this.rcr,
      out8: (_p, v) => {
        const rising = v & 4 && !(this.rcr & 4);
        this.rcr = v & 0x02;
        if (rising) this.onReset();
      },
    });
  }

  /** The PIRQ (0-3) a function's INTx pin (1-4) in `slot` is wired to. */
  static pirqFor(slot: number, pin: number): number {
    return (slot - 1 + pin - 1) & 3;
  }

  /** ISA IRQ routed for PIRQ `n`, or -1 when routing is disabled. */
  routedIrq(n: number): number {
    const r = this.config[0x60 + n];
    if (r & 0x80) return -1;
    const irq = r & 0x0f;
    return VALID_IRQS & (1 << irq) ? irq : -1;
  }

  /** Installed as the PCI bus's INTx router by the machine. */
  routeIntx(slot: number, pin: number, level: boolean): void {
    const key = slot * 8 + pin;
    if ((this.slotPinLevel.get(key) ?? false) === level) return;
    this.slotPinLevel.set(key, level);
    const n = Piix3IsaBridge.pirqFor(slot, pin);
    this.pirqCount[n] += level ? 1 : -1;
    this.drivePirq(n);
  }

  private drivePirq(n: number): void {
    const want = this.pirqCount[n] > 0 ? this.routedIrq(n) : -1;
    const cur = this.driven[n];
    if (want === cur) return;
    if (cur >= 0) this.lines[n][cur].lower();
    if (want >= 0) this.lines[n][want].raise();
    this.driven[n] = want;
  }

  override writeConfig(offset: number, value: number, size: 1 | 2 | 4): void {
    super.writeConfig(offset, value, size);
    if (offset <= 0x63 && offset + size > 0x60) for (let n = 0; n < 4; n++) this.drivePirq(n);
  }

  override reset(): void {
    super.reset();
    this.rcr = 0;
    this.pic.setElcr(0, 0);
    this.pic.setElcr(1, 0);
    for (let n = 0; n < 4; n++) this.drivePirq(n);
  }

  override saveState(): DeviceState {
    return { ...super.saveState(), rcr: this.rcr, pirqCount: Array.from(this.pirqCount), slotPins: Array.from(this.slotPinLevel.entries()).filter(([, l]) => l).map(([k]) => k) };
  }

  override loadState(state: DeviceState): void {
    super.loadState(state);
    this.rcr = (state.rcr as number) ?? 0;
    this.pirqCount.set((state.pirqCount as number[]) ?? [0, 0, 0, 0]);
    this.slotPinLevel.clear();
    for (const k of (state.slotPins as number[]) ?? []) this.slotPinLevel.set(k, true);
    for (let n = 0; n < 4; n++) this.drivePirq(n);
  }
}
