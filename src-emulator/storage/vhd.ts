import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { DiskError } from './block-device';
import { randomUuidBytes, readBacking, uuidToString, vhdGeometry, type BlockStatus, type CheckResult, type DiskImage, type ImageInfo } from './disk-image';
import { HostFile, ascii, dv, getU64BE, setU64BE } from './host-file';
import type { CreateOptions, OpenContext } from './open';
import { checkRange } from './raw';

const FIXED = 2;
const DYNAMIC = 3;
const DIFF = 4;
const UNUSED = 0xffffffff;
const VHD_EPOCH = 946684800; // 2000-01-01T00:00:00Z
const MAX_GEOMETRY_SECTORS = 65535 * 16 * 255;
const MAX_SECTORS = 0xff000000; // 2040 GiB, the format's practical limit
const MAX_BAT_ENTRIES = 16 * 1024 * 1024;
const MAX_ZERO = 4 * 1024 * 1024;

export function vhdChecksum(b: Uint8Array, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < b.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += b[i];
  return ~sum >>> 0;
}

/**
 * Microsoft's VHD (Virtual PC, Hyper-V, VirtualBox): fixed (raw data + 512-byte footer), dynamic
 * and differencing (footer copy, dynamic header, BAT of 32-bit sector offsets, blocks each led by
 * a sector bitmap). The virtual size follows qemu's reading of the footer: CHS geometry for
 * creators that size disks by geometry (Virtual PC), the footer's current size otherwise.
 */
export class VhdImage implements DiskImage {
  readonly format = 'vhd' as const;
  readonly path: string;
  readonly readOnly: boolean;
  backing: DiskImage | null = null;
  size = 0;
  private footer!: Uint8Array;
  private dyn: Uint8Array | null = null;
  private type = FIXED;
  private batOffset = 0;
  private bat = new Uint32Array(0);
  private blockSize = 0;
  private bitmapSize = 0;
  /** Next free sector for a new block (where the footer sits now). */
  private nextSector = 0;
  private bitmaps = new Map<number, Uint8Array>();
  private parentName = '';

  private constructor(private readonly file: HostFile, readOnly: boolean) {
    this.path = file.path;
    this.readOnly = readOnly;
  }

  private fail(fault: string): never {
    throw new DiskError(this.path, fault);
  }

  static open(file: HostFile, ctx: OpenContext): VhdImage {
    const img = new VhdImage(file, ctx.readOnly);
    img.parse();
    if (img.type === DIFF && !ctx.noBacking) img.openParent(ctx);
    return img;
  }

  private validFooter(b: Uint8Array): boolean {
    return ascii(b, 0, 8) === 'conectix' && dv(b).getUint32(64) === vhdChecksum(b, 64);
  }

