/**
 * 82077AA-style floppy disk controller at 3F0-3F5/3F7 (3F6 belongs to the IDE controller) on
 * IRQ 6 and DMA channel 2, with two drives. Images of the standard PC sizes get their geometry
 * from their size (360 KiB to 2.88 MiB, 1.44 MiB being the usual).
 *
 * Data moves only by DMA (the SPECIFY non-DMA bit is accepted but PIO execution is not emulated),
 * which is what DOS, the BIOS and Linux's floppy driver use. Each command completes synchronously;
 * the result phase and IRQ 6 appear after a short virtual delay, with the controller busy until then.
 */
import type { IoBus } from '../machine/io-bus';
import type { IrqLine } from '../machine/irq';
import type { Timer, VirtualClock } from '../machine/clock';
import type { Device, DeviceState } from '../machine/device';
import type { BlockDevice } from '../storage/block-device';
import { DiskError } from '../storage/block-device';
import type { Dma8237 } from './dma8237';

export interface FloppyGeometry {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
  /** CMOS/BIOS drive type: 1 360K, 2 1.2M, 3 720K, 4 1.44M, 5 2.88M. */
  driveType: number;
}

const GEOMETRIES: [number, FloppyGeometry][] = [
  [163_840, { cylinders: 40, heads: 1, sectorsPerTrack: 8, driveType: 1 }],
  [184_320, { cylinders: 40, heads: 1, sectorsPerTrack: 9, driveType: 1 }],
  [327_680, { cylinders: 40, heads: 2, sectorsPerTrack: 8, driveType: 1 }],
  [368_640, { cylinders: 40, heads: 2, sectorsPerTrack: 9, driveType: 1 }],
  [737_280, { cylinders: 80, heads: 2, sectorsPerTrack: 9, driveType: 3 }],
  [1_228_800, { cylinders: 80, heads: 2, sectorsPerTrack: 15, driveType: 2 }],
  [1_474_560, { cylinders: 80, heads: 2, sectorsPerTrack: 18, driveType: 4 }],
  [1_720_320, { cylinders: 80, heads: 2, sectorsPerTrack: 21, driveType: 4 }],
  [1_763_328, { cylinders: 82, heads: 2, sectorsPerTrack: 21, driveType: 4 }],
  [2_949_120, { cylinders: 80, heads: 2, sectorsPerTrack: 36, driveType: 5 }],
];

/** The geometry of a floppy image from its size; throws a DiskError naming the file for odd sizes. */
export function floppyGeometry(size: number, path = 'floppy image'): FloppyGeometry {
  for (const [bytes, g] of GEOMETRIES) if (bytes === size) return { ...g };
  // Short images (a boot sector plus a little) are treated as 1.44 MB media, padded with zeros on read.
  if (size > 0 && size < 1_474_560) return { cylinders: 80, heads: 2, sectorsPerTrack: 18, driveType: 4 };
  throw new DiskError(path, `size ${size} is not a floppy format (360K, 720K, 1.2M, 1.44M, 2.88M)`);
}

// Status register bits.
const ST0_IC_ABNORMAL = 0x40;
const ST0_IC_INVALID = 0x80;
const ST0_SEEK_END = 0x20;
const ST1_MISSING_AM = 0x01;
const ST1_NOT_WRITABLE = 0x02;
const ST1_NO_DATA = 0x04;
const ST1_END_OF_CYL = 0x80;
const MSR_RQM = 0x80;
const MSR_DIO = 0x40;
const MSR_BUSY = 0x10;
const DOR_RESET_N = 0x04;
const DOR_DMA_IRQ = 0x08;

const FDC_DELAY_NS = 20_000;

