import * as fs from 'node:fs';
import { DiskError } from './block-device';

/**
 * One host file, read and written synchronously at explicit offsets. Every host error becomes a
 * DiskError naming the file; reads past the end of the file give zeros, because every format
 * here treats the unwritten tail of a sparse file that way and a hostile table pointing past the
 * end must not turn into an exception deep in a guest request.
 */
export class HostFile {
  readonly fd: number;
  /** Current length in bytes; kept in step with our own writes so callers need no fstat. */
  size: number;
  private closed = false;

  constructor(
    readonly path: string,
    readonly writable: boolean,
    mode: 'open' | 'create' = 'open',
  ) {
    try {
      const flags = mode === 'create' ? 'w+' : writable ? 'r+' : 'r';
      this.fd = fs.openSync(path, flags);
      const st = fs.fstatSync(this.fd);
      if (st.isDirectory()) throw new DiskError(path, 'is a directory, not a disk image');
      this.size = st.size;
    } catch (err) {
      throw asDiskError(path, err);
    }
  }

  /** Fills buf[off, off+len) from file position pos; the part beyond the end of file is zero. */
  read(pos: number, buf: Uint8Array, off = 0, len = buf.length - off): void {
    if (pos < 0 || !Number.isSafeInteger(pos)) throw new DiskError(this.path, `read at invalid host offset ${pos}`);
    let done = 0;
    try {
      while (done < len) {
        const n = fs.readSync(this.fd, buf, off + done, len - done, pos + done);
        if (n <= 0) break;
        done += n;
      }
    } catch (err) {
      throw asDiskError(this.path, err);
    }
    if (done < len) buf.fill(0, off + done, off + len);
  }

  readBytes(pos: number, len: number): Uint8Array {
    const b = new Uint8Array(len);
    this.read(pos, b);
    return b;
  }

  write(pos: number, data: Uint8Array, off = 0, len = data.length - off): void {
    if (!this.writable) throw new DiskError(this.path, 'image is open read-only');
    if (pos < 0 || !Number.isSafeInteger(pos)) throw new DiskError(this.path, `write at invalid host offset ${pos}`);
    let done = 0;
    try {
      while (done < len) {
        done += fs.writeSync(this.fd, data, off + done, len - done, pos + done);
      }
    } catch (err) {
      throw asDiskError(this.path, err);
    }
    if (pos + len > this.size) this.size = pos + len;
  }

  truncate(len: number): void {
    try {
      fs.ftruncateSync(this.fd, len);
    } catch (err) {
      throw asDiskError(this.path, err);
    }
    this.size = len;
  }

  sync(): void {
    if (!this.writable) return;
    try {
      fs.fsyncSync(this.fd);
    } catch (err) {
      throw asDiskError(this.path, err);
    }
  }

  /** Bytes the file really occupies on the host (sparse files use less than their length). */
  allocatedBytes(): number {
    try {
      return fs.fstatSync(this.fd).blocks * 512;
    } catch {
      return this.size;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      fs.closeSync(this.fd);
    } catch (err) {
      throw asDiskError(this.path, err);
    }
  }
}

export function asDiskError(path: string, err: unknown): DiskError {
  if (err instanceof DiskError) return err;
  const e = err as NodeJS.ErrnoException;
  const what =
    e?.code === 'ENOENT' ? 'file not found'
    : e?.code === 'EACCES' || e?.code === 'EPERM' ? 'permission denied'
    : e?.code === 'ENOSPC' ? 'no space left on the host disk'
    : e?.code === 'EISDIR' ? 'is a directory, not a disk image'
    : (e?.message ?? String(err));
  return new DiskError(path, what);
}

/** Big-endian and little-endian 64-bit helpers over numbers (offsets stay below 2^53). */
export function getU64BE(b: Uint8Array, o: number): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return dv.getUint32(o) * 0x100000000 + dv.getUint32(o + 4);
}
export function setU64BE(b: Uint8Array, o: number, v: number): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint32(o, Math.floor(v / 0x100000000));
  dv.setUint32(o + 4, v >>> 0);
}
export function getU64LE(b: Uint8Array, o: number): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return dv.getUint32(o + 4, true) * 0x100000000 + dv.getUint32(o, true);
}
export function setU64LE(b: Uint8Array, o: number, v: number): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint32(o, v >>> 0, true);
  dv.setUint32(o + 4, Math.floor(v / 0x100000000), true);
}
export function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
export function isZero(b: Uint8Array, off = 0, len = b.length - off): boolean {
  let i = off;
  const end = off + len;
  // Word-at-a-time when aligned: convert and compare spend most of their time here.
  if ((b.byteOffset + i) % 4 === 0) {
    const words = Math.floor((end - i) / 4);
    const w = new Uint32Array(b.buffer, b.byteOffset + i, words);
    for (let k = 0; k < words; k++) if (w[k] !== 0) return false;
    i += words * 4;
  }
  for (; i < end; i++) if (b[i] !== 0) return false;
  return true;
}
export function ascii(b: Uint8Array, o: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[o + i]);
  return s;
}

/**
 * A read-only window onto part of a host file: a disk image stored inside an archive (the VMDK in
 * an OVA, which tar keeps contiguous). Offsets are relative to the window.
 */
export class HostFileSlice extends HostFile {
  constructor(
    path: string,
    private readonly base: number,
    length: number,
  ) {
    super(path, false);
    this.size = length;
  }

  override read(pos: number, buf: Uint8Array, off = 0, len = buf.length - off): void {
    const n = Math.max(0, Math.min(len, this.size - pos));
    if (n > 0) super.read(this.base + pos, buf, off, n);
    if (n < len) buf.fill(0, off + Math.max(n, 0), off + len);
  }

  override write(): void {
    throw new DiskError(this.path, 'a disk inside an archive is read-only; convert it to write');
  }

  override truncate(): void {
    throw new DiskError(this.path, 'a disk inside an archive is read-only; convert it to write');
  }

  override allocatedBytes(): number {
    return this.size;
  }
}

/** The first disk image member (.vmdk, .vhd, .vdi, .qcow2, .img) of a tar archive such as an OVA. */
export function findArchivedDisk(f: HostFile): { name: string; offset: number; size: number } | null {
  const head = f.readBytes(0, 512);
  if (ascii(head, 257, 5) !== 'ustar') return null;
  let pos = 0;
  for (let i = 0; i < 10000 && pos + 512 <= f.size; i++) {
    const h = f.readBytes(pos, 512);
    if (h.every((b) => b === 0)) return null;
    const name = ascii(h, 0, 100).replace(/\0.*$/s, '');
    const size = parseInt(ascii(h, 124, 12).replace(/\0.*$/s, '').trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0) return null;
    const type = String.fromCharCode(h[156]);
    if ((type === '0' || type === '\0') && /\.(vmdk|vhd|vhdx|vdi|qcow2|img|raw)$/i.test(name)) {
      return { name, offset: pos + 512, size: Math.min(size, f.size - pos - 512) };
    }
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return null;
}
