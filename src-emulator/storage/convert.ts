/**
 * Whole-image operations shared by the CLI and the hypervisor (snapshot merge, clone, export):
 * convert between formats without reading holes, and compare two images' guest-visible content.
 */
import * as nodePath from 'node:path';
import { DiskError } from './block-device';
import type { DiskImage, ImageFormat } from './disk-image';
import { isZero } from './host-file';
import { createImage, openImage, type CreateOptions } from './open';
import { Qcow2Image } from './qcow2';

const CHUNK = 2 * 1024 * 1024;

export type Progress = (done: number, total: number) => void;

/** Status of the whole chain at `offset`: 'zero' when nothing below holds data there. */
export function chainStatus(img: DiskImage, offset: number, length: number): { data: boolean; length: number } {
  const st = img.blockStatus(offset, length);
  const len = Math.max(1, Math.min(st.length, length));
  if (st.status === 'data') return { data: true, length: len };
  if (st.status === 'zero') return { data: false, length: len };
  const b = img.backing;
  if (!b || offset >= b.size) return { data: false, length: len };
  const sub = chainStatus(b, offset, Math.min(len, b.size - offset));
  return { data: sub.data, length: sub.length };
}

export interface ConvertOptions extends CreateOptions {
  /** qcow2 only: compress every cluster (what `qemu-img convert -c` does). */
  compress?: boolean;
  onProgress?: Progress;
}

/** Copies the guest-visible content of `src` (its whole chain, flattened) into a new image. */
export function convertImage(src: DiskImage, dstPath: string, format: ImageFormat, opts: ConvertOptions = {}): void {
  if (opts.compress && format !== 'qcow2') throw new DiskError(dstPath, 'compression (-c) is only supported for qcow2 output');
  createImage(dstPath, format, src.size, opts);
  const dst = openImage(dstPath, { cache: false });
  try {
    if (dst.size < src.size) throw new DiskError(dstPath, `target holds ${dst.size} bytes, less than the source's ${src.size}`);
    const q = opts.compress ? (dst as unknown as Qcow2Image) : null;
    const step = q ? Math.max(CHUNK, q.clusterSize) : CHUNK;
    const buf = new Uint8Array(step);
    let pos = 0;
    while (pos < src.size) {
      // Ask about a long range: holes are skipped in one step, however big the disk.
      const st = chainStatus(src, pos, Math.min(1024 * 1024 * 1024, src.size - pos));
      if (!st.data) {
        pos += st.length;
        opts.onProgress?.(pos, src.size);
        continue;
      }
      // Read aligned chunks so compressed output gets whole clusters.
      const start = q ? Math.floor(pos / q.clusterSize) * q.clusterSize : pos;
      const n = Math.min(step, src.size - start);
      const b = buf.subarray(0, n);
      src.read(start, b);
      if (q) {
        for (let o = 0; o < n; o += q.clusterSize) {
          const len = Math.min(q.clusterSize, n - o);
          const piece = b.subarray(o, o + len);
          if (isZero(piece)) continue;
          if (len === q.clusterSize) q.writeCompressed((start + o) / q.clusterSize, piece);
          else dst.write(start + o, piece);
        }
      } else {
        // Skip zero runs inside the chunk so the target stays sparse.
        const g = 64 * 1024;
        for (let o = 0; o < n; ) {
          let e = o;
          while (e < n && !isZero(b, e, Math.min(g, n - e))) e += Math.min(g, n - e);
          if (e > o) dst.write(start + o, b.subarray(o, e));
          o = e;
          while (o < n && isZero(b, o, Math.min(g, n - o))) o += Math.min(g, n - o);
        }
      }
      pos = start + n;
      opts.onProgress?.(pos, src.size);
    }
  } finally {
    dst.close();
  }
}

export interface CompareResult {
  identical: boolean;
  /** First differing byte offset, if any. */
  firstDifference?: number;
  sizeMismatch: boolean;
}

