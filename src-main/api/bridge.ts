/**
 * What the Electron preload exposes to the renderer as `window.boxwood` (contextBridge). Kept
 * narrow: one call entry (validated in the main process), one event feed, stream ports, and the
 * path of a dropped file. Type-only, shared by the preload and the renderer.
 */
import type { ApiEvent } from './types';

export interface BoxwoodBridge {
  invoke(method: string, params: unknown[]): Promise<unknown>;
  onEvent(cb: (event: ApiEvent) => void): () => void;
  /** Asks for a VM's stream; its MessagePort arrives as a window 'message' event `{ boxwoodStream: vmId }`. */
  openStream(vmId: string): void;
  /** The host path of a dropped or chosen File (Electron's webUtils.getPathForFile). */
  pathForFile(file: File): string;
}

/** The window message that carries a stream port from the preload to the page. */
export interface StreamPortMessage {
  boxwoodStream: string;
}
