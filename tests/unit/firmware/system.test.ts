/**
 * INT 11h/12h/15h/1Ah services of the built-in BIOS as a real-mode program sees them: A20 gate,
 * E801/88h memory sizes, C0h configuration table, 87h block move above 1 MiB, ticks, RTC date,
 * PCI BIOS installation check and device search.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';
import { hasNasm, assemble, bootMachine, runUntil } from './support';

const SYSTEM_PROGRAM = `
bits 16
org 0x7c00
  cli
  xor ax, ax
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov sp, 0x7c00
  sti
  ; A20: disable, query, enable, query
  mov ax, 0x2400
  int 0x15
  mov ax, 0x2402
  int 0x15
  call hex
  mov ax, 0x2401
  int 0x15
  mov ax, 0x2402
  int 0x15
  call hex
  call sep
  ; E801: AX KiB 1-16M, BX 64K blocks above 16M
  mov ax, 0xe801
  int 0x15
  jc fail
  call hex16
  mov ax, bx
  call hex16
  call sep
  mov ah, 0x88
  int 0x15
  call hex16
  call sep
  ; C0h: ES:BX -> model byte at +2
  mov ah, 0xc0
  int 0x15
  jc fail
  mov al, [es:bx+2]
  call hex
  xor ax, ax
  mov es, ax
  call sep
  ; 87h: copy 16 bytes from 0x9000 to 0x200000 and back to 0x9100
  mov dword [0x9000], 'BLKM'
  mov si, gdt
  mov word [si+0x10], 0xffff
  mov word [si+0x12], 0x9000
  mov byte [si+0x14], 0x00
  mov byte [si+0x15], 0x93
  mov word [si+0x18], 0xffff
  mov word [si+0x1a], 0x0000
  mov byte [si+0x1c], 0x20
  mov byte [si+0x1d], 0x93
  mov cx, 8
  mov ah, 0x87
  int 0x15
  jc fail
  mov word [si+0x12], 0x0000
  mov byte [si+0x14], 0x20
  mov word [si+0x1a], 0x9100
  mov byte [si+0x1c], 0x00
  mov cx, 8
  mov ah, 0x87
  int 0x15
  jc fail
  mov eax, [0x9100]
  cmp eax, 'BLKM'
  jne fail
  mov al, 'M'
  call putc
  call sep
  ; INT 11h equipment, INT 1Ah AH=04 century
  int 0x11
  call hex16
  call sep
  mov ah, 0x04
  int 0x1a
  jc fail
  mov al, ch
  call hex
  call sep
  ; PCI BIOS: B101 -> EDX 'PCI ', B102 find 8086:7000 (PIIX3)
  mov ax, 0xb101
  int 0x1a
  jc fail
  cmp edx, 0x20494350
  jne fail
  mov ax, 0xb102
  mov cx, 0x7000
  mov dx, 0x8086
  xor si, si
  int 0x1a
  jc fail
  mov al, bl
  call hex
  call sep
  ; ticks move forward
  xor ah, ah
  int 0x1a
  mov bp, dx
.t: xor ah, ah
  int 0x1a
  cmp dx, bp
  je .t
  mov al, 'T'
  call putc
  mov al, 0x10
  out 0xf4, al
  hlt
fail:
  mov al, '!'
  call putc
  mov al, 0x11
  out 0xf4, al
  hlt
sep:
  mov al, ' '
  jmp putc
hex16:
  push ax
  mov al, ah
  call hex
  pop ax
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
  push dx
  mov dx, 0x3f8
  out dx, al
  pop dx
  ret
align 8
gdt: times 48 db 0
times 510-($-$$) db 0
dw 0xaa55
`;

test('INT 15h/1Ah/11h system services from a real-mode program', { skip: hasNasm ? false : 'nasm not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-sys-'));
  try {
    const img = join(dir, 'disk.img');
    const disk = new Uint8Array(1024 * 1024);
    disk.set(assemble(dir, SYSTEM_PROGRAM));
    writeFileSync(img, disk);
    const config = defaultMachineConfig({ memoryMiB: 64, deterministic: true, bootOrder: ['disk'], disks: [{ kind: 'disk', path: img }] });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => m.state === 'off');
    // A20 off then on; E801: 15 MiB below 16M (3C00h KiB), (64M - 64K ACPI - 16M) / 64K = 02FFh blocks;
    // 88h: 63 MiB - 64 KiB = FBC0h KiB; model FC; block move; equipment (x87, PS/2 mouse, 80x25 colour,
    // one COM port) 0226h; century 20; PIIX3 at 00:01.0 -> devfn 08; the tick counter moves.
    assert.equal(serial(), '0001 3C0002FF FBC0 FC M 0226 20 08 T');
    assert.equal(m.exitCode, 0x21);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const APM_OFF = `
bits 16
org 0x7c00
  mov ax, 0x5300
  xor bx, bx
  int 0x15
  jc fail
  cmp bx, 0x504d
  jne fail
  mov ax, 0x5301
  xor bx, bx
  int 0x15
  mov ax, 0x5307
  mov bx, 1
  mov cx, 3
  int 0x15
fail:
  mov al, 0x11
  out 0xf4, al
  hlt
times 510-($-$$) db 0
dw 0xaa55
`;

test(
  'APM 1.2 installation check and set power state off (5307h) power the machine off',
  { skip: hasNasm ? false : 'nasm not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-sys-'));
    try {
      const img = join(dir, 'disk.img');
      const disk = new Uint8Array(1024 * 1024);
      disk.set(assemble(dir, APM_OFF));
      writeFileSync(img, disk);
      const config = defaultMachineConfig({
        memoryMiB: 16,
        deterministic: true,
        bootOrder: ['disk'],
        disks: [{ kind: 'disk', path: img }],
      });
      const { m } = await bootMachine(config);
      const events: string[] = [];
      m.on('poweroff', () => events.push('poweroff'));
      runUntil(m, () => m.state === 'off');
      assert.deepEqual(events, ['poweroff']);
      assert.equal(m.exitCode, null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

const MOUSE_PROGRAM = `
bits 16
org 0x7c00
  cli
  xor ax, ax
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov sp, 0x7c00
  sti
  mov ax, 0xc205
  mov bh, 3
  int 0x15
  jc fail
  mov ax, 0xc201
  int 0x15
  jc fail
  mov al, bl
  call hex
  mov al, bh
  call hex
  mov ax, 0xc202
  mov bh, 5
  int 0x15
  jc fail
  mov ax, 0xc204
  int 0x15
  jc fail
  mov al, bh
  call hex
  mov ax, 0xc207
  mov bx, handler
  int 0x15
  jc fail
  mov ax, 0xc200
  mov bh, 1
  int 0x15
  jc fail
  mov al, '+'
  call putc
idle:
  hlt
  jmp idle
handler:
  push bp
  mov bp, sp
  mov al, ' '
  call putc
  mov al, [bp+12]
  call hex
  mov al, [bp+10]
  call hex
  mov al, [bp+8]
  call hex
  pop bp
  retf
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
  push dx
  mov dx, 0x3f8
  out dx, al
  pop dx
  ret
times 510-($-$$) db 0
dw 0xaa55
`;

test(
  'PS/2 mouse BIOS (INT 15h C2h): reset, rate, type, then the installed handler gets status, X and Y from IRQ12',
  { skip: hasNasm ? false : 'nasm not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-sys-'));
    try {
      const img = join(dir, 'disk.img');
      const disk = new Uint8Array(1024 * 1024);
      disk.set(assemble(dir, MOUSE_PROGRAM));
      writeFileSync(img, disk);
      const config = defaultMachineConfig({
        memoryMiB: 16,
        deterministic: true,
        bootOrder: ['disk'],
        disks: [{ kind: 'disk', path: img }],
      });
      const { m, serial } = await bootMachine(config);
      runUntil(m, () => serial().endsWith('+'));
      assert.equal(serial(), 'AA0000+');
      // Right 5, down 3 (PS/2 Y grows upwards), left button.
      m.mouse.move(5, 3, 1);
      runUntil(m, () => serial().length >= 14);
      assert.equal(serial(), 'AA0000+ 2905FD');
      m.mouse.move(-2, -1, 0);
      runUntil(m, () => serial().length >= 21);
      assert.equal(serial(), 'AA0000+ 2905FD 18FE01');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
