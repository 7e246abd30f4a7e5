/**
 * PIIX4-style ACPI power management function (8086:7113, slot 1 function 3).
 *
 * Fixed-hardware registers at the PM base (PMBA, config 0x40; default 0xB000, enabled through
 * PMREGMISC 0x80): PM1a_EVT at +0 (PM1_STS, PM1_EN), PM1a_CNT at +4, PM_TMR at +8 (24-bit,
 * 3.579545 MHz, from the virtual clock). GPE0 at 0xAFE0 (2 bytes status, 2 bytes enable), as QEMU.
 * The SCI is IRQ 9, level, asserted while an enabled status bit is set. SLP_EN with SLP_TYP 0 (the
 * PIIX4 encoding QEMU's DSDT uses; 5 and 7 are accepted too) powers the machine off. The APM/SMI
 * command port 0xB2 takes ACPI_ENABLE (0xF1) / ACPI_DISABLE (0xF0) by setting SCI_EN, standing in
 * for the SMM handler a real board runs there.
 */
import { PciDevice } from './pci-bus';
import type { IoBus } from '../machine/io-bus';
import type { IrqLine } from '../machine/irq';
import type { VirtualClock, Timer } from '../machine/clock';
import type { DeviceState } from '../machine/device';

export const ACPI_PM_BASE = 0xb000;
export const ACPI_GPE0_BASE = 0xafe0;
export const ACPI_SCI_IRQ = 9;
export const ACPI_SMI_CMD = 0xb2;
export const ACPI_ENABLE = 0xf1;
export const ACPI_DISABLE = 0xf0;
export const PM_TIMER_HZ = 3579545;

const STS_TMR = 1 << 0, STS_BM = 1 << 4, STS_GBL = 1 << 5, STS_PWRBTN = 1 << 8, STS_RTC = 1 << 10, STS_WAK = 1 << 15;
const EVT_MASK = STS_TMR | STS_GBL | STS_PWRBTN | STS_RTC;
const CNT_SCI_EN = 1, CNT_SLP_EN = 1 << 13;

export class AcpiPm extends PciDevice {
  /** The guest entered S5 (soft off). */
  onPowerOff: () => void = () => {};
  /** The guest asked for a sleep state we do not implement (S1-S4). */
  onSleep: (slpTyp: number) => void = () => {};

  private sts = 0;
  private en = 0;
  private cnt = 0;
  private gpeSts = 0;
  private gpeEn = 0;
  private apmCnt = 0;
  private apmSts = 0;
  private sciLevel = false;
  private mappedBase = -1;
  private readonly overflowTimer: Timer;

  constructor(
    private readonly io: IoBus,
    private readonly sci: IrqLine,
    private readonly clock: VirtualClock,
  ) {
    super('acpi-pm', { vendorId: 0x8086, deviceId: 0x7113, classCode: 0x068000, revision: 0x03, interruptPin: 1 });
    this.writeMask[0x40] = 0xc0;
    this.writeMask[0x41] = 0xff;
    this.writeMask[0x80] = 0x01;
    for (const r of [0x58, 0x59, 0x5a, 0x5b, 0x90, 0x91, 0x92, 0x93, 0xd2]) this.writeMask[r] = 0xff;
    this.set32(0x40, ACPI_PM_BASE | 1);
    this.config[0x80] = 0x01;
    this.config[0x3c] = ACPI_SCI_IRQ;
    this.config[0x07] = 0x02;
    this.overflowTimer = clock.createTimer('acpi-pm-timer', () => {
      this.sts |= STS_TMR;
      this.updateSci();
      this.scheduleOverflow();
    });
    io.register(ACPI_GPE0_BASE, 4, {
      in8: (p) => this.gpeRead(p - ACPI_GPE0_BASE),
      out8: (p, v) => this.gpeWrite(p - ACPI_GPE0_BASE, v),
    });
    io.register(ACPI_SMI_CMD, 2, {
      in8: (p) => (p === ACPI_SMI_CMD ? this.apmCnt : this.apmSts),
      out8: (p, v) => {
        if (p !== ACPI_SMI_CMD) {
          this.apmSts = v;
          return;
        }
        this.apmCnt = v;
        if (v === ACPI_ENABLE) this.cnt |= CNT_SCI_EN;
        else if (v === ACPI_DISABLE) this.cnt &= ~CNT_SCI_EN;
        // With APMC_EN (DEVACTB bit 25) a real board raises an SMI here. We have no SMM; firmware that
        // waits for its handler to acknowledge through the APM status port (SeaBIOS writes 0 there)
        // sees that acknowledgement at once.
        if (this.config[0x5b] & 0x02) this.apmSts = 0;
      },
    });
    this.remapPm();
  }

  /** PM base as programmed in PMBA, or -1 when PM I/O decoding is off. */
  get pmBase(): number {
    if (!(this.config[0x80] & 1)) return -1;
    return this.get32(0x40) & 0xffc0;
  }

  private remapPm(): void {
    const base = this.pmBase;
    if (base === this.mappedBase) return;
    if (this.mappedBase >= 0) this.io.unregister(this.mappedBase, 64);
    this.mappedBase = base;
    if (base < 0) return;
    this.io.register(base, 64, {
      in8: (p) => this.pmRead(p - base, 1),
      in16: (p) => this.pmRead(p - base, 2),
      in32: (p) => this.pmRead(p - base, 4),
      out8: (p, v) => this.pmWrite(p - base, v, 1),
      out16: (p, v) => this.pmWrite(p - base, v, 2),
      out32: (p, v) => this.pmWrite(p - base, v, 4),
    });
  }