/** Parameter bytes after the opcode, by command (low 5 bits). */
const PARAM_COUNT: Record<number, number> = {
  0x02: 8, // READ TRACK
  0x03: 2, // SPECIFY
  0x04: 1, // SENSE DRIVE STATUS
  0x05: 8, // WRITE DATA
  0x06: 8, // READ DATA
  0x07: 1, // RECALIBRATE
  0x08: 0, // SENSE INTERRUPT STATUS
  0x09: 8, // WRITE DELETED DATA
  0x0a: 1, // READ ID
  0x0c: 8, // READ DELETED DATA
  0x0d: 5, // FORMAT TRACK
  0x0e: 0, // DUMPREG
  0x0f: 2, // SEEK
  0x10: 0, // VERSION
  0x11: 8, // SCAN EQUAL
  0x12: 1, // PERPENDICULAR MODE
  0x13: 3, // CONFIGURE
  0x14: 0, // LOCK / UNLOCK
  0x18: 0, // PART ID
  0x19: 8, // SCAN LOW OR EQUAL
  0x1d: 8, // SCAN HIGH OR EQUAL
};

interface FloppyDrive {
  disk: BlockDevice | null;
  geometry: FloppyGeometry | null;
  cylinder: number;
  head: number;
  sector: number;
  /** Disk change line (DIR bit 7): set at insertion/removal, cleared by a step with a disk present. */
  changed: boolean;
}

export interface FloppyControllerOptions {
  io: IoBus;
  clock: VirtualClock;
  irq: IrqLine;
  dma: Dma8237;
  /** DMA channel (2 on the PC). */
  dmaChannel?: number;
}

export class FloppyController implements Device {
  readonly name = 'fdc';
  private readonly irq: IrqLine;
  private readonly dma: Dma8237;
  private readonly dmaChannel: number;
  private readonly timer: Timer;
  private readonly clock: VirtualClock;
  readonly drives: FloppyDrive[] = [0, 1].map(() => ({ disk: null, geometry: null, cylinder: 0, head: 0, sector: 1, changed: true }));

  private dor = 0;
  private tdr = 0;
  private dataRate = 2;
  private phase: 'command' | 'busy' | 'result' = 'command';
  private cmd: number[] = [];
  private result: number[] = [];
  private resultPos = 0;
  private pendingResult: number[] = [];
  private pendingIrq = false;
  private irqAsserted = false;
  /** ST0 values queued for SENSE INTERRUPT STATUS (after seeks, recalibrates and resets). */
  private senseQueue: number[] = [];
  private specify = [0, 0];
  private config = [0, 0x20, 0];
  private locked = false;
  private perpendicular = 0;

  constructor(opts: FloppyControllerOptions) {
    this.irq = opts.irq;
    this.dma = opts.dma;
    this.dmaChannel = opts.dmaChannel ?? 2;
    this.clock = opts.clock;
    this.timer = opts.clock.createTimer('fdc', () => this.fire());
    opts.io.register(0x3f0, 6, {
      in8: (p) => this.read(p),
      out8: (p, v) => this.write(p, v),
    });
    opts.io.register(0x3f7, 1, {
      in8: (p) => this.read(p),
      out8: (p, v) => this.write(p, v),
    });
    this.reset();
  }

  /** Inserts (or with null, removes) the disk in drive 0/1; the change line goes up. */
  insertDisk(drive: 0 | 1, disk: BlockDevice | null): void {
    const d = this.drives[drive];
    d.disk = disk;
    d.geometry = disk ? floppyGeometry(disk.size, disk.path) : null;
    d.changed = true;
  }

  disk(drive: 0 | 1): BlockDevice | null {
    return this.drives[drive].disk;
  }

  /** CMOS drive type byte (register 10h): high nibble drive A, low nibble drive B; 1.44M for empty drives. */
  cmosDriveTypes(present: [boolean, boolean] = [true, false]): number {
    const t = (i: number) => (this.drives[i].geometry?.driveType ?? (present[i] ? 4 : 0)) & 0x0f;
    return (t(0) << 4) | t(1);
  }

  // ------------------------------------------------------------------ ports

