/**
 * INT 13h for the built-in BIOS: floppies (00h..), hard disks (80h..) and CD-ROMs (E0h..), read
 * straight from the machine's BlockDevices; CHS with LBA-assisted translation, the EDD 3.0
 * extensions (41h-48h), and El Torito (no emulation, floppy and hard-disk emulation, 4Bh).
 */
import type { BlockDevice } from '../storage/block-device';
import type { DiskKind } from '../machine/config';
import { BDA } from './bda';
import type { BiosEnv } from './env';
import type { Regs } from './regs';
import { ROM_SEGMENT, RomOffset } from './layout';

export interface BiosDriveSource {
  kind: DiskKind;
  device: BlockDevice;
  /** IDE position, for EDD device paths. */
  channel?: number;
  unit?: number;
}

export interface Geometry {
  cylinders: number;
  heads: number;
  sectors: number;
}

export interface BiosDrive {
  number: number;
  kind: DiskKind;
  device: BlockDevice;
  /** Byte offset of sector 0 in the device (El Torito emulation). */
  offset: number;
  sectorSize: number;
  /** Total sectors. */
  total: number;
  geometry: Geometry;
  /** CMOS floppy type (1 = 360K, 2 = 1.2M, 3 = 720K, 4 = 1.44M, 5 = 2.88M). */
  floppyType?: number;
  emulated?: boolean;
  channel?: number;
  unit?: number;
}

const FLOPPY_GEOMETRIES: [number, Geometry, number][] = [
  [368640, { cylinders: 40, heads: 2, sectors: 9 }, 1],
  [737280, { cylinders: 80, heads: 2, sectors: 9 }, 3],
  [1228800, { cylinders: 80, heads: 2, sectors: 15 }, 2],
  [1474560, { cylinders: 80, heads: 2, sectors: 18 }, 4],
  [1720320, { cylinders: 80, heads: 2, sectors: 21 }, 4],
  [2949120, { cylinders: 80, heads: 2, sectors: 36 }, 5],
];

export function floppyGeometry(bytes: number): { geometry: Geometry; type: number } {
  for (const [size, g, type] of FLOPPY_GEOMETRIES) if (bytes === size) return { geometry: g, type };
  // Unusual sizes: treat as 1.44 MB-shaped with as many cylinders as needed.
  const cyl = Math.max(1, Math.ceil(bytes / (512 * 36)));
  return { geometry: { cylinders: cyl, heads: 2, sectors: 18 }, type: 4 };
}

/** LBA-assisted translation, as BIOSes present ATA disks to INT 13h. */
export function hardDiskGeometry(totalSectors: number): Geometry {
  const spt = 63;
  let heads = 255;
  for (const h of [16, 32, 64, 128]) {
    if (totalSectors <= 1024 * h * spt) {
      heads = h;
      break;
    }
  }
  const cylinders = Math.max(1, Math.min(1024, Math.floor(totalSectors / (heads * spt))));
  return { cylinders, heads, sectors: spt };
}

export function chsToLba(g: Geometry, c: number, h: number, s: number): number {
  return (c * g.heads + h) * g.sectors + (s - 1);
}

export function lbaToChs(g: Geometry, lba: number): { c: number; h: number; s: number } {
  const s = (lba % g.sectors) + 1;
  const t = Math.floor(lba / g.sectors);
  return { c: Math.floor(t / g.heads), h: t % g.heads, s };
}

/** Geometry an HD-emulation image claims through its partition table (end CHS of partition 1). */
function mbrGeometry(sector0: Uint8Array, total: number): Geometry {
  for (let i = 0; i < 4; i++) {
    const e = 446 + 16 * i;
    if (sector0[e + 4] === 0) continue;
    const heads = sector0[e + 5] + 1;
    const spt = sector0[e + 6] & 0x3f;
    if (spt > 0) return { heads, sectors: spt, cylinders: Math.max(1, Math.floor(total / (heads * spt))) };
  }
  return hardDiskGeometry(total);
}

export const CD_SECTOR = 2048;