/** Compares guest-visible content; a larger image must be zero beyond the smaller one's end. */
export function compareImages(a: DiskImage, b: DiskImage, onProgress?: Progress): CompareResult {
  const common = Math.min(a.size, b.size);
  const total = Math.max(a.size, b.size);
  const ba = new Uint8Array(CHUNK);
  const bb = new Uint8Array(CHUNK);
  let pos = 0;
  while (pos < common) {
    const sa = chainStatus(a, pos, Math.min(1024 * CHUNK, common - pos));
    const sb = chainStatus(b, pos, Math.min(1024 * CHUNK, common - pos));
    if (!sa.data && !sb.data) {
      pos += Math.min(sa.length, sb.length);
      continue;
    }
    const n = Math.min(CHUNK, common - pos);
    a.read(pos, ba.subarray(0, n));
    b.read(pos, bb.subarray(0, n));
    if (!Buffer.from(ba.buffer, 0, n).equals(Buffer.from(bb.buffer, 0, n))) {
      let i = 0;
      while (ba[i] === bb[i]) i++;
      return { identical: false, firstDifference: pos + i, sizeMismatch: a.size !== b.size };
    }
    pos += n;
    onProgress?.(pos, total);
  }
  const big = a.size > b.size ? a : b;
  while (pos < total) {
    const st = chainStatus(big, pos, Math.min(CHUNK, total - pos));
    if (!st.data) {
      pos += st.length;
      continue;
    }
    const n = Math.min(CHUNK, total - pos);
    big.read(pos, ba.subarray(0, n));
    if (!isZero(ba, 0, n)) {
      let i = 0;
      while (ba[i] === 0) i++;
      return { identical: false, firstDifference: pos + i, sizeMismatch: true };
    }
    pos += n;
    onProgress?.(pos, total);
  }
  return { identical: true, sizeMismatch: a.size !== b.size };
}

/** Parses qemu-img style sizes: 512, 10K, 64M, 2G, 1T (binary units), optional trailing B. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(?:i?[bB])?$/.exec(s.trim());
  if (!m) throw new Error(`invalid size '${s}'`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 }[m[2].toLowerCase()]!;
  const v = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(v)) throw new Error(`size '${s}' is too large`);
  return v;
}

/**
 * Moves a qcow2 image onto a new backing image (or none) without changing what it reads, as
 * `qemu-img rebase` does: wherever the image itself holds nothing and the old and new chains
 * differ, the old chain's data is copied in first; then the header is pointed at the new backing.
 * Deleting a snapshot layer is `rebaseImage(child, grandparent)`: the child absorbs the layer.
 */
export function rebaseImage(path: string, newBacking: string | null, newFormat?: ImageFormat, onProgress?: Progress): void {
  const img = openImage(path, { cache: false });
  try {
    if (!(img instanceof Qcow2Image)) throw new DiskError(path, `rebase needs a qcow2 image (this is ${img.format})`);
    const dir = nodePath.dirname(path);
    const target = newBacking === null ? null : openImage(nodePath.isAbsolute(newBacking) ? newBacking : nodePath.join(dir, newBacking), { readOnly: true, format: newFormat, cache: false });
    try {
      const old = img.backing;
      const a = new Uint8Array(CHUNK);
      const b = new Uint8Array(CHUNK);
      let pos = 0;
      while (pos < img.size) {
        const st = img.blockStatus(pos, Math.min(CHUNK, img.size - pos));
        const n = Math.max(1, Math.min(st.length, CHUNK));
        if (st.status === 'unallocated') {
          const oa = a.subarray(0, n);
          const nb = b.subarray(0, n);
          readChain(old, pos, oa);
          readChain(target, pos, nb);
          if (!Buffer.from(oa.buffer, 0, n).equals(Buffer.from(nb.buffer, 0, n))) img.write(pos, oa);
        }
        pos += n;
        onProgress?.(pos, img.size);
      }
      img.flush();
      img.changeBackingFile(newBacking, target?.format ?? newFormat);
    } finally {
      target?.close();
    }
  } finally {
    img.close();
  }
}

/**
 * Writes everything an image holds itself into its backing image (`qemu-img commit`). Afterwards
 * the backing image reads as the child did; other children of that backing image change too.
 */
export function commitImage(path: string, onProgress?: Progress): void {
  const child = openImage(path, { readOnly: true, cache: false });
  try {
    const parent = child.backing;
    if (!parent) throw new DiskError(path, 'has no backing file to commit into');
    const base = openImage(parent.path, { format: parent.format, cache: false });
    try {
      const buf = new Uint8Array(CHUNK);
      let pos = 0;
      const limit = Math.min(child.size, base.size);
      while (pos < limit) {
        const st = child.blockStatus(pos, Math.min(CHUNK, limit - pos));
        const n = Math.max(1, Math.min(st.length, CHUNK));
        if (st.status !== 'unallocated') {
          const b = buf.subarray(0, n);
          child.read(pos, b);
          base.write(pos, b);
        }
        pos += n;
        onProgress?.(pos, limit);
      }
      base.flush();
    } finally {
      base.close();
    }
  } finally {
    child.close();
  }
}

function readChain(img: DiskImage | null, pos: number, buf: Uint8Array): void {
  if (!img || pos >= img.size) {
    buf.fill(0);
    return;
  }
  const n = Math.min(buf.length, img.size - pos);
  img.read(pos, buf.subarray(0, n));
  buf.fill(0, n);
}
