/**
 * SMBIOS 2.4 (DMTF DSP0134): a 31-byte "_SM_" entry point and structures of types 0, 1, 3, 4, 16,
 * 17, 19, 32 and 127, which is what dmidecode and Linux's DMI scan read.
 */
import { fixChecksum } from './acpi';

class Structure {
  readonly bytes: number[] = [];
  private readonly strings: string[] = [];
  constructor(type: number, handle: number) {
    this.bytes.push(type, 0, handle & 0xff, handle >> 8);
  }
  u8(v: number): this {
    this.bytes.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    this.bytes.push(v & 0xff, (v >> 8) & 0xff);
    return this;
  }
  u32(v: number): this {
    this.bytes.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this;
  }
  /** A string field: its 1-based index, 0 for none. */
  str(s: string): this {
    if (!s) return this.u8(0);
    this.strings.push(s);
    return this.u8(this.strings.length);
  }
  raw(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i]);
    return this;
  }
  encode(): number[] {
    const out = [...this.bytes];
    out[1] = this.bytes.length;
    if (this.strings.length === 0) out.push(0, 0);
    else {
      for (const s of this.strings) out.push(...[...s].map((c) => c.charCodeAt(0) & 0x7f), 0);
      out.push(0);
    }
    return out;
  }
}

export interface SmbiosOptions {
  memoryBytes: number;
  uuid?: Uint8Array;
  biosVendor?: string;
  biosVersion?: string;
  biosDate?: string;
}

/** Entry point (31 bytes) and the structure table to be placed at `tableAddr`. */
export function buildSmbios(tableAddr: number, opts: SmbiosOptions): { entry: Uint8Array; table: Uint8Array } {
  const memKiB = Math.floor(opts.memoryBytes / 1024);
  const memMiB = Math.floor(opts.memoryBytes / (1024 * 1024));
  const structs: Structure[] = [];
  const t0 = new Structure(0, 0x0000)
    .str(opts.biosVendor ?? 'Boxwood')
    .str(opts.biosVersion ?? 'builtin-1.0')
    .u16(0xe800)
    .str(opts.biosDate ?? '01/01/2026')
    .u8(0) // ROM size 64 KiB
    .u32(0x08) // characteristics not supported
    .u32(0)
    .u8(0x01) // ext 1: ACPI
    .u8(0x08) // ext 2: targeted content distribution... keep simple (bit 3)
    .u8(1)
    .u8(0)
    .u8(0xff)
    .u8(0xff);
  structs.push(t0);
  structs.push(
    new Structure(1, 0x0100)
      .str('Boxwood')
      .str('Boxwood PC (i440FX + PIIX3)')
      .str('1.0')
      .str('')
      .raw(opts.uuid ?? new Uint8Array(16))
      .u8(0x06) // wake-up: power switch
      .str('')
      .str('Boxwood'),
  );
  structs.push(
    new Structure(3, 0x0300)
      .str('Boxwood')
      .u8(0x01) // other
      .str('')
      .str('')
      .str('')
      .u8(0x03)
      .u8(0x03)
      .u8(0x03)
      .u8(0x02)
      .u32(0)
      .u8(0)
      .u8(0)
      .u8(0)
      .u8(0),
  );
  structs.push(
    new Structure(4, 0x0400)
      .str('CPU 0')
      .u8(0x03) // central processor
      .u8(0x01) // family: other
      .str('Boxwood')
      .u32(0x0633)
      .u32(0x0201)
      .str('')
      .u8(0)
      .u16(0)
      .u16(2000)
      .u16(2000)
      .u8(0x41) // populated, enabled
      .u8(0x01)
      .u16(0xffff)
      .u16(0xffff)
      .u16(0xffff)
      .str('')
      .str('')
      .str(''),
  );
  structs.push(
    new Structure(16, 0x1000)
      .u8(0x03) // system board
      .u8(0x03) // system memory
      .u8(0x03) // no error correction
      .u32(memKiB)
      .u16(0xfffe)
      .u16(1),
  );
  structs.push(
    new Structure(17, 0x1100)
      .u16(0x1000)
      .u16(0xfffe)
      .u16(64)
      .u16(64)
      .u16(memMiB & 0x7fff)
      .u8(0x09) // DIMM
      .u8(0)
      .str('DIMM 0')
      .str('')
      .u8(0x07) // RAM
      .u16(0x0002)
      .u16(0)
      .str('Boxwood')
      .str('')
      .str('')
      .str(''),
  );
  structs.push(
    new Structure(19, 0x1300)
      .u32(0)
      .u32(Math.max(memKiB - 1, 0))
      .u16(0x1000)
      .u8(1),
  );
  structs.push(new Structure(32, 0x2000).raw([0, 0, 0, 0, 0, 0]).u8(0));
  structs.push(new Structure(127, 0x7f00));

  const encoded = structs.map((s) => s.encode());
  const table = Uint8Array.from(encoded.flat());
  const maxSize = Math.max(...encoded.map((e) => e.length));
  const entry = new Uint8Array(31);
  const dv = new DataView(entry.buffer);
  entry.set(
    [...'_SM_'].map((c) => c.charCodeAt(0)),
    0,
  );
  entry[5] = 0x1f;
  entry[6] = 2;
  entry[7] = 4;
  dv.setUint16(8, maxSize, true);
  entry.set(
    [...'_DMI_'].map((c) => c.charCodeAt(0)),
    16,
  );
  dv.setUint16(22, table.length, true);
  dv.setUint32(24, tableAddr, true);
  dv.setUint16(28, structs.length, true);
  entry[30] = 0x24;
  fixChecksum(entry, 21, 16, 15);
  fixChecksum(entry, 4, 0, 31);
  return { entry, table };
}