export interface ElToritoBoot {
  /** 0 no emulation, 1 1.2M, 2 1.44M, 3 2.88M floppy, 4 hard disk. */
  media: number;
  loadSegment: number;
  /** Count of 512-byte virtual sectors to load. */
  sectorCount: number;
  /** Start of the boot image in 2048-byte sectors. */
  lba: number;
  systemType: number;
}

/** Reads the El Torito boot catalog; returns null with a reason when the CD is not bootable. */
export function readElTorito(dev: BlockDevice): ElToritoBoot | string {
  if (dev.size < 18 * CD_SECTOR) return 'too small to be an ISO 9660 image';
  const brvd = new Uint8Array(CD_SECTOR);
  dev.read(17 * CD_SECTOR, brvd);
  const id = String.fromCharCode(...brvd.subarray(1, 6));
  const sys = String.fromCharCode(...brvd.subarray(7, 30));
  if (brvd[0] !== 0 || id !== 'CD001' || sys !== 'EL TORITO SPECIFICATION') return 'no El Torito boot record (not a bootable CD)';
  const catalog = new DataView(brvd.buffer).getUint32(0x47, true);
  if ((catalog + 1) * CD_SECTOR > dev.size) return 'El Torito boot catalog points past the end of the image';
  const cat = new Uint8Array(CD_SECTOR);
  dev.read(catalog * CD_SECTOR, cat);
  if (cat[0] !== 1 || cat[30] !== 0x55 || cat[31] !== 0xaa) return 'El Torito boot catalog has no valid validation entry';
  let sum = 0;
  for (let i = 0; i < 32; i += 2) sum = (sum + cat[i] + (cat[i + 1] << 8)) & 0xffff;
  if (sum !== 0) return 'El Torito validation entry checksum is wrong';
  const entry = (o: number): ElToritoBoot => {
    const dv = new DataView(cat.buffer, o);
    return {
      media: cat[o + 1] & 0x0f,
      loadSegment: dv.getUint16(2, true) || 0x07c0,
      systemType: cat[o + 4],
      sectorCount: dv.getUint16(6, true),
      lba: dv.getUint32(8, true),
    };
  };
  // Default entry first; then section entries for the x86 platform (hybrid ISOs put EFI there).
  if (cat[32] === 0x88 && cat[1] === 0) return entry(32);
  for (let o = 64; o + 32 <= CD_SECTOR; o += 32) {
    const hdr = cat[o];
    if (hdr !== 0x90 && hdr !== 0x91) continue;
    const platform = cat[o + 1];
    const count = cat[o + 2] | (cat[o + 3] << 8);
    for (let k = 1; k <= count && o + 32 * k + 32 <= CD_SECTOR; k++) {
      if (platform === 0 && cat[o + 32 * k] === 0x88) return entry(o + 32 * k);
    }
    o += 32 * count;
    if (hdr === 0x91) break;
  }
  if (cat[32] === 0x88) return entry(32);
  return 'El Torito catalog has no bootable x86 entry';
}

export class DiskBios {
  drives: BiosDrive[] = [];
  /** Set when booted from CD with emulation or no emulation (for AH=4Bh). */
  cdBoot: { drive: BiosDrive; boot: ElToritoBoot; cd: BiosDrive } | null = null;
  private lastStatus = new Map<number, number>();

  constructor(private readonly env: BiosEnv) {}

  /** Where the current media come from (the machine's biosDrives()); asked on every INT 13h. */
  provider: (() => BiosDriveSource[]) | null = null;
  private sources: BiosDriveSource[] = [];
  /** Floppy drive numbers whose diskette changed since the guest last asked (AH=16h). */
  private readonly changed = new Set<number>();

