/**
 * Integer instruction semantics: prefix decoding, ModRM/SIB addressing, the one-byte and 0F opcode
 * maps. Protected-mode control transfers and descriptor loads are in system.ts.
 */
import type { Cpu } from './cpu';
import {
  AF,
  CF,
  CR0_EM,
  CR0_MP,
  CR0_TS,
  CR4_PCE,
  CR4_TSD,
  CS,
  DF,
  DS,
  EAX,
  EBP,
  EBX,
  ECX,
  EDI,
  EDX,
  ES,
  ESI,
  ESP,
  EXC_BR,
  EXC_DB,
  EXC_DE,
  EXC_NM,
  FS,
  GS,
  IF,
  INT_EXCEPTION,
  LZ_ADD,
  LZ_DEC,
  LZ_INC,
  LZ_LOGIC,
  LZ_NONE,
  LZ_RES,
  LZ_SUB,
  OF,
  PF,
  SF,
  SS,
  TF,
  ZF,
} from './constants';
import * as Sys from './system';


/** Byte offset of 8-bit register `r` (AL CL DL BL AH CH DH BH) in the register file's byte view. */
const R8 = new Uint8Array([0, 4, 8, 12, 1, 5, 9, 13]);
function maskOf(size: number): number {
  return size === 32 ? -1 : size === 16 ? 0xffff : 0xff;
}
const MAX_REP_ITERATIONS = 4096;

// -----------------------------------------------------------------------------------------------
// Operand access

export function getReg(c: Cpu, size: number, r: number): number {
  return size === 8 ? c.r8[R8[r]] : size === 16 ? c.r16[r << 1] : c.regs[r] >>> 0;
}
export function setReg(c: Cpu, size: number, r: number, v: number): void {
  if (size === 8) c.r8[R8[r]] = v;
  else if (size === 16) c.r16[r << 1] = v;
  else c.regs[r] = v;
}

/** Reads the ModRM byte and, for memory forms, computes the effective address into c.eaSeg/c.eaOff. */
export function decodeModrm(c: Cpu): number {
  const modrm = c.fetch8();
  c.modrm = modrm;
  if (modrm < 0xc0) computeEa(c, modrm);
  return modrm;
}

export function computeEa(c: Cpu, modrm: number): void {
  const mod = modrm >> 6;
  const rm = modrm & 7;
  const regs = c.regs;
  let seg = DS;
  let off: number;
  if (!c.addrSize32) {
    const r16 = c.r16;
    switch (rm) {
      case 0:
        off = r16[EBX << 1] + r16[ESI << 1];
        break;
      case 1:
        off = r16[EBX << 1] + r16[EDI << 1];
        break;
      case 2:
        off = r16[EBP << 1] + r16[ESI << 1];
        seg = SS;
        break;
      case 3:
        off = r16[EBP << 1] + r16[EDI << 1];
        seg = SS;
        break;
      case 4:
        off = r16[ESI << 1];
        break;
      case 5:
        off = r16[EDI << 1];
        break;
      case 6:
        if (mod === 0) off = c.fetch16();
        else {
          off = r16[EBP << 1];
          seg = SS;
        }
        break;
      default:
        off = r16[EBX << 1];
        break;
    }
    if (mod === 1) off += (c.fetch8() << 24) >> 24;
    else if (mod === 2) off += c.fetch16();
    c.eaOff = off & 0xffff;
  } else {
    if (rm === 4) {
      const sib = c.fetch8();
      const base = sib & 7;
      const index = (sib >> 3) & 7;
      if (base === 5 && mod === 0) off = c.fetch32();
      else {
        off = regs[base];
        if (base === ESP || base === EBP) seg = SS;
      }
      if (index !== 4) off += regs[index] << (sib >> 6);
    } else if (rm === 5 && mod === 0) {
      off = c.fetch32();
    } else {
      off = regs[rm];
      if (rm === EBP) seg = SS;
    }
    if (mod === 1) off += (c.fetch8() << 24) >> 24;
    else if (mod === 2) off += c.fetch32();
    c.eaOff = off | 0;
  }
  c.eaSeg = c.segOverride >= 0 ? c.segOverride : seg;
}

function rmRead(c: Cpu, size: number): number {
  if (c.modrm >= 0xc0) return getReg(c, size, c.modrm & 7);
  return c.readSized(size, c.eaSeg, c.eaOff);
}
function rmWrite(c: Cpu, size: number, v: number): void {
  if (c.modrm >= 0xc0) setReg(c, size, c.modrm & 7, v);
  else c.writeSized(size, c.eaSeg, c.eaOff, v);
}
/** For read-modify-write: checks the write is allowed before reading (so a fault leaves no trace). */
function rmReadForWrite(c: Cpu, size: number): number {
  if (c.modrm >= 0xc0) return getReg(c, size, c.modrm & 7);
  const len = size >> 3;
  const lin = c.linW(c.eaSeg, c.eaOff, len);
  c.linR(c.eaSeg, c.eaOff, len);
  c.probeWrite(lin, len);
  return size === 8 ? c.readLin8(lin) : size === 16 ? c.readLin16(lin) : c.readLin32(lin) >>> 0;
}
function immediate(c: Cpu, size: number): number {
  return size === 8 ? c.fetch8() : size === 16 ? c.fetch16() : c.fetch32() >>> 0;
}
function opSize(c: Cpu): number {
  return c.opSize32 ? 32 : 16;
}

// -----------------------------------------------------------------------------------------------
// Arithmetic

export function alu(c: Cpu, op: number, a: number, b: number, size: number): number {
  const mask = maskOf(size);
  a = (a & mask) >>> 0;
  b = (b & mask) >>> 0;
  let r: number;
  switch (op) {
    case 0: // ADD
      r = ((a + b) & mask) >>> 0;
      c.lzOp = LZ_ADD;
      c.lzC = 0;
      break;
    case 1: // OR
      r = (a | b) >>> 0;
      c.lzOp = LZ_LOGIC;
      break;
    case 2: {
      // ADC
      const cin = c.getCF();
      r = ((a + b + cin) & mask) >>> 0;
      c.lzOp = LZ_ADD;
      c.lzC = cin;
      break;
    }
    case 3: {
      // SBB
      const cin = c.getCF();
      r = ((a - b - cin) & mask) >>> 0;
      c.lzOp = LZ_SUB;
      c.lzC = cin;
      break;
    }
    case 4: // AND
      r = (a & b) >>> 0;
      c.lzOp = LZ_LOGIC;
      break;
    case 6: // XOR
      r = (a ^ b) >>> 0;
      c.lzOp = LZ_LOGIC;
      break;
    default: // SUB, CMP
      r = ((a - b) & mask) >>> 0;
      c.lzOp = LZ_SUB;
      c.lzC = 0;
      break;
  }
  if (c.lzOp === LZ_LOGIC) c.flags &= ~(CF | OF | AF);
  c.lzA = a;
  c.lzB = b;
  c.lzR = r;
  c.lzSize = size;
  return r;
}

/** alu() for 32-bit operands (the common case), without the size dispatch. Returns a signed int32. */
function alu32(c: Cpu, op: number, a: number, b: number): number {
  let r: number;
  a >>>= 0;
  b >>>= 0;
  switch (op) {
    case 0:
      r = (a + b) >>> 0;
      c.lzOp = LZ_ADD;
      c.lzC = 0;
      break;
    case 1:
      r = (a | b) >>> 0;
      c.lzOp = LZ_LOGIC;
      break;
    case 2: {
      const cin = c.getCF();
      r = (a + b + cin) >>> 0;
      c.lzOp = LZ_ADD;
      c.lzC = cin;
      break;
    }
    case 3: {
      const cin = c.getCF();
      r = (a - b - cin) >>> 0;
      c.lzOp = LZ_SUB;
      c.lzC = cin;
      break;
    }
    case 4:
      r = (a & b) >>> 0;
      c.lzOp = LZ_LOGIC;
      break;
    case 6:
      r = (a ^ b) >>> 0;
      c.lzOp = LZ_LOGIC;
      break;
    default:
      r = (a - b) >>> 0;
      c.lzOp = LZ_SUB;
      c.lzC = 0;
      break;
  }
  c.lzA = a | 0;
  c.lzB = b | 0;
  c.lzR = r | 0;
  c.lzSize = 32;
  return r | 0;
}

function logicFlags(c: Cpu, r: number, size: number): void {
  c.flags &= ~(CF | OF | AF);
  c.lzOp = LZ_LOGIC;
  c.lzR = (r & maskOf(size)) >>> 0;
  c.lzSize = size;
}

function incDec(c: Cpu, a: number, size: number, dec: boolean): number {
  const mask = maskOf(size);
  if (c.lzOp !== LZ_NONE) {
    // CF survives INC/DEC: capture it in `flags` (the other arithmetic bits there are recomputed
    // from the lazy record, so they may stay stale).
    c.flags = (c.flags & ~CF) | c.getCF();
  }
  a = (a & mask) >>> 0;
  const r = ((dec ? a - 1 : a + 1) & mask) >>> 0;
  c.lzOp = dec ? LZ_DEC : LZ_INC;
  c.lzA = a;
  c.lzB = 1;
  c.lzR = r;
  c.lzSize = size;
  return r;
}

