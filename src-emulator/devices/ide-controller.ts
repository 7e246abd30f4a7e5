/**
 * PIIX3 IDE (PCI 8086:7010, function 1 of the PIIX3) in legacy mode: primary channel at
 * 1F0-1F7/3F6 on IRQ 14, secondary at 170-177/376 on IRQ 15, and the bus-master DMA engine at BAR4
 * (8 bytes per channel: command, status, PRD table address).
 *
 * The channel holds what the cable shares (register writes reach both devices, reads come from the
 * selected one); `IdeDrive` is the device side (task-file registers, status, PIO buffer) that
 * `AtaDrive` and `AtapiDrive` extend with their command sets.
 *
 * Timing: a command's data work happens synchronously, but the device shows BSY until a completion
 * timer on the virtual clock fires a few microseconds later; only then do the final status and the
 * interrupt appear. Drivers that issue a command, read the status and only then wait for the
 * interrupt see the order they expect.
 */
import type { IoBus } from '../machine/io-bus';
import type { PhysicalMemory } from '../machine/memory';
import type { IrqLine } from '../machine/irq';
import type { Timer, VirtualClock } from '../machine/clock';
import type { DeviceState } from '../machine/device';
import { PciDevice } from './pci-bus';

export const ST_ERR = 0x01;
export const ST_DRQ = 0x08;
export const ST_DSC = 0x10;
export const ST_DF = 0x20;
export const ST_DRDY = 0x40;
export const ST_BSY = 0x80;

export const ERR_AMNF = 0x01;
export const ERR_ABRT = 0x04;
export const ERR_IDNF = 0x10;
export const ERR_UNC = 0x40;

const CTL_NIEN = 0x02;
const CTL_SRST = 0x04;
const CTL_HOB = 0x80;

const BM_CMD_START = 0x01;
const BM_CMD_TO_MEMORY = 0x08;
const BM_ST_ACTIVE = 0x01;
const BM_ST_ERROR = 0x02;
const BM_ST_INTR = 0x04;

/** Virtual time between a command's work and its completion interrupt. */
export const IDE_COMPLETION_NS = 10_000;

/**
 * One device on an IDE cable. Subclasses implement `command()` and the hooks for PIO blocks and
 * DMA; everything here is the shared ATA register model.
 */
export abstract class IdeDrive {
  abstract readonly kind: 'ata' | 'atapi';
  channel: IdeChannel | null = null;
  unit = 0;

  // Task file (each device latches every write on the cable; HOB = the previous write, for LBA48).
  error = 0x01;
  feature = 0;
  nsector = 1;
  sector = 1;
  lcyl = 0;
  hcyl = 0;
  hobFeature = 0;
  hobNsector = 0;
  hobSector = 0;
  hobLcyl = 0;
  hobHcyl = 0;
  select = 0xa0;
  status = ST_DRDY | ST_DSC;

  /** PIO data buffer: the host reads/writes [pos, end). */
  buffer = new Uint8Array(128 * 1024);
  pos = 0;
  end = 0;
  /** Direction of the current PIO phase: 0 none, 1 device-to-host, 2 host-to-device. */
  pioDir = 0;

  /** Status and interrupt that appear when the completion timer fires. */
  pendingStatus = -1;
  pendingIrq = false;
  /** DMA transfer waiting for the bus master: 1 = device to memory, 2 = memory to device. */
  dmaDir = 0;

  /** Executes a command written to the command register. */
  abstract command(cmd: number): void;
  /** The host has read (or written) the whole PIO buffer. */
  protected abstract pioDone(): void;
  /** DMA device-to-memory: up to `max` bytes of the transfer's next data; an empty array ends it. */
  abstract dmaRead(max: number): Uint8Array;
  /** DMA memory-to-device: the transfer's next bytes. Returns false when the device wants no more. */
  abstract dmaWrite(data: Uint8Array): boolean;
  /** Bytes of the current DMA transfer still expected. */
  abstract dmaRemaining(): number;
  /** The bus master finished (or ran out of PRDs: `short` true). */
  abstract dmaDone(short: boolean): void;
  /** Power-on / hardware / software reset: the signature goes into the task file. */
  abstract resetSignature(): void;
  /** Device-specific saved state. */
  abstract saveDriveState(): DeviceState;
  abstract loadDriveState(s: DeviceState): void;

