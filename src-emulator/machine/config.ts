/**
 * A PC described as plain data. The wizard, the CLI, tests and saved states all build machines
 * from this, so it stays JSON-serialisable and versioned with vm.json.
 */
export type DiskKind = 'disk' | 'cdrom' | 'floppy';

export interface DiskAttachment {
  kind: DiskKind;
  /** Image file; for a cdrom, null means an empty drive. */
  path: string | null;
  /** Format override; detected from content when absent. */
  format?: string;
  readOnly?: boolean;
  /** IDE position (ignored for floppies): channel 0 = primary, unit 0 = master. */
  channel?: 0 | 1;
  unit?: 0 | 1;
}

export type FirmwareConfig =
  | { kind: 'builtin' }
  | { kind: 'seabios'; biosPath: string; vgaBiosPath?: string };

export interface DirectKernelBoot {
  kernelPath: string;
  initrdPath?: string;
  cmdline?: string;
}

export interface MachineConfig {
  memoryMiB: number;
  /** One CPU for now. */
  cpus: 1;
  firmware: FirmwareConfig;
  /** Boot device order for the BIOS; a `kernel` boots directly, like `qemu -kernel`. */
  bootOrder: DiskKind[];
  kernel?: DirectKernelBoot;
  disks: DiskAttachment[];
  display: { vramMiB: number };
  /** Number of 16550 UARTs (COM1..COM4). */
  serialPorts: number;
  /** Time from instruction counts only: the same inputs give the same run. */
  deterministic: boolean;
  /** What a triple fault does. */
  onTripleFault: 'reset' | 'stop';
}

export function defaultMachineConfig(overrides: Partial<MachineConfig> = {}): MachineConfig {
  return {
    memoryMiB: 128,
    cpus: 1,
    firmware: { kind: 'builtin' },
    bootOrder: ['cdrom', 'disk', 'floppy'],
    disks: [],
    display: { vramMiB: 16 },
    serialPorts: 1,
    deterministic: false,
    onTripleFault: 'reset',
    ...overrides,
  };
}
