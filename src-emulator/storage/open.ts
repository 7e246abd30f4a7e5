/**
 * The entrance to storage: `openImage` detects the format by content (never by extension), opens
 * the whole backing chain, and by default puts a block cache in front; `createImage` makes new
 * images. Every failure is a DiskError naming the file and the fault.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { DiskError } from './block-device';
import { IMAGE_FORMATS, type DiskImage, type ImageFormat } from './disk-image';
import { HostFile, HostFileSlice, asDiskError, ascii, findArchivedDisk } from './host-file';
import { RawImage } from './raw';
import { IsoImage } from './iso';
import { Qcow2Image } from './qcow2';
import { VdiImage } from './vdi';
import { VhdImage } from './vhd';
import { VmdkImage } from './vmdk';
import { VhdxImage } from './vhdx';
import { BlockCache } from './block-cache';

export type { DiskImage, ImageFormat } from './disk-image';
export { DiskError } from './block-device';

export interface OpenOptions {
  readOnly?: boolean;
  /** Skip detection and insist on this format (detection still refuses a clear mismatch). */
  format?: ImageFormat;
  /** Put a write-back block cache with request merging in front (default true). */
  cache?: boolean;
  /** Open without the backing chain (for `info`/`check` of a single layer). */
  noBacking?: boolean;
}

export interface CreateOptions {
  backing?: string;
  backingFormat?: ImageFormat;
  /**
   * qcow2: unused; vdi: 'dynamic' | 'fixed'; vmdk: 'monolithicSparse' | 'monolithicFlat' |
   * 'twoGbMaxExtentSparse' | 'twoGbMaxExtentFlat' | 'streamOptimized'; vhd: 'dynamic' | 'fixed';
   * vhdx: 'dynamic' | 'fixed'.
   */
  variant?: string;
  /** qcow2 cluster size in bytes (default 65536). */
  clusterSize?: number;
  /** qcow2: 2 (compat=0.10) or 3 (compat=1.1, default). */
  version?: 2 | 3;
  /** qcow2 refcount width in bits: 1, 2, 4, 8, 16 (default), 32 or 64. */
  refcountBits?: number;
  lazyRefcounts?: boolean;
  /** VDI/VHD/VHDX block size in bytes. */
  blockSize?: number;
}

/** What opening a layer needs from the chain around it. */
export interface OpenContext {
  readOnly: boolean;
  noBacking: boolean;
  /** Opens a backing image given as written in the child (relative to the child's directory). */
  openBacking(childPath: string, ref: string, format?: ImageFormat): DiskImage;
}

const MAX_CHAIN = 64;

export function detectFormat(path: string): ImageFormat {
  let f = new HostFile(path, false);
  try {
    const member = findArchivedDisk(f);
    if (member) {
      f.close();
      f = new HostFileSlice(path, member.offset, member.size);
    }
    return detectFile(f);
  } finally {
    f.close();
  }
}

function detectFile(f: HostFile): ImageFormat {
  const head = f.readBytes(0, 1024);
  const magic4 = ascii(head, 0, 4);
  if (magic4 === 'QFI\xfb') return 'qcow2';
  if (new DataView(head.buffer).getUint32(0x40, true) === 0xbeda107f) return 'vdi';
  if (magic4 === 'KDMV' || magic4 === 'COWD') return 'vmdk';
  if (ascii(head, 0, 8) === 'vhdxfile') return 'vhdx';
  if (ascii(head, 0, 8) === 'conectix') return 'vhd';
  if (f.size < 1024 * 1024 && looksLikeVmdkDescriptor(head)) return 'vmdk';
  if (f.size >= 512 && ascii(f.readBytes(f.size - 512, 8), 0, 8) === 'conectix') return 'vhd';
  if (f.size >= 0x8800 && ascii(f.readBytes(0x8001, 5), 0, 5) === 'CD001') return 'iso';
  return 'raw';
}

function looksLikeVmdkDescriptor(head: Uint8Array): boolean {
  const text = new TextDecoder('latin1').decode(head);
  return /^\s*#\s*Disk DescriptorFile/im.test(text) || (/createType\s*=/.test(text) && /\b(RW|RDONLY|NOACCESS)\s+\d+\s+(SPARSE|FLAT|ZERO|VMFS)/.test(text));
}

/** Opens an image (and its backing chain). The returned device is cached unless `cache: false`. */
export function openImage(path: string, opts: OpenOptions = {}): DiskImage {
  // qemu's names are accepted too: configs written by hand or imported often say 'vpc'.
  const alias: Record<string, ImageFormat> = { vpc: 'vhd', file: 'raw', host_device: 'raw' };
  if (opts.format && alias[opts.format]) opts = { ...opts, format: alias[opts.format] };
  const img = openChain(path, opts, [], 0, opts.readOnly ?? false);
  return opts.cache === false ? img : new BlockCache(img);
}