  get lbaMode(): boolean {
    return (this.select & 0x40) !== 0;
  }

  /** Begins a device-to-host PIO block of `length` bytes already in `buffer`. */
  protected startPioIn(length: number, irq = true): void {
    this.pos = 0;
    this.end = length;
    this.pioDir = 1;
    this.complete(ST_DRDY | ST_DSC | ST_DRQ, irq);
  }

  /** Asks the host for `length` bytes into `buffer`. */
  protected startPioOut(length: number, irq: boolean): void {
    this.pos = 0;
    this.end = length;
    this.pioDir = 2;
    if (irq) this.complete(ST_DRDY | ST_DSC | ST_DRQ, true);
    else {
      this.cancelPending();
      this.status = ST_DRDY | ST_DSC | ST_DRQ;
    }
  }

  /** Ends the command successfully. */
  protected finish(irq = true): void {
    this.pioDir = 0;
    this.pos = this.end = 0;
    this.complete(ST_DRDY | ST_DSC, irq);
  }

  /** Ends the command with `err` in the error register. */
  protected fail(err: number): void {
    this.pioDir = 0;
    this.pos = this.end = 0;
    this.dmaDir = 0;
    this.error = err;
    this.complete(ST_DRDY | ST_ERR, true);
  }

  /** Shows BSY now; `status` and the interrupt arrive after IDE_COMPLETION_NS. */
  protected complete(status: number, irq: boolean): void {
    this.status = ST_BSY;
    this.pendingStatus = status;
    this.pendingIrq = irq;
    this.channel?.armCompletion();
  }

  cancelPending(): void {
    this.pendingStatus = -1;
    this.pendingIrq = false;
  }

  /** Called by the channel's completion timer. */
  fireCompletion(): void {
    if (this.pendingStatus < 0) return;
    this.status = this.pendingStatus;
    const irq = this.pendingIrq;
    this.cancelPending();
    if (irq) this.channel?.raiseIrq();
  }

  /** Waits for the bus master to move the data (starts at once if it is already running). */
  protected startDma(dir: 1 | 2): void {
    this.pioDir = 0;
    this.dmaDir = dir;
    this.cancelPending();
    this.status = ST_DRDY | ST_DSC | ST_DRQ | ST_BSY;
    this.channel?.kickDma();
  }

  // ---- data port

