import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import * as zlib from 'node:zlib';
import { DiskError } from './block-device';
import { readBacking, type BlockStatus, type CheckResult, type DiskImage, type ImageInfo } from './disk-image';
import { HostFile, ascii, dv, getU64LE, isZero, setU64LE } from './host-file';
import type { CreateOptions, OpenContext } from './open';
import { checkRange } from './raw';

const MAGIC = 0x564d444b; // "KDMV" little-endian
const FLAG_NL_TEST = 1;
const FLAG_RGD = 2;
const FLAG_ZERO_GRAIN = 4;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const MARKER_EOS = 0;
const MARKER_GT = 1;
const MARKER_GD = 2;
const MARKER_FOOTER = 3;
const SPLIT = 0x80000000;
const MAX_CAPACITY_SECTORS = 2 ** 41;

type Variant = 'monolithicSparse' | 'monolithicFlat' | 'twoGbMaxExtentSparse' | 'twoGbMaxExtentFlat' | 'streamOptimized';
const VARIANTS: Variant[] = ['monolithicSparse', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat', 'streamOptimized'];

/** One hosted sparse extent (a "KDMV" file): grain directory, grain tables, grains. */
class SparseExtent {
  capacity = 0; // sectors
  grainSectors = 128;
  grainBytes = 65536;
  gtEntries = 512;
  flags = 0;
  gdOffset = 0; // sectors
  rgdOffset = 0;
  descriptorOffset = 0;
  descriptorSize = 0;
  gd = new Uint32Array(0);
  rgd: Uint32Array | null = null;
  gtCache = new Map<number, Uint32Array>();
  compressed = false;
  /** Stream writer state (a streamOptimized image being created). */
  stream: { gts: Uint32Array; pending: Map<number, { data: Uint8Array; covered: Uint8Array; count: number }>; next: number } | null = null;
  nextSector = 0;
  header!: Uint8Array;

  constructor(
    readonly file: HostFile,
    readonly owner: string,
  ) {}

  fail(fault: string): never {
    throw new DiskError(this.owner, this.file.path === this.owner ? fault : `extent ${nodePath.basename(this.file.path)}: ${fault}`);
  }

  parse(): void {
    const f = this.file;
    if (f.size < 512) this.fail('sparse extent header is truncated');
    let h = f.readBytes(0, 512);
    const v = dv(h);
    if (v.getUint32(0, true) !== MAGIC) this.fail('not a VMDK sparse extent (bad magic)');
    const version = v.getUint32(4, true);
    if (version < 1 || version > 3) this.fail(`unsupported VMDK sparse version ${version}`);
    this.flags = v.getUint32(8, true);
    this.compressed = (this.flags & FLAG_COMPRESSED) !== 0;
    const gdRaw = [v.getUint32(56, true), v.getUint32(60, true)];
    if (gdRaw[0] === 0xffffffff && gdRaw[1] === 0xffffffff) {
      // streamOptimized: the real header is the footer near the end of the file.
      if (f.size < 1536) this.fail('streamOptimized image has no footer');
      const foot = f.readBytes(f.size - 1024, 512);
      if (dv(foot).getUint32(0, true) !== MAGIC) this.fail('streamOptimized footer is missing (image incomplete?)');
      h = foot;
    }
    const hv = dv(h);
    this.header = h;
    this.capacity = getU64LE(h, 12);
    this.grainSectors = getU64LE(h, 20);
    this.descriptorOffset = getU64LE(h, 28);
    this.descriptorSize = getU64LE(h, 36);
    this.gtEntries = hv.getUint32(44, true);
    this.rgdOffset = getU64LE(h, 48);
    this.gdOffset = getU64LE(h, 56);
    if (this.flags & FLAG_RGD && this.rgdOffset) this.gdOffset = getU64LE(h, 56);
    if (this.capacity > MAX_CAPACITY_SECTORS) this.fail(`capacity ${this.capacity} sectors is too large`);
    if (this.grainSectors < 1 || this.grainSectors > 2048 || (this.grainSectors & (this.grainSectors - 1)) !== 0) this.fail(`invalid grain size ${this.grainSectors} sectors`);
    if (this.gtEntries < 1 || this.gtEntries > 65536) this.fail(`invalid grain table size ${this.gtEntries}`);
    if (h[73] !== 0x0a || h[74] !== 0x20 || h[75] !== 0x0d || h[76] !== 0x0a) {
      if (this.flags & FLAG_NL_TEST) this.fail('newline check characters are damaged (file went through a text-mode transfer?)');
    }
    if (this.compressed && dv(h).getUint16(77, true) !== 1) this.fail(`unsupported grain compression ${dv(h).getUint16(77, true)}`);
    this.grainBytes = this.grainSectors * 512;
    const gdEntries = Math.ceil(this.capacity / (this.grainSectors * this.gtEntries));
    if (gdEntries > 16 * 1024 * 1024) this.fail(`grain directory of ${gdEntries} entries is too large`);
    const useGd = this.flags & FLAG_RGD && this.rgdOffset ? this.gdOffset : this.gdOffset;
    if (gdEntries * 4 > f.size || useGd * 512 + gdEntries * 4 > f.size) this.fail('grain directory lies beyond the end of the file');
    const raw = f.readBytes(useGd * 512, gdEntries * 4);
    this.gd = new Uint32Array(gdEntries);
    for (let i = 0; i < gdEntries; i++) this.gd[i] = dv(raw).getUint32(i * 4, true);
    if (this.flags & FLAG_RGD && this.rgdOffset && !this.compressed) {
      if (this.rgdOffset * 512 + gdEntries * 4 > f.size) this.fail('redundant grain directory lies beyond the end of the file');
      const r = f.readBytes(this.rgdOffset * 512, gdEntries * 4);
      this.rgd = new Uint32Array(gdEntries);
      for (let i = 0; i < gdEntries; i++) this.rgd[i] = dv(r).getUint32(i * 4, true);
    }
    this.nextSector = Math.ceil(f.size / 512);
  }

  gt(i: number): Uint32Array | null {
    if (this.stream) return this.stream.gts.subarray(i * this.gtEntries, (i + 1) * this.gtEntries);
    const off = this.gd[i];
    if (!off) return null;
    let t = this.gtCache.get(i);
    if (t) return t;
    if (off * 512 + this.gtEntries * 4 > this.file.size) this.fail(`grain table ${i} lies beyond the end of the file`);
    const raw = this.file.readBytes(off * 512, this.gtEntries * 4);
    t = new Uint32Array(this.gtEntries);
    for (let k = 0; k < this.gtEntries; k++) t[k] = dv(raw).getUint32(k * 4, true);
    if (this.gtCache.size > 1024) this.gtCache.clear();
    this.gtCache.set(i, t);
    return t;
  }

  /** Grain entry: 0 unallocated, 1 zero (when the zero-grain flag is set), else sector offset. */
  entry(grain: number): number {
    const t = this.gt(Math.floor(grain / this.gtEntries));
    return t ? t[grain % this.gtEntries] : 0;
  }

  grainData(grain: number, sector: number): Uint8Array {
    if (this.compressed) {
      const head = this.file.readBytes(sector * 512, 12);
      const size = dv(head).getUint32(8, true);
      if (size === 0 || size > this.grainBytes * 2 + 1024) this.fail(`compressed grain ${grain} has invalid size ${size}`);
      if (sector * 512 + 12 + size > this.file.size) this.fail(`compressed grain ${grain} runs past the end of the file`);
      const z = this.file.readBytes(sector * 512 + 12, size);
      let out: Uint8Array;
      try {
        out = zlib.inflateSync(z, { maxOutputLength: this.grainBytes, finishFlush: zlib.constants.Z_SYNC_FLUSH });
      } catch (err) {
        this.fail(`compressed grain ${grain} does not decompress (${(err as Error).message})`);
      }
      if (out.length === this.grainBytes) return out;
      const full = new Uint8Array(this.grainBytes);
      full.set(out);
      return full;
    }
    return this.file.readBytes(sector * 512, this.grainBytes);
  }
}

interface Extent {
  start: number; // virtual byte offset
  length: number; // bytes
  kind: 'flat' | 'sparse' | 'zero';
  access: 'RW' | 'RDONLY' | 'NOACCESS';
  file?: HostFile;
  flatOffset?: number; // bytes
  sparse?: SparseExtent;
}

/**
 * VMware's VMDK: a text descriptor (embedded in a sparse extent or in its own file) naming one or
 * more extents (hosted sparse, flat, zero). Sparse extents map grains (64 KiB by default) through
 * a grain directory and grain tables; streamOptimized ones hold compressed grains with markers,
 * written once in any order and closed with tables and a footer.
 */
export class VmdkImage implements DiskImage {
  readonly format = 'vmdk' as const;
  readonly path: string;
  readonly readOnly: boolean;
  backing: DiskImage | null = null;
  size = 0;
  private extents: Extent[] = [];
  private descriptor = '';
  private descriptorFile: HostFile;
  private embedded: SparseExtent | null = null;
  private createType = '';
  private cidUpdated = false;
  private parentHint: string | null = null;

  private constructor(file: HostFile, readOnly: boolean) {
    this.descriptorFile = file;
    this.path = file.path;
    this.readOnly = readOnly;
  }

  private fail(fault: string): never {
    throw new DiskError(this.path, fault);
  }

  static open(file: HostFile, ctx: OpenContext): VmdkImage {
    const img = new VmdkImage(file, ctx.readOnly);
    try {
      img.parse(ctx);
    } catch (err) {
      for (const e of img.extents) if (e.file && e.file !== file) e.file.close();
      throw err;
    }
    return img;
  }

  private parse(ctx: OpenContext): void {
    const f = this.descriptorFile;
    const magic = ascii(f.readBytes(0, 4), 0, 4);
    if (magic === 'COWD') this.fail('ESX COWD sparse extents are not supported');
    if (magic === 'KDMV') {
      const s = new SparseExtent(f, this.path);
      s.parse();
      if (!s.descriptorOffset || !s.descriptorSize) {
        // A bare extent without descriptor: one sparse extent is the disk.
        this.extents.push({ start: 0, length: s.capacity * 512, kind: 'sparse', access: 'RW', file: f, sparse: s });
        this.size = s.capacity * 512;
        this.createType = 'monolithicSparse';
        return;
      }
      if (s.descriptorSize > 128 || s.descriptorOffset * 512 + s.descriptorSize * 512 > f.size) this.fail('embedded descriptor is out of bounds');
      this.descriptor = new TextDecoder('latin1').decode(f.readBytes(s.descriptorOffset * 512, s.descriptorSize * 512)).replace(/\0.*$/s, '');
      this.embedded = s;
    } else {
      if (f.size > 1024 * 1024) this.fail('descriptor file is too large');
      this.descriptor = new TextDecoder('latin1').decode(f.readBytes(0, f.size));
    }
    this.parseDescriptor(ctx);
  }

  private field(name: string): string | null {
    const m = new RegExp(`^\\s*${name}\\s*=\\s*"?([^"\\r\\n]*)"?\\s*$`, 'mi').exec(this.descriptor);
    return m ? m[1] : null;
  }

  private parseDescriptor(ctx: OpenContext): void {
    this.createType = this.field('createType') ?? '';
    const dir = nodePath.dirname(this.path);
    let start = 0;
    const opened = new Map<string, HostFile>();
    for (const line of this.descriptor.split(/\r?\n/)) {
      const m = /^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(SPARSE|FLAT|ZERO|VMFS|VMFSSPARSE|VMFSRDM|VMFSRAW)(?:\s+"([^"]*)"(?:\s+(\d+))?)?/.exec(line);
      if (!m) continue;
      const sectors = Number(m[2]);
      const type = m[3];
      if (!Number.isSafeInteger(sectors) || sectors > MAX_CAPACITY_SECTORS) this.fail(`extent of ${m[2]} sectors is invalid`);
      const ext: Extent = { start, length: sectors * 512, kind: 'zero', access: m[1] as Extent['access'] };
      if (type === 'ZERO') {
        /* nothing to open */
      } else {
        if (!m[4]) this.fail(`extent line without a file name: ${line.trim()}`);
        const p = nodePath.isAbsolute(m[4]) ? m[4] : nodePath.join(dir, m[4]);
        let file: HostFile;
        // A monolithic sparse file is its own (only) extent, whatever name the line gives it (the
        // file may have been renamed, or live inside an OVA).
        if (this.embedded && (nodePath.resolve(p) === nodePath.resolve(this.path) || (type === 'SPARSE' && this.extents.length === 0))) file = this.descriptorFile;
        else if (opened.has(p)) file = opened.get(p)!;
        else {
          if (!fs.existsSync(p)) this.fail(`extent file '${m[4]}' not found`);
          file = new HostFile(p, !this.readOnly && m[1] === 'RW');
          opened.set(p, file);
        }
        ext.file = file;
        if (type === 'FLAT' || type === 'VMFS') {
          ext.kind = 'flat';
          ext.flatOffset = Number(m[5] ?? 0) * 512;
        } else if (type === 'SPARSE' || type === 'VMFSSPARSE') {
          ext.kind = 'sparse';
          const s = file === this.descriptorFile && this.embedded ? this.embedded : new SparseExtent(file, this.path);
          if (s !== this.embedded) s.parse();
          if (s.capacity * 512 < ext.length) this.fail(`extent '${m[4]}' holds ${s.capacity} sectors, fewer than the descriptor's ${sectors}`);
          ext.sparse = s;
        } else this.fail(`extent type ${type} is not supported`);
      }
      this.extents.push(ext);
      start += sectors * 512;
      if (this.extents.length > 100000) this.fail('too many extents');
    }
    if (!this.extents.length) this.fail('descriptor lists no extents');
    this.size = start;
    const parentCid = this.field('parentCID');
    this.parentHint = this.field('parentFileNameHint');
    if (parentCid && parentCid.toLowerCase() !== 'ffffffff' && !ctx.noBacking) {
      if (!this.parentHint) this.fail('delta image names no parent (parentFileNameHint missing)');
      const parent = ctx.openBacking(this.path, this.parentHint);
      if (parent.format === 'vmdk') {
        const pcid = (parent as VmdkImage).cid();
        if (pcid && pcid.toLowerCase() !== parentCid.toLowerCase()) {
          parent.close();
          this.fail(`parent '${this.parentHint}' has CID ${pcid} but this image expects ${parentCid} (the parent changed after the child was made)`);
        }
      }
      this.backing = parent;
    }
    const stream = this.extents.find((e) => e.sparse?.compressed);
    if (stream && !this.readOnly) this.startStreamWriter(stream.sparse!);
  }

  cid(): string | null {
    return this.field('CID');
  }

  /**
   * A streamOptimized image can only be written while it is still empty: its grains are then
   * appended compressed and the tables and footer go out at close.
   */
  private startStreamWriter(s: SparseExtent): void {
    const total = s.gd.length * s.gtEntries;
    if (total > 64 * 1024 * 1024) this.fail('streamOptimized image is too large to write here (more than 64 Mi grains)');
    for (let i = 0; i < s.gd.length; i++) {
      const t = s.gt(i);
      if (t && t.some((x) => x !== 0)) this.fail('streamOptimized images are write-once: this one already holds data (convert it to write)');
    }
    const end = Math.ceil((s.descriptorOffset + s.descriptorSize) / s.grainSectors) * s.grainSectors;
    const overhead = Math.max(end, 128);
    s.file.truncate(overhead * 512);
    s.stream = { gts: new Uint32Array(total), pending: new Map(), next: overhead };
  }

  static create(path: string, size: number, opts: CreateOptions): void {
    const variant = (opts.variant ?? 'monolithicSparse') as Variant;
    if (!VARIANTS.includes(variant)) throw new DiskError(path, `unknown VMDK subformat '${opts.variant}' (one of ${VARIANTS.join(', ')})`);
    const sectors = Math.ceil(size / 512);
    let parentCid = 'ffffffff';
    let hint = '';
    if (opts.backing) {
      if (variant !== 'monolithicSparse' && variant !== 'twoGbMaxExtentSparse') throw new DiskError(path, `a ${variant} VMDK cannot have a parent`);
      const abs = nodePath.resolve(nodePath.dirname(path), opts.backing);
      const pf = new HostFile(abs, false);
      try {
        const head = pf.readBytes(0, Math.min(pf.size, 64 * 1024));
        let text = new TextDecoder('latin1').decode(head);
        if (ascii(head, 0, 4) === 'KDMV') {
          const off = getU64LE(head, 28) * 512;
          const len = getU64LE(head, 36) * 512;
          text = new TextDecoder('latin1').decode(pf.readBytes(off, Math.min(len, 64 * 1024)));
        }
        const m = /^\s*CID\s*=\s*([0-9a-fA-F]+)/m.exec(text);
        if (!m) throw new DiskError(path, `parent '${opts.backing}' is not a VMDK (a VMDK delta needs a VMDK parent)`);
        parentCid = m[1];
      } finally {
        pf.close();
      }
      hint = opts.backing;
    }
    const base = nodePath.basename(path).replace(/\.vmdk$/i, '');
    const dir = nodePath.dirname(path);
    const extLines: string[] = [];
    const cylinders = Math.min(Math.floor(sectors / (16 * 63)), 16383);
    const cid = (Math.floor(Math.random() * 0xfffffffe) >>> 0).toString(16).padStart(8, '0');
    const descriptor = (extents: string[]): string =>
      [
        '# Disk DescriptorFile',
        'version=1',
        `CID=${cid}`,
        `parentCID=${parentCid}`,
        `createType="${variant}"`,
        ...(hint ? [`parentFileNameHint="${hint}"`] : []),
        '',
        '# Extent description',
        ...extents,
        '',
        '# The Disk Data Base',
        '#DDB',
        '',
        'ddb.virtualHWVersion = "4"',
        `ddb.geometry.cylinders = "${cylinders}"`,
        'ddb.geometry.heads = "16"',
        'ddb.geometry.sectors = "63"',
        'ddb.adapterType = "ide"',
        '',
      ].join('\n');
    if (variant === 'monolithicSparse' || variant === 'streamOptimized') {
      extLines.push(`RW ${sectors} SPARSE "${nodePath.basename(path)}"`);
      writeSparseExtent(path, sectors, descriptor(extLines), variant === 'streamOptimized');
      return;
    }
    const flat = variant === 'monolithicFlat' || variant === 'twoGbMaxExtentFlat';
    const split = variant.startsWith('twoGb');
    const pieces: number[] = [];
    if (split) for (let s = 0; s < sectors || pieces.length === 0; s += SPLIT / 512) pieces.push(Math.min(SPLIT / 512, sectors - s));
    else pieces.push(sectors);
    pieces.forEach((n, i) => {
      const name = split ? `${base}-${flat ? 'f' : 's'}${String(i + 1).padStart(3, '0')}.vmdk` : `${base}-flat.vmdk`;
      const p = nodePath.join(dir, name);
      if (flat) {
        const f = new HostFile(p, true, 'create');
        try {
          f.truncate(n * 512);
        } finally {
          f.close();
        }
        extLines.push(`RW ${n} FLAT "${name}" 0`);
      } else {
        writeSparseExtent(p, n, null, false);
        extLines.push(`RW ${n} SPARSE "${name}"`);
      }
    });
    fs.writeFileSync(path, descriptor(extLines));
  }

  // ------------------------------------------------------------------ data

  private extentAt(pos: number): Extent {
    let lo = 0;
    let hi = this.extents.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.extents[mid].start <= pos) lo = mid;
      else hi = mid - 1;
    }
    return this.extents[lo];
  }

  read(offset: number, buf: Uint8Array): void {
    checkRange(this, offset, buf.length);
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const e = this.extentAt(pos);
      const inExt = pos - e.start;
      let n = Math.min(buf.length - done, e.length - inExt);
      const out = buf.subarray(done, done + n);
      if (e.kind === 'zero' || e.access === 'NOACCESS') out.fill(0);
      else if (e.kind === 'flat') e.file!.read(e.flatOffset! + inExt, out);
      else {
        const s = e.sparse!;
        const grain = Math.floor(inExt / s.grainBytes);
        const inGrain = inExt - grain * s.grainBytes;
        n = Math.min(n, s.grainBytes - inGrain);
        const sub = buf.subarray(done, done + n);
        const pend = s.stream?.pending.get(grain);
        const ent = s.entry(grain);
        if (pend) sub.set(pend.data.subarray(inGrain, inGrain + n));
        else if (ent === 0) readBacking(this.backing, pos, sub);
        else if (ent === 1 && s.flags & FLAG_ZERO_GRAIN) sub.fill(0);
        else if (s.compressed) sub.set(s.grainData(grain, ent).subarray(inGrain, inGrain + n));
        else {
          if (ent * 512 + s.grainBytes > s.file.size + s.grainBytes) s.fail(`grain ${grain} lies beyond the end of the file`);
          s.file.read(ent * 512 + inGrain, sub);
        }
      }
      done += n;
    }
  }

  private updateCid(): void {
    if (this.cidUpdated) return;
    this.cidUpdated = true;
    // A new CID tells children made from this image that their parent has changed.
    const cid = (Math.floor(Math.random() * 0xfffffffe) >>> 0).toString(16).padStart(8, '0');
    const text = this.descriptor.replace(/^(\s*CID\s*=\s*)[0-9a-fA-F]+/m, `$1${cid}`);
    if (text === this.descriptor) return;
    const bytes = new TextEncoder().encode(text);
    if (this.embedded) {
      if (bytes.length > this.embedded.descriptorSize * 512) return;
      const padded = new Uint8Array(this.embedded.descriptorSize * 512);
      padded.set(bytes);
      this.descriptorFile.write(this.embedded.descriptorOffset * 512, padded);
    } else {
      this.descriptorFile.write(0, bytes);
      this.descriptorFile.truncate(bytes.length);
    }
    this.descriptor = text;
  }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) this.fail('image is open read-only');
    checkRange(this, offset, data.length);
    this.updateCid();
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const e = this.extentAt(pos);
      const inExt = pos - e.start;
      let n = Math.min(data.length - done, e.length - inExt);
      if (e.access !== 'RW') this.fail(`extent at ${e.start} is ${e.access}`);
      if (e.kind === 'zero') this.fail('writes to a ZERO extent are not possible');
      if (e.kind === 'flat') e.file!.write(e.flatOffset! + inExt, data, done, n);
      else {
        const s = e.sparse!;
        const grain = Math.floor(inExt / s.grainBytes);
        const inGrain = inExt - grain * s.grainBytes;
        n = Math.min(n, s.grainBytes - inGrain);
        if (s.stream) this.streamWrite(s, grain, inGrain, data.subarray(done, done + n));
        else this.sparseWrite(s, e, grain, inGrain, data.subarray(done, done + n));
      }
      done += n;
    }
  }

  private sparseWrite(s: SparseExtent, e: Extent, grain: number, inGrain: number, data: Uint8Array): void {
    if (s.compressed) s.fail('compressed extents are write-once');
    const ent = s.entry(grain);
    if (ent > 1 || (ent === 1 && !(s.flags & FLAG_ZERO_GRAIN))) {
      s.file.write(ent * 512 + inGrain, data);
      return;
    }
    const gi = Math.floor(grain / s.gtEntries);
    if (!s.gd[gi]) this.allocateGt(s, gi);
    let content: Uint8Array;
    if (data.length === s.grainBytes) content = data;
    else {
      content = new Uint8Array(s.grainBytes);
      if (ent === 0) readBacking(this.backing, e.start + grain * s.grainBytes, content);
      content.set(data, inGrain);
    }
    // Grain at the end of the file first, then the tables that point to it.
    const sector = Math.max(s.nextSector, Math.ceil(s.file.size / 512));
    s.file.write(sector * 512, content);
    s.nextSector = sector + s.grainSectors;
    const t = s.gt(gi)!;
    t[grain % s.gtEntries] = sector;
    const b = new Uint8Array(4);
    dv(b).setUint32(0, sector, true);
    const k = grain % s.gtEntries;
    if (s.rgd?.[gi]) s.file.write(s.rgd[gi] * 512 + k * 4, b);
    s.file.write(s.gd[gi] * 512 + k * 4, b);
  }

  private allocateGt(s: SparseExtent, gi: number): void {
    const gtSectors = Math.ceil((s.gtEntries * 4) / 512);
    const zero = new Uint8Array(gtSectors * 512);
    const put = (dirOffset: number, dir: Uint32Array): void => {
      const sector = Math.max(s.nextSector, Math.ceil(s.file.size / 512));
      s.file.write(sector * 512, zero);
      s.nextSector = sector + gtSectors;
      dir[gi] = sector;
      const b = new Uint8Array(4);
      dv(b).setUint32(0, sector, true);
      s.file.write(dirOffset * 512 + gi * 4, b);
    };
    if (s.rgd) put(s.rgdOffset, s.rgd);
    put(s.gdOffset, s.gd);
    s.gtCache.set(gi, new Uint32Array(s.gtEntries));
  }

  private streamWrite(s: SparseExtent, grain: number, inGrain: number, data: Uint8Array): void {
    const st = s.stream!;
    if (st.gts[grain]) s.fail(`streamOptimized images are write-once: grain ${grain} was already written`);
    let p = st.pending.get(grain);
    if (!p) {
      p = { data: new Uint8Array(s.grainBytes), covered: new Uint8Array(s.grainSectors), count: 0 };
      st.pending.set(grain, p);
    }
    p.data.set(data, inGrain);
    for (let q = Math.floor(inGrain / 512); q <= Math.floor((inGrain + data.length - 1) / 512); q++) {
      if (!p.covered[q]) {
        p.covered[q] = 1;
        p.count++;
      }
    }
    if (p.count === s.grainSectors) this.emitGrain(s, grain);
  }

  private emitGrain(s: SparseExtent, grain: number): void {
    const st = s.stream!;
    const p = st.pending.get(grain)!;
    st.pending.delete(grain);
    if (isZero(p.data)) return;
    const z = zlib.deflateSync(p.data, { level: 6 });
    const total = Math.ceil((12 + z.length) / 512) * 512;
    const rec = new Uint8Array(total);
    setU64LE(rec, 0, grain * s.grainSectors);
    dv(rec).setUint32(8, z.length, true);
    rec.set(z, 12);
    s.file.write(st.next * 512, rec);
    st.gts[grain] = st.next;
    st.next += total / 512;
  }

  private finishStream(s: SparseExtent): void {
    const st = s.stream!;
    for (const g of [...st.pending.keys()].sort((a, b) => a - b)) this.emitGrain(s, g);
    const marker = (sectors: number, type: number): Uint8Array => {
      const m = new Uint8Array(512);
      setU64LE(m, 0, sectors);
      dv(m).setUint32(12, type, true);
      return m;
    };
    const gtSectors = Math.ceil((s.gtEntries * 4) / 512);
    const gd = new Uint32Array(s.gd.length);
    for (let i = 0; i < s.gd.length; i++) {
      const t = st.gts.subarray(i * s.gtEntries, (i + 1) * s.gtEntries);
      if (!t.some((x) => x !== 0)) continue;
      s.file.write(st.next * 512, marker(gtSectors, MARKER_GT));
      st.next++;
      const b = new Uint8Array(gtSectors * 512);
      for (let k = 0; k < t.length; k++) dv(b).setUint32(k * 4, t[k], true);
      s.file.write(st.next * 512, b);
      gd[i] = st.next;
      st.next += gtSectors;
    }
    const gdSectors = Math.ceil((s.gd.length * 4) / 512);
    s.file.write(st.next * 512, marker(gdSectors, MARKER_GD));
    st.next++;
    const gdb = new Uint8Array(gdSectors * 512);
    for (let i = 0; i < gd.length; i++) dv(gdb).setUint32(i * 4, gd[i], true);
    s.file.write(st.next * 512, gdb);
    const gdOffset = st.next;
    st.next += gdSectors;
    s.file.write(st.next * 512, marker(1, MARKER_FOOTER));
    st.next++;
    const footer = s.file.readBytes(0, 512);
    setU64LE(footer, 56, gdOffset);
    s.file.write(st.next * 512, footer);
    st.next++;
    s.file.write(st.next * 512, marker(0, MARKER_EOS));
    st.next++;
    s.file.truncate(st.next * 512);
    s.stream = null;
    s.gd = gd;
    s.gdOffset = gdOffset;
    s.gtCache.clear();
  }

  flush(): void {
    for (const f of this.hostFiles()) f.sync();
  }

  private hostFiles(): HostFile[] {
    const set = new Set<HostFile>([this.descriptorFile]);
    for (const e of this.extents) if (e.file) set.add(e.file);
    return [...set];
  }

  close(): void {
    try {
      for (const e of this.extents) if (e.sparse?.stream) this.finishStream(e.sparse);
      if (!this.readOnly) this.flush();
    } finally {
      for (const f of this.hostFiles()) f.close();
      this.backing?.close();
    }
  }

  info(): ImageInfo {
    const s = this.extents.find((e) => e.sparse)?.sparse;
    return {
      path: this.path,
      format: 'vmdk',
      variant: this.createType || undefined,
      virtualSize: this.size,
      actualSize: this.hostFiles().reduce((a, f) => a + f.allocatedBytes(), 0),
      clusterSize: s ? s.grainBytes : undefined,
      backing: this.parentHint ? { path: this.parentHint, format: this.backing?.format ?? 'vmdk' } : undefined,
      specific: { cid: this.cid(), parentCid: this.field('parentCID'), extents: this.extents.map((e) => ({ kind: e.kind, file: e.file?.path, sectors: e.length / 512 })) },
    };
  }

  check(): CheckResult {
    const errors: string[] = [];
    let allocated = 0;
    let total = 0;
    for (const e of this.extents) {
      const s = e.sparse;
      if (!s || s.stream) continue;
      const grains = Math.ceil(e.length / s.grainBytes);
      total += grains;
      const seen = new Set<number>();
      for (let g = 0; g < grains; g++) {
        let ent: number;
        try {
          ent = s.entry(g);
        } catch (err) {
          errors.push((err as DiskError).fault ?? String(err));
          g += s.gtEntries - 1 - (g % s.gtEntries);
          continue;
        }
        if (ent === 0 || (ent === 1 && s.flags & FLAG_ZERO_GRAIN)) continue;
        allocated++;
        if (!s.compressed && ent * 512 + s.grainBytes > s.file.size) errors.push(`grain ${g} of ${nodePath.basename(s.file.path)} at sector ${ent} lies beyond the end of the file`);
        if (seen.has(ent)) errors.push(`grain ${g} of ${nodePath.basename(s.file.path)} shares sector ${ent} with another grain`);
        seen.add(ent);
      }
    }
    return { errors, leaks: 0, allocated, total };
  }

  blockStatus(offset: number, length: number): { status: BlockStatus; length: number } {
    const e = this.extentAt(offset);
    const limit = Math.min(offset + length, e.start + e.length);
    if (e.kind === 'zero') return { status: 'zero', length: limit - offset };
    if (e.kind === 'flat') return { status: 'data', length: limit - offset };
    const s = e.sparse!;
    const st = (pos: number): BlockStatus => {
      const g = Math.floor((pos - e.start) / s.grainBytes);
      if (s.stream?.pending.has(g)) return 'data';
      const ent = s.entry(g);
      return ent === 0 ? 'unallocated' : ent === 1 && s.flags & FLAG_ZERO_GRAIN ? 'zero' : 'data';
    };
    const first = st(offset);
    let end = Math.min(e.start + (Math.floor((offset - e.start) / s.grainBytes) + 1) * s.grainBytes, limit);
    while (end < limit && st(end) === first) end = Math.min(end + s.grainBytes, limit);
    return { status: first, length: end - offset };
  }

  files(): string[] {
    return [this.path, ...new Set(this.extents.filter((e) => e.file && e.file.path !== this.path).map((e) => e.file!.path))];
  }

  resize(): void {
    this.fail('resizing VMDK images is not supported; convert to a new size instead');
  }
}

