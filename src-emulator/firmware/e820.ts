/**
 * The physical memory map the BIOS reports through INT 15h E820 (and, for SeaBIOS, through the
 * fw_cfg file etc/e820).
 */
import { ACPI_REGION_SIZE, EBDA_BASE, IOAPIC_BASE, LAPIC_BASE } from './layout';

export const E820_RAM = 1;
export const E820_RESERVED = 2;
export const E820_ACPI = 3;
export const E820_NVS = 4;

export interface E820Entry {
  base: number;
  length: number;
  type: number;
}

/** `ramBytes` of RAM from address 0 (the machine keeps RAM below the PCI hole). */
export function buildE820(ramBytes: number, biosHighSize = 0x10000): E820Entry[] {
  const acpiBase = ramBytes - ACPI_REGION_SIZE;
  const map: E820Entry[] = [
    { base: 0, length: EBDA_BASE, type: E820_RAM },
    { base: EBDA_BASE, length: 0xa0000 - EBDA_BASE, type: E820_RESERVED },
    { base: 0xf0000, length: 0x10000, type: E820_RESERVED },
  ];
  if (acpiBase > 0x100000) {
    map.push({ base: 0x100000, length: acpiBase - 0x100000, type: E820_RAM });
    map.push({ base: acpiBase, length: ACPI_REGION_SIZE, type: E820_ACPI });
  }
  map.push({ base: IOAPIC_BASE, length: 0x1000, type: E820_RESERVED });
  map.push({ base: LAPIC_BASE, length: 0x1000, type: E820_RESERVED });
  map.push({ base: 0x1_0000_0000 - biosHighSize, length: biosHighSize, type: E820_RESERVED });
  return map;
}

/** Where usable RAM above 1 MiB ends (the ACPI tables sit just above). */
export function acpiRegionBase(ramBytes: number): number {
  return ramBytes - ACPI_REGION_SIZE;
}

/** 20-byte entries, as INT 15h E820 returns them and as fw_cfg "etc/e820" carries them. */
export function encodeE820(map: E820Entry[]): Uint8Array {
  const out = new Uint8Array(20 * map.length);
  const dv = new DataView(out.buffer);
  map.forEach((e, i) => {
    dv.setBigUint64(20 * i, BigInt(e.base), true);
    dv.setBigUint64(20 * i + 8, BigInt(e.length), true);
    dv.setUint32(20 * i + 16, e.type, true);
  });
  return out;
}
