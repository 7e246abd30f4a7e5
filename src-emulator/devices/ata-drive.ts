/**
 * ATA hard disk on an IDE channel: IDENTIFY with CHS, LBA28 and LBA48 geometry, PIO (single and
 * multiple) and DMA reads and writes including the EXT forms, READ VERIFY, FLUSH CACHE (a real
 * `BlockDevice.flush`), SET FEATURES, SET MULTIPLE, INITIALIZE DEVICE PARAMETERS, and the power
 * commands as no-ops. Storage errors become UNC; out-of-range sectors IDNF; unknown commands ABRT.
 */
import type { BlockDevice } from '../storage/block-device';
import type { DeviceState } from '../machine/device';
import { ERR_ABRT, ERR_IDNF, ERR_UNC, IdeDrive, ST_DRDY, ST_DSC } from './ide-controller';

const SECTOR = 512;
const MAX_MULTIPLE = 16;

export class AtaDrive extends IdeDrive {
  readonly kind = 'ata';
  readonly totalSectors: number;
  /** Default (physical) geometry reported in IDENTIFY words 1/3/6. */
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
  /** Current logical geometry (INITIALIZE DEVICE PARAMETERS). */
  private curHeads: number;
  private curSpt: number;
  private multiple = MAX_MULTIPLE;
  private writeCache = true;
  private udmaMode = -1;
  private mwdmaMode = 2;
  /** Current transfer: next LBA and sectors left; `xfer` says which command drives it. */
  private lba = 0;
  private remaining = 0;
  private xfer: 'none' | 'read' | 'write' = 'none';
  private blockSectors = 1;
  /** Bytes already moved of the current DMA transfer's first sector. */
  private dmaBytes = 0;
  private dmaTotal = 0;
  private dmaLba = 0;

  constructor(
    readonly disk: BlockDevice,
    readonly model = 'BOXWOOD HARDDISK',
    readonly serial = 'BW' + Math.abs(hashString(disk.path)).toString(16).padStart(8, '0').slice(0, 10),
  ) {
    super();
    this.totalSectors = Math.floor(disk.size / SECTOR);
    const chsMax = 16383 * 16 * 63;
    this.heads = 16;
    this.sectorsPerTrack = 63;
    this.cylinders = Math.max(1, Math.min(16383, Math.floor(Math.min(this.totalSectors, chsMax) / (16 * 63))));
    this.curHeads = this.heads;
    this.curSpt = this.sectorsPerTrack;
  }

  resetSignature(): void {
    this.cancelPending();
    this.error = 0x01;
    this.nsector = 1;
    this.sector = 1;
    this.lcyl = 0;
    this.hcyl = 0;
    this.select = 0xa0 | (this.unit << 4);
    this.status = ST_DRDY | ST_DSC;
    this.xfer = 'none';
    this.pioDir = 0;
    this.dmaDir = 0;
  }

  get lba48Capable(): boolean {
    return true;
  }

  command(cmd: number): void {
    switch (cmd) {
      case 0xec:
        return this.identify();
      case 0xa1: // IDENTIFY PACKET DEVICE: not a packet device
      case 0xa0:
        return this.fail(ERR_ABRT);
      case 0x20:
      case 0x21:
        return this.startRead(false, 1, false);
      case 0x24:
        return this.startRead(true, 1, false);
      case 0xc4:
        return this.startRead(false, this.multiple, false);
      case 0x29:
        return this.startRead(true, this.multiple, false);
      case 0xc8:
      case 0xc9:
        return this.startRead(false, 0, true);
      case 0x25:
        return this.startRead(true, 0, true);
      case 0x30:
      case 0x31:
        return this.startWrite(false, 1, false);
      case 0x34:
        return this.startWrite(true, 1, false);
      case 0xc5:
        return this.startWrite(false, this.multiple, false);
      case 0x39:
        return this.startWrite(true, this.multiple, false);
      case 0xca:
      case 0xcb:
        return this.startWrite(false, 0, true);
      case 0x35:
        return this.startWrite(true, 0, true);
      case 0x40:
      case 0x41:
      case 0x42: {
        const lba48 = cmd === 0x42;
        const { lba, count } = this.address(lba48);
        if (lba < 0 || lba + count > this.totalSectors) return this.fail(ERR_IDNF);
        this.setPosition(lba + count - 1, lba48);
        return this.finish();
      }
      case 0xe7:
      case 0xea:
        try {
          this.disk.flush();
        } catch {
          return this.fail(ERR_UNC);
        }
        return this.finish();
      case 0xef:
        return this.setFeatures();
      case 0xc6: {
        const n = this.nsector;
        if (n > MAX_MULTIPLE || (n & (n - 1)) !== 0) return this.fail(ERR_ABRT);
        if (n) this.multiple = n;
        return this.finish();
      }
      case 0x91: {
        // INITIALIZE DEVICE PARAMETERS: logical sectors per track and heads for CHS translation.
        const spt = this.nsector;
        const heads = (this.select & 0x0f) + 1;
        if (spt === 0) return this.fail(ERR_ABRT);
        this.curSpt = spt;
        this.curHeads = heads;
        return this.finish();
      }
      case 0x90: // EXECUTE DEVICE DIAGNOSTIC
        this.resetSignature();
        this.complete(ST_DRDY | ST_DSC, true);
        return;
      case 0x08: // DEVICE RESET is a packet-device command
        return this.fail(ERR_ABRT);
      case 0x70: // SEEK
      case 0xe0: // STANDBY IMMEDIATE
      case 0xe1: // IDLE IMMEDIATE
      case 0xe2: // STANDBY
      case 0xe3: // IDLE
      case 0xe6: // SLEEP
      case 0x94: // the same power commands under their ATA-1 opcodes
      case 0x95:
      case 0x96:
      case 0x97:
      case 0x99:
        return this.finish();
      case 0xe5: // CHECK POWER MODE: active or idle
      case 0x98:
        this.nsector = 0xff;
        return this.finish();
      default:
        if (cmd >= 0x10 && cmd <= 0x1f) return this.finish(); // RECALIBRATE
        return this.fail(ERR_ABRT);
    }
  }

