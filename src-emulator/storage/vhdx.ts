import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { DiskError } from './block-device';
import { randomUuidBytes, readBacking, uuidToString, type BlockStatus, type CheckResult, type DiskImage, type ImageInfo } from './disk-image';
import { HostFile, ascii, dv, getU64LE, setU64LE } from './host-file';
import type { CreateOptions, OpenContext } from './open';
import { checkRange } from './raw';

const KiB = 1024;
const MiB = 1024 * 1024;
const GUID_BAT = '2dc27766-f623-4200-9d64-115e9bfd4a08';
const GUID_METADATA = '8b7ca206-4790-4b9a-b8fe-575f050f886e';
const GUID_FILE_PARAMS = 'caa16737-fa36-4d43-b3b6-33f0aa44e76b';
const GUID_DISK_SIZE = '2fa54224-cd1b-4876-b211-5dbed83bf4b8';
const GUID_LOGICAL_SECTOR = '8141bf1d-a96f-4709-ba47-f233a8faab5f';
const GUID_PHYSICAL_SECTOR = 'cda348c7-445d-4471-9cc9-e9885251c556';
const GUID_DISK_ID = 'beca12ab-b2e6-4523-93ef-c309e000c746';
const GUID_PARENT_LOCATOR = 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c';
const NOT_PRESENT = 0;
const UNDEFINED = 1;
const ZERO = 2;
const UNMAPPED = 3;
const FULLY_PRESENT = 6;
const PARTIALLY_PRESENT = 7;
const MAX_BAT_BYTES = 256 * MiB;

