/**
 * `npm run guests`: fetches the Debian packages the real-guest tests and benchmarks boot, and builds
 * the guests from them into a cache outside git (`.cache/guests/`, or $BOXWOOD_GUEST_CACHE).
 *
 * Packages come through apt with private lists for the guest architecture, so the host system is
 * never changed: `apt-get -o APT::Architecture=i386 ... download PKG`, then `dpkg-deb -x`.
 *
 * Built (i386):
 *   vmlinuz-686            Debian's linux-image-686 kernel
 *   initramfs.cpio.gz      busybox-static with an /init that prints BOXWOOD-INIT-OK and runs a shell
 *   linux.iso              El Torito ISO (isolinux) with that kernel and initramfs
 *   linux-hd.img           raw disk: MBR partition table, one bootable ext2 partition, extlinux
 *   manifest.json          package versions and SHA-256 of every artifact
 *
 * Host tools it needs (installed by .ci/run): apt-get, dpkg-deb, xorriso, isolinux, syslinux-common,
 * extlinux, e2fsprogs; plus mount on a loop device for extlinux (falls back to SYSLINUX on FAT with
 * mtools where loop devices are unavailable).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync, statSync, mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { guestCacheDir } from '../tests/support/guests';

const args = process.argv.slice(2);
const force = args.includes('--force');
const arches = args.includes('--amd64') ? ['i386', 'amd64'] : ['i386'];

const cache = guestCacheDir();
mkdirSync(cache, { recursive: true });

function sh(cmd: string, argv: string[], opts: { cwd?: string; input?: Buffer; allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, argv, { cwd: opts.cwd, input: opts.input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28 }).toString();
  } catch (err) {
    const e = err as { stderr?: Buffer; status?: number };
    if (opts.allowFail) return '';
    throw new Error(`${cmd} ${argv.join(' ')} failed (exit ${e.status}): ${e.stderr?.toString().trim().slice(-2000)}`);
  }
}

function need(tool: string, pkg: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`guests: the host tool '${tool}' is missing: install the Debian package '${pkg}' (apt-get install ${pkg})`);
  }
}

/** apt-get/apt-cache with private lists for `arch`: the host's own package state is never touched. */
function aptArgs(arch: string): string[] {
  const dir = join(cache, 'apt', arch);
  mkdirSync(join(dir, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
  return [
    '-o', `APT::Architecture=${arch}`,
    '-o', `APT::Architectures=${arch}`,
    '-o', `Dir::State::Lists=${join(dir, 'lists')}`,
    '-o', `Dir::Cache=${join(dir, 'cache')}`,
    '-o', 'Dir::State::status=/dev/null',
  ];
}

const updated = new Set<string>();
function aptUpdate(arch: string): void {
  if (updated.has(arch)) return;
  // A partial failure (one mirror index mid-sync) still leaves usable lists; a missing package fails below.
  sh('apt-get', [...aptArgs(arch), '-q', 'update'], { allowFail: true });
  updated.add(arch);
}

/** Resolves a metapackage like linux-image-686 to the real package it depends on. */
function resolveMeta(arch: string, pkg: string, prefix: string): string {
  const out = sh('apt-cache', [...aptArgs(arch), 'depends', pkg]);
  const m = out.match(new RegExp(`Depends: (${prefix}[^\\s]+)`));
  if (!m) throw new Error(`guests: cannot resolve ${pkg} for ${arch}: apt-cache said:\n${out}`);
  return m[1];
}

/** Downloads `pkg` for `arch` and unpacks it; returns [unpack dir, version]. */
function fetchPackage(arch: string, pkg: string): [string, string] {
  const debDir = join(cache, 'debs', arch);
  mkdirSync(debDir, { recursive: true });
  const existing = readdirSync(debDir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  let deb = existing ? join(debDir, existing) : '';
  if (!deb || force) {
    aptUpdate(arch);
    sh('apt-get', [...aptArgs(arch), '-q', 'download', `${pkg}:${arch}`], { cwd: debDir });
    const got = readdirSync(debDir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!got) throw new Error(`guests: apt-get download ${pkg}:${arch} produced no .deb`);
    deb = join(debDir, got);
  }
  const version = sh('dpkg-deb', ['-f', deb, 'Version']).trim();
  const dir = join(cache, 'unpacked', arch, pkg);
  if (!existsSync(dir) || force) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    sh('dpkg-deb', ['-x', deb, dir]);
  }
  return [dir, version];
}

// ---- initramfs: a newc cpio written here, so device nodes need no root and no mknod -----------

interface CpioEntry {
  name: string;
  mode: number; // including the file-type bits
  data?: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
}

function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    const data = (e as CpioEntry).data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const header =
      '070701' + hex(e.name === 'TRAILER!!!' ? 0 : ino++) + hex(e.mode) + hex(0) + hex(0) + hex(1) + hex(0) + hex(data.length) +
      hex(0) + hex(0) + hex((e as CpioEntry).rdevMajor ?? 0) + hex((e as CpioEntry).rdevMinor ?? 0) + hex(name.length) + hex(0);
    parts.push(Buffer.from(header), name, pad4(110 + name.length), data, pad4(data.length));
  }
  return Buffer.concat(parts);
}

