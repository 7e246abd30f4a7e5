/**
 * PCI bus 0 with configuration mechanism #1 (0xCF8 address, 0xCFC-0xCFF data), and `PciDevice`,
 * the base of every PCI function: a 256-byte configuration space with write masks, the command
 * register, and BARs that size and decode like hardware (writing all ones reads back the size mask)
 * and move their MMIO/port mapping when the guest programs them.
 */
import type { IoBus, PortHandlers } from '../machine/io-bus';
import type { PhysicalMemory, MmioHandler } from '../machine/memory';
import type { Device, DeviceState } from '../machine/device';

export interface PciIds {
  vendorId: number;
  deviceId: number;
  /** 24 bits: class << 16 | subclass << 8 | prog-if. */
  classCode: number;
  revision?: number;
  /** 0x00 normal, 0x80 multi-function (function 0 of a multi-function device). */
  headerType?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** INTx pin: 0 none, 1 INTA# .. 4 INTD#. */
  interruptPin?: number;
}

export interface PciBarSpec {
  kind: 'io' | 'mem';
  /** Power of two; at least 4 bytes for I/O and 16 for memory (decoded at page granularity). */
  size: number;
  prefetchable?: boolean;
  /** The bus maps/unmaps these for the device as the BAR moves (or decoding is toggled). */
  mmio?: MmioHandler;
  ports?: PortHandlers;
  /** Called after the mapping moved; `base` null = not decoded. */
  onRemap?(base: number | null, oldBase: number | null): void;
}

const CMD_IO = 1;
const CMD_MEM = 2;

export class PciDevice implements Device {
  readonly config = new Uint8Array(256);
  /** Bits the guest may change, per config byte. */
  protected readonly writeMask = new Uint8Array(256);
  readonly bars: (PciBarSpec | null)[] = [null, null, null, null, null, null];
  /** Currently decoded base of each BAR (null = off). */
  private readonly mapped: (number | null)[] = [null, null, null, null, null, null];
  bus: PciBus | null = null;
  slot = -1;
  fn = 0;

  constructor(
    readonly name: string,
    ids: PciIds,
  ) {
    const c = this.config;
    this.set16(0x00, ids.vendorId);
    this.set16(0x02, ids.deviceId);
    c[0x08] = ids.revision ?? 0;
    c[0x09] = ids.classCode & 0xff;
    c[0x0a] = (ids.classCode >> 8) & 0xff;
    c[0x0b] = (ids.classCode >> 16) & 0xff;
    c[0x0e] = ids.headerType ?? 0;
    this.set16(0x2c, ids.subsystemVendorId ?? 0);
    this.set16(0x2e, ids.subsystemId ?? 0);
    c[0x3d] = ids.interruptPin ?? 0;
    // Command: I/O, memory, bus master, SERR, interrupt disable are writable.
    this.writeMask[0x04] = 0x07 | 0x40;
    this.writeMask[0x05] = 0x05;
    this.writeMask[0x0c] = 0xff; // cache line size
    this.writeMask[0x0d] = 0xff; // latency timer
    this.writeMask[0x3c] = 0xff; // interrupt line
  }

  /** Declares BAR `index` (0-5). Call before the device is attached. */
  defineBar(index: number, spec: PciBarSpec): void {
    if (spec.size & (spec.size - 1) || spec.size < (spec.kind === 'io' ? 4 : 16)) {
      throw new Error(`${this.name}: BAR${index} size ${spec.size} is not a valid power of two`);
    }
    this.bars[index] = spec;
    const low = spec.kind === 'io' ? 1 : spec.prefetchable ? 8 : 0;
    this.set32(0x10 + index * 4, low);
  }

  /** The BAR's base as programmed (whether or not decoding is enabled). */
  barBase(index: number): number {
    const spec = this.bars[index];
    if (!spec) return 0;
    const v = this.get32(0x10 + index * 4);
    return (spec.kind === 'io' ? v & ~3 : v & ~15) >>> 0;
  }

  /** The base the BAR currently decodes at, or null. */
  barMapped(index: number): number | null {
    return this.mapped[index];
  }

  get command(): number {
    return this.get16(0x04);
  }

  // ---- configuration space access (the bus calls these; devices may override to add side effects)

  readConfig(offset: number, size: 1 | 2 | 4): number {
    const c = this.config;
    if (size === 1) return c[offset];
    if (size === 2) return c[offset] | (c[offset + 1] << 8);
    return (c[offset] | (c[offset + 1] << 8) | (c[offset + 2] << 16) | (c[offset + 3] << 24)) >>> 0;
  }

