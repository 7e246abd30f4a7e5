/**
 * `boxwood run`: boot a machine headless.
 *
 *   boxwood run --memory 256 --kernel VMLINUZ --initrd INITRD --append "console=ttyS0" --serial stdio
 *   boxwood run --cdrom X.iso --hda disk.img --boot d --firmware builtin|seabios:PATH --vga-bios PATH
 *
 * Exit codes: 0 = --until text seen (or, without --until, the guest powered off); 1 = --timeout
 * reached or the guest stopped before the text appeared; 2 = bad usage or bad input (one line on
 * stderr naming the file and the fault). A guest that leaves through isa-debug-exit (port 0xF4)
 * without --until exits with QEMU's code, (value << 1) | 1.
 */
import { existsSync, statSync, writeFileSync, createWriteStream, type WriteStream } from 'node:fs';
import { defaultMachineConfig, type DiskAttachment, type DiskKind, type MachineConfig } from '../../src-emulator/machine/config';
import { Machine } from '../../src-emulator/machine/machine';
import { FirmwareError } from '../../src-emulator/firmware/index';
import { parseBzImage, KernelImageError } from '../../src-emulator/firmware/bzimage';
import { mbrBootProblem, cdBootProblem } from '../../src-emulator/firmware/boot';
import { openImage } from '../../src-emulator/storage/open';
import { DiskError } from '../../src-emulator/storage/block-device';
import { screenshotPng } from '../../src-emulator/display/framebuffer';
import { readFileSync } from 'node:fs';

export const USAGE = `usage: boxwood run [options]

  --memory MIB              guest RAM in MiB (default 128)
  --kernel FILE             boot a Linux bzImage directly (like qemu -kernel)
  --initrd FILE             initial ramdisk for --kernel
  --append TEXT             kernel command line
  --serial stdio|none|file:PATH
                            where COM1 goes (default stdio; with stdio, stdin feeds COM1)
  --cdrom FILE              CD-ROM image (IDE secondary master)
  --hda FILE, --hdb FILE    hard disk images (IDE primary master/slave)
  --fda FILE                floppy image (drive A:)
  --boot c|d|a|ORDER        boot order: c disk, d CD-ROM, a floppy; e.g. "dc" (default: d, c, a)
  --firmware builtin|seabios:PATH
                            the built-in BIOS (default) or a SeaBIOS bios.bin
  --vga-bios PATH           VGA BIOS for SeaBIOS (default: next to bios.bin, vgabios-stdvga.bin)
  --until TEXT              exit 0 as soon as TEXT appears on the serial port or the text screen
  --timeout SECONDS         give up after this much host time: exit 1 and print the last screen
  --screen-text FILE        write the final text screen to FILE
  --screenshot FILE.png     write the final screen to a PNG
  --deterministic           time from instruction counts: the same inputs give the same run
  --interpret               run without the CPU's decoded-instruction cache (to compare speed
                            or to rule the cache out when a guest misbehaves)
`;

class UsageError extends Error {}

export interface RunOptions {
  memory: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  serial: { kind: 'stdio' } | { kind: 'none' } | { kind: 'file'; path: string };
  cdrom?: string;
  hda?: string;
  hdb?: string;
  fda?: string;
  boot?: DiskKind[];
  firmware: { kind: 'builtin' } | { kind: 'seabios'; path: string };
  vgaBios?: string;
  until?: string;
  timeout?: number;
  screenText?: string;
  screenshot?: string;
  deterministic: boolean;
  interpret?: boolean;
}

const VALUE_FLAGS = [
  '--memory',
  '--kernel',
  '--initrd',
  '--append',
  '--serial',
  '--cdrom',
  '--hda',
  '--hdb',
  '--fda',
  '--boot',
  '--firmware',
  '--vga-bios',
  '--until',
  '--timeout',
  '--screen-text',
  '--screenshot',
];