  private setFeatures(): void {
    switch (this.feature) {
      case 0x02:
        this.writeCache = true;
        break;
      case 0x82:
        this.writeCache = false;
        break;
      case 0x03: {
        const mode = this.nsector;
        const type = mode >> 3;
        if (type === 0 || type === 1) {
          // PIO default / flow-control modes: nothing to change
        } else if (type === 4) {
          this.mwdmaMode = mode & 7;
          this.udmaMode = -1;
        } else if (type === 8) {
          this.udmaMode = mode & 7;
          this.mwdmaMode = -1;
        } else return this.fail(ERR_ABRT);
        break;
      }
      case 0xaa:
      case 0x55:
      case 0x66:
      case 0xcc:
      case 0x05:
      case 0x85:
        break;
      default:
        return this.fail(ERR_ABRT);
    }
    this.finish();
  }

  /** Decodes the task file's start address and sector count (CHS, LBA28 or LBA48). */
  private address(lba48: boolean): { lba: number; count: number } {
    if (lba48) {
      const lba =
        (this.hobHcyl * 2 ** 40 + this.hobLcyl * 2 ** 32 + this.hobSector * 2 ** 24) + ((this.hcyl << 16) | (this.lcyl << 8) | this.sector);
      const count = (this.hobNsector << 8) | this.nsector || 65536;
      return { lba, count };
    }
    const count = this.nsector || 256;
    if (this.lbaMode) {
      return { lba: ((this.select & 0x0f) << 24) | (this.hcyl << 16) | (this.lcyl << 8) | this.sector, count };
    }
    const cyl = (this.hcyl << 8) | this.lcyl;
    const head = this.select & 0x0f;
    if (this.sector === 0 || this.sector > this.curSpt || head >= this.curHeads) return { lba: -1, count };
    return { lba: (cyl * this.curHeads + head) * this.curSpt + this.sector - 1, count };
  }

  /** Writes `lba` back into the task file (the address of the last sector handled, per ATA). */
  private setPosition(lba: number, lba48: boolean): void {
    if (lba48) {
      this.sector = lba & 0xff;
      this.lcyl = (lba >>> 8) & 0xff;
      this.hcyl = (lba >>> 16) & 0xff;
      const hi = Math.floor(lba / 2 ** 24);
      this.hobSector = hi & 0xff;
      this.hobLcyl = (hi >>> 8) & 0xff;
      this.hobHcyl = (hi >>> 16) & 0xff;
    } else if (this.lbaMode) {
      this.sector = lba & 0xff;
      this.lcyl = (lba >>> 8) & 0xff;
      this.hcyl = (lba >>> 16) & 0xff;
      this.select = (this.select & 0xf0) | ((lba >>> 24) & 0x0f);
    } else {
      const spt = this.curSpt;
      const heads = this.curHeads;
      const cyl = Math.floor(lba / (spt * heads));
      const r = lba % (spt * heads);
      this.sector = (r % spt) + 1;
      this.lcyl = cyl & 0xff;
      this.hcyl = (cyl >> 8) & 0xff;
      this.select = (this.select & 0xf0) | Math.floor(r / spt);
    }
  }

  private lba48Op = false;

