/**
 * MC146818 real-time clock and 128 bytes of CMOS RAM at 0x70 (index; bit 7 = NMI mask) / 0x71 (data).
 *
 * Time is derived from the virtual clock plus a start date, so a paused VM's clock stops and a
 * deterministic run reads the same dates every time. Time is kept as UTC. Periodic (rate from
 * register A), alarm and update-ended interrupts go to IRQ 8; register C reports and clears them.
 * The NVRAM bytes firmware and OSes expect (memory sizes, equipment, boot order, checksum) are
 * filled by `initPcNvram`.
 */
import type { IoBus } from '../machine/io-bus';
import type { IrqLine } from '../machine/irq';
import type { VirtualClock, Timer } from '../machine/clock';
import type { Device, DeviceState } from '../machine/device';
import type { DiskKind } from '../machine/config';

const REG_SEC = 0, REG_SEC_ALARM = 1, REG_MIN = 2, REG_MIN_ALARM = 3, REG_HOUR = 4, REG_HOUR_ALARM = 5;
const REG_WDAY = 6, REG_DAY = 7, REG_MON = 8, REG_YEAR = 9, REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d;
export const CMOS_CENTURY = 0x32;

const B_SET = 0x80, B_PIE = 0x40, B_AIE = 0x20, B_UIE = 0x10, B_DM_BINARY = 0x04, B_24H = 0x02;
const C_IRQF = 0x80, C_PF = 0x40, C_AF = 0x20, C_UF = 0x10;
const A_UIP = 0x80;
/** UIP is high for this long before each update. */
const UIP_NS = 244_000;

export interface PcNvramInfo {
  ramBytes: number;
  bootOrder: DiskKind[];
  /** Number of 1.44 MB floppy drives (0-2). */
  floppies: number;
  cpus: number;
}

export class CmosRtc implements Device {
  readonly name = 'rtc';
  readonly nvram = new Uint8Array(128);
  private index = 0;
  /** NMI mask (port 0x70 bit 7); the machine reads it before raising an NMI. */
  nmiMasked = false;
  /** Seconds since the Unix epoch at virtual time 0. */
  private epochOffset: number;
  private readonly periodicTimer: Timer;
  private readonly secondTimer: Timer;
  private irqLevel = false;

  constructor(
    io: IoBus,
    private readonly irq: IrqLine,
    private readonly clock: VirtualClock,
    startDate: Date = new Date(),
  ) {
    this.epochOffset = Math.floor(startDate.getTime() / 1000) - clock.now() / 1e9;
    this.periodicTimer = clock.createTimer('rtc-periodic', (now) => this.periodicTick(now));
    this.secondTimer = clock.createTimer('rtc-second', (now) => this.secondTick(now));
    io.register(0x70, 1, {
      out8: (_p, v) => {
        this.index = v & 0x7f;
        this.nmiMasked = (v & 0x80) !== 0;
      },
      in8: () => 0xff,
    });
    io.register(0x71, 1, { in8: () => this.readData(), out8: (_p, v) => this.writeData(v) });
    this.resetRegisters(true);
  }

  // ---- time

  private unixSeconds(now = this.clock.now()): number {
    return this.epochOffset + now / 1e9;
  }

  private binary(): boolean {
    return (this.nvram[REG_B] & B_DM_BINARY) !== 0;
  }

  private enc(v: number): number {
    return this.binary() ? v : ((v / 10) | 0) * 16 + (v % 10);
  }

  private dec(v: number): number {
    return this.binary() ? v : (v >> 4) * 10 + (v & 15);
  }

  private encHour(h: number): number {
    if (this.nvram[REG_B] & B_24H) return this.enc(h);
    const pm = h >= 12 ? 0x80 : 0;
    const h12 = h % 12 === 0 ? 12 : h % 12;
    return this.enc(h12) | pm;
  }

  private decHour(v: number): number {
    if (this.nvram[REG_B] & B_24H) return this.dec(v & 0x7f);
    const h12 = this.dec(v & 0x7f) % 12;
    return (v & 0x80 ? 12 : 0) + h12;
  }

  /** Writes the current time into the time registers (skipped while SET holds them). */
  private refreshTimeRegisters(): void {
    if (this.nvram[REG_B] & B_SET) return;
    const d = new Date(Math.floor(this.unixSeconds()) * 1000);
    const n = this.nvram;
    n[REG_SEC] = this.enc(d.getUTCSeconds());
    n[REG_MIN] = this.enc(d.getUTCMinutes());
    n[REG_HOUR] = this.encHour(d.getUTCHours());
    n[REG_WDAY] = this.enc(d.getUTCDay() + 1);
    n[REG_DAY] = this.enc(d.getUTCDate());
    n[REG_MON] = this.enc(d.getUTCMonth() + 1);
    const y = d.getUTCFullYear();
    n[REG_YEAR] = this.enc(y % 100);
    n[CMOS_CENTURY] = this.enc(Math.floor(y / 100));
  }

