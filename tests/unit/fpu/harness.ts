/**
 * A small but real FpuHost and a byte-array FpuMemoryOperand for driving the x87 unit directly.
 */
import type { FpuHost, FpuMemoryOperand } from '../../../src-emulator/cpu/fpu-host';
import { Fpu } from '../../../src-emulator/cpu/fpu';
import type { F80 } from '../../../src-emulator/cpu/fpu-float80';

export class CpuFault extends Error {
  constructor(readonly vector: number) {
    super(`CPU exception ${vector}`);
  }
}

export class TestHost implements FpuHost {
  numericErrorNative = true;
  protectedMode = true;
  operandSize32 = true;
  instructionSelector = 0x0008;
  instructionOffset = 0x1000;
  ferr = false;
  ferrChanges = 0;
  eflags = 0x2;
  ax = 0;
  raiseException(vector: number): never {
    throw new CpuFault(vector);
  }
  setFerr(asserted: boolean): void {
    if (asserted !== this.ferr) this.ferrChanges++;
    this.ferr = asserted;
  }
  setEflagsZPC(zf: boolean, pf: boolean, cf: boolean): void {
    // OF, SF, AF cleared as FCOMI does.
    this.eflags = (this.eflags & ~0x8d5) | (zf ? 0x40 : 0) | (pf ? 4 : 0) | (cf ? 1 : 0);
  }
  setAx(value: number): void {
    this.ax = value & 0xffff;
  }
  getEflags(): number {
    return this.eflags;
  }
}

/** Memory operand over a byte array at `offset` (the effective address, which is also the array index). */
export class ByteMem implements FpuMemoryOperand {
  readonly bytes: Uint8Array;
  constructor(
    size = 512,
    readonly offset = 0,
    readonly selector = 0x0010,
  ) {
    this.bytes = new Uint8Array(offset + size);
  }
  read8(o: number): number {
    return this.bytes[this.offset + o];
  }
  read16(o: number): number {
    return this.read8(o) | (this.read8(o + 1) << 8);
  }
  read32(o: number): number {
    return (this.read16(o) | (this.read16(o + 2) << 16)) >>> 0;
  }
  write8(o: number, v: number): void {
    this.bytes[this.offset + o] = v & 0xff;
  }
  write16(o: number, v: number): void {
    this.write8(o, v);
    this.write8(o + 1, v >> 8);
  }
  write32(o: number, v: number): void {
    this.write16(o, v);
    this.write16(o + 2, v >>> 16);
  }
  setF80(v: F80, o = 0): void {
    const lo = Number(v.sig & 0xffffffffn);
    const hi = Number(v.sig >> 32n);
    this.write32(o, lo);
    this.write32(o + 4, hi);
    this.write16(o + 8, v.se);
  }
  getF80(o = 0): F80 {
    const lo = BigInt(this.read32(o));
    const hi = BigInt(this.read32(o + 4));
    return { se: this.read16(o + 8), sig: (hi << 32n) | lo };
  }
  setF64(d: number, o = 0): void {
    const dv = new DataView(this.bytes.buffer);
    dv.setFloat64(this.offset + o, d, true);
  }
  getF64(o = 0): number {
    return new DataView(this.bytes.buffer).getFloat64(this.offset + o, true);
  }
  setF32(d: number, o = 0): void {
    new DataView(this.bytes.buffer).setFloat32(this.offset + o, d, true);
  }
  getF32(o = 0): number {
    return new DataView(this.bytes.buffer).getFloat32(this.offset + o, true);
  }
  hex(len: number, o = 0): string {
    return Array.from(this.bytes.subarray(this.offset + o, this.offset + o + len), (b) => b.toString(16).padStart(2, '0')).join(' ');
  }
}

export function newFpu(): { fpu: Fpu; host: TestHost; mem: ByteMem } {
  const host = new TestHost();
  const fpu = new Fpu(host);
  fpu.execute(0xdb, 0xe3, null); // FNINIT
  return { fpu, host, mem: new ByteMem() };
}

/** Runs one x87 instruction given as its escape opcode and ModRM (memory forms use mod = 0). */
export function x(fpu: Fpu, opcode: number, modrm: number, mem: FpuMemoryOperand | null = null): void {
  fpu.execute(opcode, modrm, (modrm & 0xc0) === 0xc0 ? null : mem);
}

/** ModRM for a memory form with reg field r. */
export const M = (r: number): number => (r << 3) | 0x00;

export function f80hex(v: F80): string {
  return v.se.toString(16).padStart(4, '0') + ':' + v.sig.toString(16).padStart(16, '0');
}

export function parseF80(h: string): F80 {
  const [se, sig] = h.split(':');
  return { se: parseInt(se, 16), sig: BigInt('0x' + sig) };
}

/** Loads an 80-bit value onto the stack through FLD m80. */
export function push80(fpu: Fpu, v: F80): void {
  const m = new ByteMem(16);
  m.setF80(v);
  x(fpu, 0xdb, M(5), m);
}

/** Loads a double through FLD m64. */
export function pushF64(fpu: Fpu, d: number): void {
  const m = new ByteMem(16);
  m.setF64(d);
  x(fpu, 0xdd, M(0), m);
}

/** FSTP m80 and return the value. */
export function pop80(fpu: Fpu): F80 {
  const m = new ByteMem(16);
  x(fpu, 0xdb, M(7), m);
  return m.getF80();
}

/** FLDCW with a value. */
export function setCw(fpu: Fpu, cw: number): void {
  const m = new ByteMem(4);
  m.write16(0, cw);
  x(fpu, 0xd9, M(5), m);
}

/** The exact value of a finite F80 as a JS number (for readable asserts on simple values). */
export function toNumber(v: F80): number {
  const exp = v.se & 0x7fff;
  const s = v.se & 0x8000 ? -1 : 1;
  if (exp === 0x7fff) return v.sig << 1n === 0n || v.sig === 0x8000000000000000n ? s * Infinity : NaN;
  return s * Number(v.sig) * Math.pow(2, (exp === 0 ? 1 : exp) - 16383 - 63);
}
