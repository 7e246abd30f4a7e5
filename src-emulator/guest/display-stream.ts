/**
 * Turns the VGA device's state into stream messages: a text screen when it changed, else the
 * rectangles of a graphics frame that differ from the last one sent (tiles compared as 32-bit
 * pixels, changed tiles of a band merged into one rectangle), so an idle screen costs nothing on
 * the wire.
 */
import { StreamType, type StatusInfo, type StreamMessage } from './protocol';
import type { MachineDisplay } from '../machine/machine';

/** What the streamer reads; dirty flag, mode geometry and cursor are used when the device offers them. */
export type StreamedDisplay = Pick<MachineDisplay, 'getTextScreen' | 'renderRgba'> & {
  readonly dirty?: boolean;
  getMode?(): { kind: string; width: number; height: number; cols?: number };
  getCursor?(): { col: number; row: number } | null;
};

const TILE_W = 64;
const TILE_H = 16;

export class DisplayStreamer {
  private lastText: string | null = null;
  private lastFrame: Uint32Array | null = null;
  private lastWidth = 0;
  private lastHeight = 0;
  private lastStatus = '';

  /** Forgets what was sent, so the next `poll` sends the whole screen (a new viewer, a reset). */
  invalidate(): void {
    this.lastText = null;
    this.lastFrame = null;
    this.lastStatus = '';
  }

  poll(display: StreamedDisplay | null, paused: boolean): StreamMessage[] {
    const out: StreamMessage[] = [];
    if (!display) {
      this.status(out, { mode: 'none', paused, width: 0, height: 0 });
      return out;
    }
    const text = display.getTextScreen();
    if (text !== null) {
      const rows = text.split('\n');
      // Rows come with trailing blanks trimmed; PC text modes are 40 or 80 columns wide.
      const longest = rows.reduce((m, r) => Math.max(m, r.length), 0);
      const cols = Math.max(display.getMode?.().cols ?? 80, longest);
      const cursor = display.getCursor?.() ?? null;
      const key = `${cursor?.col ?? -1},${cursor?.row ?? -1}\n${text}`;
      this.status(out, { mode: 'text', paused, width: cols, height: rows.length });
      if (key !== this.lastText) {
        this.lastText = key;
        out.push({ type: StreamType.Text, cols, rows: rows.length, cursorCol: cursor?.col ?? -1, cursorRow: cursor?.row ?? -1, text });
      }
      // The text is what a text mode means (and what screen readers and tests read); the pixels,
      // drawn by the VGA device with its font and colours, are what it looks like.
      this.pixels(display, out, null);
      return out;
    }
    this.lastText = null;
    this.pixels(display, out, paused);
    return out;
  }

  /** Sends the changed rectangles of the rendered screen; a status line too when `paused` is given (graphics). */
  private pixels(display: StreamedDisplay, out: StreamMessage[], paused: boolean | null): void {
    // Nothing drawn since the last frame we sent: skip the render and the comparison.
    if (display.dirty === false && this.lastFrame) return;
    const { width, height, data } = display.renderRgba();
    if (paused !== null) this.status(out, { mode: 'graphics', paused, width, height });
    if (width === 0 || height === 0) return;
    const pixels = new Uint32Array(data.buffer, data.byteOffset, width * height);
    const prev = this.lastFrame && this.lastWidth === width && this.lastHeight === height ? this.lastFrame : null;
    for (let ty = 0; ty < height; ty += TILE_H) {
      const th = Math.min(TILE_H, height - ty);
      let x0 = -1;
      let x1 = -1;
      for (let tx = 0; tx < width; tx += TILE_W) {
        const tw = Math.min(TILE_W, width - tx);
        if (!prev || tileDiffers(pixels, prev, width, tx, ty, tw, th)) {
          if (x0 < 0) x0 = tx;
          x1 = tx + tw;
        }
      }
      if (x0 >= 0) out.push(rect(data, width, height, x0, ty, x1 - x0, th));
    }
    this.lastFrame = pixels.slice();
    this.lastWidth = width;
    this.lastHeight = height;
  }

  private status(out: StreamMessage[], s: StatusInfo): void {
    const key = JSON.stringify(s);
    if (key === this.lastStatus) return;
    this.lastStatus = key;
    out.push({ type: StreamType.Status, status: s });
  }
}

function tileDiffers(a: Uint32Array, b: Uint32Array, width: number, x: number, y: number, w: number, h: number): boolean {
  for (let row = y; row < y + h; row++) {
    const base = row * width + x;
    for (let i = base; i < base + w; i++) if (a[i] !== b[i]) return true;
  }
  return false;
}

function rect(data: Uint8ClampedArray, width: number, height: number, x: number, y: number, w: number, h: number): StreamMessage {
  const rgba = new Uint8Array(w * h * 4);
  for (let row = 0; row < h; row++) {
    const src = ((y + row) * width + x) * 4;
    rgba.set(data.subarray(src, src + w * 4), row * w * 4);
  }
  return { type: StreamType.Frame, width, height, x, y, w, h, rgba };
}
