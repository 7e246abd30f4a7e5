import { DiskError } from './block-device';
import type { BlockStatus, CheckResult, DiskImage, ImageInfo } from './disk-image';

const PAGE = 64 * 1024;
const MAX_PAGES = 512; // 32 MiB
const MAX_DIRTY_PAGES = 128; // 8 MiB written back in merged runs before more is accepted
const BYPASS = 16 * PAGE; // big transfers (convert, DMA bursts) skip the cache

interface Page {
  data: Uint8Array;
  dirty: boolean;
}

/**
 * A write-back page cache in front of any DiskImage. Guests issue many small, often adjacent
 * requests; here they land in 64 KiB pages, and write-back sends each run of adjacent dirty pages
 * as ONE write to the format, in ascending order. `flush()` writes everything back and then asks
 * the format to fsync, which is what a guest FLUSH CACHE means. Data not yet flushed may be lost
 * in a crash, exactly like a disk's volatile write cache; format metadata is never cached here.
 */
export class BlockCache implements DiskImage {
  private pages = new Map<number, Page>();
  private dirtyCount = 0;

  constructor(readonly inner: DiskImage) {}

  get path(): string {
    return this.inner.path;
  }
  get format() {
    return this.inner.format;
  }
  get size(): number {
    return this.inner.size;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  get backing() {
    return this.inner.backing;
  }

  private pageLen(idx: number): number {
    return Math.min(PAGE, this.inner.size - idx * PAGE);
  }

  private touch(idx: number, p: Page): void {
    this.pages.delete(idx);
    this.pages.set(idx, p);
  }

  private insert(idx: number, p: Page): void {
    this.pages.set(idx, p);
    if (p.dirty) this.dirtyCount++;
    if (this.pages.size > MAX_PAGES) {
      for (const [k, v] of this.pages) {
        if (this.pages.size <= MAX_PAGES * 0.75) break;
        if (v.dirty) {
          this.writeBack();
        }
        this.pages.delete(k);
      }
    }
  }

  private checkRange(offset: number, len: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + len > this.inner.size) {
      throw new DiskError(this.path, `access at ${offset}+${len} is outside the disk (size ${this.inner.size})`);
    }
  }

  read(offset: number, buf: Uint8Array): void {
    this.checkRange(offset, buf.length);
    if (buf.length >= BYPASS) {
      this.writeBackRange(offset, buf.length);
      this.inner.read(offset, buf);
      return;
    }
    let pos = offset;
    let done = 0;
    while (done < buf.length) {
      const idx = Math.floor(pos / PAGE);
      const inPage = pos - idx * PAGE;
      let p = this.pages.get(idx);
      if (!p) {
        // Fill this page and any following uncached pages of the request with one read.
        let last = idx;
        const endIdx = Math.floor((offset + buf.length - 1) / PAGE);
        while (last < endIdx && !this.pages.has(last + 1)) last++;
        const span = new Uint8Array(Math.min((last - idx + 1) * PAGE, this.inner.size - idx * PAGE));
        this.inner.read(idx * PAGE, span);
        for (let k = idx; k <= last; k++) {
          const start = (k - idx) * PAGE;
          this.insert(k, { data: span.slice(start, start + this.pageLen(k)), dirty: false });
        }
        p = this.pages.get(idx)!;
      } else {
        this.touch(idx, p);
      }
      const n = Math.min(buf.length - done, p.data.length - inPage);
      buf.set(p.data.subarray(inPage, inPage + n), done);
      done += n;
      pos += n;
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) throw new DiskError(this.path, 'image is open read-only');
    this.checkRange(offset, data.length);
    if (data.length >= BYPASS) {
      // Drop overlapping pages (after writing back their dirty parts outside this range would be
      // wrong to lose), then write straight through.
      this.writeBackRange(offset, data.length);
      for (let k = Math.floor(offset / PAGE); k <= Math.floor((offset + data.length - 1) / PAGE); k++) this.pages.delete(k);
      this.inner.write(offset, data);
      return;
    }
    let pos = offset;
    let done = 0;
    while (done < data.length) {
      const idx = Math.floor(pos / PAGE);
      const inPage = pos - idx * PAGE;
      const len = this.pageLen(idx);
      const n = Math.min(data.length - done, len - inPage);
      let p = this.pages.get(idx);
      if (!p) {
        const page = new Uint8Array(len);
        if (n < len) this.inner.read(idx * PAGE, page);
        p = { data: page, dirty: false };
        this.insert(idx, p);
      } else {
        this.touch(idx, p);
      }
      p.data.set(data.subarray(done, done + n), inPage);
      if (!p.dirty) {
        p.dirty = true;
        this.dirtyCount++;
      }
      done += n;
      pos += n;
    }
    if (this.dirtyCount > MAX_DIRTY_PAGES) this.writeBack();
  }

  /** Writes back dirty pages overlapping [offset, offset+len). */
  private writeBackRange(offset: number, len: number): void {
    if (this.dirtyCount === 0) return;
    const first = Math.floor(offset / PAGE);
    const last = Math.floor((offset + len - 1) / PAGE);
    const keys = last - first > this.pages.size ? [...this.pages.keys()].filter((k) => k >= first && k <= last) : null;
    for (let k = first; k <= last; k++) {
      if (keys && !keys.includes(k)) continue;
      const p = this.pages.get(k);
      if (p?.dirty) {
        this.inner.write(k * PAGE, p.data);
        p.dirty = false;
        this.dirtyCount--;
      }
    }
  }

  /** Writes every dirty page back, merging adjacent pages into one request, in ascending order. */
  private writeBack(): void {
    if (this.dirtyCount === 0) return;
    const idxs = [...this.pages.entries()].filter(([, p]) => p.dirty).map(([k]) => k).sort((a, b) => a - b);
    let i = 0;
    while (i < idxs.length) {
      let j = i;
      while (j + 1 < idxs.length && idxs[j + 1] === idxs[j] + 1 && this.pages.get(idxs[j])!.data.length === PAGE) j++;
      if (j === i) {
        this.inner.write(idxs[i] * PAGE, this.pages.get(idxs[i])!.data);
      } else {
        const parts = idxs.slice(i, j + 1).map((k) => this.pages.get(k)!.data);
        const merged = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
        let o = 0;
        for (const p of parts) {
          merged.set(p, o);
          o += p.length;
        }
        this.inner.write(idxs[i] * PAGE, merged);
      }
      for (let k = i; k <= j; k++) this.pages.get(idxs[k])!.dirty = false;
      i = j + 1;
    }
    this.dirtyCount = 0;
  }

  flush(): void {
    this.writeBack();
    this.inner.flush();
  }

  close(): void {
    try {
      if (!this.readOnly) this.writeBack();
    } finally {
      this.pages.clear();
      this.inner.close();
    }
  }

  info(): ImageInfo {
    this.writeBack();
    return this.inner.info();
  }
  check(repair?: boolean): CheckResult {
    this.writeBack();
    return this.inner.check(repair);
  }
  blockStatus(offset: number, length: number): { status: BlockStatus; length: number } {
    this.writeBackRange(offset, length);
    return this.inner.blockStatus(offset, length);
  }
  files(): string[] {
    return this.inner.files();
  }
  resize(newSize: number): void {
    this.writeBack();
    this.pages.clear();
    this.inner.resize(newSize);
  }
}
