/**
 * PCI enumeration as a BIOS does it before boot, through configuration mechanism #1 (ports
 * 0xCF8/0xCFC): size and assign every BAR, enable decoding and bus mastering, route PIRQA-D of
 * the PIIX3 to IRQs 10/10/11/11 and write each function's interrupt line, enable the PIIX IDE
 * decode and the PIIX4 power-management I/O space.
 */
import type { IoBus } from '../machine/io-bus';
import { PIRQ_IRQS, PM_BASE, PCI_HOLE_START, PCI_HOLE_END } from './layout';

export function pciRead(io: IoBus, bus: number, devfn: number, reg: number, size: 1 | 2 | 4): number {
  io.out32(0xcf8, (0x80000000 | (bus << 16) | (devfn << 8) | (reg & 0xfc)) >>> 0);
  const port = 0xcfc + (reg & 3);
  return size === 1 ? io.in8(port) : size === 2 ? io.in16(port) : io.in32(port) >>> 0;
}

export function pciWrite(io: IoBus, bus: number, devfn: number, reg: number, value: number, size: 1 | 2 | 4): void {
  io.out32(0xcf8, (0x80000000 | (bus << 16) | (devfn << 8) | (reg & 0xfc)) >>> 0);
  const port = 0xcfc + (reg & 3);
  if (size === 1) io.out8(port, value);
  else if (size === 2) io.out16(port, value);
  else io.out32(port, value);
}

export interface PciFunctionInfo {
  devfn: number;
  vendor: number;
  device: number;
  classCode: number;
  pin: number;
  irq: number;
  bars: { index: number; kind: 'io' | 'mem'; base: number; size: number }[];
}

export interface PciInitResult {
  functions: PciFunctionInfo[];
  /** BAR0 of the first display controller (the VBE linear framebuffer), or null. */
  vgaFramebuffer: number | null;
}

export const PCI_MEM_START = PCI_HOLE_START;
export const PCI_MEM_END = PCI_HOLE_END;
export const PCI_IO_START = 0xc000;

export function pciIrqFor(slot: number, pin: number): number {
  return PIRQ_IRQS[(slot - 1 + pin - 1) & 3];
}

