/**
 * 16550A UART with 16-byte FIFOs. COM1-COM4 sit at 0x3F8/0x2F8/0x3E8/0x2E8 on IRQ 4/3/4/3.
 *
 * Transmission is instant (the byte leaves through `onTransmit` as THR is written, so THRE is
 * reported at once), which guests accept and which keeps console output fast. Received bytes that
 * do not fit the FIFO wait in a host-side backlog instead of overrunning, so pasted input is never
 * lost. Interrupt priorities, IIR identification/clearing, the FIFO trigger levels, the character
 * timeout (4 character times on the virtual clock), loopback with the modem lines looped back, and
 * the PC's OUT2 gating of the IRQ line are as on the chip.
 */
import type { IoBus } from '../machine/io-bus';
import type { IrqLine } from '../machine/irq';
import type { VirtualClock, Timer } from '../machine/clock';
import type { Device, DeviceState } from '../machine/device';

export const COM_PORTS = [
  { base: 0x3f8, irq: 4 },
  { base: 0x2f8, irq: 3 },
  { base: 0x3e8, irq: 4 },
  { base: 0x2e8, irq: 3 },
] as const;

const FIFO_SIZE = 16;
const IER_RDA = 1, IER_THRE = 2, IER_RLS = 4, IER_MS = 8;
const LSR_DR = 0x01, LSR_OE = 0x02, LSR_BI = 0x10, LSR_THRE = 0x20, LSR_TEMT = 0x40, LSR_FIFOERR = 0x80;
const MCR_DTR = 1, MCR_RTS = 2, MCR_OUT1 = 4, MCR_OUT2 = 8, MCR_LOOP = 0x10;
const IIR_NONE = 0x01, IIR_MS = 0x00, IIR_THRE = 0x02, IIR_RDA = 0x04, IIR_RLS = 0x06, IIR_TIMEOUT = 0x0c;
const TRIGGER = [1, 4, 8, 14];

export class Uart16550 implements Device {
  readonly name: string;
  /** Bytes the guest sent (not in loopback). */
  onTransmit: (byte: number) => void = () => {};

  private rx: number[] = [];
  private backlog: number[] = [];
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private lsr = LSR_THRE | LSR_TEMT;
  private msr = 0;
  private scr = 0;
  private dll = 12; // 9600 baud
  private dlm = 0;
  private fcr = 0;
  /** THRE interrupt pending (cleared by reading IIR when it is the one identified, or by writing THR). */
  private thrIpending = false;
  private timeoutPending = false;
  private irqLevel = false;
  private readonly timeoutTimer: Timer;

  constructor(
    io: IoBus,
    readonly base: number,
    private readonly irq: IrqLine,
    private readonly clock: VirtualClock,
    index = 0,
  ) {
    this.name = `uart${index}`;
    this.timeoutTimer = clock.createTimer(`${this.name}-timeout`, () => {
      if (this.rx.length > 0 && this.fifoEnabled) {
        this.timeoutPending = true;
        this.updateIrq();
      }
    });
    io.register(base, 8, {
      in8: (p) => this.read(p - base),
      out8: (p, v) => this.write(p - base, v),
    });
    this.reset();
  }

  private get fifoEnabled(): boolean {
    return (this.fcr & 1) !== 0;
  }

  private get dlab(): boolean {
    return (this.lcr & 0x80) !== 0;
  }

  /** Bytes from the host side of the line (terminal, socket). */
  receive(bytes: ArrayLike<number>): void {
    for (let i = 0; i < bytes.length; i++) this.backlog.push(bytes[i] & 0xff);
    this.fillFromBacklog();
  }

  /** True while the guest has not consumed all received bytes. */
  get receivePending(): boolean {
    return this.rx.length > 0 || this.backlog.length > 0;
  }

