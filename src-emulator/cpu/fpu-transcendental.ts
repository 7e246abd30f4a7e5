/**
 * x87 transcendental functions in 136-bit BigInt arithmetic, rounded once to 64 bits under RC.
 *
 * Hardware results are within about 1 ulp of the true value; ours are the correctly rounded true
 * value except within about 2^-130 of a rounding boundary, so they agree with hardware to 1 ulp. Like the
 * hardware, FSIN/FCOS/FSINCOS/FPTAN reduce their argument with a 66-bit approximation of pi (the value
 * the FPU holds internally), which is what makes sin(x) of large arguments match silicon rather than
 * the mathematically exact value.
 */
import {
  type F80,
  type FpCtx,
  FMT_EXT64,
  bitLength,
  lsbExponent,
  roundToRegister,
} from './fpu-float80';

/** A positive-or-negative big float (-1)^s * m * 2^e, m truncated to PREC bits. */
interface BF {
  s: number;
  m: bigint;
  e: number;
}

const PREC = 136;
const FIX = 136; // fixed-point fraction bits for series
const ONE_FIX = 1n << BigInt(FIX);

function norm(x: BF): BF {
  if (x.m === 0n) return { s: x.s, m: 0n, e: 0 };
  const n = bitLength(x.m);
  if (n > PREC) {
    const sh = n - PREC;
    return { s: x.s, m: x.m >> BigInt(sh), e: x.e + sh };
  }
  return x;
}

export function bfFromF80(x: F80): BF {
  return { s: x.se >>> 15, m: x.sig, e: lsbExponent(x) };
}

function bfMul(a: BF, b: BF): BF {
  return norm({ s: a.s ^ b.s, m: a.m * b.m, e: a.e + b.e });
}

function bfAdd(a: BF, b: BF): BF {
  if (a.m === 0n) return b;
  if (b.m === 0n) return a;
  // Drop an operand entirely below the working precision of the other.
  const ta = a.e + bitLength(a.m);
  const tb = b.e + bitLength(b.m);
  if (ta - tb > PREC + 8) return a;
  if (tb - ta > PREC + 8) return b;
  const e = Math.min(a.e, b.e);
  const A = a.m << BigInt(a.e - e);
  const B = b.m << BigInt(b.e - e);
  const va = a.s ? -A : A;
  const vb = b.s ? -B : B;
  const v = va + vb;
  return norm({ s: v < 0n ? 1 : 0, m: v < 0n ? -v : v, e });
}

function bfNeg(a: BF): BF {
  return { s: a.s ^ 1, m: a.m, e: a.e };
}

function bfDiv(a: BF, b: BF): BF {
  const sh = PREC + 4 + bitLength(b.m) - bitLength(a.m);
  const k = sh > 0 ? sh : 0;
  return norm({ s: a.s ^ b.s, m: (a.m << BigInt(k)) / b.m, e: a.e - b.e - k });
}

function bfInt(v: number): BF {
  const b = BigInt(v);
  return { s: v < 0 ? 1 : 0, m: b < 0n ? -b : b, e: 0 };
}

/** Fixed-point (2^FIX) value of |x| for |x| < 2^40; tiny values underflow to 0. */
function toFix(x: BF): bigint {
  const sh = x.e + FIX;
  return sh >= 0 ? x.m << BigInt(sh) : x.m >> BigInt(-sh);
}

function fromFix(v: bigint): BF {
  return norm({ s: v < 0n ? 1 : 0, m: v < 0n ? -v : v, e: -FIX });
}

function fixMul(a: bigint, b: bigint): bigint {
  return (a * b) >> BigInt(FIX);
}

// ---------------------------------------------------------------------------------------------
// Constants

/** atan(1/n) in fixed point. */
function atanInv(n: bigint): bigint {
  let term = ONE_FIX / n;
  const n2 = n * n;
  let sum = term;
  for (let k = 1n; term !== 0n; k++) {
    term /= n2;
    sum += (k & 1n ? -term : term) / (2n * k + 1n);
  }
  return sum;
}