export function initPci(io: IoBus, log: (m: string) => void = () => {}): PciInitResult {
  const functions: PciFunctionInfo[] = [];
  interface Req {
    fn: PciFunctionInfo;
    index: number;
    kind: 'io' | 'mem';
    size: number;
    is64: boolean;
  }
  const reqs: Req[] = [];
  for (let slot = 0; slot < 32; slot++) {
    const header0 = pciRead(io, 0, slot << 3, 0x0c, 4);
    for (let fn = 0; fn < 8; fn++) {
      const devfn = (slot << 3) | fn;
      const id = pciRead(io, 0, devfn, 0, 4) >>> 0;
      if (id === 0xffffffff || id === 0) {
        if (fn === 0) break;
        continue;
      }
      const info: PciFunctionInfo = {
        devfn,
        vendor: id & 0xffff,
        device: id >>> 16,
        classCode: pciRead(io, 0, devfn, 0x08, 4) >>> 8,
        pin: pciRead(io, 0, devfn, 0x3d, 1),
        irq: 0,
        bars: [],
      };
      functions.push(info);
      const headerType = pciRead(io, 0, devfn, 0x0e, 1) & 0x7f;
      if (headerType === 0) {
        for (let i = 0; i < 6; i++) {
          const reg = 0x10 + 4 * i;
          const old = pciRead(io, 0, devfn, reg, 4);
          pciWrite(io, 0, devfn, reg, 0xffffffff, 4);
          const mask = pciRead(io, 0, devfn, reg, 4) >>> 0;
          pciWrite(io, 0, devfn, reg, old, 4);
          if (mask === 0 || mask === 0xffffffff) continue;
          if (mask & 1) {
            const size = (~(mask & 0xfffffffc) + 1) & 0xffff;
            if (size) reqs.push({ fn: info, index: i, kind: 'io', size, is64: false });
          } else {
            const is64 = ((mask >> 1) & 3) === 2;
            const size = (~(mask & 0xfffffff0) + 1) >>> 0;
            if (size) reqs.push({ fn: info, index: i, kind: 'mem', size, is64 });
            if (is64) i++;
          }
        }
      }
      if (fn === 0 && !(header0 & 0x00800000)) break;
    }
  }
  // Largest first keeps every BAR naturally aligned with a simple bump allocator.
  reqs.sort((a, b) => b.size - a.size);
  let ioNext = PCI_IO_START;
  let memNext = PCI_MEM_START;
  for (const r of reqs) {
    const reg = 0x10 + 4 * r.index;
    let base: number;
    if (r.kind === 'io') {
      base = Math.ceil(ioNext / r.size) * r.size;
      if (base + r.size > 0x10000) {
        log(`pci: no I/O space left for ${hex(r.fn.vendor)}:${hex(r.fn.device)} BAR${r.index}`);
        continue;
      }
      ioNext = base + r.size;
    } else {
      base = Math.ceil(memNext / r.size) * r.size;
      if (base + r.size > PCI_MEM_END) {
        log(`pci: no memory space left for ${hex(r.fn.vendor)}:${hex(r.fn.device)} BAR${r.index}`);
        continue;
      }
      memNext = base + r.size;
    }
    pciWrite(io, 0, r.fn.devfn, reg, base, 4);
    if (r.is64) pciWrite(io, 0, r.fn.devfn, reg + 4, 0, 4);
    r.fn.bars.push({ index: r.index, kind: r.kind, base, size: r.size });
  }
  let vgaFramebuffer: number | null = null;
  for (const f of functions) {
    const slot = f.devfn >> 3;
    const cmd = pciRead(io, 0, f.devfn, 0x04, 2);
    pciWrite(io, 0, f.devfn, 0x04, cmd | 0x07, 2);
    if (f.pin >= 1 && f.pin <= 4) {
      f.irq = pciIrqFor(slot, f.pin);
      pciWrite(io, 0, f.devfn, 0x3c, f.irq, 1);
    }
    if (f.vendor === 0x8086 && f.device === 0x7000) {
      // PIIX3 ISA bridge: PIRQ route control registers.
      PIRQ_IRQS.forEach((irq, i) => pciWrite(io, 0, f.devfn, 0x60 + i, irq, 1));
    } else if (f.vendor === 0x8086 && (f.device === 0x7010 || f.device === 0x7111)) {
      // PIIX IDE: enable the primary and secondary channel decode (IDETIM).
      pciWrite(io, 0, f.devfn, 0x40, 0x8000, 2);
      pciWrite(io, 0, f.devfn, 0x42, 0x8000, 2);
    } else if (f.vendor === 0x8086 && f.device === 0x7113) {
      // PIIX4 power management: PMBA and PM I/O enable, as SeaBIOS sets them.
      pciWrite(io, 0, f.devfn, 0x40, PM_BASE | 1, 4);
      pciWrite(io, 0, f.devfn, 0x80, 0x01, 1);
    }
    if (vgaFramebuffer === null && f.classCode >> 8 === 0x0300) {
      const bar0 = f.bars.find((b) => b.index === 0 && b.kind === 'mem');
      if (bar0) vgaFramebuffer = bar0.base;
    }
  }
  // PCI interrupts are level-triggered: mark them so in the ELCR.
  let elcr = 0;
  for (const irq of new Set(PIRQ_IRQS)) elcr |= 1 << irq;
  io.out8(0x4d0, elcr & 0xff);
  io.out8(0x4d1, elcr >> 8);
  return { functions, vgaFramebuffer };
}

function hex(v: number): string {
  return v.toString(16).padStart(4, '0');
}

/** BAR0 of the first display controller as currently programmed (no assignment), or null. */
export function findVgaFramebuffer(io: IoBus): number | null {
  for (let devfn = 0; devfn < 256; devfn++) {
    const id = pciRead(io, 0, devfn, 0, 4) >>> 0;
    if (id === 0xffffffff || id === 0) continue;
    if (pciRead(io, 0, devfn, 0x08, 4) >>> 16 !== 0x0300) continue;
    const bar = pciRead(io, 0, devfn, 0x10, 4) >>> 0;
    return bar & 1 ? null : (bar & 0xfffffff0) >>> 0 || null;
  }
  return null;
}