  readData(bytes: 2 | 4): number {
    if (this.pioDir !== 1 || this.pos >= this.end) return bytes === 4 ? 0xffffffff : 0xffff;
    const b = this.buffer;
    const p = this.pos;
    let v = b[p] | (b[p + 1] << 8);
    if (bytes === 4) v = (v | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
    this.pos = Math.min(p + bytes, this.end);
    if (this.pos >= this.end) this.endPioPhase();
    return v;
  }

  writeData(value: number, bytes: 2 | 4): void {
    if (this.pioDir !== 2 || this.pos >= this.end) return;
    const b = this.buffer;
    const p = this.pos;
    b[p] = value;
    b[p + 1] = value >>> 8;
    if (bytes === 4) {
      b[p + 2] = value >>> 16;
      b[p + 3] = value >>> 24;
    }
    this.pos = Math.min(p + bytes, this.end);
    if (this.pos >= this.end) this.endPioPhase();
  }

  private endPioPhase(): void {
    this.pioDir = 0;
    this.status &= ~ST_DRQ;
    this.pioDone();
  }

  /** Makes `buffer` at least `n` bytes. */
  protected ensureBuffer(n: number): void {
    if (this.buffer.length < n) {
      const b = new Uint8Array(Math.max(n, this.buffer.length * 2));
      b.set(this.buffer);
      this.buffer = b;
    }
  }

  saveState(): DeviceState {
    return {
      error: this.error,
      feature: this.feature,
      nsector: this.nsector,
      sector: this.sector,
      lcyl: this.lcyl,
      hcyl: this.hcyl,
      hob: [this.hobFeature, this.hobNsector, this.hobSector, this.hobLcyl, this.hobHcyl],
      select: this.select,
      status: this.status,
      buffer: this.buffer.slice(0, Math.max(this.end, 0)),
      bufferSize: this.buffer.length,
      pos: this.pos,
      end: this.end,
      pioDir: this.pioDir,
      pendingStatus: this.pendingStatus,
      pendingIrq: this.pendingIrq,
      dmaDir: this.dmaDir,
      drive: this.saveDriveState(),
    };
  }

  loadState(s: DeviceState): void {
    this.error = s.error as number;
    this.feature = s.feature as number;
    this.nsector = s.nsector as number;
    this.sector = s.sector as number;
    this.lcyl = s.lcyl as number;
    this.hcyl = s.hcyl as number;
    [this.hobFeature, this.hobNsector, this.hobSector, this.hobLcyl, this.hobHcyl] = s.hob as number[];
    this.select = s.select as number;
    this.status = s.status as number;
    this.buffer = new Uint8Array(s.bufferSize as number);
    this.buffer.set(s.buffer as Uint8Array);
    this.pos = s.pos as number;
    this.end = s.end as number;
    this.pioDir = s.pioDir as number;
    this.pendingStatus = s.pendingStatus as number;
    this.pendingIrq = s.pendingIrq as boolean;
    this.dmaDir = s.dmaDir as number;
    this.loadDriveState(s.drive as DeviceState);
  }
}

/** One IDE cable: two device positions, the command block, the control block and a bus-master engine. */
export class IdeChannel {
  readonly drives: (IdeDrive | null)[] = [null, null];
  selected = 0;
  ctl = 0;
  irqAsserted = false;
  bmCommand = 0;
  bmStatus = 0;
  bmPrd = 0;
  private readonly timer: Timer;

  constructor(
    readonly index: number,
    private readonly irq: IrqLine,
    private readonly mem: PhysicalMemory,
    private readonly clock: VirtualClock,
  ) {
    this.timer = clock.createTimer(`ide${index}`, () => this.fireCompletions());
  }

  private fireCompletions(): void {
    for (const d of this.drives) d?.fireCompletion();
  }

  /**
   * A completion whose time has come but whose timer has not run yet (the machine fires timers
   * between CPU batches) happens now, when the guest looks: a status poll sees the device exactly
   * as late as the delay says, however long the CPU batch is.
   */
  private catchUp(): void {
    const t = this.timer;
    if (t.armed && t.deadline <= this.clock.now()) {
      t.cancel();
      this.fireCompletions();
    }
  }

  get current(): IdeDrive | null {
    return this.drives[this.selected];
  }

  attach(unit: 0 | 1, drive: IdeDrive | null): void {
    const old = this.drives[unit];
    if (old) old.channel = null;
    this.drives[unit] = drive;
    if (drive) {
      drive.channel = this;
      drive.unit = unit;
      drive.resetSignature();
    }
    // Bus-master status advertises which positions can do DMA.
    this.bmStatus = (this.bmStatus & ~0x60) | (this.drives[0] ? 0x20 : 0) | (this.drives[1] ? 0x40 : 0);
  }

  armCompletion(): void {
    this.timer.armIn(IDE_COMPLETION_NS);
  }

  raiseIrq(): void {
    this.bmStatus |= BM_ST_INTR;
    if (this.ctl & CTL_NIEN) return;
    this.irqAsserted = true;
    this.irq.raise();
  }