/** Fixed-point pi (Machin) and ln 2 (2 atanh(1/3)). */
const PI_FIX = 4n * (4n * atanInv(5n) - atanInv(239n));
const LN2_FIX = (() => {
  let term = ONE_FIX / 3n;
  let sum = term;
  for (let k = 1n; term !== 0n; k++) {
    term /= 9n;
    sum += term / (2n * k + 1n);
  }
  return 2n * sum;
})();
const LN10_FIX = (() => {
  // ln 10 = 3 ln 2 + ln(5/4) = 3 ln2 + 2 atanh(1/9)
  let term = ONE_FIX / 9n;
  let sum = term;
  for (let k = 1n; term !== 0n; k++) {
    term /= 81n;
    sum += term / (2n * k + 1n);
  }
  return 3n * LN2_FIX + 2n * sum;
})();

const PI: BF = fromFix(PI_FIX);
const LN2: BF = fromFix(LN2_FIX);

/** The FPU's internal 66-bit pi, used for argument reduction like the hardware. */
const PI66: BF = { s: 0, m: (0xc90fdaa22168c234n << 2n) | 3n, e: 1 - 65 };

/** Constants for FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2 rounded under RC (sticky set: none is exact). */
export function constant(which: 'l2t' | 'l2e' | 'pi' | 'lg2' | 'ln2', ctx: FpCtx): F80 {
  let v: BF;
  switch (which) {
    case 'pi':
      v = PI;
      break;
    case 'ln2':
      v = LN2;
      break;
    case 'l2e':
      v = bfDiv({ s: 0, m: 1n, e: 0 }, LN2);
      break;
    case 'l2t':
      v = bfDiv(fromFix(LN10_FIX), LN2);
      break;
    case 'lg2':
      v = bfDiv(LN2, fromFix(LN10_FIX));
      break;
  }
  const saved = ctx.flags;
  const r = roundBF(v, ctx)!;
  // Constant loads raise no precision exception on 387+ (only C1 reports the rounding direction).
  ctx.flags = saved;
  return r;
}

function roundBF(v: BF, ctx: FpCtx): F80 | null {
  // Sticky bit: the big float is a truncation of an irrational value.
  return roundToRegister(v.s, (v.m << 1n) | 1n, v.e - 1, FMT_EXT64, ctx);
}

export function roundResult(v: BF, ctx: FpCtx): F80 | null {
  if (v.m === 0n) return { se: v.s << 15, sig: 0n };
  return roundBF(v, ctx);
}

// ---------------------------------------------------------------------------------------------
// Series (fixed point, argument t = x^2 small)

/** sin(r)/r and cos(r) for t = r^2 (fixed point, t < 1). */
function sinOverX(t: bigint): bigint {
  let term = ONE_FIX;
  let sum = ONE_FIX;
  for (let k = 1n; term !== 0n; k++) {
    term = fixMul(term, t) / ((2n * k) * (2n * k + 1n));
    sum += k & 1n ? -term : term;
  }
  return sum;
}

function cosSeries(t: bigint): bigint {
  let term = ONE_FIX;
  let sum = ONE_FIX;
  for (let k = 1n; term !== 0n; k++) {
    term = fixMul(term, t) / ((2n * k - 1n) * (2n * k));
    sum += k & 1n ? -term : term;
  }
  return sum;
}

/** atan(z)/z for t = z^2 (t <= ~0.01). */
function atanOverX(t: bigint): bigint {
  let pow = ONE_FIX;
  let sum = ONE_FIX;
  for (let k = 1n; pow !== 0n; k++) {
    pow = fixMul(pow, t);
    const term = pow / (2n * k + 1n);
    sum += k & 1n ? -term : term;
  }
  return sum;
}

/** atanh(u)/u for t = u^2. */
function atanhOverX(t: bigint): bigint {
  let pow = ONE_FIX;
  let sum = ONE_FIX;
  for (let k = 1n; pow !== 0n; k++) {
    pow = fixMul(pow, t);
    sum += pow / (2n * k + 1n);
  }
  return sum;
}

