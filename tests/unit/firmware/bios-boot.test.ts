/**
 * The built-in BIOS on the real machine and CPU: a real-mode program booted from an MBR uses
 * INT 10h, 13h (CHS and LBA), 15h (E820), 16h (a key typed as PS/2 scancodes) and 1Ah and
 * reports on COM1, then leaves through isa-debug-exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../../../src-emulator/machine/machine';
import { defaultMachineConfig, type MachineConfig } from '../../../src-emulator/machine/config';
import { installFirmware } from '../../../src-emulator/firmware/index';

const hasNasm = spawnSync('nasm', ['-v']).status === 0;

function assemble(dir: string, source: string): Uint8Array {
  writeFileSync(join(dir, 'prog.asm'), source);
  const r = spawnSync('nasm', ['-f', 'bin', '-o', join(dir, 'prog.bin'), join(dir, 'prog.asm')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nasm: ${r.stderr}`);
  return new Uint8Array(readFileSync(join(dir, 'prog.bin')));
}

const PROGRAM = `
bits 16
org 0x7c00
  cli
  xor ax, ax
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov sp, 0x7c00
  sti
  mov [drive], dl
  mov si, hello
  call tty
  ; CHS read: cylinder 0, head 0, sector 2 (LBA 1)
  mov ax, 0x0201
  mov cx, 0x0002
  xor dh, dh
  mov dl, [drive]
  mov bx, 0x8000
  int 0x13
  jc fail
  cmp al, 1
  jne fail
  ; CHS read that crosses into head 1: cylinder 0, head 1, sector 1 = LBA 63
  mov ax, 0x0201
  mov cx, 0x0001
  mov dh, 1
  mov dl, [drive]
  mov bx, 0x8400
  int 0x13
  jc fail
  ; EDD check and LBA read of LBA 2
  mov ah, 0x41
  mov bx, 0x55aa
  mov dl, [drive]
  int 0x13
  jc fail
  cmp bx, 0xaa55
  jne fail
  mov ah, 0x42
  mov dl, [drive]
  mov si, dap
  int 0x13
  jc fail
  mov si, 0x8000
  call serial
  mov si, 0x8200
  call serial
  mov si, 0x8400
  call serial
  ; E820: count entries
  xor ebx, ebx
  xor bp, bp
.e820:
  mov eax, 0xe820
  mov edx, 0x534d4150
  mov ecx, 24
  mov di, 0x9000
  int 0x15
  jc fail
  cmp eax, 0x534d4150
  jne fail
  inc bp
  test ebx, ebx
  jnz .e820
  mov ax, bp
  add al, '0'
  call putc
  ; INT 12h: base memory in KiB
  int 0x12
  cmp ax, 639
  jne fail
  mov si, waiting
  call serial
  ; INT 16h: wait for a key
  xor ah, ah
  int 0x16
  call putc
  mov al, ah
  add al, 0x20
  call putc
  mov si, done
  call serial
  mov al, 0x10
  out 0xf4, al
  hlt
fail:
  mov si, failed
  call serial
  mov al, 0x11
  out 0xf4, al
  hlt
tty:
  lodsb
  test al, al
  jz .r
  mov ah, 0x0e
  mov bx, 0x0007
  int 0x10
  jmp tty
.r: ret
serial:
  lodsb
  test al, al
  jz .r
  call putc
  jmp serial
.r: ret
putc:
  mov dx, 0x3f8
  out dx, al
  ret
drive: db 0
hello: db 'HELLO FROM MBR', 0
waiting: db ' WAIT ', 0
done: db ' DONE', 0
failed: db ' FAIL', 0
align 4
dap: db 0x10, 0
  dw 1
  dw 0x8200, 0
  dq 2
times 510-($-$$) db 0
dw 0xaa55
`;

function diskImage(mbr: Uint8Array): Uint8Array {
  const disk = new Uint8Array(8 * 1024 * 1024);
  disk.set(mbr, 0);
  const put = (lba: number, s: string) => disk.set(new TextEncoder().encode(s + '\0'), lba * 512);
  put(1, 'S1 ');
  put(2, 'S2 ');
  put(63, 'S63 ');
  return disk;
}

async function bootMachine(config: MachineConfig): Promise<{ m: Machine; serial: () => string }> {
  const m = new Machine(config, { noFirmware: true });
  await installFirmware(m, config);
  let out = '';
  m.on('serial', (port, bytes) => {
    if (port === 0) out += Buffer.from(bytes).toString('latin1');
  });
  return { m, serial: () => out };
}

function runUntil(m: Machine, cond: () => boolean, slices = 400): void {
  for (let i = 0; i < slices && m.state !== 'off' && !cond(); i++) m.runSlice(20);
}

test('MBR program uses INT 10h/13h/15h/16h through the built-in BIOS and reports on COM1', { skip: hasNasm ? false : 'nasm not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-bios-'));
  try {
    const img = join(dir, 'disk.img');
    writeFileSync(img, diskImage(assemble(dir, PROGRAM)));
    const config = defaultMachineConfig({ memoryMiB: 32, deterministic: true, bootOrder: ['disk'], disks: [{ kind: 'disk', path: img }] });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().includes('WAIT'));
    assert.match(serial(), /^S1 S2 S63 \d WAIT $/);
    const n = Number(/S63 (\d)/.exec(serial())![1]);
    assert.ok(n >= 5, `E820 entries: ${n}`);
    const screen = m.display?.getTextScreen() ?? '';
    assert.match(screen, /HELLO FROM MBR/);
    // 'q' = make 0x10, break 0x90: INT 16h returns AL='q', AH=0x10.
    m.keyboard.sendScancodes([0x10, 0x90]);
    runUntil(m, () => m.state === 'off');
    assert.equal(serial(), `S1 S2 S63 ${n} WAIT q0 DONE`);
    assert.equal(m.exitCode, (0x10 << 1) | 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no bootable device: the message names the file and the fault on COM1 and the screen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-bios-'));
  try {
    const img = join(dir, 'blank.img');
    writeFileSync(img, new Uint8Array(1024 * 1024));
    const config = defaultMachineConfig({ memoryMiB: 16, deterministic: true, bootOrder: ['disk'], disks: [{ kind: 'disk', path: img }] });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().includes('0x55AA'), 100);
    assert.match(serial(), /No bootable device\.\r\n {2}.*blank\.img: no boot signature \(0x55AA\)/);
    assert.match(m.display?.getTextScreen() ?? '', /No bootable device/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
