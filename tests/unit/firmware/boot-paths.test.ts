/**
 * Boot paths on the real machine: El Torito (no emulation and floppy emulation) through the
 * built-in BIOS, and the same programs through Debian's SeaBIOS configured over fw_cfg.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMachineConfig, type MachineConfig } from '../../../src-emulator/machine/config';
import { hasNasm, hasXorriso, assemble, PROGRAM, CD_PROGRAM, diskImage, bootMachine, runUntil, makeIso, SEABIOS, VGABIOS } from './support';

const hasSeabios = existsSync(SEABIOS) && existsSync(VGABIOS);
const seabios: MachineConfig['firmware'] = { kind: 'seabios', biosPath: SEABIOS, vgaBiosPath: VGABIOS };

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-boot-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function cdIso(dir: string): string {
  const root = join(dir, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'boot.bin'), assemble(dir, CD_PROGRAM));
  const iso = join(dir, 'cd.iso');
  makeIso(root, iso, 'boot.bin');
  return iso;
}

const needCd = hasNasm && hasXorriso ? false : 'needs nasm and xorriso';

test(
  'El Torito no-emulation: loaded at 07C0:0, DL=E0h, INT 13h 42h reads 2048-byte sectors, 4B01h reports',
  { skip: needCd },
  withDir(async (dir) => {
    const iso = cdIso(dir);
    const config = defaultMachineConfig({
      memoryMiB: 16,
      deterministic: true,
      bootOrder: ['cdrom'],
      disks: [{ kind: 'cdrom', path: iso, channel: 1, unit: 0 }],
    });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => m.state === 'off');
    assert.equal(serial(), 'E0CD001 00E0');
    assert.equal(m.exitCode, 0x21);
  }),
);

test(
  'El Torito floppy emulation: the boot image becomes drive 00h with 1.44 MB geometry',
  { skip: needCd },
  withDir(async (dir) => {
    const root = join(dir, 'root');
    mkdirSync(root);
    const floppy = new Uint8Array(1474560);
    floppy.set(diskImage(assemble(dir, PROGRAM)).subarray(0, 512));
    const put = (lba: number, s: string) => floppy.set(new TextEncoder().encode(s + '\0'), lba * 512);
    put(1, 'S1 ');
    put(2, 'S2 ');
    put(18, 'S63 '); // C0/H1/S1 on an 18-sector floppy
    writeFileSync(join(root, 'floppy.img'), floppy);
    const iso = join(dir, 'fd.iso');
    makeIso(root, iso, 'floppy.img', false);
    const config = defaultMachineConfig({
      memoryMiB: 16,
      deterministic: true,
      bootOrder: ['cdrom'],
      disks: [{ kind: 'cdrom', path: iso, channel: 1, unit: 0 }],
    });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().includes('WAIT'));
    assert.match(serial(), /^S1 S2 S63 \d WAIT $/);
    // The emulated floppy shows in the equipment word.
    assert.equal(m.mem.read16(0x410) & 0xc1, 0x01);
    m.keyboard.sendScancodes([0x1e, 0x9e]);
    runUntil(m, () => m.state === 'off');
    assert.match(serial(), /WAIT a> DONE$/);
  }),
);

test(
  'El Torito hard-disk emulation: the boot image becomes drive 80h with the geometry of its partition table',
  { skip: needCd },
  withDir(async (dir) => {
    const root = join(dir, 'root');
    mkdirSync(root);
    const hd = diskImage(assemble(dir, PROGRAM)).slice(0, 2 * 1024 * 1024);
    // One partition, LBA 63..end, ending at head 15 / sector 63: a 16-head, 63-sector geometry.
    const e = 446;
    hd.set([0x80, 1, 1, 0, 0x83, 15, 63 | ((31 >> 2) & 0xc0), 31 & 0xff], e);
    new DataView(hd.buffer).setUint32(e + 8, 63, true);
    new DataView(hd.buffer).setUint32(e + 12, hd.length / 512 - 63, true);
    writeFileSync(join(root, 'hd.img'), hd);
    const iso = join(dir, 'hd.iso');
    makeIso(root, iso, 'hd.img', false, ['-hard-disk-boot']);
    const config = defaultMachineConfig({
      memoryMiB: 16,
      deterministic: true,
      bootOrder: ['cdrom'],
      disks: [{ kind: 'cdrom', path: iso, channel: 1, unit: 0 }],
    });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().includes('WAIT'));
    assert.match(serial(), /^S1 S2 S63 \d WAIT $/);
    m.keyboard.sendScancodes([0x1e, 0x9e]);
    runUntil(m, () => m.state === 'off');
    assert.match(serial(), /WAIT a> DONE$/);
  }),
);

test(
  'floppy boot: drive 00h, CHS over 18 sectors and 2 heads',
  { skip: hasNasm ? false : 'needs nasm' },
  withDir(async (dir) => {
    const floppy = new Uint8Array(1474560);
    floppy.set(diskImage(assemble(dir, PROGRAM)).subarray(0, 512));
    const put = (lba: number, s: string) => floppy.set(new TextEncoder().encode(s + '\0'), lba * 512);
    put(1, 'S1 ');
    put(2, 'S2 ');
    put(18, 'S63 ');
    const img = join(dir, 'floppy.img');
    writeFileSync(img, floppy);
    const config = defaultMachineConfig({
      memoryMiB: 16,
      deterministic: true,
      bootOrder: ['floppy'],
      disks: [{ kind: 'floppy', path: img }],
    });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().includes('WAIT'));
    assert.match(serial(), /^S1 S2 S63 \d WAIT $/);
    // Equipment word: one floppy drive.
    assert.equal(m.mem.read16(0x410) & 0xc1, 0x01);
  }),
);

test(
  'ISO without a boot record: the BIOS names the file and the fault',
  { skip: hasXorriso ? false : 'needs xorriso' },
  withDir(async (dir) => {
    const root = join(dir, 'root');
    mkdirSync(root);
    writeFileSync(join(root, 'README'), 'data only');
    const iso = join(dir, 'data.iso');
    makeIso(root, iso, null);
    const config = defaultMachineConfig({
      memoryMiB: 16,
      deterministic: true,
      bootOrder: ['cdrom'],
      disks: [{ kind: 'cdrom', path: iso, channel: 1, unit: 0 }],
    });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().includes('record'));
    assert.match(serial(), /data\.iso: no El Torito boot record/);
  }),
);

test(
  'SeaBIOS (fw_cfg, table-loader ACPI, VGA BIOS) boots the MBR program from the IDE disk',
  { skip: hasSeabios && hasNasm ? false : 'needs seabios and nasm' },
  withDir(async (dir) => {
    const img = join(dir, 'disk.img');
    writeFileSync(img, diskImage(assemble(dir, PROGRAM)));
    const config = defaultMachineConfig({
      memoryMiB: 32,
      deterministic: true,
      firmware: seabios,
      bootOrder: ['disk'],
      disks: [{ kind: 'disk', path: img, channel: 0, unit: 0 }],
    });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().includes('WAIT'));
    assert.match(serial(), /^S1 S2 S63 \d WAIT $/);
    assert.match(m.display?.getTextScreen() ?? '', /SeaBIOS[\s\S]*HELLO FROM MBR/);
    // SeaBIOS ran our table-loader: an RSDP in the F segment points at our RSDT, FADT and DSDT.
    let rsdp = -1;
    for (let a = 0xe0000; a < 0x100000; a += 16) if (m.mem.read32(a) === 0x20445352 && m.mem.read32(a + 4) === 0x20525450) rsdp = a;
    assert.ok(rsdp > 0, 'RSDP found');
    const rsdt = m.mem.read32(rsdp + 16) >>> 0;
    assert.equal(String.fromCharCode(...m.mem.readBytes(rsdt, 4)), 'RSDT');
    const fadt = m.mem.read32(rsdt + 36) >>> 0;
    assert.equal(String.fromCharCode(...m.mem.readBytes(fadt, 4)), 'FACP');
    const dsdt = m.mem.read32(fadt + 40) >>> 0;
    assert.equal(String.fromCharCode(...m.mem.readBytes(dsdt, 4)), 'DSDT');
    let sum = 0;
    const len = m.mem.read32(dsdt + 4);
    for (const b of m.mem.readBytes(dsdt, len)) sum = (sum + b) & 0xff;
    assert.equal(sum, 0, 'DSDT checksum after relocation');
    m.keyboard.sendScancodes([0x10, 0x90]);
    runUntil(m, () => m.state === 'off');
    assert.match(serial(), /WAIT q0 DONE$/);
  }),
);

test(
  'SeaBIOS boots the El Torito no-emulation CD',
  { skip: hasSeabios && !needCd ? false : 'needs seabios, nasm and xorriso' },
  withDir(async (dir) => {
    const iso = cdIso(dir);
    const config = defaultMachineConfig({
      memoryMiB: 32,
      deterministic: true,
      firmware: seabios,
      bootOrder: ['cdrom'],
      disks: [{ kind: 'cdrom', path: iso, channel: 1, unit: 0 }],
    });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => m.state === 'off');
    // SeaBIOS numbers the CD after the hard disks (DL=E0h-like numbering is ours only).
    assert.match(serial(), /^[0-9A-F]{2}CD001 00[0-9A-F]{2}$/);
    assert.equal(m.exitCode, 0x21);
  }),
);

const SWAP_PROGRAM = `
bits 16
org 0x7c00
  cli
  xor ax, ax
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov sp, 0x7c00
  sti
  call status
  call readfd
  xor ah, ah
  int 0x16
  call status
  call status
  call readfd
  mov al, 0x10
  out 0xf4, al
  hlt
status:
  mov ah, 0x16
  xor dl, dl
  int 0x13
  mov al, ah
  call hex
  mov al, ' '
  jmp putc
readfd:
  mov ax, 0x0201
  mov cx, 0x0001
  xor dx, dx
  mov bx, 0x8000
  int 0x13
  jc .f
  mov al, [0x8000]
  call putc
  mov al, ' '
  jmp putc
.f: mov al, '!'
  jmp putc
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
times 510-($-$$) db 0
dw 0xaa55
`;

test(
  'a diskette swapped at run time: INT 13h AH=16h reports the change once, reads see the new medium',
  { skip: hasNasm ? false : 'needs nasm' },
  withDir(async (dir) => {
    const hd = new Uint8Array(1024 * 1024);
    hd.set(assemble(dir, SWAP_PROGRAM));
    writeFileSync(join(dir, 'hd.img'), hd);
    const fdA = new Uint8Array(1474560).fill(0x41);
    const fdB = new Uint8Array(1474560).fill(0x42);
    writeFileSync(join(dir, 'a.img'), fdA);
    writeFileSync(join(dir, 'b.img'), fdB);
    const config = defaultMachineConfig({
      memoryMiB: 16,
      deterministic: true,
      bootOrder: ['disk'],
      disks: [
        { kind: 'disk', path: join(dir, 'hd.img') },
        { kind: 'floppy', path: join(dir, 'a.img') },
      ],
    });
    const { m, serial } = await bootMachine(config);
    runUntil(m, () => serial().length >= 5);
    assert.equal(serial(), '00 A ');
    const { openImage } = await import('../../../src-emulator/storage/open');
    (m as unknown as { floppy: { insertDisk(n: 0 | 1, d: unknown): void } }).floppy.insertDisk(
      0,
      openImage(join(dir, 'b.img'), { readOnly: true }),
    );
    m.keyboard.sendScancodes([0x39, 0xb9]);
    runUntil(m, () => m.state === 'off');
    assert.equal(serial(), '00 A 06 00 B ');
  }),
);