  private read(port: number): number {
    switch (port & 7) {
      case 0: // SRA (PS/2): interrupt pending
        return this.irqAsserted ? 0x80 : 0;
      case 1: // SRB
        return 0xc0;
      case 2:
        return this.dor;
      case 3:
        return this.tdr;
      case 4:
        return this.msr();
      case 5:
        return this.readFifo();
      case 7: {
        const d = this.drives[this.dor & 1];
        return d.changed || !d.disk ? 0x80 : 0;
      }
      default:
        return 0xff;
    }
  }

  private write(port: number, v: number): void {
    switch (port & 7) {
      case 2: {
        const was = this.dor;
        this.dor = v;
        if (!(v & DOR_RESET_N)) this.enterReset();
        else if (!(was & DOR_RESET_N)) this.leaveReset();
        if (!(v & DOR_DMA_IRQ) && this.irqAsserted) this.setIrq(false);
        return;
      }
      case 3:
        this.tdr = v & 3;
        return;
      case 4: // DSR
        this.dataRate = v & 3;
        if (v & 0x80) {
          this.enterReset();
          this.leaveReset();
        }
        return;
      case 5:
        this.writeFifo(v);
        return;
      case 7: // CCR
        this.dataRate = v & 3;
        return;
    }
  }

  private msr(): number {
    // The timer runs between CPU batches; a poll after the deadline sees the result at once.
    if (this.timer.armed && this.timer.deadline <= this.clock.now()) {
      this.timer.cancel();
      this.fire();
    }
    if (!(this.dor & DOR_RESET_N)) return 0;
    switch (this.phase) {
      case 'command':
        return MSR_RQM | (this.cmd.length ? MSR_BUSY : 0);
      case 'busy':
        return MSR_BUSY;
      default:
        return MSR_RQM | MSR_DIO | MSR_BUSY;
    }
  }

  private readFifo(): number {
    if (this.phase !== 'result') return 0xff;
    if (this.resultPos === 0) this.setIrq(false);
    const v = this.result[this.resultPos++];
    if (this.resultPos >= this.result.length) {
      this.phase = 'command';
      this.result = [];
      this.resultPos = 0;
    }
    return v;
  }

  private writeFifo(v: number): void {
    if (this.phase !== 'command' || !(this.dor & DOR_RESET_N)) return;
    this.cmd.push(v);
    const op = this.cmd[0] & 0x1f;
    const need = PARAM_COUNT[op];
    if (need === undefined) {
      this.cmd = [];
      this.respond([ST0_IC_INVALID], false, true);
      return;
    }
    if (this.cmd.length < need + 1) return;
    const c = this.cmd;
    this.cmd = [];
    this.execute(c);
  }

  // ------------------------------------------------------------------ interrupts and phases

  private setIrq(level: boolean): void {
    if (level) {
      if (!(this.dor & DOR_DMA_IRQ)) return;
      this.irqAsserted = true;
      this.irq.raise();
    } else if (this.irqAsserted) {
      this.irqAsserted = false;
      this.irq.lower();
    }
  }

  /**
   * Finishes a command: `result` bytes (possibly none) and an interrupt. `immediate` skips the
   * delay for commands that only answer (VERSION, SENSE INTERRUPT, ...).
   */
  private respond(result: number[], irq: boolean, immediate = false): void {
    if (immediate) {
      this.result = result;
      this.resultPos = 0;
      this.phase = result.length ? 'result' : 'command';
      if (irq) this.setIrq(true);
      return;
    }
    this.phase = 'busy';
    this.pendingResult = result;
    this.pendingIrq = irq;
    this.timer.armIn(FDC_DELAY_NS);
  }

  private fire(): void {
    if (this.phase !== 'busy') return;
    this.respond(this.pendingResult, this.pendingIrq, true);
    this.pendingResult = [];
    this.pendingIrq = false;
  }

  private enterReset(): void {
    this.timer.cancel();
    this.phase = 'command';
    this.cmd = [];
    this.result = [];
    this.resultPos = 0;
    this.senseQueue = [];
    this.setIrq(false);
  }

