/**
 * Intel MultiProcessor Specification 1.4 tables: the floating pointer and the configuration table
 * (one CPU, PCI bus 0 and ISA bus 1, the I/O APIC, ISA and PCI interrupt assignments, local
 * interrupts). Linux uses them when ACPI is off (acpi=off, noapic tests).
 */
import { fixChecksum } from './acpi';
import { IOAPIC_BASE, LAPIC_BASE, PIRQ_IRQS } from './layout';

export interface PciInterrupt {
  slot: number;
  /** 1 = INTA# .. 4 = INTD# */
  pin: number;
}

const PCI_BUS = 0;
const ISA_BUS = 1;
const IOAPIC_ID = 0;

/** Returns the floating pointer (16 bytes) and the config table, for placement at the given addresses. */
export function buildMpTables(configAddr: number, pciInterrupts: PciInterrupt[]): { floating: Uint8Array; config: Uint8Array } {
  const entries: number[][] = [];
  const u16 = (v: number) => [v & 0xff, (v >> 8) & 0xff];
  const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  // Processor: LAPIC id 0, version 0x14, enabled + bootstrap, family 6 signature, FPU|APIC features.
  entries.push([0, 0, 0x14, 0x03, ...u32(0x0633), ...u32(0x0201), ...u32(0), ...u32(0)]);
  const bus = (id: number, type: string) => [1, id, ...[...type.padEnd(6)].map((c) => c.charCodeAt(0))];
  entries.push(bus(PCI_BUS, 'PCI'));
  entries.push(bus(ISA_BUS, 'ISA'));
  entries.push([2, IOAPIC_ID, 0x11, 0x01, ...u32(IOAPIC_BASE)]);
  const ioint = (type: number, flags: number, srcBus: number, srcIrq: number, pin: number) => [
    3,
    type,
    ...u16(flags),
    srcBus,
    srcIrq,
    IOAPIC_ID,
    pin,
  ];
  // ExtINT from the 8259 on pin 0, ISA IRQs identity-mapped except IRQ0 -> pin 2.
  entries.push(ioint(3, 0, ISA_BUS, 0, 0));
  for (let irq = 0; irq < 16; irq++) {
    if (irq === 2) continue;
    const pin = irq === 0 ? 2 : irq;
    // SCI is level/active high as in the MADT.
    const flags = irq === 9 ? 0x000d : 0;
    entries.push(ioint(0, flags, ISA_BUS, irq, pin));
  }
  for (const { slot, pin } of pciInterrupts) {
    const irq = PIRQ_IRQS[(slot - 1 + pin - 1) & 3];
    // PCI: level-triggered, active low.
    entries.push(ioint(0, 0x000f, PCI_BUS, (slot << 2) | (pin - 1), irq));
  }
  const lint = (type: number, lintin: number) => [4, type, ...u16(0), ISA_BUS, 0, 0xff, lintin];
  entries.push(lint(3, 0));
  entries.push(lint(1, 1));
  const body = entries.flat();
  const config = new Uint8Array(44 + body.length);
  const dv = new DataView(config.buffer);
  config.set(
    [...'PCMP'].map((c) => c.charCodeAt(0)),
    0,
  );
  dv.setUint16(4, config.length, true);
  config[6] = 4;
  config.set(
    [...'BOXWOOD '].map((c) => c.charCodeAt(0)),
    8,
  );
  config.set(
    [...'PC i440FX   '].map((c) => c.charCodeAt(0)),
    16,
  );
  dv.setUint16(34, entries.length, true);
  dv.setUint32(36, LAPIC_BASE, true);
  config.set(body, 44);
  fixChecksum(config, 7);
  const floating = new Uint8Array(16);
  floating.set(
    [...'_MP_'].map((c) => c.charCodeAt(0)),
    0,
  );
  new DataView(floating.buffer).setUint32(4, configAddr, true);
  floating[8] = 1;
  floating[9] = 4;
  fixChecksum(floating, 10);
  return { floating, config };
}
