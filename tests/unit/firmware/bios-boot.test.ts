/**
 * The built-in BIOS on the real machine and CPU: a real-mode program booted from an MBR uses
 * INT 10h, 13h (CHS and LBA), 15h (E820), 16h (a key typed as PS/2 scancodes) and 1Ah and
 * reports on COM1, then leaves through isa-debug-exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';
import { hasNasm, assemble, PROGRAM, diskImage, bootMachine, runUntil } from './support';

test(
  'MBR program uses INT 10h/13h/15h/16h through the built-in BIOS and reports on COM1',
  { skip: hasNasm ? false : 'nasm not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-bios-'));
    try {
      const img = join(dir, 'disk.img');
      writeFileSync(img, diskImage(assemble(dir, PROGRAM)));
      const config = defaultMachineConfig({
        memoryMiB: 32,
        deterministic: true,
        bootOrder: ['disk'],
        disks: [{ kind: 'disk', path: img }],
      });
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
  },
);

test('no bootable device: the message names the file and the fault on COM1 and the screen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-bios-'));
  try {
    const img = join(dir, 'blank.img');
    writeFileSync(img, new Uint8Array(1024 * 1024));
    const config = defaultMachineConfig({ memoryMiB: 16, deterministic: true, bootOrder: ['disk'], disks: [{ kind: 'disk', path: img }] });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().includes('0x55AA'));
    assert.match(serial(), /No bootable device\.\r\n {2}.*blank\.img: no boot signature \(0x55AA\)/);
    assert.match(m.display?.getTextScreen() ?? '', /No bootable device/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'Ctrl+Alt+Del while INT 16h waits reboots through the 8042 and POST boots the disk again',
  { skip: hasNasm ? false : 'nasm not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-bios-'));
    try {
      const img = join(dir, 'disk.img');
      writeFileSync(img, diskImage(assemble(dir, PROGRAM)));
      const config = defaultMachineConfig({
        memoryMiB: 32,
        deterministic: true,
        bootOrder: ['disk'],
        disks: [{ kind: 'disk', path: img }],
      });
      const { m, serial } = await bootMachine(config);
      let resets = 0;
      m.on('reset', () => resets++);
      runUntil(m, () => serial().includes('WAIT'));
      m.keyboard.sendScancodes([0x1d, 0x38, 0x53, 0xd3, 0xb8, 0x9d]);
      runUntil(m, () => (serial().match(/WAIT/g) ?? []).length === 2);
      assert.equal(resets, 1);
      assert.match(serial(), /^S1 S2 S63 (\d) WAIT S1 S2 S63 \1 WAIT $/);
      // POST rebuilt the BDA (the warm-boot flag the handler set before the reset is gone).
      assert.equal(m.mem.read16(0x472), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'a saved state taken while INT 16h waits resumes in a fresh machine (BIOS state in RAM + device section)',
  { skip: hasNasm ? false : 'nasm not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-bios-'));
    try {
      const img = join(dir, 'disk.img');
      writeFileSync(img, diskImage(assemble(dir, PROGRAM)));
      const config = defaultMachineConfig({
        memoryMiB: 32,
        deterministic: true,
        bootOrder: ['disk'],
        disks: [{ kind: 'disk', path: img }],
      });
      const a = await bootMachine(config);
      runUntil(a.m, () => a.serial().includes('WAIT'));
      const state = a.m.saveState();
      assert.ok(state.devices.bios, 'the BIOS has a section in the saved state');
      const b = await bootMachine(config);
      b.m.loadState(state);
      b.m.keyboard.sendScancodes([0x10, 0x90]);
      runUntil(b.m, () => b.m.state === 'off');
      assert.equal(b.serial(), 'q0 DONE');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

const GIVE_UP = `
bits 16
org 0x7c00
  mov dx, 0x3f8
  mov al, 'X'
  out dx, al
  int 0x18
times 510-($-$$) db 0
dw 0xaa55
`;

test(
  'a boot sector that gives up with INT 18h hands over to the next device in the boot order',
  { skip: hasNasm ? false : 'nasm not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-bios-'));
    try {
      const hd = new Uint8Array(1024 * 1024);
      hd.set(assemble(dir, GIVE_UP));
      writeFileSync(join(dir, 'giveup.img'), hd);
      const floppy = new Uint8Array(1474560);
      floppy.set(diskImage(assemble(dir, PROGRAM)).subarray(0, 512));
      const put = (lba: number, s: string) => floppy.set(new TextEncoder().encode(s + '\0'), lba * 512);
      put(1, 'S1 ');
      put(2, 'S2 ');
      put(18, 'S63 ');
      writeFileSync(join(dir, 'fd.img'), floppy);
      const config = defaultMachineConfig({
        memoryMiB: 16,
        deterministic: true,
        bootOrder: ['disk', 'floppy'],
        disks: [
          { kind: 'disk', path: join(dir, 'giveup.img') },
          { kind: 'floppy', path: join(dir, 'fd.img') },
        ],
      });
      const { m, serial } = await bootMachine(config);
      runUntil(m, () => serial().includes('WAIT'));
      assert.match(serial(), /^XS1 S2 S63 \d WAIT $/);
      // Only the give-up disk: the failure message names it.
      const only = defaultMachineConfig({
        memoryMiB: 16,
        deterministic: true,
        bootOrder: ['disk'],
        disks: [{ kind: 'disk', path: join(dir, 'giveup.img') }],
      });
      const b = await bootMachine(only);
      runUntil(b.m, () => b.serial().includes('INT 18h'));
      assert.match(b.serial(), /^XNo bootable device\.\r\n {2}.*giveup\.img \(disk 80h\): the boot sector gave up \(INT 18h\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'POST runs option ROMs found at C0000-DFFFF (valid checksum only) before booting',
  { skip: hasNasm ? false : 'nasm not installed' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-bios-'));
    try {
      const img = join(dir, 'disk.img');
      writeFileSync(img, diskImage(assemble(dir, PROGRAM)));
      const config = defaultMachineConfig({
        memoryMiB: 16,
        deterministic: true,
        bootOrder: ['disk'],
        disks: [{ kind: 'disk', path: img }],
      });
      const { m, serial } = await bootMachine(config);
      const rom = (letter: string, good: boolean) => {
        const r = new Uint8Array(512);
        // 55 AA, 1 block; init at +3: mov dx,3F8h / mov al,letter / out dx,al / retf
        r.set([0x55, 0xaa, 0x01, 0xba, 0xf8, 0x03, 0xb0, letter.charCodeAt(0), 0xee, 0xcb]);
        let sum = 0;
        for (const b of r) sum = (sum + b) & 0xff;
        r[511] = (0x100 - sum + (good ? 0 : 1)) & 0xff;
        return r;
      };
      m.loadOptionRom(0xc8000, rom('R', true));
      m.loadOptionRom(0xcc000, rom('Z', false));
      m.loadOptionRom(0xd0000, rom('Q', true));
      runUntil(m, () => serial().includes('WAIT'));
      assert.match(serial(), /^RQS1 S2 S63 \d WAIT $/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

const KEY_HOOK = `
bits 16
org 0x7c00
  cli
  xor ax, ax
  mov ds, ax
  mov ss, ax
  mov sp, 0x7c00
  ; chain INT 15h: AH=4Fh turns Q (10h) into W (11h) and swallows E (12h)
  mov ax, [0x15*4]
  mov [old15], ax
  mov ax, [0x15*4+2]
  mov [old15+2], ax
  mov word [0x15*4], hook
  mov word [0x15*4+2], 0
  sti
  mov dx, 0x3f8
  mov al, '>'
  out dx, al
.key:
  xor ah, ah
  int 0x16
  mov dx, 0x3f8
  out dx, al
  cmp al, 'r'
  jne .key
  mov al, 0x10
  out 0xf4, al
  hlt
hook:
  cmp ah, 0x4f
  jne .chain
  cmp al, 0x10
  jne .notq
  mov al, 0x11
  stc
  retf 2
.notq:
  cmp al, 0x12
  jne .chain
  clc
  retf 2
.chain:
  jmp far [cs:old15]
old15: dd 0
times 510-($-$$) db 0
dw 0xaa55
`;

test('IRQ1 calls INT 15h AH=4Fh: a hook can translate or swallow scancodes', { skip: hasNasm ? false : 'nasm not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-bios-'));
  try {
    const img = join(dir, 'disk.img');
    const disk = new Uint8Array(1024 * 1024);
    disk.set(assemble(dir, KEY_HOOK));
    writeFileSync(img, disk);
    const config = defaultMachineConfig({ memoryMiB: 16, deterministic: true, bootOrder: ['disk'], disks: [{ kind: 'disk', path: img }] });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().includes('>'));
    // q e t r: q becomes w, e vanishes, t and r pass.
    m.keyboard.sendScancodes([0x10, 0x90, 0x12, 0x92, 0x14, 0x94, 0x13, 0x93]);
    runUntil(m, () => m.state === 'off');
    assert.equal(serial(), '>wtr');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