  writeConfig(offset: number, value: number, size: 1 | 2 | 4): void {
    const barIndex = offset >= 0x10 && offset < 0x28 ? (offset - 0x10) >> 2 : -1;
    if (barIndex >= 0) {
      this.writeBar(barIndex, offset, value, size);
      return;
    }
    const oldCommand = this.command;
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      const b = (value >>> (i * 8)) & 0xff;
      if (o === 0x06 || o === 0x07) {
        // Status: error bits are write-one-to-clear.
        this.config[o] &= ~(b & (o === 0x07 ? 0xf9 : 0x00));
        continue;
      }
      const m = this.writeMask[o];
      this.config[o] = (this.config[o] & ~m) | (b & m);
    }
    if (offset <= 0x05 && offset + size > 0x04 && this.command !== oldCommand) this.updateMappings();
  }

  private writeBar(index: number, offset: number, value: number, size: number): void {
    const spec = this.bars[index];
    if (!spec) return; // unimplemented BARs read as zero
    const reg = 0x10 + index * 4;
    let v = this.get32(reg);
    const shift = (offset - reg) * 8;
    const mask = size === 4 ? 0xffffffff : ((1 << (size * 8)) - 1) << shift;
    v = ((v & ~mask) | ((value << shift) & mask)) >>> 0;
    const low = spec.kind === 'io' ? 1 : spec.prefetchable ? 8 : 0;
    const addrMask = ~(spec.size - 1) >>> 0;
    this.set32(reg, ((v & addrMask) | low) >>> 0);
    this.updateMappings();
  }

  /** Recomputes where every BAR decodes and moves the mappings that changed. */
  updateMappings(): void {
    const cmd = this.command;
    for (let i = 0; i < 6; i++) {
      const spec = this.bars[i];
      if (!spec) continue;
      const base = this.barBase(i);
      const enabled = spec.kind === 'io' ? cmd & CMD_IO : cmd & CMD_MEM;
      let next: number | null = enabled && base !== 0 ? base : null;
      // A BAR being sized (all ones) or past the address space does not decode.
      if (next !== null && (spec.kind === 'io' ? next + spec.size > 0x10000 : next + spec.size > 0x1_0000_0000)) next = null;
      const old = this.mapped[i];
      if (next === old) continue;
      this.mapped[i] = next;
      const bus = this.bus;
      if (bus) {
        if (spec.kind === 'mem' && spec.mmio) {
          bus.mem.unmapMmio(spec.mmio);
          if (next !== null) {
            const start = next - (next % 4096);
            const end = Math.ceil((next + spec.size) / 4096) * 4096;
            bus.mem.mapMmio(start, end - start, spec.mmio);
          }
        }
        if (spec.kind === 'io' && spec.ports) {
          if (old !== null) bus.io.unregister(old, spec.size);
          if (next !== null) bus.io.register(next, spec.size, spec.ports);
        }
      }
      spec.onRemap?.(next, old);
    }
  }

  /** Drives this function's INTx# pin (routed by the ISA bridge's PIRQ registers). */
  setIntx(level: boolean): void {
    const pin = this.config[0x3d];
    if (pin === 0 || !this.bus) return;
    if (level && this.command & 0x400) level = false; // interrupt disable
    this.config[0x06] = (this.config[0x06] & ~0x08) | (level ? 0x08 : 0);
    this.bus.setIntx(this, pin, level);
  }

  // ---- helpers

  get16(o: number): number {
    return this.config[o] | (this.config[o + 1] << 8);
  }
  get32(o: number): number {
    return (this.config[o] | (this.config[o + 1] << 8) | (this.config[o + 2] << 16) | (this.config[o + 3] << 24)) >>> 0;
  }
  set16(o: number, v: number): void {
    this.config[o] = v & 0xff;
    this.config[o + 1] = (v >> 8) & 0xff;
  }
  set32(o: number, v: number): void {
    this.set16(o, v & 0xffff);
    this.set16(o + 2, v >>> 16);
  }

  // ---- Device

  private initialConfig: Uint8Array | null = null;

  /** Snapshot of the power-on configuration space, taken when attached. */
  captureInitialConfig(): void {
    this.initialConfig = this.config.slice();
  }

  reset(): void {
    if (this.initialConfig) this.config.set(this.initialConfig);
    this.updateMappings();
  }

  saveState(): DeviceState {
    return { config: this.config.slice() };
  }

  loadState(state: DeviceState): void {
    this.config.set(state.config as Uint8Array);
    this.updateMappings();
  }
}