let crcTable: Uint32Array | null = null;
/** CRC-32C (Castagnoli), the checksum of every VHDX header, region table and log entry. */
export function crc32c(b: Uint8Array, zeroFrom = -1, zeroLen = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < b.length; i++) {
    const x = i >= zeroFrom && i < zeroFrom + zeroLen ? 0 : b[i];
    crc = crcTable[(crc ^ x) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** GUIDs are stored Microsoft-style: the first three fields little-endian. */
function guid(b: Uint8Array, o: number): string {
  const x = new Uint8Array(16);
  x.set([b[o + 3], b[o + 2], b[o + 1], b[o], b[o + 5], b[o + 4], b[o + 7], b[o + 6]]);
  x.set(b.subarray(o + 8, o + 16), 8);
  return uuidToString(x);
}

function guidBytes(g: string): Uint8Array {
  const h = g.replace(/-/g, '');
  const x = Uint8Array.from({ length: 16 }, (_, i) => parseInt(h.slice(i * 2, i * 2 + 2), 16));
  return new Uint8Array([x[3], x[2], x[1], x[0], x[5], x[4], x[7], x[6], ...x.subarray(8)]);
}

/**
 * Hyper-V's VHDX: headers and region tables (CRC-32C), metadata, the BAT with sector
 * bitmaps for differencing disks, and log replay. A log left by a writer that died is replayed
 * into an in-memory overlay for read-only opens, and into the file (then cleared) for
 * read-write ones. Writing covers dynamic and fixed disks: new blocks go at the end of the file
 * (1 MiB aligned, sparse), data first and the 8-byte BAT entry after; differencing VHDX is
 * read-only here.
 */
export class VhdxImage implements DiskImage {
  readonly format = 'vhdx' as const;
  readonly path: string;
  readonly readOnly: boolean;
  backing: DiskImage | null = null;
  private header!: Uint8Array;
  private batRegion = 0;
  private nextFree = 0;
  private headersUpdated = false;
  private headerSlot = 64 * KiB;
  size = 0;
  private blockSize = 0;
  private logicalSector = 512;
  private chunkRatio = 0;
  /** Per BAT entry: offset in MiB * 8 + state. */
  private bat = new Float64Array(0);
  private hasParent = false;
  private overlay = new Map<number, Uint8Array>(); // 4 KiB-aligned file offset -> page
  private zeroRanges: [number, number][] = [];
  private logReplayed = 0;
  private diskId = '';
  private parentLinkage = '';
  private parentPaths: string[] = [];
  private physicalSector = 512;

  private constructor(private readonly file: HostFile, readOnly: boolean) {
    this.path = file.path;
    this.readOnly = readOnly;
  }

  private fail(fault: string): never {
    throw new DiskError(this.path, fault);
  }

  static open(file: HostFile, ctx: OpenContext): VhdxImage {
    const img = new VhdxImage(file, ctx.readOnly);
    img.parse();
    if (img.hasParent && !ctx.noBacking) img.openParent(ctx);
    if (!img.readOnly && (img.overlay.size || img.zeroRanges.length)) img.flushLogToFile();
    return img;
  }

  dataWriteGuid(): string {
    return guid(this.header, 32);
  }

  /** Writes the replayed log into the file, then a header without a log GUID. */
  private flushLogToFile(): void {
    for (const [zs, zl] of this.zeroRanges) {
      for (let p = zs; p < zs + zl; p += 4 * MiB) this.file.write(p, new Uint8Array(Math.min(4 * MiB, zs + zl - p)));
    }
    for (const [off, page] of this.overlay) this.file.write(off, page);
    this.file.sync();
    this.overlay.clear();
    this.zeroRanges = [];
    this.header.fill(0, 48, 64);
    this.writeHeaders();
  }

  /** Writes the current header, sequence +1 then +2, into both slots (as qemu does). */
  private writeHeaders(): void {
    for (let k = 0; k < 2; k++) {
      const h = this.header;
      setU64LE(h, 8, getU64LE(h, 8) + 1);
      dv(h).setUint32(4, 0, true);
      dv(h).setUint32(4, crc32c(h), true);
      const slot = this.headerSlot === 64 * KiB ? 128 * KiB : 64 * KiB;
      this.file.write(slot, h);
      this.headerSlot = slot;
      this.file.sync();
    }
  }

  static create(path: string, size: number, opts: CreateOptions): void {
    const variant = opts.variant ?? 'dynamic';
    if (variant !== 'dynamic' && variant !== 'fixed') throw new DiskError(path, `unknown VHDX variant '${variant}' (dynamic or fixed)`);
    let parent: { linkage: string; abs: string; ref: string } | null = null;
    if (opts.backing) {
      if (variant === 'fixed') throw new DiskError(path, 'a fixed VHDX cannot have a parent');
      const abs = nodePath.resolve(nodePath.dirname(path), opts.backing);
      const pf = new HostFile(abs, false);
      try {
        if (ascii(pf.readBytes(0, 8), 0, 8) !== 'vhdxfile') throw new DiskError(path, `parent '${opts.backing}' is not a VHDX (a VHDX differencing disk needs a VHDX parent)`);
        const pimg = new VhdxImage(pf, true);
        pimg.parse();
        size = pimg.size;
        parent = { linkage: guid(pimg.header, 32), abs, ref: opts.backing };
      } finally {
        pf.close();
      }
    }
    const blockSize = opts.blockSize ?? (parent ? 2 * MiB : 8 * MiB);
    if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) throw new DiskError(path, `invalid VHDX block size ${blockSize}`);
    size = Math.ceil(size / 512) * 512;
    const logical = 512;
    const chunkRatio = (2 ** 23 * logical) / blockSize;
    const blocks = Math.ceil(size / blockSize);
    const entries = parent ? (Math.floor(Math.max(0, blocks - 1) / chunkRatio) + 1) * (chunkRatio + 1) : blocks + Math.floor(Math.max(0, blocks - 1) / chunkRatio);
    const batOff = 3 * MiB;
    const batLen = Math.max(MiB, Math.ceil((entries * 8) / MiB) * MiB);
    const f = new HostFile(path, true, 'create');
    try {
      const ident = new Uint8Array(64 * KiB);
      ident.set(new TextEncoder().encode('vhdxfile'));
      const creator = 'Boxwood';
      for (let i = 0; i < creator.length; i++) dv(ident).setUint16(8 + i * 2, creator.charCodeAt(i), true);
      f.write(0, ident);
      const h = new Uint8Array(4 * KiB);
      h.set(new TextEncoder().encode('head'));
      h.set(randomUuidBytes(), 16);
      h.set(randomUuidBytes(), 32);
      dv(h).setUint16(66, 1, true);
      dv(h).setUint32(68, MiB, true);
      setU64LE(h, 72, MiB);
      for (const [slot, seq] of [[64 * KiB, 1], [128 * KiB, 2]]) {
        setU64LE(h, 8, seq);
        dv(h).setUint32(4, 0, true);
        dv(h).setUint32(4, crc32c(h), true);
        f.write(slot, h);
      }
      const rt = new Uint8Array(64 * KiB);
      rt.set(new TextEncoder().encode('regi'));
      dv(rt).setUint32(8, 2, true);
      const region = (i: number, g: string, off: number, len: number): void => {
        rt.set(guidBytes(g), 16 + i * 32);
        setU64LE(rt, 16 + i * 32 + 16, off);
        dv(rt).setUint32(16 + i * 32 + 24, len, true);
        dv(rt).setUint32(16 + i * 32 + 28, 1, true);
      };
      region(0, GUID_BAT, batOff, batLen);
      region(1, GUID_METADATA, 2 * MiB, MiB);
      dv(rt).setUint32(4, crc32c(rt), true);
      f.write(192 * KiB, rt);
      f.write(256 * KiB, rt);
      const meta = new Uint8Array(MiB);
      meta.set(new TextEncoder().encode('metadata'));
      const items: [string, Uint8Array, number][] = [];
      const u32 = (v: number): Uint8Array => {
        const b = new Uint8Array(4);
        dv(b).setUint32(0, v, true);
        return b;
      };
      const fp = new Uint8Array(8);
      dv(fp).setUint32(0, blockSize, true);
      dv(fp).setUint32(4, variant === 'fixed' ? 1 : parent ? 2 : 0, true);
      const ds = new Uint8Array(8);
      setU64LE(ds, 0, size);
      items.push([GUID_FILE_PARAMS, fp, 4], [GUID_DISK_SIZE, ds, 6], [GUID_DISK_ID, randomUuidBytes(), 6], [GUID_LOGICAL_SECTOR, u32(logical), 6], [GUID_PHYSICAL_SECTOR, u32(4096), 6]);
      if (parent) {
        const rel = nodePath.relative(nodePath.dirname(nodePath.resolve(path)), parent.abs);
        const kv: [string, string][] = [
          ['parent_linkage', `{${parent.linkage.toUpperCase()}}`],
          ['relative_path', '.\\' + rel.replace(/\//g, '\\')],
          ['absolute_win32_path', parent.abs.replace(/\//g, '\\')],
        ];
        const utf16 = (t: string): Uint8Array => {
          const b = new Uint8Array(t.length * 2);
          for (let i = 0; i < t.length; i++) dv(b).setUint16(i * 2, t.charCodeAt(i), true);
          return b;
        };
        const strings = kv.map(([k, v]) => [utf16(k), utf16(v)]);
        const total = 20 + kv.length * 12 + strings.reduce((a, [k, v]) => a + k.length + v.length, 0);
        const loc = new Uint8Array(total);
        loc.set(guidBytes('b04aefb7-d19e-4a81-b789-25b8e9445913'), 0);
        dv(loc).setUint16(18, kv.length, true);
        let so = 20 + kv.length * 12;
        strings.forEach(([k, v], i) => {
          const o = 20 + i * 12;
          dv(loc).setUint32(o, so, true);
          loc.set(k, so);
          so += k.length;
          dv(loc).setUint32(o + 4, so, true);
          loc.set(v, so);
          so += v.length;
          dv(loc).setUint16(o + 8, k.length, true);
          dv(loc).setUint16(o + 10, v.length, true);
        });
        items.push([GUID_PARENT_LOCATOR, loc, 4]);
      }
      dv(meta).setUint16(10, items.length, true);
      let itemOff = 64 * KiB;
      items.forEach(([g, data, flags], i) => {
        const o = 32 + i * 32;
        meta.set(guidBytes(g), o);
        dv(meta).setUint32(o + 16, itemOff, true);
        dv(meta).setUint32(o + 20, data.length, true);
        dv(meta).setUint32(o + 24, flags, true);
        meta.set(data, itemOff);
        itemOff += 8 * Math.ceil(data.length / 8) + 8;
      });
      f.write(2 * MiB, meta);
      const bat = new Uint8Array(batLen);
      let end = batOff + batLen;
      if (variant === 'fixed') {
        for (let b = 0; b < blocks; b++) {
          const idx = b + Math.floor(b / chunkRatio);
          const mb = end / MiB;
          dv(bat).setUint32(idx * 8, ((mb & 0xfff) << 20) | FULLY_PRESENT, true);
          dv(bat).setUint32(idx * 8 + 4, Math.floor(mb / 4096), true);
          end += blockSize;
        }
      }
      f.write(batOff, bat);
      f.truncate(end);
      f.sync();
    } finally {
      f.close();
    }
  }

  /** File read through the replayed log. */
  private readAt(pos: number, len: number): Uint8Array {
    const b = this.file.readBytes(pos, len);
    if (this.overlay.size === 0 && this.zeroRanges.length === 0) return b;
    for (const [zs, zl] of this.zeroRanges) {
      const s = Math.max(zs, pos);
      const e = Math.min(zs + zl, pos + len);
      if (s < e) b.fill(0, s - pos, e - pos);
    }
    for (let p = Math.floor(pos / 4096) * 4096; p < pos + len; p += 4096) {
      const page = this.overlay.get(p);
      if (!page) continue;
      const s = Math.max(p, pos);
      const e = Math.min(p + 4096, pos + len);
      b.set(page.subarray(s - p, e - p), s - pos);
    }
    return b;
  }

  private parse(): void {
    const f = this.file;
    if (f.size < 1 * MiB) this.fail('VHDX file is too small to hold its headers');
    if (ascii(f.readBytes(0, 8), 0, 8) !== 'vhdxfile') this.fail('not a VHDX image (bad identifier)');
    const headers = [64 * KiB, 128 * KiB].map((o) => {
      const h = f.readBytes(o, 4 * KiB);
      const ok = ascii(h, 0, 4) === 'head' && dv(h).getUint32(4, true) === crc32c(h, 4, 4);
      return ok ? h : null;
    });
    const valid = headers.filter((h): h is Uint8Array => h !== null);
    if (!valid.length) this.fail('both VHDX headers are damaged (checksum mismatch)');
    const h = valid.reduce((a, b) => (getU64LE(b, 8) > getU64LE(a, 8) ? b : a));
    this.header = h.slice();
    this.headerSlot = h === headers[1] ? 128 * KiB : 64 * KiB;
    const hv = dv(h);
    if (hv.getUint16(66, true) !== 1) this.fail(`unsupported VHDX version ${hv.getUint16(66, true)}`);
    const logGuid = guid(h, 48);
    const logLength = hv.getUint32(68, true);
    const logOffset = getU64LE(h, 72);
    if (logGuid !== '00000000-0000-0000-0000-000000000000') this.replayLog(logGuid, logOffset, logLength);

    const regions = [192 * KiB, 256 * KiB].map((o) => {
      const r = this.readAt(o, 64 * KiB);
      return ascii(r, 0, 4) === 'regi' && dv(r).getUint32(4, true) === crc32c(r, 4, 4) ? r : null;
    });
    const rt = regions[0] ?? regions[1];
    if (!rt) this.fail('both VHDX region tables are damaged (checksum mismatch)');
    const count = dv(rt).getUint32(8, true);
    if (count > 2047) this.fail(`region table has ${count} entries, more than fit`);
    let bat: { off: number; len: number } | null = null;
    let meta: { off: number; len: number } | null = null;
    for (let i = 0; i < count; i++) {
      const o = 16 + i * 32;
      const id = guid(rt, o);
      const off = getU64LE(rt, o + 16);
      const len = dv(rt).getUint32(o + 24, true);
      const required = dv(rt).getUint32(o + 28, true) & 1;
      if (off % MiB !== 0 || off + len > f.size + MiB) this.fail(`region ${id} lies outside the file`);
      if (id === GUID_BAT) bat = { off, len };
      else if (id === GUID_METADATA) meta = { off, len };
      else if (required) this.fail(`unknown required region ${id}`);
    }
    if (!bat || !meta) this.fail('VHDX lacks its BAT or metadata region');
    this.parseMetadata(meta.off, meta.len);
    this.chunkRatio = (2 ** 23 * this.logicalSector) / this.blockSize;
    const payloadBlocks = Math.ceil(this.size / this.blockSize);
    const last = Math.max(0, payloadBlocks - 1);
    const need = this.hasParent ? this.bitmapIndex(last) + 1 : this.batIndex(last) + 1;
    if (need * 8 > bat.len || need * 8 > MAX_BAT_BYTES) this.fail(`BAT region of ${bat.len} bytes is too small for ${need} entries`);
    const raw = this.readAt(bat.off, need * 8);
    this.bat = new Float64Array(need);
    const rv = dv(raw);
    // Keep state (bits 0-2) and the MiB offset (bits 20-63) apart: the raw 64-bit value is not exact in a double.
    let end = Math.ceil(f.size / MiB) * MiB;
    for (let i = 0; i < need; i++) {
      const lo = rv.getUint32(i * 8, true);
      const hi = rv.getUint32(i * 8 + 4, true);
      const mb = hi * 4096 + (lo >>> 20);
      this.bat[i] = mb * 8 + (lo & 7);
      if ((lo & 7) >= FULLY_PRESENT) end = Math.max(end, mb * MiB + this.blockSize);
    }
    this.batRegion = bat.off;
    this.nextFree = end;
  }

  private parseMetadata(off: number, len: number): void {
    const m = this.readAt(off, Math.min(len, 64 * KiB));
    if (ascii(m, 0, 8) !== 'metadata') this.fail('metadata table signature is missing');
    const count = dv(m).getUint16(10, true);
    if (count > 2047) this.fail(`metadata table has ${count} entries, more than fit`);
    const items = new Map<string, Uint8Array>();
    for (let i = 0; i < count; i++) {
      const o = 32 + i * 32;
      const id = guid(m, o);
      const ioff = dv(m).getUint32(o + 16, true);
      const ilen = dv(m).getUint32(o + 20, true);
      const flags = dv(m).getUint32(o + 24, true);
      if (ilen > MiB || ioff + ilen > len) this.fail(`metadata item ${id} lies outside the metadata region`);
      const known = [GUID_FILE_PARAMS, GUID_DISK_SIZE, GUID_LOGICAL_SECTOR, GUID_PHYSICAL_SECTOR, GUID_DISK_ID, GUID_PARENT_LOCATOR, 'b04aefb7-d19e-4a81-b789-25b8e9445913'];
      if (flags & 4 && !known.includes(id)) this.fail(`unknown required metadata item ${id}`);
      items.set(id, this.readAt(off + ioff, ilen));
    }
    const fp = items.get(GUID_FILE_PARAMS);
    const ds = items.get(GUID_DISK_SIZE);
    const ls = items.get(GUID_LOGICAL_SECTOR);
    if (!fp || fp.length < 8 || !ds || ds.length < 8 || !ls || ls.length < 4) this.fail('required metadata (file parameters, disk size, sector size) is missing');
    this.blockSize = dv(fp).getUint32(0, true);
    this.hasParent = (dv(fp).getUint32(4, true) & 2) !== 0;
    this.size = getU64LE(ds, 0);
    this.logicalSector = dv(ls).getUint32(0, true);
    const ps = items.get(GUID_PHYSICAL_SECTOR);
    if (ps && ps.length >= 4) this.physicalSector = dv(ps).getUint32(0, true);
    const id = items.get(GUID_DISK_ID);
    if (id && id.length >= 16) this.diskId = guid(id, 0);
    if (this.blockSize < MiB || this.blockSize > 256 * MiB || (this.blockSize & (this.blockSize - 1)) !== 0) this.fail(`invalid block size ${this.blockSize}`);
    if (this.logicalSector !== 512 && this.logicalSector !== 4096) this.fail(`invalid logical sector size ${this.logicalSector}`);
    if (!Number.isSafeInteger(this.size) || this.size > 64 * 2 ** 40 || this.size % this.logicalSector !== 0) this.fail(`invalid virtual disk size ${this.size}`);
    const pl = items.get(GUID_PARENT_LOCATOR);
    if (this.hasParent && pl) this.parseParentLocator(pl);
  }

  private parseParentLocator(pl: Uint8Array): void {
    if (pl.length < 20) return;
    const n = dv(pl).getUint16(18, true);
    const kv = new Map<string, string>();
    const dec = new TextDecoder('utf-16le');
    for (let i = 0; i < n && 20 + i * 12 + 12 <= pl.length; i++) {
      const o = 20 + i * 12;
      const ko = dv(pl).getUint32(o, true);
      const vo = dv(pl).getUint32(o + 4, true);
      const kl = dv(pl).getUint16(o + 8, true);
      const vl = dv(pl).getUint16(o + 10, true);
      if (ko + kl > pl.length || vo + vl > pl.length) continue;
      kv.set(dec.decode(pl.subarray(ko, ko + kl)), dec.decode(pl.subarray(vo, vo + vl)));
    }
    this.parentLinkage = (kv.get('parent_linkage') ?? '').replace(/[{}]/g, '').toLowerCase();
    for (const k of ['relative_path', 'absolute_win32_path', 'volume_path']) {
      const v = kv.get(k);
      if (!v) continue;
      let p = v.replace(/\\/g, '/');
      if (/^[A-Za-z]:\//.test(p)) p = p.slice(2);
      this.parentPaths.push(p);
    }
  }

  private openParent(ctx: OpenContext): void {
    const dir = nodePath.dirname(this.path);
    for (const c of this.parentPaths) {
      const p = nodePath.isAbsolute(c) ? c : nodePath.join(dir, c);
      if (!fs.existsSync(p)) continue;
      const parent = ctx.openBacking(this.path, c);
      if (parent.format !== 'vhdx') {
        parent.close();
        this.fail(`parent '${c}' is a ${parent.format} image; a VHDX differencing disk needs a VHDX parent`);
      }
      const got = (parent as VhdxImage).dataWriteGuid();
      if (this.parentLinkage && got !== this.parentLinkage) {
        parent.close();
        this.fail(`parent '${c}' has data write GUID ${got}, but this differencing disk was made from ${this.parentLinkage} (the parent changed)`);
      }
      this.backing = parent;
      return;
    }
    this.fail(`parent disk not found (tried ${this.parentPaths.map((p) => `'${p}'`).join(', ') || 'no locator'})`);
  }

  /** Replays the active log sequence into the overlay (never into the file). */
  private replayLog(logGuid: string, logOffset: number, logLength: number): void {
    const f = this.file;
    if (logOffset % MiB !== 0 || logLength % MiB !== 0 || logLength === 0 || logOffset + logLength > f.size) this.fail('log region is invalid');
    if (logLength > 64 * MiB) this.fail('log region is larger than allowed');
    const log = f.readBytes(logOffset, logLength);
    interface LogEntry { pos: number; len: number; seq: number; tail: number }
    const readEntry = (pos: number): LogEntry | null => {
      if (pos + 64 > logLength || ascii(log, pos, 4) !== 'loge') return null;
      const v = dv(log);
      const len = v.getUint32(pos + 8, true);
      if (len < 4096 || len % 4096 !== 0 || pos + len > logLength) return null;
      const e = log.subarray(pos, pos + len);
      if (v.getUint32(pos + 4, true) !== crc32c(e, 4, 4)) return null;
      if (guid(log, pos + 32) !== logGuid) return null;
      return { pos, len, seq: getU64LE(log, pos + 16), tail: v.getUint32(pos + 12, true) };
    };
    // Find the valid entry with the highest sequence number, then walk its sequence from the tail.
    let head: LogEntry | null = null;
    for (let p = 0; p < logLength; p += 4096) {
      const e = readEntry(p);
      if (e && (!head || e.seq > head.seq)) head = e;
    }
    if (!head) return;
    const seqEntries: LogEntry[] = [];
    let p = head.tail;
    for (let guard = 0; guard < logLength / 4096 + 1; guard++) {
      const e = readEntry(p);
      if (!e) break;
      if (seqEntries.length && e.seq !== seqEntries[seqEntries.length - 1].seq + 1) break;
      seqEntries.push(e);
      if (e.pos === head.pos) break;
      p = (p + e.len) % logLength;
    }
    if (!seqEntries.length || seqEntries[seqEntries.length - 1].pos !== head.pos) seqEntries.splice(0, seqEntries.length, head);
    for (const e of seqEntries) {
      const v = dv(log);
      const n = v.getUint32(e.pos + 24, true);
      let dataPos = e.pos + Math.ceil((64 + n * 32) / 4096) * 4096;
      for (let i = 0; i < n; i++) {
        const d = e.pos + 64 + i * 32;
        const sig = ascii(log, d, 4);
        const fileOffset = getU64LE(log, d + 16);
        if (sig === 'zero') {
          const zl = getU64LE(log, d + 8);
          if (fileOffset % 4096 || zl % 4096 || zl > f.size) this.fail('log zero descriptor is invalid');
          this.zeroRanges.push([fileOffset, zl]);
          for (let q = fileOffset; q < fileOffset + zl; q += 4096) this.overlay.delete(q);
        } else if (sig === 'desc') {
          if (dataPos + 4096 > e.pos + e.len || ascii(log, dataPos, 4) !== 'data' || fileOffset % 4096) this.fail('log data descriptor is invalid');
          const page = new Uint8Array(4096);
          page.set(log.subarray(d + 8, d + 16), 0); // leading bytes
          page.set(log.subarray(dataPos + 8, dataPos + 4092), 8);
          page.set(log.subarray(d + 4, d + 8), 4092); // trailing bytes
          this.overlay.set(fileOffset, page);
          dataPos += 4096;
        } else this.fail(`unknown log descriptor '${sig}'`);
      }
      this.logReplayed++;
    }
  }

  private batIndex(block: number): number {
    return block + Math.floor(block / this.chunkRatio);
  }

  private bitmapIndex(block: number): number {
    const chunk = Math.floor(block / this.chunkRatio);
    return chunk * (this.chunkRatio + 1) + this.chunkRatio;
  }

  read(offset: number, buf: Uint8Array): void {
    checkRange(this, offset, buf.length);
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const block = Math.floor(pos / this.blockSize);
      const inOff = pos - block * this.blockSize;
      let n = Math.min(buf.length - done, this.blockSize - inOff);
      const e = this.bat[this.batIndex(block)];
      const state = e % 8;
      const fileOff = Math.floor(e / 8) * MiB;
      const out = buf.subarray(done, done + n);
      if (state === FULLY_PRESENT || (state === PARTIALLY_PRESENT && this.hasParent)) {
        if (fileOff + this.blockSize > this.file.size) this.fail(`block ${block} lies beyond the end of the file`);
        if (state === PARTIALLY_PRESENT) {
          // Sector bitmap: one bit per logical sector, the chunk's sectors in order.
          const be = this.bat[this.bitmapIndex(block)];
          if (be % 8 !== FULLY_PRESENT) this.fail(`sector bitmap for block ${block} is missing`);
          const sectorInChunk = ((block % this.chunkRatio) * this.blockSize + inOff) / this.logicalSector;
          const firstSector = Math.floor(sectorInChunk);
          const bmOff = Math.floor(be / 8) * MiB + Math.floor(firstSector / 8);
          const sectors = Math.ceil((inOff % this.logicalSector + n) / this.logicalSector);
          const bm = this.readAt(bmOff, Math.ceil(((firstSector % 8) + sectors) / 8));
          const bit = (k: number): number => (bm[(k + (firstSector % 8)) >> 3] >> ((k + (firstSector % 8)) & 7)) & 1;
          const present = bit(0);
          let run = Math.min(n, this.logicalSector - (inOff % this.logicalSector));
          for (let k = 1; run < n && bit(k) === present; k++) run = Math.min(n, run + this.logicalSector);
          n = run;
          const sub = buf.subarray(done, done + n);
          if (present) sub.set(this.readAt(fileOff + inOff, n));
          else readBacking(this.backing, pos, sub);
        } else out.set(this.readAt(fileOff + inOff, n));
      } else if (state === NOT_PRESENT && this.hasParent) readBacking(this.backing, pos, out);
      else if ([NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED, PARTIALLY_PRESENT].includes(state)) out.fill(0);
      else this.fail(`BAT entry for block ${block} has invalid state ${state}`);
      done += n;
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) this.fail('image is open read-only');
    checkRange(this, offset, data.length);
    if (!this.headersUpdated) {
      // The specification asks for new file and data write GUIDs before the first change.
      this.headersUpdated = true;
      this.header.set(randomUuidBytes(), 16);
      this.header.set(randomUuidBytes(), 32);
      this.writeHeaders();
    }
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const block = Math.floor(pos / this.blockSize);
      const inOff = pos - block * this.blockSize;
      const n = Math.min(data.length - done, this.blockSize - inOff);
      const idx = this.batIndex(block);
      const e = this.bat[idx];
      const state = e % 8;
      if (state === FULLY_PRESENT) {
        this.file.write(Math.floor(e / 8) * MiB + inOff, data, done, n);
      } else if (!this.hasParent || state !== NOT_PRESENT && state !== PARTIALLY_PRESENT) {
        // New block (its content is zero: not present in a plain disk, or zero/unmapped).
        const off = this.allocateBlock(this.blockSize);
        this.file.write(off + inOff, data, done, n);
        this.setBat(idx, off, FULLY_PRESENT);
      } else {
        // Differencing: the block holds only the sectors its bitmap marks; the rest is the parent's.
        if (state === NOT_PRESENT) {
          this.ensureBitmap(block);
          this.setBat(idx, this.allocateBlock(this.blockSize), PARTIALLY_PRESENT);
        }
        this.writePartial(block, inOff, data.subarray(done, done + n));
      }
      done += n;
    }
  }

  private allocateBlock(len: number): number {
    const off = this.nextFree;
    this.nextFree = off + Math.ceil(len / MiB) * MiB;
    this.file.truncate(Math.max(this.file.size, this.nextFree));
    return off;
  }

  private setBat(idx: number, off: number, state: number): void {
    const mb = off / MiB;
    const b = new Uint8Array(8);
    dv(b).setUint32(0, ((mb & 0xfff) << 20) | state, true);
    dv(b).setUint32(4, Math.floor(mb / 4096), true);
    this.file.write(this.batRegion + idx * 8, b);
    this.bat[idx] = mb * 8 + state;
  }

  private ensureBitmap(block: number): void {
    const bi = this.bitmapIndex(block);
    if (this.bat[bi] % 8 === FULLY_PRESENT) return;
    this.setBat(bi, this.allocateBlock(MiB), FULLY_PRESENT);
  }

  private writePartial(block: number, inOff: number, data: Uint8Array): void {
    const ls = this.logicalSector;
    const host = Math.floor(this.bat[this.batIndex(block)] / 8) * MiB;
    const bmHost = Math.floor(this.bat[this.bitmapIndex(block)] / 8) * MiB;
    const chunkSector = ((block % this.chunkRatio) * this.blockSize) / ls;
    const s0 = Math.floor(inOff / ls);
    const s1 = Math.floor((inOff + data.length - 1) / ls);
    const first = chunkSector + s0;
    const bm = this.file.readBytes(bmHost + Math.floor(first / 8), Math.floor((chunkSector + s1) / 8) - Math.floor(first / 8) + 1);
    const bitAt = (s: number): [number, number] => {
      const k = chunkSector + s - Math.floor(first / 8) * 8;
      return [k >> 3, k & 7];
    };
    const has = (s: number): boolean => {
      const [i, b] = bitAt(s);
      return ((bm[i] >> b) & 1) === 1;
    };
    for (const s of s0 === s1 ? [s0] : [s0, s1]) {
      if (has(s) || (inOff <= s * ls && inOff + data.length >= (s + 1) * ls)) continue;
      const sec = new Uint8Array(ls);
      readBacking(this.backing, block * this.blockSize + s * ls, sec);
      this.file.write(host + s * ls, sec);
    }
    this.file.write(host + inOff, data);
    for (let s = s0; s <= s1; s++) {
      const [i, b] = bitAt(s);
      bm[i] |= 1 << b;
    }
    this.file.write(bmHost + Math.floor(first / 8), bm);
  }

  flush(): void {
    if (!this.readOnly) this.file.sync();
  }

  close(): void {
    try {
      if (!this.readOnly) this.file.sync();
    } finally {
      this.file.close();
      this.backing?.close();
    }
  }

  info(): ImageInfo {
    return {
      path: this.path,
      format: 'vhdx',
      variant: this.hasParent ? 'differencing' : 'dynamic',
      virtualSize: this.size,
      actualSize: this.file.allocatedBytes(),
      clusterSize: this.blockSize,
      backing: this.hasParent ? { path: this.backing?.path ?? this.parentPaths[0] ?? '?', format: 'vhdx' } : undefined,
      specific: { logicalSectorSize: this.logicalSector, physicalSectorSize: this.physicalSector, diskId: this.diskId, logEntriesReplayed: this.logReplayed, parentLinkage: this.parentLinkage || undefined },
    };
  }

  check(): CheckResult {
    const errors: string[] = [];
    let allocated = 0;
    const blocks = Math.ceil(this.size / this.blockSize);
    for (let b = 0; b < blocks; b++) {
      const e = this.bat[this.batIndex(b)];
      const st = e % 8;
      if (![0, 1, 2, 3, 6, 7].includes(st)) errors.push(`block ${b} has invalid state ${st}`);
      if (st === 6 || st === 7) {
        allocated++;
        if (Math.floor(e / 8) * MiB + this.blockSize > this.file.size) errors.push(`block ${b} lies beyond the end of the file`);
      }
    }
    return { errors, leaks: 0, allocated, total: blocks };
  }

  blockStatus(offset: number, length: number): { status: BlockStatus; length: number } {
    const st = (b: number): BlockStatus => {
      const s = this.bat[this.batIndex(b)] % 8;
      return s === 6 || s === 7 ? 'data' : s === NOT_PRESENT && this.hasParent ? 'unallocated' : 'zero';
    };
    const b0 = Math.floor(offset / this.blockSize);
    const s = st(b0);
    const limit = Math.min(offset + length, this.size);
    let end = Math.min((b0 + 1) * this.blockSize, limit);
    while (end < limit && st(Math.floor(end / this.blockSize)) === s) end = Math.min(end + this.blockSize, limit);
    return { status: s, length: end - offset };
  }

  files(): string[] {
    return [this.path];
  }

  resize(): void {
    this.fail('resizing VHDX images is not supported; convert to a new size instead');
  }
}
