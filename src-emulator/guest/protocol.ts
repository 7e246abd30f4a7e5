/**
 * The guest process's two channels.
 *
 * Control (hypervisor <-> guest): small JSON messages over Node's IPC channel (child_process) or
 * Electron's parentPort (utilityProcess). The hypervisor validates what it receives.
 *
 * Stream (guest <-> renderer): display updates, serial bytes and input, as binary messages
 * (`encodeStream`/`decodeStream`, one type byte then a payload). The same bytes travel over a
 * MessagePort (Electron) or a length-prefixed pipe relayed to a WebSocket (web twin), so the
 * renderer decodes one format whatever the shell. Pure TypeScript: no Node, no DOM.
 */
import type { MachineConfig } from '../machine/config';

// ------------------------------------------------------------------------------------ control

export type HostToGuest =
  /** `restorePath`: a saved state to load instead of booting from scratch (deleted once loaded). */
  | { type: 'boot'; vmId: string; vmDir: string; config: MachineConfig; restorePath?: string }
  /** Save the whole machine to `path`, then power off (the VM becomes 'saved'). */
  | { type: 'save'; path: string }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'reset' }
  | { type: 'power-button' }
  | { type: 'power-off' }
  /** Electron only: the MessagePort of a renderer's stream arrives with this message. */
  | { type: 'attach-stream' };

export type GuestToHost =
  /** The process is up and waits for `boot`. */
  | { type: 'ready'; pid: number }
  | { type: 'booted'; restored: boolean }
  /** The state is on disk; the process exits next. */
  | { type: 'saved' }
  | { type: 'paused' }
  | { type: 'resumed' }
  /** The guest turned the machine off (ACPI, or power-off obeyed); the process exits next. */
  | { type: 'poweroff'; reason: string }
  /** Boot failed or the machine stopped on an error; the process exits next. */
  | { type: 'error'; message: string };

// ------------------------------------------------------------------------------------ stream

export enum StreamType {
  // guest -> renderer
  Serial = 1,
  Text = 2,
  Frame = 3,
  Status = 4,
  // renderer -> guest
  Key = 16,
  Scancodes = 17,
  Mouse = 18,
  SerialIn = 19,
  Refresh = 20,
  CtrlAltDel = 21,
}

export interface StatusInfo {
  /** 'text' | 'graphics' | 'none' (no display device yet) */
  mode: 'text' | 'graphics' | 'none';
  paused: boolean;
  width: number;
  height: number;
}

export type StreamMessage =
  | { type: StreamType.Serial; port: number; bytes: Uint8Array }
  /** A whole text screen, rows joined by \n (trailing blanks trimmed); cursor -1 when hidden. */
  | { type: StreamType.Text; cols: number; rows: number; cursorCol: number; cursorRow: number; text: string }
  /** One dirty rectangle of a `width` x `height` graphics screen, RGBA. */
  | { type: StreamType.Frame; width: number; height: number; x: number; y: number; w: number; h: number; rgba: Uint8Array }
  | { type: StreamType.Status; status: StatusInfo }
  /** A key by its KeyboardEvent.code; the guest maps it to PS/2 scancodes. */
  | { type: StreamType.Key; code: string; down: boolean }
  | { type: StreamType.Scancodes; bytes: Uint8Array }
  | { type: StreamType.Mouse; dx: number; dy: number; buttons: number; wheel: number }
  | { type: StreamType.SerialIn; port: number; bytes: Uint8Array }
  | { type: StreamType.Refresh }
  | { type: StreamType.CtrlAltDel };

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

function withHeader(type: StreamType, headerBytes: number, payload: Uint8Array | null): { out: Uint8Array; view: DataView } {
  const out = new Uint8Array(1 + headerBytes + (payload?.length ?? 0));
  out[0] = type;
  if (payload) out.set(payload, 1 + headerBytes);
  return { out, view: new DataView(out.buffer) };
}

export function encodeStream(m: StreamMessage): Uint8Array {
  switch (m.type) {
    case StreamType.Serial:
    case StreamType.SerialIn: {
      const { out } = withHeader(m.type, 1, m.bytes);
      out[1] = m.port;
      return out;
    }
    case StreamType.Text: {
      const { out, view } = withHeader(m.type, 8, utf8Encoder.encode(m.text));
      view.setUint16(1, m.cols, true);
      view.setUint16(3, m.rows, true);
      view.setInt16(5, m.cursorCol, true);
      view.setInt16(7, m.cursorRow, true);
      return out;
    }
    case StreamType.Frame: {
      const { out, view } = withHeader(m.type, 12, m.rgba);
      view.setUint16(1, m.width, true);
      view.setUint16(3, m.height, true);
      view.setUint16(5, m.x, true);
      view.setUint16(7, m.y, true);
      view.setUint16(9, m.w, true);
      view.setUint16(11, m.h, true);
      return out;
    }
    case StreamType.Status:
      return withHeader(m.type, 0, utf8Encoder.encode(JSON.stringify(m.status))).out;
    case StreamType.Key:
      return withHeader(m.type, 0, utf8Encoder.encode(JSON.stringify({ code: m.code, down: m.down }))).out;
    case StreamType.Scancodes:
      return withHeader(m.type, 0, m.bytes).out;
    case StreamType.Mouse: {
      const { out, view } = withHeader(m.type, 6, null);
      view.setInt16(1, m.dx, true);
      view.setInt16(3, m.dy, true);
      view.setUint8(5, m.buttons);
      view.setInt8(6, m.wheel);
      return out;
    }
    case StreamType.Refresh:
    case StreamType.CtrlAltDel:
      return withHeader(m.type, 0, null).out;
  }
}