  /** Takes the time registers as the new current time. */
  private takeTimeRegisters(): void {
    const n = this.nvram;
    const year = this.dec(n[CMOS_CENTURY]) * 100 + this.dec(n[REG_YEAR]);
    const ms = Date.UTC(year, this.dec(n[REG_MON]) - 1, this.dec(n[REG_DAY]), this.decHour(n[REG_HOUR]), this.dec(n[REG_MIN]), this.dec(n[REG_SEC]));
    if (Number.isFinite(ms)) this.epochOffset = ms / 1000 - this.clock.now() / 1e9;
  }

  /** Sets the RTC to `date` (UTC fields). */
  setDate(date: Date): void {
    this.epochOffset = date.getTime() / 1000 - this.clock.now() / 1e9;
    this.scheduleSecond();
  }

  /** The RTC's current date. */
  getDate(): Date {
    return new Date(Math.floor(this.unixSeconds() * 1000));
  }

  // ---- interrupts

  private updateIrq(): void {
    const n = this.nvram;
    const pending = (n[REG_C] & n[REG_B] & (C_PF | C_AF | C_UF)) !== 0;
    if (pending) n[REG_C] |= C_IRQF;
    if (pending && !this.irqLevel) {
      this.irqLevel = true;
      this.irq.raise();
    } else if (!pending && this.irqLevel) {
      this.irqLevel = false;
      this.irq.lower();
    }
  }

  /** Periodic interrupt period in ns, or 0 when the rate select is 0 or the divider stops the clock. */
  private periodNs(): number {
    const a = this.nvram[REG_A];
    let rate = a & 15;
    if (rate === 0 || ((a >> 4) & 7) !== 2) return 0;
    if (rate <= 2) rate += 7;
    return (1e9 * (1 << (rate - 1))) / 32768;
  }

  private schedulePeriodic(): void {
    const p = this.periodNs();
    if (p === 0 || !(this.nvram[REG_B] & B_PIE)) {
      this.periodicTimer.cancel();
      return;
    }
    const now = this.clock.now();
    this.periodicTimer.armAt((Math.floor(now / p) + 1) * p);
  }

  private periodicTick(now: number): void {
    this.nvram[REG_C] |= C_PF;
    this.updateIrq();
    const p = this.periodNs();
    if (p !== 0 && this.nvram[REG_B] & B_PIE) this.periodicTimer.armAt((Math.floor(now / p) + 1) * p);
  }

  private scheduleSecond(): void {
    const n = this.nvram;
    if (!(n[REG_B] & (B_UIE | B_AIE)) || n[REG_B] & B_SET) {
      this.secondTimer.cancel();
      return;
    }
    const s = this.unixSeconds();
    const next = Math.floor(s + 1e-9) + 1;
    this.secondTimer.armAt((next - this.epochOffset) * 1e9 + 1);
  }

  private secondTick(_now: number): void {
    const n = this.nvram;
    if (n[REG_B] & B_SET) return;
    n[REG_C] |= C_UF;
    this.refreshTimeRegisters();
    const match = (alarm: number, cur: number) => (alarm & 0xc0) === 0xc0 || alarm === cur;
    if (match(n[REG_SEC_ALARM], n[REG_SEC]) && match(n[REG_MIN_ALARM], n[REG_MIN]) && match(n[REG_HOUR_ALARM], n[REG_HOUR])) {
      n[REG_C] |= C_AF;
    }
    this.updateIrq();
    this.scheduleSecond();
  }

  // ---- ports

  private readData(): number {
    const i = this.index;
    const n = this.nvram;
    if (i <= REG_YEAR || i === CMOS_CENTURY) {
      this.refreshTimeRegisters();
      return n[i];
    }
    if (i === REG_A) {
      const s = this.unixSeconds();
      const toNext = (Math.floor(s) + 1 - s) * 1e9;
      const uip = !(n[REG_B] & B_SET) && ((n[REG_A] >> 4) & 7) === 2 && toNext <= UIP_NS;
      return (n[REG_A] & 0x7f) | (uip ? A_UIP : 0);
    }
    if (i === REG_C) {
      const v = n[REG_C];
      n[REG_C] = 0;
      this.updateIrq();
      return v;
    }
    if (i === REG_D) return 0x80; // valid RAM and time
    return n[i];
  }

