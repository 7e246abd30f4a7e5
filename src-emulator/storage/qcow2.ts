import * as zlib from 'node:zlib';
import { DiskError } from './block-device';
import { readBacking, type BlockStatus, type CheckResult, type DiskImage, type ImageFormat, type ImageInfo, type SnapshotInfo } from './disk-image';
import { HostFile, ascii, dv, getU64BE, isZero, setU64BE } from './host-file';
import type { CreateOptions, OpenContext } from './open';
import { checkRange } from './raw';

const MAGIC = 0x514649fb;
const COPIED = 0x80000000; // in the high word
const COMPRESSED = 0x40000000; // in the high word
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_FEATURE_TABLE = 0x6803f857;
const EXT_DATA_FILE = 0x44415441;
const EXT_BITMAPS = 0x23852875;
const AUTOCLEAR_BITMAPS = 1;
const INCOMPAT_DIRTY = 1;
const INCOMPAT_CORRUPT = 2;
const COMPAT_LAZY_REFCOUNTS = 1;
const INCOMPAT_EXTENDED_L2 = 16;
const KNOWN_INCOMPAT = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_EXTENDED_L2;
const MAX_L1_BYTES = 32 * 1024 * 1024; // qemu's limit too
const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
const MAX_SNAPSHOTS = 65536;
const MAX_SNAPSHOT_TABLE = 64 * 1024 * 1024;
const L2_CACHE_BYTES = 32 * 1024 * 1024;
const TWO32 = 4294967296;

interface Snapshot {
  l1Offset: number;
  l1Size: number;
  id: string;
  name: string;
  dateSec: number;
  dateNsec: number;
  vmClockNs: number;
  vmStateSize: number;
  diskSize: number;
  /** Unknown extra data beyond the fields we know, preserved on rewrite. */
  extraTail: Uint8Array;
}

/** Extended L2 entries: one allocation and one zero bit for each of 32 subclusters. */
interface Subclusters {
  alloc: number;
  zero: number;
}

type Entry =
  | { kind: 'unallocated'; sub?: Subclusters }
  | { kind: 'zero'; offset: number; copied: boolean }
  | { kind: 'normal'; offset: number; copied: boolean; sub?: Subclusters }
  | { kind: 'compressed'; offset: number; length: number };

/**
 * QEMU's copy-on-write format, versions 2 and 3.
 *
 * Refcounts live in memory for every host cluster (bounded by the file size) and are written
 * through on every change; L2 tables are cached and written through. Clusters are allocated at the
 * end of the file. The order of every update keeps the image consistent for `qemu-img check` if the
 * process dies between any two writes: a cluster's refcount is raised before anything points to
 * it and lowered only after nothing does, data is written before the L2 entry that maps it, and an
 * L2 table before the L1 entry. A crash can therefore leak a cluster, never corrupt one.
 */
export class Qcow2Image implements DiskImage {
  readonly format = 'qcow2' as const;
  readonly path: string;
  readonly readOnly: boolean;
  backing: DiskImage | null = null;
  size = 0;

  private version = 3;
  private clusterBits = 16;
  private cs = 65536;
  private l2Entries = 8192;
  private extL2 = false;
  private entryBytes = 8;
  private l1Offset = 0;
  private l1Size = 0;
  private l1Hi = new Uint32Array(0);
  private l1Lo = new Uint32Array(0);
  private refOrder = 4;
  private refBits = 16;
  private refsPerBlock = 0;
  private maxRefcount = 65535;
  private refTableOffset = 0;
  private refTableEntries = 0;
  private refTable: number[] = [];
  private refBlockSet = new Set<number>();
  private rc = new Uint32Array(0);
  private nextCluster = 0;
  /** Clusters below nextCluster with refcount 0, and the lowest index that may be one. */
  private freeCount = 0;
  private freeSearch = 1;
  private growingTable = false;
  private incompat = 0;
  private compat = 0;
  private autoclear = 0;
  private headerLength = 72;
  private backingRef: string | null = null;
  private backingFormat: ImageFormat | undefined;
  private snapshots: Snapshot[] = [];
  private snapshotsOffset = 0;
  private snapshotTableBytes = 0;
  private l2Cache = new Map<number, Uint8Array>();
  private l2CacheMax = 64;
  private lastCompressed: { offset: number; data: Uint8Array } | null = null;
  /** Where the next compressed cluster may be appended (byte offset), or 0. */
  private compressedCursor = 0;
  private featureNames = new Map<string, string>();
  /** Persistent bitmaps (qemu's dirty bitmaps): not maintained, but counted by check while valid. */
  private bitmapDir: { count: number; size: number; offset: number } | null = null;

  private constructor(private readonly file: HostFile, readOnly: boolean) {
    this.path = file.path;
    this.readOnly = readOnly;
  }

  private fail(fault: string): never {
    throw new DiskError(this.path, fault);
  }

  // ---------------------------------------------------------------- open

  static open(file: HostFile, ctx: OpenContext): Qcow2Image {
    const img = new Qcow2Image(file, ctx.readOnly);
    img.parseHeader();
    if (img.backingRef && !ctx.noBacking) img.backing = ctx.openBacking(file.path, img.backingRef, img.backingFormat);
    if (!img.readOnly) img.prepareForWriting();
    return img;
  }