  private fillFromBacklog(): void {
    const cap = this.fifoEnabled ? FIFO_SIZE : 1;
    let added = false;
    while (this.backlog.length > 0 && this.rx.length < cap) {
      this.rx.push(this.backlog.shift()!);
      added = true;
    }
    if (this.rx.length > 0) this.lsr |= LSR_DR;
    if (added) this.armTimeout();
    this.updateIrq();
  }

  /** Receive path used by loopback: a full FIFO overruns, as on the chip. */
  private receiveLoopback(byte: number): void {
    const cap = this.fifoEnabled ? FIFO_SIZE : 1;
    if (this.rx.length >= cap) {
      this.lsr |= LSR_OE;
      if (!this.fifoEnabled) this.rx[0] = byte;
    } else this.rx.push(byte);
    this.lsr |= LSR_DR;
    this.armTimeout();
    this.updateIrq();
  }

  private charTimeNs(): number {
    const divisor = (this.dlm << 8) | this.dll || 1;
    const baud = 115200 / divisor;
    const bits = 1 + 5 + (this.lcr & 3) + (this.lcr & 4 ? 2 : 1) + (this.lcr & 8 ? 1 : 0);
    return (bits * 1e9) / baud;
  }

  private armTimeout(): void {
    this.timeoutPending = false;
    if (this.fifoEnabled && this.rx.length > 0) this.timeoutTimer.armIn(4 * this.charTimeNs());
    else this.timeoutTimer.cancel();
  }

  /** The interrupt the IIR would identify now. */
  private identify(): number {
    if (this.ier & IER_RLS && this.lsr & (LSR_OE | 0x0c | LSR_BI)) return IIR_RLS;
    if (this.ier & IER_RDA) {
      const trigger = this.fifoEnabled ? TRIGGER[this.fcr >> 6] : 1;
      if (this.rx.length >= trigger) return IIR_RDA;
      if (this.timeoutPending && this.rx.length > 0) return IIR_TIMEOUT;
    }
    if (this.ier & IER_THRE && this.thrIpending) return IIR_THRE;
    if (this.ier & IER_MS && this.msr & 0x0f) return IIR_MS;
    return IIR_NONE;
  }

