/**
 * The web twin: the same renderer bundle and API as the desktop app, served to a browser on
 * 127.0.0.1 only, behind a random token.
 *
 * Access: the printed URL carries `?token=`; the first page load turns it into an HttpOnly,
 * SameSite=Strict cookie so the bundle's own requests and WebSockets carry it. Anything without
 * the token (query, cookie or `Authorization: Bearer`) gets 403, as does a request whose Host is
 * not this loopback address (DNS rebinding) or a WebSocket from another Origin.
 *
 * Streams: unlike Electron's MessagePorts, a browser cannot talk to a guest process directly, so
 * this server relays each guest's stream pipe to that VM's WebSockets. It only moves framed bytes
 * (and checks that what a browser sends is a well-formed input message); it does not decode frames.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream, createWriteStream, existsSync, rmSync, statSync } from 'node:fs';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Hypervisor } from '../hypervisor/hypervisor';
import { NodeGuestProcess } from '../hypervisor/guest-process';
import { NotAnImageError, probeMedia } from '../hypervisor/media-probe';
import { createApiHandler, type ApiHandler } from '../api/handler';
import { vmIdSchema, wsRequestSchema } from '../api/schemas';
import { decodeStream, frameForPipe, PipeDeframer, StreamType } from '../../src-emulator/guest/protocol';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/** Cookies do not separate ports, so two twins on one host each need their own cookie name. */
const cookieName = (port: number) => `boxwood_token_${port}`;
const MAX_UPLOAD_BYTES = 64 * 1024 ** 3;
const MAX_BUFFERED_STREAM_BYTES = 32 * 1024 * 1024;
const INPUT_TYPES = new Set([
  StreamType.Key,
  StreamType.Scancodes,
  StreamType.Mouse,
  StreamType.SerialIn,
  StreamType.Refresh,
  StreamType.CtrlAltDel,
]);

export interface WebTwinOptions {
  hv: Hypervisor;
  /** Folder with the built renderer (index.html and assets). */
  rendererDir: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Fixed token (tests); default: 32 random bytes. */
  token?: string;
}

/** One guest's stream pipe fanned out to its viewers. */
class StreamRelay {
  readonly sockets = new Set<WebSocket>();

  constructor(readonly guest: NodeGuestProcess) {
    const deframer = new PipeDeframer((message) => {
      for (const ws of this.sockets) {
        if (ws.bufferedAmount > MAX_BUFFERED_STREAM_BYTES)
          ws.close(4008, 'viewer too slow'); // it reconnects and gets a full frame
        else ws.send(message);
      }
    });
    const stream: Duplex = guest.stream;
    stream.on('data', (chunk: Buffer) => {
      try {
        deframer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch {
        stream.destroy();
      }
    });
    guest.on('exit', () => {
      for (const ws of this.sockets) ws.close(4000, 'guest process ended');
      this.sockets.clear();
    });
  }

  toGuest(bytes: Uint8Array): void {
    this.guest.stream.write(frameForPipe(bytes));
  }
}

export class WebTwin {
  readonly token: string;
  private server: Server | null = null;
  private readonly apiWss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly streamWss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly relays = new WeakMap<NodeGuestProcess, StreamRelay>();
  private readonly handler: ApiHandler;
  private changeTimer: ReturnType<typeof setTimeout> | null = null;
  port = 0;

