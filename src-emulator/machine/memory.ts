/**
 * Guest physical memory: RAM, ROM (shadowable), MMIO windows and holes, at 4 KiB page granularity.
 *
 * The CPU's hot path reads RAM through `ram`/`view` directly when `pageKind[addr >>> 12] === PAGE_RAM`;
 * everything else goes through the slow path here. Writes into pages that hold decoded code call
 * `onCodeWrite(page)` so the CPU can drop its cached blocks (self-modifying code, DMA).
 */
export const PAGE_RAM = 0;
/** Reads come from the backing array, writes are dropped (BIOS/option ROM, PAM read-only). */
export const PAGE_ROM = 1;
/** Nothing decodes here: reads float high, writes vanish. */
export const PAGE_UNMAPPED = 2;
/** Kinds >= PAGE_MMIO_BASE index `mmioHandlers[kind - PAGE_MMIO_BASE]`. */
export const PAGE_MMIO_BASE = 3;

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
const PAGE_COUNT = 1 << 20; // 4 GiB / 4 KiB

export interface MmioHandler {
  /** `addr` is the full physical address. 16/32-bit accessors are optional; absent ones are split into bytes. */
  read8(addr: number): number;
  write8(addr: number, value: number): void;
  read16?(addr: number): number;
  write16?(addr: number, value: number): void;
  read32?(addr: number): number;
  write32?(addr: number, value: number): void;
}

export class PhysicalMemory {
  /** Backing store for guest RAM and for the ROM/shadow area below 1 MiB. Index = physical address. */
  readonly ram: Uint8Array;
  readonly view: DataView;
  /** One byte per 4 KiB page: PAGE_RAM, PAGE_ROM, PAGE_UNMAPPED or PAGE_MMIO_BASE + handler index. */
  readonly pageKind = new Uint8Array(PAGE_COUNT);
  /** Non-zero where the CPU holds decoded code for the page. Maintained by the CPU. */
  readonly codePages = new Uint8Array(PAGE_COUNT);
  readonly mmioHandlers: MmioHandler[] = [];
  /** Set by the CPU: called on any write into a page whose `codePages` entry is non-zero. */
  onCodeWrite: (page: number) => void = () => {};

  /** `ramBytes` of guest RAM starting at 0; the backing array is at least 1 MiB for the legacy ROM area. */
  constructor(readonly ramBytes: number) {
    const backing = Math.max(ramBytes, 0x100000);
    this.ram = new Uint8Array(backing);
    this.view = new DataView(this.ram.buffer);
    this.pageKind.fill(PAGE_UNMAPPED);
    this.pageKind.fill(PAGE_RAM, 0, Math.ceil(ramBytes / PAGE_SIZE));
  }

  /** Marks [base, base+size) with `kind`; base and size must be page-aligned. */
  setKind(base: number, size: number, kind: number): void {
    if (base % PAGE_SIZE || size % PAGE_SIZE) throw new Error(`memory range ${base.toString(16)}+${size.toString(16)} is not page-aligned`);
    this.pageKind.fill(kind, base >>> PAGE_SHIFT, (base + size) / PAGE_SIZE);
  }

  /** Maps an MMIO handler over [base, base+size); returns its page kind so it can be remapped later (PCI BAR moves). */
  mapMmio(base: number, size: number, handler: MmioHandler): number {
    let index = this.mmioHandlers.indexOf(handler);
    if (index < 0) {
      index = this.mmioHandlers.length;
      if (index + PAGE_MMIO_BASE > 255) throw new Error('too many MMIO handlers');
      this.mmioHandlers.push(handler);
    }
    const kind = PAGE_MMIO_BASE + index;
    if (base % PAGE_SIZE || size % PAGE_SIZE) throw new Error(`memory range ${base.toString(16)}+${size.toString(16)} is not page-aligned`);
    // Remember what the window covers (RAM, ROM, another device's MMIO) so unmapping restores it:
    // a PCI BAR parked over the APIC or the BIOS alias while the guest sizes it must not erase them.
    for (let p = base >>> PAGE_SHIFT, end = (base + size) / PAGE_SIZE; p < end; p++) {
      if (this.pageKind[p] !== kind && !this.coveredKinds.has(p * 256 + kind)) this.coveredKinds.set(p * 256 + kind, this.pageKind[p]);
      this.pageKind[p] = kind;
    }
    return kind;
  }

  /** (page * 256 + window kind) -> the kind that window replaced there. */
  private readonly coveredKinds = new Map<number, number>();

  /** Removes every page mapped to `handler`; pages get back what the window covered (RAM, ROM, unmapped, other MMIO). */
  unmapMmio(handler: MmioHandler): void {
    const index = this.mmioHandlers.indexOf(handler);
    if (index < 0) return;
    const kind = PAGE_MMIO_BASE + index;
    for (let p = 0; p < PAGE_COUNT; p++) {
      if (this.pageKind[p] !== kind) continue;
      const under = this.coveredKinds.get(p * 256 + kind);
      this.coveredKinds.delete(p * 256 + kind);
      this.pageKind[p] = under ?? (p * PAGE_SIZE < this.ramBytes ? PAGE_RAM : PAGE_UNMAPPED);
    }
  }