  private writeData(v: number): void {
    const i = this.index;
    const n = this.nvram;
    switch (i) {
      case REG_SEC:
      case REG_MIN:
      case REG_HOUR:
      case REG_WDAY:
      case REG_DAY:
      case REG_MON:
      case REG_YEAR:
      case CMOS_CENTURY:
        this.refreshTimeRegisters();
        n[i] = v;
        if (!(n[REG_B] & B_SET)) {
          this.takeTimeRegisters();
          this.scheduleSecond();
        }
        return;
      case REG_A:
        n[REG_A] = v & 0x7f;
        this.schedulePeriodic();
        return;
      case REG_B: {
        const old = n[REG_B];
        if (v & B_SET && !(old & B_SET)) this.refreshTimeRegisters();
        n[REG_B] = v & ~0x08; // no square-wave output pin
        if (!(v & B_SET) && old & B_SET) this.takeTimeRegisters();
        if (v & B_SET) n[REG_B] &= ~B_UIE;
        this.schedulePeriodic();
        this.scheduleSecond();
        this.updateIrq();
        return;
      }
      case REG_C:
      case REG_D:
        return; // read-only
      default:
        n[i] = v;
    }
  }

  // ---- NVRAM layout

  /** Fills the PC/AT and QEMU/SeaBIOS-compatible CMOS bytes and the checksum. */
  initPcNvram(info: PcNvramInfo): void {
    const n = this.nvram;
    const kb = Math.floor(info.ramBytes / 1024);
    n[0x10] = (info.floppies >= 1 ? 0x40 : 0) | (info.floppies >= 2 ? 0x04 : 0); // 1.44 MB drives
    // Equipment: floppies present and count, FPU, EGA/VGA video.
    n[0x14] = (info.floppies ? 1 : 0) | 0x02 | (info.floppies ? ((info.floppies - 1) & 3) << 6 : 0);
    n[0x15] = 640 & 0xff;
    n[0x16] = 640 >> 8;
    const ext = Math.min(Math.max(kb - 1024, 0), 0xffff);
    n[0x17] = n[0x30] = ext & 0xff;
    n[0x18] = n[0x31] = ext >> 8;
    // Memory above 16 MiB, in 64 KiB units (below the PCI hole).
    const above16 = Math.min(Math.max(Math.floor((info.ramBytes - 16 * 1024 * 1024) / 65536), 0), 0xffff);
    n[0x34] = above16 & 0xff;
    n[0x35] = above16 >> 8;
    n[0x5b] = n[0x5c] = n[0x5d] = 0; // nothing above 4 GiB
    n[0x5f] = Math.max(info.cpus - 1, 0);
    // Boot order as SeaBIOS reads it: 1 floppy, 2 hard disk, 3 CD-ROM; first in 0x3D low nibble.
    const code = (k: DiskKind) => (k === 'floppy' ? 1 : k === 'disk' ? 2 : 3);
    const order = info.bootOrder.map(code);
    n[0x3d] = (order[0] ?? 0) | ((order[1] ?? 0) << 4);
    n[0x38] = ((order[2] ?? 0) << 4) | 0x01; // bit 0: skip the floppy boot signature check
    this.updateChecksum();
  }

  /** The AT checksum over 0x10-0x2D, stored big-endian at 0x2E/0x2F. */
  updateChecksum(): void {
    let sum = 0;
    for (let i = 0x10; i <= 0x2d; i++) sum += this.nvram[i];
    this.nvram[0x2e] = (sum >> 8) & 0xff;
    this.nvram[0x2f] = sum & 0xff;
  }

  // ---- Device

  private resetRegisters(powerOn: boolean): void {
    const n = this.nvram;
    if (powerOn) {
      n[REG_A] = 0x26; // 32.768 kHz, 1024 Hz periodic rate
      n[REG_B] = B_24H; // BCD, 24 hour
      n[REG_SEC_ALARM] = n[REG_MIN_ALARM] = n[REG_HOUR_ALARM] = 0;
    }
    // A reset clears the interrupt enables and flags (MC146818 RESET pin); time and NVRAM survive.
    n[REG_B] &= ~(B_PIE | B_AIE | B_UIE | 0x08);
    n[REG_C] = 0;
    n[REG_D] = 0x80;
    this.updateIrq();
    this.periodicTimer.cancel();
    this.secondTimer.cancel();
  }

  reset(): void {
    this.resetRegisters(false);
  }

  saveState(): DeviceState {
    return { nvram: this.nvram.slice(), index: this.index, nmiMasked: this.nmiMasked, epochOffset: this.epochOffset, irqLevel: this.irqLevel };
  }

  loadState(state: DeviceState): void {
    this.nvram.set(state.nvram as Uint8Array);
    this.index = state.index as number;
    this.nmiMasked = state.nmiMasked as boolean;
    this.epochOffset = state.epochOffset as number;
    this.irqLevel = state.irqLevel as boolean;
    this.schedulePeriodic();
    this.scheduleSecond();
  }
}