  lowerIrq(): void {
    if (!this.irqAsserted) return;
    this.irqAsserted = false;
    this.irq.lower();
  }

  // ---- command block (base+0..7)

  readRegister(reg: number): number {
    this.catchUp();
    const d = this.current;
    if (!d) return 0; // an absent device reads as zeros (as QEMU's), which Linux's probe rejects
    const hob = (this.ctl & CTL_HOB) !== 0;
    switch (reg) {
      case 1:
        return hob ? d.hobFeature : d.error;
      case 2:
        return hob ? d.hobNsector : d.nsector;
      case 3:
        return hob ? d.hobSector : d.sector;
      case 4:
        return hob ? d.hobLcyl : d.lcyl;
      case 5:
        return hob ? d.hobHcyl : d.hcyl;
      case 6:
        return d.select;
      case 7:
        this.lowerIrq();
        return d.status;
      default:
        return 0xff;
    }
  }

  writeRegister(reg: number, value: number): void {
    value &= 0xff;
    if (reg !== 7) this.ctl &= ~CTL_HOB; // a register write clears HOB
    for (const d of this.drives) {
      if (!d) continue;
      switch (reg) {
        case 1:
          d.hobFeature = d.feature;
          d.feature = value;
          break;
        case 2:
          d.hobNsector = d.nsector;
          d.nsector = value;
          break;
        case 3:
          d.hobSector = d.sector;
          d.sector = value;
          break;
        case 4:
          d.hobLcyl = d.lcyl;
          d.lcyl = value;
          break;
        case 5:
          d.hobHcyl = d.hcyl;
          d.hcyl = value;
          break;
        case 6:
          d.select = value | 0xa0;
          break;
      }
    }
    if (reg === 6) {
      this.selected = (value >> 4) & 1;
      return;
    }
    if (reg === 7) {
      const d = this.current;
      if (!d) return;
      // Only DEVICE RESET may interrupt a busy device.
      if (d.status & ST_BSY && value !== 0x08 && d.pendingStatus < 0 && d.dmaDir === 0) return;
      this.lowerIrq();
      d.cancelPending();
      d.dmaDir = 0;
      d.pioDir = 0;
      d.error = 0;
      d.command(value);
    }
  }

  // ---- control block (3F6/376)

  readAltStatus(): number {
    this.catchUp();
    const d = this.current;
    return d ? d.status : 0;
  }

  writeControl(value: number): void {
    const was = this.ctl;
    this.ctl = value & (CTL_NIEN | CTL_SRST | CTL_HOB);
    if (value & CTL_NIEN && this.irqAsserted) {
      this.irqAsserted = false;
      this.irq.lower();
    }
    if (value & CTL_SRST && !(was & CTL_SRST)) {
      for (const d of this.drives) {
        if (!d) continue;
        d.cancelPending();
        d.dmaDir = 0;
        d.pioDir = 0;
        d.status = ST_BSY;
      }
      this.lowerIrq();
    } else if (!(value & CTL_SRST) && was & CTL_SRST) {
      for (const d of this.drives) d?.resetSignature();
      this.selected = 0;
    }
  }

  // ---- bus master (BAR4 + 8 * channel)

  readBm(reg: number): number {
    this.catchUp();
    switch (reg) {
      case 0:
        return this.bmCommand;
      case 2:
        return this.bmStatus;
      case 4:
        return this.bmPrd & 0xff;
      case 5:
        return (this.bmPrd >>> 8) & 0xff;
      case 6:
        return (this.bmPrd >>> 16) & 0xff;
      case 7:
        return this.bmPrd >>> 24;
      default:
        return 0;
    }
  }