  /** Leaving reset: one SENSE INTERRUPT result per drive (polling mode) and IRQ 6. */
  private leaveReset(): void {
    this.senseQueue = [0xc0, 0xc1, 0xc2, 0xc3];
    if (!this.locked) this.config = [0, 0x20, 0];
    this.phase = 'busy';
    this.pendingResult = [];
    this.pendingIrq = true;
    this.timer.armIn(FDC_DELAY_NS);
  }

  // ------------------------------------------------------------------ commands

  private execute(c: number[]): void {
    const op = c[0] & 0x1f;
    switch (op) {
      case 0x03:
        this.specify = [c[1], c[2]];
        this.phase = 'command';
        return;
      case 0x04: {
        const d = this.drives[c[1] & 1];
        const head = (c[1] >> 2) & 1;
        const st3 =
          (c[1] & 3) | (head << 2) | 0x08 /* two-sided */ | (d.cylinder === 0 ? 0x10 : 0) | 0x20 /* ready */ | (d.disk?.readOnly ? 0x40 : 0);
        return this.respond([st3], false, true);
      }
      case 0x07: {
        const di = c[1] & 3;
        const d = this.drives[di & 1];
        this.step(d, 0);
        this.senseQueue.push(ST0_SEEK_END | di);
        return this.respond([], true);
      }
      case 0x08: {
        this.setIrq(false);
        const st0 = this.senseQueue.shift();
        if (st0 === undefined) return this.respond([ST0_IC_INVALID], false, true);
        const d = this.drives[st0 & 1];
        return this.respond([st0, d.cylinder], false, true);
      }
      case 0x0f: {
        const di = c[1] & 3;
        const d = this.drives[di & 1];
        d.head = (c[1] >> 2) & 1;
        this.step(d, c[2]);
        this.senseQueue.push(ST0_SEEK_END | (d.head << 2) | di);
        return this.respond([], true);
      }
      case 0x0a: {
        const di = c[1] & 3;
        const d = this.drives[di & 1];
        const head = (c[1] >> 2) & 1;
        if (!d.disk || !d.geometry) return this.respond(this.idResult(ST0_IC_ABNORMAL | (head << 2) | di, ST1_MISSING_AM, 0, d, head), true);
        d.head = head;
        return this.respond([(head << 2) | di, 0, 0, d.cylinder, head, d.sector, 2], true);
      }
      case 0x05:
      case 0x06:
      case 0x09:
      case 0x0c:
        return this.readWrite(c, op === 0x05 || op === 0x09);
      case 0x02:
        return this.readWrite(c, false, true);
      case 0x0d:
        return this.formatTrack(c);
      case 0x0e: {
        const [d0, d1] = this.drives;
        return this.respond(
          [d0.cylinder, d1.cylinder, 0, 0, this.specify[0], this.specify[1], d0.geometry?.sectorsPerTrack ?? 18, (this.locked ? 0x80 : 0) | this.perpendicular, this.config[1], this.config[2]],
          false,
          true,
        );
      }
      case 0x10:
        return this.respond([0x90], false, true);
      case 0x12:
        this.perpendicular = c[1] & 0x7f;
        this.phase = 'command';
        return;
      case 0x13:
        this.config = [c[1], c[2], c[3]];
        this.phase = 'command';
        return;
      case 0x14:
        this.locked = (c[0] & 0x80) !== 0;
        return this.respond([this.locked ? 0x10 : 0], false, true);
      case 0x18:
        return this.respond([0x01], false, true);
      default:
        return this.respond([ST0_IC_INVALID], false, true);
    }
  }

  /** Moves the head; any step with a disk in the drive clears its change line. */
  private step(d: FloppyDrive, cylinder: number): void {
    const max = d.geometry ? d.geometry.cylinders + 3 : 83;
    const target = Math.min(cylinder, max);
    if (d.disk) d.changed = false;
    d.cylinder = target;
  }