  private parseHeader(): void {
    const f = this.file;
    if (f.size < 72) this.fail('qcow2 header is truncated');
    let h = f.readBytes(0, 72);
    let v = dv(h);
    if (v.getUint32(0) !== MAGIC) this.fail('not a qcow2 image (bad magic)');
    this.version = v.getUint32(4);
    if (this.version === 1) this.fail('qcow version 1 images are not supported (convert them with qemu-img)');
    if (this.version !== 2 && this.version !== 3) this.fail(`unsupported qcow2 version ${this.version}`);
    const backingOffset = getU64BE(h, 8);
    const backingSize = v.getUint32(16);
    this.clusterBits = v.getUint32(20);
    if (this.clusterBits < 9 || this.clusterBits > 21) this.fail(`invalid cluster size 2^${this.clusterBits}`);
    this.cs = 2 ** this.clusterBits;
    this.l2Entries = this.cs / 8;
    h = f.readBytes(0, Math.min(f.size, this.cs));
    v = dv(h);
    this.size = getU64BE(h, 24);
    if (!Number.isSafeInteger(this.size) || this.size > 2 ** 52) this.fail(`virtual size ${this.size} is too large`);
    if (v.getUint32(32) !== 0) this.fail('encrypted qcow2 images are not supported');
    this.l1Size = v.getUint32(36);
    this.l1Offset = getU64BE(h, 40);
    this.refTableOffset = getU64BE(h, 48);
    const refTableClusters = v.getUint32(56);
    const nbSnapshots = v.getUint32(60);
    this.snapshotsOffset = getU64BE(h, 64);
    if (this.version >= 3) {
      if (h.length < 104) this.fail('qcow2 v3 header is truncated');
      this.incompat = getU64BE(h, 72);
      this.compat = getU64BE(h, 80);
      this.autoclear = getU64BE(h, 88);
      this.refOrder = v.getUint32(96);
      this.headerLength = v.getUint32(100);
      if (this.headerLength < 104 || this.headerLength > Math.min(this.cs, h.length) || this.headerLength % 8 !== 0) {
        this.fail(`invalid header length ${this.headerLength}`);
      }
      if (this.refOrder > 6) this.fail(`invalid refcount order ${this.refOrder}`);
      if (this.headerLength > 104 && h[104] !== 0) this.fail(`unsupported compression type ${h[104]} (only zlib)`);
    } else {
      this.refOrder = 4;
      this.headerLength = 72;
    }
    this.refBits = 1 << this.refOrder;
    this.refsPerBlock = (this.cs * 8) / this.refBits;
    this.maxRefcount = this.refBits >= 32 ? 0xffffffff : 2 ** this.refBits - 1;

    this.parseExtensions(h);
    if (this.incompat & INCOMPAT_EXTENDED_L2) {
      if (this.clusterBits < 14) this.fail('extended L2 entries need clusters of at least 16 KiB');
      if (!this.readOnly) this.fail('images with extended L2 entries (subclusters) are read-only here; open read-only or convert');
      this.extL2 = true;
      this.entryBytes = 16;
      this.l2Entries = this.cs / 16;
    }
    const unknown = this.incompat & ~KNOWN_INCOMPAT;
    if (unknown) {
      const names: string[] = [];
      for (let bit = 0; bit < 53; bit++) {
        if (Math.floor(unknown / 2 ** bit) % 2) names.push(this.featureNames.get(`0:${bit}`) ?? `bit ${bit}`);
      }
      this.fail(`unsupported incompatible qcow2 feature(s): ${names.join(', ')}`);
    }
    if (this.incompat & INCOMPAT_CORRUPT && !this.readOnly) {
      this.fail('image is marked corrupt; it can only be opened read-only (repair with `boxwood image check -r`... after copying it)');
    }

    if (backingOffset !== 0) {
      if (backingSize === 0 || backingSize > 1023 || backingOffset + backingSize > Math.min(this.cs, h.length)) {
        this.fail('backing file name is outside the header cluster or too long');
      }
      this.backingRef = new TextDecoder().decode(h.subarray(backingOffset, backingOffset + backingSize));
    }

    const fileLimit = Math.max(f.size, this.cs);
    // L1 table
    if (this.l1Size * 8 > MAX_L1_BYTES) this.fail(`L1 table of ${this.l1Size} entries is too large`);
    const minL1 = Math.ceil(this.size / (this.cs * this.l2Entries));
    if (this.l1Size < minL1) this.fail(`L1 table of ${this.l1Size} entries is too small for the virtual size ${this.size}`);
    if (this.l1Size > 0) {
      if (this.l1Offset % this.cs !== 0 || this.l1Offset === 0) this.fail(`L1 table offset ${this.l1Offset} is not cluster aligned`);
      if (this.l1Offset + this.l1Size * 8 > fileLimit) this.fail('L1 table lies beyond the end of the file');
      const l1 = f.readBytes(this.l1Offset, this.l1Size * 8);
      const lv = dv(l1);
      this.l1Hi = new Uint32Array(this.l1Size);
      this.l1Lo = new Uint32Array(this.l1Size);
      for (let i = 0; i < this.l1Size; i++) {
        this.l1Hi[i] = lv.getUint32(i * 8);
        this.l1Lo[i] = lv.getUint32(i * 8 + 4);
      }
    }
    // Refcount table and blocks
    if (refTableClusters === 0 || refTableClusters * this.cs > MAX_REFTABLE_BYTES) this.fail(`refcount table of ${refTableClusters} clusters is invalid`);
    if (this.refTableOffset % this.cs !== 0 || this.refTableOffset === 0) this.fail('refcount table offset is not cluster aligned');
    if (this.refTableOffset + refTableClusters * this.cs > fileLimit) this.fail('refcount table lies beyond the end of the file');
    this.refTableEntries = (refTableClusters * this.cs) / 8;
    const rt = f.readBytes(this.refTableOffset, refTableClusters * this.cs);
    const fileClusters = Math.ceil(f.size / this.cs);
    this.rc = new Uint32Array(Math.max(16, fileClusters + 16));
    this.refTable = new Array(this.refTableEntries);
    for (let b = 0; b < this.refTableEntries; b++) {
      const off = getU64BE(rt, b * 8);
      this.refTable[b] = off;
      if (off === 0) continue;
      if (off % this.cs !== 0 || off >= f.size) this.fail(`refcount block ${b} at offset ${off} is invalid or beyond the end of the file`);
      this.refBlockSet.add(off);
      const first = b * this.refsPerBlock;
      if (first >= fileClusters) continue; // refcounts of clusters past EOF describe nothing
      const blk = f.readBytes(off, this.cs);
      this.decodeRefBlock(blk, first, Math.min(this.refsPerBlock, fileClusters - first));
    }
    let last = 0;
    for (let c = 0; c < this.rc.length; c++) if (this.rc[c]) last = c + 1;
    this.nextCluster = Math.max(fileClusters, last);
    for (let c = 1; c < this.nextCluster; c++) if (!this.rc[c]) this.freeCount++;

    // Snapshot table
    if (nbSnapshots > MAX_SNAPSHOTS) this.fail(`${nbSnapshots} snapshots is more than the ${MAX_SNAPSHOTS} allowed`);
    if (nbSnapshots > 0) this.parseSnapshots(nbSnapshots, fileLimit);
    this.l2CacheMax = Math.max(4, Math.floor(L2_CACHE_BYTES / this.cs));
  }

  private parseExtensions(h: Uint8Array): void {
    let p = this.headerLength;
    const v = dv(h);
    const end = Math.min(this.cs, h.length);
    while (p + 8 <= end) {
      const type = v.getUint32(p);
      const len = v.getUint32(p + 4);
      if (type === 0) return;
      if (p + 8 + len > end) this.fail(`header extension 0x${type.toString(16)} runs past the header cluster`);
      const data = h.subarray(p + 8, p + 8 + len);
      if (type === EXT_BACKING_FORMAT) {
        const fmt = new TextDecoder().decode(data).replace(/\0+$/, '');
        const known = ['raw', 'qcow2', 'vdi', 'vmdk', 'vpc', 'vhd', 'vhdx', 'iso', 'file', 'host_device'];
        if (!known.includes(fmt)) this.fail(`backing file format '${fmt}' is not supported`);
        this.backingFormat = fmt === 'vpc' ? 'vhd' : fmt === 'file' || fmt === 'host_device' ? 'raw' : (fmt as ImageFormat);
      } else if (type === EXT_FEATURE_TABLE) {
        for (let q = 0; q + 48 <= len; q += 48) {
          const name = ascii(data, q + 2, 46).replace(/\0.*$/s, '');
          this.featureNames.set(`${data[q]}:${data[q + 1]}`, name);
        }
      } else if (type === EXT_DATA_FILE) {
        this.fail('qcow2 images with an external data file are not supported');
      } else if (type === EXT_BITMAPS && len >= 24) {
        this.bitmapDir = { count: dv(data).getUint32(0), size: getU64BE(data, 8), offset: getU64BE(data, 16) };
      }
      p += 8 + Math.ceil(len / 8) * 8;
    }
  }

  private parseSnapshots(n: number, fileLimit: number): void {
    if (this.snapshotsOffset % this.cs !== 0 || this.snapshotsOffset === 0) this.fail('snapshot table offset is not cluster aligned');
    let p = this.snapshotsOffset;
    for (let i = 0; i < n; i++) {
      if (p + 40 > fileLimit || p - this.snapshotsOffset > MAX_SNAPSHOT_TABLE) this.fail('snapshot table runs past the end of the file');
      const e = this.file.readBytes(p, 40);
      const v = dv(e);
      const idLen = v.getUint16(12);
      const nameLen = v.getUint16(14);
      const extraLen = v.getUint32(36);
      if (extraLen > 1024) this.fail(`snapshot ${i} has ${extraLen} bytes of extra data, more than allowed`);
      const tail = this.file.readBytes(p + 40, extraLen + idLen + nameLen);
      const tv = dv(tail);
      const l1Size = v.getUint32(8);
      const l1Offset = getU64BE(e, 0);
      if (l1Size * 8 > MAX_L1_BYTES || (l1Size > 0 && (l1Offset % this.cs !== 0 || l1Offset + l1Size * 8 > fileLimit))) {
        this.fail(`snapshot ${i} has an invalid L1 table`);
      }
      const snap: Snapshot = {
        l1Offset,
        l1Size,
        dateSec: v.getUint32(16),
        dateNsec: v.getUint32(20),
        vmClockNs: getU64BE(e, 24),
        vmStateSize: v.getUint32(32),
        diskSize: this.size,
        id: new TextDecoder().decode(tail.subarray(extraLen, extraLen + idLen)),
        name: new TextDecoder().decode(tail.subarray(extraLen + idLen, extraLen + idLen + nameLen)),
        extraTail: tail.slice(Math.min(extraLen, 16), extraLen),
      };
      if (extraLen >= 8) snap.vmStateSize = Math.max(snap.vmStateSize, getU64BE(tail, 0));
      if (extraLen >= 16) snap.diskSize = getU64BE(tail, 8);
      void tv;
      this.snapshots.push(snap);
      p += 40 + extraLen + idLen + nameLen;
      p = Math.ceil(p / 8) * 8;
    }
    this.snapshotTableBytes = p - this.snapshotsOffset;
  }

