/**
 * The hypervisor side of the API: validates a call (schemas.ts) and runs it. Both shells route
 * every call through here, so validation cannot be forgotten by one of them.
 */
import type { Hypervisor } from '../hypervisor/hypervisor';
import type { CreateVmSpec } from '../hypervisor/library';
import { validateCall } from './schemas';
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
  };
  return async (method, params) => {
    const call = validateCall(method, params);
    const fn = impl[call.method] as (...args: unknown[]) => Promise<unknown>;
    return fn(...call.params);
  };
}
