/**
 * The disk and display devices inside a whole Machine: built from a MachineConfig with real image
 * files, and driven by a real-mode x86 program (assembled with nasm) that reads a sector through ATA
 * PIO, writes text to the VGA text buffer and reports over COM1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../../../src-emulator/machine/machine';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';
import { AtaDrive } from '../../../src-emulator/devices/ata-drive';
import { AtapiDrive } from '../../../src-emulator/devices/atapi-drive';

const PROGRAM = `
bits 16
org 0
start:
  cli
  xor ax, ax
  mov ss, ax
  mov ds, ax
  mov es, ax
  mov sp, 0x7000
  mov dx, 0x1f6
  mov al, 0xe0
  out dx, al
  mov dx, 0x1f2
  mov al, 1
  out dx, al
  inc dx
  mov al, 2
  out dx, al
  inc dx
  xor al, al
  out dx, al
  inc dx
  out dx, al
  mov dx, 0x1f7
  mov al, 0x20
  out dx, al
.wait:
  in al, dx
  test al, 0x80
  jnz .wait
  test al, 0x08
  jz .fail
  mov dx, 0x1f0
  mov di, 0x7c00
  mov cx, 256
  cld
  rep insw
  mov si, 0x7c00
  mov cx, 8
  mov dx, 0x3f8
.p:
  lodsb
  out dx, al
  loop .p
  mov ax, 0xb800
  mov es, ax
  xor di, di
  mov si, 0x7c00
  mov cx, 8
  mov ah, 0x1f
.t:
  lodsb
  stosw
  loop .t
  mov al, 0
  out 0xf4, al
  hlt
.fail:
  mov al, 1
  out 0xf4, al
  hlt
times 0xfff0-($-$$) db 0xf4
  jmp 0xf000:0
times 0x10000-($-$$) db 0xf4
`;

test('Machine wires IDE, floppy and VGA from the config; a real-mode program reads a sector by ATA PIO', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-ide-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const disk = new Uint8Array(1 << 20);
  disk.set(new TextEncoder().encode('BOXWOOD!'), 2 * 512);
  writeFileSync(join(dir, 'hd.img'), disk);
  const iso = new Uint8Array(64 * 2048);
  // Primary volume descriptor and set terminator: enough for content detection.
  iso.set([0x01, ...Buffer.from('CD001'), 0x01], 16 * 2048);
  iso.set([0xff, ...Buffer.from('CD001'), 0x01], 17 * 2048);
  writeFileSync(join(dir, 'cd.iso'), iso);
  writeFileSync(join(dir, 'fd.img'), new Uint8Array(1_474_560));
  writeFileSync(join(dir, 'prog.asm'), PROGRAM);
  const nasm = spawnSync('nasm', ['-f', 'bin', '-o', join(dir, 'bios.bin'), join(dir, 'prog.asm')]);
  if (nasm.error) throw new Error(`nasm is needed for this test (apt-get install nasm): ${nasm.error.message}`);
  assert.equal(nasm.status, 0, nasm.stderr.toString());

  const m = new Machine(
    defaultMachineConfig({
      memoryMiB: 16,
      deterministic: true,
      disks: [
        { kind: 'disk', path: join(dir, 'hd.img') },
        { kind: 'cdrom', path: join(dir, 'cd.iso') },
        { kind: 'floppy', path: join(dir, 'fd.img') },
      ],
    }),
    { noFirmware: true },
  );
  assert.ok(m.ide.drive(0, 0) instanceof AtaDrive);
  assert.ok(m.ide.drive(1, 0) instanceof AtapiDrive);
  const drives = m.biosDrives();
  assert.equal(drives.disks.length, 1);
  assert.equal(drives.disks[0].size, 1 << 20);
  assert.equal(drives.cdroms.length, 1);
  assert.deepEqual([drives.cdroms[0].channel, drives.cdroms[0].unit], [1, 0]);
  assert.equal(drives.cdroms[0].medium?.size, 64 * 2048);
  assert.equal(drives.floppies[0]?.size, 1_474_560);
  assert.equal(drives.floppies[1], null);
  assert.equal(m.pci.readConfig(0, 1, 1, 0, 4), 0x70108086);
  assert.equal(m.pci.readConfig(0, 2, 0, 0, 4), 0x11111234);
  assert.equal(m.display, m.vga);

  m.loadBios(new Uint8Array(readFileSync(join(dir, 'bios.bin'))));
  let serial = '';
  m.on('serial', (port, bytes) => {
    if (port === 0) serial += Buffer.from(bytes).toString('latin1');
  });
  for (let i = 0; i < 50 && m.state !== 'off'; i++) m.runSlice(50);
  assert.equal(m.exitCode, 1, `program ended with ${m.exitCode}; serial: ${JSON.stringify(serial)}`);
  assert.equal(serial, 'BOXWOOD!');
  assert.equal(m.display!.getTextScreen()!.split('\n')[0], 'BOXWOOD!');
});

test('bad disk configuration gives a clear error naming the file', () => {
  assert.throws(
    () => new Machine(defaultMachineConfig({ disks: [{ kind: 'disk', path: '/nonexistent/x.img' }] }), { noFirmware: true }),
    /\/nonexistent\/x\.img/,
  );
  assert.throws(
    () =>
      new Machine(
        defaultMachineConfig({
          disks: [
            { kind: 'cdrom', path: null, channel: 1, unit: 0 },
            { kind: 'cdrom', path: null, channel: 1, unit: 0 },
          ],
        }),
        { noFirmware: true },
      ),
    /IDE 1:0 is given twice/,
  );
});
