/**
 * A third-party boot loader as a consumer of the firmware: GRUB 2 (Debian's grub-pc-bin, ISO made by
 * grub-mkrescue at test time) boots from the CD through the built-in BIOS and through SeaBIOS,
 * prints the E820 map it got, and `halt` powers the machine off by reading \_S5 from our DSDT and
 * writing PM1a_CNT.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMachineConfig, type MachineConfig } from '../../../src-emulator/machine/config';
import { bootMachine, runUntil, SEABIOS, VGABIOS } from './support';

const hasGrub =
  spawnSync('grub-mkrescue', ['--version']).status === 0 &&
  existsSync('/usr/lib/grub/i386-pc') &&
  spawnSync('xorriso', ['-version']).status === 0;
const SKIP = hasGrub ? false : 'needs grub-mkrescue with grub-pc-bin, and xorriso (apt-get install grub-pc-bin grub-common xorriso mtools)';

const GRUB_CFG = `serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
echo "GRUB-BOXWOOD-START"
lsmmap
echo "GRUB-BOXWOOD-OK"
insmod vbe
videoinfo
set gfxmode=1024x768x32
insmod gfxterm
terminal_output --append gfxterm
echo "GRUB-GFX-OK"
halt
`;

function grubIso(dir: string): string {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'boot/grub'), { recursive: true });
  writeFileSync(join(root, 'boot/grub/grub.cfg'), GRUB_CFG);
  const iso = join(dir, 'grub.iso');
  const r = spawnSync('grub-mkrescue', ['-o', iso, root], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`grub-mkrescue: ${r.stderr}`);
  return iso;
}

async function bootGrub(
  firmware: MachineConfig['firmware'],
): Promise<{ serial: string; pm1: number[]; off: boolean; mode: { kind: string; width: number; height: number } | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-grub-'));
  try {
    const iso = grubIso(dir);
    const config = defaultMachineConfig({
      memoryMiB: 128,
      deterministic: true,
      firmware,
      bootOrder: ['cdrom'],
      disks: [{ kind: 'cdrom', path: iso, channel: 1, unit: 0 }],
    });
    const { m, serial } = await bootMachine(config);
    const pm1: number[] = [];
    const out16 = m.io.out16.bind(m.io);
    m.io.out16 = (port: number, value: number) => {
      if (port === 0xb004) pm1.push(value);
      out16(port, value);
    };
    runUntil(m, () => m.state === 'off');
    return { serial: serial(), pm1, off: m.state === 'off', mode: m.display?.getMode() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('GRUB boots from CD through the built-in BIOS, sees our E820 map and halts via ACPI \\_S5', { skip: SKIP }, async () => {
  const r = await bootGrub({ kind: 'builtin' });
  assert.match(r.serial, /GRUB-BOXWOOD-START/);
  assert.match(r.serial, /base_addr = 0x0, length = 0x9fc00, available RAM/);
  assert.match(r.serial, /base_addr = 0x100000, length = 0x7ef0000, available RAM/);
  assert.match(r.serial, /base_addr = 0x7ff0000, length = 0x10000, ACPI reclaimable RAM/);
  assert.match(r.serial, /GRUB-BOXWOOD-OK/);
  // VBE as GRUB's vbe driver sees it (4F00/4F01), then a 1024x768x32 gfxterm through 4F02 + LFB.
  assert.match(r.serial, /VBE info: {3}version: 2\.0/);
  assert.match(r.serial, /0x142 1024 x {2}768 x 32 \(4096\) {2}Direct color, mask: 8\/8\/8\/8 {2}pos: 16\/8\/0\/24/);
  assert.match(r.serial, /GRUB-GFX-OK/);
  assert.deepEqual([r.mode?.kind, r.mode?.width, r.mode?.height], ['graphics', 1024, 768]);
  assert.ok(r.off, 'machine powered off');
  // SLP_EN with SLP_TYP 0, the value GRUB read from \_S5.
  assert.deepEqual(r.pm1, [0x2000]);
});

test(
  'GRUB boots through SeaBIOS and halts via the ACPI tables SeaBIOS loaded from fw_cfg',
  { skip: SKIP || (existsSync(SEABIOS) ? false : 'needs seabios') },
  async () => {
    const r = await bootGrub({ kind: 'seabios', biosPath: SEABIOS, vgaBiosPath: VGABIOS });
    assert.match(r.serial, /GRUB-BOXWOOD-OK/);
    assert.match(r.serial, /GRUB-GFX-OK/);
    assert.ok(r.off, 'machine powered off');
    assert.deepEqual(
      r.pm1.filter((v) => v & 0x2000),
      [0x2000],
    );
  },
);