  private decodeRefBlock(blk: Uint8Array, first: number, count: number): void {
    const v = dv(blk);
    const bits = this.refBits;
    for (let i = 0; i < count; i++) {
      let r: number;
      if (bits < 8) r = (blk[(i * bits) >> 3] >> ((i * bits) & 7)) & ((1 << bits) - 1);
      else if (bits === 8) r = blk[i];
      else if (bits === 16) r = v.getUint16(i * 2);
      else if (bits === 32) r = v.getUint32(i * 4);
      else r = v.getUint32(i * 8) ? 0xffffffff : v.getUint32(i * 8 + 4);
      if (r) this.rc[first + i] = r;
    }
  }

  private prepareForWriting(): void {
    if (this.autoclear) {
      // Autoclear features (persistent bitmaps, raw external data) are not maintained here; the
      // specification says a writer that does not know them clears the bits.
      this.autoclear = 0;
      this.writeHeaderU64(88, 0);
    }
    if (this.incompat & INCOMPAT_DIRTY) {
      // Lazy refcounts: the last writer died with refcounts not yet written. Rebuild them.
      this.check(true);
      this.incompat &= ~INCOMPAT_DIRTY;
      this.file.sync();
      this.writeHeaderU64(72, this.incompat);
      this.file.sync();
    }
  }

  // ---------------------------------------------------------------- create

  static create(path: string, size: number, opts: CreateOptions): void {
    const cs = opts.clusterSize ?? 65536;
    if (!Number.isInteger(Math.log2(cs)) || cs < 512 || cs > 2 * 1024 * 1024) throw new DiskError(path, `invalid qcow2 cluster size ${cs}`);
    const version = opts.version ?? 3;
    const refBits = opts.refcountBits ?? 16;
    if (![1, 2, 4, 8, 16, 32, 64].includes(refBits)) throw new DiskError(path, `invalid refcount width ${refBits}`);
    if (version === 2 && refBits !== 16) throw new DiskError(path, 'qcow2 version 2 needs 16-bit refcounts');
    if (version === 2 && opts.lazyRefcounts) throw new DiskError(path, 'lazy refcounts need qcow2 version 3');
    const l2Entries = cs / 8;
    const l1Size = Math.max(1, Math.ceil(size / (cs * l2Entries)));
    if (l1Size * 8 > MAX_L1_BYTES) throw new DiskError(path, `virtual size ${size} is too large for ${cs}-byte clusters`);
    const l1Clusters = Math.ceil((l1Size * 8) / cs);
    const refsPerBlock = (cs * 8) / refBits;
    // Fixpoint: the refcount blocks and table must also count themselves.
    let blocks = 1;
    let tableClusters = 1;
    for (;;) {
      const total = 1 + tableClusters + blocks + l1Clusters;
      const nb = Math.ceil(total / refsPerBlock);
      const nt = Math.ceil((nb * 8) / cs);
      if (nb === blocks && nt === tableClusters) break;
      blocks = nb;
      tableClusters = nt;
    }
    const tableOff = cs;
    const blocksOff = tableOff + tableClusters * cs;
    const l1Off = blocksOff + blocks * cs;
    const total = 1 + tableClusters + blocks + l1Clusters;

    const header = new Uint8Array(cs);
    const hv = dv(header);
    hv.setUint32(0, MAGIC);
    hv.setUint32(4, version);
    hv.setUint32(20, Math.log2(cs));
    setU64BE(header, 24, size);
    hv.setUint32(36, l1Size);
    setU64BE(header, 40, l1Off);
    setU64BE(header, 48, tableOff);
    hv.setUint32(56, tableClusters);
    let p = 72;
    if (version === 3) {
      setU64BE(header, 80, opts.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0);
      hv.setUint32(96, Math.log2(refBits));
      hv.setUint32(100, 112);
      p = 112;
    }
    const enc = new TextEncoder();
    if (opts.backing) {
      const fmt = opts.backingFormat === 'vhd' ? 'vpc' : opts.backingFormat;
      if (fmt) {
        const b = enc.encode(fmt);
        hv.setUint32(p, EXT_BACKING_FORMAT);
        hv.setUint32(p + 4, b.length);
        header.set(b, p + 8);
        p += 8 + Math.ceil(b.length / 8) * 8;
      }
    }
    if (version === 3) {
      const names: [number, number, string][] = [
        [0, 0, 'dirty bit'],
        [0, 1, 'corrupt bit'],
        [0, 2, 'external data file'],
        [0, 3, 'compression type'],
        [0, 4, 'extended L2 entries'],
        [1, 0, 'lazy refcounts'],
        [2, 0, 'bitmaps'],
        [2, 1, 'raw external data'],
      ];
      hv.setUint32(p, EXT_FEATURE_TABLE);
      hv.setUint32(p + 4, names.length * 48);
      names.forEach(([t, bit, n], i) => {
        header[p + 8 + i * 48] = t;
        header[p + 9 + i * 48] = bit;
        header.set(enc.encode(n), p + 10 + i * 48);
      });
      p += 8 + names.length * 48;
    }
    p += 8; // end-of-extensions marker
    if (opts.backing) {
      const b = enc.encode(opts.backing);
      if (b.length > 1023 || p + b.length > cs) throw new DiskError(path, 'backing file name is too long');
      setU64BE(header, 8, p);
      hv.setUint32(16, b.length);
      header.set(b, p);
    }
    const table = new Uint8Array(tableClusters * cs);
    for (let b = 0; b < blocks; b++) setU64BE(table, b * 8, blocksOff + b * cs);
    const blk = new Uint8Array(blocks * cs);
    for (let c = 0; c < total; c++) encodeRef(blk, c, 1, refBits);

    const f = new HostFile(path, true, 'create');
    try {
      f.write(0, header);
      f.write(tableOff, table);
      f.write(blocksOff, blk);
      f.write(l1Off, new Uint8Array(l1Clusters * cs));
      f.sync();
    } finally {
      f.close();
    }
  }

  // ---------------------------------------------------------------- entries

  private entryAt(table: Uint8Array, i: number): Entry {
    const v = dv(table);
    const hi = v.getUint32(i * this.entryBytes);
    const lo = v.getUint32(i * this.entryBytes + 4);
    if (!this.extL2) return this.decodeEntry(hi, lo);
    const e = this.decodeEntry(hi, lo & ~1); // bit 0 is reserved with extended entries
    if (e.kind === 'normal' || e.kind === 'unallocated') {
      e.sub = { zero: v.getUint32(i * 16 + 8), alloc: v.getUint32(i * 16 + 12) };
      if (e.kind === 'unallocated' && e.sub.alloc) this.fail('extended L2 entry marks subclusters allocated without a cluster');
    }
    return e;
  }

  private decodeEntry(hi: number, lo: number): Entry {
    if (hi & COMPRESSED) {
      const shift = 62 - (this.clusterBits - 8);
      const raw = (BigInt(hi) << 32n) | BigInt(lo);
      const offset = Number(raw & ((1n << BigInt(shift)) - 1n));
      const nSectors = Number((raw >> BigInt(shift)) & ((1n << BigInt(this.clusterBits - 8)) - 1n)) + 1;
      return { kind: 'compressed', offset, length: nSectors * 512 - (offset & 511) };
    }
    const offset = (hi & 0x00ffffff) * TWO32 + ((lo & 0xfffffe00) >>> 0);
    const copied = (hi & COPIED) !== 0;
    if (this.version >= 3 && lo & 1) return { kind: 'zero', offset, copied };
    if (offset === 0) return { kind: 'unallocated' };
    if (offset % this.cs !== 0) this.fail(`L2 entry points to unaligned offset ${offset}`);
    return { kind: 'normal', offset, copied };
  }

  private l1Entry(i: number): { offset: number; copied: boolean } {
    const hi = this.l1Hi[i];
    const off = (hi & 0x00ffffff) * TWO32 + ((this.l1Lo[i] & 0xfffffe00) >>> 0);
    return { offset: off, copied: (hi & COPIED) !== 0 };
  }

  private loadL2(off: number): Uint8Array {
    let t = this.l2Cache.get(off);
    if (t) return t;
    if (off % this.cs !== 0) this.fail(`L2 table offset ${off} is not cluster aligned`);
    if (off + this.cs > this.file.size) this.fail(`L2 table at ${off} lies beyond the end of the file`);
    t = this.file.readBytes(off, this.cs);
    this.cacheL2(off, t);
    return t;
  }

  private cacheL2(off: number, t: Uint8Array): void {
    if (this.l2Cache.size >= this.l2CacheMax) this.l2Cache.delete(this.l2Cache.keys().next().value as number);
    this.l2Cache.set(off, t);
  }

