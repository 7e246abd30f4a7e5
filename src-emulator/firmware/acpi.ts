/**
 * ACPI 1.0-style tables for the i440FX/PIIX4 platform: RSDP, RSDT, FADT (rev 1, PIIX4 PM ports),
 * FACS, MADT and a DSDT whose AML we encode ourselves (aml.ts).
 *
 * The tables are laid out in one blob whose pointers are relative to the blob's address, so the
 * same build serves the built-in BIOS (blob placed at a fixed address) and SeaBIOS (blob handed over
 * fw_cfg with a QEMU "table-loader" script that allocates it and patches the pointers).
 */
import * as aml from './aml';
import { PCI_HOLE_START, PCI_HOLE_END, GPE0_BLK, IOAPIC_BASE, LAPIC_BASE, PM1A_CNT, PM1A_EVT, PM_TMR, SCI_IRQ, PIRQ_IRQS } from './layout';

export const OEM_ID = 'BOXWD ';
export const OEM_TABLE_ID = 'BOXWOOD ';

export function checksum(bytes: Uint8Array, start = 0, length = bytes.length - start): number {
  let s = 0;
  for (let i = start; i < start + length; i++) s = (s + bytes[i]) & 0xff;
  return s;
}

/** Sets the byte at `at` so that bytes[start..start+length) sums to 0 mod 256. */
export function fixChecksum(bytes: Uint8Array, at: number, start = 0, length = bytes.length - start): void {
  bytes[at] = 0;
  bytes[at] = (0x100 - checksum(bytes, start, length)) & 0xff;
}

function ascii(dst: Uint8Array, at: number, s: string, width: number): void {
  for (let i = 0; i < width; i++) dst[at + i] = i < s.length ? s.charCodeAt(i) : 0x20;
}

/** A 36-byte ACPI header followed by `body`; checksum filled. */
export function acpiTable(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const t = new Uint8Array(36 + body.length);
  const dv = new DataView(t.buffer);
  ascii(t, 0, signature, 4);
  dv.setUint32(4, t.length, true);
  t[8] = revision;
  ascii(t, 10, OEM_ID, 6);
  ascii(t, 16, OEM_TABLE_ID, 8);
  dv.setUint32(24, 1, true);
  ascii(t, 28, 'BXWD', 4);
  dv.setUint32(32, 1, true);
  t.set(body, 36);
  fixChecksum(t, 9);
  return t;
}

export interface AcpiOptions {
  /** PCI slots in use with their interrupt pins (for _PRT). */
  pciSlots?: number[];
  /** Number of COM ports to describe (1..4). */
  serialPorts?: number;
}

