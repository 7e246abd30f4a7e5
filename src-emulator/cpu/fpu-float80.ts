/**
 * Exact x87 extended-precision arithmetic (see docs/fpu.md).
 *
 * A value is `{ se, sig }`: `se` = sign << 15 | 15-bit biased exponent, `sig` = the 64-bit significand
 * with its explicit integer bit, exactly as the 80-bit memory format stores it. Arithmetic works on the
 * exact mathematical value (`m * 2^e` with BigInt `m`) and rounds once, under the control word's
 * precision and rounding control, so results are bit-identical to the hardware's. Exceptions raised by
 * an operation are OR-ed into `ctx.flags`; an operation whose unmasked exception suppresses the result
 * returns null.
 */

export interface F80 {
  se: number;
  sig: bigint;
}

// Status word exception bits (same positions as the control word masks).
export const IE = 0x01;
export const DE = 0x02;
export const ZE = 0x04;
export const OE = 0x08;
export const UE = 0x10;
export const PE = 0x20;
export const SF = 0x40;

/** Operand classes, in FXAM's spirit. */
export const K_ZERO = 0;
export const K_DENORMAL = 1; // includes pseudo-denormals
export const K_NORMAL = 2;
export const K_INF = 3;
export const K_QNAN = 4;
export const K_SNAN = 5;
export const K_UNSUPPORTED = 6; // unnormals, pseudo-NaNs, pseudo-infinities (invalid on 387+)

const J_BIT = 0x8000000000000000n;
const QUIET_BIT = 0x4000000000000000n;
const MASK64 = 0xffffffffffffffffn;
/** Unmasked overflow/underflow wrap the exponent of a register result by this bias adjust. */
const WRAP = 24576;

export const INDEFINITE: Readonly<F80> = Object.freeze({ se: 0xffff, sig: 0xc000000000000000n });

/** Per-instruction arithmetic context: control word in, exception flags and C1 (rounded up) out. */
export class FpCtx {
  cw = 0x037f;
  flags = 0;
  roundedUp = false;
  /** The memory operand was a denormal 32/64-bit real (normalised on conversion). */
  memDenormal = false;
  begin(cw: number): void {
    this.cw = cw;
    this.flags = 0;
    this.roundedUp = false;
    this.memDenormal = false;
  }
  unmasked(flag: number): boolean {
    return (this.cw & flag) === 0;
  }
}

export function classify(x: F80): number {
  const exp = x.se & 0x7fff;
  const sig = x.sig;
  if (exp === 0) return sig === 0n ? K_ZERO : K_DENORMAL;
  if (sig < J_BIT) return K_UNSUPPORTED;
  if (exp === 0x7fff) {
    if (sig === J_BIT) return K_INF;
    return sig & QUIET_BIT ? K_QNAN : K_SNAN;
  }
  return K_NORMAL;
}

export function isNaNClass(k: number): boolean {
  return k === K_QNAN || k === K_SNAN;
}

export function makeZero(sign: number): F80 {
  return { se: sign << 15, sig: 0n };
}
export function makeInf(sign: number): F80 {
  return { se: (sign << 15) | 0x7fff, sig: J_BIT };
}

export function signOf(x: F80): number {
  return x.se >>> 15;
}

/** Number of significant bits of a positive BigInt. */
export function bitLength(m: bigint): number {
  if (m <= 0x1fffffffffffffn) {
    const n = Number(m);
    if (n < 4294967296) return 32 - Math.clz32(n);
    return 64 - Math.clz32(Math.floor(n / 4294967296));
  }
  const d = Number(m);
  if (d !== Infinity) {
    // The double's exponent field gives the length; Number() rounds to nearest, so when it lands on a
    // power of two m may lie just below it: one shift decides.
    F64[0] = d;
    const hi = U32[1];
    let b = ((hi >>> 20) & 0x7ff) - 1022;
    if ((hi & 0xfffff) === 0 && U32[0] === 0 && m >> big(b - 1) === 0n) b--;
    return b;
  }
  const s = m.toString(16);
  return (s.length - 1) * 4 + (32 - Math.clz32(parseInt(s[0], 16)));
}

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
/** BigInt(i) and 2^i for small i, to spare conversions and shifts on the hot paths. */
const BIG: bigint[] = [];
const POW2: bigint[] = [];
for (let i = 0; i <= 300; i++) {
  BIG.push(BigInt(i));
  POW2.push(1n << BigInt(i));
}
function big(i: number): bigint {
  return i >= 0 && i <= 300 ? BIG[i] : BigInt(i);
}
function pow2(i: number): bigint {
  return i <= 300 ? POW2[i] : 1n << BigInt(i);
}

/** Exponent of the least significant significand bit of a finite nonzero value (m = sig). */
export function lsbExponent(x: F80): number {
  const exp = x.se & 0x7fff;
  return (exp === 0 ? 1 : exp) - 16383 - 63;
}

// ---------------------------------------------------------------------------------------------
// Rounding

/** A rounded finite value `(-1)^sign * q * 2^lsb`, or infinity when `inf`. */
export interface Rounded {
  sign: number;
  q: bigint;
  lsb: number;
  inf: boolean;
}

