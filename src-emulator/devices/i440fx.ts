/**
 * Intel 82441FX (i440FX) PCI host bridge, bus 0 slot 0.
 *
 * Its PAM registers (0x59-0x5F) decide, per 16/64 KiB block of 0xC0000-0xFFFFF, whether reads and
 * writes go to ROM or to shadow RAM. Both live in the same backing bytes here (see PhysicalMemory),
 * so a block becomes PAGE_RAM when writes are enabled and PAGE_ROM otherwise; firmware that copies
 * its image into shadow RAM before write-protecting it (SeaBIOS) sees exactly what it expects.
 * SMRAM (0x72): there is no SMM, but D_OPEN maps RAM under the VGA window as on the chip.
 */
import { PciDevice } from './pci-bus';
import { PAGE_RAM, PAGE_ROM, type PhysicalMemory } from '../machine/memory';

/** [register, nibble shift, base, size] for every PAM-controlled block. */
const PAM_BLOCKS: [number, number, number, number][] = [[0x59, 4, 0xf0000, 0x10000]];
for (let i = 0; i < 12; i++) {
  PAM_BLOCKS.push([0x5a + (i >> 1), (i & 1) * 4, 0xc0000 + i * 0x4000, 0x4000]);
}

export class I440fxHostBridge extends PciDevice {
  constructor(private readonly mem: PhysicalMemory) {
    super('i440fx', { vendorId: 0x8086, deviceId: 0x1237, classCode: 0x060000, revision: 0x02 });
    for (let r = 0x59; r <= 0x5f; r++) this.writeMask[r] = 0xff;
    this.writeMask[0x59] = 0xf0; // PAM0's low nibble is reserved
    this.writeMask[0x72] = 0x78; // SMRAM: D_OPEN, D_CLS, D_LCK, G_SMRAME
    for (const r of [0x50, 0x51, 0x53, 0x55, 0x56, 0x57, 0x58]) this.writeMask[r] = 0xff;
    this.config[0x72] = 0x02;
    this.config[0x06] = 0x00;
    this.config[0x07] = 0x02; // status: medium DEVSEL
  }

  override writeConfig(offset: number, value: number, size: 1 | 2 | 4): void {
    super.writeConfig(offset, value, size);
    if (offset + size > 0x59 && offset <= 0x5f) this.applyPam();
    if (offset <= 0x72 && offset + size > 0x72) {
      const v = this.config[0x72];
      // D_LCK makes D_OPEN read as 0 until reset; C_BASE_SEG is fixed at A0000.
      this.config[0x72] = (v & 0x10 ? v & ~0x40 : v) | 0x02;
      this.applySmram();
    }
  }

  /**
   * SMRAM D_OPEN lets non-SMM code reach the RAM under the VGA window (0xA0000-0xBFFFF). There is no
   * SMM here, but firmware (SeaBIOS) opens the window to stage its SMM code there and expects RAM.
   */
  private applySmram(): void {
    const open = (this.config[0x72] & 0x40) !== 0;
    if (open && !this.vgaWindowKinds) {
      this.vgaWindowKinds = this.mem.pageKind.slice(0xa0, 0xc0);
      this.mem.setKind(0xa0000, 0x20000, PAGE_RAM);
    } else if (!open && this.vgaWindowKinds) {
      this.mem.pageKind.set(this.vgaWindowKinds, 0xa0);
      this.vgaWindowKinds = null;
    }
  }

  private vgaWindowKinds: Uint8Array | null = null;

  /** The attribute nibble (bit 0 read enable, bit 1 write enable) of the block holding `addr`. */
  pamAttribute(addr: number): number {
    for (const [reg, shift, base, size] of PAM_BLOCKS) {
      if (addr >= base && addr < base + size) return (this.config[reg] >> shift) & 3;
    }
    return 0;
  }

  applyPam(): void {
    for (const [reg, shift, base, size] of PAM_BLOCKS) {
      const attr = (this.config[reg] >> shift) & 3;
      this.mem.setKind(base, size, attr & 2 ? PAGE_RAM : PAGE_ROM);
    }
  }

  override reset(): void {
    super.reset();
    this.applyPam();
    this.applySmram();
  }

  override loadState(state: Parameters<PciDevice['loadState']>[0]): void {
    super.loadState(state);
    this.applyPam();
  }
}
