/**
 * What a guest wrote reaches the image file when the machine is turned off, even if the guest never
 * sent FLUSH CACHE: images open with a write-back cache, and a power-off must not lose its contents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../../../src-emulator/machine/machine';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';
import { createImage, openImage } from '../../../src-emulator/storage/open';

// Writes 512 bytes of 0xA5 to LBA 5 with WRITE SECTORS (no FLUSH CACHE), says "W" on COM1, then spins.
const PROGRAM = `
bits 16
org 0
start:
  cli
  xor ax, ax
  mov ss, ax
  mov ds, ax
  mov sp, 0x7000
  mov dx, 0x1f6
  mov al, 0xe0
  out dx, al
  mov dx, 0x1f2
  mov al, 1
  out dx, al
  inc dx
  mov al, 5
  out dx, al
  inc dx
  xor al, al
  out dx, al
  inc dx
  out dx, al
  mov dx, 0x1f7
  mov al, 0x30
  out dx, al
.drq:
  in al, dx
  test al, 0x08
  jz .drq
  mov dx, 0x1f0
  mov ax, 0xa5a5
  mov cx, 256
.w:
  out dx, ax
  loop .w
  mov dx, 0x1f7
.busy:
  in al, dx
  test al, 0x80
  jnz .busy
  mov dx, 0x3f8
  mov al, 'W'
  out dx, al
.spin:
  jmp .spin
times 0xfff0-($-$$) db 0xf4
  jmp 0xf000:0
times 0x10000-($-$$) db 0xf4
`;

test('a write the guest never flushed is in the qcow2 file after the machine is stopped', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-durable-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const image = join(dir, 'hd.qcow2');
  createImage(image, 'qcow2', 8 << 20);
  writeFileSync(join(dir, 'prog.asm'), PROGRAM);
  const nasm = spawnSync('nasm', ['-f', 'bin', '-o', join(dir, 'bios.bin'), join(dir, 'prog.asm')]);
  if (nasm.error) throw new Error(`nasm is needed for this test (apt-get install nasm): ${nasm.error.message}`);
  assert.equal(nasm.status, 0, nasm.stderr.toString());

  const m = new Machine(defaultMachineConfig({ memoryMiB: 16, deterministic: true, disks: [{ kind: 'disk', path: image }] }), { noFirmware: true });
  m.loadBios(new Uint8Array(readFileSync(join(dir, 'bios.bin'))));
  let serial = '';
  m.on('serial', (_port, bytes) => (serial += Buffer.from(bytes).toString('latin1')));
  for (let i = 0; i < 100 && !serial.includes('W'); i++) m.runSlice(20);
  assert.equal(serial, 'W', 'the guest finished its write');
  m.stop();
  assert.equal(m.state, 'off');

  const reopened = openImage(image, { readOnly: true });
  try {
    const sector = new Uint8Array(512);
    reopened.read(5 * 512, sector);
    assert.ok(sector.every((b) => b === 0xa5), `sector 5 in the file holds ${Buffer.from(sector.subarray(0, 8)).toString('hex')}...`);
  } finally {
    reopened.close();
  }
  const check = spawnSync('qemu-img', ['check', image]);
  if (!check.error) assert.equal(check.status, 0, `qemu-img check: ${check.stdout}${check.stderr}`);
});
