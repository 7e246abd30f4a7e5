/**
 * Direct kernel boot of Debian's 686 kernel (from `npm run guests`) through both firmware paths, up
 * to the kernel's own real-mode setup code having queried our services and switched to protected
 * mode. (Booting to a shell is the job of tests/peer.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultMachineConfig, type MachineConfig } from '../../../src-emulator/machine/config';
import { bootMachine, runUntil, SEABIOS, VGABIOS } from './support';

const cache = process.env.BOXWOOD_GUEST_CACHE ?? join(process.cwd(), '.cache/guests');
const kernel = join(cache, 'i386/vmlinuz-686');
const initrd = join(cache, 'i386/initramfs.cpio.gz');
const haveGuest = existsSync(kernel) && existsSync(initrd);

async function bootToProtectedMode(firmware: MachineConfig['firmware']) {
  const config = defaultMachineConfig({
    memoryMiB: 128,
    deterministic: true,
    firmware,
    kernel: { kernelPath: kernel, initrdPath: initrd, cmdline: 'console=ttyS0' },
  });
  const { m } = await bootMachine(config);
  const cpu = m.cpu as unknown as { getCr(n: number): number; eip: number };
  // The setup code prints the EDD probe through INT 10h, then enters protected mode at 0x100000.
  runUntil(m, () => (cpu.getCr(0) & 1) === 1 && /Probing EDD[^\n]*ok/.test(m.display?.getTextScreen() ?? ''));
  return { m, cpu };
}

test(
  'built-in BIOS: bzImage setup runs (EDD probe via INT 13h) and enters protected mode',
  { skip: haveGuest ? false : `no guest kernel in ${cache} (npm run guests)` },
  async () => {
    const { m, cpu } = await bootToProtectedMode({ kind: 'builtin' });
    assert.match(m.display?.getTextScreen() ?? '', /Probing EDD \(edd=off to disable\)\.\.\. ok/);
    assert.equal(cpu.getCr(0) & 1, 1);
    // The initrd sits where the setup header says, below the ACPI region.
    const hdr = m.mem.read32(0x10000 + 0x218) >>> 0;
    const size = m.mem.read32(0x10000 + 0x21c) >>> 0;
    assert.ok(hdr > 0x100000 && hdr + size <= 128 * 1024 * 1024 - 0x10000);
    assert.equal(m.mem.read8(hdr), 0x1f, 'gzip magic of the initramfs');
    assert.equal(m.mem.read8(hdr + 1), 0x8b);
  },
);

test(
  'SeaBIOS + linuxboot_dma.bin: the same kernel reaches its setup code',
  {
    skip:
      haveGuest && existsSync(SEABIOS) && existsSync('/usr/share/qemu/linuxboot_dma.bin')
        ? false
        : 'needs the guest kernel, seabios and qemu-system-data',
  },
  async () => {
    const { m, cpu } = await bootToProtectedMode({ kind: 'seabios', biosPath: SEABIOS, vgaBiosPath: VGABIOS });
    assert.match(m.display?.getTextScreen() ?? '', /SeaBIOS[\s\S]*Probing EDD \(edd=off to disable\)\.\.\. ok/);
    assert.equal(cpu.getCr(0) & 1, 1);
  },
);
