/**
 * `boxwood image info|create|convert|check|resize|compare|snapshot`: qemu-img's verbs over
 * Boxwood's own storage code. Exit codes follow qemu-img: 0 success; 1 error; for `check`
 * 2 corruption and 3 leaks only; for `compare` 1 different and 2 error.
 */
import { DiskError } from '../../src-emulator/storage/block-device';
import { commitImage, compareImages, convertImage, parseSize, rebaseImage } from '../../src-emulator/storage/convert';
import { IMAGE_FORMATS, type DiskImage, type ImageFormat, type ImageInfo } from '../../src-emulator/storage/disk-image';
import { createImage, openImage, type CreateOptions } from '../../src-emulator/storage/open';
import { Qcow2Image } from '../../src-emulator/storage/qcow2';

const USAGE = `usage: boxwood image <command> [options]

  info [--json] [-f FMT] [--backing-chain] FILE
  create -f FMT [-o OPTIONS] [-b BACKING [-F BACKING_FMT]] FILE [SIZE]
  convert [-f FMT] -O FMT [-o OPTIONS] [-c] [-p] SRC DST
  check [-r leaks|all] [-f FMT] [--json] FILE
  resize [-f FMT] FILE [+|-]SIZE
  compare [-f FMT] [-F FMT] [-p] A B
  snapshot -l | -c NAME | -a NAME | -d NAME  FILE
  rebase [-u] [-p] -b BACKING|"" [-F FMT] FILE   (qcow2; -u only rewrites the header)
  commit [-p] FILE                               (write FILE's own data into its backing file)

formats: raw, iso (read-only), qcow2, vdi, vmdk, vhd (alias vpc), vhdx (read-only)
-o options: cluster_size, compat=0.10|1.1, refcount_bits, lazy_refcounts=on|off (qcow2);
            static=on (vdi); subformat=dynamic|fixed (vdi, vhd);
            subformat=monolithicSparse|monolithicFlat|twoGbMaxExtentSparse|twoGbMaxExtentFlat|streamOptimized (vmdk)
sizes: bytes or with a K, M, G, T suffix (binary)
`;

class UsageError extends Error {}

function fmtName(s: string): ImageFormat {
  const f = s === 'vpc' ? 'vhd' : s;
  if (!IMAGE_FORMATS.includes(f as ImageFormat)) throw new UsageError(`unknown format '${s}'`);
  return f as ImageFormat;
}

/** Minimal getopt: flags listed in `withValue` take the next argument. */
function parseArgs(args: string[], withValue: string[], flags: string[]): { opts: Map<string, string>; rest: string[] } {
  const opts = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (withValue.includes(a)) {
      if (i + 1 >= args.length) throw new UsageError(`${a} needs a value`);
      opts.set(a, args[++i]);
    } else if (flags.includes(a)) opts.set(a, '');
    else if (a.startsWith('-') && a.length > 1 && !/^[+-]\d/.test(a)) throw new UsageError(`unknown option ${a}`);
    else rest.push(a);
  }
  return { opts, rest };
}

function createOptions(o: string | undefined, format: ImageFormat): CreateOptions {
  const out: CreateOptions = {};
  if (!o) return out;
  for (const kv of o.split(',')) {
    const [k, v = ''] = kv.split('=');
    switch (k) {
      case 'cluster_size':
        out.clusterSize = parseSize(v);
        break;
      case 'compat':
        if (v !== '0.10' && v !== '1.1' && v !== 'v2' && v !== 'v3') throw new UsageError(`invalid compat '${v}'`);
        out.version = v === '0.10' || v === 'v2' ? 2 : 3;
        break;
      case 'refcount_bits':
        out.refcountBits = Number(v);
        break;
      case 'lazy_refcounts':
        out.lazyRefcounts = v === 'on';
        break;
      case 'static':
        if (v === 'on') out.variant = 'fixed';
        break;
      case 'subformat':
        out.variant = v;
        break;
      case 'block_size':
        out.blockSize = parseSize(v);
        break;
      default:
        throw new UsageError(`unknown option '${k}' for ${format}`);
    }
  }
  return out;
}

