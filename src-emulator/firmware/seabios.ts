/**
 * The external firmware path: Debian's SeaBIOS (bios.bin) and a VGA BIOS, configured through
 * fw_cfg the way QEMU's "pc" machine does (RAM size, CPU count, E820, ACPI tables through the
 * table-loader, boot order in CMOS, the VGA ROM as the VGA function's PCI option ROM, and for direct kernel boot
 * QEMU's linuxboot_dma.bin option ROM with the kernel/initrd/cmdline/setup items).
 */
import { FwCfg, FwCfgKey } from '../devices/fw-cfg';
import type { MachineConfig } from '../machine/config';
import type { IoBus } from '../machine/io-bus';
import { buildAcpi, buildTableLoader } from './acpi';
import { encodeE820, E820_RAM } from './e820';
import type { LinuxLayout } from './bzimage';

export const LINUXBOOT_ROM_PATHS = ['/usr/share/qemu/linuxboot_dma.bin', '/usr/share/seabios/linuxboot_dma.bin'];

export interface SeabiosFiles {
  bios: Uint8Array;
  vgaBios: Uint8Array | null;
  /** QEMU's linuxboot_dma.bin, needed only for direct kernel boot. */
  linuxbootRom: Uint8Array | null;
}

/** Fills `fw` for SeaBIOS. */
export function configureFwCfg(
  fw: FwCfg,
  config: MachineConfig,
  ramBytes: number,
  files: SeabiosFiles,
  linux: (LinuxLayout & { initrd: Uint8Array | null }) | null,
): void {
  fw.addU64(FwCfgKey.RAM_SIZE, ramBytes);
  fw.addU16(FwCfgKey.NB_CPUS, 1);
  fw.addU16(FwCfgKey.MAX_CPUS, 1);
  fw.addU16(FwCfgKey.NOGRAPHIC, 0);
  fw.addU16(FwCfgKey.BOOT_MENU, 0);
  fw.addU32(FwCfgKey.IRQ0_OVERRIDE, 1);
  fw.addFile('etc/e820', encodeE820([{ base: 0, length: ramBytes, type: E820_RAM }]));
  // No boot menu, no waiting.
  fw.addFile('etc/show-boot-menu', Uint8Array.of(0, 0));
  fw.addFile('etc/boot-menu-wait', Uint8Array.of(0, 0));
  const acpi = buildAcpi(0, { serialPorts: config.serialPorts });
  fw.addFile('etc/acpi/tables', acpi.tables);
  fw.addFile('etc/acpi/rsdp', acpi.rsdp);
  fw.addFile('etc/table-loader', buildTableLoader(acpi, 'etc/acpi/tables', 'etc/acpi/rsdp'));
  // Named after the VGA's PCI IDs (our std VGA is 1234:1111), SeaBIOS runs the ROM as that device's
  // option ROM, so its VBE mode info reports the framebuffer at the BAR SeaBIOS assigned; as a
  // "vgaroms/" file it would run unbound and report QEMU's default 0xE0000000 instead.
  if (files.vgaBios) fw.addFile('pci1234,1111.rom', files.vgaBios);
  if (linux) {
    if (!files.linuxbootRom)
      throw new Error("direct kernel boot through SeaBIOS needs QEMU's linuxboot_dma.bin (package qemu-system-data); not found");
    fw.addFile('genroms/linuxboot_dma.bin', files.linuxbootRom);
    fw.addU32(FwCfgKey.SETUP_ADDR, linux.realBase);
    fw.addU32(FwCfgKey.SETUP_SIZE, linux.setup.length);
    fw.addBytes(FwCfgKey.SETUP_DATA, linux.setup);
    fw.addU32(FwCfgKey.KERNEL_ADDR, linux.kernelAddr);
    fw.addU32(FwCfgKey.KERNEL_SIZE, linux.kernel.length);
    fw.addBytes(FwCfgKey.KERNEL_DATA, linux.kernel);
    fw.addU32(FwCfgKey.CMDLINE_ADDR, linux.cmdlineAddr);
    fw.addU32(FwCfgKey.CMDLINE_SIZE, linux.cmdline.length);
    fw.addBytes(FwCfgKey.CMDLINE_DATA, linux.cmdline);
    fw.addU32(FwCfgKey.INITRD_ADDR, linux.initrd ? linux.initrdAddr : 0);
    fw.addU32(FwCfgKey.INITRD_SIZE, linux.initrd ? linux.initrd.length : 0);
    fw.addBytes(FwCfgKey.INITRD_DATA, linux.initrd ?? new Uint8Array(0));
  }
}

/**
 * SeaBIOS on QEMU reads the boot order from CMOS 0x3D (first and second device, low nibble first)
 * and the high nibble of 0x38 (third): 1 floppy, 2 hard disk, 3 CD-ROM.
 */
export function writeCmosBootOrder(io: IoBus, order: MachineConfig['bootOrder']): void {
  const code = { floppy: 1, disk: 2, cdrom: 3 } as const;
  const c = order.map((k) => code[k]);
  const w = (reg: number, v: number) => {
    io.out8(0x70, reg);
    io.out8(0x71, v);
  };
  const r = (reg: number) => {
    io.out8(0x70, reg);
    return io.in8(0x71);
  };
  w(0x3d, (c[0] ?? 0) | ((c[1] ?? 0) << 4));
  // Bit 0 of 0x38: skip the floppy boot-signature check (as QEMU's default).
  w(0x38, (r(0x38) & 0x0e) | ((c[2] ?? 0) << 4));
}