function incDec32(c: Cpu, a: number, dec: boolean): number {
  if (c.lzOp !== LZ_NONE) c.flags = (c.flags & ~CF) | c.getCF();
  a >>>= 0;
  const r = (dec ? a - 1 : a + 1) >>> 0;
  c.lzOp = dec ? LZ_DEC : LZ_INC;
  c.lzA = a | 0;
  c.lzB = 1;
  c.lzR = r | 0;
  c.lzSize = 32;
  return r | 0;
}

/** Linear address of a 32-bit read-modify-write memory operand, checked for reading and writing. */
function rmLin32(c: Cpu): number {
  const lin = c.linW(c.eaSeg, c.eaOff, 4);
  c.linR(c.eaSeg, c.eaOff, 4);
  c.probeWrite(lin, 4);
  return lin;
}

/** SHL/SHR/SAL/SAR of a 32-bit value by 1..31 (the common case of group 2). */
function shift32(c: Cpu, kind: number, a: number, n: number): number {
  a >>>= 0;
  let r: number;
  let cf: number;
  let of: number;
  if (kind === 5) {
    r = a >>> n;
    cf = (a >>> (n - 1)) & 1;
    of = ((r >>> 31) ^ (r >>> 30)) & 1;
  } else if (kind === 7) {
    r = ((a | 0) >> n) >>> 0;
    cf = ((a | 0) >> (n - 1)) & 1;
    of = 0;
  } else {
    r = (a << n) >>> 0;
    cf = (a >>> (32 - n)) & 1;
    of = (r >>> 31) ^ cf;
  }
  r |= 0;
  c.setResultFlags(r, 32, cf, of, 0);
  return r;
}