function openChain(path: string, opts: OpenOptions, seen: string[], depth: number, readOnly: boolean): DiskImage {
  let real: string;
  try {
    real = fs.realpathSync(path);
  } catch (err) {
    throw asDiskError(path, err);
  }
  if (seen.includes(real)) {
    throw new DiskError(path, `backing chain loops: ${[...seen, real].join(' -> ')}`);
  }
  if (depth > MAX_CHAIN) throw new DiskError(path, `backing chain is deeper than ${MAX_CHAIN} images`);
  const chain = [...seen, real];
  // Detect through a read-only handle: a CD image on read-only media must still open.
  let file = new HostFile(path, false);
  let detected: ImageFormat;
  let archived = false;
  try {
    // An OVA (tar) carries its disk as a member: open that member in place, read-only.
    const member = findArchivedDisk(file);
    if (member) {
      file.close();
      file = new HostFileSlice(path, member.offset, member.size);
      archived = true;
    }
    detected = detectFile(file);
  } catch (err) {
    file.close();
    throw err;
  }
  if (archived && !readOnly) {
    file.close();
    throw new DiskError(path, 'the disk inside this archive (OVA) can only be opened read-only; convert it to write');
  }
  const format = opts.format ?? detected;
  if (!IMAGE_FORMATS.includes(format)) {
    file.close();
    throw new DiskError(path, `unknown image format '${format}'`);
  }
  if (opts.format && opts.format !== detected && opts.format !== 'raw') {
    file.close();
    throw new DiskError(path, `is not a ${opts.format} image (its content says ${detected})`);
  }
  if (!readOnly && format !== 'iso') {
    file.close();
    file = new HostFile(path, true);
  }
  const ctx: OpenContext = {
    readOnly,
    noBacking: opts.noBacking ?? false,
    openBacking(childPath, ref, fmt) {
      const target = nodePath.isAbsolute(ref) ? ref : nodePath.join(nodePath.dirname(childPath), ref);
      if (!fs.existsSync(target)) {
        throw new DiskError(childPath, `backing file '${ref}' not found (looked for ${target})`);
      }
      try {
        return openChain(target, { format: fmt }, chain, depth + 1, true);
      } catch (err) {
        if (err instanceof DiskError && err.file !== childPath) {
          throw new DiskError(childPath, `backing file '${ref}': ${err.message}`);
        }
        throw err;
      }
    },
  };
  try {
    switch (format) {
      case 'raw':
        return new RawImage(file);
      case 'iso':
        // A CD is read-only by nature; the guest's writes are refused by IsoImage itself.
        return IsoImage.open(file);
      case 'qcow2':
        return Qcow2Image.open(file, ctx);
      case 'vdi':
        return VdiImage.open(file, ctx);
      case 'vmdk':
        return VmdkImage.open(file, ctx);
      case 'vhd':
        return VhdImage.open(file, ctx);
      case 'vhdx':
        return VhdxImage.open(file, ctx);
    }
  } catch (err) {
    try {
      file.close();
    } catch {
      /* the open error is the one worth reporting */
    }
    if (err instanceof DiskError) throw err;
    // A format parser that trips over hostile data must still name the file, never crash the host.
    throw new DiskError(path, `malformed ${format} image (${(err as Error)?.message ?? err})`);
  }
}

/** Creates a new image. `size` 0 with a backing file takes the backing file's size. */
export function createImage(path: string, format: ImageFormat, size: number, opts: CreateOptions = {}): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new DiskError(path, `invalid size ${size}`);
  if (opts.backing) {
    const backingPath = nodePath.isAbsolute(opts.backing) ? opts.backing : nodePath.join(nodePath.dirname(path), opts.backing);
    const b = openImage(backingPath, { readOnly: true, format: opts.backingFormat, cache: false });
    try {
      if (!opts.backingFormat) opts = { ...opts, backingFormat: b.format };
      if (size === 0) size = b.size;
    } finally {
      b.close();
    }
  }
  switch (format) {
    case 'raw':
      if (opts.backing) throw new DiskError(path, 'raw images cannot have a backing file');
      return RawImage.create(path, size);
    case 'iso':
      throw new DiskError(path, 'ISO images are read-only here; make them with xorriso or genisoimage');
    case 'qcow2':
      return Qcow2Image.create(path, size, opts);
    case 'vdi':
      return VdiImage.create(path, size, opts);
    case 'vmdk':
      return VmdkImage.create(path, size, opts);
    case 'vhd':
      return VhdImage.create(path, size, opts);
    case 'vhdx':
      return VhdxImage.create(path, size, opts);
    default:
      throw new DiskError(path, `unknown image format '${format}'`);
  }
}

/** The format object behind a (possibly cached) image, e.g. to reach Qcow2Image's snapshot calls. */
export function formatOf(img: DiskImage): DiskImage {
  return img instanceof BlockCache ? img.inner : img;
}