export interface Format {
  p: number;
  emin: number;
  emax: number;
}
export const FMT_F32: Format = { p: 24, emin: -126, emax: 127 };
export const FMT_F64: Format = { p: 53, emin: -1022, emax: 1023 };
export const FMT_EXT64: Format = { p: 64, emin: -16382, emax: 16383 };
const FMT_EXT24: Format = { p: 24, emin: -16382, emax: 16383 };
const FMT_EXT53: Format = { p: 53, emin: -16382, emax: 16383 };

/** The register format selected by the precision control field (reserved PC=01 acts as 64 bits). */
export function precisionFormat(cw: number): Format {
  const pc = (cw >> 8) & 3;
  return pc === 0 ? FMT_EXT24 : pc === 2 ? FMT_EXT53 : FMT_EXT64;
}

/**
 * Rounds the exact value `(-1)^sign * m * 2^e` (m > 0) to `fmt` under the control word's rounding
 * control, raising OE/UE/PE as the SDM specifies (tininess detected before rounding). For a register
 * destination unmasked overflow/underflow deliver the significand with the exponent wrapped by 24576;
 * for a memory destination they suppress the store (null).
 */
export function roundValue(sign: number, m: bigint, e: number, fmt: Format, toRegister: boolean, ctx: FpCtx, bits = 0): Rounded | null {
  const { p, emin, emax } = fmt;
  const rc = (ctx.cw >> 10) & 3;
  const n = bits || bitLength(m);
  const E0 = e + n - 1;
  const tiny = E0 < emin;
  const ueUnmasked = ctx.unmasked(UE);
  if (tiny && ueUnmasked && !toRegister) {
    ctx.flags |= UE;
    return null;
  }
  let lsb = E0 - (p - 1);
  if (tiny && !ueUnmasked) lsb = emin - (p - 1);
  if (tiny && ueUnmasked && E0 + WRAP < emin) {
    // Too tiny even for the wrapped exponent (FSCALE): silicon delivers a zero with UE and PE.
    ctx.flags |= UE | PE;
    ctx.roundedUp = false;
    return { sign, q: 0n, lsb: 0, inf: false };
  }
  if (E0 - WRAP > emax && ctx.unmasked(OE) && toRegister) {
    ctx.flags |= OE | PE;
    ctx.roundedUp = true;
    return { sign, q: 0n, lsb: 0, inf: true };
  }
  const sh = lsb - e;
  let q: bigint;
  let inexact = false;
  let up = false;
  if (sh <= 0) {
    q = m << big(-sh);
  } else if (sh > n + 1) {
    // Everything is below half an ulp.
    q = 0n;
    inexact = true;
    up = rc === 1 ? sign === 1 : rc === 2 ? sign === 0 : false;
    if (up) q = 1n;
  } else {
    q = m >> big(sh);
    const rem = BigInt.asUintN(sh, m);
    if (rem !== 0n) {
      inexact = true;
      if (rc === 0) {
        const half = pow2(sh - 1);
        up = rem > half || (rem === half && (q & 1n) === 1n);
      } else if (rc === 1) up = sign === 1;
      else if (rc === 2) up = sign === 0;
      if (up) q += 1n;
    }
  }
  if (q >= POW2[p]) {
    q >>= 1n;
    lsb += 1;
  }
  if (inexact) {
    ctx.flags |= PE;
    ctx.roundedUp = up;
  }
  if (tiny) {
    if (ueUnmasked) {
      ctx.flags |= UE;
      return { sign, q, lsb: lsb + WRAP, inf: false };
    }
    if (inexact) ctx.flags |= UE;
    return { sign, q, lsb, inf: false };
  }
  // Not tiny: after the carry fix-up q has exactly p bits.
  const E = lsb + p - 1;
  if (E > emax) {
    if (ctx.unmasked(OE)) {
      ctx.flags |= OE;
      if (!toRegister) return null;
      return { sign, q, lsb: lsb - WRAP, inf: false };
    }
    ctx.flags |= OE | PE;
    const toInf = rc === 0 || (rc === 1 && sign === 1) || (rc === 2 && sign === 0);
    ctx.roundedUp = toInf;
    if (toInf) return { sign, q: 0n, lsb: 0, inf: true };
    return { sign, q: (1n << BigInt(p)) - 1n, lsb: emax - (p - 1), inf: false };
  }
  return { sign, q, lsb, inf: false };
}

export function packExt(r: Rounded, bits = 0): F80 {
  if (r.inf) return makeInf(r.sign);
  if (r.q === 0n) return makeZero(r.sign);
  const n = bits || bitLength(r.q);
  const E = r.lsb + n - 1;
  if (E < -16382) {
    // Denormal: the stored significand is the value in units of 2^-16445.
    return { se: r.sign << 15, sig: r.q << BigInt(r.lsb + 16445) };
  }
  return { se: (r.sign << 15) | ((E + 16383) & 0x7fff), sig: n === 64 ? r.q : r.q << BIG[64 - n] };
}

