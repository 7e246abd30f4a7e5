/**
 * The hypervisor side of the API: validates a call (schemas.ts) and runs it. Both shells route
 * every call through here, so validation cannot be forgotten by one of them.
 */
import type { Hypervisor } from '../hypervisor/hypervisor';
import type { CreateVmSpec } from '../hypervisor/library';
import { validateCall } from './schemas';
import { snapshotServiceOf } from '../hypervisor/snapshots/snapshot-service';
import type { BoxwoodApi, NewVmSpec, VmAction, VmChanges } from './types';

export type ApiHandler = (method: unknown, params: unknown) => Promise<unknown>;

export function createApiHandler(hv: Hypervisor): ApiHandler {
  const impl: BoxwoodApi = {
    hostInfo: async () => hv.hostInfo(),
    listVms: async () => hv.list(),
    createVm: async (spec: NewVmSpec) => hv.createVm(spec as CreateVmSpec),
    addExistingVm: async (folder: string) => hv.addExisting(folder),
    control: async (id: string, action: VmAction) => hv.control(id, action),
    attachMedia: async (id: string, path: string) => hv.attachMedia(id, path),
    probeMedia: async (path: string) => hv.probe(path),
    readLog: async (id: string) => hv.readLog(id),
    setLibraryPath: async (folder: string) => hv.setLibraryPath(folder),
    updateVm: async (id: string, changes: VmChanges) => hv.updateVm(id, changes),
    detachMedia: async (id: string, index: number) => hv.detachMedia(id, index),
    removeVm: async (id: string, deleteFiles: boolean) => hv.removeVm(id, deleteFiles),
    listSnapshots: async (id: string) => snapshotServiceOf(hv).list(id),
    takeSnapshot: async (id: string, name: string, description: string, live: boolean) => (await snapshotServiceOf(hv).take(id, name, description, live)).listing,
    restoreSnapshot: async (id: string, snapshot: string) => snapshotServiceOf(hv).restore(id, snapshot),
    deleteSnapshot: async (id: string, snapshot: string) => snapshotServiceOf(hv).delete(id, snapshot),
    editSnapshot: async (id: string, snapshot: string, changes: { name?: string; description?: string }) => snapshotServiceOf(hv).edit(id, snapshot, changes),
    cloneVm: async (id: string, snapshot: string | null, name: string, linked: boolean) => snapshotServiceOf(hv).clone(id, snapshot, name, linked),
  };
  return async (method, params) => {
    const call = validateCall(method, params);
    const fn = impl[call.method] as (...args: unknown[]) => Promise<unknown>;
    return fn(...call.params);
  };
}