/** The DSDT: PCI root with a static _PRT, the ISA devices Linux likes to find, power button, \_S5. */
export function buildDsdt(opts: AcpiOptions = {}): Uint8Array {
  const prt: aml.Aml[] = [];
  for (let slot = 1; slot < 32; slot++) {
    for (let pin = 0; pin < 4; pin++) {
      // PIIX3 swizzle: PIRQ = (slot - 1 + pin) mod 4, as QEMU and SeaBIOS wire it.
      const irq = PIRQ_IRQS[(slot - 1 + pin) & 3];
      prt.push(aml.pkg(aml.integer(((slot << 16) | 0xffff) >>> 0), aml.integer(pin), aml.integer(0), aml.integer(irq)));
    }
  }
  // A PackageOp holds at most 255 elements; 31 slots x 4 pins = 124.
  const comBases = [0x3f8, 0x2f8, 0x3e8, 0x2e8];
  const comIrqs = [4, 3, 4, 3];
  const coms: aml.Aml[] = [];
  for (let i = 0; i < Math.min(opts.serialPorts ?? 1, 4); i++) {
    coms.push(
      aml.device(
        `COM${i + 1}`,
        aml.name('_HID', aml.eisaId('PNP0501')),
        aml.name('_UID', aml.integer(i + 1)),
        aml.name('_CRS', aml.resourceTemplate(aml.ioPort(comBases[i], comBases[i], 0, 8), aml.irqNoFlags(comIrqs[i]))),
      ),
    );
  }
  const isa = aml.device(
    'ISA',
    aml.name('_ADR', aml.integer(0x00010000)),
    aml.device(
      'KBD',
      aml.name('_HID', aml.eisaId('PNP0303')),
      aml.methodReturning('_STA', aml.integer(0x0f)),
      aml.name('_CRS', aml.resourceTemplate(aml.ioPort(0x60, 0x60, 1, 1), aml.ioPort(0x64, 0x64, 1, 1), aml.irqNoFlags(1))),
    ),
    aml.device(
      'MOU',
      aml.name('_HID', aml.eisaId('PNP0F13')),
      aml.methodReturning('_STA', aml.integer(0x0f)),
      aml.name('_CRS', aml.resourceTemplate(aml.irqNoFlags(12))),
    ),
    aml.device(
      'RTC',
      aml.name('_HID', aml.eisaId('PNP0B00')),
      aml.name('_CRS', aml.resourceTemplate(aml.ioPort(0x70, 0x70, 0x10, 2), aml.irqNoFlags(8))),
    ),
    ...coms,
  );
  const pci0 = aml.device(
    'PCI0',
    aml.name('_HID', aml.eisaId('PNP0A03')),
    aml.name('_UID', aml.integer(0)),
    // Bridge windows, as QEMU's i440FX DSDT: Linux uses _CRS to place and claim BARs.
    aml.name(
      '_CRS',
      aml.resourceTemplate(
        aml.wordBusNumber(0x00, 0xff),
        aml.ioPort(0x0cf8, 0x0cf8, 0x01, 0x08),
        aml.wordIo(0x0000, 0x0cf7),
        aml.wordIo(0x0d00, 0xffff),
        aml.dwordMemory(0x000a0000, 0x000bffff, true),
        aml.dwordMemory(PCI_HOLE_START, PCI_HOLE_END - 1, false),
      ),
    ),
    aml.name('_PRT', aml.pkg(...prt)),
    isa,
  );
  const pwrb = aml.device('PWRB', aml.name('_HID', aml.eisaId('PNP0C0C')), aml.name('_UID', aml.integer(1)));
  // PIIX4 SLP_TYP: 0 is soft-off (S5); the platform's PM1_CNT treats SLP_TYP 0 + SLP_EN as power off.
  const s5 = aml.name('\\_S5', aml.pkg(aml.integer(0), aml.integer(0), aml.integer(0), aml.integer(0)));
  const body = aml.amlConcat([aml.scope('\\_SB', pci0, pwrb), s5]);
  return acpiTable('DSDT', 1, body);
}

export function buildFacs(): Uint8Array {
  const t = new Uint8Array(64);
  ascii(t, 0, 'FACS', 4);
  new DataView(t.buffer).setUint32(4, 64, true);
  return t;
}

/** FADT revision 1 (116 bytes). Pointers to FACS and DSDT are given as absolute addresses. */
export function buildFadt(facsAddr: number, dsdtAddr: number): Uint8Array {
  const b = new Uint8Array(116 - 36);
  const dv = new DataView(b.buffer);
  const at = (off: number) => off - 36;
  dv.setUint32(at(36), facsAddr, true);
  dv.setUint32(at(40), dsdtAddr, true);
  b[at(44)] = 0; // INT_MODEL (reserved in later revisions)
  dv.setUint16(at(46), SCI_IRQ, true);
  // The PIIX4 APM port: writing ACPI_ENABLE sets SCI_EN (the platform implements it, as QEMU's).
  dv.setUint32(at(48), 0xb2, true);
  b[at(52)] = 0xf1;
  b[at(53)] = 0xf0;
  dv.setUint32(at(56), PM1A_EVT, true);
  dv.setUint32(at(64), PM1A_CNT, true);
  dv.setUint32(at(76), PM_TMR, true);
  dv.setUint32(at(80), GPE0_BLK, true);
  b[at(88)] = 4; // PM1_EVT_LEN
  b[at(89)] = 2; // PM1_CNT_LEN
  b[at(91)] = 4; // PM_TMR_LEN
  b[at(92)] = 4; // GPE0_BLK_LEN
  dv.setUint16(at(96), 0xfff, true); // P_LVL2_LAT > 100: no C2
  dv.setUint16(at(98), 0xfff, true); // P_LVL3_LAT > 1000: no C3
  b[at(108)] = 0x32; // CENTURY: CMOS register
  // WBINVD | PROC_C1 | SLP_BUTTON (no sleep button) | RTC_S4. PWR_BUTTON clear: fixed-feature power button.
  dv.setUint32(at(112), 0x01 | 0x04 | 0x20 | 0x80, true);
  return acpiTable('FACP', 1, b);
}