/** Writes an empty hosted sparse extent (with an embedded descriptor when given). */
function writeSparseExtent(path: string, sectors: number, descriptor: string | null, stream: boolean): void {
  const grainSectors = 128;
  const gtEntries = 512;
  const gdEntries = Math.max(1, Math.ceil(sectors / (grainSectors * gtEntries)));
  const gdSectors = Math.ceil((gdEntries * 4) / 512);
  const gtSectors = Math.ceil((gtEntries * 4) / 512);
  const descSectors = descriptor ? 20 : 0;
  const desc = descriptor ? new TextEncoder().encode(descriptor) : new Uint8Array(0);
  if (desc.length > descSectors * 512) throw new DiskError(path, 'descriptor is too large');
  const h = new Uint8Array(512);
  const v = dv(h);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, stream ? 3 : 1, true);
  v.setUint32(8, stream ? FLAG_NL_TEST | FLAG_COMPRESSED | FLAG_MARKERS : FLAG_NL_TEST | FLAG_RGD, true);
  setU64LE(h, 12, sectors);
  setU64LE(h, 20, grainSectors);
  setU64LE(h, 28, descriptor ? 1 : 0);
  setU64LE(h, 36, descSectors);
  v.setUint32(44, gtEntries, true);
  h[73] = 0x0a;
  h[74] = 0x20;
  h[75] = 0x0d;
  h[76] = 0x0a;
  const f = new HostFile(path, true, 'create');
  try {
    if (stream) {
      // Empty stream: header (GD at end), descriptor, one GD of zero entries, footer, EOS.
      v.setUint16(77, 1, true);
      h.fill(0xff, 56, 64);
      f.write(0, h);
      const padded = new Uint8Array(descSectors * 512);
      padded.set(desc);
      f.write(512, padded);
      let next = 128;
      const marker = (n: number, type: number): Uint8Array => {
        const m = new Uint8Array(512);
        setU64LE(m, 0, n);
        dv(m).setUint32(12, type, true);
        return m;
      };
      f.write(next * 512, marker(gdSectors, MARKER_GD));
      next++;
      f.write(next * 512, new Uint8Array(gdSectors * 512));
      const gdOffset = next;
      next += gdSectors;
      f.write(next * 512, marker(1, MARKER_FOOTER));
      next++;
      const footer = h.slice();
      setU64LE(footer, 56, gdOffset);
      f.write(next * 512, footer);
      next++;
      f.write(next * 512, marker(0, MARKER_EOS));
      f.sync();
      return;
    }
    const rgd = 1 + descSectors;
    const rgts = rgd + gdSectors;
    const gd = rgts + gdEntries * gtSectors;
    const gts = gd + gdSectors;
    const overhead = Math.ceil((gts + gdEntries * gtSectors) / grainSectors) * grainSectors;
    setU64LE(h, 48, rgd);
    setU64LE(h, 56, gd);
    setU64LE(h, 64, overhead);
    f.write(0, h);
    if (descriptor) {
      const padded = new Uint8Array(descSectors * 512);
      padded.set(desc);
      f.write(512, padded);
    }
    const dir = (first: number): Uint8Array => {
      const b = new Uint8Array(gdSectors * 512);
      for (let i = 0; i < gdEntries; i++) dv(b).setUint32(i * 4, first + i * gtSectors, true);
      return b;
    };
    f.write(rgd * 512, dir(rgts));
    f.write(gd * 512, dir(gts));
    f.truncate(overhead * 512);
    f.sync();
  } finally {
    f.close();
  }
}

void MARKER_EOS;
void ascii;