  override writeConfig(offset: number, value: number, size: 1 | 2 | 4): void {
    super.writeConfig(offset, value, size);
    this.config[0x40] |= 1; // PMBA bit 0 reads as 1 (I/O space indicator)
    this.remapPm();
  }

  /** The 24-bit PM timer value now. */
  timerValue(): number {
    return Math.floor((this.clock.now() * PM_TIMER_HZ) / 1e9) & 0xffffff;
  }

  private scheduleOverflow(): void {
    if (!(this.en & STS_TMR)) {
      this.overflowTimer.cancel();
      return;
    }
    // TMR_STS is set whenever bit 23 of the counter toggles.
    const ticks = Math.floor((this.clock.now() * PM_TIMER_HZ) / 1e9);
    const next = (Math.floor(ticks / 0x800000) + 1) * 0x800000;
    this.overflowTimer.armAt(Math.ceil((next * 1e9) / PM_TIMER_HZ));
  }

  private updateSci(): void {
    const level = (this.sts & this.en & EVT_MASK) !== 0 || (this.gpeSts & this.gpeEn) !== 0;
    if (level === this.sciLevel) return;
    this.sciLevel = level;
    if (level) this.sci.raise();
    else this.sci.lower();
  }

  /** The power button was pressed (the guest sees PWRBTN_STS and an SCI if it enabled PWRBTN_EN). */
  pressPowerButton(): void {
    this.sts |= STS_PWRBTN;
    this.updateSci();
  }

  /** True when the guest OS has enabled the power button event (an ACPI OS is listening). */
  get powerButtonEnabled(): boolean {
    return (this.en & STS_PWRBTN) !== 0;
  }

  /** Raises general-purpose event bit `n` (hot-plug and friends). */
  raiseGpe(n: number): void {
    this.gpeSts |= 1 << n;
    this.updateSci();
  }

  private pmRead(off: number, size: number): number {
    // One sample of the timer per access, so a dword read is never torn.
    if (off >= 8 && off < 12) return (this.timerValue() >>> ((off - 8) * 8)) & (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1);
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.pmReadByte(off + i) << (i * 8);
    return v >>> 0;
  }

  private pmReadByte(off: number): number {
    switch (off) {
      case 0: return this.sts & 0xff;
      case 1: return (this.sts >> 8) & 0xff;
      case 2: return this.en & 0xff;
      case 3: return (this.en >> 8) & 0xff;
      case 4: return this.cnt & 0xff;
      case 5: return (this.cnt >> 8) & 0xff;
      default: return 0;
    }
  }

  private pmWrite(off: number, value: number, size: number): void {
    if (off === 0 && size >= 2) {
      this.writeSts(value & 0xffff);
      if (size === 4) this.writeEn(value >>> 16);
      return;
    }
    if (off === 2 && size >= 2) return this.writeEn(value & 0xffff);
    if (off === 4 && size >= 2) return this.writeCnt(value & 0xffff);
    for (let i = 0; i < size; i++) {
      const o = off + i;
      const b = (value >>> (i * 8)) & 0xff;
      if (o === 0) this.writeSts(b);
      else if (o === 1) this.writeSts(b << 8);
      else if (o === 2) this.writeEn((this.en & 0xff00) | b);
      else if (o === 3) this.writeEn((this.en & 0xff) | (b << 8));
      else if (o === 4) this.writeCnt((this.cnt & 0xff00) | b);
      else if (o === 5) this.writeCnt((this.cnt & 0xff) | (b << 8));
    }
  }

  private writeSts(v: number): void {
    this.sts &= ~(v & (EVT_MASK | STS_BM | STS_WAK));
    this.updateSci();
  }

  private writeEn(v: number): void {
    this.en = v & EVT_MASK;
    this.updateSci();
    this.scheduleOverflow();
  }

  private writeCnt(v: number): void {
    this.cnt = v & ~CNT_SLP_EN;
    if (v & CNT_SLP_EN) {
      const typ = (v >> 10) & 7;
      if (typ === 0 || typ === 5 || typ === 7) this.onPowerOff();
      else {
        // Waking at once is what a board without S1-S4 support looks like to the OS.
        this.sts |= STS_WAK;
        this.onSleep(typ);
      }
    }
  }

  private gpeRead(off: number): number {
    if (off < 2) return (this.gpeSts >> (off * 8)) & 0xff;
    return (this.gpeEn >> ((off - 2) * 8)) & 0xff;
  }

  private gpeWrite(off: number, v: number): void {
    if (off < 2) this.gpeSts &= ~(v << (off * 8));
    else this.gpeEn = (this.gpeEn & ~(0xff << ((off - 2) * 8))) | (v << ((off - 2) * 8));
    this.updateSci();
  }

  override reset(): void {
    super.reset();
    this.sts = this.en = this.cnt = 0;
    this.gpeSts = this.gpeEn = 0;
    this.apmCnt = this.apmSts = 0;
    this.overflowTimer.cancel();
    this.updateSci();
    this.remapPm();
  }

  override saveState(): DeviceState {
    return {
      ...super.saveState(), sts: this.sts, en: this.en, cnt: this.cnt, gpeSts: this.gpeSts, gpeEn: this.gpeEn,
      apmCnt: this.apmCnt, apmSts: this.apmSts,
    };
  }

  override loadState(s: DeviceState): void {
    super.loadState(s);
    this.sts = s.sts as number;
    this.en = s.en as number;
    this.cnt = s.cnt as number;
    this.gpeSts = s.gpeSts as number;
    this.gpeEn = s.gpeEn as number;
    this.apmCnt = s.apmCnt as number;
    this.apmSts = s.apmSts as number;
    this.remapPm();
    this.sciLevel = false;
    this.updateSci();
    this.scheduleOverflow();
  }
}