export function buildMadt(): Uint8Array {
  const entries: number[] = [];
  const u16 = (v: number) => [v & 0xff, (v >> 8) & 0xff];
  const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  // Processor local APIC: ACPI id 0, APIC id 0, enabled.
  entries.push(0, 8, 0, 0, ...u32(1));
  // I/O APIC id 0 at 0xFEC00000, GSI base 0.
  entries.push(1, 12, 0, 0, ...u32(IOAPIC_BASE), ...u32(0));
  // ISA IRQ0 is wired to IOAPIC pin 2.
  entries.push(2, 10, 0, 0, ...u32(2), ...u16(0));
  // SCI (IRQ 9) and the PCI interrupt lines: level-triggered, active high (as PIIX wires them).
  for (const irq of new Set([SCI_IRQ, ...PIRQ_IRQS])) entries.push(2, 10, 0, irq, ...u32(irq), ...u16(0x000d));
  // LINT1 of every processor is NMI.
  entries.push(4, 6, 0xff, ...u16(0), 1);
  const body = new Uint8Array(8 + entries.length);
  const dv = new DataView(body.buffer);
  dv.setUint32(0, LAPIC_BASE, true);
  dv.setUint32(4, 1, true); // PCAT_COMPAT: dual 8259s present
  body.set(entries, 8);
  return acpiTable('APIC', 1, body);
}

export function buildRsdt(tableAddrs: number[]): Uint8Array {
  const body = new Uint8Array(4 * tableAddrs.length);
  const dv = new DataView(body.buffer);
  tableAddrs.forEach((a, i) => dv.setUint32(4 * i, a, true));
  return acpiTable('RSDT', 1, body);
}

export function buildRsdp(rsdtAddr: number): Uint8Array {
  const r = new Uint8Array(20);
  ascii(r, 0, 'RSD PTR ', 8);
  ascii(r, 9, OEM_ID, 6);
  r[15] = 0; // ACPI 1.0
  new DataView(r.buffer).setUint32(16, rsdtAddr, true);
  fixChecksum(r, 8);
  return r;
}

/** A pointer field inside the blob: 4 bytes at `offset` holding (blob address + target offset). */
export interface AcpiPointer {
  offset: number;
}

export interface AcpiBlob {
  /** FACS, DSDT, FADT, MADT, RSDT, laid out from offset 0; pointers hold offsets + `base`. */
  tables: Uint8Array;
  /** 20-byte RSDP whose RSDT pointer holds `base` + RSDT offset. */
  rsdp: Uint8Array;
  base: number;
  /** Where each table starts, by signature. */
  offsets: Record<'FACS' | 'DSDT' | 'FACP' | 'APIC' | 'RSDT', number>;
  /** Pointer fields in `tables` (for the SeaBIOS table-loader). */
  pointers: AcpiPointer[];
  /** Offset of the RSDT pointer in `rsdp`. */
  rsdpPointer: number;
}

const align = (v: number, a: number) => Math.ceil(v / a) * a;

