/**
 * Where the built-in BIOS puts things. One place, so the ROM builder, POST, the tables and the
 * tests agree.
 */

/** The trap port: a stub writes a service id here and the TypeScript BIOS runs; reading it back
 * returns 0 (done) or 1 (wait for an interrupt and trap again). Nothing else decodes 0x4F0. */
export const TRAP_PORT = 0x4f0;

/** The 64 KiB built-in ROM image lives at F0000 (and is aliased at the top of 4 GiB). */
export const ROM_BASE = 0xf0000;
export const ROM_SIZE = 0x10000;
export const ROM_SEGMENT = 0xf000;

/** Extended BIOS data area: the last KiB of base memory. */
export const EBDA_SEGMENT = 0x9fc0;
export const EBDA_BASE = EBDA_SEGMENT << 4;
export const EBDA_SIZE_KIB = 1;
export const BASE_MEMORY_KIB = EBDA_BASE >> 10; // 639

/** ACPI tables sit at the top of RAM in an "ACPI reclaim" E820 range of this size. */
export const ACPI_REGION_SIZE = 0x10000;

/** Stack used by POST and by the boot loader hand-off (0000:7C00 grows down, as most BIOSes). */
export const POST_STACK_TOP = 0x7c00;

export const IOAPIC_BASE = 0xfec00000;
export const LAPIC_BASE = 0xfee00000;

/** PIIX4-style power management ports the platform implements (see docs/firmware.md). */
export const PM_BASE = 0xb000;
export const PM1A_EVT = PM_BASE;
export const PM1A_CNT = PM_BASE + 4;
export const PM_TMR = PM_BASE + 8;
export const GPE0_BLK = 0xafe0;
export const SCI_IRQ = 9;

/** PIRQA..D of the PIIX3 routed to these ISA IRQs (as SeaBIOS does). */
export const PIRQ_IRQS = [10, 10, 11, 11] as const;

/** Service ids written to TRAP_PORT that are not interrupt vectors. */
export const TrapId = {
  POST: 0xf0,
  ROM_SCAN: 0xf1,
  BOOT: 0xf2,
  UNHANDLED: 0xf3,
  /** IRQ1, after INT 15h AH=4Fh: process the scancode at SS:SP. */
  KEY: 0xf4,
} as const;

/** Offsets inside the ROM image of fixed data (traditional IBM addresses where software expects them). */
export const RomOffset = {
  /** Diskette parameter table (INT 1Eh) at the traditional F000:EFC7. */
  DISKETTE_PARAMS: 0xefc7,
  /** 8x8 font, first 128 glyphs at F000:FA6E (INT 1Fh points at the upper half). */
  FONT_8X8: 0xfa6e,
  /** Start of the area for tables written at POST (MP, SMBIOS, RSDP, VBE, fonts). */
  TABLES: 0x0000,
  TABLES_END: 0x6000,
  /** 8x16 font for INT 10h AX=1130h. */
  FONT_8X16: 0x6000,
  /** 8x14 font (derived from 8x16). */
  FONT_8X14: 0x7000,
  /** Full 8x8 font (2 KiB), then stubs and code. */
  FONT_8X8_FULL: 0x7e00,
  CODE: 0x9000,
} as const;

/** The 32-bit PCI memory window BARs are assigned from (and the DSDT's PCI0._CRS describes). */
export const PCI_HOLE_START = 0xe0000000;
export const PCI_HOLE_END = 0xfec00000;