  /**
   * Picks up media changes (a diskette or CD swapped at run time): the drive map is rebuilt when
   * the devices differ, an El Torito emulation stays, and a changed floppy reports it through AH=16h.
   */
  refresh(): void {
    if (!this.provider) return;
    const now = this.provider();
    const same =
      now.length === this.sources.length && now.every((s, i) => s.device === this.sources[i].device && s.kind === this.sources[i].kind);
    if (same) return;
    const oldFloppies = this.sources.filter((s) => s.kind === 'floppy').map((s) => s.device);
    const newFloppies = now.filter((s) => s.kind === 'floppy').map((s) => s.device);
    const saved = this.saveCdBoot();
    this.restore(now, saved);
    const base = this.drives.some((d) => d.kind === 'floppy' && d.emulated) ? 1 : 0;
    for (let i = 0; i < Math.max(oldFloppies.length, newFloppies.length); i++)
      if (oldFloppies[i] !== newFloppies[i]) this.changed.add(base + i);
  }

  /** Numbers drives like a BIOS: floppies 00h, disks 80h, CD-ROMs E0h. */
  setDrives(sources: BiosDriveSource[]): void {
    this.sources = sources;
    this.changed.clear();
    this.drives = [];
    this.cdBoot = null;
    let fd = 0,
      hd = 0x80,
      cd = 0xe0;
    for (const s of sources) {
      const dev = s.device;
      if (s.kind === 'floppy') {
        const { geometry, type } = floppyGeometry(dev.size);
        this.drives.push({
          number: fd++,
          kind: 'floppy',
          device: dev,
          offset: 0,
          sectorSize: 512,
          total: Math.floor(dev.size / 512),
          geometry,
          floppyType: type,
        });
      } else if (s.kind === 'disk') {
        const total = Math.floor(dev.size / 512);
        this.drives.push({
          number: hd++,
          kind: 'disk',
          device: dev,
          offset: 0,
          sectorSize: 512,
          total,
          geometry: hardDiskGeometry(total),
          channel: s.channel,
          unit: s.unit,
        });
      } else {
        const total = Math.floor(dev.size / CD_SECTOR);
        this.drives.push({
          number: cd++,
          kind: 'cdrom',
          device: dev,
          offset: 0,
          sectorSize: CD_SECTOR,
          total,
          geometry: { cylinders: 0, heads: 0, sectors: 0 },
          channel: s.channel,
          unit: s.unit,
        });
      }
    }
    this.updateBda();
  }

  updateBda(): void {
    const mem = this.env.mem;
    mem.write8(BDA.DISK_COUNT, this.drives.filter((d) => d.kind === 'disk').length);
    // Equipment word: floppy present (bit 0) and count - 1 (bits 6-7), emulated drives included.
    const fd = this.floppyCount();
    let eq = mem.read16(BDA.EQUIPMENT) & ~0x00c1;
    if (fd) eq |= 0x0001 | ((Math.min(fd, 4) - 1) << 6);
    mem.write16(BDA.EQUIPMENT, eq);
  }

  floppyCount(): number {
    return this.drives.filter((d) => d.kind === 'floppy').length;
  }

  drive(n: number): BiosDrive | undefined {
    return this.drives.find((d) => d.number === n);
  }

