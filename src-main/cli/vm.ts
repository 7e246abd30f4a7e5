/**
 * `boxwood vm <list|create|add|start|log>`: the VM library from the command line, through the same
 * hypervisor and API validation as the UI.
 */
import { createNodeHypervisor } from '../hypervisor/node-host';
import { NodeGuestProcess } from '../hypervisor/guest-process';
import { validateCall } from '../api/schemas';
import type { Hypervisor } from '../hypervisor/hypervisor';
import type { NewVmSpec, VmListEntry, VmSummary } from '../api/types';
import { OS_PRESETS } from '../api/presets';
import { decodeStream, encodeStream, frameForPipe, PipeDeframer, StreamType } from '../../src-emulator/guest/protocol';
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { cloneCommand, registerCliSession, saveStateCommand, snapshotCommand, SNAPSHOT_USAGE, stopCommand } from '../hypervisor/snapshots/snapshot-cli';

const USAGE = `usage: boxwood vm <command> [--library DIR]
  list                          the VMs and their states
  info NAME|ID                  one VM's settings, media and state
  create [--name] NAME [--os ID] [--memory MiB] [--cpus N] [--vram MiB]
         [--disk SIZE|IMAGE | --no-disk] [--cdrom ISO] [--floppy IMAGE]
         [--kernel FILE [--initrd FILE] [--append CMDLINE]]
                                SIZE like 8G or 512M makes a new qcow2 disk; a path uses that image
  add FOLDER                    add an existing VM folder to the library
  start NAME|ID [--headless]    boot it here: serial console on stdin/stdout, Ctrl+C powers off
  log NAME|ID                   the tail of its newest log
${SNAPSHOT_USAGE}os ids: ${OS_PRESETS.map((p) => p.id).join(', ')}
`;

/** "8G", "512M", "1.5G", "2048" (MiB) -> GiB; null when it is not a size. */
export function parseSizeGiB(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)(i?B)?$/i.exec(s.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2].toUpperCase() || 'M';
  const gib = { K: n / 1024 / 1024, M: n / 1024, G: n, T: n * 1024 }[unit]!;
  return gib > 0 ? gib : null;
}

