/** The Node-child stream pipe: an extra stdio pipe the hypervisor opened on a known fd. */
import { Socket } from 'node:net';
import { fstatSync } from 'node:fs';

export function createSocket(fd: number): Socket | null {
  try {
    fstatSync(fd);
  } catch {
    return null; // started without a stream pipe (e.g. a headless run): nothing to stream to
  }
  return new Socket({ fd, readable: true, writable: true });
}