/** (e^w - 1)/w in fixed point for |w| < 1 (w fixed, signed). */
function expm1OverX(w: bigint): bigint {
  let term = ONE_FIX;
  let sum = ONE_FIX;
  for (let k = 2n; term !== 0n; k++) {
    term = fixMul(term, w) / k;
    sum += term;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Functions on finite values

function bfSqrtFix(t: bigint): bigint {
  // sqrt of a fixed-point value: sqrt(t * 2^FIX) in fixed point.
  const n = t << BigInt(FIX);
  if (n < 2n) return n;
  // Start just above the root from a double estimate; Newton then descends in two or three steps.
  let x = BigInt(Math.ceil(Math.sqrt(Number(n)) * (1 + 2 ** -40))) + 1n;
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/**
 * Reduces x modulo pi66/2 for the trigonometric instructions. Returns the octant count k mod 4 and
 * the reduced argument r in [-pi/4, pi/4] as a big float.
 */
function reduce(x: BF): { k: number; r: BF } {
  // k = round(x / (pi66/2)); r = x - k * pi66/2 exactly.
  const halfPi: BF = { s: 0, m: PI66.m, e: PI66.e - 1 };
  const ratio = bfDiv({ s: 0, m: x.m, e: x.e }, halfPi);
  let kBig: bigint;
  if (ratio.e >= 0) kBig = ratio.m << BigInt(ratio.e);
  else kBig = (ratio.m + (1n << BigInt(-ratio.e - 1))) >> BigInt(-ratio.e);
  // r = |x| - k * halfPi, exact in BigInt at the finer exponent.
  const e = Math.min(x.e, halfPi.e);
  const X = x.m << BigInt(x.e - e);
  const K = (kBig * halfPi.m) << BigInt(halfPi.e - e);
  const d = X - K;
  let r = norm({ s: d < 0n ? 1 : 0, m: d < 0n ? -d : d, e });
  let k = Number(kBig & 3n);
  if (x.s) {
    r = bfNeg(r);
    k = (4 - k) & 3;
  }
  return { k, r };
}

function sinCosReduced(r: BF): { sin: BF; cos: BF } {
  const t = toFix(bfMul(r, r));
  const sin = bfMul(r, fromFix(sinOverX(t)));
  const cos = fromFix(cosSeries(t));
  return { sin, cos };
}

/** sin and cos of a finite value with |x| < 2^63, using the hardware's reduction. */
export function sinCos(x: F80): { sin: BF; cos: BF } {
  const { k, r } = reduce(bfFromF80(x));
  const sc = sinCosReduced(r);
  switch (k) {
    case 0:
      return sc;
    case 1:
      return { sin: sc.cos, cos: bfNeg(sc.sin) };
    case 2:
      return { sin: bfNeg(sc.sin), cos: bfNeg(sc.cos) };
    default:
      return { sin: bfNeg(sc.cos), cos: sc.sin };
  }
}

export function tan(x: F80): BF {
  const sc = sinCos(x);
  return bfDiv(sc.sin, sc.cos);
}

/** atan(z) for 0 <= z <= 1 by halvings (used once, for the table below). */
function atanByHalving(z: BF): BF {
  let doublings = 0;
  for (let i = 0; i < 3; i++) {
    const z2 = toFix(bfMul(z, z));
    if (z2 === 0n) break;
    const den = ONE_FIX + bfSqrtFix(ONE_FIX + z2);
    z = bfDiv(z, fromFix(den));
    doublings++;
  }
  const a = bfMul(z, fromFix(atanOverX(toFix(bfMul(z, z)))));
  return { s: a.s, m: a.m, e: a.e + doublings };
}

/** atan(k/8) for k = 0..8. */
const ATAN_EIGHTHS: BF[] = Array.from({ length: 9 }, (_, k) => (k === 0 ? { s: 0, m: 0n, e: 0 } : atanByHalving({ s: 0, m: BigInt(k), e: -3 })));

/** atan(z) for z >= 0 given as a big float. */
function atanPos(z: BF): BF {
  let invert = false;
  const zn = bitLength(z.m);
  const top = z.e + zn - 1;
  if (top > 0 || (top === 0 && z.m !== 1n << BigInt(zn - 1))) {
    // z > 1: atan(z) = pi/2 - atan(1/z)
    invert = true;
    z = bfDiv({ s: 0, m: 1n, e: 0 }, z);
  }
  // atan(z) = atan(c) + atan((z - c) / (1 + z c)) with c = k/8 nearest to z: |u| <= 1/16.
  const k = Math.round(Number(toFix(z) >> BigInt(FIX - 8)) / 32);
  let a: BF;
  if (k === 0) a = bfMul(z, fromFix(atanOverX(toFix(bfMul(z, z)))));
  else {
    const c: BF = { s: 0, m: BigInt(k), e: -3 };
    const u = bfDiv(bfAdd(z, bfNeg(c)), bfAdd({ s: 0, m: 1n, e: 0 }, bfMul(z, c)));
    a = bfAdd(ATAN_EIGHTHS[k], bfMul(u, fromFix(atanOverX(toFix(bfMul(u, u))))));
  }
  if (invert) a = bfAdd({ s: 0, m: PI.m, e: PI.e - 1 }, bfNeg(a));
  return a;
}

/** atan2(y, x) for finite nonzero operands. */
export function atan2(y: F80, x: F80): BF {
  const by = bfFromF80(y);
  const bx = bfFromF80(x);
  let a = atanPos(bfDiv({ s: 0, m: by.m, e: by.e }, { s: 0, m: bx.m, e: bx.e }));
  if (bx.s) a = bfAdd(PI, bfNeg(a));
  if (by.s) a = bfNeg(a);
  return a;
}

/** ln(m) for m in [~0.7, ~1.42] given as a big float, via 2 atanh((m-1)/(m+1)). */
function lnNear1(num: BF, den: BF): BF {
  const u = bfDiv(num, den);
  const f = atanhOverX(toFix(bfMul(u, u)));
  const r = bfMul(u, fromFix(f));
  return { s: r.s, m: r.m, e: r.e + 1 };
}

/** log2(x) for finite x > 0. */
export function log2(x: F80): BF {
  return log2Bf(bfFromF80(x));
}

function log2Bf(bx: BF): BF {
  const n = bitLength(bx.m);
  let E = bx.e + n - 1;
  // M = x / 2^E in [1, 2); fold into [sqrt(1/2), sqrt(2)] so the atanh series converges fast.
  let M: BF = { s: 0, m: bx.m, e: -(n - 1) };
  const top64 = n >= 64 ? bx.m >> BigInt(n - 64) : bx.m << BigInt(64 - n);
  if (top64 > 0xb504f333f9de6484n) {
    M = { s: 0, m: M.m, e: M.e - 1 };
    E += 1;
  }
  const one: BF = { s: 0, m: 1n, e: 0 };
  const ln = lnNear1(bfAdd(M, bfNeg(one)), bfAdd(M, one));
  return bfAdd(bfInt(E), bfDiv(ln, LN2));
}

/** log2(1 + x) for finite x > -1. */
export function log2p1(x: F80): BF {
  const bx = bfFromF80(x);
  const one: BF = { s: 0, m: 1n, e: 0 };
  // Small |x| (FYL2XP1's domain): 2 atanh(x / (2 + x)) keeps full relative precision; else plain log2.
  if (bx.e + bitLength(bx.m) <= -1) {
    const two: BF = { s: 0, m: 2n, e: 0 };
    return bfDiv(lnNear1(bx, bfAdd(two, bx)), LN2);
  }
  return log2Bf(bfAdd(one, bx));
}

/** 2^x - 1 for |x| <= 1 (F2XM1's domain); beyond it the result is undefined and computed in doubles. */
export function exp2m1(x: F80): BF {
  const bx = bfFromF80(x);
  const top = bx.e + bitLength(bx.m);
  if (top > 1) {
    const d = Math.pow(2, Number(bx.m) * Math.pow(2, bx.e) * (bx.s ? -1 : 1)) - 1;
    return fromDouble(d);
  }
  const w = bfMul(bx, LN2);
  const wf = toFix(w);
  return bfMul(w, fromFix(expm1OverX(w.s ? -wf : wf)));
}

function fromDouble(d: number): BF {
  if (d === 0 || !Number.isFinite(d)) return { s: d < 0 ? 1 : 0, m: 0n, e: 0 };
  const s = d < 0 ? 1 : 0;
  let a = Math.abs(d);
  let e = 0;
  while (a !== Math.floor(a)) {
    a *= 2;
    e--;
  }
  return norm({ s, m: BigInt(a), e });
}

/** num/den * pi with sign s (den a power of two). */
export function piFraction(num: number, den: number, s: number): BF {
  const v = bfMul(PI, bfInt(num));
  return { s, m: v.m, e: v.e - Math.log2(den) };
}

export function bfMulF80(a: BF, y: F80): BF {
  return bfMul(a, bfFromF80(y));
}

export type { BF };