export function parseRunArgs(args: string[]): RunOptions {
  const o: RunOptions = { memory: 128, serial: { kind: 'stdio' }, firmware: { kind: 'builtin' }, deterministic: false };
  for (let i = 0; i < args.length; i++) {
    let flag = args[i];
    let value: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    if (flag === '--deterministic') {
      o.deterministic = true;
      continue;
    }
    if (flag === '--interpret') {
      o.interpret = true;
      continue;
    }
    if (flag === '--help' || flag === '-h') throw new UsageError('');
    if (!VALUE_FLAGS.includes(flag)) throw new UsageError(`unknown option '${flag}'`);
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new UsageError(`${flag} needs a value`);
    }
    switch (flag) {
      case '--memory': {
        const n = Number(value.replace(/M(iB)?$/i, ''));
        if (!Number.isInteger(n) || n < 1 || n > 3584) throw new UsageError(`--memory: '${value}' is not a size in MiB between 1 and 3584`);
        o.memory = n;
        break;
      }
      case '--kernel':
        o.kernel = value;
        break;
      case '--initrd':
        o.initrd = value;
        break;
      case '--append':
        o.append = value;
        break;
      case '--serial':
        if (value === 'stdio' || value === 'none') o.serial = { kind: value };
        else if (value.startsWith('file:') && value.length > 5) o.serial = { kind: 'file', path: value.slice(5) };
        else throw new UsageError(`--serial: '${value}' is not stdio, none or file:PATH`);
        break;
      case '--cdrom':
        o.cdrom = value;
        break;
      case '--hda':
        o.hda = value;
        break;
      case '--hdb':
        o.hdb = value;
        break;
      case '--fda':
        o.fda = value;
        break;
      case '--boot': {
        const map: Record<string, DiskKind> = { c: 'disk', d: 'cdrom', a: 'floppy' };
        const letters = value.replace(/^order=/, '').split('');
        if (!letters.length || letters.some((l) => !map[l]))
          throw new UsageError(`--boot: '${value}' is not made of c (disk), d (CD-ROM) and a (floppy)`);
        o.boot = [...new Set(letters.map((l) => map[l]))];
        break;
      }
      case '--firmware':
        if (value === 'builtin') o.firmware = { kind: 'builtin' };
        else if (value.startsWith('seabios:') && value.length > 8) o.firmware = { kind: 'seabios', path: value.slice(8) };
        else if (value === 'seabios') o.firmware = { kind: 'seabios', path: '/usr/share/seabios/bios.bin' };
        else throw new UsageError(`--firmware: '${value}' is not builtin or seabios:PATH`);
        break;
      case '--vga-bios':
        o.vgaBios = value;
        break;
      case '--until':
        o.until = value;
        break;
      case '--timeout': {
        const n = Number(value);
        if (!(n > 0)) throw new UsageError(`--timeout: '${value}' is not a positive number of seconds`);
        o.timeout = n;
        break;
      }
      case '--screen-text':
        o.screenText = value;
        break;
      case '--screenshot':
        o.screenshot = value;
        break;
    }
  }
  if (o.initrd && !o.kernel) throw new UsageError('--initrd needs --kernel');
  if (o.vgaBios && o.firmware.kind !== 'seabios')
    throw new UsageError('--vga-bios needs --firmware seabios:PATH (the built-in BIOS has its own video services)');
  if (o.append !== undefined && !o.kernel) throw new UsageError('--append needs --kernel');
  if (!o.kernel && !o.cdrom && !o.hda && !o.hdb && !o.fda) throw new UsageError('nothing to boot: give --kernel, --cdrom, --hda or --fda');
  return o;
}

export function configFromOptions(o: RunOptions): MachineConfig {
  const disks: DiskAttachment[] = [];
  if (o.hda) disks.push({ kind: 'disk', path: o.hda, channel: 0, unit: 0 });
  if (o.hdb) disks.push({ kind: 'disk', path: o.hdb, channel: 0, unit: 1 });
  if (o.cdrom) disks.push({ kind: 'cdrom', path: o.cdrom, channel: 1, unit: 0, readOnly: true });
  if (o.fda) disks.push({ kind: 'floppy', path: o.fda });
  let firmware: MachineConfig['firmware'] = { kind: 'builtin' };
  if (o.firmware.kind === 'seabios') {
    const dir = o.firmware.path.replace(/[^/]*$/, '');
    const vga = o.vgaBios ?? `${dir}vgabios-stdvga.bin`;
    firmware = { kind: 'seabios', biosPath: o.firmware.path, vgaBiosPath: existsSync(vga) || o.vgaBios ? vga : undefined };
  }
  return defaultMachineConfig({
    memoryMiB: o.memory,
    firmware,
    bootOrder: o.boot ?? ['cdrom', 'disk', 'floppy'],
    kernel: o.kernel ? { kernelPath: o.kernel, initrdPath: o.initrd, cmdline: o.append ?? '' } : undefined,
    disks,
    deterministic: o.deterministic,
  });
}

function checkFile(path: string, what: string): void {
  if (!existsSync(path)) throw new FirmwareError(path, `${what} not found`);
  if (statSync(path).isDirectory()) throw new FirmwareError(path, `${what} is a directory`);
}