  private parse(): void {
    const f = this.file;
    if (f.size < 512) this.fail('VHD footer is truncated');
    const end = f.readBytes(f.size - 512, 512);
    const start = f.readBytes(0, 512);
    // The end footer is authoritative; a dynamic disk's copy at offset 0 covers a crash that
    // left the end mid-way through appending a block.
    if (this.validFooter(end)) this.footer = end;
    else if (this.validFooter(start)) this.footer = start;
    else if (ascii(end, 0, 8) === 'conectix' || ascii(start, 0, 8) === 'conectix') this.fail('VHD footer checksum mismatch');
    else this.fail('not a VHD image (no footer)');
    const v = dv(this.footer);
    this.type = v.getUint32(60);
    if (![FIXED, DYNAMIC, DIFF].includes(this.type)) this.fail(`unknown VHD disk type ${this.type}`);
    const currentSize = getU64BE(this.footer, 48);
    const chs = v.getUint16(56) * this.footer[58] * this.footer[59];
    const creator = ascii(this.footer, 28, 4);
    const useChs = !['win ', 'qem2', 'd2v ', 'CTXS', 'tap\0'].includes(creator);
    this.size = useChs && chs !== MAX_GEOMETRY_SECTORS ? chs * 512 : currentSize;
    if (!Number.isSafeInteger(this.size) || this.size > MAX_SECTORS * 512) this.fail(`invalid virtual size ${this.size}`);
    if (this.type === FIXED) {
      if (this.footer !== end) this.fail('fixed VHD has no valid footer at its end');
      if (this.size > f.size - 512) this.fail(`virtual size ${this.size} exceeds the data in the file`);
      return;
    }
    const dataOffset = getU64BE(this.footer, 16);
    if (dataOffset % 512 !== 0 || dataOffset + 1024 > f.size) this.fail(`dynamic header offset ${dataOffset} is invalid`);
    const d = f.readBytes(dataOffset, 1024);
    const dvv = dv(d);
    if (ascii(d, 0, 8) !== 'cxsparse') this.fail('dynamic disk header is missing (bad cookie)');
    if (dvv.getUint32(36) !== vhdChecksum(d, 36)) this.fail('dynamic disk header checksum mismatch');
    this.dyn = d;
    this.batOffset = getU64BE(d, 16);
    const entries = dvv.getUint32(28);
    this.blockSize = dvv.getUint32(32);
    if (this.blockSize < 512 || this.blockSize % 512 !== 0 || this.blockSize > 256 * 1024 * 1024 || (this.blockSize & (this.blockSize - 1)) !== 0) this.fail(`invalid block size ${this.blockSize}`);
    if (entries > MAX_BAT_ENTRIES || entries * this.blockSize < this.size) this.fail(`BAT of ${entries} entries does not cover the disk`);
    if (this.batOffset % 512 !== 0 || this.batOffset + entries * 4 > f.size) this.fail('BAT lies beyond the end of the file');
    this.bitmapSize = Math.ceil(this.blockSize / 512 / 8 / 512) * 512;
    const raw = f.readBytes(this.batOffset, entries * 4);
    const rv = dv(raw);
    this.bat = new Uint32Array(entries);
    let next = Math.ceil((this.batOffset + entries * 4) / 512);
    const blockSectors = (this.bitmapSize + this.blockSize) / 512;
    for (let i = 0; i < entries; i++) {
      const e = rv.getUint32(i * 4);
      this.bat[i] = e;
      if (e !== UNUSED) next = Math.max(next, e + blockSectors);
    }
    // Parent locators also occupy space after the BAT.
    for (let k = 0; k < 8; k++) {
      const o = 576 + k * 24;
      const code = dvv.getUint32(o);
      if (!code) continue;
      const space = dvv.getUint32(o + 4);
      const loc = getU64BE(d, o + 16);
      const bytes = space < 512 ? space * 512 : space;
      if (loc % 512 === 0 && loc < f.size) next = Math.max(next, Math.ceil((loc + bytes) / 512));
    }
    this.nextSector = next;
    if (this.type === DIFF) {
      const nameBytes = d.subarray(64, 576);
      let s = '';
      for (let i = 0; i + 1 < nameBytes.length; i += 2) {
        const c = (nameBytes[i] << 8) | nameBytes[i + 1];
        if (!c) break;
        s += String.fromCharCode(c);
      }
      this.parentName = s;
    }
  }