  /**
   * Sets up El Torito for a boot from `cd`: returns the drive number to boot with and loads the
   * boot image at loadSegment:0. Emulation modes insert a virtual floppy (00h) or disk (80h).
   */
  bootCd(cd: BiosDrive, boot: ElToritoBoot, load = true): { drive: number; segment: number } {
    const mem = this.env.mem;
    if (boot.media === 0) {
      const bytes = new Uint8Array(Math.max(1, boot.sectorCount) * 512);
      cd.device.read(boot.lba * CD_SECTOR, bytes);
      if (load) mem.writeBytes(boot.loadSegment << 4, bytes);
      this.cdBoot = { drive: cd, boot, cd };
      return { drive: cd.number, segment: boot.loadSegment };
    }
    const offset = boot.lba * CD_SECTOR;
    let drive: BiosDrive;
    if (boot.media <= 3) {
      const sizes = [0, 1228800, 1474560, 2949120];
      const { geometry, type } = floppyGeometry(sizes[boot.media]);
      drive = {
        number: 0,
        kind: 'floppy',
        device: cd.device,
        offset,
        sectorSize: 512,
        total: sizes[boot.media] / 512,
        geometry,
        floppyType: type,
        emulated: true,
      };
      for (const d of this.drives) if (d.kind === 'floppy') d.number++;
    } else {
      const sector0 = new Uint8Array(512);
      cd.device.read(offset, sector0);
      // The emulated disk is as large as its partition table says, bounded by the CD.
      let total = 0;
      for (let i = 0; i < 4; i++) {
        const e = 446 + 16 * i;
        const dv = new DataView(sector0.buffer, e);
        total = Math.max(total, dv.getUint32(8, true) + dv.getUint32(12, true));
      }
      total = Math.min(total || Math.floor((cd.device.size - offset) / 512), Math.floor((cd.device.size - offset) / 512));
      drive = {
        number: 0x80,
        kind: 'disk',
        device: cd.device,
        offset,
        sectorSize: 512,
        total,
        geometry: mbrGeometry(sector0, total),
        emulated: true,
      };
      for (const d of this.drives) if (d.kind === 'disk') d.number++;
    }
    this.drives.unshift(drive);
    this.updateBda();
    if (load) {
      const bytes = new Uint8Array(Math.max(1, boot.sectorCount) * 512);
      cd.device.read(offset, bytes);
      mem.writeBytes(boot.loadSegment << 4, bytes);
    }
    this.cdBoot = { drive, boot, cd };
    return { drive: drive.number, segment: boot.loadSegment };
  }

  /** Plain-data description of the El Torito state, for saved states. */
  saveCdBoot(): { cd: number; boot: ElToritoBoot } | null {
    if (!this.cdBoot) return null;
    return { cd: this.cdBoot.cd.number, boot: { ...this.cdBoot.boot } };
  }

  /** Rebuilds the drive map (and any CD emulation) after a saved state was loaded. */
  restore(sources: BiosDriveSource[], saved: { cd: number; boot: ElToritoBoot } | null): void {
    this.setDrives(sources);
    if (!saved) return;
    const cd = this.drive(saved.cd);
    if (cd && cd.kind === 'cdrom') this.bootCd(cd, saved.boot, false);
  }

  private status(r: Regs, d: number, st: number): void {
    this.lastStatus.set(d, st);
    this.env.mem.write8(d & 0x80 ? BDA.DISK_STATUS : BDA.FLOPPY_STATUS, st);
    if (st) r.fail(st);
    else r.ok();
  }

  /** Reads/writes `count` sectors at `lba` to/from linear address `addr`. Returns a status. */
  private transfer(d: BiosDrive, lba: number, count: number, addr: number, write: boolean): number {
    if (count === 0) return 0;
    if (lba + count > d.total) return 0x04;
    // A guest asking for more than 16 MiB in one call gets an error, not a huge host allocation.
    if (count * d.sectorSize > 0x1000000) return 0x01;
    const bytes = count * d.sectorSize;
    const offset = d.offset + lba * d.sectorSize;
    try {
      if (write) {
        if (d.kind === 'cdrom' || d.emulated || d.device.readOnly) return 0x03;
        d.device.write(offset, this.env.mem.readBytes(addr, bytes));
      } else {
        const buf = new Uint8Array(bytes);
        d.device.read(offset, buf);
        this.env.mem.writeBytes(addr, buf);
      }
    } catch (e) {
      this.env.log(`bios: disk ${d.number.toString(16)}h ${write ? 'write' : 'read'} failed: ${(e as Error).message}`);
      return 0x20;
    }
    return 0;
  }