  private idResult(st0: number, st1: number, st2: number, d: FloppyDrive, head: number): number[] {
    return [st0, st1, st2, d.cylinder, head, d.sector, 2];
  }

  /** READ/WRITE DATA (and READ TRACK): sectors from R up to EOT, continuing on head 1 with MT. */
  private readWrite(c: number[], write: boolean, wholeTrack = false): void {
    const mt = (c[0] & 0x80) !== 0;
    const di = c[1] & 3;
    let head = (c[1] >> 2) & 1;
    const d = this.drives[di & 1];
    let cyl = c[2];
    let sector = wholeTrack ? 1 : c[4];
    const n = c[5];
    const eot = c[6];
    const sectorSize = n === 0 ? c[8] || 128 : 128 << Math.min(n, 7);
    const st0base = (head << 2) | di;
    const fail = (st1: number, st2 = 0) => this.respond([ST0_IC_ABNORMAL | st0base, st1, st2, cyl, head, sector, n], true);
    if (!d.disk || !d.geometry) return fail(ST1_MISSING_AM | ST1_NO_DATA);
    if (!this.dma.isUnmasked(this.dmaChannel)) return fail(ST1_NO_DATA);
    if (write && d.disk.readOnly) return fail(ST1_NOT_WRITABLE);
    const g = d.geometry;
    if (sectorSize !== 512) return fail(ST1_NO_DATA);
    d.head = head;
    d.cylinder = cyl;
    const buf = new Uint8Array(512);
    let tc = false;
    for (let guard = 0; guard < 512; guard++) {
      if (cyl >= g.cylinders || head >= g.heads || sector < 1 || sector > g.sectorsPerTrack) return fail(ST1_NO_DATA);
      const lba = (cyl * g.heads + head) * g.sectorsPerTrack + sector - 1;
      const offset = lba * 512;
      try {
        if (write) {
          const data = this.dma.readFromMemory(this.dmaChannel, 512);
          if (data.length < 512) {
            // Partial final sector: the rest of it is filled with zeros, as the FDC pads.
            const padded = new Uint8Array(512);
            padded.set(data);
            this.writeSector(d.disk, offset, padded);
          } else this.writeSector(d.disk, offset, data);
        } else {
          this.readSector(d.disk, offset, buf);
          this.dma.writeToMemory(this.dmaChannel, buf);
        }
      } catch {
        return fail(0x20 /* CRC error in data */, 0x20);
      }
      // The TC pulse of this sector's transfer, not the 8237's status bit: that one stays set from
      // an earlier command until the CPU reads DMA status, which SeaBIOS never does.
      tc = this.dma.endedOnTerminalCount(this.dmaChannel) || !this.dma.isUnmasked(this.dmaChannel);
      // Advance to the next sector the way the controller's ID counter does.
      if (sector >= eot) {
        sector = 1;
        if (mt && head === 0) {
          head = 1;
        } else {
          if (mt) head = 0;
          cyl++;
          if (!tc) {
            // Ran off the end of the track without terminal count: "end of cylinder".
            return this.respond([ST0_IC_ABNORMAL | (head << 2) | di, ST1_END_OF_CYL, 0, cyl, head, sector, n], true);
          }
          break;
        }
      } else {
        sector++;
      }
      if (tc) break;
    }
    d.sector = sector;
    this.respond([(head << 2) | di, 0, 0, cyl, head, sector, n], true);
  }

  private readSector(disk: BlockDevice, offset: number, buf: Uint8Array): void {
    if (offset + buf.length <= disk.size) disk.read(offset, buf);
    else if (offset >= disk.size) buf.fill(0);
    else {
      buf.fill(0);
      disk.read(offset, buf.subarray(0, disk.size - offset));
    }
  }

  private writeSector(disk: BlockDevice, offset: number, data: Uint8Array): void {
    if (offset + data.length <= disk.size) disk.write(offset, data);
    else if (offset < disk.size) disk.write(offset, data.subarray(0, disk.size - offset));
  }