function takeOption(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

function takeFlag(args: string[], name: string): boolean {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

function find(hv: Hypervisor, key: string): VmListEntry {
  const all = hv.list();
  const hit = all.find((v) => v.id === key) ?? all.find((v) => v.ok && v.name === key);
  if (!hit) throw new Error(`no VM named or with id '${key}' (see 'boxwood vm list')`);
  return hit;
}

function printList(vms: VmListEntry[]): void {
  if (vms.length === 0) return void process.stdout.write('(no VMs)\n');
  for (const v of vms) {
    if (v.ok) process.stdout.write(`${v.id}  ${v.state.padEnd(8)}  ${v.name}  (${v.osType}, ${v.memoryMiB} MiB)\n`);
    else process.stdout.write(`${v.id}  ERROR     ${v.folder}: ${v.error}\n`);
  }
}

async function create(hv: Hypervisor, args: string[]): Promise<VmSummary> {
  const os = takeOption(args, '--os') ?? 'other';
  const preset = OS_PRESETS.find((p) => p.id === os);
  if (!preset) throw new Error(`unknown --os ${os}`);
  const num = (name: string, dflt: number) => {
    const v = takeOption(args, name);
    return v === undefined ? dflt : Number(v);
  };
  const memoryMiB = num('--memory', preset.memoryMiB);
  const cpus = num('--cpus', preset.cpus);
  const vramMiB = num('--vram', preset.vramMiB);
  const diskGiB = takeOption(args, '--disk-gib');
  const disk = takeOption(args, '--disk');
  const noDisk = takeFlag(args, '--no-disk');
  const iso = takeOption(args, '--cdrom') ?? takeOption(args, '--iso');
  const floppy = takeOption(args, '--floppy');
  const kernelPath = takeOption(args, '--kernel');
  const initrdPath = takeOption(args, '--initrd');
  const cmdline = takeOption(args, '--append');
  if ((initrdPath || cmdline) && !kernelPath) throw new Error('--initrd and --append need --kernel');
  const named = takeOption(args, '--name');
  const [positional, ...extra] = args;
  const name = named ?? positional;
  if (!name || extra.length || (named && positional)) throw new Error('create needs exactly one NAME');
  // A file that exists wins over a size-looking name.
  const size = disk !== undefined && !existsSync(disk) ? parseSizeGiB(disk) : null;
  const spec: NewVmSpec = {
    name,
    osType: os,
    memoryMiB,
    cpus,
    vramMiB,
    disk: noDisk
      ? { kind: 'none' }
      : size !== null
        ? { kind: 'new', sizeGiB: size }
        : disk
          ? { kind: 'existing', path: resolve(disk) }
          : { kind: 'new', sizeGiB: diskGiB ? Number(diskGiB) : preset.diskGiB },
    isoPath: iso ? resolve(iso) : null,
    floppyPath: floppy ? resolve(floppy) : null,
    kernel: kernelPath
      ? {
          kernelPath: resolve(kernelPath),
          ...(initrdPath ? { initrdPath: resolve(initrdPath) } : {}),
          ...(cmdline !== undefined ? { cmdline } : {}),
        }
      : null,
  };
  validateCall('createVm', [spec]);
  return hv.createVm(spec);
}

/** Boots a VM attached to this terminal: its COM1 on stdin/stdout. */
async function startAttached(hv: Hypervisor, vm: VmSummary): Promise<number> {
  hv.control(vm.id, 'start');
  const guest = hv.guestOf(vm.id);
  if (!(guest instanceof NodeGuestProcess)) throw new Error('no guest process');
  const deframer = new PipeDeframer((bytes) => {
    const m = decodeStream(bytes);
    if (m.type === StreamType.Serial && m.port === 0) process.stdout.write(m.bytes);
  });
  guest.stream.on('data', (chunk: Buffer) => deframer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  const onInput = (d: Buffer) =>
    guest.stream.write(frameForPipe(encodeStream({ type: StreamType.SerialIn, port: 0, bytes: new Uint8Array(d) })));
  process.stdin.on('data', onInput);
  process.stderr.write(`boxwood: '${vm.name}' starting; serial console attached (Ctrl+C powers off)\n`);
  const endSession = registerCliSession(hv, vm);
  const onSigint = () => {
    try {
      hv.control(vm.id, 'power-off');
    } catch {
      /* already off */
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  await new Promise<void>((done) => {
    const check = () => {
      const s = hv.summary(vm.id).state;
      if (s === 'stopped' || s === 'aborted' || s === 'saved') {
        hv.off('changed', check);
        done();
      }
    };
    hv.on('changed', check);
  });
  endSession();
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigint);
  process.stdin.off('data', onInput);
  process.stdin.pause();
  const end = hv.summary(vm.id);
  process.stderr.write(`\nboxwood: '${vm.name}' is ${end.state}${end.lastError ? `: ${end.lastError}` : ''}\n`);
  return end.state === 'aborted' ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  try {
    const library = takeOption(args, '--library');
    const [cmd, ...rest] = args;
    if (!cmd || cmd === '--help' || cmd === '-h') {
      process.stdout.write(USAGE);
      return cmd ? 0 : 2;
    }
    const hv = createNodeHypervisor({ libraryRoot: library ? resolve(library) : undefined, shell: 'web' });
    switch (cmd) {
      case 'list':
        printList(hv.list());
        return 0;
      case 'create': {
        const vm = await create(hv, rest);
        process.stdout.write(`created ${vm.name} (${vm.id}) in ${vm.folder}\n`);
        return 0;
      }
      case 'add': {
        if (rest.length !== 1) throw new Error('add needs one FOLDER');
        const e = hv.addExisting(resolve(rest[0]));
        printList([e]);
        return e.ok ? 0 : 1;
      }
      case 'info': {
        const e = find(hv, rest.join(' '));
        process.stdout.write(JSON.stringify(e, null, 2) + '\n');
        return e.ok ? 0 : 1;
      }
      case 'start': {
        takeFlag(rest, '--headless'); // the CLI is always headless; the flag is accepted for scripts
        const e = find(hv, rest.join(' '));
        if (!e.ok) throw new Error(e.error);
        return await startAttached(hv, e);
      }
      case 'log': {
        const e = find(hv, rest.join(' '));
        process.stdout.write(hv.readLog(e.id));
        return 0;
      }
      case 'snapshot': {
        const [key, ...args] = rest;
        if (!key) throw new Error('snapshot needs a VM NAME or ID');
        return await snapshotCommand(hv, find(hv, key), args);
      }
      case 'clone':
        return await cloneCommand(hv, (k) => find(hv, k), rest);
      case 'savestate':
        return await saveStateCommand(hv, find(hv, rest.join(' ')));
      case 'stop':
        return await stopCommand(hv, find(hv, rest.join(' ')));
      default:
        process.stderr.write(`boxwood vm: unknown command '${cmd}'\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    process.stderr.write(`boxwood vm: ${(err as Error).message}\n`);
    return 1;
  }
}