/** Routes INTx of (slot, pin) to an interrupt line; provided by the ISA bridge (PIIX3). */
export type PciIntxRouter = (slot: number, pin: number, level: boolean) => void;

export class PciBus implements Device {
  readonly name = 'pci';
  private address = 0;
  /** Index slot * 8 + fn. */
  private readonly functions: (PciDevice | null)[] = new Array(256).fill(null);
  intxRouter: PciIntxRouter | null = null;
  /** Assert count per (slot, pin), so that functions sharing a pin wire-OR. */
  private readonly intxLevels = new Map<PciDevice, number>();

  constructor(
    readonly io: IoBus,
    readonly mem: PhysicalMemory,
  ) {
    // Only dword accesses hit CONFIG_ADDRESS; byte accesses fall through (0xCF9 is the reset control register).
    io.register(0xcf8, 1, {
      in32: () => this.address >>> 0,
      out32: (_p, v) => {
        this.address = v & 0x80fffffc;
      },
    });
    io.register(0xcfc, 4, {
      in8: (p) => this.dataRead(p & 3, 1),
      in16: (p) => this.dataRead(p & 3, 2),
      in32: (p) => this.dataRead(p & 3, 4),
      out8: (p, v) => this.dataWrite(p & 3, v, 1),
      out16: (p, v) => this.dataWrite(p & 3, v, 2),
      out32: (p, v) => this.dataWrite(p & 3, v, 4),
    });
  }

  /** Places `dev` at bus 0, `slot`, `fn`. */
  attach(dev: PciDevice, slot: number, fn = 0): PciDevice {
    const i = slot * 8 + fn;
    if (this.functions[i]) throw new Error(`pci: slot ${slot}.${fn} is taken by ${this.functions[i]!.name}`);
    this.functions[i] = dev;
    dev.bus = this;
    dev.slot = slot;
    dev.fn = fn;
    dev.captureInitialConfig();
    return dev;
  }

  /** The first free slot from `from` on (for devices without a fixed slot). */
  freeSlot(from = 3): number {
    for (let s = from; s < 32; s++) if (!this.functions[s * 8]) return s;
    throw new Error('pci: no free slot');
  }

  find(slot: number, fn = 0): PciDevice | null {
    return this.functions[slot * 8 + fn];
  }

  all(): PciDevice[] {
    return this.functions.filter((f): f is PciDevice => f !== null);
  }

  /** Direct configuration access (firmware written in TypeScript uses these). */
  readConfig(bus: number, slot: number, fn: number, offset: number, size: 1 | 2 | 4): number {
    const dev = bus === 0 ? this.functions[slot * 8 + fn] : null;
    if (!dev) return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    return dev.readConfig(offset, size);
  }

  writeConfig(bus: number, slot: number, fn: number, offset: number, value: number, size: 1 | 2 | 4): void {
    const dev = bus === 0 ? this.functions[slot * 8 + fn] : null;
    dev?.writeConfig(offset, value, size);
  }

  private target(): { dev: PciDevice | null; reg: number } | null {
    const a = this.address;
    if (!(a & 0x80000000)) return null;
    const bus = (a >>> 16) & 0xff;
    const devfn = (a >>> 8) & 0xff;
    return { dev: bus === 0 ? this.functions[devfn] : null, reg: a & 0xfc };
  }

  private dataRead(byte: number, size: 1 | 2 | 4): number {
    const t = this.target();
    if (!t || !t.dev) return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    return t.dev.readConfig(t.reg + byte, size);
  }

  private dataWrite(byte: number, value: number, size: 1 | 2 | 4): void {
    const t = this.target();
    if (!t || !t.dev) return;
    t.dev.writeConfig(t.reg + byte, value, size);
  }

  setIntx(dev: PciDevice, pin: number, level: boolean): void {
    const prev = this.intxLevels.get(dev) ?? 0;
    const now = level ? 1 : 0;
    if (prev === now) return;
    this.intxLevels.set(dev, now);
    // Wire-OR with every other function on the same slot/pin.
    let any = false;
    for (const [d, l] of this.intxLevels) if (l && d.slot === dev.slot && d.config[0x3d] === pin) any = true;
    this.intxRouter?.(dev.slot, pin, any);
  }

  reset(): void {
    this.address = 0;
  }

  saveState(): DeviceState {
    return { address: this.address };
  }

  loadState(state: DeviceState): void {
    this.address = state.address as number;
  }
}
