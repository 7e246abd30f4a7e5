/**
 * The renderer's way to the hypervisor: the typed `BoxwoodApi` over one of two transports,
 * chosen once: Electron's preload bridge (`window.boxwood`) or the web twin's WebSocket.
 * Plus what differs by shell: event feed, VM streams, and turning a File into a host path.
 */
import type { ApiEvent, ApiMethod, BoxwoodApi, MediaProbeResult } from '../../../src-main/api/types';
import type { BoxwoodBridge, StreamPortMessage } from '../../../src-main/api/bridge';

/** A bidirectional byte channel to one VM's guest process. */
export interface StreamConnection {
  send(bytes: Uint8Array): void;
  close(): void;
  onMessage: ((bytes: Uint8Array) => void) | null;
  onClose: (() => void) | null;
}

export interface UiApi extends BoxwoodApi {
  readonly shell: 'electron' | 'web';
  onEvent(cb: (e: ApiEvent) => void): void;
  /** Web UI: told when the connection to the server drops (false) and comes back (true). */
  onConnection(cb: (up: boolean) => void): void;
  connectStream(vmId: string): StreamConnection;
  /** A dropped or chosen file, checked by content on the host: its path, kind and format. */
  importFile(file: File): Promise<MediaProbeResult>;
}

const METHODS: ApiMethod[] = [
  'hostInfo',
  'listVms',
  'createVm',
  'addExistingVm',
  'control',
  'attachMedia',
  'probeMedia',
  'readLog',
  'setLibraryPath',
  'updateVm',
  'detachMedia',
  'removeVm',
  'listSnapshots',
  'takeSnapshot',
  'restoreSnapshot',
  'deleteSnapshot',
  'editSnapshot',
  'cloneVm',
];

function makeApi(call: (method: ApiMethod, params: unknown[]) => Promise<unknown>): BoxwoodApi {
  const api = {} as Record<ApiMethod, (...args: unknown[]) => Promise<unknown>>;
  for (const m of METHODS) api[m] = (...args: unknown[]) => call(m, args);
  return api as unknown as BoxwoodApi;
}

// ----------------------------------------------------------------------------- Electron

function bridgeApi(bridge: BoxwoodBridge): UiApi {
  const base = makeApi((m, p) => bridge.invoke(m, p));
  const waiting = new Map<string, (port: MessagePort) => void>();
  window.addEventListener('message', (e: MessageEvent) => {
    const d = e.data as Partial<StreamPortMessage> | null;
    if (e.source !== window || !d || typeof d.boxwoodStream !== 'string' || !e.ports[0]) return;
    waiting.get(d.boxwoodStream)?.(e.ports[0]);
    waiting.delete(d.boxwoodStream);
  });
  return {
    ...base,
    shell: 'electron',
    onEvent: (cb) => void bridge.onEvent(cb),
    onConnection: () => {},
    connectStream(vmId) {
      let port: MessagePort | null = null;
      let closed = false;
      const conn: StreamConnection = {
        send: (bytes) => port?.postMessage(bytes, [bytes.buffer as ArrayBuffer]),
        close: () => {
          closed = true;
          port?.close();
        },
        onMessage: null,
        onClose: null,
      };
      waiting.set(vmId, (p) => {
        if (closed) return p.close();
        port = p;
        p.onmessage = (e) => conn.onMessage?.(e.data instanceof Uint8Array ? e.data : new Uint8Array(e.data as ArrayBuffer));
        // Electron fires 'close' on a MessagePort whose other end went away (the guest process ended).
        p.addEventListener('close', () => conn.onClose?.());
        p.start();
      });
      bridge.openStream(vmId);
      return conn;
    },
    async importFile(file) {
      const path = bridge.pathForFile(file);
      if (!path) throw new Error(`${file.name}: no file on disk behind it`);
      return base.probeMedia(path);
    },
  };
}

// ----------------------------------------------------------------------------- web twin

function webApi(): UiApi {
  const origin = `ws://${location.host}`;
  let ws: WebSocket | null = null;
  let ready: Promise<WebSocket> | null = null;
  let nextId = 1;
  const pending = new Map<number, { ok: (v: unknown) => void; fail: (e: Error) => void }>();
  const listeners: ((e: ApiEvent) => void)[] = [];
  const connectionListeners: ((up: boolean) => void)[] = [];
  let wasUp = false;

  function connect(): Promise<WebSocket> {
    if (ready) return ready;
    ready = new Promise((ok, fail) => {
      const s = new WebSocket(`${origin}/api`);
      s.onopen = () => {
        ws = s;
        ok(s);
        if (!wasUp) for (const l of connectionListeners) l(true);
        wasUp = true;
      };
      s.onerror = () => fail(new Error('cannot reach the Boxwood server'));
      s.onclose = () => {
        ws = null;
        ready = null;
        if (wasUp) for (const l of connectionListeners) l(false);
        wasUp = false;
        for (const p of pending.values()) p.fail(new Error('connection to the Boxwood server lost'));
        pending.clear();
        // Reconnect, so events keep flowing after a server hiccup.
        setTimeout(() => void connect().catch(() => {}), 1000);
      };
      s.onmessage = (e) => {
        const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown; error?: string; event?: ApiEvent };
        if (m.event) for (const l of listeners) l(m.event);
        if (m.id !== undefined) {
          const p = pending.get(m.id);
          pending.delete(m.id);
          if (m.error !== undefined) p?.fail(new Error(m.error));
          else p?.ok(m.result);
        }
      };
    });
    return ready;
  }

  const base = makeApi(async (method, params) => {
    const s = ws ?? (await connect());
    const id = nextId++;
    return new Promise((ok, fail) => {
      pending.set(id, { ok, fail });
      s.send(JSON.stringify({ id, method, params }));
    });
  });

  return {
    ...base,
    shell: 'web',
    onEvent: (cb) => {
      listeners.push(cb);
      void connect().catch(() => {});
    },
    onConnection: (cb) => void connectionListeners.push(cb),
    connectStream(vmId) {
      const s = new WebSocket(`${origin}/stream/${vmId}`);
      s.binaryType = 'arraybuffer';
      const conn: StreamConnection = {
        send: (bytes) => {
          if (s.readyState === WebSocket.OPEN) s.send(bytes);
        },
        close: () => s.close(),
        onMessage: null,
        onClose: null,
      };
      s.onmessage = (e) => conn.onMessage?.(new Uint8Array(e.data as ArrayBuffer));
      s.onclose = () => conn.onClose?.();
      return conn;
    },
    async importFile(file) {
      // The browser has no host path for a File: its bytes go to the twin, which keeps them in
      // the library's .media folder and checks the content.
      const res = await fetch(`/api/upload?name=${encodeURIComponent(file.name)}`, { method: 'POST', body: file });
      const body = (await res.json().catch(() => ({ error: `upload failed (${res.status})` }))) as MediaProbeResult & { error?: string };
      if (!res.ok) throw new Error(body.error ?? `upload failed (${res.status})`);
      return body;
    },
  };
}

declare global {
  interface Window {
    boxwood?: BoxwoodBridge;
  }
}

export const api: UiApi = window.boxwood ? bridgeApi(window.boxwood) : webApi();