/** Rounds an exact value into a register under PC and RC; null when an unmasked exception suppresses it. */
export function roundToRegister(sign: number, m: bigint, e: number, fmt: Format, ctx: FpCtx, bits = 0): F80 | null {
  const r = roundValue(sign, m, e, fmt, true, ctx, bits);
  if (r === null) return null;
  // A normal result has exactly p significant bits.
  return packExt(r, !r.inf && r.q >= POW2[fmt.p - 1] ? fmt.p : 0);
}

// ---------------------------------------------------------------------------------------------
// NaN handling

function quiet(x: F80): F80 {
  return { se: x.se, sig: x.sig | QUIET_BIT };
}

/**
 * The x87 NaN rules (SDM Vol. 1 table 4-7) for two operands, at least one a NaN: an SNaN raises IE;
 * the QNaN (or quieted SNaN) with the larger significand wins, a QNaN beats an SNaN, ties go to the
 * positive one. Returns null when IE is unmasked.
 */
function propagateNaN(a: F80, ka: number, b: F80, kb: number, ctx: FpCtx): F80 | null {
  if (ka === K_SNAN || kb === K_SNAN) {
    ctx.flags |= IE;
    if (ctx.unmasked(IE)) return null;
  }
  const aNaN = ka === K_QNAN || ka === K_SNAN;
  const bNaN = kb === K_QNAN || kb === K_SNAN;
  if (aNaN && bNaN) {
    if (ka === K_QNAN && kb === K_SNAN) return a;
    if (kb === K_QNAN && ka === K_SNAN) return b;
    const sa = a.sig | QUIET_BIT;
    const sb = b.sig | QUIET_BIT;
    if (sa > sb) return quiet(a);
    if (sb > sa) return quiet(b);
    return quiet(a.se < b.se ? a : b);
  }
  return quiet(aNaN ? a : b);
}

/** Invalid operation: IE, and the QNaN indefinite as masked response. */
export function invalid(ctx: FpCtx): F80 | null {
  ctx.flags |= IE;
  return ctx.unmasked(IE) ? null : INDEFINITE;
}

/** Common operand screening for two-operand arithmetic. Returns a result, or undefined to go on. */
function screen2(a: F80, ka: number, b: F80, kb: number, ctx: FpCtx): F80 | null | undefined {
  if (ka === K_UNSUPPORTED || kb === K_UNSUPPORTED) return invalid(ctx);
  if (ka >= K_QNAN || kb >= K_QNAN) return propagateNaN(a, ka, b, kb, ctx);
  return undefined;
}

