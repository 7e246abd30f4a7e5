import type { Device, DeviceState } from '../machine/device';
import type { IoBus } from '../machine/io-bus';
import type { PhysicalMemory } from '../machine/memory';

/**
 * QEMU's firmware configuration device (docs/specs/fw_cfg.rst in QEMU), the way an external
 * SeaBIOS learns about the machine: a 16-bit selector at 0x510, a byte-wide data port at 0x511,
 * and the DMA interface at 0x514 (a big-endian 64-bit guest address of a control structure,
 * written as two 32-bit halves; writing the low half at 0x518 starts the transfer).
 *
 * Items are byte arrays under a 16-bit key; named files get keys from 0x20 up and are listed in
 * the directory at key 0x19. Contents come from the MachineConfig, so saved states keep only the
 * cursor (selector and offset).
 */
export const FW_CFG_PORT_SEL = 0x510;
export const FW_CFG_PORT_DATA = 0x511;
export const FW_CFG_PORT_DMA = 0x514;

export const FwCfgKey = {
  SIGNATURE: 0x00,
  ID: 0x01,
  UUID: 0x02,
  RAM_SIZE: 0x03,
  NOGRAPHIC: 0x04,
  NB_CPUS: 0x05,
  MACHINE_ID: 0x06,
  KERNEL_ADDR: 0x07,
  KERNEL_SIZE: 0x08,
  KERNEL_CMDLINE: 0x09,
  INITRD_ADDR: 0x0a,
  INITRD_SIZE: 0x0b,
  BOOT_DEVICE: 0x0c,
  NUMA: 0x0d,
  BOOT_MENU: 0x0e,
  MAX_CPUS: 0x0f,
  KERNEL_ENTRY: 0x10,
  KERNEL_DATA: 0x11,
  INITRD_DATA: 0x12,
  CMDLINE_ADDR: 0x13,
  CMDLINE_SIZE: 0x14,
  CMDLINE_DATA: 0x15,
  SETUP_ADDR: 0x16,
  SETUP_SIZE: 0x17,
  SETUP_DATA: 0x18,
  FILE_DIR: 0x19,
  FILE_FIRST: 0x20,
  ACPI_TABLES: 0x8000,
  SMBIOS_ENTRIES: 0x8001,
  IRQ0_OVERRIDE: 0x8002,
  E820_TABLE: 0x8003,
} as const;

const DMA_ERROR = 0x01;
const DMA_READ = 0x02;
const DMA_SKIP = 0x04;
const DMA_SELECT = 0x08;
const DMA_WRITE = 0x10;
/** "QEMU CFG", what a read of the DMA port returns (big-endian). */
const DMA_SIGNATURE_HI = 0x51454d55;
const DMA_SIGNATURE_LO = 0x20434647;
const FILE_NAME_BYTES = 56;

export class FwCfg implements Device {
  readonly name = 'fw-cfg';
  private readonly items = new Map<number, Uint8Array>();
  private readonly files: { name: string; key: number }[] = [];
  private selector = 0;
  private offset = 0;
  private dmaHigh = 0;

  constructor(
    io: IoBus,
    private readonly mem: PhysicalMemory,
  ) {
    this.addBytes(FwCfgKey.SIGNATURE, new TextEncoder().encode('QEMU'));
    // bit 0: traditional interface, bit 1: DMA.
    this.addU32(FwCfgKey.ID, 3);
    this.rebuildDirectory();
    io.register(FW_CFG_PORT_SEL, 2, {
      out16: (_p, v) => this.select(v),
      out8: (p, v) => {
        // Some firmware writes the selector bytewise; only 0x510 low byte selects.
        if (p === FW_CFG_PORT_SEL) this.select(v);
      },
    });
    io.register(FW_CFG_PORT_DATA, 1, { in8: () => this.readByte() });
    io.register(FW_CFG_PORT_DMA, 8, {
      in32: (p) => (p === FW_CFG_PORT_DMA ? swap32(DMA_SIGNATURE_HI) : swap32(DMA_SIGNATURE_LO)) >>> 0,
      in8: (p) => {
        const sig = [0x51, 0x45, 0x4d, 0x55, 0x20, 0x43, 0x46, 0x47];
        return sig[p - FW_CFG_PORT_DMA];
      },
      out32: (p, v) => {
        // x86 is little-endian; the register is big-endian, so the guest writes bswapped halves.
        if (p === FW_CFG_PORT_DMA) this.dmaHigh = swap32(v) >>> 0;
        else if (p === FW_CFG_PORT_DMA + 4) this.runDma(this.dmaHigh * 2 ** 32 + (swap32(v) >>> 0));
      },
    });
  }