/** Bad input before anything runs: missing files, a kernel that is not a bzImage, nothing bootable. */
export function validateInputs(o: RunOptions, config: MachineConfig): void {
  if (o.kernel) {
    checkFile(o.kernel, 'kernel');
    parseBzImage(new Uint8Array(readFileSync(o.kernel)), o.kernel);
    if (o.initrd) checkFile(o.initrd, 'initrd');
  }
  if (o.firmware.kind === 'seabios') {
    checkFile(o.firmware.path, 'SeaBIOS image');
    if (o.vgaBios) checkFile(o.vgaBios, 'VGA BIOS');
  }
  for (const d of config.disks)
    checkFile(d.path!, d.kind === 'cdrom' ? 'CD-ROM image' : d.kind === 'floppy' ? 'floppy image' : 'disk image');
  if (o.kernel) return;
  // Without a kernel, something in the boot order must be bootable; report the first fault.
  const problems: string[] = [];
  for (const kind of config.bootOrder) {
    const d = config.disks.find((x) => x.kind === kind);
    if (!d) continue;
    const dev = openImage(d.path!, { readOnly: true, format: d.format as never });
    try {
      const p = kind === 'cdrom' ? cdBootProblem(dev) : mbrBootProblem(dev, kind === 'disk' ? 'disk' : 'floppy');
      if (!p) return;
      problems.push(`${d.path}: ${p}`);
    } finally {
      dev.close();
    }
  }
  if (problems.length) throw new UsageError(problems[0]);
  throw new UsageError(`nothing to boot in the boot order (${config.bootOrder.join(', ')})`);
}

function lastScreen(m: Machine): string {
  const text = m.display?.getTextScreen();
  if (text) return text.replace(/[ \t]+$/gm, '').replace(/\n+$/, '');
  const mode = m.display?.getMode();
  return mode ? `(the screen is in a ${mode.width}x${mode.height} graphics mode; --screenshot FILE.png saves it)` : '(no display)';
}

export async function main(args: string[]): Promise<number> {
  let o: RunOptions;
  let config: MachineConfig;
  try {
    o = parseRunArgs(args);
    config = configFromOptions(o);
    validateInputs(o, config);
  } catch (e) {
    if (e instanceof UsageError && e.message === '') {
      process.stdout.write(USAGE);
      return 0;
    }
    const msg =
      e instanceof UsageError
        ? e.message
        : e instanceof KernelImageError || e instanceof FirmwareError || e instanceof DiskError
          ? e.message
          : String((e as Error).message ?? e);
    process.stderr.write(`boxwood run: ${msg}\n`);
    if (e instanceof UsageError && /unknown option|needs a value|is not/.test(e.message))
      process.stderr.write('(boxwood run --help lists the options)\n');
    return 2;
  }

  let machine: Machine;
  try {
    machine = await Machine.create(config, { log: (s) => process.env.BOXWOOD_LOG && process.stderr.write(`[machine] ${s}\n`) });
    if (o.interpret) machine.cpu.codeCache = null;
  } catch (e) {
    process.stderr.write(`boxwood run: ${(e as Error).message}\n`);
    return 2;
  }
  const m = machine;

  let serialOut: WriteStream | null = null;
  if (o.serial.kind === 'file') serialOut = createWriteStream(o.serial.path);
  let tail = '';
  let found = false;
  const until = o.until;
  const check = (): boolean => {
    if (found || !until) return found;
    if (tail.includes(until) || (m.display?.getTextScreen() ?? '').includes(until)) {
      found = true;
      m.stop();
    }
    return found;
  };
  m.on('serial', (port, bytes) => {
    if (port !== 0) return;
    if (o.serial.kind === 'stdio') process.stdout.write(bytes);
    else if (serialOut) serialOut.write(bytes);
    if (until) {
      tail = (tail + Buffer.from(bytes).toString('latin1')).slice(-Math.max(4096, until.length * 2));
      check();
    }
  });
  let endReason = '';
  m.on('shutdown', (r) => {
    endReason = r;
  });

  const stdin = process.stdin;
  const onStdin = (b: Buffer) => m.serialInput(0, b);
  if (o.serial.kind === 'stdio') {
    if (stdin.isTTY) stdin.setRawMode(true);
    stdin.on('data', onStdin);
    stdin.resume();
  }
  let timedOut = false;
  const started = Date.now();
  const timer = setInterval(() => {
    check();
    if (o.timeout && Date.now() - started > o.timeout * 1000) {
      timedOut = true;
      m.stop();
    }
  }, 100);

  try {
    await m.start();
  } finally {
    clearInterval(timer);
    if (o.serial.kind === 'stdio') {
      stdin.off('data', onStdin);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    }
    if (serialOut) await new Promise((r) => serialOut!.end(r));
  }
  check();

  if (o.screenText) writeFileSync(o.screenText, (m.display?.getTextScreen() ?? '') + '\n');
  if (o.screenshot && m.display) writeFileSync(o.screenshot, screenshotPng(m.display));

  if (found) return 0;
  if (timedOut) {
    process.stderr.write(
      `\nboxwood run: timed out after ${o.timeout} s${until ? ` waiting for '${until}'` : ''}; last screen:\n${lastScreen(m)}\n`,
    );
    return 1;
  }
  if (until) {
    process.stderr.write(`\nboxwood run: the machine stopped (${endReason}) before '${until}' appeared; last screen:\n${lastScreen(m)}\n`);
    return 1;
  }
  if (m.exitCode !== null) return m.exitCode;
  return endReason === 'poweroff' || endReason === 'stopped' ? 0 : 1;
}