  handle(r: Regs): void {
    this.refresh();
    const dl = r.dl;
    const ah = r.ah;
    const d = this.drive(dl);
    if (!d) {
      // DOS probes for hard disks and floppies that are not there.
      if (ah === 0x15) {
        r.ah = 0;
        r.cf = false;
        return;
      }
      if (ah === 0x08 && (dl & 0x80) === 0) {
        r.ax = 0;
        r.bx = 0;
        r.cx = 0;
        r.dx = this.floppyCount();
        r.cf = false;
        return;
      }
      this.status(r, dl, 0x01);
      return;
    }
    switch (ah) {
      case 0x00:
      case 0x0d:
      case 0x10:
      case 0x11:
      case 0x0c:
        this.status(r, dl, 0);
        return;
      case 0x01: {
        const st = this.lastStatus.get(dl) ?? 0;
        r.ah = st;
        r.al = 0;
        r.cf = st !== 0;
        return;
      }
      case 0x02:
      case 0x03:
      case 0x04: {
        if (d.kind === 'cdrom') return this.status(r, dl, 0x01);
        const count = r.al;
        const cyl = r.ch | ((r.cl & 0xc0) << 2);
        const sec = r.cl & 0x3f;
        const head = r.dh;
        const g = d.geometry;
        if (sec === 0 || sec > g.sectors || head >= g.heads || (d.kind === 'floppy' && cyl >= g.cylinders)) {
          r.al = 0;
          return this.status(r, dl, 0x04);
        }
        const lba = chsToLba(g, cyl, head, sec);
        const st = ah === 0x04 ? (lba + count > d.total ? 0x04 : 0) : this.transfer(d, lba, count, r.esAddr(r.bx), ah === 0x03);
        r.al = st ? 0 : count;
        return this.status(r, dl, st);
      }
      case 0x08: {
        if (d.kind === 'cdrom') return this.status(r, dl, 0x01);
        const g = d.geometry;
        const maxCyl = Math.min(g.cylinders, 1024) - 1;
        r.ch = maxCyl & 0xff;
        r.cl = (g.sectors & 0x3f) | ((maxCyl >> 2) & 0xc0);
        r.dh = g.heads - 1;
        if (d.kind === 'floppy') {
          r.dl = this.floppyCount();
          r.bl = d.floppyType ?? 4;
          r.bh = 0;
          r.es = ROM_SEGMENT;
          r.di = RomOffset.DISKETTE_PARAMS;
        } else {
          r.dl = this.drives.filter((x) => x.kind === 'disk').length;
        }
        r.al = 0;
        return this.status(r, dl, 0);
      }
      case 0x15:
        if (d.kind === 'floppy') {
          r.ah = 0x02; // change line supported
        } else if (d.kind === 'disk') {
          r.ah = 0x03;
          const total = Math.min(d.total, 0xffffffff);
          r.cx = (total >>> 16) & 0xffff;
          r.dx = total & 0xffff;
        } else r.ah = 0x02;
        r.cf = false;
        return;
      case 0x16:
        // Disk change line: 06h (changed) once after a swap, then 00h.
        if (this.changed.delete(dl)) {
          r.fail(0x06);
          return;
        }
        r.ah = 0;
        r.cf = false;
        return;
      case 0x17:
      case 0x18:
        this.status(r, dl, 0);
        return;
      case 0x41:
        if (r.bx !== 0x55aa) return this.status(r, dl, 0x01);
        r.bx = 0xaa55;
        r.ah = 0x30;
        r.cx = d.kind === 'cdrom' ? 0x0007 : 0x0005;
        r.cf = false;
        return;
      case 0x42:
      case 0x43:
      case 0x44:
      case 0x47: {
        const p = r.dsAddr(r.si);
        const mem = this.env.mem;
        const size = mem.read8(p);
        const count = mem.read16(p + 2);
        let addr = ((mem.read16(p + 6) << 4) + mem.read16(p + 4)) >>> 0;
        if (size >= 0x18 && mem.read32(p + 4) === -1) addr = mem.read32(p + 0x10) >>> 0;
        const lba = (mem.read32(p + 8) >>> 0) + (mem.read32(p + 12) >>> 0) * 2 ** 32;
        if (ah === 0x47 || ah === 0x44) return this.status(r, dl, lba + (ah === 0x44 ? count : 0) > d.total ? 0x04 : 0);
        const st = this.transfer(d, lba, count, addr, ah === 0x43);
        if (st) mem.write16(p + 2, 0);
        return this.status(r, dl, st);
      }
      case 0x45:
      case 0x46:
      case 0x49:
        this.status(r, dl, d.kind === 'cdrom' ? 0 : 0x01);
        return;
      case 0x48:
        this.edd(r, d);
        return;
      case 0x4b:
        this.elToritoStatus(r);
        return;
      default:
        this.status(r, dl, 0x01);
        return;
    }
  }