function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${Number(v.toFixed(2))} ${units[u]}`;
}

function progress(enabled: boolean): ((done: number, total: number) => void) | undefined {
  if (!enabled) return undefined;
  let last = -1;
  return (done, total) => {
    const pct = total ? Math.floor((done / total) * 10000) / 100 : 100;
    if (pct - last >= 1 || pct === 100) {
      last = pct;
      process.stderr.write(`    (${pct.toFixed(2)}/100%)\r`);
      if (pct === 100) process.stderr.write('\n');
    }
  };
}

function printInfo(i: ImageInfo): void {
  const lines = [`image: ${i.path}`, `file format: ${i.format}`];
  if (i.variant) lines.push(`variant: ${i.variant}`);
  lines.push(`virtual size: ${human(i.virtualSize)} (${i.virtualSize} bytes)`, `disk size: ${human(i.actualSize)}`);
  if (i.clusterSize) lines.push(`cluster_size: ${i.clusterSize}`);
  if (i.backing) lines.push(`backing file: ${i.backing.path}`, `backing file format: ${i.backing.format}`);
  if (i.snapshots?.length) {
    lines.push('Snapshot list:', 'ID        TAG               VM SIZE                DATE     VM CLOCK');
    for (const s of i.snapshots) {
      lines.push(`${s.id.padEnd(10)}${s.name.padEnd(18)}${human(s.vmStateSize).padStart(7)} ${new Date(s.date * 1000).toISOString().replace('T', ' ').slice(0, 19)}  ${(s.vmClockNs / 1e9).toFixed(3)}`);
    }
  }
  if (i.dirty) lines.push('dirty: yes (refcounts will be repaired on the next read-write open)');
  if (i.specific) {
    lines.push('Format specific information:');
    for (const [k, v] of Object.entries(i.specific)) if (v !== undefined) lines.push(`    ${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

function open(path: string, fmt: string | undefined, readOnly: boolean, noBacking = false): DiskImage {
  return openImage(path, { readOnly, format: fmt ? fmtName(fmt) : undefined, cache: false, noBacking });
}

async function info(args: string[]): Promise<number> {
  const { opts, rest } = parseArgs(args, ['-f'], ['--json', '--backing-chain', '-U']);
  if (rest.length !== 1) throw new UsageError('info needs exactly one FILE');
  const img = open(rest[0], opts.get('-f'), true);
  try {
    const chain: ImageInfo[] = [];
    for (let cur: DiskImage | null = img; cur; cur = opts.has('--backing-chain') ? cur.backing : null) chain.push(cur.info());
    if (opts.has('--json')) process.stdout.write(JSON.stringify(opts.has('--backing-chain') ? chain : chain[0], null, 2) + '\n');
    else chain.forEach((c, k) => {
      if (k) process.stdout.write('\n');
      printInfo(c);
    });
  } finally {
    img.close();
  }
  return 0;
}

async function create(args: string[]): Promise<number> {
  const { opts, rest } = parseArgs(args, ['-f', '-o', '-b', '-F'], ['-q']);
  const f = opts.get('-f');
  if (!f) throw new UsageError('create needs -f FMT');
  if (rest.length < 1 || rest.length > 2) throw new UsageError('create needs FILE [SIZE]');
  const format = fmtName(f);
  const co = createOptions(opts.get('-o'), format);
  if (opts.has('-b')) co.backing = opts.get('-b');
  if (opts.has('-F')) co.backingFormat = fmtName(opts.get('-F')!);
  const size = rest[1] ? parseSize(rest[1]) : 0;
  if (!size && !co.backing) throw new UsageError('create needs a SIZE (or a backing file to take it from)');
  createImage(rest[0], format, size, co);
  if (!opts.has('-q')) process.stdout.write(`Formatting '${rest[0]}', fmt=${format} size=${size || "(from backing file)"}${co.backing ? ` backing_file=${co.backing}` : ''}\n`);
  return 0;
}

async function convert(args: string[]): Promise<number> {
  const { opts, rest } = parseArgs(args, ['-f', '-O', '-o'], ['-c', '-p', '-q']);
  if (rest.length !== 2) throw new UsageError('convert needs SRC and DST');
  const out = fmtName(opts.get('-O') ?? 'raw');
  const src = open(rest[0], opts.get('-f'), true);
  try {
    convertImage(src, rest[1], out, { ...createOptions(opts.get('-o'), out), compress: opts.has('-c'), onProgress: progress(opts.has('-p')) });
  } finally {
    src.close();
  }
  return 0;
}

async function check(args: string[]): Promise<number> {
  const { opts, rest } = parseArgs(args, ['-f', '-r'], ['--json', '-q']);
  if (rest.length !== 1) throw new UsageError('check needs exactly one FILE');
  const repair = opts.get('-r');
  if (repair !== undefined && repair !== 'leaks' && repair !== 'all') throw new UsageError("-r takes 'leaks' or 'all'");
  const img = open(rest[0], opts.get('-f'), repair === undefined, true);
  let r;
  try {
    r = img.check(repair !== undefined);
  } finally {
    img.close();
  }
  if (opts.has('--json')) process.stdout.write(JSON.stringify({ filename: rest[0], ...r }, null, 2) + '\n');
  else {
    for (const e of r.errors) process.stdout.write(`ERROR ${e}\n`);
    if (r.repaired) process.stdout.write(`Repaired ${r.repaired} problem(s).\n`);
    if (r.leaks) process.stdout.write(`${r.leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n`);
    if (r.errors.length) process.stdout.write(`\n${r.errors.length} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n`);
    if (!r.errors.length && !r.leaks) process.stdout.write('No errors were found on the image.\n');
    if (r.total) process.stdout.write(`${r.allocated ?? 0}/${r.total} = ${(((r.allocated ?? 0) / r.total) * 100).toFixed(2)}% allocated\n`);
  }
  return r.errors.length ? 2 : r.leaks ? 3 : 0;
}

async function resize(args: string[]): Promise<number> {
  const { opts, rest } = parseArgs(args, ['-f'], ['-q', '--shrink']);
  if (rest.length !== 2) throw new UsageError('resize needs FILE and SIZE');
  const img = open(rest[0], opts.get('-f'), false);
  try {
    const s = rest[1];
    const size = s.startsWith('+') ? img.size + parseSize(s.slice(1)) : s.startsWith('-') ? img.size - parseSize(s.slice(1)) : parseSize(s);
    if (size < img.size && !opts.has('--shrink') && img.format !== 'raw') throw new UsageError('shrinking needs --shrink');
    img.resize(size);
  } finally {
    img.close();
  }
  if (!opts.has('-q')) process.stdout.write('Image resized.\n');
  return 0;
}

async function compare(args: string[]): Promise<number> {
  const { opts, rest } = parseArgs(args, ['-f', '-F'], ['-p', '-q', '-s']);
  if (rest.length !== 2) throw new UsageError('compare needs two images');
  let a: DiskImage | null = null;
  let b: DiskImage | null = null;
  try {
    a = open(rest[0], opts.get('-f'), true);
    b = open(rest[1], opts.get('-F') ?? opts.get('-f'), true);
    const r = compareImages(a, b, progress(opts.has('-p')));
    if (r.sizeMismatch) process.stdout.write('Warning: Image size mismatch!\n');
    if (r.identical && !(opts.has('-s') && r.sizeMismatch)) {
      process.stdout.write('Images are identical.\n');
      return 0;
    }
    process.stdout.write(`Content mismatch at offset ${r.firstDifference ?? Math.min(a.size, b.size)}!\n`);
    return 1;
  } catch (err) {
    process.stderr.write(`boxwood image: ${(err as Error).message}\n`);
    return 2;
  } finally {
    a?.close();
    b?.close();
  }
}

async function snapshot(args: string[]): Promise<number> {
  const { opts, rest } = parseArgs(args, ['-c', '-a', '-d'], ['-l', '-q']);
  if (rest.length !== 1) throw new UsageError('snapshot needs exactly one FILE');
  const ops = ['-l', '-c', '-a', '-d'].filter((o) => opts.has(o));
  if (ops.length !== 1) throw new UsageError('snapshot needs exactly one of -l, -c, -a, -d');
  const img = open(rest[0], undefined, ops[0] === '-l');
  try {
    if (!(img instanceof Qcow2Image)) throw new DiskError(rest[0], `internal snapshots need a qcow2 image (this is ${img.format})`);
    if (ops[0] === '-l') {
      const list = img.listSnapshots();
      if (list.length) {
        process.stdout.write('Snapshot list:\nID        TAG               VM SIZE                DATE     VM CLOCK\n');
        for (const s of list) process.stdout.write(`${s.id.padEnd(10)}${s.name.padEnd(18)}${human(s.vmStateSize).padStart(7)} ${new Date(s.date * 1000).toISOString().replace('T', ' ').slice(0, 19)}  ${(s.vmClockNs / 1e9).toFixed(3)}\n`);
      }
    } else if (ops[0] === '-c') img.createSnapshot(opts.get('-c')!);
    else if (ops[0] === '-a') img.applySnapshot(opts.get('-a')!);
    else img.deleteSnapshot(opts.get('-d')!);
  } finally {
    img.close();
  }
  return 0;
}

async function rebase(args: string[]): Promise<number> {
  const { opts, rest } = parseArgs(args, ['-b', '-F', '-f'], ['-u', '-p', '-q']);
  if (rest.length !== 1 || !opts.has('-b')) throw new UsageError('rebase needs -b BACKING (or -b "") and FILE');
  const b = opts.get('-b') || null;
  const fmt = opts.has('-F') ? fmtName(opts.get('-F')!) : undefined;
  if (opts.has('-u')) {
    const img = open(rest[0], opts.get('-f'), false, true);
    try {
      if (!(img instanceof Qcow2Image)) throw new DiskError(rest[0], `rebase needs a qcow2 image (this is ${img.format})`);
      img.changeBackingFile(b, fmt);
    } finally {
      img.close();
    }
  } else rebaseImage(rest[0], b, fmt, progress(opts.has('-p')));
  return 0;
}

async function commit(args: string[]): Promise<number> {
  const { opts, rest } = parseArgs(args, ['-f'], ['-p', '-q']);
  if (rest.length !== 1) throw new UsageError('commit needs exactly one FILE');
  commitImage(rest[0], progress(opts.has('-p')));
  if (!opts.has('-q')) process.stdout.write('Image committed.\n');
  return 0;
}

const commands: Record<string, (args: string[]) => Promise<number>> = { info, create, convert, check, resize, compare, snapshot, rebase, commit };

export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd ? 0 : 1;
  }
  const run = commands[cmd];
  if (!run) {
    process.stderr.write(`boxwood image: unknown command '${cmd}'\n${USAGE}`);
    return 1;
  }
  try {
    return await run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`boxwood image ${cmd}: ${err.message}\n`);
      return 1;
    }
    if (err instanceof DiskError) {
      process.stderr.write(`boxwood image ${cmd}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`boxwood image ${cmd}: ${(err as Error)?.message ?? err}\n`);
    return 1;
  }
}