export class StreamDecodeError extends Error {}

/** Decodes one stream message; malformed input throws StreamDecodeError (never anything else). */
export function decodeStream(data: Uint8Array): StreamMessage {
  if (data.length < 1) throw new StreamDecodeError('empty stream message');
  const type = data[0];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const need = (n: number) => {
    if (data.length < n) throw new StreamDecodeError(`stream message type ${type}: ${data.length} bytes, need ${n}`);
  };
  const json = (): Record<string, unknown> => {
    try {
      const v = JSON.parse(utf8Decoder.decode(data.subarray(1)));
      if (typeof v === 'object' && v !== null) return v as Record<string, unknown>;
    } catch {
      /* fall through */
    }
    throw new StreamDecodeError(`stream message type ${type}: bad JSON payload`);
  };
  switch (type) {
    case StreamType.Serial:
    case StreamType.SerialIn:
      need(2);
      return { type, port: data[1], bytes: data.slice(2) };
    case StreamType.Text:
      need(9);
      return {
        type,
        cols: view.getUint16(1, true),
        rows: view.getUint16(3, true),
        cursorCol: view.getInt16(5, true),
        cursorRow: view.getInt16(7, true),
        text: utf8Decoder.decode(data.subarray(9)),
      };
    case StreamType.Frame: {
      need(13);
      const width = view.getUint16(1, true);
      const height = view.getUint16(3, true);
      const x = view.getUint16(5, true);
      const y = view.getUint16(7, true);
      const w = view.getUint16(9, true);
      const h = view.getUint16(11, true);
      if (x + w > width || y + h > height) throw new StreamDecodeError('frame rectangle outside the screen');
      if (data.length - 13 !== w * h * 4) throw new StreamDecodeError(`frame of ${w}x${h} carries ${data.length - 13} bytes`);
      return { type, width, height, x, y, w, h, rgba: data.slice(13) };
    }
    case StreamType.Status: {
      const s = json();
      const mode = s.mode === 'text' || s.mode === 'graphics' ? s.mode : 'none';
      return { type, status: { mode, paused: s.paused === true, width: Number(s.width) || 0, height: Number(s.height) || 0 } };
    }
    case StreamType.Key: {
      const k = json();
      if (typeof k.code !== 'string' || k.code.length > 32 || typeof k.down !== 'boolean') throw new StreamDecodeError('bad key message');
      return { type, code: k.code, down: k.down };
    }
    case StreamType.Scancodes:
      return { type, bytes: data.slice(1) };
    case StreamType.Mouse:
      need(7);
      return { type, dx: view.getInt16(1, true), dy: view.getInt16(3, true), buttons: view.getUint8(5) & 7, wheel: view.getInt8(6) };
    case StreamType.Refresh:
      return { type };
    case StreamType.CtrlAltDel:
      return { type };
    default:
      throw new StreamDecodeError(`unknown stream message type ${type}`);
  }
}

// --------------------------------------------------------------- length-prefixed framing

/** Frames a message for a byte pipe: u32 little-endian length, then the message. */
export function frameForPipe(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + message.length);
  new DataView(out.buffer).setUint32(0, message.length, true);
  out.set(message, 4);
  return out;
}

/** Largest message a pipe accepts: a 2560x1600 RGBA frame plus headers. */
export const MAX_PIPE_MESSAGE = 2560 * 1600 * 4 + 64;

/** Splits a byte pipe back into messages; a length over the limit is a protocol error. */
export class PipeDeframer {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  constructor(private readonly onMessage: (message: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < 4) return;
      const head = this.peek(4);
      const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
      if (len > MAX_PIPE_MESSAGE) throw new StreamDecodeError(`pipe message of ${len} bytes exceeds the limit`);
      if (this.buffered < 4 + len) return;
      const all = this.take(4 + len);
      this.onMessage(all.subarray(4));
    }
  }

  private peek(n: number): Uint8Array {
    if (this.chunks[0].length >= n) return this.chunks[0];
    return this.flatten().subarray(0, n);
  }

  private take(n: number): Uint8Array {
    const flat = this.flatten();
    const out = flat.slice(0, n);
    const rest = flat.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  private flatten(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0];
    const flat = new Uint8Array(this.buffered);
    let o = 0;
    for (const c of this.chunks) {
      flat.set(c, o);
      o += c.length;
    }
    this.chunks = [flat];
    return flat;
  }
}
