/**
 * Firmware entry point: `Machine.create` calls `installFirmware(machine, config)` once the devices
 * exist. The built-in BIOS is the default; `config.firmware.kind === 'seabios'` loads an external
 * SeaBIOS and VGA BIOS configured through fw_cfg.
 *
 * Files (kernel, initrd, BIOS images) are read here, before the machine runs, so that bad input
 * fails at creation with a message that names the file.
 */
import type { MachineConfig } from '../machine/config';
import type { Device } from '../machine/device';
import type { BlockDevice } from '../storage/block-device';
import type { BiosDrives } from '../machine/machine';
import { BuiltinBios, type FirmwareHost } from './bios';
import type { BiosDriveSource } from './disk';
import type { BiosCpu } from './regs';
import { layoutLinux, KernelImageError, type LinuxLayout } from './bzimage';
import { acpiRegionBase } from './e820';
import { FwCfg } from '../devices/fw-cfg';
import { configureFwCfg, writeCmosBootOrder, LINUXBOOT_ROM_PATHS } from './seabios';

export { BuiltinBios } from './bios';
export { KernelImageError, parseBzImage } from './bzimage';
export { mbrBootProblem, cdBootProblem } from './boot';
export { TRAP_PORT } from './layout';

export class FirmwareError extends Error {
  constructor(
    readonly file: string,
    readonly fault: string,
  ) {
    super(`${file}: ${fault}`);
    this.name = 'FirmwareError';
  }
}

/** What installFirmware uses of the machine, beyond FirmwareHost. All optional members are duck-typed. */
export interface FirmwareMachine extends FirmwareHost {
  cpu?: unknown;
  addDevice?<T extends Device>(device: T): T;
  loadOptionRom?(addr: number, image: Uint8Array): void;
  /**
   * The BlockDevices behind the BIOS drives, shared with the disk controllers (so BIOS and guest
   * driver see the same data). Provided by the platform; queried at every POST (media change).
   */
  biosDrives?(): BiosDrives;
}

export interface FirmwareFiles {
  readFile(path: string): Promise<Uint8Array>;
}

const nodeFiles: FirmwareFiles = {
  async readFile(path: string) {
    const fs = await import('node:fs/promises');
    return new Uint8Array(await fs.readFile(path));
  },
};

async function read(files: FirmwareFiles, path: string, what: string): Promise<Uint8Array> {
  try {
    return await files.readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const fault =
      code === 'ENOENT'
        ? `${what} not found`
        : code === 'EISDIR'
          ? `${what} is a directory`
          : `cannot read ${what} (${(e as Error).message})`;
    throw new FirmwareError(path, fault);
  }
}

/** Opens the config's disks when the machine does not hand over its own BlockDevices. */
async function fallbackDrives(config: MachineConfig): Promise<BiosDriveSource[]> {
  const out: BiosDriveSource[] = [];
  const { openImage } = await import('../storage/open');
  for (const d of config.disks) {
    if (!d.path) continue;
    const device: BlockDevice = openImage(d.path, { readOnly: true, format: d.format as never });
    out.push({ kind: d.kind, device, channel: d.channel, unit: d.unit });
  }
  return out;
}

export function fromMachineDrives(d: BiosDrives): BiosDriveSource[] {
  const out: BiosDriveSource[] = [];
  for (const f of d.floppies) if (f) out.push({ kind: 'floppy', device: f });
  d.disks.forEach((device) => out.push({ kind: 'disk', device }));
  for (const c of d.cdroms) if (c.medium) out.push({ kind: 'cdrom', device: c.medium, channel: c.channel, unit: c.unit });
  return out;
}

async function prepareLinux(
  config: MachineConfig,
  files: FirmwareFiles,
  usableTop: number,
): Promise<(LinuxLayout & { initrd: Uint8Array | null }) | null> {
  const k = config.kernel;
  if (!k) return null;
  const image = await read(files, k.kernelPath, 'kernel');
  const initrd = k.initrdPath ? await read(files, k.initrdPath, 'initrd') : null;
  const layout = layoutLinux(image, k.kernelPath, usableTop, k.cmdline ?? '', initrd, k.initrdPath);
  return { ...layout, initrd };
}

export interface InstalledFirmware {
  kind: 'builtin' | 'seabios';
  bios?: BuiltinBios;
  fwCfg?: FwCfg;
}

export async function installFirmware(
  machine: FirmwareMachine,
  config: MachineConfig,
  files: FirmwareFiles = nodeFiles,
): Promise<InstalledFirmware> {
  const ramBytes = machine.mem.ramBytes;
  if (config.firmware.kind === 'seabios') {
    const fw = config.firmware;
    const bios = await read(files, fw.biosPath, 'SeaBIOS image');
    if (bios.length % 0x10000 !== 0 || bios.length > 0x40000 || bios.length === 0) {
      throw new FirmwareError(fw.biosPath, `not a BIOS image: ${bios.length} bytes (expected 64, 128 or 256 KiB)`);
    }
    const vgaPath = fw.vgaBiosPath;
    const vgaBios = vgaPath ? await read(files, vgaPath, 'VGA BIOS') : null;
    if (vgaBios && (vgaBios[0] !== 0x55 || vgaBios[1] !== 0xaa))
      throw new FirmwareError(vgaPath!, 'not an option ROM (no 0x55AA signature)');
    let linuxbootRom: Uint8Array | null = null;
    if (config.kernel) {
      for (const p of LINUXBOOT_ROM_PATHS) {
        try {
          linuxbootRom = await files.readFile(p);
          break;
        } catch {
          // try the next location
        }
      }
    }
    // SeaBIOS keeps its own tables in the top of RAM; leave it a megabyte.
    const linux = await prepareLinux(config, files, ramBytes - 0x100000);
    machine.loadBios(bios);
    const fwCfg = new FwCfg(machine.io, machine.mem);
    machine.addDevice?.(fwCfg);
    configureFwCfg(
      fwCfg,
      config,
      ramBytes,
      { bios, vgaBios, linuxbootRom },
      linux,
    );
    writeCmosBootOrder(machine.io, config.bootOrder);
    return { kind: 'seabios', fwCfg };
  }

  const linux = await prepareLinux(config, files, acpiRegionBase(ramBytes));
  let drives: () => BiosDriveSource[];
  if (machine.biosDrives) {
    const m = machine;
    drives = () => fromMachineDrives(m.biosDrives!());
  } else {
    const opened = await fallbackDrives(config);
    drives = () => opened;
  }
  const cpu = machine.cpu as BiosCpu | undefined;
  const bios = new BuiltinBios(machine, { drives, linux: linux ?? undefined }, cpu && typeof cpu.getReg16 === 'function' ? cpu : undefined);
  bios.install();
  machine.addDevice?.(bios);
  return { kind: 'builtin', bios };
}

export { KernelImageError as LinuxBootError };