function denormalCheck(ka: number, kb: number, ctx: FpCtx): boolean {
  if (ka === K_DENORMAL || kb === K_DENORMAL || ctx.memDenormal) {
    ctx.flags |= DE;
    return ctx.unmasked(DE);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Fast path: operands that are exactly doubles, round to nearest, PC = 53 or 64.
// Operand exponents stay within +-450 so that products, quotients, their error terms and the scale
// factors 2^(63-E) used below are all normal doubles.
//
// The double operation gives p = RN53(exact) and an error-free transformation gives e = exact - p
// exactly (TwoSum, Dekker's TwoProduct). At PC = 53 p is the x87 result (the exponent limits below keep
// everything inside the double's normal range, where the two agree); at PC = 64 the result is p + e
// rounded onto the 64-bit grid, done in integers below 2^11. Division is taken only when exact (or at
// PC = 53). Anything else returns undefined and goes through the exact BigInt path.

const P127 = 1n << 127n;
const TWO_POW = new Float64Array(2200);
for (let i = 0; i < TWO_POW.length; i++) TWO_POW[i] = Math.pow(2, i - 1100);
const SPLIT = 134217729; // 2^27 + 1

/** The value of a register as a double when that is exact and comfortably in range, else NaN. */
function asDouble(x: F80): number {
  const exp = x.se & 0x7fff;
  if (exp < 0x3fff - 450 || exp > 0x3fff + 450 || (x.sig & 0x7ffn) !== 0n || x.sig < J_BIT) return NaN;
  const v = Number(x.sig) * TWO_POW[exp - 16383 - 63 + 1100];
  return x.se & 0x8000 ? -v : v;
}

function roundHalfEven(k: number): number {
  const f = Math.floor(k);
  const d = k - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** op: 0 add, 3 subtract, 1 multiply, 2 divide. */
function fastArith(op: number, a: F80, b: F80, fmt: Format, ctx: FpCtx): F80 | undefined {
  if (fmt.p === 24 || (ctx.cw & 0x0c00) !== 0) return undefined;
  const x = asDouble(a);
  if (x !== x) return undefined;
  let y = asDouble(b);
  if (y !== y) return undefined;
  let p: number;
  let e: number;
  if (op === 0 || op === 3) {
    if (op === 3) y = -y;
    p = x + y;
    const bb = p - x;
    e = x - (p - bb) + (y - bb);
    if (p === 0) return e === 0 ? makeZero(0) : undefined;
  } else if (op === 1) {
    p = x * y;
    e = twoProductError(x, y, p);
  } else {
    p = x / y;
    const pe = twoProductError(p, y, p * y);
    const r = x - p * y - pe;
    if (r !== 0) {
      if (fmt.p !== 53) return undefined;
      ctx.flags |= PE;
      // exact = p + r/y: |p| too large when r/y has the opposite sign of p.
      ctx.roundedUp = r < 0 !== y < 0 !== p < 0;
    }
    return fromDouble(p);
  }
  if (e === 0) return fromDouble(p);
  ctx.flags |= PE;
  if (fmt.p === 53) {
    ctx.roundedUp = e < 0 !== p < 0;
    return fromDouble(p);
  }
  // PC = 64: round |p| + e' (e' = e signed towards |p|) onto the 64-bit grid of |p|'s binade.
  const neg = p < 0;
  const eMag = neg ? -e : e;
  // |p| = P53 * 2^(E - 52), read from the double's fields (p is normal here).
  F64[0] = p;
  const hiWord = U32[1];
  const E = ((hiWord >>> 20) & 0x7ff) - 1023;
  const P53 = (hiWord & 0xfffff) * 4294967296 + U32[0] + 4503599627370496;
  if (P53 === 4503599627370496 && eMag < 0) {
    // Just below a power of two: the exact value lives in the binade below, on a grid twice as fine.
    const k = eMag * TWO_POW[64 - E + 1100];
    const kr = roundHalfEven(k);
    if (kr === k) ctx.flags &= ~PE;
    ctx.roundedUp = kr > k;
    if (kr === 0) return normalPack(neg, E, J_BIT);
    return normalPack(neg, E - 1, 0x10000000000000000n + BigInt(kr));
  }
  const k = eMag * TWO_POW[63 - E + 1100];
  const kr = roundHalfEven(k);
  if (kr === k) ctx.flags &= ~PE;
  ctx.roundedUp = kr > k;
  return normalPack(neg, E, (BigInt(P53) << 11n) + BigInt(kr));
}

function twoProductError(x: number, y: number, p: number): number {
  let c = SPLIT * x;
  const xh = c - (c - x);
  const xl = x - xh;
  c = SPLIT * y;
  const yh = c - (c - y);
  const yl = y - yh;
  return xh * yh - p + xh * yl + xl * yh + xl * yl;
}

function normalPack(neg: boolean, E: number, sig: bigint): F80 {
  return { se: (neg ? 0x8000 : 0) | (E + 16383), sig };
}

/** A nonzero normal double as an extended value. */
function fromDouble(d: number): F80 {
  F64[0] = d;
  const hiWord = U32[1];
  const E = ((hiWord >>> 20) & 0x7ff) - 1023;
  const P53 = (hiWord & 0xfffff) * 4294967296 + U32[0] + 4503599627370496;
  return normalPack(d < 0, E, BigInt(P53) << 11n);
}

// ---------------------------------------------------------------------------------------------
// Basic arithmetic

/** a + b (or a - b when `negateB`), rounded to `fmt`. */
export function add(a: F80, b: F80, negateB: boolean, fmt: Format, ctx: FpCtx): F80 | null {
  const ka = classify(a);
  const kb = classify(b);
  const s = screen2(a, ka, b, kb, ctx);
  if (s !== undefined) return s;
  const sa = signOf(a);
  const sb = signOf(b) ^ (negateB ? 1 : 0);
  if (ka === K_INF || kb === K_INF) {
    if (ka === K_INF && kb === K_INF && sa !== sb) return invalid(ctx);
    if (denormalCheck(ka, kb, ctx)) return null;
    return makeInf(ka === K_INF ? sa : sb);
  }
  if (denormalCheck(ka, kb, ctx)) return null;
  const rc = (ctx.cw >> 10) & 3;
  if (ka === K_ZERO && kb === K_ZERO) return makeZero(sa === sb ? sa : rc === 1 ? 1 : 0);
  if (kb === K_ZERO) return roundToRegister(sa, a.sig, lsbExponent(a), fmt, ctx);
  if (ka === K_ZERO) return roundToRegister(sb, b.sig, lsbExponent(b), fmt, ctx);
  const fast = fastArith(negateB ? 3 : 0, a, b, fmt, ctx);
  if (fast) return fast;
  let ma = a.sig;
  let mb = b.sig;
  let ea = lsbExponent(a);
  let eb = lsbExponent(b);
  // A far smaller operand only matters as a sticky bit below every rounding position.
  if (ea - eb > 130) {
    mb = 1n;
    eb = ea - 130;
  } else if (eb - ea > 130) {
    ma = 1n;
    ea = eb - 130;
  }
  const e = Math.min(ea, eb);
  const A = ma << BigInt(ea - e);
  const B = mb << BigInt(eb - e);
  let sum: bigint;
  let sign: number;
  if (sa === sb) {
    sum = A + B;
    sign = sa;
  } else if (A >= B) {
    sum = A - B;
    sign = sa;
  } else {
    sum = B - A;
    sign = sb;
  }
  if (sum === 0n) return makeZero(rc === 1 ? 1 : 0);
  return roundToRegister(sign, sum, e, fmt, ctx);
}

export function mul(a: F80, b: F80, fmt: Format, ctx: FpCtx): F80 | null {
  const ka = classify(a);
  const kb = classify(b);
  const s = screen2(a, ka, b, kb, ctx);
  if (s !== undefined) return s;
  const sign = signOf(a) ^ signOf(b);
  if (ka === K_INF || kb === K_INF) {
    if (ka === K_ZERO || kb === K_ZERO) return invalid(ctx);
    if (denormalCheck(ka, kb, ctx)) return null;
    return makeInf(sign);
  }
  if (denormalCheck(ka, kb, ctx)) return null;
  if (ka === K_ZERO || kb === K_ZERO) return makeZero(sign);
  const fast = fastArith(1, a, b, fmt, ctx);
  if (fast) return fast;
  const prod = a.sig * b.sig;
  const bits = ka === K_NORMAL && kb === K_NORMAL ? (prod >= P127 ? 128 : 127) : 0;
  return roundToRegister(sign, prod, lsbExponent(a) + lsbExponent(b), fmt, ctx, bits);
}

/** Quotient of two positive significands with enough bits for any rounding plus a sticky bit. */
function divideExact(ma: bigint, ea: number, mb: bigint, eb: number): { m: bigint; e: number } {
  let shift = 68 + (mb >= J_BIT ? 64 : bitLength(mb)) - (ma >= J_BIT ? 64 : bitLength(ma));
  if (shift < 0) shift = 0;
  const num = ma << BigInt(shift);
  const q = num / mb;
  const sticky = num - q * mb !== 0n ? 1n : 0n;
  return { m: (q << 1n) | sticky, e: ea - eb - shift - 1 };
}

export function div(a: F80, b: F80, fmt: Format, ctx: FpCtx): F80 | null {
  const ka = classify(a);
  const kb = classify(b);
  const s = screen2(a, ka, b, kb, ctx);
  if (s !== undefined) return s;
  const sign = signOf(a) ^ signOf(b);
  if (ka === K_INF) {
    if (kb === K_INF) return invalid(ctx);
    if (denormalCheck(ka, kb, ctx)) return null;
    return makeInf(sign);
  }
  if (kb === K_INF) {
    if (denormalCheck(ka, kb, ctx)) return null;
    return makeZero(sign);
  }
  if (ka === K_ZERO && kb === K_ZERO) return invalid(ctx);
  // Silicon checks the zero divisor before the denormal dividend (no DE for denormal / 0).
  if (kb === K_ZERO) {
    ctx.flags |= ZE;
    return ctx.unmasked(ZE) ? null : makeInf(sign);
  }
  if (denormalCheck(ka, kb, ctx)) return null;
  if (ka === K_ZERO) return makeZero(sign);
  const fast = fastArith(2, a, b, fmt, ctx);
  if (fast) return fast;
  const q = divideExact(a.sig, lsbExponent(a), b.sig, lsbExponent(b));
  return roundToRegister(sign, q.m, q.e, fmt, ctx);
}

/** Integer square root (floor) of a non-negative BigInt. */
export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  const bits = bitLength(n);
  // Newton's iteration decreases monotonically to floor(sqrt(n)) from any start above the root.
  let x: bigint;
  if (bits < 1000) {
    const approx = Math.sqrt(Number(n));
    x = BigInt(Math.ceil(approx * (1 + 2 ** -40))) + 1n;
  } else {
    x = 1n << BigInt((bits >> 1) + 1);
  }
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x -= 1n;
  while ((x + 1n) * (x + 1n) <= n) x += 1n;
  return x;
}

export function sqrt(a: F80, fmt: Format, ctx: FpCtx): F80 | null {
  const k = classify(a);
  if (k === K_UNSUPPORTED) return invalid(ctx);
  if (k === K_SNAN) {
    ctx.flags |= IE;
    return ctx.unmasked(IE) ? null : quiet(a);
  }
  if (k === K_QNAN) return a;
  if (k === K_ZERO) return a;
  const sign = signOf(a);
  if (sign) return invalid(ctx);
  if (k === K_INF) return a;
  if (denormalCheck(k, K_NORMAL, ctx)) return null;
  let m = a.sig;
  let e = lsbExponent(a);
  // Scale to >= 140 bits and an even exponent so the root has >= 70 bits and a sticky remainder.
  let shift = 140 - bitLength(m);
  if ((e - shift) & 1) shift += 1;
  m <<= BigInt(shift);
  e -= shift;
  // m < 2^142: a double estimate 2^-40 above the root is within 2^-80 after one Newton step, so
  // the step lands on floor(sqrt(m)) or one above it (Newton never goes below from above).
  let r = BigInt(Math.ceil(Math.sqrt(Number(m)) * (1 + 2 ** -40))) + 1n;
  r = (r + m / r) >> 1n;
  let sq = r * r;
  while (sq > m) {
    r -= 1n;
    sq = r * r;
  }
  const sticky = m !== sq ? 1n : 0n;
  return roundToRegister(0, (r << 1n) | sticky, e / 2 - 1, fmt, ctx, bitLength(r) + 1);
}

/**
 * Compares a with b: 0 = greater, 1 = less, 2 = equal, 3 = unordered. `quietNaNOk` (FUCOM*) raises
 * IE only for SNaNs; FCOM* raises it for any NaN.
 */
export const CMP_GT = 0;
export const CMP_LT = 1;
export const CMP_EQ = 2;
export const CMP_UN = 3;
export function compare(a: F80, b: F80, quietNaNOk: boolean, ctx: FpCtx): number {
  // Silicon sets the condition codes even when IE or DE is unmasked.
  const ka = classify(a);
  const kb = classify(b);
  if (ka === K_UNSUPPORTED || kb === K_UNSUPPORTED || ka === K_SNAN || kb === K_SNAN) {
    ctx.flags |= IE;
    return CMP_UN;
  }
  if (ka === K_QNAN || kb === K_QNAN) {
    if (!quietNaNOk) ctx.flags |= IE;
    return CMP_UN;
  }
  denormalCheck(ka, kb, ctx);
  const v = cmpValues(a, ka, b, kb);
  return v === 0 ? CMP_EQ : v < 0 ? CMP_LT : CMP_GT;
}

/** Total order of two non-NaN, supported values: -1, 0, 1. */
function cmpValues(a: F80, ka: number, b: F80, kb: number): number {
  if (ka === K_ZERO && kb === K_ZERO) return 0;
  const sa = signOf(a);
  const sb = signOf(b);
  if (ka === K_ZERO) return sb ? 1 : -1;
  if (kb === K_ZERO) return sa ? -1 : 1;
  if (sa !== sb) return sa ? -1 : 1;
  const mag = cmpMagnitude(a, b);
  return sa ? -mag : mag;
}

function cmpMagnitude(a: F80, b: F80): number {
  // Pseudo-denormals (exp 0 with J set) equal exp 1; normalise the exponent first.
  const ea = (a.se & 0x7fff) || 1;
  const eb = (b.se & 0x7fff) || 1;
  if (ea !== eb) {
    // A denormal's significand has leading zeros, but any exponent-1 value is still below a larger exponent.
    return ea > eb ? 1 : -1;
  }
  return a.sig === b.sig ? 0 : a.sig > b.sig ? 1 : -1;
}

// ---------------------------------------------------------------------------------------------
// Integer conversions and rounding to integral values

/** Exact conversion of a signed integer to extended. */
export function fromBigInt(v: bigint): F80 {
  if (v === 0n) return makeZero(0);
  const sign = v < 0n ? 1 : 0;
  const m = sign ? -v : v;
  const n = bitLength(m);
  return { se: (sign << 15) | (16383 + n - 1), sig: (m << BigInt(64 - n)) & MASK64 };
}

export function fromInt(v: number): F80 {
  return fromBigInt(BigInt(v));
}

/** Rounds a finite value to an integer under RC; returns the integer and sets PE/C1. */
function roundIntegral(x: F80, ctx: FpCtx): bigint {
  const sign = signOf(x);
  const e = lsbExponent(x);
  let m = x.sig;
  if (m === 0n) return 0n;
  if (e >= 0) return sign ? -(m << BigInt(e)) : m << BigInt(e);
  const rc = (ctx.cw >> 10) & 3;
  const sh = -e;
  let q: bigint;
  let rem: bigint;
  let half: bigint;
  if (sh > 66) {
    q = 0n;
    rem = m;
    half = 1n << 66n; // m < 2^64 is below half
  } else {
    const bsh = BigInt(sh);
    q = m >> bsh;
    rem = m - (q << bsh);
    half = 1n << (bsh - 1n);
  }
  if (rem !== 0n) {
    let up = false;
    if (rc === 0) up = rem > half || (rem === half && (q & 1n) === 1n);
    else if (rc === 1) up = sign === 1;
    else if (rc === 2) up = sign === 0;
    if (up) q += 1n;
    ctx.flags |= PE;
    ctx.roundedUp = up;
  }
  m = q;
  return sign ? -m : m;
}

/**
 * FIST/FISTP: converts to a `bits`-bit signed integer. Returns the integer, or null when nothing is to
 * be stored (unmasked IE); out of range, NaN and infinity give IE and, masked, the integer indefinite.
 */
export function toInteger(x: F80, bits: number, ctx: FpCtx): bigint | null {
  const k = classify(x);
  const indefinite = -(1n << BigInt(bits - 1));
  if (k === K_UNSUPPORTED || k === K_QNAN || k === K_SNAN || k === K_INF) {
    ctx.flags |= IE;
    return ctx.unmasked(IE) ? null : indefinite;
  }
  if (k === K_ZERO) return 0n;
  // FIST does not signal DE for denormal sources (they round to 0 or +-1 with PE).
  const probe = new FpCtx();
  probe.begin(ctx.cw);
  const v = roundIntegral(x, probe);
  const max = (1n << BigInt(bits - 1)) - 1n;
  if (v > max || v < indefinite) {
    ctx.flags |= IE;
    return ctx.unmasked(IE) ? null : indefinite;
  }
  ctx.flags |= probe.flags;
  if (probe.flags & PE) ctx.roundedUp = probe.roundedUp;
  return v;
}

/** FRNDINT: rounds to an integral value under RC (PC is ignored). */
export function roundToIntegral(x: F80, ctx: FpCtx): F80 | null {
  const k = classify(x);
  if (k === K_UNSUPPORTED) return invalid(ctx);
  if (k === K_SNAN) {
    ctx.flags |= IE;
    return ctx.unmasked(IE) ? null : quiet(x);
  }
  if (k === K_QNAN || k === K_INF || k === K_ZERO) return x;
  if (k === K_DENORMAL) {
    ctx.flags |= DE;
    if (ctx.unmasked(DE)) return null;
  }
  if (lsbExponent(x) >= 0) return x;
  const v = roundIntegral(x, ctx);
  if (v === 0n) return makeZero(signOf(x));
  return fromBigInt(v);
}

// ---------------------------------------------------------------------------------------------
// Real memory formats

/**
 * Converts a 32-bit real exactly. Raises nothing: an SNaN stays signalling and a denormal source is
 * normalised with `ctx.memDenormal` set, so the consuming instruction applies the exception
 * precedence silicon uses (an invalid ST(0) beats the denormal memory operand).
 */
export function fromF32(bits: number, ctx: FpCtx): F80 {
  const sign = bits >>> 31;
  const exp = (bits >>> 23) & 0xff;
  const frac = bits & 0x7fffff;
  if (exp === 0xff) {
    if (frac === 0) return makeInf(sign);
    return { se: (sign << 15) | 0x7fff, sig: J_BIT | (BigInt(frac) << 40n) };
  }
  if (exp === 0) {
    if (frac === 0) return makeZero(sign);
    ctx.memDenormal = true;
    return normalFrom(sign, BigInt(frac), -149);
  }
  return normalFrom(sign, BigInt(frac | 0x800000), exp - 127 - 23);
}

/** Converts a 64-bit real given as two 32-bit halves (see fromF32). */
export function fromF64(lo: number, hi: number, ctx: FpCtx): F80 {
  const sign = hi >>> 31;
  const exp = (hi >>> 20) & 0x7ff;
  const frac = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo >>> 0);
  if (exp === 0x7ff) {
    if (frac === 0n) return makeInf(sign);
    return { se: (sign << 15) | 0x7fff, sig: J_BIT | (frac << 11n) };
  }
  if (exp === 0) {
    if (frac === 0n) return makeZero(sign);
    ctx.memDenormal = true;
    return normalFrom(sign, frac, -1074);
  }
  return normalFrom(sign, frac | (1n << 52n), exp - 1023 - 52);
}

/**
 * FLD m32/m64: an SNaN raises IE and loads quieted (nothing when IE is unmasked); a denormal raises
 * DE and, as on silicon, loads even when DE is unmasked (the conversion is exact).
 */
export function loadReal(v: F80, ctx: FpCtx): F80 | null {
  if (ctx.memDenormal) ctx.flags |= DE;
  if (classify(v) === K_SNAN) {
    ctx.flags |= IE;
    return ctx.unmasked(IE) ? null : quiet(v);
  }
  return v;
}

/** An exactly representable value m * 2^e as a normalised extended value. */
export function normalFrom(sign: number, m: bigint, e: number): F80 {
  const n = bitLength(m);
  return { se: (sign << 15) | (e + n - 1 + 16383), sig: (m << BigInt(64 - n)) & MASK64 };
}

/**
 * Rounds a register value for a 32/64-bit real store. Returns the value in the destination format as
 * `Rounded` (or a NaN/indefinite marker via `nan`), null when an unmasked exception suppresses the store.
 */
function roundForStore(x: F80, fmt: Format, ctx: FpCtx): Rounded | { nanSign: number; payload: bigint } | null {
  const k = classify(x);
  const sign = signOf(x);
  if (k === K_UNSUPPORTED) {
    ctx.flags |= IE;
    return ctx.unmasked(IE) ? null : { nanSign: 1, payload: QUIET_BIT };
  }
  if (k === K_SNAN || k === K_QNAN) {
    if (k === K_SNAN) {
      ctx.flags |= IE;
      if (ctx.unmasked(IE)) return null;
    }
    return { nanSign: sign, payload: (x.sig | QUIET_BIT) & ~J_BIT };
  }
  if (k === K_INF) return { sign, q: 0n, lsb: 0, inf: true };
  if (k === K_ZERO) return { sign, q: 0n, lsb: 0, inf: false };
  return roundValue(sign, x.sig, lsbExponent(x), fmt, false, ctx);
}

export function toF32(x: F80, ctx: FpCtx): number | null {
  const r = roundForStore(x, FMT_F32, ctx);
  if (r === null) return null;
  if ('nanSign' in r) return ((r.nanSign << 31) | 0x7f800000 | Number(r.payload >> 40n)) >>> 0;
  const s = r.sign << 31;
  if (r.inf) return (s | 0x7f800000) >>> 0;
  if (r.q === 0n) return s >>> 0;
  const n = bitLength(r.q);
  const E = r.lsb + n - 1;
  if (E < -126) return (s | Number(r.q << BigInt(r.lsb + 149))) >>> 0;
  const frac = Number((r.q << BigInt(24 - n)) & 0x7fffffn);
  return (s | ((E + 127) << 23) | frac) >>> 0;
}

/** Returns [lo, hi] of the 64-bit real, or null. */
export function toF64(x: F80, ctx: FpCtx): [number, number] | null {
  const r = roundForStore(x, FMT_F64, ctx);
  if (r === null) return null;
  let bits: bigint;
  if ('nanSign' in r) bits = (BigInt(r.nanSign) << 63n) | (0x7ffn << 52n) | (r.payload >> 11n);
  else {
    const s = BigInt(r.sign) << 63n;
    if (r.inf) bits = s | (0x7ffn << 52n);
    else if (r.q === 0n) bits = s;
    else {
      const n = bitLength(r.q);
      const E = r.lsb + n - 1;
      if (E < -1022) bits = s | (r.q << BigInt(r.lsb + 1074));
      else bits = s | (BigInt(E + 1023) << 52n) | ((r.q << BigInt(53 - n)) & 0xfffffffffffffn);
    }
  }
  return [Number(bits & 0xffffffffn), Number(bits >> 32n)];
}

// ---------------------------------------------------------------------------------------------
// Packed BCD

/** FBLD: 18 BCD digits and a sign byte; invalid digits are taken at face value (undefined on hardware). */
export function fromBcd(bytes: number[]): F80 {
  let v = 0n;
  for (let i = 8; i >= 0; i--) {
    const b = bytes[i];
    v = v * 100n + BigInt((b >> 4) * 10 + (b & 15));
  }
  const sign = bytes[9] & 0x80 ? 1 : 0;
  if (v === 0n) return makeZero(sign);
  const r = fromBigInt(v);
  return { se: r.se | (sign << 15), sig: r.sig };
}

/** FBSTP: returns the 10 bytes to store, or null (unmasked IE). */
export function toBcd(x: F80, ctx: FpCtx): number[] | null {
  const k = classify(x);
  const indefinite = [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];
  if (k === K_UNSUPPORTED || k === K_QNAN || k === K_SNAN || k === K_INF) {
    ctx.flags |= IE;
    return ctx.unmasked(IE) ? null : indefinite;
  }
  const sign = signOf(x);
  let v = 0n;
  if (k !== K_ZERO) {
    const probe = new FpCtx();
    probe.begin(ctx.cw);
    v = roundIntegral(x, probe);
    if (v < 0n) v = -v;
    if (v > 999999999999999999n) {
      ctx.flags |= IE;
      return ctx.unmasked(IE) ? null : indefinite;
    }
    ctx.flags |= probe.flags;
    if (probe.flags & PE) ctx.roundedUp = probe.roundedUp;
  }
  const out = new Array<number>(10).fill(0);
  for (let i = 0; i < 9; i++) {
    const d = Number(v % 100n);
    v /= 100n;
    out[i] = ((Math.floor(d / 10) << 4) | d % 10) & 0xff;
  }
  out[9] = sign ? 0x80 : 0;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers for the exact miscellaneous instructions

/** FSCALE: a * 2^trunc(b). */
export function scale(a: F80, b: F80, ctx: FpCtx): F80 | null {
  const ka = classify(a);
  const kb = classify(b);
  const s = screen2(a, ka, b, kb, ctx);
  if (s !== undefined) return s;
  const sa = signOf(a);
  const sb = signOf(b);
  if (kb === K_INF) {
    if (ka === K_ZERO) return sb ? (denormalCheck(ka, kb, ctx) ? null : a) : invalid(ctx);
    if (ka === K_INF) return sb ? invalid(ctx) : a;
    if (denormalCheck(ka, kb, ctx)) return null;
    return sb ? makeZero(sa) : makeInf(sa);
  }
  if (denormalCheck(ka, kb, ctx)) return null;
  if (ka === K_INF || ka === K_ZERO) return a;
  // trunc(b), clamped: anything beyond +-2^17 over/underflows anyway.
  let n: number;
  const eb = lsbExponent(b);
  if (kb === K_ZERO) n = 0;
  else if (eb >= -46) n = 1 << 20;
  else {
    const t = b.sig >> BigInt(-eb);
    n = t > 1n << 20n ? 1 << 20 : Number(t);
  }
  if (sb) n = -n;
  return roundToRegister(sa, a.sig, lsbExponent(a) + n, FMT_EXT64, ctx);
}

/** Unbiased exponent and value helpers for FXTRACT: the true exponent of a finite nonzero value. */
export function trueExponent(x: F80): number {
  return lsbExponent(x) + bitLength(x.sig) - 1;
}

/** The value x * 2^-trueExponent(x), i.e. the significand in [1, 2), normalised (exact). */
export function significandOf(x: F80): F80 {
  const n = bitLength(x.sig);
  return { se: (x.se & 0x8000) | 16383, sig: (x.sig << BigInt(64 - n)) & MASK64 };
}

export { quiet as quietNaN, propagateNaN, screen2, denormalCheck, cmpValues };