  addBytes(key: number, data: Uint8Array): void {
    this.items.set(key, data);
  }

  addU16(key: number, v: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    this.addBytes(key, b);
  }

  addU32(key: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.addBytes(key, b);
  }

  addU64(key: number, v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.addBytes(key, b);
  }

  /** Adds or replaces a named file; returns its key. */
  addFile(name: string, data: Uint8Array): number {
    if (name.length >= FILE_NAME_BYTES) throw new Error(`fw_cfg file name too long: ${name}`);
    let entry = this.files.find((f) => f.name === name);
    if (!entry) {
      entry = { name, key: FwCfgKey.FILE_FIRST + this.files.length };
      this.files.push(entry);
    }
    this.items.set(entry.key, data);
    this.rebuildDirectory();
    return entry.key;
  }

  getFile(name: string): Uint8Array | undefined {
    const f = this.files.find((x) => x.name === name);
    return f ? this.items.get(f.key) : undefined;
  }

  fileNames(): string[] {
    return this.files.map((f) => f.name);
  }

  private rebuildDirectory(): void {
    // SeaBIOS and the kernel's fw_cfg driver expect the directory sorted by name (QEMU keeps it so).
    const sorted = [...this.files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dir = new Uint8Array(4 + 64 * sorted.length);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, sorted.length, false);
    sorted.forEach((f, i) => {
      const o = 4 + 64 * i;
      dv.setUint32(o, this.items.get(f.key)?.length ?? 0, false);
      dv.setUint16(o + 4, f.key, false);
      dir.set(new TextEncoder().encode(f.name), o + 8);
    });
    this.items.set(FwCfgKey.FILE_DIR, dir);
  }

  private select(key: number): void {
    this.selector = key & 0xffff;
    this.offset = 0;
  }

  private current(): Uint8Array | undefined {
    // Bit 14 marks the write channel; it names the same item.
    return this.items.get(this.selector & ~0x4000);
  }

  private readByte(): number {
    const data = this.current();
    if (!data || this.offset >= data.length) return 0;
    return data[this.offset++];
  }

  private runDma(addr: number): void {
    if (addr === 0) return;
    const m = this.mem;
    const control = swap32(m.read32(addr)) >>> 0;
    let length = swap32(m.read32(addr + 4)) >>> 0;
    const target = (swap32(m.read32(addr + 12)) >>> 0) + (swap32(m.read32(addr + 8)) >>> 0) * 2 ** 32;
    if (control & DMA_SELECT) this.select(control >>> 16);
    let status = 0;
    const data = this.current();
    if (control & DMA_READ) {
      const out = new Uint8Array(length);
      if (data && this.offset < data.length) {
        const n = Math.min(length, data.length - this.offset);
        out.set(data.subarray(this.offset, this.offset + n));
        this.offset += n;
      }
      m.writeBytes(target, out);
    } else if (control & DMA_WRITE) {
      // Guest-written items are not used by the firmware paths we support; accept and drop.
      this.offset += length;
    } else if (control & DMA_SKIP) {
      this.offset += length;
    } else if (control & ~(DMA_SELECT | 0xffff0000)) {
      status = DMA_ERROR;
    }
    length = 0;
    // Completion: control becomes 0 (or the error bit), as QEMU does.
    m.write32(addr, swap32(status));
  }

  reset(): void {
    this.selector = 0;
    this.offset = 0;
    this.dmaHigh = 0;
  }

  saveState(): DeviceState {
    return { selector: this.selector, offset: this.offset, dmaHigh: this.dmaHigh };
  }

  loadState(state: DeviceState): void {
    this.selector = (state.selector as number) ?? 0;
    this.offset = (state.offset as number) ?? 0;
    this.dmaHigh = (state.dmaHigh as number) ?? 0;
  }
}

function swap32(v: number): number {
  return ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff) | 0;
}
