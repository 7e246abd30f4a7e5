import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { DiskError } from './block-device';
import { randomUuidBytes, readBacking, uuidToString, type BlockStatus, type CheckResult, type DiskImage, type ImageInfo } from './disk-image';
import { HostFile, dv, getU64LE, setU64LE } from './host-file';
import type { CreateOptions, OpenContext } from './open';
import { checkRange } from './raw';

const SIGNATURE = 0xbeda107f;
const VERSION_1_1 = 0x00010001;
const TYPE_DYNAMIC = 1;
const TYPE_FIXED = 2;
const TYPE_UNDO = 3;
const TYPE_DIFF = 4;
const FREE = 0xffffffff;
const ZERO = 0xfffffffe;
const HEADER_TEXT = '<<< Oracle VM VirtualBox Disk Image >>>\n';
/** Where Boxwood notes a differencing image's parent; VirtualBox keeps it in its registry instead. */
const PARENT_HINT = 'boxwood-parent:';
const MAX_BLOCKS = 64 * 1024 * 1024;

/**
 * VirtualBox's VDI: a header, a block map of 32-bit entries, then blocks (1 MiB by default).
 * Dynamic images allocate blocks at the end; fixed ones have all blocks in place; differencing
 * images fall through to a parent identified by UUID (the path is not stored, so we look for a
 * hint in the comment field and then for a sibling file with that UUID).
 */
export class VdiImage implements DiskImage {
  readonly format = 'vdi' as const;
  readonly path: string;
  readonly readOnly: boolean;
  backing: DiskImage | null = null;
  size = 0;
  private type = TYPE_DYNAMIC;
  private offBlocks = 0;
  private offData = 0;
  private blockSize = 0;
  private blockExtra = 0;
  private nBlocks = 0;
  private nAllocated = 0;
  private header!: Uint8Array;
  private bmap!: Uint32Array;
  private parentRef: string | null = null;
  private modifiedThisSession = false;

  private constructor(private readonly file: HostFile, readOnly: boolean) {
    this.path = file.path;
    this.readOnly = readOnly;
  }

  private fail(fault: string): never {
    throw new DiskError(this.path, fault);
  }

  static open(file: HostFile, ctx: OpenContext): VdiImage {
    const img = new VdiImage(file, ctx.readOnly);
    img.parse();
    if (img.type === TYPE_DIFF && !ctx.noBacking) img.openParent(ctx);
    return img;
  }

  private parse(): void {
    const f = this.file;
    if (f.size < 0x1c8) this.fail('VDI header is truncated');
    const h = f.readBytes(0, 0x200);
    const v = dv(h);
    if (v.getUint32(0x40, true) !== SIGNATURE) this.fail('not a VDI image (bad signature)');
    const version = v.getUint32(0x44, true);
    if (version >> 16 !== 1) this.fail(`unsupported VDI version ${version >> 16}.${version & 0xffff}`);
    const cbHeader = v.getUint32(0x48, true);
    if (cbHeader < 0x180 || cbHeader > 0x200 - 0x48) this.fail(`invalid VDI header size ${cbHeader}`);
    this.header = h;
    this.type = v.getUint32(0x4c, true);
    if (this.type === TYPE_UNDO) this.fail('VDI undo images are not supported');
    if (![TYPE_DYNAMIC, TYPE_FIXED, TYPE_DIFF].includes(this.type)) this.fail(`unknown VDI image type ${this.type}`);
    this.offBlocks = v.getUint32(0x154, true);
    this.offData = v.getUint32(0x158, true);
    const sectorSize = v.getUint32(0x168, true);
    if (sectorSize !== 512 && sectorSize !== 0) this.fail(`unsupported sector size ${sectorSize}`);
    this.size = getU64LE(h, 0x170);
    this.blockSize = v.getUint32(0x178, true);
    this.blockExtra = v.getUint32(0x17c, true);
    this.nBlocks = v.getUint32(0x180, true);
    this.nAllocated = v.getUint32(0x184, true);
    if (this.blockSize < 512 || this.blockSize % 512 !== 0 || this.blockSize > 256 * 1024 * 1024) this.fail(`invalid block size ${this.blockSize}`);
    if (this.blockExtra % 512 !== 0 || this.blockExtra > 256 * 1024 * 1024) this.fail(`invalid block extra size ${this.blockExtra}`);
    if (!Number.isSafeInteger(this.size) || this.size > 2 ** 52) this.fail(`invalid disk size ${this.size}`);
    if (this.nBlocks > MAX_BLOCKS || this.nBlocks * this.blockSize < this.size) this.fail(`block count ${this.nBlocks} does not cover the disk size ${this.size}`);
    if (this.offBlocks < 0x1c8 || this.offBlocks % 512 !== 0) this.fail(`invalid block map offset ${this.offBlocks}`);
    if (this.offBlocks + this.nBlocks * 4 > f.size) this.fail('block map lies beyond the end of the file');
    if (this.offData < this.offBlocks + this.nBlocks * 4 || this.offData % 512 !== 0) this.fail(`invalid data offset ${this.offData}`);
    if (this.nAllocated > this.nBlocks) this.fail(`allocated block count ${this.nAllocated} exceeds ${this.nBlocks} blocks`);
    const raw = f.readBytes(this.offBlocks, this.nBlocks * 4);
    const rv = dv(raw);
    this.bmap = new Uint32Array(this.nBlocks);
    for (let i = 0; i < this.nBlocks; i++) this.bmap[i] = rv.getUint32(i * 4, true);
    const comment = new TextDecoder().decode(h.subarray(0x54, 0x154)).replace(/\0.*$/s, '');
    if (comment.startsWith(PARENT_HINT)) this.parentRef = comment.slice(PARENT_HINT.length);
  }

