#!/usr/bin/env node
// Draws the app icon (icon.png, 512x512) without image libraries: a boxwood-green rounded tile
// with an isometric box on it. Run: node resources/build/make-icon.mjs
import { deflateSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const N = 512;
const px = new Uint8Array(N * N * 4);
const set = (x, y, [r, g, b, a = 255]) => {
  const i = (y * N + x) * 4;
  px[i] = r;
  px[i + 1] = g;
  px[i + 2] = b;
  px[i + 3] = a;
};
const inRounded = (x, y, m, rad) => {
  const cx = Math.min(Math.max(x, m + rad), N - 1 - m - rad);
  const cy = Math.min(Math.max(y, m + rad), N - 1 - m - rad);
  return (x - cx) ** 2 + (y - cy) ** 2 <= rad * rad;
};
// an isometric box: three faces as polygons around the centre
const c = N / 2;
const s = 150;
const w = s * 0.866;
const inPoly = (x, y, pts) => {
  let inside = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i];
    const [xj, yj] = pts[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
};
const topFace = [
  [c, c - s],
  [c + w, c - s / 2],
  [c, c],
  [c - w, c - s / 2],
];
const leftFace = [
  [c - w, c - s / 2],
  [c, c],
  [c, c + s],
  [c - w, c + s / 2],
];
const rightFace = [
  [c + w, c - s / 2],
  [c, c],
  [c, c + s],
  [c + w, c + s / 2],
];
const top = (x, y) => inPoly(x, y, topFace);
const left = (x, y) => inPoly(x, y, leftFace);
const right = (x, y) => inPoly(x, y, rightFace);
for (let y = 0; y < N; y++) {
  for (let x = 0; x < N; x++) {
    if (!inRounded(x, y, 16, 96)) continue;
    const shade = 1 - (y / N) * 0.25;
    set(x, y, [Math.round(46 * shade), Math.round(110 * shade), Math.round(60 * shade)]);
    if (top(x, y)) set(x, y, [236, 214, 160]);
    else if (left(x, y)) set(x, y, [196, 160, 98]);
    else if (right(x, y)) set(x, y, [160, 124, 70]);
  }
}
// PNG: signature, IHDR, IDAT (filter 0 per row), IEND
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let k = n;
  for (let i = 0; i < 8; i++) k = k & 1 ? 0xedb88320 ^ (k >>> 1) : k >>> 1;
  return k >>> 0;
});
const crc = (buf) => {
  let k = 0xffffffff;
  for (const b of buf) k = crcTable[(k ^ b) & 0xff] ^ (k >>> 8);
  return (k ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
};
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(N, 0);
ihdr.writeUInt32BE(N, 4);
ihdr[8] = 8;
ihdr[9] = 6;
const raw = Buffer.alloc(N * (N * 4 + 1));
for (let y = 0; y < N; y++) Buffer.from(px.buffer, y * N * 4, N * 4).copy(raw, y * (N * 4 + 1) + 1);
const png = Buffer.concat([
  Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
  chunk('IHDR', ihdr),
  chunk('IDAT', deflateSync(raw, { level: 9 })),
  chunk('IEND', Buffer.alloc(0)),
]);
writeFileSync(join(dirname(fileURLToPath(import.meta.url)), 'icon.png'), png);
