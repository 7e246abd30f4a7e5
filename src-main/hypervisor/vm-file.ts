/**
 * `vm.json`: the truth about one VM, validated against a schema with a format version.
 *
 * Reading never guesses: a file that is not JSON, misses fields, has a wrong type, or carries a
 * format version this build does not know gives a `VmFileError` that says which and where, and the
 * caller leaves the file alone. Fields this build does not know are kept on write (loose objects),
 * so an older Boxwood never drops what a newer one stored.
 */
import { z } from 'zod';
import { readFileSync } from 'node:fs';
import type { MachineConfig } from '../../src-emulator/machine/config';

export const VM_FORMAT_VERSION = 1;
export const VM_FILE = 'vm.json';

const diskKind = z.enum(['disk', 'cdrom', 'floppy']);

export const diskAttachmentSchema = z.looseObject({
  kind: diskKind,
  path: z.string().min(1).nullable(),
  format: z.string().optional(),
  readOnly: z.boolean().optional(),
  channel: z.union([z.literal(0), z.literal(1)]).optional(),
  unit: z.union([z.literal(0), z.literal(1)]).optional(),
});

export const machineConfigSchema = z.looseObject({
  memoryMiB: z.number().int().min(1).max(3584),
  cpus: z.literal(1),
  firmware: z.discriminatedUnion('kind', [
    z.looseObject({ kind: z.literal('builtin') }),
    z.looseObject({ kind: z.literal('seabios'), biosPath: z.string().min(1), vgaBiosPath: z.string().min(1).optional() }),
  ]),
  bootOrder: z.array(diskKind).max(3),
  kernel: z
    .looseObject({ kernelPath: z.string().min(1), initrdPath: z.string().min(1).optional(), cmdline: z.string().optional() })
    .optional(),
  disks: z.array(diskAttachmentSchema).max(8),
  display: z.looseObject({ vramMiB: z.number().int().min(1).max(256) }),
  serialPorts: z.number().int().min(0).max(4),
  deterministic: z.boolean(),
  onTripleFault: z.enum(['reset', 'stop']),
});

export const vmFileSchema = z.looseObject({
  formatVersion: z.literal(VM_FORMAT_VERSION),
  uuid: z.uuid(),
  name: z.string().trim().min(1).max(120),
  osType: z.string().min(1).max(40),
  createdAt: z.iso.datetime(),
  /** What the user asked for; the emulator runs one CPU for now (MachineConfig.cpus). */
  requestedCpus: z.number().int().min(1).max(256),
  machine: machineConfigSchema,
  /** The resting state the VM was left in ('aborted' survives a restart of the app, as in VirtualBox). */
  lastState: z.enum(['stopped', 'saved', 'aborted']),
  lastError: z.string().max(4000).optional(),
  /** Owned by the snapshot feature; kept verbatim here. */
  snapshots: z.array(z.unknown()),
});

/** What `vmFileSchema` accepts; unknown fields ride along. */
export interface VmFile {
  formatVersion: typeof VM_FORMAT_VERSION;
  uuid: string;
  name: string;
  osType: string;
  createdAt: string;
  requestedCpus: number;
  machine: MachineConfig;
  lastState: 'stopped' | 'saved' | 'aborted';
  lastError?: string;
  snapshots: unknown[];
  [key: string]: unknown;
}

export class VmFileError extends Error {
  constructor(
    readonly file: string,
    readonly fault: string,
  ) {
    super(`${file}: ${fault}`);
    this.name = 'VmFileError';
  }
}

/** Validates parsed JSON; throws VmFileError naming the fault. */
export function validateVmFile(file: string, value: unknown): VmFile {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VmFileError(file, 'is not a JSON object');
  }
  const version = (value as { formatVersion?: unknown }).formatVersion;
  if (version === undefined) throw new VmFileError(file, 'has no formatVersion: not a Boxwood VM file');
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    throw new VmFileError(file, `formatVersion ${JSON.stringify(version)} is not a number`);
  }
  if (version > VM_FORMAT_VERSION) {
    throw new VmFileError(
      file,
      `format version ${version} was written by a newer Boxwood; this one reads version ${VM_FORMAT_VERSION} (the file is left untouched)`,
    );
  }
  if (version !== VM_FORMAT_VERSION) throw new VmFileError(file, `unknown format version ${version}`);
  const r = vmFileSchema.safeParse(value);
  if (!r.success) {
    const faults = r.error.issues.slice(0, 5).map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new VmFileError(file, `invalid: ${faults.join('; ')}`);
  }
  return r.data as unknown as VmFile;
}

export function parseVmFile(file: string, text: string): VmFile {
  if (text.trim() === '') throw new VmFileError(file, 'is empty');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new VmFileError(file, `is not valid JSON (truncated or corrupted?): ${(err as Error).message}`);
  }
  return validateVmFile(file, value);
}

export function readVmFile(file: string): VmFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new VmFileError(file, code === 'ENOENT' ? 'is missing' : `cannot be read (${code ?? (err as Error).message})`);
  }
  return parseVmFile(file, text);
}

export function serializeVmFile(vm: VmFile): string {
  // Validate before writing: the file is never replaced with something we could not read back.
  validateVmFile('vm.json', JSON.parse(JSON.stringify(vm)));
  return JSON.stringify(vm, null, 2) + '\n';
}