  private parentCandidates(): string[] {
    const d = this.dyn!;
    const v = dv(d);
    const out: string[] = [];
    for (const want of ['W2ru', 'W2ku', 'MacX']) {
      for (let k = 0; k < 8; k++) {
        const o = 576 + k * 24;
        if (ascii(d, o, 4) !== want) continue;
        const len = v.getUint32(o + 8);
        const loc = getU64BE(d, o + 16);
        if (len === 0 || len > 4096 || loc + len > this.file.size) continue;
        const raw = this.file.readBytes(loc, len);
        let p = want === 'MacX' ? new TextDecoder().decode(raw).replace(/^file:\/\//, '') : new TextDecoder('utf-16le').decode(raw);
        p = p.replace(/\0+$/, '');
        if (want !== 'MacX') {
          p = p.replace(/\\/g, '/');
          if (/^[A-Za-z]:\//.test(p)) p = p.slice(2);
        }
        out.push(p);
      }
    }
    if (this.parentName) out.push(nodePath.basename(this.parentName.replace(/\\/g, '/')));
    return out;
  }

  private openParent(ctx: OpenContext): void {
    const dir = nodePath.dirname(this.path);
    const tried: string[] = [];
    for (const c of this.parentCandidates()) {
      const p = nodePath.isAbsolute(c) ? c : nodePath.join(dir, c);
      tried.push(c);
      if (!fs.existsSync(p)) continue;
      const parent = ctx.openBacking(this.path, c);
      if (parent.format !== 'vhd') {
        parent.close();
        this.fail(`parent '${c}' is a ${parent.format} image; a VHD differencing disk needs a VHD parent`);
      }
      const want = uuidToString(this.dyn!, 40);
      const got = (parent as VhdImage).uniqueId();
      if (want !== got) {
        parent.close();
        this.fail(`parent '${c}' has unique id ${got}, but this differencing disk belongs to ${want}`);
      }
      this.backing = parent;
      return;
    }
    this.fail(`parent disk not found (tried ${tried.map((t) => `'${t}'`).join(', ') || 'no locator'})`);
  }

  uniqueId(): string {
    return uuidToString(this.footer, 68);
  }

  static create(path: string, size: number, opts: CreateOptions): void {
    const fixed = opts.variant === 'fixed';
    if (opts.variant && !['dynamic', 'fixed', 'differencing'].includes(opts.variant)) throw new DiskError(path, `unknown VHD variant '${opts.variant}'`);
    let parent: { footer: Uint8Array; ref: string; abs: string } | null = null;
    if (opts.backing) {
      if (fixed) throw new DiskError(path, 'a fixed VHD cannot have a parent');
      const abs = nodePath.resolve(nodePath.dirname(path), opts.backing);
      const pf = new HostFile(abs, false);
      try {
        const end = pf.readBytes(pf.size - 512, 512);
        const start = pf.readBytes(0, 512);
        const ft = ascii(end, 0, 8) === 'conectix' ? end : ascii(start, 0, 8) === 'conectix' ? start : null;
        if (!ft) throw new DiskError(path, `parent '${opts.backing}' is not a VHD (a VHD differencing disk needs a VHD parent)`);
        parent = { footer: ft, ref: opts.backing, abs };
        size = (() => {
          const v = dv(ft);
          const chs = v.getUint16(56) * ft[58] * ft[59];
          const creator = ascii(ft, 28, 4);
          const useChs = !['win ', 'qem2', 'd2v ', 'CTXS', 'tap\0'].includes(creator);
          return useChs && chs !== MAX_GEOMETRY_SECTORS ? chs * 512 : getU64BE(ft, 48);
        })();
      } finally {
        pf.close();
      }
    }
    // Round the size up to a whole CHS geometry, as qemu does, so Virtual PC, Hyper-V, VirtualBox
    // and qemu all agree on it; beyond the CHS range the footer's current size rules.
    let total = Math.ceil(size / 512);
    let g = vhdGeometry(total);
    if (total <= MAX_GEOMETRY_SECTORS) {
      for (let i = 0; g.cylinders * g.heads * g.sectors < total; i++) g = vhdGeometry(total + i);
      if (g.cylinders * g.heads * g.sectors !== MAX_GEOMETRY_SECTORS) total = g.cylinders * g.heads * g.sectors;
    }
    if (total > MAX_SECTORS) throw new DiskError(path, `VHD images cannot exceed 2040 GiB`);
    const bytes = total * 512;
    const footer = new Uint8Array(512);
    const fv = dv(footer);
    footer.set(new TextEncoder().encode('conectix'), 0);
    fv.setUint32(8, 2);
    fv.setUint32(12, 0x00010000);
    if (fixed) setU64BE(footer, 16, Number.MAX_SAFE_INTEGER);
    else setU64BE(footer, 16, 512);
    if (fixed) footer.fill(0xff, 16, 24);
    fv.setUint32(24, Math.max(0, Math.floor(Date.now() / 1000) - VHD_EPOCH));
    footer.set(new TextEncoder().encode('bxwd'), 28);
    fv.setUint32(32, 0x00010000);
    footer.set(new TextEncoder().encode('Wi2k'), 36);
    setU64BE(footer, 40, bytes);
    setU64BE(footer, 48, bytes);
    fv.setUint16(56, g.cylinders);
    footer[58] = g.heads;
    footer[59] = g.sectors;
    fv.setUint32(60, fixed ? FIXED : parent ? DIFF : DYNAMIC);
    footer.set(randomUuidBytes(), 68);
    fv.setUint32(64, vhdChecksum(footer, 64));

    const f = new HostFile(path, true, 'create');
    try {
      if (fixed) {
        f.truncate(bytes);
        f.write(bytes, footer);
        f.sync();
        return;
      }
      const blockSize = opts.blockSize ?? (parent ? 2 * 1024 * 1024 : 2 * 1024 * 1024);
      if (blockSize < 512 || (blockSize & (blockSize - 1)) !== 0) throw new DiskError(path, `invalid VHD block size ${blockSize}`);
      const entries = Math.ceil(bytes / blockSize);
      const batOffset = 1536;
      const batBytes = Math.ceil((entries * 4) / 512) * 512;
      const dyn = new Uint8Array(1024);
      const dvv = dv(dyn);
      dyn.set(new TextEncoder().encode('cxsparse'), 0);
      dyn.fill(0xff, 8, 16);
      setU64BE(dyn, 16, batOffset);
      dvv.setUint32(24, 0x00010000);
      dvv.setUint32(28, entries);
      dvv.setUint32(32, blockSize);
      let end = batOffset + batBytes;
      const locators: [string, Uint8Array][] = [];
      if (parent) {
        dyn.set(parent.footer.subarray(68, 84), 40);
        dvv.setUint32(56, dv(parent.footer).getUint32(24));
        const name = nodePath.basename(parent.ref);
        for (let i = 0; i < Math.min(name.length, 256); i++) dvv.setUint16(64 + i * 2, name.charCodeAt(i));
        const rel = nodePath.relative(nodePath.dirname(nodePath.resolve(path)), parent.abs);
        const utf16 = (s: string): Uint8Array => {
          const b = new Uint8Array(s.length * 2);
          for (let i = 0; i < s.length; i++) dv(b).setUint16(i * 2, s.charCodeAt(i), true);
          return b;
        };
        locators.push(['W2ru', utf16('.\\' + rel.replace(/\//g, '\\'))]);
        locators.push(['W2ku', utf16(parent.abs.replace(/\//g, '\\'))]);
        locators.forEach(([code, data], k) => {
          const o = 576 + k * 24;
          const space = Math.ceil(data.length / 512) * 512;
          dyn.set(new TextEncoder().encode(code), o);
          dvv.setUint32(o + 4, space);
          dvv.setUint32(o + 8, data.length);
          setU64BE(dyn, o + 16, end);
          end += space;
        });
      }
      dvv.setUint32(36, vhdChecksum(dyn, 36));
      f.write(0, footer);
      f.write(512, dyn);
      f.write(batOffset, new Uint8Array(batBytes).fill(0xff));
      let p = batOffset + batBytes;
      for (const [, data] of locators) {
        const space = Math.ceil(data.length / 512) * 512;
        const padded = new Uint8Array(space);
        padded.set(data);
        f.write(p, padded);
        p += space;
      }
      f.write(end, footer);
      f.sync();
    } finally {
      f.close();
    }
  }

  // ------------------------------------------------------------------ data

  private bitmap(b: number): Uint8Array {
    let bm = this.bitmaps.get(b);
    if (!bm) {
      bm = this.file.readBytes(this.bat[b] * 512, this.bitmapSize);
      if (this.bitmaps.size > 4096) this.bitmaps.clear();
      this.bitmaps.set(b, bm);
    }
    return bm;
  }

  read(offset: number, buf: Uint8Array): void {
    checkRange(this, offset, buf.length);
    if (this.type === FIXED) {
      this.file.read(offset, buf);
      return;
    }
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const b = Math.floor(pos / this.blockSize);
      const inOff = pos - b * this.blockSize;
      let n = Math.min(buf.length - done, this.blockSize - inOff);
      const e = this.bat[b];
      if (e === UNUSED) {
        if (this.type === DIFF) readBacking(this.backing, pos, buf.subarray(done, done + n));
        else buf.fill(0, done, done + n);
      } else {
        // Within an allocated block, sectors whose bitmap bit is clear are not in this layer.
        const bm = this.bitmap(b);
        const sector = Math.floor(inOff / 512);
        const present = (bm[sector >> 3] >> (7 - (sector & 7))) & 1;
        let run = Math.min(n, 512 - (inOff % 512));
        for (let s = sector + 1; run < n; s++) {
          if (((bm[s >> 3] >> (7 - (s & 7))) & 1) !== present) break;
          run = Math.min(n, run + 512);
        }
        n = run;
        if (present) this.file.read(e * 512 + this.bitmapSize + inOff, buf, done, n);
        else if (this.type === DIFF) readBacking(this.backing, pos, buf.subarray(done, done + n));
        else buf.fill(0, done, done + n);
      }
      done += n;
    }
  }

  private writeFooterAt(pos: number): void {
    this.file.write(pos, this.footer);
  }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) this.fail('image is open read-only');
    checkRange(this, offset, data.length);
    if (this.type === FIXED) {
      this.file.write(offset, data);
      return;
    }
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const b = Math.floor(pos / this.blockSize);
      const inOff = pos - b * this.blockSize;
      const n = Math.min(data.length - done, this.blockSize - inOff);
      if (this.bat[b] === UNUSED) this.allocate(b);
      const bm = this.bitmap(b);
      const host = this.bat[b] * 512 + this.bitmapSize;
      const s0 = Math.floor(inOff / 512);
      const s1 = Math.floor((inOff + n - 1) / 512);
      const has = (s: number): boolean => ((bm[s >> 3] >> (7 - (s & 7))) & 1) === 1;
      // Partial sectors not yet in this layer take their other bytes from below first.
      if (this.type === DIFF) {
        for (const s of s0 === s1 ? [s0] : [s0, s1]) {
          if (has(s)) continue;
          const sStart = s * 512;
          if (inOff <= sStart && inOff + n >= sStart + 512) continue;
          const sec = new Uint8Array(512);
          readBacking(this.backing, b * this.blockSize + sStart, sec);
          this.file.write(host + sStart, sec);
        }
      }
      this.file.write(host + inOff, data, done, n);
      let changed = false;
      for (let s = s0; s <= s1; s++) {
        if (!has(s)) {
          bm[s >> 3] |= 0x80 >> (s & 7);
          changed = true;
        }
      }
      if (changed) {
        const first = s0 >> 3;
        const last = s1 >> 3;
        this.file.write(this.bat[b] * 512 + first, bm, first, last - first + 1);
      }
      done += n;
    }
  }

  private allocate(b: number): void {
    const sector = this.nextSector;
    const blockSectors = (this.bitmapSize + this.blockSize) / 512;
    if (sector + blockSectors > 0xfffffffe) this.fail('the image has grown beyond what a VHD can address');
    // The footer moves first, to just past the new block, so the file always ends in a valid
    // footer; then the block's bitmap replaces the old footer; the BAT entry comes last. A kill in
    // between leaves at most an unreferenced block, which the next allocation reuses.
    const bm = new Uint8Array(this.bitmapSize);
    if (this.type === DYNAMIC) bm.fill(0xff);
    const stale = this.file.size > sector * 512 + 512;
    const footerPos = (sector + blockSectors) * 512;
    this.writeFooterAt(footerPos);
    if (this.file.size > footerPos + 512) this.file.truncate(footerPos + 512);
    // Data a crashed allocation left here must not show through in the new block.
    if (stale) for (let p = sector * 512; p < footerPos; p += MAX_ZERO) this.file.write(p, new Uint8Array(Math.min(MAX_ZERO, footerPos - p)));
    this.file.write(sector * 512, bm);
    const e = new Uint8Array(4);
    dv(e).setUint32(0, sector);
    this.file.write(this.batOffset + b * 4, e);
    this.bat[b] = sector;
    this.bitmaps.set(b, bm);
    this.nextSector = sector + blockSectors;
  }

  flush(): void {
    this.file.sync();
  }

  close(): void {
    try {
      if (!this.readOnly) {
        if (this.type !== FIXED && this.file.size > (this.nextSector + 1) * 512) this.file.truncate((this.nextSector + 1) * 512);
        this.file.sync();
      }
    } finally {
      this.file.close();
      this.backing?.close();
    }
  }

  info(): ImageInfo {
    const v = dv(this.footer);
    return {
      path: this.path,
      format: 'vhd',
      variant: this.type === FIXED ? 'fixed' : this.type === DIFF ? 'differencing' : 'dynamic',
      virtualSize: this.size,
      actualSize: this.file.allocatedBytes(),
      clusterSize: this.type === FIXED ? undefined : this.blockSize,
      backing: this.type === DIFF ? { path: this.backing?.path ?? this.parentName, format: 'vhd' } : undefined,
      specific: {
        creator: ascii(this.footer, 28, 4),
        geometry: { cylinders: v.getUint16(56), heads: this.footer[58], sectors: this.footer[59] },
        currentSize: getU64BE(this.footer, 48),
        uniqueId: this.uniqueId(),
      },
    };
  }

  check(repair = false): CheckResult {
    const errors: string[] = [];
    if (this.type === FIXED) return { errors, leaks: 0 };
    const blockSectors = (this.bitmapSize + this.blockSize) / 512;
    const tail = this.file.readBytes(this.file.size - 512, 512);
    // Blocks end before the footer; when the footer is gone, before the end of the file.
    const dataEnd = this.validFooter(tail) ? this.file.size - 512 : this.file.size;
    const seen = new Map<number, number>();
    let allocated = 0;
    const end = Math.ceil((this.batOffset + this.bat.length * 4) / 512);
    for (let b = 0; b < this.bat.length; b++) {
      const e = this.bat[b];
      if (e === UNUSED) continue;
      allocated++;
      if (e < end) errors.push(`block ${b} at sector ${e} overlaps the headers or BAT`);
      if ((e + blockSectors) * 512 > dataEnd) errors.push(`block ${b} at sector ${e} runs past the end of the file`);
      for (const [o, ob] of seen) if (Math.abs(o - e) < blockSectors) errors.push(`blocks ${ob} and ${b} overlap`);
      if (seen.size < 4096) seen.set(e, b);
    }
    if (!this.validFooter(tail)) {
      // The copy at offset 0 describes the same disk: put it back at the end.
      if (repair && !this.readOnly && errors.length === 0) {
        if (this.file.size > this.nextSector * 512) this.file.truncate(this.nextSector * 512);
        this.writeFooterAt(this.nextSector * 512);
        this.file.sync();
        return { errors, leaks: 0, allocated, total: this.bat.length, repaired: 1 };
      }
      errors.push('the footer at the end of the file is missing or damaged');
    }
    return { errors, leaks: 0, allocated, total: this.bat.length };
  }

  blockStatus(offset: number, length: number): { status: BlockStatus; length: number } {
    const limit = Math.min(offset + length, this.size);
    if (this.type === FIXED) return { status: 'data', length: limit - offset };
    const st = (b: number): BlockStatus => (this.bat[b] === UNUSED ? 'unallocated' : 'data');
    const b0 = Math.floor(offset / this.blockSize);
    const s = st(b0);
    let end = Math.min((b0 + 1) * this.blockSize, limit);
    while (end < limit && st(Math.floor(end / this.blockSize)) === s) end = Math.min(end + this.blockSize, limit);
    return { status: s, length: end - offset };
  }

  files(): string[] {
    return [this.path];
  }

  resize(newSize: number): void {
    if (this.readOnly) this.fail('image is open read-only');
    if (newSize < this.size) this.fail('shrinking a VHD image is not supported');
    if (this.type !== FIXED && Math.ceil(newSize / this.blockSize) > this.bat.length) this.fail('the BAT has no room to grow; convert the image instead');
    const total = Math.ceil(newSize / 512);
    const g = vhdGeometry(total);
    const v = dv(this.footer);
    setU64BE(this.footer, 48, total * 512);
    v.setUint16(56, g.cylinders);
    this.footer[58] = g.heads;
    this.footer[59] = g.sectors;
    // Hyper-V's size rule from now on: the geometry cannot express every size.
    this.footer.set(new TextEncoder().encode('win '), 28);
    v.setUint32(64, vhdChecksum(this.footer, 64));
    if (this.type === FIXED) {
      this.file.truncate(total * 512);
      this.writeFooterAt(total * 512);
    } else {
      this.writeFooterAt(0);
      this.writeFooterAt(this.nextSector * 512);
    }
    this.size = total * 512;
  }
}