  private edd(r: Regs, d: BiosDrive): void {
    const mem = this.env.mem;
    const p = r.dsAddr(r.si);
    const size = mem.read16(p);
    if (size < 0x1a) return this.status(r, d.number, 0x01);
    const buf = new Uint8Array(0x42);
    const dv = new DataView(buf.buffer);
    const g = d.geometry;
    const len = size >= 0x42 ? 0x42 : size >= 0x1e ? 0x1e : 0x1a;
    dv.setUint16(0, len, true);
    // DMA boundary errors handled; CHS info valid (not for CD); removable for CD/floppy.
    dv.setUint16(2, d.kind === 'cdrom' ? 0x0074 : d.kind === 'floppy' ? 0x0006 : 0x0002, true);
    dv.setUint32(4, d.kind === 'cdrom' ? 0xffffffff : g.cylinders, true);
    dv.setUint32(8, d.kind === 'cdrom' ? 0xffffffff : g.heads, true);
    dv.setUint32(12, d.kind === 'cdrom' ? 0xffffffff : g.sectors, true);
    dv.setBigUint64(16, BigInt(d.total), true);
    dv.setUint16(24, d.sectorSize, true);
    if (len >= 0x1e) dv.setUint32(26, 0xffffffff, true); // no DPTE
    if (len >= 0x42) {
      dv.setUint16(30, 0xbedd, true);
      buf[32] = 0x24;
      buf.set(
        [...'ISA '].map((c) => c.charCodeAt(0)),
        36,
      );
      buf.set(
        [...(d.kind === 'cdrom' ? 'ATAPI   ' : 'ATA     ')].map((c) => c.charCodeAt(0)),
        40,
      );
      const base = (d.channel ?? 0) === 0 ? 0x1f0 : 0x170;
      dv.setUint16(48, base, true);
      buf[56] = d.unit ?? 0;
      let sum = 0;
      for (let i = 30; i < 0x41; i++) sum = (sum + buf[i]) & 0xff;
      buf[0x41] = (0x100 - sum) & 0xff;
    }
    mem.writeBytes(p, buf.subarray(0, len));
    this.status(r, d.number, 0);
  }

  private elToritoStatus(r: Regs): void {
    const al = r.al;
    if ((al !== 0x00 && al !== 0x01) || !this.cdBoot) {
      r.fail(0x01);
      return;
    }
    const { drive, boot, cd } = this.cdBoot;
    const p = r.dsAddr(r.si);
    const b = new Uint8Array(0x13);
    const dv = new DataView(b.buffer);
    b[0] = 0x13;
    b[1] = boot.media;
    b[2] = drive.number;
    b[3] = cd.channel ?? 1;
    dv.setUint32(4, boot.lba, true);
    dv.setUint16(8, (cd.unit ?? 0) & 1, true);
    dv.setUint16(10, 0, true);
    dv.setUint16(12, boot.loadSegment, true);
    dv.setUint16(14, boot.sectorCount, true);
    const g = drive.geometry;
    b[16] = (g.cylinders - 1) & 0xff;
    b[17] = (g.sectors & 0x3f) | (((g.cylinders - 1) >> 2) & 0xc0);
    b[18] = g.heads ? g.heads - 1 : 0;
    this.env.mem.writeBytes(p, b);
    if (al === 0x00 && boot.media !== 0) {
      // Terminate emulation.
      this.drives = this.drives.filter((x) => x !== drive);
      for (const x of this.drives) if (x.kind === drive.kind && !x.emulated) x.number--;
      this.updateBda();
    }
    r.ok();
  }
}
