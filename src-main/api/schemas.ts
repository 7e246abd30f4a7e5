/**
 * Every API call's arguments, as zod schemas. Both transports validate here before the hypervisor
 * sees anything: a renderer (or a web page) is not trusted to send well-formed calls.
 */
import { z } from 'zod';
import { isAbsolute } from 'node:path';
import { VM_ACTIONS, type ApiMethod } from './types';

export const vmIdSchema = z.string().regex(/^[0-9a-f]{16}$/, 'not a VM id');

export const hostPathSchema = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0'), 'contains a NUL byte')
  .refine((p) => isAbsolute(p), 'must be an absolute path');

export const newVmSpecSchema = z.strictObject({
  name: z.string().trim().min(1, 'a name is needed').max(120),
  osType: z.string().min(1).max(40),
  memoryMiB: z.number().int().min(1).max(3584),
  cpus: z.number().int().min(1).max(256),
  vramMiB: z.number().int().min(1).max(256),
  disk: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('new'), sizeGiB: z.number().min(0.01).max(2048) }),
    z.strictObject({ kind: z.literal('existing'), path: hostPathSchema }),
    z.strictObject({ kind: z.literal('none') }),
  ]),
  isoPath: hostPathSchema.nullable().optional(),
  floppyPath: hostPathSchema.nullable().optional(),
  kernel: z
    .strictObject({ kernelPath: hostPathSchema, initrdPath: hostPathSchema.optional(), cmdline: z.string().max(4096).optional() })
    .nullable()
    .optional(),
});

export const vmChangesSchema = z.strictObject({
  name: z.string().trim().min(1).max(120).optional(),
  osType: z.string().min(1).max(40).optional(),
  memoryMiB: z.number().int().min(1).max(3584).optional(),
  cpus: z.number().int().min(1).max(256).optional(),
  vramMiB: z.number().int().min(1).max(256).optional(),
});

export const snapshotIdSchema = z.uuid('not a snapshot id');
export const snapshotNameSchema = z.string().trim().min(1, 'a name is needed').max(200);

/** Arguments of each method, as a tuple. */
export const apiParamSchemas = {
  hostInfo: z.tuple([]),
  listVms: z.tuple([]),
  createVm: z.tuple([newVmSpecSchema]),
  addExistingVm: z.tuple([hostPathSchema]),
  control: z.tuple([vmIdSchema, z.enum(VM_ACTIONS)]),
  attachMedia: z.tuple([vmIdSchema, hostPathSchema]),
  probeMedia: z.tuple([hostPathSchema]),
  readLog: z.tuple([vmIdSchema]),
  setLibraryPath: z.tuple([hostPathSchema]),
  updateVm: z.tuple([vmIdSchema, vmChangesSchema]),
  detachMedia: z.tuple([vmIdSchema, z.number().int().min(0).max(7)]),
  removeVm: z.tuple([vmIdSchema, z.boolean()]),
  listSnapshots: z.tuple([vmIdSchema]),
  takeSnapshot: z.tuple([vmIdSchema, snapshotNameSchema, z.string().max(10_000), z.boolean()]),
  restoreSnapshot: z.tuple([vmIdSchema, snapshotIdSchema]),
  deleteSnapshot: z.tuple([vmIdSchema, snapshotIdSchema]),
  editSnapshot: z.tuple([vmIdSchema, snapshotIdSchema, z.strictObject({ name: snapshotNameSchema.optional(), description: z.string().max(10_000).optional() })]),
  cloneVm: z.tuple([vmIdSchema, snapshotIdSchema.nullable(), z.string().trim().min(1, 'a name is needed').max(120), z.boolean()]),
} satisfies Record<ApiMethod, z.ZodType>;

export const API_METHODS = Object.keys(apiParamSchemas) as ApiMethod[];

export class ApiValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiValidationError';
  }
}

export function isApiMethod(m: unknown): m is ApiMethod {
  return typeof m === 'string' && Object.prototype.hasOwnProperty.call(apiParamSchemas, m);
}

/** Checks a call; returns the parsed arguments or throws ApiValidationError naming the fault. */
export function validateCall(method: unknown, params: unknown): { method: ApiMethod; params: unknown[] } {
  if (!isApiMethod(method)) throw new ApiValidationError(`unknown API method ${JSON.stringify(method)?.slice(0, 60)}`);
  const r = apiParamSchemas[method].safeParse(params);
  if (!r.success) {
    const why = r.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.length ? `argument ${i.path.join('.')}` : 'arguments'}: ${i.message}`)
      .join('; ');
    throw new ApiValidationError(`${method}: ${why}`);
  }
  return { method, params: r.data as unknown[] };
}

/** A WebSocket API request from the browser. */
export const wsRequestSchema = z.strictObject({
  id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  method: z.string().max(64),
  params: z.array(z.unknown()).max(8),
});