  private uuid(off: number): string {
    return uuidToString(this.header, off);
  }

  private openParent(ctx: OpenContext): void {
    const want = this.uuid(0x1a8);
    const dir = nodePath.dirname(this.path);
    const candidates: string[] = [];
    if (this.parentRef) candidates.push(this.parentRef);
    try {
      for (const name of fs.readdirSync(dir).slice(0, 2000)) {
        if (nodePath.join(dir, name) !== this.path && !candidates.includes(name)) candidates.push(name);
      }
    } catch {
      /* an unreadable directory just means no candidates */
    }
    for (const c of candidates) {
      const p = nodePath.isAbsolute(c) ? c : nodePath.join(dir, c);
      if (c !== this.parentRef && readVdiUuid(p) !== want) continue;
      if (c === this.parentRef && !fs.existsSync(p)) continue;
      const parent = ctx.openBacking(this.path, c);
      if (parent.format !== 'vdi') {
        parent.close();
        this.fail(`parent '${c}' is a ${parent.format} image, a VDI differencing image needs a VDI parent`);
      }
      const got = (parent as VdiImage).uuid(0x188);
      if (got !== want) {
        parent.close();
        this.fail(`parent '${c}' has UUID ${got}, but this differencing image belongs to ${want}`);
      }
      this.backing = parent;
      return;
    }
    this.fail(`parent image with UUID ${want} not found next to the image`);
  }

  static create(path: string, size: number, opts: CreateOptions): void {
    const blockSize = opts.blockSize ?? 1024 * 1024;
    if (blockSize < 512 || blockSize % 512 !== 0) throw new DiskError(path, `invalid VDI block size ${blockSize}`);
    const fixed = opts.variant === 'fixed';
    if (opts.variant && !['dynamic', 'fixed', 'differencing'].includes(opts.variant)) throw new DiskError(path, `unknown VDI variant '${opts.variant}'`);
    const nBlocks = Math.ceil(size / blockSize);
    const h = new Uint8Array(0x200);
    const v = dv(h);
    h.set(new TextEncoder().encode(HEADER_TEXT), 0);
    v.setUint32(0x40, SIGNATURE, true);
    v.setUint32(0x44, VERSION_1_1, true);
    v.setUint32(0x48, 0x190, true);
    let type = fixed ? TYPE_FIXED : TYPE_DYNAMIC;
    if (opts.backing) {
      if (fixed) throw new DiskError(path, 'a fixed VDI cannot have a parent');
      const parentPath = nodePath.isAbsolute(opts.backing) ? opts.backing : nodePath.join(nodePath.dirname(path), opts.backing);
      const ph = readVdiHeader(parentPath);
      if (!ph) throw new DiskError(path, `parent '${opts.backing}' is not a VDI image (VDI differencing images need a VDI parent)`);
      type = TYPE_DIFF;
      h.set(ph.subarray(0x188, 0x198), 0x1a8); // linkage = parent's creation UUID
      h.set(ph.subarray(0x198, 0x1a8), 0x1b8); // parent modification UUID
      const hint = new TextEncoder().encode(PARENT_HINT + opts.backing);
      if (hint.length > 255) throw new DiskError(path, 'parent path is too long to record');
      h.set(hint, 0x54);
    }
    v.setUint32(0x4c, type, true);
    const offBlocks = 0x200;
    const offData = Math.ceil((offBlocks + nBlocks * 4) / 512) * 512;
    v.setUint32(0x154, offBlocks, true);
    v.setUint32(0x158, offData, true);
    v.setUint32(0x168, 512, true);
    setU64LE(h, 0x170, size);
    v.setUint32(0x178, blockSize, true);
    v.setUint32(0x180, nBlocks, true);
    v.setUint32(0x184, fixed ? nBlocks : 0, true);
    h.set(randomUuidBytes(), 0x188);
    h.set(randomUuidBytes(), 0x198);
    const bmap = new Uint8Array(offData - offBlocks);
    const bv = dv(bmap);
    for (let i = 0; i < nBlocks; i++) bv.setUint32(i * 4, fixed ? i : FREE, true);
    const f = new HostFile(path, true, 'create');
    try {
      f.write(0, h);
      f.write(offBlocks, bmap);
      if (fixed) f.truncate(offData + nBlocks * blockSize);
      f.sync();
    } finally {
      f.close();
    }
  }

