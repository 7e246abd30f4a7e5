import { DiskError } from './block-device';
import type { BlockStatus, CheckResult, DiskImage, ImageInfo } from './disk-image';
import { HostFile } from './host-file';

/**
 * A raw image: the file is the disk. Created sparse (ftruncate), so only written ranges take host
 * space on filesystems with holes. Writes never extend the file: the virtual size is the file size.
 */
export class RawImage implements DiskImage {
  readonly format = 'raw' as const;
  readonly backing = null;
  readonly path: string;
  readonly readOnly: boolean;
  size: number;

  constructor(private readonly file: HostFile) {
    this.path = file.path;
    this.readOnly = !file.writable;
    this.size = file.size;
  }

  static create(path: string, size: number): void {
    const f = new HostFile(path, true, 'create');
    try {
      f.truncate(size);
    } finally {
      f.close();
    }
  }

  read(offset: number, buf: Uint8Array): void {
    checkRange(this, offset, buf.length);
    this.file.read(offset, buf);
  }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) throw new DiskError(this.path, 'image is open read-only');
    checkRange(this, offset, data.length);
    this.file.write(offset, data);
  }

  flush(): void {
    this.file.sync();
  }

  close(): void {
    this.file.close();
  }

  info(): ImageInfo {
    return { path: this.path, format: 'raw', virtualSize: this.size, actualSize: this.file.allocatedBytes() };
  }

  check(): CheckResult {
    return { errors: [], leaks: 0 };
  }

  blockStatus(offset: number, length: number): { status: BlockStatus; length: number } {
    return { status: 'data', length: Math.min(length, this.size - offset) };
  }

  files(): string[] {
    return [this.path];
  }

  resize(newSize: number): void {
    if (this.readOnly) throw new DiskError(this.path, 'image is open read-only');
    this.file.truncate(newSize);
    this.size = newSize;
  }
}

export function checkRange(dev: { path: string; size: number }, offset: number, len: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + len > dev.size) {
    throw new DiskError(dev.path, `access at ${offset}+${len} is outside the disk (size ${dev.size})`);
  }
}