  private startRead(lba48: boolean, block: number, dma: boolean): void {
    const { lba, count } = this.address(lba48);
    if (lba < 0 || lba + count > this.totalSectors) return this.fail(ERR_IDNF);
    this.lba48Op = lba48;
    this.lba = lba;
    this.remaining = count;
    this.xfer = 'read';
    if (dma) {
      this.dmaLba = lba;
      this.dmaBytes = 0;
      this.dmaTotal = count * SECTOR;
      return this.startDma(1);
    }
    this.blockSectors = block;
    this.readBlock();
  }

  private readBlock(): void {
    const n = Math.min(this.blockSectors, this.remaining);
    this.ensureBuffer(n * SECTOR);
    try {
      this.disk.read(this.lba * SECTOR, this.buffer.subarray(0, n * SECTOR));
    } catch {
      this.setPosition(this.lba, this.lba48Op);
      this.xfer = 'none';
      return this.fail(ERR_UNC);
    }
    this.setPosition(this.lba + n - 1, this.lba48Op);
    this.lba += n;
    this.remaining -= n;
    this.startPioIn(n * SECTOR);
  }

  private startWrite(lba48: boolean, block: number, dma: boolean): void {
    const { lba, count } = this.address(lba48);
    if (lba < 0 || lba + count > this.totalSectors) return this.fail(ERR_IDNF);
    if (this.disk.readOnly) return this.fail(ERR_ABRT);
    this.lba48Op = lba48;
    this.lba = lba;
    this.remaining = count;
    this.xfer = 'write';
    if (dma) {
      this.dmaLba = lba;
      this.dmaBytes = 0;
      this.dmaTotal = count * SECTOR;
      return this.startDma(2);
    }
    this.blockSectors = block;
    const n = Math.min(block, count);
    this.ensureBuffer(n * SECTOR);
    this.startPioOut(n * SECTOR, false);
  }

  protected pioDone(): void {
    if (this.xfer === 'read') {
      if (this.remaining > 0) this.readBlock();
      else {
        this.xfer = 'none';
        this.status = ST_DRDY | ST_DSC;
      }
      return;
    }
    if (this.xfer === 'write') {
      const n = this.end / SECTOR;
      try {
        this.disk.write(this.lba * SECTOR, this.buffer.subarray(0, this.end));
      } catch {
        this.xfer = 'none';
        return this.fail(ERR_UNC);
      }
      this.setPosition(this.lba + n - 1, this.lba48Op);
      this.lba += n;
      this.remaining -= n;
      if (this.remaining > 0) {
        const next = Math.min(this.blockSectors, this.remaining);
        this.startPioOut(next * SECTOR, true);
      } else {
        this.xfer = 'none';
        this.finish();
      }
    }
  }

  // ---- DMA

  dmaRemaining(): number {
    return this.dmaTotal - this.dmaBytes;
  }

  dmaRead(max: number): Uint8Array {
    const n = Math.min(max, this.dmaRemaining(), 1 << 20);
    const out = new Uint8Array(n);
    try {
      this.disk.read(this.dmaLba * SECTOR + this.dmaBytes, out);
    } catch {
      this.dmaError = true;
      return new Uint8Array(0);
    }
    this.dmaBytes += n;
    return out;
  }

  private dmaError = false;

  dmaWrite(data: Uint8Array): boolean {
    try {
      this.disk.write(this.dmaLba * SECTOR + this.dmaBytes, data);
    } catch {
      this.dmaError = true;
      return false;
    }
    this.dmaBytes += data.length;
    return true;
  }

  dmaDone(short: boolean): void {
    const moved = Math.floor(this.dmaBytes / SECTOR);
    this.xfer = 'none';
    if (this.dmaError) {
      this.dmaError = false;
      this.setPosition(this.dmaLba + moved, this.lba48Op);
      return this.fail(ERR_UNC);
    }
    this.setPosition(this.dmaLba + Math.max(0, moved - 1), this.lba48Op);
    if (short) {
      // The PRD table was smaller than the transfer: the device still expects data; report an abort.
      return this.fail(ERR_ABRT);
    }
    this.finish();
  }

  // ---- IDENTIFY

