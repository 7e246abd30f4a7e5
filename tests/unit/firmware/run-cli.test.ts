/** `boxwood run`: argument parsing in process, and the real CLI as a child process. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunArgs, configFromOptions } from '../../../src-main/cli/run';
import { hasNasm, hasXorriso, assemble, PROGRAM, diskImage, makeIso } from './support';

const BIN = join(process.cwd(), 'bin/boxwood.mjs');

function run(args: string[], timeoutMs = 60000) {
  const r = spawnSync(process.execPath, [BIN, 'run', ...args], { encoding: 'utf8', timeout: timeoutMs, input: '' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.replace(/^npm warn.*\n/gm, '') };
}

test('parses the flags of the issue', () => {
  const o = parseRunArgs([
    '--memory',
    '256',
    '--kernel',
    'k',
    '--initrd',
    'i',
    '--append',
    'console=ttyS0 quiet',
    '--serial',
    'file:/tmp/s.txt',
    '--boot',
    'dc',
    '--firmware',
    'seabios:/x/bios.bin',
    '--vga-bios',
    '/x/vga.bin',
    '--until',
    'login:',
    '--timeout',
    '30',
    '--screen-text',
    's.txt',
    '--screenshot',
    's.png',
    '--deterministic',
    '--cdrom',
    'c.iso',
    '--hda',
    'a.img',
    '--hdb',
    'b.img',
    '--fda',
    'f.img',
  ]);
  assert.equal(o.memory, 256);
  assert.deepEqual(o.serial, { kind: 'file', path: '/tmp/s.txt' });
  assert.deepEqual(o.boot, ['cdrom', 'disk']);
  assert.deepEqual(o.firmware, { kind: 'seabios', path: '/x/bios.bin' });
  assert.equal(o.timeout, 30);
  assert.ok(o.deterministic);
  const c = configFromOptions(o);
  assert.deepEqual(c.firmware, { kind: 'seabios', biosPath: '/x/bios.bin', vgaBiosPath: '/x/vga.bin' });
  assert.deepEqual(c.kernel, { kernelPath: 'k', initrdPath: 'i', cmdline: 'console=ttyS0 quiet' });
  assert.deepEqual(
    c.disks.map((d) => [d.kind, d.path, d.channel, d.unit]),
    [
      ['disk', 'a.img', 0, 0],
      ['disk', 'b.img', 0, 1],
      ['cdrom', 'c.iso', 1, 0],
      ['floppy', 'f.img', undefined, undefined],
    ],
  );
  assert.equal(parseRunArgs(['--hda=x.img', '--memory=64M']).memory, 64);
});

test('bad arguments are refused with the reason', () => {
  assert.throws(() => parseRunArgs(['--memory', 'lots', '--hda', 'x']), /--memory: 'lots'/);
  assert.throws(() => parseRunArgs(['--serial', 'tcp:1']), /--serial: 'tcp:1'/);
  assert.throws(() => parseRunArgs(['--boot', 'z', '--hda', 'x']), /--boot: 'z'/);
  assert.throws(() => parseRunArgs(['--firmware', 'uefi', '--hda', 'x']), /--firmware: 'uefi'/);
  assert.throws(() => parseRunArgs(['--initrd', 'i']), /--initrd needs --kernel/);
  assert.throws(() => parseRunArgs([]), /nothing to boot/);
  assert.throws(() => parseRunArgs(['--hda']), /--hda needs a value/);
  assert.throws(() => parseRunArgs(['--frobnicate']), /unknown option '--frobnicate'/);
});

test('bad input: one line naming the file and the fault, exit 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-cli-'));
  try {
    const notKernel = join(dir, 'notakernel');
    writeFileSync(notKernel, 'hello');
    let r = run(['--kernel', notKernel]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `boxwood run: ${notKernel}: not a Linux bzImage (only 5 bytes)\n`);
    r = run(['--hda', join(dir, 'missing.img')]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `boxwood run: ${join(dir, 'missing.img')}: disk image not found\n`);
    const blank = join(dir, 'blank.img');
    writeFileSync(blank, new Uint8Array(1024 * 1024));
    r = run(['--hda', blank]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^boxwood run: .*blank\.img: no boot signature \(0x55AA\) in the MBR: no bootable partition or boot loader\n$/);
    if (hasXorriso) {
      const root = join(dir, 'root');
      mkdirSync(root);
      writeFileSync(join(root, 'README'), 'data');
      const iso = join(dir, 'data.iso');
      makeIso(root, iso, null);
      r = run(['--cdrom', iso]);
      assert.equal(r.code, 2);
      assert.equal(r.stderr, `boxwood run: ${iso}: no El Torito boot record (not a bootable CD)\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  '--until exits 0 when the text appears; --timeout exits 1 with the last screen; screen files written',
  { skip: hasNasm ? false : 'nasm not installed' },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-cli-'));
    try {
      const img = join(dir, 'disk.img');
      writeFileSync(img, diskImage(assemble(dir, PROGRAM)));
      const screen = join(dir, 'screen.txt');
      const png = join(dir, 'screen.png');
      let r = run(['--hda', img, '--deterministic', '--until', 'WAIT', '--timeout', '60', '--screen-text', screen, '--screenshot', png]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /S1 S2 S63 \d WAIT/);
      assert.match(readFileSync(screen, 'utf8'), /HELLO FROM MBR/);
      assert.ok(existsSync(png));
      assert.deepEqual([...readFileSync(png).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      r = run(['--hda', img, '--serial', 'none', '--until', 'NEVER-APPEARS', '--timeout', '2']);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /timed out after 2 s waiting for 'NEVER-APPEARS'; last screen:\n[\s\S]*HELLO FROM MBR/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

const ECHO_PROGRAM = `
bits 16
org 0x7c00
  mov dx, 0x3fd
poll:
  in al, dx
  test al, 1
  jz poll
  mov dx, 0x3f8
  in al, dx
  mov bl, al
  mov al, 'G'
  out dx, al
  mov al, 'O'
  out dx, al
  mov al, 'T'
  out dx, al
  mov al, ' '
  out dx, al
  mov al, bl
  out dx, al
  mov al, 0x10
  out 0xf4, al
  hlt
times 510-($-$$) db 0
dw 0xaa55
`;

test(
  "--serial stdio: stdin feeds COM1; a debug-exit without --until gives QEMU's exit code",
  { skip: hasNasm ? false : 'nasm not installed' },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-cli-'));
    try {
      const img = join(dir, 'echo.img');
      const disk = new Uint8Array(1024 * 1024);
      disk.set(assemble(dir, ECHO_PROGRAM));
      writeFileSync(img, disk);
      const r = spawnSync(process.execPath, [BIN, 'run', '--hda', img, '--timeout', '60'], {
        encoding: 'utf8',
        timeout: 60000,
        input: 'x',
      });
      assert.equal(r.stdout, 'GOT x');
      assert.equal(r.status, (0x10 << 1) | 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
