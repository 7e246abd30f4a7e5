/**
 * A small PNG encoder for screenshots and thumbnails: 8-bit RGBA (or RGB when every pixel is
 * opaque), per-row adaptive filtering (None/Sub/Up/Paeth, least sum of absolute values), deflate from
 * node:zlib. No dependencies.
 */
import { deflateSync } from 'node:zlib';

export interface RgbaImage {
  width: number;
  height: number;
  /** RGBA, row-major. */
  data: Uint8Array | Uint8ClampedArray;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  dv.setUint32(8 + body.length, crc32(out, 4, 8 + body.length));
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Encodes `img` as PNG. */
export function encodePng(img: RgbaImage): Uint8Array {
  const { width, height, data } = img;
  if (!(width > 0 && height > 0) || data.length < width * height * 4) {
    throw new Error(`png: bad image ${width}x${height} with ${data.length} bytes`);
  }
  let opaque = true;
  for (let i = 3; i < width * height * 4; i += 4) {
    if (data[i] !== 255) {
      opaque = false;
      break;
    }
  }
  const bpp = opaque ? 3 : 4;
  const stride = width * bpp;
  const raw = new Uint8Array((stride + 1) * height);
  let prev = new Uint8Array(stride);
  let cur = new Uint8Array(stride);
  const candidates = [0, 1, 2, 4].map(() => new Uint8Array(stride));
  for (let y = 0; y < height; y++) {
    // Row in output channel layout.
    const src = y * width * 4;
    if (opaque) for (let x = 0, o = 0; x < width; x++, o += 3) {
      cur[o] = data[src + x * 4];
      cur[o + 1] = data[src + x * 4 + 1];
      cur[o + 2] = data[src + x * 4 + 2];
    }
    else cur.set(data.subarray(src, src + stride));
    let best = 0;
    let bestScore = Infinity;
    const types = [0, 1, 2, 4];
    for (let t = 0; t < types.length; t++) {
      const f = candidates[t];
      let score = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? cur[i - bpp] : 0;
        const b = prev[i];
        const c = i >= bpp ? prev[i - bpp] : 0;
        const pred = types[t] === 0 ? 0 : types[t] === 1 ? a : types[t] === 2 ? b : paeth(a, b, c);
        const v = (cur[i] - pred) & 0xff;
        f[i] = v;
        score += v < 128 ? v : 256 - v;
      }
      if (score < bestScore) {
        bestScore = score;
        best = t;
      }
    }
    raw[y * (stride + 1)] = types[best];
    raw.set(candidates[best], y * (stride + 1) + 1);
    const t = prev;
    prev = cur;
    cur = t;
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8;
  ihdr[9] = opaque ? 2 : 6;
  const idat = new Uint8Array(deflateSync(raw, { level: 6 }));
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