  private updateIrq(): void {
    // On a PC board the UART's interrupt reaches the bus only while OUT2 is set.
    const level = this.identify() !== IIR_NONE && (this.mcr & MCR_OUT2) !== 0 && !(this.mcr & MCR_LOOP);
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      if (level) this.irq.raise();
      else this.irq.lower();
    }
  }

  private modemLines(): number {
    if (this.mcr & MCR_LOOP) {
      // CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2
      return ((this.mcr & MCR_RTS) << 3) | ((this.mcr & MCR_DTR) << 5) | ((this.mcr & MCR_OUT1) << 4) | ((this.mcr & MCR_OUT2) << 4);
    }
    return 0xb0; // CTS, DSR, DCD asserted: a terminal is always attached
  }

  private setModemLines(): void {
    const old = this.msr & 0xf0;
    const now = this.modemLines();
    let delta = this.msr & 0x0f;
    if ((old ^ now) & 0x10) delta |= 1;
    if ((old ^ now) & 0x20) delta |= 2;
    if (old & 0x40 && !(now & 0x40)) delta |= 4; // trailing edge of RI
    if ((old ^ now) & 0x80) delta |= 8;
    this.msr = now | delta;
  }

  private read(reg: number): number {
    switch (reg) {
      case 0: {
        if (this.dlab) return this.dll;
        const v = this.rx.length ? this.rx.shift()! : 0;
        if (this.rx.length === 0) this.lsr &= ~LSR_DR;
        this.timeoutPending = false;
        this.fillFromBacklog();
        if (this.rx.length) this.armTimeout();
        this.updateIrq();
        return v;
      }
      case 1:
        return this.dlab ? this.dlm : this.ier;
      case 2: {
        const id = this.identify();
        if (id === IIR_THRE) this.thrIpending = false;
        this.updateIrq();
        return id | (this.fifoEnabled ? 0xc0 : 0);
      }
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 5: {
        const v = this.lsr | (this.fifoEnabled && this.lsr & (0x0c | LSR_BI) ? LSR_FIFOERR : 0);
        this.lsr &= ~(LSR_OE | 0x0c | LSR_BI | LSR_FIFOERR);
        this.updateIrq();
        return v;
      }
      case 6: {
        const v = this.msr;
        this.msr &= 0xf0;
        this.updateIrq();
        return v;
      }
      default:
        return this.scr;
    }
  }

  private write(reg: number, v: number): void {
    switch (reg) {
      case 0:
        if (this.dlab) {
          this.dll = v;
          return;
        }
        this.thrIpending = false;
        if (this.mcr & MCR_LOOP) this.receiveLoopback(v);
        else this.onTransmit(v);
        // Instant transmission: THR and the shift register are empty again.
        this.lsr |= LSR_THRE | LSR_TEMT;
        this.thrIpending = true;
        this.updateIrq();
        return;
      case 1: {
        if (this.dlab) {
          this.dlm = v;
          return;
        }
        const old = this.ier;
        this.ier = v & 0x0f;
        // Enabling THRI while THR is empty raises the THRE interrupt at once (drivers rely on it).
        if (!(old & IER_THRE) && this.ier & IER_THRE && this.lsr & LSR_THRE) this.thrIpending = true;
        this.updateIrq();
        return;
      }
      case 2: {
        const enable = v & 1;
        if (enable !== (this.fcr & 1)) {
          // Toggling FIFO mode clears both FIFOs.
          this.rx = [];
          this.lsr &= ~LSR_DR;
        }
        if (v & 2) {
          this.rx = [];
          this.lsr &= ~LSR_DR;
          this.timeoutTimer.cancel();
          this.timeoutPending = false;
        }
        this.fcr = enable ? v & 0xc9 : 0;
        this.fillFromBacklog();
        return;
      }
      case 3:
        this.lcr = v;
        return;
      case 4:
        this.mcr = v & 0x1f;
        this.setModemLines();
        this.updateIrq();
        return;
      case 5:
      case 6:
        return; // LSR and MSR are read-only (factory test writes are ignored)
      default:
        this.scr = v;
    }
  }

  // ---- Device

  reset(): void {
    this.rx = [];
    this.ier = 0;
    this.lcr = 0;
    this.mcr = 0;
    this.lsr = LSR_THRE | LSR_TEMT;
    this.fcr = 0;
    this.scr = 0;
    this.dll = 12;
    this.dlm = 0;
    this.thrIpending = false;
    this.timeoutPending = false;
    this.msr = this.modemLines();
    this.timeoutTimer.cancel();
    if (this.irqLevel) this.irq.lower();
    this.irqLevel = false;
    this.fillFromBacklog();
  }

  saveState(): DeviceState {
    return {
      rx: this.rx.slice(), backlog: this.backlog.slice(), ier: this.ier, lcr: this.lcr, mcr: this.mcr, lsr: this.lsr,
      msr: this.msr, scr: this.scr, dll: this.dll, dlm: this.dlm, fcr: this.fcr, thrIpending: this.thrIpending,
      timeoutPending: this.timeoutPending, irqLevel: this.irqLevel,
    };
  }

  loadState(s: DeviceState): void {
    this.rx = (s.rx as number[]).slice();
    this.backlog = (s.backlog as number[]).slice();
    this.ier = s.ier as number;
    this.lcr = s.lcr as number;
    this.mcr = s.mcr as number;
    this.lsr = s.lsr as number;
    this.msr = s.msr as number;
    this.scr = s.scr as number;
    this.dll = s.dll as number;
    this.dlm = s.dlm as number;
    this.fcr = s.fcr as number;
    this.thrIpending = s.thrIpending as boolean;
    this.timeoutPending = s.timeoutPending as boolean;
    this.irqLevel = false;
    this.updateIrq();
  }
}