/**
 * /init prints markers the tests and the benchmark wait for. With `boxwood.bench` on the command
 * line it runs the fixed benchmark workload between markers (timed by the host) and powers off.
 */
const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /root
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root PS1='boxwood# '
if grep -q boxwood.ata /proc/cmdline; then
  for m in $(cat /etc/ata-modules); do insmod /lib/modules/$m.ko; done
  i=0; while [ ! -b /dev/sda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
fi
echo "BOXWOOD-INIT-OK"
if grep -q boxwood.bench /proc/cmdline; then
  echo "BENCH-LOOP-START"
  i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done
  echo "BENCH-LOOP-END $i"
  echo "BENCH-DD-START"
  dd if=/dev/zero bs=1M count=32 2>/dev/null | md5sum
  echo "BENCH-DD-END"
  poweroff -f
fi
cd /root
while true; do
  setsid cttyhack sh -l
  sleep 1
done
`;

/** The module's own `depends=` list, read from its .modinfo strings (no kmod needed on the host). */
function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const list = ko.subarray(at + 9, end).toString('latin1');
  return list ? list.split(',').map((n) => n.replace(/-/g, '_')) : [];
}

/**
 * Debian builds the disk drivers as modules; `boxwood.ata` on the command line makes /init load
 * ata_piix and sd_mod (with what they depend on, in order) so a guest can use /dev/sda.
 */
function ataModules(kernelDir: string): { name: string; data: Buffer }[] {
  const root = join(kernelDir, 'lib', 'modules');
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const f of readdirSync(dir, { withFileTypes: true })) {
      if (f.isDirectory()) walk(join(dir, f.name));
      else if (f.name.endsWith('.ko')) files.set(f.name.slice(0, -3).replace(/-/g, '_'), join(dir, f.name));
    }
  };
  walk(root);
  const ordered: { name: string; data: Buffer }[] = [];
  const visit = (name: string): void => {
    if (ordered.some((m) => m.name === name)) return;
    const path = files.get(name);
    if (!path) throw new Error(`guests: kernel module ${name} not found under ${root}`);
    const data = readFileSync(path);
    for (const dep of moduleDepends(data)) visit(dep);
    ordered.push({ name, data });
  };
  // sd_mod's integrity support wants the CRC implementations its helpers only name at run time.
  for (const m of ['crct10dif_generic', 'crc64_rocksoft_generic', 'ata_piix', 'sd_mod']) visit(m);
  return ordered;
}

function buildInitramfs(busyboxDir: string, out: string, modules: { name: string; data: Buffer }[] = []): void {
  const busybox = readFileSync(join(busyboxDir, 'bin', 'busybox'));
  const dirs = ['bin', 'dev', 'proc', 'sys', 'tmp', 'root', 'etc', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'lib', 'lib/modules'];
  const entries: CpioEntry[] = [
    ...dirs.map((d) => ({ name: d, mode: 0o040755 })),
    { name: 'dev/console', mode: 0o020600, rdevMajor: 5, rdevMinor: 1 },
    { name: 'dev/ttyS0', mode: 0o020660, rdevMajor: 4, rdevMinor: 64 },
    { name: 'dev/tty0', mode: 0o020620, rdevMajor: 4, rdevMinor: 0 },
    { name: 'dev/null', mode: 0o020666, rdevMajor: 1, rdevMinor: 3 },
    { name: 'bin/busybox', mode: 0o100755, data: busybox },
    { name: 'bin/sh', mode: 0o120777, data: Buffer.from('busybox') },
    { name: 'init', mode: 0o100755, data: Buffer.from(INIT_SCRIPT) },
    { name: 'etc/profile', mode: 0o100644, data: Buffer.from("export PS1='boxwood# '\n") },
    { name: 'etc/ata-modules', mode: 0o100644, data: Buffer.from(modules.map((m) => m.name).join('\n') + '\n') },
    ...modules.map((m) => ({ name: `lib/modules/${m.name}.ko`, mode: 0o100644, data: m.data })),
  ];
  writeFileSync(out, gzipSync(cpioNewc(entries), { level: 9 }));
}

// ---- bootable media ------------------------------------------------------------------------

/**
 * `cryptomgr.notests` skips the kernel's crypto self-tests (RSA private-key vectors cost billions of
 * instructions at boot); the benchmark boots with the plain command line and pays for them.
 */
const SYSLINUX_CFG = (dir: string) => `DEFAULT serial
PROMPT 0
TIMEOUT 1
LABEL serial
  KERNEL ${dir}vmlinuz
  INITRD ${dir}initrd.gz
  APPEND console=tty0 console=ttyS0 quiet cryptomgr.notests
`;

function buildIso(kernel: string, initrd: string, syslinuxCommon: string, isolinuxPkg: string, out: string): void {
  need('xorriso', 'xorriso');
  const root = mkdtempSync(join(tmpdir(), 'boxwood-iso-'));
  try {
    mkdirSync(join(root, 'isolinux'));
    copyFileSync(join(isolinuxPkg, 'usr/lib/ISOLINUX/isolinux.bin'), join(root, 'isolinux/isolinux.bin'));
    copyFileSync(join(syslinuxCommon, 'usr/lib/syslinux/modules/bios/ldlinux.c32'), join(root, 'isolinux/ldlinux.c32'));
    copyFileSync(kernel, join(root, 'isolinux/vmlinuz'));
    copyFileSync(initrd, join(root, 'isolinux/initrd.gz'));
    writeFileSync(join(root, 'isolinux/isolinux.cfg'), SYSLINUX_CFG('/isolinux/'));
    sh('xorriso', [
      '-as', 'mkisofs', '-quiet', '-o', out, '-V', 'BOXWOOD_LINUX',
      '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
      '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', root,
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A 64 MiB raw disk: MBR (syslinux mbr.bin) + one bootable ext2 partition at 1 MiB with extlinux. */
function buildHardDisk(kernel: string, initrd: string, syslinuxCommon: string, out: string): string {
  const sizeMiB = 64;
  const startSector = 2048;
  const partSectors = sizeMiB * 2048 - startSector;
  const disk = Buffer.alloc(sizeMiB << 20);
  // MBR boot code from syslinux, then one active Linux partition in the table.
  const mbr = readFileSync(join(syslinuxCommon, 'usr/lib/syslinux/mbr/mbr.bin'));
  mbr.copy(disk, 0, 0, Math.min(440, mbr.length));
  const pe = 446;
  disk[pe] = 0x80;
  disk.writeUInt8(0xfe, pe + 1); disk.writeUInt8(0xff, pe + 2); disk.writeUInt8(0xff, pe + 3); // CHS: use LBA
  disk[pe + 4] = 0x83;
  disk.writeUInt8(0xfe, pe + 5); disk.writeUInt8(0xff, pe + 6); disk.writeUInt8(0xff, pe + 7);
  disk.writeUInt32LE(startSector, pe + 8);
  disk.writeUInt32LE(partSectors, pe + 12);
  disk[510] = 0x55;
  disk[511] = 0xaa;

  const work = mkdtempSync(join(tmpdir(), 'boxwood-hd-'));
  const part = join(work, 'part.img');
  let method = 'extlinux';
  try {
    writeFileSync(part, Buffer.alloc(partSectors * 512));
    need('mke2fs', 'e2fsprogs');
    const tree = join(work, 'tree');
    mkdirSync(join(tree, 'boot', 'extlinux'), { recursive: true });
    copyFileSync(kernel, join(tree, 'boot', 'vmlinuz'));
    copyFileSync(initrd, join(tree, 'boot', 'initrd.gz'));
    writeFileSync(join(tree, 'boot', 'extlinux', 'extlinux.conf'), SYSLINUX_CFG('/boot/'));
    sh('mke2fs', ['-q', '-F', '-t', 'ext2', '-L', 'BOXWOOD', '-d', tree, part]);
    const mnt = join(work, 'mnt');
    mkdirSync(mnt);
    let mounted = false;
    try {
      sh('mount', ['-o', 'loop', part, mnt]);
      mounted = true;
      need('extlinux', 'extlinux');
      sh('extlinux', ['--install', join(mnt, 'boot', 'extlinux')]);
    } catch (err) {
      if (mounted) throw err;
      // No loop devices here: SYSLINUX on FAT through mtools needs no mount.
      method = 'syslinux-fat';
      need('mkfs.vfat', 'dosfstools');
      need('syslinux', 'syslinux');
      need('mcopy', 'mtools');
      writeFileSync(part, Buffer.alloc(partSectors * 512));
      sh('mkfs.vfat', ['-n', 'BOXWOOD', part]);
      disk[pe + 4] = 0x0c;
      sh('mmd', ['-i', part, '::/boot']);
      sh('mcopy', ['-i', part, kernel, '::/boot/vmlinuz']);
      sh('mcopy', ['-i', part, initrd, '::/boot/initrd.gz']);
      writeFileSync(join(work, 'syslinux.cfg'), SYSLINUX_CFG('/boot/'));
      sh('mcopy', ['-i', part, join(work, 'syslinux.cfg'), '::/syslinux.cfg']);
      sh('syslinux', ['--install', part]);
    } finally {
      if (mounted) sh('umount', [mnt], { allowFail: true });
    }
    readFileSync(part).copy(disk, startSector * 512);
    writeFileSync(out, disk);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return method;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

// ---- main ------------------------------------------------------------------------------------

need('apt-get', 'apt');
need('dpkg-deb', 'dpkg');
const manifest: Record<string, unknown> = { built: new Date().toISOString(), arches: {} };
for (const arch of arches) {
  const out = join(cache, arch);
  mkdirSync(out, { recursive: true });
  aptUpdate(arch);
  const kernelMeta = arch === 'i386' ? 'linux-image-686' : 'linux-image-amd64';
  const kernelPkg = resolveMeta(arch, kernelMeta, 'linux-image-');
  console.log(`guests[${arch}]: ${kernelMeta} -> ${kernelPkg}`);
  const [kdir, kver] = fetchPackage(arch, kernelPkg);
  const [bbdir, bbver] = fetchPackage(arch, 'busybox-static');
  const [slc, slcver] = fetchPackage(arch, 'syslinux-common');
  const [iso, isover] = fetchPackage(arch, 'isolinux');

  const vmlinuz = readdirSync(join(kdir, 'boot')).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new Error(`guests: ${kernelPkg} has no /boot/vmlinuz-*`);
  const kernelName = arch === 'i386' ? 'vmlinuz-686' : 'vmlinuz-amd64';
  copyFileSync(join(kdir, 'boot', vmlinuz), join(out, kernelName));
  buildInitramfs(bbdir, join(out, 'initramfs.cpio.gz'), ataModules(kdir));
  console.log(`guests[${arch}]: kernel ${vmlinuz}, initramfs built`);
  const artifacts: Record<string, string> = {};
  artifacts[kernelName] = sha256(join(out, kernelName));
  artifacts['initramfs.cpio.gz'] = sha256(join(out, 'initramfs.cpio.gz'));
  let diskMethod = '';
  if (arch === 'i386') {
    buildIso(join(out, kernelName), join(out, 'initramfs.cpio.gz'), slc, iso, join(out, 'linux.iso'));
    diskMethod = buildHardDisk(join(out, kernelName), join(out, 'initramfs.cpio.gz'), slc, join(out, 'linux-hd.img'));
    artifacts['linux.iso'] = sha256(join(out, 'linux.iso'));
    artifacts['linux-hd.img'] = sha256(join(out, 'linux-hd.img'));
    console.log(`guests[${arch}]: linux.iso (isolinux) and linux-hd.img (${diskMethod}) built`);
  }
  (manifest.arches as Record<string, unknown>)[arch] = {
    packages: { [kernelPkg]: kver, 'busybox-static': bbver, 'syslinux-common': slcver, isolinux: isover },
    hardDiskBootloader: diskMethod || undefined,
    artifacts,
  };
  for (const [name] of Object.entries(artifacts)) console.log(`  ${join(out, name)} (${(statSync(join(out, name)).size / 1024 / 1024).toFixed(1)} MiB)`);
}
writeFileSync(join(cache, 'manifest.json'), JSON.stringify(manifest, null, 2));
console.log(`guests: ready in ${resolve(cache)}`);