  /** FORMAT TRACK: takes C,H,R,N per sector by DMA and fills each sector with the filler byte. */
  private formatTrack(c: number[]): void {
    const di = c[1] & 3;
    const head = (c[1] >> 2) & 1;
    const d = this.drives[di & 1];
    const spt = c[3];
    const filler = c[5];
    const st0base = (head << 2) | di;
    if (!d.disk || !d.geometry) return this.respond([ST0_IC_ABNORMAL | st0base, ST1_MISSING_AM, 0, d.cylinder, head, 1, c[2]], true);
    if (d.disk.readOnly) return this.respond([ST0_IC_ABNORMAL | st0base, ST1_NOT_WRITABLE, 0, d.cylinder, head, 1, c[2]], true);
    const g = d.geometry;
    const fill = new Uint8Array(512).fill(filler);
    for (let i = 0; i < spt; i++) {
      const id = this.dma.readFromMemory(this.dmaChannel, 4);
      if (id.length < 4) break;
      const [cyl, h, r] = id;
      if (cyl < g.cylinders && h < g.heads && r >= 1 && r <= g.sectorsPerTrack) {
        try {
          this.writeSector(d.disk, ((cyl * g.heads + h) * g.sectorsPerTrack + r - 1) * 512, fill);
        } catch {
          return this.respond([ST0_IC_ABNORMAL | st0base, 0x20, 0x20, d.cylinder, head, 1, c[2]], true);
        }
      }
    }
    this.respond([st0base, 0, 0, d.cylinder, head, 1, c[2]], true);
  }

  // ------------------------------------------------------------------ Device

  reset(): void {
    this.timer.cancel();
    this.dor = 0;
    this.tdr = 0;
    this.dataRate = 2;
    this.phase = 'command';
    this.cmd = [];
    this.result = [];
    this.resultPos = 0;
    this.pendingResult = [];
    this.pendingIrq = false;
    this.setIrq(false);
    this.irqAsserted = false;
    this.senseQueue = [];
    this.specify = [0, 0];
    this.config = [0, 0x20, 0];
    this.locked = false;
    this.perpendicular = 0;
    for (const d of this.drives) {
      d.cylinder = 0;
      d.head = 0;
      d.sector = 1;
    }
  }

  saveState(): DeviceState {
    return {
      dor: this.dor,
      tdr: this.tdr,
      dataRate: this.dataRate,
      phase: this.phase,
      cmd: [...this.cmd],
      result: [...this.result],
      resultPos: this.resultPos,
      pendingResult: [...this.pendingResult],
      pendingIrq: this.pendingIrq,
      irqAsserted: this.irqAsserted,
      senseQueue: [...this.senseQueue],
      specify: [...this.specify],
      config: [...this.config],
      locked: this.locked,
      perpendicular: this.perpendicular,
      drives: this.drives.map((d) => ({ cylinder: d.cylinder, head: d.head, sector: d.sector, changed: d.changed })),
    };
  }

  loadState(s: DeviceState): void {
    this.dor = s.dor as number;
    this.tdr = s.tdr as number;
    this.dataRate = s.dataRate as number;
    this.phase = s.phase as 'command' | 'busy' | 'result';
    this.cmd = [...(s.cmd as number[])];
    this.result = [...(s.result as number[])];
    this.resultPos = s.resultPos as number;
    this.pendingResult = [...(s.pendingResult as number[])];
    this.pendingIrq = s.pendingIrq as boolean;
    this.senseQueue = [...(s.senseQueue as number[])];
    this.specify = [...(s.specify as number[])];
    this.config = [...(s.config as number[])];
    this.locked = s.locked as boolean;
    this.perpendicular = s.perpendicular as number;
    (s.drives as { cylinder: number; head: number; sector: number; changed: boolean }[]).forEach((d, i) => {
      Object.assign(this.drives[i], d);
    });
    this.irqAsserted = s.irqAsserted as boolean;
    if (this.irqAsserted) this.irq.raise();
    else this.irq.lower();
  }
}