  private blockHost(i: number): number {
    return this.offData + i * (this.blockSize + this.blockExtra) + this.blockExtra;
  }

  read(offset: number, buf: Uint8Array): void {
    checkRange(this, offset, buf.length);
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const b = Math.floor(pos / this.blockSize);
      const inOff = pos - b * this.blockSize;
      const n = Math.min(buf.length - done, this.blockSize - inOff);
      const e = this.bmap[b];
      if (e === FREE) {
        if (this.type === TYPE_DIFF) readBacking(this.backing, pos, buf.subarray(done, done + n));
        else buf.fill(0, done, done + n);
      } else if (e === ZERO) buf.fill(0, done, done + n);
      else {
        if (e >= this.nBlocks) this.fail(`block map entry ${b} points to block ${e}, beyond ${this.nBlocks} blocks`);
        this.file.read(this.blockHost(e) + inOff, buf, done, n);
      }
      done += n;
    }
  }

  private markModified(): void {
    if (this.modifiedThisSession) return;
    this.modifiedThisSession = true;
    // VirtualBox changes the modification UUID whenever an image is written.
    this.header.set(randomUuidBytes(), 0x198);
    this.file.write(0x198, this.header, 0x198, 16);
  }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) this.fail('image is open read-only');
    checkRange(this, offset, data.length);
    this.markModified();
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const b = Math.floor(pos / this.blockSize);
      const inOff = pos - b * this.blockSize;
      const n = Math.min(data.length - done, this.blockSize - inOff);
      const e = this.bmap[b];
      if (e !== FREE && e !== ZERO) {
        if (e >= this.nBlocks) this.fail(`block map entry ${b} points to block ${e}, beyond ${this.nBlocks} blocks`);
        this.file.write(this.blockHost(e) + inOff, data, done, n);
      } else {
        const block = new Uint8Array(this.blockSize);
        if (e === FREE && this.type === TYPE_DIFF) readBacking(this.backing, b * this.blockSize, block);
        block.set(data.subarray(done, done + n), inOff);
        this.allocate(b, block);
      }
      done += n;
    }
  }

  private allocate(b: number, block: Uint8Array): void {
    const idx = this.nAllocated;
    if (idx >= this.nBlocks) this.fail('no free block left (block map is inconsistent)');
    // Data first; then the map entry and the allocated count in ONE write when they share the
    // first pages, so a kill never leaves the count and the map disagreeing.
    this.file.write(this.blockHost(idx), block);
    this.bmap[b] = idx;
    this.nAllocated = idx + 1;
    dv(this.header).setUint32(0x184, this.nAllocated, true);
    const entryPos = this.offBlocks + b * 4;
    if (this.offBlocks >= 0x200 && entryPos + 4 - 0x184 <= 64 * 1024) {
      const span = new Uint8Array(entryPos + 4 - 0x184);
      const sv = dv(span);
      const headerPart = Math.min(span.length, 0x200 - 0x184);
      span.set(this.header.subarray(0x184, 0x184 + headerPart), 0);
      for (let i = Math.floor((0x184 + headerPart - this.offBlocks) / 4); i <= b; i++) {
        if (i < 0) continue;
        const p = this.offBlocks + i * 4 - 0x184;
        if (p >= 0 && p + 4 <= span.length) sv.setUint32(p, this.bmap[i], true);
      }
      // Bytes between the header and the map (if any) are read back so they are rewritten unchanged.
      const gapStart = 0x200 - 0x184;
      const gapEnd = this.offBlocks - 0x184;
      if (gapEnd > gapStart) this.file.read(0x200, span, gapStart, gapEnd - gapStart);
      this.file.write(0x184, span);
    } else {
      const e = new Uint8Array(4);
      dv(e).setUint32(0, idx, true);
      this.file.write(entryPos, e);
      this.file.write(0x184, this.header, 0x184, 4);
    }
  }

  flush(): void {
    this.file.sync();
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
      format: 'vdi',
      variant: this.type === TYPE_FIXED ? 'fixed' : this.type === TYPE_DIFF ? 'differencing' : 'dynamic',
      virtualSize: this.size,
      actualSize: this.file.allocatedBytes(),
      clusterSize: this.blockSize,
      backing: this.backing ? { path: this.backing.path, format: 'vdi' } : this.type === TYPE_DIFF ? { path: this.parentRef ?? `{${this.uuid(0x1a8)}}`, format: 'vdi' } : undefined,
      specific: { uuid: this.uuid(0x188), modificationUuid: this.uuid(0x198), parentUuid: this.type === TYPE_DIFF ? this.uuid(0x1a8) : undefined },
    };
  }

  check(repair = false): CheckResult {
    const errors: string[] = [];
    const used = new Map<number, number>();
    let allocated = 0;
    for (let b = 0; b < this.nBlocks; b++) {
      const e = this.bmap[b];
      if (e === FREE || e === ZERO) continue;
      allocated++;
      if (e >= this.nBlocks) errors.push(`block ${b} maps to index ${e}, beyond ${this.nBlocks} blocks`);
      else if (used.has(e)) errors.push(`block index ${e} used by blocks ${used.get(e)} and ${b}`);
      else used.set(e, b);
      if (this.blockHost(e) + this.blockSize > this.file.size && this.type !== TYPE_FIXED) errors.push(`block ${b} lies beyond the end of the file`);
    }
    if (allocated !== this.nAllocated) {
      // Repairable when the map itself is sound: the count follows the map.
      if (repair && !this.readOnly && errors.length === 0) {
        this.nAllocated = allocated;
        dv(this.header).setUint32(0x184, allocated, true);
        this.file.write(0x184, this.header, 0x184, 4);
        this.file.sync();
        return { errors, leaks: 0, allocated, total: this.nBlocks, repaired: 1 };
      }
      errors.push(`allocated block count is ${this.nAllocated} but the map holds ${allocated}`);
    }
    return { errors, leaks: 0, allocated, total: this.nBlocks };
  }

  blockStatus(offset: number, length: number): { status: BlockStatus; length: number } {
    const st = (b: number): BlockStatus => {
      const e = this.bmap[b];
      return e === FREE ? 'unallocated' : e === ZERO ? 'zero' : 'data';
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

  resize(newSize: number): void {
    if (this.readOnly) this.fail('image is open read-only');
    if (newSize < this.size) this.fail('shrinking a VDI image is not supported');
    const need = Math.ceil(newSize / this.blockSize);
    if (this.offBlocks + need * 4 > this.offData) this.fail('the block map has no room to grow; convert the image instead');
    if (this.type === TYPE_FIXED && need > this.nBlocks) this.fail('growing a fixed VDI is not supported');
    const grown = new Uint32Array(need).fill(FREE);
    grown.set(this.bmap);
    const tail = new Uint8Array((need - this.nBlocks) * 4).fill(0xff);
    this.file.write(this.offBlocks + this.nBlocks * 4, tail);
    this.bmap = grown;
    this.nBlocks = need;
    this.size = newSize;
    setU64LE(this.header, 0x170, newSize);
    dv(this.header).setUint32(0x180, need, true);
    this.file.write(0x170, this.header, 0x170, 0x184 - 0x170);
  }
}

function readVdiHeader(p: string): Uint8Array | null {
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const h = new Uint8Array(0x200);
      fs.readSync(fd, h, 0, 0x200, 0);
      return dv(h).getUint32(0x40, true) === SIGNATURE ? h : null;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}

function readVdiUuid(p: string): string | null {
  try {
    if (!fs.statSync(p).isFile()) return null;
  } catch {
    return null;
  }
  const h = readVdiHeader(p);
  return h ? uuidToString(h, 0x188) : null;
}
