/**
 * Block devices for the disk-controller tests: real implementations of the BlockDevice contract
 * over memory (a flat array, or sparse sectors for huge LBA48 disks).
 */
import { DiskError, type BlockDevice } from '../../../src-emulator/storage/block-device';

export class MemoryDisk implements BlockDevice {
  readonly format = 'raw';
  flushes = 0;
  constructor(
    readonly data: Uint8Array,
    readonly path = 'memory.img',
    readonly readOnly = false,
  ) {}
  get size(): number {
    return this.data.length;
  }
  read(offset: number, buf: Uint8Array): void {
    if (offset < 0 || offset + buf.length > this.data.length) throw new DiskError(this.path, `read past end at ${offset}`);
    buf.set(this.data.subarray(offset, offset + buf.length));
  }
  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) throw new DiskError(this.path, 'read-only');
    if (offset < 0 || offset + data.length > this.data.length) throw new DiskError(this.path, `write past end at ${offset}`);
    this.data.set(data, offset);
  }
  flush(): void {
    this.flushes++;
  }
  close(): void {}
}

/** A huge disk that stores only the 512-byte sectors written; unwritten sectors read as a pattern of their LBA. */
export class SparseDisk implements BlockDevice {
  readonly format = 'raw';
  readonly readOnly = false;
  readonly path = 'sparse.img';
  readonly sectors = new Map<number, Uint8Array>();
  constructor(readonly size: number) {}
  private sector(lba: number): Uint8Array {
    let s = this.sectors.get(lba);
    if (!s) {
      s = new Uint8Array(512);
      const v = new DataView(s.buffer);
      for (let i = 0; i < 512; i += 8) v.setFloat64(i, lba);
    }
    return s;
  }
  read(offset: number, buf: Uint8Array): void {
    if (offset + buf.length > this.size) throw new DiskError(this.path, 'read past end');
    for (let i = 0; i < buf.length; ) {
      const lba = Math.floor((offset + i) / 512);
      const within = (offset + i) % 512;
      const n = Math.min(512 - within, buf.length - i);
      buf.set(this.sector(lba).subarray(within, within + n), i);
      i += n;
    }
  }
  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; ) {
      const lba = Math.floor((offset + i) / 512);
      const within = (offset + i) % 512;
      const n = Math.min(512 - within, data.length - i);
      const s = this.sector(lba).slice();
      s.set(data.subarray(i, i + n), within);
      this.sectors.set(lba, s);
      i += n;
    }
  }
  flush(): void {}
  close(): void {}
}

/** Bytes whose value depends on position, so misplaced data shows. */
export function patterned(size: number, seed = 1): Uint8Array {
  const d = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    d[i] = x & 0xff;
  }
  return d;
}
