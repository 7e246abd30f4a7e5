import type { BlockDevice } from './block-device';

export type ImageFormat = 'raw' | 'iso' | 'qcow2' | 'vdi' | 'vmdk' | 'vhd' | 'vhdx';
export const IMAGE_FORMATS: ImageFormat[] = ['raw', 'iso', 'qcow2', 'vdi', 'vmdk', 'vhd', 'vhdx'];

export interface SnapshotInfo {
  id: string;
  name: string;
  vmStateSize: number;
  /** Seconds since the epoch. */
  date: number;
  vmClockNs: number;
  diskSize: number;
}

export interface ImageInfo {
  path: string;
  format: ImageFormat;
  /** e.g. 'dynamic', 'fixed', 'differencing', 'monolithicSparse', 'streamOptimized' */
  variant?: string;
  virtualSize: number;
  /** Host bytes used by this layer's files. */
  actualSize: number;
  clusterSize?: number;
  backing?: { path: string; format: ImageFormat };
  snapshots?: SnapshotInfo[];
  dirty?: boolean;
  /** Format-specific facts (qcow2 compat, VMDK CID, ISO label...). */
  specific?: Record<string, unknown>;
}

/** What `check` found. Errors are corruption (data could be lost or misread); leaks only waste space. */
export interface CheckResult {
  errors: string[];
  leaks: number;
  /** Clusters/blocks in use, for the "x/y allocated" line. */
  allocated?: number;
  total?: number;
  repaired?: number;
}

export type BlockStatus = 'data' | 'zero' | 'unallocated';

/**
 * What every Boxwood format object offers beyond the BlockDevice contract: enough for
 * `boxwood image` (info, check, convert without reading holes) and for backing chains.
 */
export interface DiskImage extends BlockDevice {
  readonly format: ImageFormat;
  /** The image this layer falls through to where it holds no data, or null. */
  readonly backing: DiskImage | null;
  info(): ImageInfo;
  /** Consistency check of this layer's metadata; `repair` fixes leaks (and lazy refcounts). */
  check(repair?: boolean): CheckResult;
  /**
   * Status of this layer at `offset`, and for how many bytes (>0, may be less than `length`) the
   * same status holds. 'unallocated' means "falls through to the backing image (or zero)".
   */
  blockStatus(offset: number, length: number): { status: BlockStatus; length: number };
  /** Every host file this layer is made of (descriptor, extents...). */
  files(): string[];
  /** Changes the virtual size, where the format allows. */
  resize(newSize: number): void;
}

/** Common geometry for formats that store CHS (VHD, VMDK): the VHD specification's algorithm. */
export function vhdGeometry(totalSectors: number): { cylinders: number; heads: number; sectors: number } {
  let sectorsPerTrack: number, heads: number, cylTimesHeads: number;
  if (totalSectors > 65535 * 16 * 255) totalSectors = 65535 * 16 * 255;
  if (totalSectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    heads = Math.floor((cylTimesHeads + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cylTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
    if (cylTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
  }
  return { cylinders: Math.floor(cylTimesHeads / heads), heads, sectors: sectorsPerTrack };
}

export function randomUuidBytes(): Uint8Array {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return b;
}

export function uuidToString(b: Uint8Array, off = 0): string {
  const h = Array.from(b.subarray(off, off + 16), (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Reads [offset, offset+buf.length) of a backing image, zero beyond its end (a smaller parent). */
export function readBacking(backing: BlockDevice | null, offset: number, buf: Uint8Array): void {
  if (!backing || offset >= backing.size) {
    buf.fill(0);
    return;
  }
  const n = Math.min(buf.length, backing.size - offset);
  backing.read(offset, n === buf.length ? buf : buf.subarray(0, n));
  if (n < buf.length) buf.fill(0, n);
}