  private identify(): void {
    const w = new Uint16Array(256);
    const total = this.totalSectors;
    const lba28 = Math.min(total, 0x0fffffff);
    w[0] = 0x0040; // fixed disk
    w[1] = this.cylinders;
    w[3] = this.heads;
    w[4] = 512 * this.sectorsPerTrack;
    w[5] = 512;
    w[6] = this.sectorsPerTrack;
    putString(w, 10, 20, this.serial);
    w[20] = 3; // buffer type
    w[21] = 512; // buffer size in sectors
    w[22] = 4; // ECC bytes
    putString(w, 23, 8, '1.0');
    putString(w, 27, 40, this.model);
    w[47] = 0x8000 | MAX_MULTIPLE;
    w[48] = 1; // dword I/O
    w[49] = 0x0300 | 0x0800 | 0x0400; // LBA, DMA, IORDY, IORDY can be disabled
    w[50] = 0x4000;
    w[51] = 0x0200;
    w[52] = 0x0200;
    w[53] = 0x0007;
    const curCyl = Math.min(65535, Math.floor(Math.min(total, 16383 * 16 * 63) / (this.curHeads * this.curSpt)));
    w[54] = curCyl;
    w[55] = this.curHeads;
    w[56] = this.curSpt;
    const chsCap = curCyl * this.curHeads * this.curSpt;
    w[57] = chsCap & 0xffff;
    w[58] = chsCap >>> 16;
    w[59] = 0x0100 | this.multiple;
    w[60] = lba28 & 0xffff;
    w[61] = lba28 >>> 16;
    w[63] = 0x0007 | (this.mwdmaMode >= 0 ? 0x100 << this.mwdmaMode : 0);
    w[64] = 0x0003;
    w[65] = 120;
    w[66] = 120;
    w[67] = 120;
    w[68] = 120;
    w[80] = 0x00f0; // ATA/ATAPI-4..7
    w[81] = 0x0016;
    w[82] = 0x0020 | 0x4000; // write cache, NOP
    w[83] = 0x4000 | 0x1000 | 0x2000 | (this.lba48Capable ? 0x0400 : 0);
    w[84] = 0x4000;
    w[85] = (this.writeCache ? 0x0020 : 0) | 0x4000;
    w[86] = 0x1000 | 0x2000 | (this.lba48Capable ? 0x0400 : 0);
    w[87] = 0x4000;
    w[88] = 0x003f | (this.udmaMode >= 0 ? 0x100 << this.udmaMode : 0);
    w[93] = 0x4000 | 0x2000 | 0x0001 | (this.unit === 0 ? 0x0008 : 0x0100);
    w[100] = total & 0xffff;
    w[101] = Math.floor(total / 0x10000) & 0xffff;
    w[102] = Math.floor(total / 0x100000000) & 0xffff;
    w[103] = 0;
    finishIdentify(w);
    this.buffer.set(new Uint8Array(w.buffer), 0);
    this.xfer = 'none';
    this.startPioIn(512);
  }

  saveDriveState(): DeviceState {
    return {
      curHeads: this.curHeads,
      curSpt: this.curSpt,
      multiple: this.multiple,
      writeCache: this.writeCache,
      udmaMode: this.udmaMode,
      mwdmaMode: this.mwdmaMode,
      lba: this.lba,
      remaining: this.remaining,
      xfer: this.xfer,
      blockSectors: this.blockSectors,
      dmaBytes: this.dmaBytes,
      dmaTotal: this.dmaTotal,
      dmaLba: this.dmaLba,
      lba48Op: this.lba48Op,
    };
  }

  loadDriveState(s: DeviceState): void {
    this.curHeads = s.curHeads as number;
    this.curSpt = s.curSpt as number;
    this.multiple = s.multiple as number;
    this.writeCache = s.writeCache as boolean;
    this.udmaMode = s.udmaMode as number;
    this.mwdmaMode = s.mwdmaMode as number;
    this.lba = s.lba as number;
    this.remaining = s.remaining as number;
    this.xfer = s.xfer as 'none' | 'read' | 'write';
    this.blockSectors = s.blockSectors as number;
    this.dmaBytes = s.dmaBytes as number;
    this.dmaTotal = s.dmaTotal as number;
    this.dmaLba = s.dmaLba as number;
    this.lba48Op = s.lba48Op as boolean;
  }
}

/** ATA strings: space padded, two characters per word with the first in the high byte. */
export function putString(w: Uint16Array, word: number, chars: number, s: string): void {
  const padded = s.padEnd(chars, ' ').slice(0, chars);
  for (let i = 0; i < chars; i += 2) w[word + i / 2] = (padded.charCodeAt(i) << 8) | padded.charCodeAt(i + 1);
}

/** Word 255: signature 0xA5 and a checksum making all 512 bytes sum to zero. */
export function finishIdentify(w: Uint16Array): void {
  w[255] = 0x00a5;
  const bytes = new Uint8Array(w.buffer, w.byteOffset, 512);
  let sum = 0;
  for (let i = 0; i < 511; i++) sum += bytes[i];
  w[255] = 0x00a5 | (((256 - (sum & 0xff)) & 0xff) << 8);
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}