  constructor(private readonly opts: WebTwinOptions) {
    this.token = opts.token ?? randomBytes(32).toString('base64url');
    this.handler = createApiHandler(opts.hv);
    opts.hv.on('changed', () => this.scheduleChanged());
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/?token=${this.token}`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.onRequest(req, res).catch((err) => {
        if (!res.headersSent) this.text(res, 500, `internal error: ${(err as Error).message}`);
        else res.destroy();
      });
    });
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.server = server;
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(this.opts.port ?? 0, '127.0.0.1', () => ok());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
  }

  async close(): Promise<void> {
    for (const ws of [...this.apiWss.clients, ...this.streamWss.clients]) ws.terminate();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
    this.server?.closeAllConnections?.();
  }

  // ------------------------------------------------------------------------------ access

  private tokenOf(req: IncomingMessage): string | null {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams.get('token');
    if (q) return q;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) return auth.slice(7);
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === cookieName(this.port)) return v.join('=');
    }
    return null;
  }

  private tokenOk(candidate: string | null): boolean {
    if (!candidate) return false;
    const a = Buffer.from(candidate);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private hostOk(req: IncomingMessage): boolean {
    const host = req.headers.host;
    return host === `127.0.0.1:${this.port}` || host === `localhost:${this.port}`;
  }

  /** Why a request is refused, or null when it may pass. */
  refusal(req: IncomingMessage, upgrade: boolean): string | null {
    if (!this.hostOk(req)) return 'wrong Host header';
    if (!this.tokenOk(this.tokenOf(req))) return 'missing or wrong token';
    if (upgrade) {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://127.0.0.1:${this.port}` && origin !== `http://localhost:${this.port}`)
        return 'foreign Origin';
    }
    return null;
  }

  // ------------------------------------------------------------------------------ HTTP

  private text(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(body + '\n');
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const why = this.refusal(req, false);
    if (why) {
      this.text(res, 403, `Forbidden (${why}): open the URL that \`boxwood serve\` printed, with its token.`);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/api/upload') {
      if (req.method !== 'POST') return this.text(res, 405, 'POST only');
      return this.upload(req, res, url.searchParams.get('name') ?? 'upload');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.text(res, 405, 'method not allowed');
    this.serveStatic(req, res, url);
  }

  private serveStatic(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const root = resolve(this.opts.rendererDir);
    const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname).replace(/^\/+/, '');
    const file = resolve(root, normalize(rel));
    if (file !== root && !file.startsWith(root + sep)) return this.text(res, 404, 'not found');
    if (!existsSync(file) || !statSync(file).isFile()) return this.text(res, 404, 'not found');
    const headers: Record<string, string> = {
      'Content-Type': MIME[extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy': this.csp(),
      'Cross-Origin-Opener-Policy': 'same-origin',
      'X-Frame-Options': 'DENY',
    };
    if (url.searchParams.get('token')) headers['Set-Cookie'] = `${cookieName(this.port)}=${this.token}; HttpOnly; SameSite=Strict; Path=/`;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
  }

  private csp(): string {
    const ws = `ws://127.0.0.1:${this.port} ws://localhost:${this.port}`;
    return [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data: blob:",
      "font-src 'self' data:",
      `connect-src 'self' ${ws}`,
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; ');
  }

  /**
   * A browser cannot hand over a host path for a dropped file, so its bytes are uploaded and kept
   * in the library's `.media/` folder; the file is then recognised by content like any other.
   */
  private async upload(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > MAX_UPLOAD_BYTES) return this.json(res, 413, { error: `file larger than ${MAX_UPLOAD_BYTES} bytes` });
    const dir = this.opts.hv.library.mediaDir();
    const safe =
      name
        .replace(/[/\\:*?"<>|\x00-\x1f]/g, '_')
        .replace(/^\.+/, '')
        .slice(0, 120) || 'upload';
    let target = join(dir, safe);
    for (let n = 2; existsSync(target); n++) target = join(dir, `${n}-${safe}`);
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_UPLOAD_BYTES) req.destroy(new Error('upload too large'));
    });
    try {
      await pipeline(req, createWriteStream(target, { flags: 'wx' }));
    } catch (err) {
      rmSync(target, { force: true });
      return this.json(res, 400, { error: `upload failed: ${(err as Error).message}` });
    }
    try {
      this.json(res, 200, probeMedia(target));
    } catch (err) {
      rmSync(target, { force: true });
      const msg = err instanceof NotAnImageError ? `${name} is not a disk image or ISO that Boxwood recognises` : (err as Error).message;
      this.json(res, 415, { error: msg });
    }
  }

  // ------------------------------------------------------------------------------ WebSockets

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const why = this.refusal(req, true);
    if (why) {
      socket.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nForbidden (${why})\n`);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/api') {
      this.apiWss.handleUpgrade(req, socket, head, (ws) => this.onApiSocket(ws));
      return;
    }
    const m = /^\/stream\/([^/]+)$/.exec(url.pathname);
    if (m && vmIdSchema.safeParse(m[1]).success) {
      this.streamWss.handleUpgrade(req, socket, head, (ws) => this.onStreamSocket(ws, m[1]));
      return;
    }
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
  }

  private onApiSocket(ws: WebSocket): void {
    ws.on('message', async (data: RawData, isBinary: boolean) => {
      if (isBinary) return ws.close(1003, 'text frames only');
      let req;
      try {
        req = wsRequestSchema.parse(JSON.parse(data.toString()));
      } catch {
        return ws.close(1008, 'malformed request');
      }
      try {
        const result = await this.handler(req.method, req.params);
        ws.send(JSON.stringify({ id: req.id, result }));
      } catch (err) {
        ws.send(JSON.stringify({ id: req.id, error: (err as Error).message }));
      }
    });
    ws.on('error', () => {});
  }

  private scheduleChanged(): void {
    if (this.changeTimer) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = null;
      if (this.apiWss.clients.size === 0) return;
      const msg = JSON.stringify({ event: { type: 'vms-changed', vms: this.opts.hv.list() } });
      for (const ws of this.apiWss.clients) ws.send(msg);
    }, 30);
  }

  private onStreamSocket(ws: WebSocket, vmId: string): void {
    const guest = this.opts.hv.guestOf(vmId);
    if (!(guest instanceof NodeGuestProcess)) {
      ws.close(4404, 'VM not running');
      return;
    }
    let relay = this.relays.get(guest);
    if (!relay) {
      relay = new StreamRelay(guest);
      this.relays.set(guest, relay);
    }
    const r = relay;
    r.sockets.add(ws);
    ws.on('close', () => r.sockets.delete(ws));
    ws.on('error', () => {});
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) return;
      const bytes =
        data instanceof Buffer
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : new Uint8Array(Buffer.concat(data as Buffer[]));
      try {
        const msg = decodeStream(bytes);
        if (!INPUT_TYPES.has(msg.type)) throw new Error('not an input message');
      } catch {
        return ws.close(1008, 'malformed stream message');
      }
      r.toGuest(bytes);
    });
    // A new viewer needs the whole screen, not the next difference.
    r.toGuest(new Uint8Array([StreamType.Refresh]));
  }
}