  /** Entry for virtual cluster vc in the active tables. */
  private lookup(vc: number): Entry {
    const l1i = Math.floor(vc / this.l2Entries);
    if (l1i >= this.l1Size) return { kind: 'unallocated' };
    const { offset } = this.l1Entry(l1i);
    if (offset === 0) return { kind: 'unallocated' };
    return this.entryAt(this.loadL2(offset), vc % this.l2Entries);
  }

  // ---------------------------------------------------------------- read

  read(offset: number, buf: Uint8Array): void {
    checkRange(this, offset, buf.length);
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const vc = Math.floor(pos / this.cs);
      const inOff = pos - vc * this.cs;
      let n = Math.min(buf.length - done, this.cs - inOff);
      const e = this.lookup(vc);
      if ((e.kind === 'normal' || e.kind === 'unallocated') && e.sub) {
        // Subclusters: a run of the same status inside this cluster at a time.
        const sc = this.cs / 32;
        const st = (k: number): number => ((e.sub!.zero >>> k) & 1 ? 0 : (e.sub!.alloc >>> k) & 1 ? 1 : 2);
        const si = Math.floor(inOff / sc);
        const s0 = st(si);
        let end = (si + 1) * sc;
        while (end < this.cs && st(end / sc) === s0) end += sc;
        n = Math.min(n, end - inOff);
        if (s0 === 0) buf.fill(0, done, done + n);
        else if (s0 === 1 && e.kind === 'normal') this.file.read(e.offset + inOff, buf, done, n);
        else readBacking(this.backing, pos, buf.subarray(done, done + n));
        done += n;
        continue;
      }
      const out = buf.subarray(done, done + n);
      switch (e.kind) {
        case 'unallocated':
          // Merge a run of unallocated clusters into one backing read.
          while (done + n < buf.length && this.lookup(Math.floor((pos + n) / this.cs)).kind === 'unallocated') {
            n += Math.min(buf.length - done - n, this.cs);
          }
          readBacking(this.backing, pos, buf.subarray(done, done + n));
          break;
        case 'zero':
          out.fill(0);
          break;
        case 'normal': {
          // Merge host-contiguous clusters into one read: sequential guest reads are common.
          while (done + n < buf.length) {
            const nx = this.lookup(Math.floor((pos + n) / this.cs));
            if (nx.kind !== 'normal' || nx.offset !== e.offset + inOff + n) break;
            n += Math.min(buf.length - done - n, this.cs);
          }
          this.file.read(e.offset + inOff, buf, done, n);
          break;
        }
        case 'compressed':
          out.set(this.decompress(e).subarray(inOff, inOff + n));
          break;
      }
      done += n;
    }
  }

  private decompress(e: { offset: number; length: number }): Uint8Array {
    if (this.lastCompressed?.offset === e.offset) return this.lastCompressed.data;
    if (e.offset + e.length > this.file.size + 512) this.fail(`compressed cluster at ${e.offset} lies beyond the end of the file`);
    const raw = this.file.readBytes(e.offset, e.length);
    let out: Uint8Array;
    try {
      out = zlib.inflateRawSync(raw, { maxOutputLength: this.cs, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (err) {
      this.fail(`compressed cluster at ${e.offset} does not decompress (${(err as Error).message})`);
    }
    if (out.length < this.cs) {
      const full = new Uint8Array(this.cs);
      full.set(out);
      if (out.length !== this.cs) this.fail(`compressed cluster at ${e.offset} decompresses to ${out.length} bytes, not ${this.cs}`);
      out = full;
    }
    this.lastCompressed = { offset: e.offset, data: out };
    return out;
  }

  /** Full content of virtual cluster vc as this image (with its backing) shows it. */
  private clusterContent(vc: number, e: Entry): Uint8Array {
    const buf = new Uint8Array(this.cs);
    switch (e.kind) {
      case 'unallocated':
        readBacking(this.backing, vc * this.cs, buf);
        break;
      case 'normal':
        this.file.read(e.offset, buf);
        break;
      case 'compressed':
        buf.set(this.decompress(e));
        break;
      case 'zero':
        break;
    }
    return buf;
  }

  // ---------------------------------------------------------------- refcounts

  private ensureRc(c: number): void {
    if (c < this.rc.length) return;
    let n = this.rc.length * 2;
    while (n <= c) n *= 2;
    const r = new Uint32Array(n);
    r.set(this.rc);
    this.rc = r;
  }

  private encodeRange(b: number, firstIdx: number, count: number): { pos: number; bytes: Uint8Array } {
    // Byte range within the block holding entries [firstIdx, firstIdx+count).
    const bits = this.refBits;
    const startByte = (firstIdx * bits) >> 3;
    const endByte = ((firstIdx + count) * bits + 7) >> 3;
    const bytes = new Uint8Array(endByte - startByte);
    const base = b * this.refsPerBlock;
    const i0 = Math.floor((startByte * 8) / bits);
    const i1 = Math.floor((endByte * 8) / bits);
    for (let i = i0; i < i1; i++) {
      const c = base + i;
      const r = c < this.rc.length ? this.rc[c] : 0;
      encodeRef(bytes, i - i0, r, bits);
    }
    return { pos: this.refTable[b] + startByte, bytes };
  }

  /** Sets refcounts of clusters [first, first+count) to `value` in memory and on disk. */
  private setRefcounts(first: number, count: number, value: number): void {
    if (value > this.maxRefcount) this.fail(`refcount overflow (a ${this.refBits}-bit refcount cannot hold ${value})`);
    let c = first;
    const end = first + count;
    while (c < end) {
      const b = Math.floor(c / this.refsPerBlock);
      const blockEnd = Math.min(end, (b + 1) * this.refsPerBlock);
      this.ensureRc(blockEnd);
      this.ensureRefBlock(b);
      for (let k = c; k < blockEnd; k++) {
        const old = this.rc[k];
        if (old === 0 && value !== 0) this.freeCount--;
        else if (old !== 0 && value === 0 && k > 0) {
          this.freeCount++;
          if (k < this.freeSearch) this.freeSearch = k;
        }
      }
      this.rc.fill(value, c, blockEnd);
      const idx = c - b * this.refsPerBlock;
      const { pos, bytes } = this.encodeRange(b, idx, blockEnd - c);
      this.file.write(pos, bytes);
      c = blockEnd;
    }
  }

  private setRefcount(c: number, value: number): void {
    this.setRefcounts(c, 1, value);
  }

  private addRef(c: number, delta: number): void {
    if (c >= this.nextCluster) this.fail(`cluster ${c} is referenced but lies beyond the end of the image`);
    this.ensureRc(c);
    const v = this.rc[c] + delta;
    if (v < 0) this.fail(`refcount of cluster ${c} would drop below zero`);
    this.setRefcount(c, v);
  }

  private ensureRefBlock(b: number): void {
    if (b >= this.refTableEntries) this.growRefTable(b);
    if (this.refTable[b] !== 0) return;
    const nc = this.appendClusters(1);
    const off = nc * this.cs;
    this.file.write(off, new Uint8Array(this.cs));
    this.refTable[b] = off;
    this.refBlockSet.add(off);
    this.setRefcount(nc, 1);
    if (!this.growingTable) this.writeU64(this.refTableOffset + b * 8, off);
  }

  private growRefTable(needed: number): void {
    if (this.growingTable) {
      // Already growing: the new table was sized with room for the blocks it needs itself.
      if (needed >= this.refTable.length) this.fail('refcount table growth did not converge');
      return;
    }
    this.growingTable = true;
    const oldOffset = this.refTableOffset;
    const oldClusters = (this.refTableEntries * 8) / this.cs;
    let entries = Math.max(needed + 1, Math.ceil(this.refTableEntries * 1.5));
    const clusters = Math.ceil((entries * 8 + 64 * 8) / this.cs);
    entries = (clusters * this.cs) / 8;
    if (clusters * this.cs > MAX_REFTABLE_BYTES * 4) this.fail('refcount table would grow beyond its limit');
    const start = this.appendClusters(clusters);
    while (this.refTable.length < entries) this.refTable.push(0);
    this.refTableEntries = entries;
    this.file.write(start * this.cs, new Uint8Array(clusters * this.cs));
    this.setRefcounts(start, clusters, 1);
    const t = new Uint8Array(clusters * this.cs);
    for (let b = 0; b < entries; b++) if (this.refTable[b]) setU64BE(t, b * 8, this.refTable[b]);
    this.file.write(start * this.cs, t);
    const hdr = new Uint8Array(12);
    setU64BE(hdr, 0, start * this.cs);
    dv(hdr).setUint32(8, clusters);
    this.file.write(48, hdr);
    this.refTableOffset = start * this.cs;
    this.growingTable = false;
    for (let i = 0; i < oldClusters; i++) this.addRef(oldOffset / this.cs + i, -1);
  }

  /** Reserves n clusters at the end (refcount still 0: the caller sets it). */
  private appendClusters(n: number): number {
    const first = this.nextCluster;
    this.nextCluster += n;
    this.freeCount += n;
    return first;
  }

  /**
   * n contiguous clusters with refcount 1, reusing freed ones when a run is available (so the
   * file does not grow forever under snapshots and copy-on-write), else at the end of the file.
   * Returns the byte offset.
   */
  private allocClusters(n: number, append = false): number {
    let first = -1;
    if (!append && this.freeCount >= n) {
      let run = 0;
      for (let c = Math.max(1, this.freeSearch); c < this.nextCluster; c++) {
        if (this.rc[c] !== 0) {
          run = 0;
          continue;
        }
        if (run === 0 && n === 1) this.freeSearch = c;
        if (++run === n) {
          first = c - n + 1;
          break;
        }
      }
      if (first < 0 && n === 1) this.freeSearch = this.nextCluster;
    }
    if (first < 0) first = this.appendClusters(n);
    this.setRefcounts(first, n, 1);
    // setRefcounts may have placed refcount blocks after our range; that is fine, ours stay ours.
    return first * this.cs;
  }

  private coveredClusters(offset: number, length: number): number[] {
    const out: number[] = [];
    for (let c = Math.floor(offset / this.cs); c <= Math.floor((offset + length - 1) / this.cs); c++) out.push(c);
    return out;
  }

  private entryClusters(e: Entry): number[] {
    if (e.kind === 'normal' || (e.kind === 'zero' && e.offset)) return [e.offset / this.cs];
    if (e.kind === 'compressed') return this.coveredClusters(e.offset, e.length);
    return [];
  }

  // ---------------------------------------------------------------- write

  private writeU64(pos: number, v: number): void {
    const b = new Uint8Array(8);
    setU64BE(b, 0, v);
    this.file.write(pos, b);
  }

  private writeHeaderU64(pos: number, v: number): void {
    this.writeU64(pos, v);
  }

  private setL1(i: number, offset: number, copied: boolean): void {
    this.l1Hi[i] = Math.floor(offset / TWO32) | (copied ? COPIED : 0);
    this.l1Lo[i] = offset >>> 0;
    const b = new Uint8Array(8);
    dv(b).setUint32(0, this.l1Hi[i]);
    dv(b).setUint32(4, this.l1Lo[i]);
    this.file.write(this.l1Offset + i * 8, b);
  }

  /** As qemu does on a detected inconsistency: set the corrupt bit so nobody writes on blindly. */
  private markCorrupt(): void {
    if (this.version < 3 || this.readOnly) return;
    this.incompat |= INCOMPAT_CORRUPT;
    this.writeHeaderU64(72, this.incompat);
    this.file.sync();
  }

  private checkNotMetadata(offset: number): void {
    if (offset >= this.file.size) this.fail(`a table points to offset ${offset}, beyond the end of the file (image is corrupt)`);
    if (
      offset < this.cs ||
      this.refBlockSet.has(offset) ||
      (offset >= this.l1Offset && offset < this.l1Offset + this.l1Size * 8) ||
      (offset >= this.refTableOffset && offset < this.refTableOffset + this.refTableEntries * 8)
    ) {
      this.markCorrupt();
      this.fail(`metadata overlap: a data cluster at ${offset} collides with image metadata (image marked corrupt)`);
    }
  }

  /** Active L2 table for l1 index i, made private to the active L1 (allocated or copied). */
  private writableL2(i: number): { offset: number; table: Uint8Array } {
    const { offset, copied } = this.l1Entry(i);
    if (offset !== 0 && copied) {
      this.checkNotMetadata(offset);
      return { offset, table: this.loadL2(offset) };
    }
    const table = offset === 0 ? new Uint8Array(this.cs) : this.loadL2(offset).slice();
    if (offset !== 0) {
      // The copy is private to the active L1; the data it maps stays shared, so no COPIED flags.
      const v = dv(table);
      for (let k = 0; k < this.l2Entries; k++) v.setUint32(k * 8, v.getUint32(k * 8) & ~COPIED);
      for (let k = 0; k < this.l2Entries; k++) {
        const e = this.entryAt(table, k);
        if (e.kind === 'normal' && this.rc[e.offset / this.cs] === 1) v.setUint32(k * 8, v.getUint32(k * 8) | COPIED);
      }
    }
    const newOff = this.allocClusters(1);
    this.file.write(newOff, table);
    this.cacheL2(newOff, table);
    this.setL1(i, newOff, true);
    if (offset !== 0) this.addRef(offset / this.cs, -1);
    return { offset: newOff, table };
  }

  private setL2(l2: { offset: number; table: Uint8Array }, k: number, hi: number, lo: number): void {
    const v = dv(l2.table);
    v.setUint32(k * 8, hi);
    v.setUint32(k * 8 + 4, lo);
    this.file.write(l2.offset + k * 8, l2.table, k * 8, 8);
  }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) this.fail('image is open read-only');
    checkRange(this, offset, data.length);
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const vc = Math.floor(pos / this.cs);
      const inOff = pos - vc * this.cs;
      const l1i = Math.floor(vc / this.l2Entries);
      const k = vc % this.l2Entries;
      // A whole cluster of zeros where the image already reads zeros needs no space at all.
      const zeroCluster = inOff === 0 && data.length - done >= this.cs && isZero(data, done, this.cs);
      if (zeroCluster) {
        const cur = this.lookup(vc);
        if (cur.kind === 'zero' || (cur.kind === 'unallocated' && !this.backing)) {
          done += this.cs;
          continue;
        }
      }
      const l2 = this.writableL2(l1i);
      const e = this.entryAt(l2.table, k);
      if (zeroCluster && this.version >= 3 && !(e.kind === 'normal' && e.copied)) {
        // v3 zero flag instead of a cluster of zeros; the old cluster is released afterwards.
        this.setL2(l2, k, 0, 1);
        for (const c of this.entryClusters(e)) this.addRef(c, -1);
        done += this.cs;
        continue;
      }
      if (e.kind === 'normal' && e.copied) {
        // In place; merge with following clusters that are also private and host-contiguous.
        let n = Math.min(data.length - done, this.cs - inOff);
        let kk = k + 1;
        while (done + n < data.length && kk < this.l2Entries) {
          const nx = this.entryAt(l2.table, kk);
          if (nx.kind !== 'normal' || !nx.copied || nx.offset !== e.offset + (kk - k) * this.cs) break;
          n += Math.min(data.length - done - n, this.cs);
          kk++;
        }
        this.checkNotMetadata(e.offset);
        this.file.write(e.offset + inOff, data, done, n);
        done += n;
        continue;
      }
      // Needs new clusters. Batch a run of whole, unallocated clusters in this L2 table.
      if (inOff === 0 && e.kind === 'unallocated' && data.length - done >= this.cs) {
        let count = 1;
        while (count < this.l2Entries - k && data.length - done >= (count + 1) * this.cs && this.entryAt(l2.table, k + count).kind === 'unallocated') count++;
        const host = this.allocClusters(count);
        this.file.write(host, data, done, count * this.cs);
        const v = dv(l2.table);
        for (let j = 0; j < count; j++) {
          const o = host + j * this.cs;
          v.setUint32((k + j) * 8, Math.floor(o / TWO32) | COPIED);
          v.setUint32((k + j) * 8 + 4, o >>> 0);
        }
        this.file.write(l2.offset + k * 8, l2.table, k * 8, count * 8);
        done += count * this.cs;
        continue;
      }
      const n = Math.min(data.length - done, this.cs - inOff);
      let content: Uint8Array;
      if (n === this.cs) content = data.subarray(done, done + n);
      else {
        content = this.clusterContent(vc, e);
        content.set(data.subarray(done, done + n), inOff);
      }
      const host = this.allocClusters(1);
      this.file.write(host, content);
      this.setL2(l2, k, Math.floor(host / TWO32) | COPIED, host >>> 0);
      for (const c of this.entryClusters(e)) this.addRef(c, -1);
      done += n;
    }
  }

  /** Writes one whole cluster compressed (convert -c); the cluster must not be allocated yet. */
  writeCompressed(vc: number, data: Uint8Array): void {
    if (data.length !== this.cs) this.fail('compressed writes must be whole clusters');
    if (isZero(data)) return;
    const l1i = Math.floor(vc / this.l2Entries);
    const k = vc % this.l2Entries;
    const l2 = this.writableL2(l1i);
    const e = this.entryAt(l2.table, k);
    if (e.kind !== 'unallocated') {
      this.write(vc * this.cs, data);
      return;
    }
    const z = zlib.deflateRawSync(data, { windowBits: 12, level: 6 });
    if (z.length >= this.cs - 512) {
      this.write(vc * this.cs, data);
      return;
    }
    // Pack into the tail of the last compressed cluster when it is still the file's last cluster.
    let off = this.compressedCursor;
    const curCluster = Math.floor(off / this.cs);
    if (!off || curCluster !== this.nextCluster - 1 || off % this.cs === 0) {
      off = this.allocClusters(1, true);
    } else {
      const endCluster = Math.floor((off + z.length - 1) / this.cs);
      if (endCluster !== curCluster) this.allocClusters(1, true);
      this.addRef(curCluster, 1);
    }
    this.file.write(off, z);
    this.compressedCursor = off + z.length;
    const nSectors = Math.ceil(((off & 511) + z.length) / 512);
    const shift = 62 - (this.clusterBits - 8);
    const raw = (1n << 62n) | (BigInt(nSectors - 1) << BigInt(shift)) | BigInt(off);
    this.setL2(l2, k, Number(raw >> 32n), Number(raw & 0xffffffffn));
  }

  get clusterSize(): number {
    return this.cs;
  }

  flush(): void {
    this.file.sync();
  }

  close(): void {
    try {
      if (!this.readOnly) {
        // Free clusters at the tail go back to the host; a compressed tail is padded to a cluster.
        while (this.nextCluster > 1 && this.rc[this.nextCluster - 1] === 0) this.nextCluster--;
        const end = this.nextCluster * this.cs;
        if (this.file.size !== end) this.file.truncate(end);
        this.file.sync();
      }
    } finally {
      this.file.close();
      this.backing?.close();
    }
  }

  files(): string[] {
    return [this.path];
  }

  blockStatus(offset: number, length: number): { status: BlockStatus; length: number } {
    const vc = Math.floor(offset / this.cs);
    const first = this.lookup(vc);
    const kind = (e: Entry): BlockStatus => {
      if ((e.kind === 'normal' || e.kind === 'unallocated') && e.sub) {
        return e.sub.zero === 0xffffffff ? 'zero' : !e.sub.alloc && !e.sub.zero ? 'unallocated' : 'data';
      }
      return e.kind === 'unallocated' ? 'unallocated' : e.kind === 'zero' ? 'zero' : 'data';
    };
    const st = kind(first);
    let end = Math.min((vc + 1) * this.cs, offset + length, this.size);
    while (end < Math.min(offset + length, this.size)) {
      const c = Math.floor(end / this.cs);
      const l1i = Math.floor(c / this.l2Entries);
      if (l1i < this.l1Size && this.l1Entry(l1i).offset === 0 && st === 'unallocated' && c % this.l2Entries === 0) {
        end = Math.min((l1i + 1) * this.l2Entries * this.cs, offset + length, this.size);
        continue;
      }
      if (kind(this.lookup(c)) !== st) break;
      end = Math.min((c + 1) * this.cs, offset + length, this.size);
    }
    return { status: st, length: end - offset };
  }

  // ---------------------------------------------------------------- info / check

  info(): ImageInfo {
    return {
      path: this.path,
      format: 'qcow2',
      virtualSize: this.size,
      actualSize: this.file.allocatedBytes(),
      clusterSize: this.cs,
      backing: this.backingRef ? { path: this.backingRef, format: this.backingFormat ?? this.backing?.format ?? 'raw' } : undefined,
      snapshots: this.listSnapshots(),
      dirty: (this.incompat & INCOMPAT_DIRTY) !== 0,
      specific: {
        compat: this.version === 2 ? '0.10' : '1.1',
        extendedL2: this.extL2,
        lazyRefcounts: (this.compat & COMPAT_LAZY_REFCOUNTS) !== 0,
        refcountBits: this.refBits,
        corrupt: (this.incompat & INCOMPAT_CORRUPT) !== 0,
      },
    };
  }

  /** Walks every table and returns refcounts as they should be, plus the faults found. */
  private computeRefcounts(errors: string[]): Uint32Array {
    const fileClusters = Math.ceil(this.file.size / this.cs);
    const want = new Uint32Array(Math.max(this.nextCluster, fileClusters, this.rc.length) + 1);
    const inc = (offset: number, len: number, what: string): void => {
      if (len <= 0) return;
      const last = Math.floor((offset + len - 1) / this.cs);
      if (last >= want.length) {
        errors.push(`${what} at offset ${offset} lies beyond the end of the file`);
        return;
      }
      for (let c = Math.floor(offset / this.cs); c <= last; c++) want[c]++;
    };
    inc(0, this.cs, 'header');
    if (this.bitmapDir && this.autoclear & AUTOCLEAR_BITMAPS) this.countBitmaps(inc, errors);
    inc(this.l1Offset, this.l1Size * 8, 'L1 table');
    inc(this.refTableOffset, this.refTableEntries * 8, 'refcount table');
    for (const off of this.refTable) if (off) inc(off, this.cs, 'refcount block');
    if (this.snapshots.length) inc(this.snapshotsOffset, this.snapshotTableBytes, 'snapshot table');
    const walkL1 = (hi: Uint32Array, lo: Uint32Array, active: boolean): void => {
      for (let i = 0; i < hi.length; i++) {
        const l2off = (hi[i] & 0x00ffffff) * TWO32 + ((lo[i] & 0xfffffe00) >>> 0);
        if (!l2off) continue;
        if (l2off % this.cs) {
          errors.push(`L2 table offset ${l2off} is not cluster aligned`);
          continue;
        }
        inc(l2off, this.cs, 'L2 table');
        if (l2off + this.cs > this.file.size) continue;
        const table = this.file.readBytes(l2off, this.cs);
        for (let k = 0; k < this.l2Entries; k++) {
          let e: Entry;
          try {
            e = this.entryAt(table, k);
          } catch (err) {
            errors.push((err as DiskError).fault ?? String(err));
            continue;
          }
          if (e.kind === 'normal' || (e.kind === 'zero' && e.offset)) {
            if (e.offset % this.cs) errors.push(`data cluster offset ${e.offset} is not cluster aligned`);
            else inc(e.offset, this.cs, 'data cluster');
          } else if (e.kind === 'compressed') inc(e.offset, e.length, 'compressed cluster');
        }
        void active;
      }
    };
    walkL1(this.l1Hi, this.l1Lo, true);
    for (const s of this.snapshots) {
      inc(s.l1Offset, s.l1Size * 8, 'snapshot L1 table');
      const { hi, lo } = this.readL1(s.l1Offset, s.l1Size);
      walkL1(hi, lo, false);
    }
    return want;
  }

  /** References held by valid persistent bitmaps: directory, bitmap tables, data clusters. */
  private countBitmaps(inc: (offset: number, len: number, what: string) => void, errors: string[]): void {
    const d = this.bitmapDir!;
    if (d.size > 64 * 1024 * 1024 || d.offset % this.cs || d.offset + d.size > this.file.size || d.count > 65535) {
      errors.push('bitmap directory is invalid');
      return;
    }
    inc(d.offset, d.size, 'bitmap directory');
    const dir = this.file.readBytes(d.offset, d.size);
    const v = dv(dir);
    let p = 0;
    for (let i = 0; i < d.count && p + 24 <= dir.length; i++) {
      const tableOffset = getU64BE(dir, p);
      const tableSize = v.getUint32(p + 8);
      const nameSize = v.getUint16(p + 18);
      const extra = v.getUint32(p + 20);
      if (tableSize * 8 > 64 * 1024 * 1024 || tableOffset + tableSize * 8 > this.file.size) {
        errors.push(`bitmap ${i} table is invalid`);
        return;
      }
      inc(tableOffset, tableSize * 8, 'bitmap table');
      const t = this.file.readBytes(tableOffset, tableSize * 8);
      for (let k = 0; k < tableSize; k++) {
        const off = (dv(t).getUint32(k * 8) & 0x00ffffff) * TWO32 + ((dv(t).getUint32(k * 8 + 4) & 0xfffffe00) >>> 0);
        if (off) inc(off, this.cs, 'bitmap data');
      }
      p += Math.ceil((24 + extra + nameSize) / 8) * 8;
    }
  }

  private readL1(offset: number, size: number): { hi: Uint32Array; lo: Uint32Array } {
    const b = this.file.readBytes(offset, size * 8);
    const v = dv(b);
    const hi = new Uint32Array(size);
    const lo = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      hi[i] = v.getUint32(i * 8);
      lo[i] = v.getUint32(i * 8 + 4);
    }
    return { hi, lo };
  }

  check(repair = false): CheckResult {
    const errors: string[] = [];
    const want = this.computeRefcounts(errors);
    let leaks = 0;
    let allocated = 0;
    let repaired = 0;
    const n = want.length;
    const fixes: [number, number][] = [];
    for (let c = 0; c < n; c++) {
      const have = c < this.rc.length ? this.rc[c] : 0;
      if (want[c]) allocated++;
      if (have === want[c]) continue;
      if (have < want[c]) errors.push(`cluster ${c} refcount=${have} reference=${want[c]}`);
      else leaks++;
      fixes.push([c, want[c]]);
    }
    // COPIED flags of the active tables must say "refcount is exactly one".
    const flagErrors: string[] = [];
    for (let i = 0; i < this.l1Size; i++) {
      const { offset, copied } = this.l1Entry(i);
      if (!offset || offset % this.cs || offset + this.cs > this.file.size) continue;
      if (copied !== (want[offset / this.cs] === 1)) flagErrors.push(`OFLAG_COPIED L2 cluster: l1_index=${i} refcount=${want[offset / this.cs]}`);
      const t = this.file.readBytes(offset, this.cs);
      for (let k = 0; k < this.l2Entries; k++) {
        let e: Entry;
        try {
          e = this.entryAt(t, k);
        } catch {
          continue;
        }
        if ((e.kind === 'normal' || (e.kind === 'zero' && e.offset)) && e.offset % this.cs === 0 && e.offset / this.cs < want.length) {
          if (e.copied !== (want[e.offset / this.cs] === 1)) flagErrors.push(`OFLAG_COPIED data cluster: l2_entry at ${offset + k * 8} refcount=${want[e.offset / this.cs]}`);
        }
      }
    }
    if (repair && !this.readOnly && (fixes.length || flagErrors.length)) {
      for (const [c, v] of fixes) {
        this.ensureRc(c);
        this.setRefcount(c, Math.min(v, this.maxRefcount));
        repaired++;
      }
      this.updateCopiedFlags();
      repaired += flagErrors.length;
      this.file.sync();
      return { errors: [], leaks: 0, allocated, total: Math.ceil(this.size / this.cs), repaired };
    }
    errors.push(...flagErrors);
    return { errors, leaks, allocated, total: Math.ceil(this.size / this.cs) };
  }

  /** Makes the COPIED flags of the active L1 and L2 tables match the refcounts. */
  private updateCopiedFlags(): void {
    for (let i = 0; i < this.l1Size; i++) {
      const { offset, copied } = this.l1Entry(i);
      if (!offset) continue;
      const one = this.rc[offset / this.cs] === 1;
      if (one !== copied) this.setL1(i, offset, one);
      // Shared tables too: their entries' flags must say "shared" (the snapshot ignores them).
      const t = this.loadL2(offset);
      const v = dv(t);
      let changed = false;
      for (let k = 0; k < this.l2Entries; k++) {
        const e = this.entryAt(t, k);
        if (e.kind !== 'normal' && !(e.kind === 'zero' && e.offset)) continue;
        const want = this.rc[e.offset / this.cs] === 1;
        if (want !== e.copied) {
          const hi = v.getUint32(k * 8);
          v.setUint32(k * 8, want ? hi | COPIED : hi & ~COPIED);
          changed = true;
        }
      }
      if (changed) this.file.write(offset, t);
    }
  }

  /**
   * Points this image at a different backing file (or none), as `qemu-img rebase -u` does: the
   * header extensions are rebuilt (other extensions kept) and cluster 0's first page rewritten in
   * one write, so a kill leaves either the old or the new header.
   */
  changeBackingFile(ref: string | null, format?: ImageFormat): void {
    if (this.readOnly) this.fail('image is open read-only');
    const h = this.file.readBytes(0, Math.min(this.cs, Math.max(this.file.size, 4096)));
    const v = dv(h);
    const keep: { type: number; data: Uint8Array }[] = [];
    let p = this.headerLength;
    while (p + 8 <= h.length) {
      const type = v.getUint32(p);
      const len = v.getUint32(p + 4);
      if (type === 0 || p + 8 + len > h.length) break;
      if (type !== EXT_BACKING_FORMAT) keep.push({ type, data: h.slice(p + 8, p + 8 + len) });
      p += 8 + Math.ceil(len / 8) * 8;
    }
    const enc = new TextEncoder();
    if (ref && format) keep.unshift({ type: EXT_BACKING_FORMAT, data: enc.encode(format === 'vhd' ? 'vpc' : format) });
    const name = ref ? enc.encode(ref) : new Uint8Array(0);
    if (name.length > 1023) this.fail('backing file name is too long');
    const out = new Uint8Array(h.length);
    out.set(h.subarray(0, this.headerLength));
    const ov = dv(out);
    let q = this.headerLength;
    for (const e of keep) {
      if (q + 8 + e.data.length > out.length) this.fail('header extensions do not fit in the first cluster');
      ov.setUint32(q, e.type);
      ov.setUint32(q + 4, e.data.length);
      out.set(e.data, q + 8);
      q += 8 + Math.ceil(e.data.length / 8) * 8;
    }
    q += 8; // end marker (zeros)
    if (q + name.length > out.length) this.fail('backing file name does not fit in the first cluster');
    setU64BE(out, 8, ref ? q : 0);
    ov.setUint32(16, name.length);
    out.set(name, q);
    const end = Math.max(q + name.length, p + 8);
    const span = Math.min(out.length, Math.ceil(end / 512) * 512);
    this.file.write(0, out, 0, span);
    this.file.sync();
    this.backingRef = ref;
    this.backingFormat = ref ? format : undefined;
  }

  /** Replaces the open backing image object (after changeBackingFile). */
  attachBacking(img: DiskImage | null): void {
    this.backing?.close();
    this.backing = img;
  }

  // ---------------------------------------------------------------- resize

  resize(newSize: number): void {
    if (this.readOnly) this.fail('image is open read-only');
    if (newSize < this.size) this.fail('shrinking a qcow2 image is not supported');
    if (this.snapshots.length) this.fail('cannot resize an image that has internal snapshots');
    const need = Math.ceil(newSize / (this.cs * this.l2Entries));
    if (need > this.l1Size) {
      if (need * 8 > MAX_L1_BYTES) this.fail(`size ${newSize} needs an L1 table beyond the limit`);
      this.replaceL1(need, this.l1Hi, this.l1Lo);
    }
    this.writeU64(24, newSize);
    this.size = newSize;
  }

  /** Moves the active L1 to a new, larger table holding the given entries. */
  private replaceL1(newSize: number, hi: Uint32Array, lo: Uint32Array): void {
    const clusters = Math.ceil((newSize * 8) / this.cs);
    const off = this.allocClusters(clusters);
    const nh = new Uint32Array(newSize);
    const nl = new Uint32Array(newSize);
    nh.set(hi.subarray(0, Math.min(hi.length, newSize)));
    nl.set(lo.subarray(0, Math.min(lo.length, newSize)));
    const b = new Uint8Array(clusters * this.cs);
    const v = dv(b);
    for (let i = 0; i < newSize; i++) {
      v.setUint32(i * 8, nh[i]);
      v.setUint32(i * 8 + 4, nl[i]);
    }
    this.file.write(off, b);
    const hdr = new Uint8Array(12);
    dv(hdr).setUint32(0, newSize);
    setU64BE(hdr, 4, off);
    this.file.write(36, hdr);
    const oldOff = this.l1Offset;
    const oldClusters = Math.ceil((this.l1Size * 8) / this.cs);
    this.l1Offset = off;
    this.l1Size = newSize;
    this.l1Hi = nh;
    this.l1Lo = nl;
    if (oldOff) for (let i = 0; i < oldClusters; i++) this.addRef(oldOff / this.cs + i, -1);
  }

  // ---------------------------------------------------------------- snapshots

  listSnapshots(): SnapshotInfo[] {
    return this.snapshots.map((s) => ({
      id: s.id,
      name: s.name,
      vmStateSize: s.vmStateSize,
      date: s.dateSec + s.dateNsec / 1e9,
      vmClockNs: s.vmClockNs,
      diskSize: s.diskSize,
    }));
  }

  private findSnapshot(nameOrId: string): Snapshot {
    const s = this.snapshots.find((x) => x.name === nameOrId) ?? this.snapshots.find((x) => x.id === nameOrId);
    if (!s) this.fail(`no snapshot named '${nameOrId}'`);
    return s;
  }

  /** Adds `delta` to the refcount of every L2 table and data cluster reachable from an L1 table. */
  private refL1Contents(hi: Uint32Array, lo: Uint32Array, delta: number): void {
    const counts = new Map<number, number>();
    const bump = (c: number): void => {
      counts.set(c, (counts.get(c) ?? 0) + delta);
    };
    for (let i = 0; i < hi.length; i++) {
      const off = (hi[i] & 0x00ffffff) * TWO32 + ((lo[i] & 0xfffffe00) >>> 0);
      if (!off) continue;
      bump(off / this.cs);
      const t = this.loadL2(off);
      for (let k = 0; k < this.l2Entries; k++) for (const c of this.entryClusters(this.entryAt(t, k))) bump(c);
    }
    // Raise before lowering, so a crash midway leaves leaks, never missing references.
    const sorted = [...counts.entries()];
    for (const [c, d] of sorted) if (d) this.addRef(c, d);
  }

  private writeSnapshotTable(list: Snapshot[]): void {
    const enc = new TextEncoder();
    const parts: Uint8Array[] = [];
    for (const s of list) {
      const id = enc.encode(s.id);
      const name = enc.encode(s.name);
      const extraLen = 16 + s.extraTail.length;
      const len = Math.ceil((40 + extraLen + id.length + name.length) / 8) * 8;
      const e = new Uint8Array(len);
      const v = dv(e);
      setU64BE(e, 0, s.l1Offset);
      v.setUint32(8, s.l1Size);
      v.setUint16(12, id.length);
      v.setUint16(14, name.length);
      v.setUint32(16, s.dateSec);
      v.setUint32(20, s.dateNsec);
      setU64BE(e, 24, s.vmClockNs);
      v.setUint32(32, Math.min(s.vmStateSize, 0xffffffff));
      v.setUint32(36, extraLen);
      setU64BE(e, 40, s.vmStateSize);
      setU64BE(e, 48, s.diskSize);
      e.set(s.extraTail, 56);
      e.set(id, 40 + extraLen);
      e.set(name, 40 + extraLen + id.length);
      parts.push(e);
    }
    const total = parts.reduce((a, p) => a + p.length, 0);
    const oldOff = this.snapshotsOffset;
    const oldClusters = this.snapshots.length ? Math.ceil(this.snapshotTableBytes / this.cs) : 0;
    let off = 0;
    if (total) {
      const clusters = Math.ceil(total / this.cs);
      off = this.allocClusters(clusters);
      const buf = new Uint8Array(clusters * this.cs);
      let p = 0;
      for (const e of parts) {
        buf.set(e, p);
        p += e.length;
      }
      this.file.write(off, buf);
    }
    this.file.sync();
    const hdr = new Uint8Array(12);
    dv(hdr).setUint32(0, list.length);
    setU64BE(hdr, 4, off);
    this.file.write(60, hdr);
    this.file.sync();
    this.snapshots = list;
    this.snapshotsOffset = off;
    this.snapshotTableBytes = total;
    for (let i = 0; i < oldClusters; i++) this.addRef(oldOff / this.cs + i, -1);
  }

  createSnapshot(name: string, opts: { vmStateSize?: number; vmClockNs?: number } = {}): SnapshotInfo {
    if (this.readOnly) this.fail('image is open read-only');
    if (this.snapshots.some((s) => s.name === name)) this.fail(`a snapshot named '${name}' already exists`);
    if (this.maxRefcount < 2) this.fail('snapshots need refcounts wider than one bit');
    const clusters = Math.max(1, Math.ceil((this.l1Size * 8) / this.cs));
    const l1Off = this.allocClusters(clusters);
    this.refL1Contents(this.l1Hi, this.l1Lo, +1);
    const b = new Uint8Array(clusters * this.cs);
    const v = dv(b);
    for (let i = 0; i < this.l1Size; i++) {
      v.setUint32(i * 8, this.l1Hi[i] & ~COPIED);
      v.setUint32(i * 8 + 4, this.l1Lo[i]);
    }
    this.file.write(l1Off, b);
    this.updateCopiedFlags();
    const now = Date.now();
    const maxId = this.snapshots.reduce((m, s) => Math.max(m, Number.parseInt(s.id, 10) || 0), 0);
    const snap: Snapshot = {
      l1Offset: l1Off,
      l1Size: this.l1Size,
      id: String(maxId + 1),
      name,
      dateSec: Math.floor(now / 1000),
      dateNsec: (now % 1000) * 1e6,
      vmClockNs: opts.vmClockNs ?? 0,
      vmStateSize: opts.vmStateSize ?? 0,
      diskSize: this.size,
      extraTail: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // icount: -1
    };
    this.writeSnapshotTable([...this.snapshots, snap]);
    return this.listSnapshots().at(-1)!;
  }

  applySnapshot(nameOrId: string): void {
    if (this.readOnly) this.fail('image is open read-only');
    const s = this.findSnapshot(nameOrId);
    const { hi, lo } = this.readL1(s.l1Offset, s.l1Size);
    for (let i = 0; i < hi.length; i++) hi[i] &= ~COPIED;
    this.refL1Contents(hi, lo, +1);
    const oldHi = this.l1Hi.slice();
    const oldLo = this.l1Lo.slice();
    if (s.l1Size > this.l1Size) {
      this.replaceL1(s.l1Size, hi, lo);
    } else {
      const nh = new Uint32Array(this.l1Size);
      const nl = new Uint32Array(this.l1Size);
      nh.set(hi);
      nl.set(lo);
      const b = new Uint8Array(this.l1Size * 8);
      const v = dv(b);
      for (let i = 0; i < this.l1Size; i++) {
        v.setUint32(i * 8, nh[i]);
        v.setUint32(i * 8 + 4, nl[i]);
      }
      this.file.write(this.l1Offset, b);
      this.l1Hi = nh;
      this.l1Lo = nl;
    }
    if (s.diskSize !== this.size) {
      this.writeU64(24, s.diskSize);
      this.size = s.diskSize;
    }
    this.refL1Contents(oldHi, oldLo, -1);
    this.l2Cache.clear();
    this.updateCopiedFlags();
    this.file.sync();
  }

  deleteSnapshot(nameOrId: string): void {
    if (this.readOnly) this.fail('image is open read-only');
    const s = this.findSnapshot(nameOrId);
    this.writeSnapshotTable(this.snapshots.filter((x) => x !== s));
    const { hi, lo } = this.readL1(s.l1Offset, s.l1Size);
    this.refL1Contents(hi, lo, -1);
    const clusters = Math.max(1, Math.ceil((s.l1Size * 8) / this.cs));
    for (let i = 0; i < clusters; i++) this.addRef(s.l1Offset / this.cs + i, -1);
    this.l2Cache.clear();
    this.updateCopiedFlags();
    this.file.sync();
  }
}

function encodeRef(buf: Uint8Array, i: number, r: number, bits: number): void {
  if (bits < 8) {
    const shift = (i * bits) & 7;
    const mask = ((1 << bits) - 1) << shift;
    const p = (i * bits) >> 3;
    buf[p] = (buf[p] & ~mask) | ((r << shift) & mask);
  } else if (bits === 8) buf[i] = r;
  else if (bits === 16) dv(buf).setUint16(i * 2, r);
  else if (bits === 32) dv(buf).setUint32(i * 4, r);
  else setU64BE(buf, i * 8, r);
}
