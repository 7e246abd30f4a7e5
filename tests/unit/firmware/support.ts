/** Shared helpers for the firmware tests that boot real code on the machine. */
import { spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Machine } from '../../../src-emulator/machine/machine';
import type { MachineConfig } from '../../../src-emulator/machine/config';

export const hasNasm = spawnSync('nasm', ['-v']).status === 0;

export function assemble(dir: string, source: string): Uint8Array {
  writeFileSync(join(dir, 'prog.asm'), source);
  const r = spawnSync('nasm', ['-f', 'bin', '-o', join(dir, 'prog.bin'), join(dir, 'prog.asm')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nasm: ${r.stderr}`);
  return new Uint8Array(readFileSync(join(dir, 'prog.bin')));
}

export const PROGRAM = `
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

export function diskImage(mbr: Uint8Array): Uint8Array {
  const disk = new Uint8Array(8 * 1024 * 1024);
  disk.set(mbr, 0);
  const put = (lba: number, s: string) => disk.set(new TextEncoder().encode(s + '\0'), lba * 512);
  put(1, 'S1 ');
  put(2, 'S2 ');
  put(63, 'S63 ');
  return disk;
}

export async function bootMachine(config: MachineConfig): Promise<{ m: Machine; serial: () => string }> {
  const m = await Machine.create(config);
  let out = '';
  m.on('serial', (port, bytes) => {
    if (port === 0) out += Buffer.from(bytes).toString('latin1');
  });
  return { m, serial: () => out };
}

/**
 * Runs `m` until `cond()` holds, the machine is off, `virtualSeconds` of guest time have passed
 * (the tests run in deterministic mode, so this bound does not depend on host load), or, as a last
 * resort, ten minutes of host time. Short slices: an idle guest's virtual time races ahead (a halted
 * CPU jumps to the next timer), so `cond` is checked often.
 */
export function runUntil(m: Machine, cond: () => boolean, virtualSeconds = 120): void {
  const end = m.clock.now() + virtualSeconds * 1e9;
  const hostEnd = Date.now() + 600_000;
  while (m.state !== 'off' && !cond() && m.clock.now() < end && Date.now() < hostEnd) m.runSlice(5);
  if (process.env.BOXWOOD_TEST_TIMING) process.stderr.write(`[runUntil] virtual ${(m.clock.now() / 1e9).toFixed(3)} s, cond ${cond()}\n`);
}

/** Booted as an El Torito no-emulation image: reads the ISO's volume descriptor through INT 13h 42h
 * and checks INT 13h 4B01h, then reports on COM1 and exits through isa-debug-exit. */
export const CD_PROGRAM = `
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
  mov al, dl
  call hex
  mov ah, 0x41
  mov bx, 0x55aa
  mov dl, [drive]
  int 0x13
  jc fail
  mov ah, 0x42
  mov dl, [drive]
  mov si, dap
  int 0x13
  jc fail
  mov si, 0x8001
  mov cx, 5
.v: lodsb
  call putc
  loop .v
  mov ax, 0x4b01
  mov dl, [drive]
  mov si, spec
  int 0x13
  jc fail
  mov al, ' '
  call putc
  mov al, [spec+1]
  call hex
  mov al, [spec+2]
  call hex
  mov al, 0x10
  out 0xf4, al
  hlt
fail:
  mov al, '!'
  call putc
  mov al, 0x11
  out 0xf4, al
  hlt
hex:
  push ax
  shr al, 4
  call nib
  pop ax
  and al, 15
nib:
  add al, '0'
  cmp al, '9'
  jbe putc
  add al, 7
putc:
  mov dx, 0x3f8
  out dx, al
  ret
drive: db 0
align 4
dap: db 0x10, 0
  dw 1
  dw 0x8000, 0
  dq 16
spec: times 0x13 db 0
times 2048-($-$$) db 0
`;

export const hasXorriso = spawnSync('xorriso', ['-version']).status === 0;

/** An ISO whose El Torito boot image is `bootFile` (relative to `root`); no boot record when null. */
export function makeIso(root: string, out: string, bootFile: string | null, noEmulation = true, extra: string[] = []): void {
  const args = ['-as', 'mkisofs', '-quiet', '-o', out, '-V', 'BOXWOOD_TEST'];
  if (bootFile) {
    args.push('-b', bootFile, '-c', 'boot.cat', ...extra);
    if (noEmulation) args.push('-no-emul-boot', '-boot-load-size', '4');
  }
  args.push(root);
  const r = spawnSync('xorriso', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`xorriso: ${r.stderr}`);
}

export const SEABIOS = '/usr/share/seabios/bios.bin';
export const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';
