/**
 * One live connection per running VM: it decodes the guest's stream into a framebuffer canvas
 * (text drawn with a monospace font, graphics rectangles put as pixels) that the display and the
 * library thumbnail both paint from, keeps the serial output for the console, and sends input.
 */
import { api, type StreamConnection } from './api';
import { decodeStream, encodeStream, StreamType, type StreamMessage } from '../../../src-emulator/guest/protocol';

const CELL_W = 9;
const CELL_H = 16;
const SERIAL_KEPT = 256 * 1024;

export class LiveVm {
  mode = $state<'text' | 'graphics' | 'none'>('none');
  paused = $state(false);
  width = $state(0);
  height = $state(0);
  /** Bumped on every screen change; components redraw when it moves. */
  version = $state(0);
  connected = $state(false);
  text = $state('');
  framesReceived = $state(0);
  /** The guest's screen at native size. */
  readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private conn: StreamConnection | null = null;
  private serialChunks: Uint8Array[] = [];
  private serialBytes = 0;
  private readonly serialListeners = new Set<(b: Uint8Array) => void>();
  private closed = false;
  private pixelsSeen = false;
  private retry: ReturnType<typeof setTimeout> | null = null;

  constructor(readonly vmId: string) {
    this.canvas = document.createElement('canvas');
    this.canvas.width = 720;
    this.canvas.height = 400;
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: false })!;
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const c = api.connectStream(this.vmId);
    this.conn = c;
    c.onMessage = (bytes) => {
      this.connected = true;
      let m: StreamMessage;
      try {
        m = decodeStream(bytes);
      } catch {
        return;
      }
      this.apply(m);
    };
    c.onClose = () => {
      this.connected = false;
      if (this.closed) return;
      this.retry = setTimeout(() => this.connect(), 700);
    };
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.conn?.close();
  }

  private apply(m: StreamMessage): void {
    switch (m.type) {
      case StreamType.Status:
        this.mode = m.status.mode;
        this.paused = m.status.paused;
        this.width = m.status.width;
        this.height = m.status.height;
        if (m.status.mode !== 'text') this.text = '';
        break;
      case StreamType.Text:
        this.drawText(m.cols, m.rows, m.text, m.cursorCol, m.cursorRow);
        break;
      case StreamType.Frame:
        this.drawRect(m);
        break;
      case StreamType.Serial:
        this.serialChunks.push(m.bytes);
        this.serialBytes += m.bytes.length;
        while (this.serialBytes > SERIAL_KEPT && this.serialChunks.length > 1) this.serialBytes -= this.serialChunks.shift()!.length;
        for (const l of this.serialListeners) l(m.bytes);
        break;
    }
  }

  private drawText(cols: number, rows: number, text: string, cursorCol: number, cursorRow: number): void {
    this.text = text;
    // The VGA device renders text modes as pixels too (its font, its colours); those win. The
    // glyphs drawn here are for a display that sends text only.
    if (this.pixelsSeen) return;
    const w = Math.max(1, cols) * CELL_W;
    const h = Math.max(1, rows) * CELL_H;
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    const ctx = this.ctx;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#c0c0c0';
    ctx.font = `${CELL_H - 2}px "DejaVu Sans Mono", Menlo, Consolas, monospace`;
    ctx.textBaseline = 'top';
    text.split('\n').forEach((line, row) => {
      for (let col = 0; col < line.length; col++) {
        const ch = line[col];
        if (ch !== ' ') ctx.fillText(ch, col * CELL_W, row * CELL_H + 1);
      }
    });
    if (cursorCol >= 0 && cursorRow >= 0) ctx.fillRect(cursorCol * CELL_W, cursorRow * CELL_H + CELL_H - 3, CELL_W, 2);
    this.version++;
  }

  private drawRect(m: Extract<StreamMessage, { type: StreamType.Frame }>): void {
    if (this.canvas.width !== m.width || this.canvas.height !== m.height) {
      this.canvas.width = m.width;
      this.canvas.height = m.height;
    }
    const img = new ImageData(new Uint8ClampedArray(m.rgba.buffer as ArrayBuffer, m.rgba.byteOffset, m.rgba.byteLength), m.w, m.h);
    this.ctx.putImageData(img, m.x, m.y);
    this.pixelsSeen = true;
    this.framesReceived++;
    this.version++;
  }

  /** Serial output so far, then every new chunk; returns an unsubscribe function. */
  subscribeSerial(cb: (b: Uint8Array) => void): () => void {
    for (const c of this.serialChunks) cb(c);
    this.serialListeners.add(cb);
    return () => this.serialListeners.delete(cb);
  }

  send(m: StreamMessage): void {
    this.conn?.send(encodeStream(m));
  }

  key(code: string, down: boolean): void {
    this.send({ type: StreamType.Key, code, down });
  }

  serialIn(bytes: Uint8Array, port = 0): void {
    this.send({ type: StreamType.SerialIn, port, bytes });
  }

  ctrlAltDel(): void {
    this.send({ type: StreamType.CtrlAltDel });
  }

  mouse(dx: number, dy: number, buttons: number, wheel = 0): void {
    const clamp = (v: number) => Math.max(-32768, Math.min(32767, Math.round(v)));
    this.send({ type: StreamType.Mouse, dx: clamp(dx), dy: clamp(dy), buttons, wheel: Math.max(-128, Math.min(127, wheel)) });
  }
}

/** Keeps exactly one LiveVm per VM that has a guest process. */
export class LiveHub {
  private readonly live = new Map<string, LiveVm>();
  /** Reactive copy for components. */
  vms = $state<Record<string, LiveVm>>({});
  /** The last screen of VMs that stopped during this session (library thumbnails show it dimmed). */
  lastScreens = $state<Record<string, HTMLCanvasElement>>({});

  sync(liveIds: string[]): void {
    const want = new Set(liveIds);
    for (const [id, l] of this.live) {
      if (!want.has(id)) {
        l.close();
        this.live.delete(id);
        if (l.version > 0) this.lastScreens = { ...this.lastScreens, [id]: l.canvas };
      }
    }
    for (const id of want) if (!this.live.has(id)) this.live.set(id, new LiveVm(id));
    this.vms = Object.fromEntries(this.live);
  }
}

export const liveHub = new LiveHub();
