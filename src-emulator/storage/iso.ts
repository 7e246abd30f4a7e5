import { DiskError } from './block-device';
import type { BlockStatus, CheckResult, DiskImage, ImageInfo } from './disk-image';
import { HostFile, ascii, dv } from './host-file';
import { checkRange } from './raw';

const SECTOR = 2048;

export interface BootEntry {
  /** 0 x86, 1 PowerPC, 2 Mac, 0xef EFI */
  platform: number;
  bootable: boolean;
  /** 0 no emulation, 1-3 floppy 1.2/1.44/2.88, 4 hard disk */
  media: number;
  loadSegment: number;
  /** Count of 512-byte virtual sectors to load. */
  sectorCount: number;
  /** First 2048-byte sector of the boot image. */
  lba: number;
}

export interface BootCatalogue {
  sector: number;
  entries: BootEntry[];
}

/**
 * An ISO 9660 CD/DVD image: read-only, 2048-byte sectors. The primary volume descriptor's label
 * and the El Torito boot catalogue are exposed so the firmware can boot it and the UI can guess
 * the operating system from the label.
 */
export class IsoImage implements DiskImage {
  readonly format = 'iso' as const;
  readonly backing = null;
  readonly readOnly = true;
  readonly path: string;
  readonly size: number;
  volumeLabel = '';
  systemId = '';
  volumeSetId = '';
  publisherId = '';
  applicationId = '';
  /** Volume size from the PVD, in bytes (the file may be padded beyond it). */
  volumeSize = 0;
  bootCatalogue: BootCatalogue | null = null;

  private constructor(private readonly file: HostFile) {
    this.path = file.path;
    this.size = file.size;
  }

  static open(file: HostFile): IsoImage {
    const img = new IsoImage(file);
    img.parse();
    return img;
  }

  private fail(fault: string): never {
    throw new DiskError(this.path, fault);
  }

  private parse(): void {
    // Volume descriptors from sector 16 until the terminator (type 255), bounded.
    for (let s = 16; s < 16 + 64; s++) {
      if ((s + 1) * SECTOR > this.size) this.fail('volume descriptor set is not terminated');
      const d = this.file.readBytes(s * SECTOR, SECTOR);
      if (ascii(d, 1, 5) !== 'CD001') this.fail(`sector ${s} is not an ISO 9660 volume descriptor`);
      const type = d[0];
      if (type === 255) break;
      if (type === 1 && !this.volumeLabel) {
        this.systemId = ascii(d, 8, 32).trim();
        this.volumeLabel = ascii(d, 40, 32).trim();
        this.volumeSize = dv(d).getUint32(80, true) * dv(d).getUint16(128, true);
        this.volumeSetId = ascii(d, 190, 128).trim();
        this.publisherId = ascii(d, 318, 128).trim();
        this.applicationId = ascii(d, 574, 128).trim();
      } else if (type === 0 && ascii(d, 7, 23) === 'EL TORITO SPECIFICATION') {
        this.parseBootCatalogue(dv(d).getUint32(0x47, true));
      }
    }
  }

  private parseBootCatalogue(sector: number): void {
    if ((sector + 1) * SECTOR > this.size) return;
    const c = this.file.readBytes(sector * SECTOR, SECTOR);
    const v = dv(c);
    if (c[0] !== 1 || c[0x1e] !== 0x55 || c[0x1f] !== 0xaa) return;
    let sum = 0;
    for (let i = 0; i < 32; i += 2) sum = (sum + v.getUint16(i, true)) & 0xffff;
    if (sum !== 0) return;
    const entries: BootEntry[] = [];
    const entry = (o: number, platform: number): BootEntry => ({
      platform,
      bootable: c[o] === 0x88,
      media: c[o + 1] & 0x0f,
      loadSegment: v.getUint16(o + 2, true),
      sectorCount: v.getUint16(o + 6, true),
      lba: v.getUint32(o + 8, true),
    });
    entries.push(entry(32, c[1]));
    // Section headers (0x90 more follow, 0x91 last) with their entries.
    let o = 64;
    while (o + 32 <= SECTOR) {
      const h = c[o];
      if (h !== 0x90 && h !== 0x91) break;
      const platform = c[o + 1];
      const n = v.getUint16(o + 2, true);
      o += 32;
      for (let k = 0; k < n && o + 32 <= SECTOR; k++, o += 32) {
        if (c[o] === 0x44) continue; // extension entry
        entries.push(entry(o, platform));
      }
      if (h === 0x91) break;
    }
    this.bootCatalogue = { sector, entries };
  }

  read(offset: number, buf: Uint8Array): void {
    checkRange(this, offset, buf.length);
    this.file.read(offset, buf);
  }

  write(): void {
    this.fail('ISO images are read-only');
  }

  flush(): void {}

  close(): void {
    this.file.close();
  }

  info(): ImageInfo {
    return {
      path: this.path,
      format: 'iso',
      virtualSize: this.size,
      actualSize: this.file.allocatedBytes(),
      specific: {
        volumeLabel: this.volumeLabel,
        systemId: this.systemId,
        publisherId: this.publisherId,
        applicationId: this.applicationId,
        bootable: !!this.bootCatalogue?.entries.some((e) => e.bootable),
        bootCatalogue: this.bootCatalogue,
      },
    };
  }

  check(): CheckResult {
    const errors: string[] = [];
    if (this.volumeSize > this.size) errors.push(`volume size ${this.volumeSize} exceeds the file size ${this.size}`);
    return { errors, leaks: 0 };
  }

  blockStatus(offset: number, length: number): { status: BlockStatus; length: number } {
    return { status: 'data', length: Math.min(length, this.size - offset) };
  }

  files(): string[] {
    return [this.path];
  }

  resize(): void {
    this.fail('ISO images are read-only');
  }
}
