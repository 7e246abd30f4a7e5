/**
 * The renderer's only door to the app (sandboxed, contextIsolation on): `window.boxwood`, a narrow
 * typed bridge. Stream ports cannot cross contextBridge, so they are posted to the page's window.
 */
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import type { BoxwoodBridge, StreamPortMessage } from '../api/bridge';
import type { ApiEvent } from '../api/types';

// Literal channel names: a sandboxed preload cannot import the main process's modules.
const INVOKE = 'boxwood:invoke';
const EVENT = 'boxwood:event';
const OPEN_STREAM = 'boxwood:open-stream';
const STREAM = 'boxwood:stream';

ipcRenderer.on(STREAM, (e, msg: { vmId: string }) => {
  const data: StreamPortMessage = { boxwoodStream: String(msg.vmId) };
  // To this same window ('*' is safe here: the message never leaves it; the page checks e.source).
  window.postMessage(data, '*', [...e.ports]);
});

const bridge: BoxwoodBridge = {
  invoke: (method, params) => ipcRenderer.invoke(INVOKE, String(method), Array.isArray(params) ? params : []),
  onEvent(cb) {
    const listener = (_e: unknown, event: ApiEvent) => cb(event);
    ipcRenderer.on(EVENT, listener);
    return () => void ipcRenderer.removeListener(EVENT, listener);
  },
  openStream: (vmId) => ipcRenderer.send(OPEN_STREAM, String(vmId)),
  pathForFile: (file) => webUtils.getPathForFile(file),
};

contextBridge.exposeInMainWorld('boxwood', bridge);