  writeBm(reg: number, value: number): void {
    switch (reg) {
      case 0: {
        const wasStarted = this.bmCommand & BM_CMD_START;
        this.bmCommand = value & (BM_CMD_START | BM_CMD_TO_MEMORY);
        if (!(value & BM_CMD_START)) this.bmStatus &= ~BM_ST_ACTIVE;
        else if (!wasStarted) {
          this.bmStatus |= BM_ST_ACTIVE;
          this.kickDma();
        }
        return;
      }
      case 2:
        // Interrupt and error are write-one-to-clear; the drive-capable bits are plain.
        this.bmStatus = (this.bmStatus & ~(value & (BM_ST_INTR | BM_ST_ERROR)) & ~0x60) | (value & 0x60);
        return;
      case 4:
      case 5:
      case 6:
      case 7: {
        const shift = (reg - 4) * 8;
        this.bmPrd = ((this.bmPrd & ~(0xff << shift)) | ((value & 0xff) << shift)) >>> 0;
        this.bmPrd &= ~3;
        return;
      }
    }
  }

  writeBmPrd32(value: number): void {
    this.bmPrd = (value & ~3) >>> 0;
  }

  /** Runs a pending DMA transfer if the device wants one and the bus master is started. */
  kickDma(): void {
    const d = this.current;
    if (!d || !d.dmaDir || !(this.bmCommand & BM_CMD_START)) return;
    const toMemory = d.dmaDir === 1;
    let prd = this.bmPrd;
    let short = true;
    // A PRD table is at most 64 KiB of entries; anything longer is a guest bug, not a hang.
    for (let n = 0; n < 8192; n++) {
      const addr = this.mem.read32(prd) >>> 0;
      let count = this.mem.read16(prd + 4);
      const eot = (this.mem.read16(prd + 6) & 0x8000) !== 0;
      if (count === 0) count = 0x10000;
      prd += 8;
      let offset = 0;
      while (offset < count && d.dmaRemaining() > 0) {
        if (toMemory) {
          const data = d.dmaRead(count - offset);
          if (data.length === 0) break;
          this.mem.writeBytes(addr + offset, data);
          offset += data.length;
        } else {
          const len = Math.min(count - offset, d.dmaRemaining());
          const data = this.mem.readBytes(addr + offset, len);
          offset += len;
          if (!d.dmaWrite(data)) break;
        }
      }
      if (d.dmaRemaining() === 0) {
        short = false;
        break;
      }
      if (eot) break;
    }
    d.dmaDir = 0;
    this.bmStatus &= ~BM_ST_ACTIVE;
    d.dmaDone(short);
  }

  reset(): void {
    this.timer.cancel();
    this.selected = 0;
    this.ctl = 0;
    this.lowerIrq();
    this.bmCommand = 0;
    this.bmStatus &= 0x60;
    this.bmPrd = 0;
    for (const d of this.drives) {
      if (!d) continue;
      d.cancelPending();
      d.dmaDir = 0;
      d.pioDir = 0;
      d.pos = d.end = 0;
      d.resetSignature();
    }
  }

  saveState(): DeviceState {
    return {
      selected: this.selected,
      ctl: this.ctl,
      irqAsserted: this.irqAsserted,
      bmCommand: this.bmCommand,
      bmStatus: this.bmStatus,
      bmPrd: this.bmPrd,
      drives: this.drives.map((d) => (d ? d.saveState() : null)),
    };
  }

  loadState(s: DeviceState): void {
    this.selected = s.selected as number;
    this.ctl = s.ctl as number;
    this.bmCommand = s.bmCommand as number;
    this.bmStatus = s.bmStatus as number;
    this.bmPrd = s.bmPrd as number;
    const drives = s.drives as (DeviceState | null)[];
    this.drives.forEach((d, i) => {
      if (d && drives[i]) d.loadState(drives[i]!);
    });
    const asserted = s.irqAsserted as boolean;
    this.irqAsserted = asserted;
    if (asserted) this.irq.raise();
    else this.irq.lower();
  }
}

export interface IdeControllerOptions {
  io: IoBus;
  mem: PhysicalMemory;
  clock: VirtualClock;
  irq14: IrqLine;
  irq15: IrqLine;
}

export class IdeController extends PciDevice {
  readonly channels: [IdeChannel, IdeChannel];