/** Builds every table for a blob placed at `base` (0 for the SeaBIOS loader, which relocates). */
export function buildAcpi(base: number, opts: AcpiOptions = {}): AcpiBlob {
  const facsOff = 0;
  const dsdt = buildDsdt(opts);
  const dsdtOff = 64;
  const fadtOff = align(dsdtOff + dsdt.length, 16);
  const fadt = buildFadt(base + facsOff, base + dsdtOff);
  const madtOff = align(fadtOff + fadt.length, 16);
  const madt = buildMadt();
  const rsdtOff = align(madtOff + madt.length, 16);
  const rsdt = buildRsdt([base + fadtOff, base + madtOff]);
  const tables = new Uint8Array(rsdtOff + rsdt.length);
  tables.set(buildFacs(), facsOff);
  tables.set(dsdt, dsdtOff);
  tables.set(fadt, fadtOff);
  tables.set(madt, madtOff);
  tables.set(rsdt, rsdtOff);
  return {
    tables,
    rsdp: buildRsdp(base + rsdtOff),
    base,
    offsets: { FACS: facsOff, DSDT: dsdtOff, FACP: fadtOff, APIC: madtOff, RSDT: rsdtOff },
    pointers: [{ offset: fadtOff + 36 }, { offset: fadtOff + 40 }, { offset: rsdtOff + 36 }, { offset: rsdtOff + 40 }],
    rsdpPointer: 16,
  };
}

/**
 * QEMU's linker/loader script (hw/acpi/bios-linker-loader.c) for SeaBIOS: allocate the tables
 * (high memory) and the RSDP (F segment), patch pointers, then fix checksums. 128-byte commands.
 */
export function buildTableLoader(blob: AcpiBlob, tablesFile: string, rsdpFile: string): Uint8Array {
  const cmds: Uint8Array[] = [];
  const cmd = (type: number, fill: (dv: DataView, b: Uint8Array) => void) => {
    const b = new Uint8Array(128);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, type, true);
    fill(dv, b);
    cmds.push(b);
  };
  const str = (b: Uint8Array, at: number, s: string) => b.set(new TextEncoder().encode(s), at);
  const ALLOCATE = 1,
    ADD_POINTER = 2,
    ADD_CHECKSUM = 3;
  const ZONE_HIGH = 1,
    ZONE_FSEG = 2;
  cmd(ALLOCATE, (dv, b) => {
    str(b, 4, rsdpFile);
    dv.setUint32(60, 16, true);
    b[64] = ZONE_FSEG;
  });
  cmd(ALLOCATE, (dv, b) => {
    str(b, 4, tablesFile);
    dv.setUint32(60, 64, true);
    b[64] = ZONE_HIGH;
  });
  for (const p of blob.pointers) {
    cmd(ADD_POINTER, (dv, b) => {
      str(b, 4, tablesFile);
      str(b, 60, tablesFile);
      dv.setUint32(116, p.offset, true);
      b[120] = 4;
    });
  }
  cmd(ADD_POINTER, (dv, b) => {
    str(b, 4, rsdpFile);
    str(b, 60, tablesFile);
    dv.setUint32(116, blob.rsdpPointer, true);
    b[120] = 4;
  });
  const view = new DataView(blob.tables.buffer, blob.tables.byteOffset);
  for (const sig of ['DSDT', 'FACP', 'APIC', 'RSDT'] as const) {
    const off = blob.offsets[sig];
    const len = view.getUint32(off + 4, true);
    cmd(ADD_CHECKSUM, (dv, b) => {
      str(b, 4, tablesFile);
      dv.setUint32(60, off + 9, true);
      dv.setUint32(64, off, true);
      dv.setUint32(68, len, true);
    });
  }
  cmd(ADD_CHECKSUM, (dv, b) => {
    str(b, 4, rsdpFile);
    dv.setUint32(60, 8, true);
    dv.setUint32(64, 0, true);
    dv.setUint32(68, 20, true);
  });
  const out = new Uint8Array(128 * cmds.length);
  cmds.forEach((c, i) => out.set(c, 128 * i));
  return out;
}
