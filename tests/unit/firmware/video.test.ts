/**
 * INT 10h of the built-in BIOS on the real VGA device: 80x50 through the 8x8 font load, font
 * information, mode 13h pixels, VBE 2.0 info/mode info/mode set with the linear framebuffer at the
 * VGA's PCI BAR.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';
import { hasNasm, assemble, bootMachine, runUntil } from './support';
import { pciRead } from '../../../src-emulator/firmware/pci-init';

const VIDEO_PROGRAM = `
bits 16
org 0x7c00
  cli
  xor ax, ax
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov sp, 0x7c00
  sti
  ; 80x50: load the 8x8 font with recalculation
  mov ax, 0x1112
  xor bl, bl
  int 0x10
  mov ah, 0x02
  xor bh, bh
  mov dx, 0x3100        ; row 49, column 0
  int 0x10
  mov si, bottom
  call tty
  mov ax, 0x1130
  xor bh, bh
  int 0x10
  mov al, dl            ; rows - 1
  call hex
  mov al, cl            ; character height
  call hex
  mov al, 'A'
  call putc
  call waitkey
  ; mode 13h and a pixel through AH=0Ch, read back through AH=0Dh
  mov ax, 0x0013
  int 0x10
  mov ax, 0x0c2a
  xor bh, bh
  mov cx, 10
  mov dx, 20
  int 0x10
  mov ah, 0x0d
  int 0x10
  call hex
  mov ah, 0x0f
  int 0x10
  call hex
  mov al, 'B'
  call putc
  call waitkey
  ; VBE (ES was set to the font segment by AX=1130h)
  xor ax, ax
  mov es, ax
  mov ax, 0x4f00
  mov di, 0x8000
  mov dword [di], 'VBE2'
  int 0x10
  cmp ax, 0x004f
  jne fail
  cmp dword [0x8000], 'VESA'
  jne fail
  mov ax, 0x4f01
  mov cx, 0x142
  mov di, 0x8200
  int 0x10
  cmp ax, 0x004f
  jne fail
  mov eax, [0x8200 + 40]
  call hex32
  mov al, [0x8200 + 25]
  call hex
  mov ax, 0x4f02
  mov bx, 0x4142
  int 0x10
  cmp ax, 0x004f
  jne fail
  mov ax, 0x4f03
  int 0x10
  mov ax, bx
  xchg al, ah
  call hex
  mov al, ah
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
waitkey:
  xor ah, ah
  int 0x16
  ret
tty:
  lodsb
  test al, al
  jz .r
  mov ah, 0x0e
  mov bx, 0x0007
  int 0x10
  jmp tty
.r: ret
hex32:
  push eax
  shr eax, 16
  push ax
  mov al, ah
  call hex
  pop ax
  call hex
  pop eax
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
bottom: db 'ROW FORTY-NINE', 0
times 510-($-$$) db 0
dw 0xaa55
`;

test(
  'INT 10h: 80x50 text, mode 13h pixels, VBE mode with LFB at the VGA BAR',
  { skip: hasNasm ? false : 'nasm not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-video-'));
    try {
      const img = join(dir, 'disk.img');
      const disk = new Uint8Array(1024 * 1024);
      disk.set(assemble(dir, VIDEO_PROGRAM));
      writeFileSync(img, disk);
      const config = defaultMachineConfig({
        memoryMiB: 32,
        deterministic: true,
        bootOrder: ['disk'],
        disks: [{ kind: 'disk', path: img }],
      });
      const { m, serial } = await bootMachine(config);
      runUntil(m, () => serial().endsWith('A'));
      assert.equal(serial(), '3108A');
      const rows = (m.display!.getTextScreen() ?? '').split('\n');
      assert.equal(rows.length, 50);
      assert.match(rows[49], /^ROW FORTY-NINE/);
      assert.equal(m.display!.getMode().height, 400);
      m.keyboard.sendScancodes([0x39, 0xb9]);
      runUntil(m, () => serial().endsWith('B'));
      assert.equal(serial(), '3108A2A13B');
      const mode13 = m.display!.getMode();
      assert.deepEqual([mode13.kind, mode13.width, mode13.height], ['graphics', 320, 200]);
      m.keyboard.sendScancodes([0x39, 0xb9]);
      runUntil(m, () => m.state === 'off');
      const bar0 = (pciRead(m.io, 0, 2 << 3, 0x10, 4) & 0xfffffff0) >>> 0;
      const lfb = bar0.toString(16).toUpperCase().padStart(8, '0');
      assert.equal(serial(), `3108A2A13B${lfb}204142`);
      const vbe = m.display!.getMode();
      assert.deepEqual([vbe.kind, vbe.width, vbe.height], ['graphics', 1024, 768]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

const MODES_PROGRAM = `
bits 16
org 0x7c00
  cli
  xor ax, ax
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov sp, 0x7c00
  sti
  mov si, modes
next:
  lodsb
  cmp al, 0xff
  je finish
  xor ah, ah
  int 0x10
  ; teletype a character in the mode's foreground colour, then a pixel written and read back
  mov ax, 0x0e41
  mov bx, 0x0003
  int 0x10
  mov ax, 0x0c03
  xor bh, bh
  mov cx, 9
  mov dx, 17
  int 0x10
  mov ah, 0x0d
  int 0x10
  call hex
  mov ah, 0x0f
  int 0x10
  call hex
  mov al, ' '
  call putc
  push si
  xor ah, ah
  int 0x16
  pop si
  jmp next
finish:
  mov al, 0x10
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
modes: db 0x04, 0x06, 0x0d, 0x0e, 0x10, 0x11, 0x12, 0x13, 0xff
times 510-($-$$) db 0
dw 0xaa55
`;

test(
  'INT 10h graphics modes 04h, 06h, 0Dh, 0Eh, 10h, 11h, 12h, 13h: geometry, pixels and text',
  { skip: hasNasm ? false : 'nasm not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-video-'));
    try {
      const img = join(dir, 'disk.img');
      const disk = new Uint8Array(1024 * 1024);
      disk.set(assemble(dir, MODES_PROGRAM));
      writeFileSync(img, disk);
      const config = defaultMachineConfig({
        memoryMiB: 16,
        deterministic: true,
        bootOrder: ['disk'],
        disks: [{ kind: 'disk', path: img }],
      });
      const { m, serial } = await bootMachine(config);
      const expected: [string, number, number][] = [
        ['0304', 320, 200],
        ['0106', 640, 200],
        ['030D', 320, 200],
        ['030E', 640, 200],
        ['0310', 640, 350],
        ['0111', 640, 480],
        ['0312', 640, 480],
        ['0313', 320, 200],
      ];
      let want = '';
      for (const [text, w, h] of expected) {
        want += text + ' ';
        runUntil(m, () => serial().length >= want.length);
        assert.equal(serial(), want);
        const mode = m.display!.getMode();
        assert.deepEqual([mode.kind, mode.width], ['graphics', w], text);
        // CGA modes (04h, 06h) use the CRTC's row-scan-counter addressing (CRTC 17h bit 0 clear, two
        // scan lines per row); devices/vga.ts renders them at half height for now (see docs/firmware.md).
        if (!text.endsWith('04') && !text.endsWith('06')) assert.equal(mode.height, h, text);
        // The 'A' drawn at the top-left cell left pixels on.
        const frame = m.display!.renderRgba();
        let lit = 0;
        for (let y = 0; y < 8; y++)
          for (let x = 0; x < 8; x++)
            if (
              frame.data[(y * frame.width + x) * 4] ||
              frame.data[(y * frame.width + x) * 4 + 1] ||
              frame.data[(y * frame.width + x) * 4 + 2]
            )
              lit++;
        assert.ok(lit > 5, `glyph visible in mode ${text}`);
        m.keyboard.sendScancodes([0x39, 0xb9]);
      }
      runUntil(m, () => m.state === 'off');
      assert.equal(m.exitCode, 0x21);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