  constructor(opts: IdeControllerOptions) {
    // Prog-if 0x80: bus-master capable, both channels fixed in legacy (compatibility) mode.
    super('ide', { vendorId: 0x8086, deviceId: 0x7010, classCode: 0x010180 });
    this.channels = [new IdeChannel(0, opts.irq14, opts.mem, opts.clock), new IdeChannel(1, opts.irq15, opts.mem, opts.clock)];
    this.config[0x40] = 0x00; // IDE timing registers (primary): decode enable set below
    this.config[0x41] = 0x80;
    this.config[0x43] = 0x80;
    this.writeMask[0x40] = this.writeMask[0x41] = this.writeMask[0x42] = this.writeMask[0x43] = 0xff;
    this.writeMask[0x44] = 0xff;
    const io = opts.io;
    for (const [ch, base, ctl] of [
      [this.channels[0], 0x1f0, 0x3f6],
      [this.channels[1], 0x170, 0x376],
    ] as const) {
      io.register(base, 1, {
        in16: () => ch.current?.readData(2) ?? 0xffff,
        in32: () => ch.current?.readData(4) ?? -1,
        in8: () => (ch.current?.readData(2) ?? 0xff) & 0xff,
        out16: (_p, v) => ch.current?.writeData(v, 2),
        out32: (_p, v) => ch.current?.writeData(v, 4),
        out8: (_p, v) => ch.current?.writeData(v, 2),
      });
      io.register(base + 1, 7, {
        in8: (p) => ch.readRegister(p - base),
        out8: (p, v) => ch.writeRegister(p - base, v),
      });
      io.register(ctl, 1, {
        in8: () => ch.readAltStatus(),
        out8: (_p, v) => ch.writeControl(v),
      });
    }
    this.defineBar(4, {
      kind: 'io',
      size: 16,
      ports: {
        in8: (p) => {
          const off = p - (this.barMapped(4) ?? 0);
          return this.channels[off >> 3].readBm(off & 7);
        },
        out8: (p, v) => {
          const off = p - (this.barMapped(4) ?? 0);
          this.channels[off >> 3].writeBm(off & 7, v);
        },
        in32: (p) => {
          const off = p - (this.barMapped(4) ?? 0);
          const ch = this.channels[off >> 3];
          if ((off & 7) === 4) return ch.bmPrd | 0;
          return ch.readBm(off & 7) | (ch.readBm((off & 7) + 1) << 8) | (ch.readBm((off & 7) + 2) << 16) | (ch.readBm((off & 7) + 3) << 24);
        },
        out32: (p, v) => {
          const off = p - (this.barMapped(4) ?? 0);
          const ch = this.channels[off >> 3];
          if ((off & 7) === 4) ch.writeBmPrd32(v);
          else for (let i = 0; i < 4; i++) ch.writeBm((off & 7) + i, (v >>> (i * 8)) & 0xff);
        },
      },
    });
  }

  /** Puts `drive` (or nothing) at `channel` 0/1 (primary/secondary), `unit` 0/1 (master/slave). */
  attach(channel: 0 | 1, unit: 0 | 1, drive: IdeDrive | null): void {
    this.channels[channel].attach(unit, drive);
  }

  drive(channel: 0 | 1, unit: 0 | 1): IdeDrive | null {
    return this.channels[channel].drives[unit];
  }

  override reset(): void {
    super.reset();
    for (const ch of this.channels) ch.reset();
  }

  override saveState(): DeviceState {
    return { pci: super.saveState(), channels: this.channels.map((c) => c.saveState()) };
  }

  override loadState(s: DeviceState): void {
    super.loadState(s.pci as DeviceState);
    const chans = s.channels as DeviceState[];
    this.channels.forEach((c, i) => c.loadState(chans[i]));
  }
}
