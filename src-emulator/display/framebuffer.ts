/**
 * Framebuffer helpers for the display's consumers (guest process, CLI, thumbnails): cutting a dirty
 * rectangle out of a frame to send only what changed, scaling down for thumbnails, screenshots.
 */
import { encodePng } from './png';

export interface Frame {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Copies `rect` (clipped to the frame) out of `frame` as a tightly packed RGBA block. */
export function cropRgba(frame: Frame, rect: Rect): Frame {
  const x0 = Math.max(0, Math.min(frame.width, rect.x));
  const y0 = Math.max(0, Math.min(frame.height, rect.y));
  const x1 = Math.max(x0, Math.min(frame.width, rect.x + rect.width));
  const y1 = Math.max(y0, Math.min(frame.height, rect.y + rect.height));
  const w = x1 - x0;
  const h = y1 - y0;
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    const s = ((y0 + y) * frame.width + x0) * 4;
    out.set(frame.data.subarray(s, s + w * 4), y * w * 4);
  }
  return { width: w, height: h, data: out };
}

/** Writes `block` (as from cropRgba) into `frame` at (x, y): the receiving side of dirty updates. */
export function blitRgba(frame: Frame, block: Frame, x: number, y: number): void {
  for (let row = 0; row < block.height; row++) {
    const ty = y + row;
    if (ty < 0 || ty >= frame.height) continue;
    const w = Math.min(block.width, frame.width - x);
    if (w <= 0) return;
    frame.data.set(block.data.subarray(row * block.width * 4, row * block.width * 4 + w * 4), (ty * frame.width + x) * 4);
  }
}

/** Box-filter downscale to fit within maxWidth x maxHeight (aspect kept); for thumbnails. */
export function scaleDown(frame: Frame, maxWidth: number, maxHeight: number): Frame {
  const f = Math.max(frame.width / maxWidth, frame.height / maxHeight, 1);
  const w = Math.max(1, Math.round(frame.width / f));
  const h = Math.max(1, Math.round(frame.height / f));
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    const sy0 = Math.floor((y * frame.height) / h);
    const sy1 = Math.max(sy0 + 1, Math.floor(((y + 1) * frame.height) / h));
    for (let x = 0; x < w; x++) {
      const sx0 = Math.floor((x * frame.width) / w);
      const sx1 = Math.max(sx0 + 1, Math.floor(((x + 1) * frame.width) / w));
      let r = 0, g = 0, b = 0, a = 0;
      for (let sy = sy0; sy < sy1; sy++) {
        for (let sx = sx0; sx < sx1; sx++) {
          const i = (sy * frame.width + sx) * 4;
          r += frame.data[i];
          g += frame.data[i + 1];
          b += frame.data[i + 2];
          a += frame.data[i + 3];
        }
      }
      const n = (sy1 - sy0) * (sx1 - sx0);
      const o = (y * w + x) * 4;
      out[o] = r / n;
      out[o + 1] = g / n;
      out[o + 2] = b / n;
      out[o + 3] = a / n;
    }
  }
  return { width: w, height: h, data: out };
}

/** A PNG of what the display shows now (a black 640x480 image when the mode has no pixels). */
export function screenshotPng(display: { renderRgba(): Frame }): Uint8Array {
  const f = display.renderRgba();
  if (f.width === 0 || f.height === 0) {
    const data = new Uint8ClampedArray(640 * 480 * 4);
    for (let i = 3; i < data.length; i += 4) data[i] = 255;
    return encodePng({ width: 640, height: 480, data });
  }
  return encodePng(f);
}