/** Group 2 shifts and rotates; returns the result (the operand unchanged when the count is 0). */
function shift(c: Cpu, op: number, a: number, count: number, size: number): number {
  count &= 0x1f;
  const mask = maskOf(size);
  a = (a & mask) >>> 0;
  if (count === 0) return a;
  const msb = size - 1;
  let r: number;
  let cf: number;
  let of: number;
  switch (op) {
    case 0: {
      // ROL
      const n = count & msb;
      r = n === 0 ? a : (((a << n) | (a >>> (size - n))) & mask) >>> 0;
      cf = r & 1;
      of = ((r >>> msb) & 1) ^ cf;
      break;
    }
    case 1: {
      // ROR
      const n = count & msb;
      r = n === 0 ? a : (((a >>> n) | (a << (size - n))) & mask) >>> 0;
      cf = (r >>> msb) & 1;
      of = ((r >>> msb) ^ (r >>> (msb - 1))) & 1;
      break;
    }
    case 2: {
      // RCL: rotate through CF over size+1 bits
      const n = count % (size + 1);
      cf = c.getCF();
      r = a;
      for (let i = 0; i < n; i++) {
        const out = (r >>> msb) & 1;
        r = (((r << 1) | cf) & mask) >>> 0;
        cf = out;
      }
      of = ((r >>> msb) & 1) ^ cf;
      break;
    }
    case 3: {
      // RCR
      const n = count % (size + 1);
      cf = c.getCF();
      r = a;
      of = ((r >>> msb) & 1) ^ cf;
      for (let i = 0; i < n; i++) {
        const out = r & 1;
        r = ((r >>> 1) | (cf << msb)) >>> 0;
        cf = out;
      }
      if (n !== 1) of = ((r >>> msb) ^ (r >>> (msb - 1))) & 1;
      break;
    }
    case 4:
    case 6: // SHL/SAL
      if (count > size) {
        r = 0;
        cf = 0;
      } else {
        cf = (a >>> (size - count)) & 1;
        r = count === size ? 0 : ((a << count) & mask) >>> 0;
      }
      of = ((r >>> msb) & 1) ^ cf;
      c.setResultFlags(r, size, cf, of, 0);
      return r;
    case 5: // SHR
      if (count > size) {
        r = 0;
        cf = 0;
      } else {
        cf = (a >>> (count - 1)) & 1;
        r = count === size ? 0 : a >>> count;
      }
      // OF = the top two result bits XORed: MSB(original) for a 1-bit shift (defined case).
      of = ((r >>> msb) ^ (r >>> (msb - 1))) & 1;
      c.setResultFlags(r, size, cf, of, 0);
      return r;
    default: {
      // SAR
      const sa = (a << (32 - size)) >> (32 - size);
      if (count >= size) {
        r = sa < 0 ? mask >>> 0 : 0;
        cf = sa < 0 ? 1 : 0;
      } else {
        r = ((sa >> count) & mask) >>> 0;
        cf = (sa >> (count - 1)) & 1;
      }
      c.setResultFlags(r, size, cf, 0, 0);
      return r;
    }
  }
  // Rotates change only CF and OF.
  c.materializeFlags();
  c.flags = (c.flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
  return r;
}

/** Results of the last mul32/imul32 (kept in module variables to avoid allocating). */
let mulLo = 0;
let mulHi = 0;
function mul32(a: number, b: number): void {
  a >>>= 0;
  b >>>= 0;
  const aL = a & 0xffff;
  const aH = a >>> 16;
  const bL = b & 0xffff;
  const bH = b >>> 16;
  const ll = aL * bL;
  const lh = aL * bH;
  const hl = aH * bL;
  const hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  mulLo = ((mid << 16) | (ll & 0xffff)) >>> 0;
  mulHi = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}
function imul32(a: number, b: number): void {
  mul32(a, b);
  let h = mulHi;
  if ((a | 0) < 0) h -= b >>> 0;
  if ((b | 0) < 0) h -= a >>> 0;
  mulHi = h >>> 0;
}

let divQ = 0;
let divR = 0;
/** Unsigned (hi:lo) / d for hi < d, so the quotient fits 32 bits; exact in doubles (16-bit long division). */
function udiv64(hi: number, lo: number, d: number): void {
  let r = hi;
  const t1 = r * 65536 + (lo >>> 16);
  const q1 = Math.floor(t1 / d);
  r = t1 - q1 * d;
  const t0 = r * 65536 + (lo & 0xffff);
  const q0 = Math.floor(t0 / d);
  divR = t0 - q0 * d;
  divQ = q1 * 65536 + q0;
}

/** IMUL with a truncated result (2- and 3-operand forms): returns result; sets CF=OF on overflow. */
function imulTrunc(c: Cpu, a: number, b: number, size: number): number {
  let r: number;
  let overflow: boolean;
  if (size === 16) {
    const p = ((a << 16) >> 16) * ((b << 16) >> 16);
    r = p & 0xffff;
    overflow = p !== (r << 16) >> 16;
  } else {
    // The exact product differs from its low 32 bits exactly when it does not fit (beyond 2^53
    // the double is inexact but can never equal an int32).
    const lo = Math.imul(a, b);
    overflow = (a | 0) * (b | 0) !== lo;
    r = lo;
  }
  c.setResultFlags(r, size, overflow ? 1 : 0, overflow ? 1 : 0, 0);
  return r;
}

function group3(c: Cpu, size: number): void {
  const reg = (c.modrm >> 3) & 7;
  switch (reg) {
    case 0:
    case 1: {
      // TEST
      const a = rmRead(c, size);
      logicFlags(c, a & immediate(c, size), size);
      return;
    }
    case 2: // NOT
      rmWrite(c, size, ~rmReadForWrite(c, size));
      return;
    case 3: // NEG
      rmWrite(c, size, alu(c, 5, 0, rmReadForWrite(c, size), size));
      return;
    case 4: {
      // MUL
      const b = rmRead(c, size);
      if (size === 8) {
        const r = c.r8[0] * b;
        c.r16[0] = r;
        const hi = r >>> 8 ? 1 : 0;
        c.setResultFlags(r & 0xff, 8, hi, hi, 0);
      } else if (size === 16) {
        const r = c.r16[0] * b;
        c.r16[0] = r;
        c.r16[EDX << 1] = r >>> 16;
        const hi = r >>> 16 ? 1 : 0;
        c.setResultFlags(r & 0xffff, 16, hi, hi, 0);
      } else {
        mul32(c.regs[EAX], b);
        c.regs[EAX] = mulLo;
        c.regs[EDX] = mulHi;
        c.setResultFlags(mulLo, 32, mulHi ? 1 : 0, mulHi ? 1 : 0, 0);
      }
      return;
    }
    case 5: {
      // IMUL
      const b = rmRead(c, size);
      if (size === 8) {
        const r = ((c.r8[0] << 24) >> 24) * ((b << 24) >> 24);
        c.r16[0] = r;
        const o = r !== (r << 24) >> 24 ? 1 : 0;
        c.setResultFlags(r & 0xff, 8, o, o, 0);
      } else if (size === 16) {
        const r = ((c.r16[0] << 16) >> 16) * ((b << 16) >> 16);
        c.r16[0] = r;
        c.r16[EDX << 1] = r >> 16;
        const o = r !== (r << 16) >> 16 ? 1 : 0;
        c.setResultFlags(r & 0xffff, 16, o, o, 0);
      } else {
        imul32(c.regs[EAX], b);
        c.regs[EAX] = mulLo;
        c.regs[EDX] = mulHi;
        const o = (mulHi | 0) !== (mulLo | 0) >> 31 ? 1 : 0;
        c.setResultFlags(mulLo, 32, o, o, 0);
      }
      return;
    }
    case 6: {
      // DIV
      const b = rmRead(c, size);
      if (b === 0) c.fault(EXC_DE);
      if (size === 8) {
        const n = c.r16[0];
        const q = Math.floor(n / b);
        if (q > 0xff) c.fault(EXC_DE);
        c.r8[0] = q;
        c.r8[1] = n % b;
      } else if (size === 16) {
        const n = ((c.r16[EDX << 1] << 16) | c.r16[0]) >>> 0;
        const q = Math.floor(n / b);
        if (q > 0xffff) c.fault(EXC_DE);
        c.r16[0] = q;
        c.r16[EDX << 1] = n % b;
      } else {
        const hi = c.regs[EDX] >>> 0;
        const lo = c.regs[EAX] >>> 0;
        if (hi === 0) {
          c.regs[EAX] = Math.floor(lo / b);
          c.regs[EDX] = lo % b;
        } else {
          if (hi >= b) c.fault(EXC_DE);
          udiv64(hi, lo, b);
          c.regs[EAX] = divQ;
          c.regs[EDX] = divR;
        }
      }
      return;
    }
    default: {
      // IDIV
      const b = rmRead(c, size);
      if (b === 0) c.fault(EXC_DE);
      if (size === 8) {
        const n = (c.r16[0] << 16) >> 16;
        const d = (b << 24) >> 24;
        const q = Math.trunc(n / d);
        if (q > 127 || q < -128) c.fault(EXC_DE);
        c.r8[0] = q;
        c.r8[1] = n % d;
      } else if (size === 16) {
        const n = (c.r16[EDX << 1] << 16) | c.r16[0];
        const d = (b << 16) >> 16;
        const q = Math.trunc(n / d);
        if (q > 32767 || q < -32768) c.fault(EXC_DE);
        c.r16[0] = q;
        c.r16[EDX << 1] = n % d;
      } else {
        let hi = c.regs[EDX] >>> 0;
        let lo = c.regs[EAX] >>> 0;
        const nneg = (c.regs[EDX] | 0) < 0;
        if (nneg) {
          // |dividend| as a 64-bit two's complement negation.
          lo = (~lo + 1) >>> 0;
          hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
        }
        const dneg = (b | 0) < 0;
        const ad = dneg ? (-(b | 0)) >>> 0 : b >>> 0;
        if (hi >= ad) c.fault(EXC_DE);
        udiv64(hi, lo, ad);
        if (nneg !== dneg ? divQ > 0x80000000 : divQ > 0x7fffffff) c.fault(EXC_DE);
        c.regs[EAX] = nneg !== dneg ? -divQ : divQ;
        c.regs[EDX] = nneg ? -divR : divR;
      }
      return;
    }
  }
}

// -----------------------------------------------------------------------------------------------
// Control flow helpers

/** Near jump target: truncated to the operand size, checked against the CS limit. */
function jumpNear(c: Cpu, target: number): void {
  if (!c.opSize32) target &= 0xffff;
  target >>>= 0;
  if (target > c.segLimit[CS]) c.gp(0);
  c.eip = target;
}

function jcc(c: Cpu, cond: boolean, disp: number): void {
  if (cond) jumpNear(c, c.eip + disp);
}

// -----------------------------------------------------------------------------------------------
// String instructions

function advance(c: Cpu, reg: number, delta: number): void {
  if (c.addrSize32) c.regs[reg] = c.regs[reg] + delta;
  else c.r16[reg << 1] = c.r16[reg << 1] + delta;
}
function idx(c: Cpu, reg: number): number {
  return c.addrSize32 ? c.regs[reg] >>> 0 : c.r16[reg << 1];
}
function counter(c: Cpu): number {
  return c.addrSize32 ? c.regs[ECX] >>> 0 : c.r16[ECX << 1];
}
function setCounter(c: Cpu, v: number): void {
  if (c.addrSize32) c.regs[ECX] = v;
  else c.r16[ECX << 1] = v;
}

/** Runs a string operation `body` once or under REP; long REPs yield (EIP back at the instruction). */
function stringOp(c: Cpu, body: (c: Cpu) => boolean, conditional: boolean): void {
  if (!c.repPrefix) {
    body(c);
    return;
  }
  let n = counter(c);
  let budget = MAX_REP_ITERATIONS;
  while (n !== 0) {
    const zf = body(c);
    n = (n - 1) >>> 0;
    setCounter(c, n);
    if (conditional && (c.repPrefix === 1 ? !zf : zf)) return;
    if (--budget === 0 && n !== 0) {
      c.eip = c.startEip;
      return;
    }
  }
}

function strSrcSeg(c: Cpu): number {
  return c.segOverride >= 0 ? c.segOverride : DS;
}

let strSize = 8;
function movsBody(c: Cpu): boolean {
  const size = strSize;
  const d = c.flags & DF ? -(size >> 3) : size >> 3;
  c.writeSized(size, ES, idx(c, EDI), c.readSized(size, strSrcSeg(c), idx(c, ESI)));
  advance(c, ESI, d);
  advance(c, EDI, d);
  return false;
}
function cmpsBody(c: Cpu): boolean {
  const size = strSize;
  const d = c.flags & DF ? -(size >> 3) : size >> 3;
  const a = c.readSized(size, strSrcSeg(c), idx(c, ESI));
  const b = c.readSized(size, ES, idx(c, EDI));
  alu(c, 7, a, b, size);
  advance(c, ESI, d);
  advance(c, EDI, d);
  return c.lzR === 0;
}
function stosBody(c: Cpu): boolean {
  const size = strSize;
  const d = c.flags & DF ? -(size >> 3) : size >> 3;
  c.writeSized(size, ES, idx(c, EDI), getReg(c, size, EAX));
  advance(c, EDI, d);
  return false;
}
function lodsBody(c: Cpu): boolean {
  const size = strSize;
  const d = c.flags & DF ? -(size >> 3) : size >> 3;
  setReg(c, size, EAX, c.readSized(size, strSrcSeg(c), idx(c, ESI)));
  advance(c, ESI, d);
  return false;
}
function scasBody(c: Cpu): boolean {
  const size = strSize;
  const d = c.flags & DF ? -(size >> 3) : size >> 3;
  const b = c.readSized(size, ES, idx(c, EDI));
  alu(c, 7, getReg(c, size, EAX), b, size);
  advance(c, EDI, d);
  return c.lzR === 0;
}
function insBody(c: Cpu): boolean {
  const size = strSize;
  const d = c.flags & DF ? -(size >> 3) : size >> 3;
  const port = c.r16[EDX << 1];
  const off = idx(c, EDI);
  // The destination is checked before the port is read.
  const lin = c.linW(ES, off, size >> 3);
  c.probeWrite(lin, size >> 3);
  const v = size === 8 ? c.io.in8(port) : size === 16 ? c.io.in16(port) : c.io.in32(port);
  c.writeSized(size, ES, off, v);
  advance(c, EDI, d);
  return false;
}
function outsBody(c: Cpu): boolean {
  const size = strSize;
  const d = c.flags & DF ? -(size >> 3) : size >> 3;
  const port = c.r16[EDX << 1];
  const v = c.readSized(size, strSrcSeg(c), idx(c, ESI));
  if (size === 8) c.io.out8(port, v);
  else if (size === 16) c.io.out16(port, v);
  else c.io.out32(port, v);
  advance(c, ESI, d);
  return false;
}

/** REP MOVS/STOS fast path: whole runs within one RAM page pair, forward direction, no paging faults. */
function fastRepStos(c: Cpu, size: number): boolean {
  if (c.flags & DF || c.lockPrefix) return false;
  const bytes = size >> 3;
  let n = counter(c);
  if (n === 0) return true;
  const off = idx(c, EDI);
  const pageLeft = (0x1000 - ((c.segBase[ES] + off) & 0xfff)) / bytes;
  const k = Math.min(n, Math.floor(pageLeft), MAX_REP_ITERATIONS);
  if (k < 4) return false;
  if (!c.addrSize32 && off + k * bytes > 0x10000) return false;
  const lin = c.linW(ES, off, k * bytes);
  const p = c.translate(lin, 1);
  const mem = c.mem;
  const page = p >>> 12;
  if (mem.pageKind[page] !== 0 || mem.codePages[page] || p + k * bytes > mem.ram.length) return false;
  const v = getReg(c, size, EAX);
  if (size === 8) mem.ram.fill(v, p, p + k);
  else for (let i = 0; i < k; i++) {
    const q = p + i * bytes;
    mem.ram[q] = v;
    mem.ram[q + 1] = v >>> 8;
    if (bytes === 4) {
      mem.ram[q + 2] = v >>> 16;
      mem.ram[q + 3] = v >>> 24;
    }
  }
  advance(c, EDI, k * bytes);
  n -= k;
  setCounter(c, n);
  if (n !== 0) c.eip = c.startEip;
  return true;
}

function fastRepMovs(c: Cpu, size: number): boolean {
  if (c.flags & DF) return false;
  const bytes = size >> 3;
  let n = counter(c);
  if (n === 0) return true;
  const si = idx(c, ESI);
  const di = idx(c, EDI);
  const src = strSrcSeg(c);
  const srcLeft = (0x1000 - ((c.segBase[src] + si) & 0xfff)) / bytes;
  const dstLeft = (0x1000 - ((c.segBase[ES] + di) & 0xfff)) / bytes;
  const k = Math.min(n, Math.floor(srcLeft), Math.floor(dstLeft), MAX_REP_ITERATIONS);
  if (k < 4) return false;
  const len = k * bytes;
  if (!c.addrSize32 && (si + len > 0x10000 || di + len > 0x10000)) return false;
  const ls = c.linR(src, si, len);
  const ld = c.linW(ES, di, len);
  const ps = c.translate(ls, 0);
  const pd = c.translate(ld, 1);
  const mem = c.mem;
  if (mem.pageKind[ps >>> 12] !== 0 || mem.pageKind[pd >>> 12] !== 0 || mem.codePages[pd >>> 12]) return false;
  if (ps + len > mem.ram.length || pd + len > mem.ram.length) return false;
  // Overlapping forward copies must replicate byte-by-byte semantics.
  if (pd > ps && pd < ps + len) {
    for (let i = 0; i < len; i++) mem.ram[pd + i] = mem.ram[ps + i];
  } else mem.ram.copyWithin(pd, ps, ps + len);
  advance(c, ESI, len);
  advance(c, EDI, len);
  n -= k;
  setCounter(c, n);
  if (n !== 0) c.eip = c.startEip;
  return true;
}

// -----------------------------------------------------------------------------------------------
// BCD

function bcd(c: Cpu, op: number): void {
  c.materializeFlags();
  let al = c.r8[0];
  let f = c.flags;
  const cf = f & CF;
  const af = f & AF;
  switch (op) {
    case 0x27: {
      // DAA
      const old = al;
      let ncf = 0;
      if ((al & 0xf) > 9 || af) {
        al += 6;
        ncf = cf || al > 0xff ? 1 : 0;
        f |= AF;
      } else f &= ~AF;
      if (old > 0x99 || cf) {
        al += 0x60;
        ncf = 1;
      } else ncf = 0;
      al &= 0xff;
      c.r8[0] = al;
      f = (f & ~CF) | ncf;
      break;
    }
    case 0x2f: {
      // DAS
      const old = al;
      let ncf = 0;
      if ((al & 0xf) > 9 || af) {
        ncf = cf || al < 6 ? 1 : 0;
        al -= 6;
        f |= AF;
      } else f &= ~AF;
      if (old > 0x99 || cf) {
        al -= 0x60;
        ncf = 1;
      }
      al &= 0xff;
      c.r8[0] = al;
      f = (f & ~CF) | ncf;
      break;
    }
    case 0x37: // AAA
      if ((al & 0xf) > 9 || af) {
        c.r16[0] = c.r16[0] + 0x106;
        f |= AF | CF;
      } else f &= ~(AF | CF);
      c.r8[0] &= 0xf;
      break;
    case 0x3f: // AAS
      if ((al & 0xf) > 9 || af) {
        c.r16[0] = c.r16[0] - 6;
        c.r8[1] = c.r8[1] - 1;
        f |= AF | CF;
      } else f &= ~(AF | CF);
      c.r8[0] &= 0xf;
      break;
  }
  c.flags = f;
  c.lzOp = LZ_RES;
  c.lzR = c.r8[0];
  c.lzSize = 8;
}

// -----------------------------------------------------------------------------------------------
// Lock prefix validity

const LOCKABLE_ALU = new Set([0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, 0x20, 0x21, 0x28, 0x29, 0x30, 0x31, 0x86, 0x87]);

function checkLock(c: Cpu, op: number): void {
  // Peek at the ModRM byte without consuming it.
  const save = c.eip;
  let ok = false;
  if (op === 0x0f) {
    const op2 = c.fetch8();
    const m = c.fetch8();
    if (m < 0xc0) {
      if (op2 === 0xab || op2 === 0xb3 || op2 === 0xbb || op2 === 0xb0 || op2 === 0xb1 || op2 === 0xc0 || op2 === 0xc1) ok = true;
      else if (op2 === 0xba) ok = ((m >> 3) & 7) >= 5;
      else if (op2 === 0xc7) ok = ((m >> 3) & 7) === 1;
    }
  } else {
    const m = c.fetch8();
    if (m < 0xc0) {
      const reg = (m >> 3) & 7;
      if (LOCKABLE_ALU.has(op)) ok = true;
      else if (op >= 0x80 && op <= 0x83) ok = reg !== 7;
      else if (op === 0xf6 || op === 0xf7) ok = reg === 2 || reg === 3;
      else if (op === 0xfe || op === 0xff) ok = reg < 2;
    }
  }
  c.eip = save;
  if (!ok) c.ud();
}

// -----------------------------------------------------------------------------------------------
// x87 escapes

function fpuEscape(c: Cpu, op: number): void {
  if (c.cr0 & (CR0_EM | CR0_TS)) c.fault(EXC_NM);
  const modrm = decodeModrm(c);
  if (modrm >= 0xc0) c.fpu.execute(op, modrm, null);
  else c.fpu.execute(op, modrm, c.fpuOperand(c.eaSeg, c.eaOff));
}

// -----------------------------------------------------------------------------------------------
// The one-byte opcode map

const PREFIX = new Uint8Array(256);
for (const p of [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]) PREFIX[p] = 1;

export function executeOne(c: Cpu): void {
  const def32 = c.code32;
  c.opSize32 = def32;
  c.addrSize32 = def32;
  c.segOverride = -1;
  c.repPrefix = 0;
  c.lockPrefix = false;
  const op = c.fetch8();
  if (PREFIX[op] === 0) execOp(c, op);
  else execPrefixed(c, op);
}

function execPrefixed(c: Cpu, op: number): void {
  const def32 = c.code32;
  let prefixes = 0;
  for (;;) {
    switch (op) {
      case 0x26:
        c.segOverride = ES;
        break;
      case 0x2e:
        c.segOverride = CS;
        break;
      case 0x36:
        c.segOverride = SS;
        break;
      case 0x3e:
        c.segOverride = DS;
        break;
      case 0x64:
        c.segOverride = FS;
        break;
      case 0x65:
        c.segOverride = GS;
        break;
      case 0x66:
        c.opSize32 = !def32;
        break;
      case 0x67:
        c.addrSize32 = !def32;
        break;
      case 0xf0:
        c.lockPrefix = true;
        break;
      case 0xf2:
        c.repPrefix = 2;
        break;
      case 0xf3:
        c.repPrefix = 1;
        break;
      default:
        if (prefixes < 3) {
          if (c.lockPrefix) checkLock(c, op);
          execOp(c, op);
          return;
        }
        // Without prefixes no instruction exceeds 12 bytes; with 4 or more the 15-byte limit
        // (#GP) can bite: cap instruction fetch at startEip + 15 for this one.
        c.lengthCap = c.startEip + 15;
        if (c.fetchHi > c.lengthCap) c.fetchHi = c.lengthCap;
        try {
          if (c.lockPrefix) checkLock(c, op);
          execOp(c, op);
        } finally {
          c.lengthCap = 0;
          c.fetchHi = 0;
        }
        return;
    }
    if (++prefixes >= 15) c.gp(0); // the opcode would be byte 16
    op = c.fetch8();
  }
}

function execOp(c: Cpu, op: number): void {
  const regs = c.regs;
  switch (op) {
    // ALU forms 00-3D
    case 0x00: case 0x08: case 0x10: case 0x18: case 0x20: case 0x28: case 0x30: case 0x38: {
      decodeModrm(c);
      const aop = op >> 3;
      const b = getReg(c, 8, (c.modrm >> 3) & 7);
      if (aop === 7) alu(c, 7, rmRead(c, 8), b, 8);
      else rmWrite(c, 8, alu(c, aop, rmReadForWrite(c, 8), b, 8));
      return;
    }
    case 0x01: case 0x09: case 0x11: case 0x19: case 0x21: case 0x29: case 0x31: case 0x39: {
      const m = decodeModrm(c);
      if (m >= 0xc0 && c.opSize32) {
        const d = m & 7;
        const v = alu32(c, op >> 3, regs[d], regs[(m >> 3) & 7]);
        if (op !== 0x39) regs[d] = v;
        return;
      }
      if (c.opSize32) {
        if (op === 0x39) alu32(c, 7, c.read32(c.eaSeg, c.eaOff), regs[(m >> 3) & 7]);
        else {
          const lin = rmLin32(c);
          c.writeLin32(lin, alu32(c, op >> 3, c.readLin32(lin), regs[(m >> 3) & 7]));
        }
        return;
      }
      const size = opSize(c);
      const aop = op >> 3;
      const b = getReg(c, size, (c.modrm >> 3) & 7);
      if (aop === 7) alu(c, 7, rmRead(c, size), b, size);
      else rmWrite(c, size, alu(c, aop, rmReadForWrite(c, size), b, size));
      return;
    }
    case 0x02: case 0x0a: case 0x12: case 0x1a: case 0x22: case 0x2a: case 0x32: case 0x3a: {
      decodeModrm(c);
      const aop = op >> 3;
      const r = (c.modrm >> 3) & 7;
      const v = alu(c, aop, getReg(c, 8, r), rmRead(c, 8), 8);
      if (aop !== 7) setReg(c, 8, r, v);
      return;
    }
    case 0x03: case 0x0b: case 0x13: case 0x1b: case 0x23: case 0x2b: case 0x33: case 0x3b: {
      const m = decodeModrm(c);
      if (c.opSize32) {
        const r = (m >> 3) & 7;
        const v = alu32(c, op >> 3, regs[r], m >= 0xc0 ? regs[m & 7] : c.read32(c.eaSeg, c.eaOff));
        if (op !== 0x3b) regs[r] = v;
        return;
      }
      const size = opSize(c);
      const aop = op >> 3;
      const r = (c.modrm >> 3) & 7;
      const v = alu(c, aop, getReg(c, size, r), rmRead(c, size), size);
      if (aop !== 7) setReg(c, size, r, v);
      return;
    }
    case 0x04: case 0x0c: case 0x14: case 0x1c: case 0x24: case 0x2c: case 0x34: case 0x3c: {
      const aop = op >> 3;
      const v = alu(c, aop, c.r8[0], c.fetch8(), 8);
      if (aop !== 7) c.r8[0] = v;
      return;
    }
    case 0x05: case 0x0d: case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d: {
      if (c.opSize32) {
        const v = alu32(c, op >> 3, regs[EAX], c.fetch32());
        if (op !== 0x3d) regs[EAX] = v;
        return;
      }
      const size = opSize(c);
      const aop = op >> 3;
      const v = alu(c, aop, getReg(c, size, EAX), immediate(c, size), size);
      if (aop !== 7) setReg(c, size, EAX, v);
      return;
    }
    case 0x06:
      c.push(c.segSel[ES]);
      return;
    case 0x07:
      Sys.popSeg(c, ES);
      return;
    case 0x0e:
      c.push(c.segSel[CS]);
      return;
    case 0x0f:
      exec0F(c);
      return;
    case 0x16:
      c.push(c.segSel[SS]);
      return;
    case 0x17:
      Sys.popSeg(c, SS);
      return;
    case 0x1e:
      c.push(c.segSel[DS]);
      return;
    case 0x1f:
      Sys.popSeg(c, DS);
      return;
    case 0x27: case 0x2f: case 0x37: case 0x3f:
      bcd(c, op);
      return;
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47: {
      if (c.opSize32) {
        regs[op & 7] = incDec32(c, regs[op & 7], false);
        return;
      }
      const size = opSize(c);
      setReg(c, size, op & 7, incDec(c, getReg(c, size, op & 7), size, false));
      return;
    }
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f: {
      if (c.opSize32) {
        regs[op & 7] = incDec32(c, regs[op & 7], true);
        return;
      }
      const size = opSize(c);
      setReg(c, size, op & 7, incDec(c, getReg(c, size, op & 7), size, true));
      return;
    }
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
      if (c.opSize32) c.push32(regs[op & 7]);
      else c.push16(c.r16[(op & 7) << 1]);
      return;
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
      if (c.opSize32) regs[op & 7] = c.pop32();
      else c.r16[(op & 7) << 1] = c.pop16();
      return;
    case 0x60: {
      // PUSHA
      const size = opSize(c);
      const bytes = size >> 3;
      const sp = regs[ESP];
      // Check the whole frame first so a fault leaves memory untouched.
      const base = c.stack32 ? (sp - 8 * bytes) | 0 : (sp - 8 * bytes) & 0xffff;
      if (c.stack32 || base + 8 * bytes <= 0x10000) c.probeWrite(c.linW(SS, base, 8 * bytes), 8 * bytes);
      const tmp = getReg(c, size, ESP);
      for (let r = 0; r < 8; r++) c.push(r === ESP ? tmp : getReg(c, size, r));
      return;
    }
    case 0x61: {
      // POPA
      const size = opSize(c);
      for (let r = 7; r >= 0; r--) {
        const v = c.pop();
        if (r !== ESP) setReg(c, size, r, v);
      }
      return;
    }
    case 0x62: {
      // BOUND
      const m = decodeModrm(c);
      if (m >= 0xc0) c.ud();
      const size = opSize(c);
      const v = getReg(c, size, (m >> 3) & 7);
      let lo = c.readSized(size, c.eaSeg, c.eaOff);
      let hi = c.readSized(size, c.eaSeg, (c.eaOff + (size >> 3)) & (c.addrSize32 ? -1 : 0xffff));
      let x = v;
      if (size === 16) {
        lo = (lo << 16) >> 16;
        hi = (hi << 16) >> 16;
        x = (v << 16) >> 16;
      } else {
        lo |= 0;
        hi |= 0;
        x |= 0;
      }
      if (x < lo || x > hi) c.fault(EXC_BR);
      return;
    }
    case 0x63:
      Sys.arpl(c);
      return;
    case 0x68:
      c.push(immediate(c, opSize(c)));
      return;
    case 0x69: case 0x6b: {
      decodeModrm(c);
      const size = opSize(c);
      const a = rmRead(c, size);
      const b = op === 0x6b ? (c.fetch8() << 24) >> 24 : immediate(c, size);
      setReg(c, size, (c.modrm >> 3) & 7, imulTrunc(c, a, b, size));
      return;
    }
    case 0x6a:
      c.push((c.fetch8() << 24) >> 24);
      return;
    case 0x6c: case 0x6d:
      strSize = op === 0x6c ? 8 : opSize(c);
      Sys.checkIo(c, c.r16[EDX << 1], strSize >> 3);
      stringOp(c, insBody, false);
      return;
    case 0x6e: case 0x6f:
      strSize = op === 0x6e ? 8 : opSize(c);
      Sys.checkIo(c, c.r16[EDX << 1], strSize >> 3);
      stringOp(c, outsBody, false);
      return;
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f: {
      const d = (c.fetch8() << 24) >> 24;
      jcc(c, c.condition(op & 15), d);
      return;
    }
    case 0x80: case 0x82: {
      decodeModrm(c);
      const aop = (c.modrm >> 3) & 7;
      if (aop === 7) alu(c, 7, rmRead(c, 8), c.fetch8(), 8);
      else {
        const a = rmReadForWrite(c, 8);
        rmWrite(c, 8, alu(c, aop, a, c.fetch8(), 8));
      }
      return;
    }
    case 0x81: case 0x83: {
      const m = decodeModrm(c);
      const aop = (m >> 3) & 7;
      if (c.opSize32) {
        if (m >= 0xc0) {
          const d = m & 7;
          const v = alu32(c, aop, regs[d], op === 0x83 ? (c.fetch8() << 24) >> 24 : c.fetch32());
          if (aop !== 7) regs[d] = v;
        } else if (aop === 7) {
          const a = c.read32(c.eaSeg, c.eaOff);
          alu32(c, 7, a, op === 0x83 ? (c.fetch8() << 24) >> 24 : c.fetch32());
        } else {
          const lin = rmLin32(c);
          const a = c.readLin32(lin);
          c.writeLin32(lin, alu32(c, aop, a, op === 0x83 ? (c.fetch8() << 24) >> 24 : c.fetch32()));
        }
        return;
      }
      const size = opSize(c);
      if (aop === 7) {
        const a = rmRead(c, size);
        alu(c, 7, a, op === 0x83 ? (c.fetch8() << 24) >> 24 : immediate(c, size), size);
      } else {
        const a = rmReadForWrite(c, size);
        rmWrite(c, size, alu(c, aop, a, op === 0x83 ? (c.fetch8() << 24) >> 24 : immediate(c, size), size));
      }
      return;
    }
    case 0x84: case 0x85: {
      decodeModrm(c);
      const size = op === 0x84 ? 8 : opSize(c);
      logicFlags(c, rmRead(c, size) & getReg(c, size, (c.modrm >> 3) & 7), size);
      return;
    }
    case 0x86: case 0x87: {
      decodeModrm(c);
      const size = op === 0x86 ? 8 : opSize(c);
      const r = (c.modrm >> 3) & 7;
      const a = rmReadForWrite(c, size);
      rmWrite(c, size, getReg(c, size, r));
      setReg(c, size, r, a);
      return;
    }
    case 0x88:
      decodeModrm(c);
      rmWrite(c, 8, getReg(c, 8, (c.modrm >> 3) & 7));
      return;
    case 0x89: {
      const m = decodeModrm(c);
      const r = (m >> 3) & 7;
      if (c.opSize32) {
        if (m >= 0xc0) regs[m & 7] = regs[r];
        else c.write32(c.eaSeg, c.eaOff, regs[r]);
      } else if (m >= 0xc0) c.r16[(m & 7) << 1] = c.r16[r << 1];
      else c.write16(c.eaSeg, c.eaOff, c.r16[r << 1]);
      return;
    }
    case 0x8a:
      decodeModrm(c);
      setReg(c, 8, (c.modrm >> 3) & 7, rmRead(c, 8));
      return;
    case 0x8b: {
      const m = decodeModrm(c);
      const r = (m >> 3) & 7;
      if (c.opSize32) regs[r] = m >= 0xc0 ? regs[m & 7] : c.read32(c.eaSeg, c.eaOff);
      else c.r16[r << 1] = m >= 0xc0 ? c.r16[(m & 7) << 1] : c.read16(c.eaSeg, c.eaOff);
      return;
    }
    case 0x8c: {
      const m = decodeModrm(c);
      const s = (m >> 3) & 7;
      if (s > 5) c.ud();
      if (m >= 0xc0) setReg(c, opSize(c), m & 7, c.segSel[s]);
      else c.write16(c.eaSeg, c.eaOff, c.segSel[s]);
      return;
    }
    case 0x8d: {
      const m = decodeModrm(c);
      if (m >= 0xc0) c.ud();
      setReg(c, opSize(c), (m >> 3) & 7, c.eaOff);
      return;
    }
    case 0x8e: {
      const m = decodeModrm(c);
      const s = (m >> 3) & 7;
      if (s === CS || s > 5) c.ud();
      const v = m >= 0xc0 ? c.r16[(m & 7) << 1] : c.read16(c.eaSeg, c.eaOff);
      Sys.loadSeg(c, s, v);
      if (s === SS) {
        c.interruptShadow = true;
        c.eventCheck = true;
        if (c.flags & TF) c.ssInhibit = true;
      }
      return;
    }
    case 0x8f: {
      // POP Ev: the address is computed after ESP is incremented.
      const m = c.fetch8();
      c.modrm = m;
      if ((m >> 3) & 7) c.ud();
      const size = opSize(c);
      const v = c.pop();
      if (m >= 0xc0) setReg(c, size, m & 7, v);
      else {
        computeEa(c, m);
        c.writeSized(size, c.eaSeg, c.eaOff, v);
      }
      return;
    }
    case 0x90:
      return;
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97: {
      const size = opSize(c);
      const t = getReg(c, size, op & 7);
      setReg(c, size, op & 7, getReg(c, size, EAX));
      setReg(c, size, EAX, t);
      return;
    }
    case 0x98:
      if (c.opSize32) regs[EAX] = (c.r16[0] << 16) >> 16;
      else c.r16[0] = (c.r8[0] << 24) >> 24;
      return;
    case 0x99:
      if (c.opSize32) regs[EDX] = regs[EAX] >> 31;
      else c.r16[EDX << 1] = (c.r16[0] << 16) >> 31;
      return;
    case 0x9a: {
      const off = immediate(c, opSize(c));
      const sel = c.fetch16();
      Sys.farCall(c, sel, off);
      return;
    }
    case 0x9b:
      if ((c.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) c.fault(EXC_NM);
      c.fpu.wait();
      return;
    case 0x9c:
      Sys.pushf(c);
      return;
    case 0x9d:
      Sys.popf(c);
      return;
    case 0x9e: {
      c.materializeFlags();
      const mask = SF | ZF | AF | PF | CF;
      c.flags = (c.flags & ~mask) | (c.r8[1] & mask);
      return;
    }
    case 0x9f:
      c.r8[1] = (c.getFlags() & 0xd5) | 2;
      return;
    case 0xa0: case 0xa1: case 0xa2: case 0xa3: {
      const off = c.addrSize32 ? c.fetch32() >>> 0 : c.fetch16();
      const seg = c.segOverride >= 0 ? c.segOverride : DS;
      const size = op & 1 ? opSize(c) : 8;
      if (op < 0xa2) setReg(c, size, EAX, c.readSized(size, seg, off));
      else c.writeSized(size, seg, off, getReg(c, size, EAX));
      return;
    }
    case 0xa4: case 0xa5:
      strSize = op === 0xa4 ? 8 : opSize(c);
      if (c.repPrefix && fastRepMovs(c, strSize)) return;
      stringOp(c, movsBody, false);
      return;
    case 0xa6: case 0xa7:
      strSize = op === 0xa6 ? 8 : opSize(c);
      stringOp(c, cmpsBody, true);
      return;
    case 0xa8:
      logicFlags(c, c.r8[0] & c.fetch8(), 8);
      return;
    case 0xa9: {
      const size = opSize(c);
      logicFlags(c, getReg(c, size, EAX) & immediate(c, size), size);
      return;
    }
    case 0xaa: case 0xab:
      strSize = op === 0xaa ? 8 : opSize(c);
      if (c.repPrefix && fastRepStos(c, strSize)) return;
      stringOp(c, stosBody, false);
      return;
    case 0xac: case 0xad:
      strSize = op === 0xac ? 8 : opSize(c);
      stringOp(c, lodsBody, false);
      return;
    case 0xae: case 0xaf:
      strSize = op === 0xae ? 8 : opSize(c);
      stringOp(c, scasBody, true);
      return;
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
      c.r8[R8[op & 7]] = c.fetch8();
      return;
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      if (c.opSize32) regs[op & 7] = c.fetch32();
      else c.r16[(op & 7) << 1] = c.fetch16();
      return;
    case 0xc0: case 0xc1: {
      const m = decodeModrm(c);
      if (op === 0xc1 && m >= 0xc0 && c.opSize32) {
        const kind = (m >> 3) & 7;
        if (kind >= 4) {
          const n = c.fetch8() & 31;
          if (n) regs[m & 7] = shift32(c, kind, regs[m & 7], n);
          return;
        }
      }
      const size = op === 0xc0 ? 8 : opSize(c);
      const a = rmReadForWrite(c, size);
      const n = c.fetch8();
      if (n & 0x1f) rmWrite(c, size, shift(c, (c.modrm >> 3) & 7, a, n, size));
      return;
    }
    case 0xc2: case 0xc3: {
      const imm = op === 0xc2 ? c.fetch16() : 0;
      // pop32 gives a signed int32: compare with the limit unsigned.
      const target = c.pop() >>> 0;
      if (target > c.segLimit[CS]) c.gp(0);
      c.eip = target;
      if (imm) c.adjustEsp(imm);
      return;
    }
    case 0xc4: case 0xc5: {
      const m = decodeModrm(c);
      if (m >= 0xc0) c.ud();
      Sys.loadFarPointer(c, op === 0xc4 ? ES : DS);
      return;
    }
    case 0xc6: case 0xc7: {
      const m = decodeModrm(c);
      if ((m >> 3) & 7) c.ud();
      const size = op === 0xc6 ? 8 : opSize(c);
      if (m >= 0xc0) setReg(c, size, m & 7, immediate(c, size));
      else {
        const v = immediate(c, size);
        c.writeSized(size, c.eaSeg, c.eaOff, v);
      }
      return;
    }
    case 0xc8:
      Sys.enter(c, c.fetch16(), c.fetch8());
      return;
    case 0xc9: {
      // LEAVE
      if (c.stack32) regs[ESP] = regs[EBP];
      else c.r16[ESP << 1] = c.r16[EBP << 1];
      if (c.opSize32) regs[EBP] = c.pop32();
      else c.r16[EBP << 1] = c.pop16();
      return;
    }
    case 0xca: case 0xcb:
      Sys.farReturn(c, op === 0xca ? c.fetch16() : 0);
      return;
    case 0xcc:
      Sys.softwareInterrupt(c, 3, true);
      return;
    case 0xcd:
      Sys.softwareInterrupt(c, c.fetch8(), false);
      return;
    case 0xce:
      if (c.getOF()) Sys.softwareInterrupt(c, 4, true);
      return;
    case 0xcf:
      Sys.iret(c);
      return;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      const m = decodeModrm(c);
      if (op & 1 && m >= 0xc0 && c.opSize32 && ((m >> 3) & 7) >= 4) {
        const n = (op === 0xd1 ? 1 : c.r8[4]) & 31;
        if (n) regs[m & 7] = shift32(c, (m >> 3) & 7, regs[m & 7], n);
        return;
      }
      const size = op & 1 ? opSize(c) : 8;
      const n = op < 0xd2 ? 1 : c.r8[4];
      const a = rmReadForWrite(c, size);
      if (n & 0x1f) rmWrite(c, size, shift(c, (c.modrm >> 3) & 7, a, n, size));
      return;
    }
    case 0xd4: {
      // AAM
      const base = c.fetch8();
      if (base === 0) c.fault(EXC_DE);
      const al = c.r8[0];
      c.r8[1] = Math.floor(al / base);
      c.r8[0] = al % base;
      logicFlags(c, c.r8[0], 8);
      return;
    }
    case 0xd5: {
      // AAD
      const base = c.fetch8();
      const al = (c.r8[0] + c.r8[1] * base) & 0xff;
      c.r16[0] = al;
      logicFlags(c, al, 8);
      return;
    }
    case 0xd6:
      c.r8[0] = c.getCF() ? 0xff : 0;
      return;
    case 0xd7: {
      const seg = c.segOverride >= 0 ? c.segOverride : DS;
      const off = c.addrSize32 ? (regs[EBX] + c.r8[0]) >>> 0 : (c.r16[EBX << 1] + c.r8[0]) & 0xffff;
      c.r8[0] = c.read8(seg, off);
      return;
    }
    case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
      fpuEscape(c, op);
      return;
    case 0xe0: case 0xe1: case 0xe2: {
      const d = (c.fetch8() << 24) >> 24;
      const n = (counter(c) - 1) >>> 0;
      setCounter(c, n);
      const cntNonZero = (c.addrSize32 ? n : n & 0xffff) !== 0;
      let take = cntNonZero;
      if (op === 0xe0) take = cntNonZero && !c.getZF();
      else if (op === 0xe1) take = cntNonZero && c.getZF();
      if (take) jumpNear(c, c.eip + d);
      return;
    }
    case 0xe3: {
      const d = (c.fetch8() << 24) >> 24;
      if (counter(c) === 0) jumpNear(c, c.eip + d);
      return;
    }
    case 0xe4: case 0xe5: case 0xec: case 0xed: {
      const port = op < 0xe8 ? c.fetch8() : c.r16[EDX << 1];
      const size = op & 1 ? opSize(c) : 8;
      Sys.checkIo(c, port, size >> 3);
      if (size === 8) c.r8[0] = c.io.in8(port);
      else if (size === 16) c.r16[0] = c.io.in16(port);
      else regs[EAX] = c.io.in32(port);
      return;
    }
    case 0xe6: case 0xe7: case 0xee: case 0xef: {
      const port = op < 0xe8 ? c.fetch8() : c.r16[EDX << 1];
      const size = op & 1 ? opSize(c) : 8;
      Sys.checkIo(c, port, size >> 3);
      if (size === 8) c.io.out8(port, c.r8[0]);
      else if (size === 16) c.io.out16(port, c.r16[0]);
      else c.io.out32(port, regs[EAX]);
      return;
    }
    case 0xe8: {
      const d = c.opSize32 ? c.fetch32() : (c.fetch16() << 16) >> 16;
      let target = c.eip + d;
      if (!c.opSize32) target &= 0xffff;
      if (target >>> 0 > c.segLimit[CS]) c.gp(0);
      c.push(c.eip);
      c.eip = target >>> 0;
      return;
    }
    case 0xe9: {
      const d = c.opSize32 ? c.fetch32() : (c.fetch16() << 16) >> 16;
      jumpNear(c, c.eip + d);
      return;
    }
    case 0xea: {
      const off = immediate(c, opSize(c));
      const sel = c.fetch16();
      Sys.farJump(c, sel, off);
      return;
    }
    case 0xeb: {
      const d = (c.fetch8() << 24) >> 24;
      jumpNear(c, c.eip + d);
      return;
    }
    case 0xf1:
      // ICEBP: a #DB trap delivered like an external event (no gate DPL check).
      c.deliverInterrupt(EXC_DB, INT_EXCEPTION, -1, c.eip);
      return;
    case 0xf4:
      if (c.cpl !== 0) c.gp(0);
      c.halted = true;
      if (!(c.flags & IF) && !c.intrLine) {
        // With interrupts off only an NMI can wake us; tell the machine.
        c.host.shutdown('hlt with interrupts disabled');
      }
      return;
    case 0xf5:
      c.materializeFlags();
      c.flags ^= CF;
      return;
    case 0xf6:
      decodeModrm(c);
      group3(c, 8);
      return;
    case 0xf7:
      decodeModrm(c);
      group3(c, opSize(c));
      return;
    case 0xf8: case 0xf9:
      c.materializeFlags();
      c.flags = (c.flags & ~CF) | (op & 1);
      return;
    case 0xfa:
      Sys.cli(c);
      return;
    case 0xfb:
      Sys.sti(c);
      return;
    case 0xfc:
      c.flags &= ~DF;
      return;
    case 0xfd:
      c.flags |= DF;
      return;
    case 0xfe: {
      const m = decodeModrm(c);
      const reg = (m >> 3) & 7;
      if (reg > 1) c.ud();
      rmWrite(c, 8, incDec(c, rmReadForWrite(c, 8), 8, reg === 1));
      return;
    }
    case 0xff:
      group5(c);
      return;
    default:
      c.ud();
  }
}

function group5(c: Cpu): void {
  const m = decodeModrm(c);
  const reg = (m >> 3) & 7;
  const size = opSize(c);
  switch (reg) {
    case 0:
    case 1:
      rmWrite(c, size, incDec(c, rmReadForWrite(c, size), size, reg === 1));
      return;
    case 2: {
      const target = rmRead(c, size);
      if (target > c.segLimit[CS]) c.gp(0);
      c.push(c.eip);
      c.eip = target;
      return;
    }
    case 3:
    case 5: {
      if (m >= 0xc0) c.ud();
      const off = c.readSized(size, c.eaSeg, c.eaOff);
      const sel = c.read16(c.eaSeg, (c.eaOff + (size >> 3)) & (c.addrSize32 ? -1 : 0xffff));
      if (reg === 3) Sys.farCall(c, sel, off);
      else Sys.farJump(c, sel, off);
      return;
    }
    case 4:
      jumpNear(c, rmRead(c, size));
      return;
    case 6:
      c.push(rmRead(c, size));
      return;
    default:
      c.ud();
  }
}

// -----------------------------------------------------------------------------------------------
// The 0F opcode map

function exec0F(c: Cpu): void {
  const op = c.fetch8();
  const regs = c.regs;
  switch (op) {
    case 0x00:
      Sys.group6(c);
      return;
    case 0x01:
      Sys.group7(c);
      return;
    case 0x02:
    case 0x03:
      Sys.larLsl(c, op === 0x02);
      return;
    case 0x06:
      if (c.cpl !== 0) c.gp(0);
      c.cr0 &= ~CR0_TS;
      return;
    case 0x08:
    case 0x09:
      if (c.cpl !== 0) c.gp(0);
      return;
    case 0x0b:
      c.ud();
      return;
    case 0x19: case 0x1a: case 0x1b: case 0x1c: case 0x1d: case 0x1e: case 0x1f:
      // Multi-byte NOP (P6): decodes a ModRM operand, touches nothing.
      decodeModrm(c);
      return;
    case 0x20: case 0x21: case 0x22: case 0x23:
      Sys.movCrDr(c, op);
      return;
    case 0x30:
      if (c.cpl !== 0) c.gp(0);
      c.writeMsr(regs[ECX] >>> 0, regs[EAX], regs[EDX]);
      return;
    case 0x31: {
      if (c.cr4 & CR4_TSD && c.cpl !== 0) c.gp(0);
      const t = c.readTsc();
      regs[EAX] = t % 4294967296;
      regs[EDX] = Math.floor(t / 4294967296);
      return;
    }
    case 0x32: {
      if (c.cpl !== 0) c.gp(0);
      const [lo, hi] = c.readMsr(regs[ECX] >>> 0);
      regs[EAX] = lo;
      regs[EDX] = hi;
      return;
    }
    case 0x33:
      if ((regs[ECX] >>> 0) > 1 || (!(c.cr4 & CR4_PCE) && c.cpl !== 0)) c.gp(0);
      regs[EAX] = 0;
      regs[EDX] = 0;
      return;
    case 0x34:
      Sys.sysenter(c);
      return;
    case 0x35:
      Sys.sysexit(c);
      return;
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f: {
      decodeModrm(c);
      const size = opSize(c);
      const v = rmRead(c, size);
      if (c.condition(op & 15)) setReg(c, size, (c.modrm >> 3) & 7, v);
      return;
    }
    case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85: case 0x86: case 0x87:
    case 0x88: case 0x89: case 0x8a: case 0x8b: case 0x8c: case 0x8d: case 0x8e: case 0x8f: {
      const d = c.opSize32 ? c.fetch32() : (c.fetch16() << 16) >> 16;
      jcc(c, c.condition(op & 15), d);
      return;
    }
    case 0x90: case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
    case 0x98: case 0x99: case 0x9a: case 0x9b: case 0x9c: case 0x9d: case 0x9e: case 0x9f:
      decodeModrm(c);
      rmWrite(c, 8, c.condition(op & 15) ? 1 : 0);
      return;
    case 0xa0:
      c.push(c.segSel[FS]);
      return;
    case 0xa1:
      Sys.popSeg(c, FS);
      return;
    case 0xa2:
      c.cpuid();
      return;
    case 0xa3: case 0xab: case 0xb3: case 0xbb:
      bitTest(c, op === 0xa3 ? 0 : op === 0xab ? 1 : op === 0xb3 ? 2 : 3, false);
      return;
    case 0xa4: case 0xa5: case 0xac: case 0xad: {
      decodeModrm(c);
      const size = opSize(c);
      const a = rmReadForWrite(c, size);
      const n = (op & 1 ? c.r8[4] : c.fetch8()) & 0x1f;
      if (n === 0) return;
      rmWrite(c, size, doubleShift(c, a, getReg(c, size, (c.modrm >> 3) & 7), n, size, op < 0xa8));
      return;
    }
    case 0xa8:
      c.push(c.segSel[GS]);
      return;
    case 0xa9:
      Sys.popSeg(c, GS);
      return;
    case 0xae:
      group15(c);
      return;
    case 0xaf: {
      decodeModrm(c);
      const size = opSize(c);
      const r = (c.modrm >> 3) & 7;
      setReg(c, size, r, imulTrunc(c, getReg(c, size, r), rmRead(c, size), size));
      return;
    }
    case 0xb0: case 0xb1: {
      decodeModrm(c);
      const size = op === 0xb0 ? 8 : opSize(c);
      const d = rmReadForWrite(c, size);
      const acc = getReg(c, size, EAX);
      alu(c, 7, acc, d, size);
      if (c.lzR === 0) rmWrite(c, size, getReg(c, size, (c.modrm >> 3) & 7));
      else {
        rmWrite(c, size, d);
        setReg(c, size, EAX, d);
      }
      return;
    }
    case 0xb2: case 0xb4: case 0xb5: {
      const m = decodeModrm(c);
      if (m >= 0xc0) c.ud();
      Sys.loadFarPointer(c, op === 0xb2 ? SS : op === 0xb4 ? FS : GS);
      return;
    }
    case 0xb6: case 0xb7: case 0xbe: case 0xbf: {
      decodeModrm(c);
      const srcSize = op & 1 ? 16 : 8;
      let v = rmRead(c, srcSize);
      if (op >= 0xbe) v = srcSize === 8 ? (v << 24) >> 24 : (v << 16) >> 16;
      setReg(c, opSize(c), (c.modrm >> 3) & 7, v);
      return;
    }
    case 0xba: {
      decodeModrm(c);
      const reg = (c.modrm >> 3) & 7;
      if (reg < 4) c.ud();
      bitTest(c, reg - 4, true);
      return;
    }
    case 0xbc: case 0xbd: {
      decodeModrm(c);
      const size = opSize(c);
      const v = rmRead(c, size);
      if (v === 0) {
        c.materializeFlags();
        c.flags |= ZF;
        return;
      }
      let i: number;
      if (op === 0xbc) i = 31 - Math.clz32(v & -v);
      else i = 31 - Math.clz32(v);
      setReg(c, size, (c.modrm >> 3) & 7, i);
      c.materializeFlags();
      c.flags &= ~ZF;
      return;
    }
    case 0xc0: case 0xc1: {
      const m = decodeModrm(c);
      if (op === 0xc1 && m >= 0xc0 && c.opSize32) {
        const kind = (m >> 3) & 7;
        if (kind >= 4) {
          const n = c.fetch8() & 31;
          if (n) regs[m & 7] = shift32(c, kind, regs[m & 7], n);
          return;
        }
      }
      const size = op === 0xc0 ? 8 : opSize(c);
      const r = (c.modrm >> 3) & 7;
      const d = rmReadForWrite(c, size);
      const s = getReg(c, size, r);
      const sum = alu(c, 0, d, s, size);
      setReg(c, size, r, d);
      rmWrite(c, size, sum);
      return;
    }
    case 0xc7: {
      const m = decodeModrm(c);
      if (m >= 0xc0 || ((m >> 3) & 7) !== 1) c.ud();
      const lin = c.linW(c.eaSeg, c.eaOff, 8);
      c.linR(c.eaSeg, c.eaOff, 8);
      c.probeWrite(lin, 8);
      const lo = c.readLin32(lin);
      const hi = c.readLin32(lin + 4);
      c.materializeFlags();
      if (lo === regs[EAX] && hi === regs[EDX]) {
        c.writeLin32(lin, regs[EBX]);
        c.writeLin32(lin + 4, regs[ECX]);
        c.flags |= ZF;
      } else {
        c.writeLin32(lin, lo);
        c.writeLin32(lin + 4, hi);
        regs[EAX] = lo;
        regs[EDX] = hi;
        c.flags &= ~ZF;
      }
      return;
    }
    case 0xc8: case 0xc9: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf: {
      const r = op & 7;
      if (!c.opSize32) {
        c.r16[r << 1] = 0;
        return;
      }
      const v = regs[r];
      regs[r] = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
      return;
    }
    default:
      c.ud();
  }
}

function bitTest(c: Cpu, kind: number, immForm: boolean): void {
  const size = opSize(c);
  if (!immForm) decodeModrm(c);
  let bit: number;
  const seg = c.eaSeg;
  let off = c.eaOff;
  if (immForm) bit = c.fetch8() & (size - 1);
  else {
    const src = getReg(c, size, (c.modrm >> 3) & 7);
    if (c.modrm >= 0xc0) bit = src & (size - 1);
    else {
      const s = size === 16 ? (src << 16) >> 16 : src | 0;
      const bytes = Math.floor(s / size) * (size >> 3);
      off = c.addrSize32 ? (off + bytes) >>> 0 : (off + bytes) & 0xffff;
      bit = s & (size - 1);
    }
  }
  c.eaOff = off;
  c.eaSeg = seg;
  const v = kind === 0 ? rmRead(c, size) : rmReadForWrite(c, size);
  const cf = (v >>> bit) & 1;
  c.materializeFlags();
  c.flags = (c.flags & ~CF) | cf;
  if (kind === 0) return;
  const m = (1 << bit) >>> 0;
  const r = kind === 1 ? v | m : kind === 2 ? v & ~m : v ^ m;
  rmWrite(c, size, r);
}

function doubleShift(c: Cpu, a: number, b: number, n: number, size: number, left: boolean): number {
  const mask = maskOf(size);
  a = (a & mask) >>> 0;
  b = (b & mask) >>> 0;
  let r: number;
  let cf: number;
  if (size === 16) {
    // 16-bit forms with counts above 16 are undefined; a 32-bit funnel gives the P6 pattern.
    if (left) {
      const w = ((a << 16) | b) >>> 0;
      const ww = n <= 16 ? w : ((b << 16) | a) >>> 0;
      const nn = n <= 16 ? n : n - 16;
      r = ((ww << nn) | (nn ? (n <= 16 ? a : b) >>> (16 - nn) : 0)) >>> 16 & 0xffff;
      cf = (ww >>> (32 - nn)) & 1;
    } else {
      const w = ((b << 16) | a) >>> 0;
      const ww = n <= 16 ? w : ((a << 16) | b) >>> 0;
      const nn = n <= 16 ? n : n - 16;
      r = ((ww >>> nn) | ((n <= 16 ? b : a) << (32 - nn))) & 0xffff;
      cf = (ww >>> (nn - 1)) & 1;
    }
  } else if (left) {
    r = ((a << n) | (b >>> (32 - n))) >>> 0;
    cf = (a >>> (32 - n)) & 1;
  } else {
    r = ((a >>> n) | (b << (32 - n))) >>> 0;
    cf = (a >>> (n - 1)) & 1;
  }
  const of = ((r ^ a) >>> (size - 1)) & 1;
  c.setResultFlags(r, size, cf, of, 0);
  return r;
}

function group15(c: Cpu): void {
  const m = decodeModrm(c);
  const reg = (m >> 3) & 7;
  if (m >= 0xc0 || reg > 1) c.ud();
  if (c.cr0 & CR0_EM) c.ud();
  if (c.cr0 & CR0_TS) c.fault(EXC_NM);
  if (c.eaOff & 15) c.gp(0);
  const lin = reg === 0 ? c.linW(c.eaSeg, c.eaOff, 512) : c.linR(c.eaSeg, c.eaOff, 512);
  if (reg === 0) c.probeWrite(lin, 512);
  else c.probeRead(lin, 512);
  const operand = c.fpuOperand(c.eaSeg, c.eaOff);
  if (reg === 0) c.fpu.fxsave(operand);
  else c.fpu.fxrstor(operand);
}

export { rmRead, rmWrite, opSize, jumpNear, alu32, incDec, incDec32, logicFlags, shift, shift32, imulTrunc };