  read8(addr: number): number {
    addr >>>= 0;
    const kind = this.pageKind[addr >>> PAGE_SHIFT];
    if (kind <= PAGE_ROM) return this.ram[addr];
    if (kind === PAGE_UNMAPPED) return 0xff;
    return this.mmioHandlers[kind - PAGE_MMIO_BASE].read8(addr) & 0xff;
  }

  read16(addr: number): number {
    addr >>>= 0;
    const kind = this.pageKind[addr >>> PAGE_SHIFT];
    if ((addr & 0xfff) !== 0xfff) {
      if (kind <= PAGE_ROM) return this.view.getUint16(addr, true);
      if (kind >= PAGE_MMIO_BASE) {
        const h = this.mmioHandlers[kind - PAGE_MMIO_BASE];
        if (h.read16) return h.read16(addr) & 0xffff;
      }
    }
    return this.read8(addr) | (this.read8(addr + 1) << 8);
  }

  read32(addr: number): number {
    addr >>>= 0;
    const kind = this.pageKind[addr >>> PAGE_SHIFT];
    if ((addr & 0xfff) <= 0xffc) {
      if (kind <= PAGE_ROM) return this.view.getInt32(addr, true);
      if (kind >= PAGE_MMIO_BASE) {
        const h = this.mmioHandlers[kind - PAGE_MMIO_BASE];
        if (h.read32) return h.read32(addr) | 0;
      }
    }
    return (this.read16(addr) | (this.read16(addr + 2) << 16)) | 0;
  }

  write8(addr: number, value: number): void {
    addr >>>= 0;
    const page = addr >>> PAGE_SHIFT;
    const kind = this.pageKind[page];
    if (kind === PAGE_RAM) {
      this.ram[addr] = value;
      if (this.codePages[page]) this.onCodeWrite(page);
    } else if (kind >= PAGE_MMIO_BASE) {
      this.mmioHandlers[kind - PAGE_MMIO_BASE].write8(addr, value & 0xff);
    }
  }

  write16(addr: number, value: number): void {
    addr >>>= 0;
    const page = addr >>> PAGE_SHIFT;
    const kind = this.pageKind[page];
    if ((addr & 0xfff) !== 0xfff) {
      if (kind === PAGE_RAM) {
        this.view.setUint16(addr, value, true);
        if (this.codePages[page]) this.onCodeWrite(page);
        return;
      }
      if (kind >= PAGE_MMIO_BASE) {
        const h = this.mmioHandlers[kind - PAGE_MMIO_BASE];
        if (h.write16) return h.write16(addr, value & 0xffff);
      }
    }
    this.write8(addr, value);
    this.write8(addr + 1, value >>> 8);
  }

  write32(addr: number, value: number): void {
    addr >>>= 0;
    const page = addr >>> PAGE_SHIFT;
    const kind = this.pageKind[page];
    if ((addr & 0xfff) <= 0xffc) {
      if (kind === PAGE_RAM) {
        this.view.setInt32(addr, value, true);
        if (this.codePages[page]) this.onCodeWrite(page);
        return;
      }
      if (kind >= PAGE_MMIO_BASE) {
        const h = this.mmioHandlers[kind - PAGE_MMIO_BASE];
        if (h.write32) return h.write32(addr, value | 0);
      }
    }
    this.write16(addr, value);
    this.write16(addr + 2, value >>> 16);
  }

  /** Bulk copy out of guest memory (DMA, loaders); honours MMIO and holes. */
  readBytes(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; ) {
      const a = (addr + i) >>> 0;
      const kind = this.pageKind[a >>> PAGE_SHIFT];
      const chunk = Math.min(length - i, PAGE_SIZE - (a & 0xfff));
      if (kind <= PAGE_ROM) out.set(this.ram.subarray(a, a + chunk), i);
      else for (let j = 0; j < chunk; j++) out[i + j] = this.read8(a + j);
      i += chunk;
    }
    return out;
  }

  /** Bulk copy into guest memory (DMA, loaders): ROM pages are skipped, code caches invalidated. */
  writeBytes(addr: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; ) {
      const a = (addr + i) >>> 0;
      const page = a >>> PAGE_SHIFT;
      const kind = this.pageKind[page];
      const chunk = Math.min(data.length - i, PAGE_SIZE - (a & 0xfff));
      if (kind === PAGE_RAM) {
        this.ram.set(data.subarray(i, i + chunk), a);
        if (this.codePages[page]) this.onCodeWrite(page);
      } else if (kind >= PAGE_MMIO_BASE) {
        for (let j = 0; j < chunk; j++) this.write8(a + j, data[i + j]);
      }
      i += chunk;
    }
  }

  /** Writes into ROM pages too: how firmware images are loaded. */
  loadRom(addr: number, data: Uint8Array): void {
    this.ram.set(data, addr);
    this.codeWritten(addr, data.length);
  }

  /** Replaces all of RAM (a saved state being loaded). */
  restore(data: Uint8Array): void {
    if (data.length !== this.ram.length) throw new Error(`memory: ${data.length} bytes do not fit ${this.ram.length} bytes of RAM`);
    this.ram.set(data);
    this.codeWritten(0, data.length);
  }

  private codeWritten(addr: number, length: number): void {
    if (length <= 0) return;
    for (let p = addr >>> PAGE_SHIFT, last = (addr + length - 1) >>> PAGE_SHIFT; p <= last; p++) if (this.codePages[p]) this.onCodeWrite(p);
  }
}
