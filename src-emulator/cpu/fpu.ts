import type { FpuHost, FpuMemoryOperand, FpuUnit } from './fpu-host';
import {
  type F80,
  FpCtx,
  IE,
  DE,
  ZE,
  PE,
  SF,
  K_ZERO,
  K_DENORMAL,
  K_NORMAL,
  K_INF,
  K_QNAN,
  K_SNAN,
  K_UNSUPPORTED,
  CMP_GT,
  CMP_LT,
  CMP_EQ,
  FMT_EXT64,
  INDEFINITE,
  classify,
  add,
  mul,
  div,
  sqrt,
  compare,
  fromBigInt,
  fromInt,
  fromF32,
  fromF64,
  loadReal,
  toF32,
  toF64,
  toInteger,
  roundToIntegral,
  fromBcd,
  toBcd,
  scale,
  trueExponent,
  significandOf,
  precisionFormat,
  makeZero,
  makeInf,
  invalid,
  propagateNaN,
  signOf,
  lsbExponent,
  roundToRegister,
} from './fpu-float80';
import { constant, sinCos, tan, atan2, log2, log2p1, exp2m1, roundResult, bfMulF80, piFraction } from './fpu-transcendental';

// Status word bits outside the exception flags.
const SW_ES = 0x0080;
const SW_C0 = 0x0100;
const SW_C1 = 0x0200;
const SW_C2 = 0x0400;
const SW_C3 = 0x4000;
const SW_B = 0x8000;
const SW_CC = SW_C0 | SW_C1 | SW_C2 | SW_C3;
const EXC_MASK = 0x3f;

const ONE: F80 = { se: 0x3fff, sig: 0x8000000000000000n };

/**
 * The x87 FPU of a Pentium Pro class CPU (387+ semantics). Registers hold exact 80-bit values and the
 * basic operations are correctly rounded under PC and RC (see docs/fpu.md).
 */
export class Fpu implements FpuUnit {
  /** Control word (bit 6 reads as 1 on 387+). */
  cw = 0x037f;
  /** Status word without TOP (TOP lives in `top`). */
  sw = 0;
  top = 0;
  /** 1 = physical register empty. */
  readonly empty = new Uint8Array(8).fill(1);
  /** Physical registers: sign << 15 | exponent, and the 64-bit significand. */
  readonly se = new Uint16Array(8);
  readonly sig = new BigUint64Array(8);
  fip = 0;
  fcs = 0;
  fdp = 0;
  fds = 0;
  fop = 0;

  private readonly ctx = new FpCtx();
  /** Set by control instructions, which leave FIP/FDP/FOP alone. */
  private control = false;

  constructor(private readonly host: FpuHost) {
    this.reset();
  }

  /** Power-on/RESET state: like FNINIT but with CW = 0x0040 (all exceptions unmasked) as the SDM gives. */
  reset(): void {
    this.init();
    this.cw = 0x0040;
  }

  private init(): void {
    this.cw = 0x037f;
    this.setSwFlags(0);
    this.top = 0;
    this.empty.fill(1);
    this.fip = this.fcs = this.fdp = this.fds = this.fop = 0;
  }

  // -------------------------------------------------------------------------------------------
  // Register stack

  get statusWord(): number {
    return (this.sw & ~0x3800) | (this.top << 11);
  }

  get tagWord(): number {
    let tw = 0;
    for (let i = 0; i < 8; i++) tw |= this.physTag(i) << (2 * i);
    return tw;
  }

  private physTag(p: number): number {
    if (this.empty[p]) return 3;
    const k = classify({ se: this.se[p], sig: this.sig[p] });
    return k === K_NORMAL ? 0 : k === K_ZERO ? 1 : 2;
  }

  private phys(i: number): number {
    return (this.top + i) & 7;
  }

  private isEmpty(i: number): boolean {
    return this.empty[(this.top + i) & 7] === 1;
  }

  /** ST(i) as a value. */
  st(i: number): F80 {
    const p = (this.top + i) & 7;
    return { se: this.se[p], sig: this.sig[p] };
  }

  private setSt(i: number, v: F80): void {
    const p = (this.top + i) & 7;
    this.se[p] = v.se;
    this.sig[p] = v.sig;
    this.empty[p] = 0;
  }

  private pop(): void {
    this.empty[this.top] = 1;
    this.top = (this.top + 1) & 7;
  }

  private push(v: F80): void {
    this.top = (this.top - 1) & 7;
    this.setSt(0, v);
  }

  // -------------------------------------------------------------------------------------------
  // Exceptions

  private setSwFlags(sw: number): void {
    const hadEs = (this.sw & SW_ES) !== 0;
    this.sw = sw & ~0x3800;
    if (this.sw & EXC_MASK & ~this.cw) this.sw |= SW_ES | SW_B;
    else this.sw &= ~(SW_ES | SW_B);
    const hasEs = (this.sw & SW_ES) !== 0;
    if (hasEs !== hadEs) this.ferr(hasEs);
  }

  private ferr(asserted: boolean): void {
    // FERR# goes to IRQ 13 only in MS-DOS compatibility mode; on P6 it is asserted as soon as the
    // excepting instruction completes (SDM Vol. 3 "Assertion of the FERR# Pin").
    if (asserted && this.host.numericErrorNative) return;
    this.host.setFerr(asserted);
  }

  /** Before a waiting instruction: a pending unmasked exception is delivered now. */
  private checkPending(): void {
    if ((this.sw & SW_ES) === 0) return;
    if (this.host.numericErrorNative) this.host.raiseException(16);
    // NE = 0: FERR# is already asserted and IRQ 13 pending; the instruction proceeds as with IGNNE#.
  }

  /** Commits the exception flags of the current instruction and the condition codes `cc` (under `ccMask`). */
  private finish(cc: number, ccMask: number): void {
    const f = this.ctx.flags;
    let sw = (this.sw & ~ccMask) | (cc & ccMask) | (f & (EXC_MASK | SF));
    if (f & EXC_MASK & ~this.cw) sw |= SW_ES | SW_B;
    const hadEs = (this.sw & SW_ES) !== 0;
    this.sw = sw;
    if (!hadEs && sw & SW_ES) this.ferr(true);
  }

  /** C1 for an arithmetic result: rounded up on an inexact result, else 0. */
  private c1(): number {
    return this.ctx.flags & PE && this.ctx.roundedUp ? SW_C1 : 0;
  }

  /** Finishes an instruction whose only condition code is C1 (from rounding or a stack fault). */
  private done(): void {
    const f = this.ctx.flags;
    this.finish(f & SF ? (this.stackOverflowed ? SW_C1 : 0) : this.c1(), SW_C1);
  }

  private stackOverflowed = false;

  private stackUnderflow(): boolean {
    this.ctx.flags |= IE | SF;
    this.stackOverflowed = false;
    return (this.cw & IE) !== 0;
  }

  private stackOverflow(): boolean {
    this.ctx.flags |= IE | SF;
    this.stackOverflowed = true;
    return (this.cw & IE) !== 0;
  }

  private begin(): void {
    this.ctx.begin(this.cw);
    this.stackOverflowed = false;
  }

  private ud(): never {
    return this.host.raiseException(6);
  }

  // -------------------------------------------------------------------------------------------
  // Memory operands

  private static readM80(m: FpuMemoryOperand, off = 0): F80 {
    const lo = m.read32(off) >>> 0;
    const hi = m.read32(off + 4) >>> 0;
    const se = m.read16(off + 8) & 0xffff;
    return { se, sig: (BigInt(hi) << 32n) | BigInt(lo) };
  }

  private static writeM80(m: FpuMemoryOperand, v: F80, off = 0): void {
    m.write32(off, Number(v.sig & 0xffffffffn));
    m.write32(off + 4, Number(v.sig >> 32n));
    m.write16(off + 8, v.se);
  }

  private static readInt(m: FpuMemoryOperand, bytes: number): bigint {
    if (bytes === 2) return BigInt((m.read16(0) << 16) >> 16);
    if (bytes === 4) return BigInt(m.read32(0) | 0);
    const lo = m.read32(0) >>> 0;
    const hi = m.read32(4) | 0;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  private static writeInt(m: FpuMemoryOperand, bytes: number, v: bigint): void {
    if (bytes === 2) m.write16(0, Number(BigInt.asUintN(16, v)));
    else if (bytes === 4) m.write32(0, Number(BigInt.asUintN(32, v)));
    else {
      const u = BigInt.asUintN(64, v);
      m.write32(0, Number(u & 0xffffffffn));
      m.write32(4, Number(u >> 32n));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Dispatch

  execute(opcode: number, modrm: number, mem: FpuMemoryOperand | null): void {
    this.control = false;
    if (mem) this.executeMem(opcode & 7, (modrm >> 3) & 7, mem);
    else this.executeReg(opcode & 7, (modrm >> 3) & 7, modrm & 7);
    if (!this.control) {
      this.fop = ((opcode & 7) << 8) | (modrm & 0xff);
      this.fip = this.host.instructionOffset >>> 0;
      this.fcs = this.host.instructionSelector & 0xffff;
      if (mem) {
        this.fdp = mem.offset >>> 0;
        this.fds = mem.selector & 0xffff;
      }
    }
  }

  wait(): void {
    this.checkPending();
  }

  private executeMem(op: number, r: number, m: FpuMemoryOperand): void {
    switch (op) {
      case 0: // D8: m32real arithmetic
      case 4: // DC: m64real arithmetic
      case 2: // DA: m32int arithmetic
      case 6: {
        // DE: m16int arithmetic
        this.checkPending();
        this.begin();
        let b: F80;
        if (op === 0) b = fromF32(m.read32(0) >>> 0, this.ctx);
        else if (op === 4) b = fromF64(m.read32(0) >>> 0, m.read32(4) >>> 0, this.ctx);
        else b = fromBigInt(Fpu.readInt(m, op === 2 ? 4 : 2));
        this.arithSt0(r, b);
        return;
      }
      case 1: // D9
        switch (r) {
          case 0:
            return this.fld(() => loadReal(fromF32(m.read32(0) >>> 0, this.ctx), this.ctx));
          case 1:
            return this.ud();
          case 2:
          case 3:
            return this.fstReal(m, 4, r === 3);
          case 4:
            return this.fldenv(m);
          case 5:
            return this.fldcw(m.read16(0));
          case 6:
            return this.fnstenv(m);
          default:
            this.control = true;
            m.write16(0, this.cw);
            return;
        }
      case 3: // DB
        switch (r) {
          case 0:
            return this.fld(() => fromBigInt(Fpu.readInt(m, 4)));
          case 2:
          case 3:
            return this.fist(m, 4, r === 3);
          case 5:
            return this.fld(() => Fpu.readM80(m));
          case 7:
            return this.fstp80(m);
          default:
            return this.ud(); // FISTTP (SSE3) and reserved
        }
      case 5: // DD
        switch (r) {
          case 0:
            return this.fld(() => loadReal(fromF64(m.read32(0) >>> 0, m.read32(4) >>> 0, this.ctx), this.ctx));
          case 2:
          case 3:
            return this.fstReal(m, 8, r === 3);
          case 4:
            return this.frstor(m);
          case 6:
            return this.fnsave(m);
          case 7:
            this.control = true;
            m.write16(0, this.statusWord);
            return;
          default:
            return this.ud();
        }
      default: // DF
        switch (r) {
          case 0:
            return this.fld(() => fromBigInt(Fpu.readInt(m, 2)));
          case 2:
          case 3:
            return this.fist(m, 2, r === 3);
          case 4:
            return this.fld(() => {
              const bytes: number[] = [];
              for (let i = 0; i < 10; i++) bytes.push(m.read8(i) & 0xff);
              return fromBcd(bytes);
            });
          case 5:
            return this.fld(() => fromBigInt(Fpu.readInt(m, 8)));
          case 6:
            return this.fbstp(m);
          case 7:
            return this.fist(m, 8, true);
          default:
            return this.ud();
        }
    }
  }

  private executeReg(op: number, r: number, i: number): void {
    switch (op) {
      case 0: // D8: ST(0) op= ST(i)
        this.checkPending();
        this.begin();
        if (r === 2 || r === 3) return this.fcom(i, false, r === 3 ? 1 : 0, false);
        return this.arithReg(r, i, false, false);
      case 1:
        return this.executeD9(r, i);
      case 2: // DA
        if (r <= 3) return this.fcmov(r, i, false);
        if (r === 5 && i === 1) {
          this.checkPending();
          this.begin();
          return this.fcom(1, true, 2, false); // FUCOMPP
        }
        return this.ud();
      case 3: // DB
        if (r <= 3) return this.fcmov(r, i, true);
        if (r === 4) {
          switch (i) {
            case 0: // FNENI, FNDISI, FNSETPM: 8087/287 leftovers, no-ops on 387+
            case 1:
            case 4:
              this.control = true;
              return;
            case 2: // FNCLEX
              this.control = true;
              this.setSwFlags(this.sw & ~(EXC_MASK | SF | SW_ES | SW_B));
              return;
            case 3: // FNINIT
              this.control = true;
              this.init();
              return;
            default:
              return this.ud();
          }
        }
        if (r === 5 || r === 6) {
          this.checkPending();
          this.begin();
          return this.fcom(i, r === 5, 0, true); // FUCOMI / FCOMI
        }
        return this.ud();
      case 4: // DC: ST(i) op= ST(0)
        this.checkPending();
        this.begin();
        if (r === 2 || r === 3) return this.fcom(i, false, r === 3 ? 1 : 0, false); // FCOM2/FCOMP3 aliases
        return this.arithReg(r, i, true, false);
      case 5: // DD
        switch (r) {
          case 0: // FFREE
            this.checkPending();
            this.empty[this.phys(i)] = 1;
            return;
          case 1: // FXCH4 alias
            return this.fxch(i);
          case 2:
          case 3:
            return this.fstReg(i, r === 3);
          case 4:
          case 5:
            this.checkPending();
            this.begin();
            return this.fcom(i, true, r === 5 ? 1 : 0, false);
          default:
            return this.ud();
        }
      case 6: // DE: ST(i) op= ST(0), pop
        this.checkPending();
        this.begin();
        if (r === 2) return this.fcom(i, false, 1, false); // FCOMP5 alias
        if (r === 3) {
          if (i !== 1) return this.ud();
          return this.fcom(1, false, 2, false); // FCOMPP
        }
        return this.arithReg(r, i, true, true);
      default: // DF
        switch (r) {
          case 0: // FFREEP
            this.checkPending();
            this.empty[this.phys(i)] = 1;
            this.pop();
            return;
          case 1: // FXCH7 alias
            return this.fxch(i);
          case 2: // FSTP8, FSTP9 aliases
          case 3:
            return this.fstReg(i, true);
          case 4:
            if (i !== 0) return this.ud();
            this.control = true;
            if (!this.host.setAx) throw new Error('FpuHost.setAx is not wired (needed by FNSTSW AX)');
            this.host.setAx(this.statusWord);
            return;
          case 5:
          case 6:
            this.checkPending();
            this.begin();
            return this.fcom(i, r === 5, 1, true); // FUCOMIP / FCOMIP
          default:
            return this.ud();
        }
    }
  }

  private executeD9(r: number, i: number): void {
    switch (r) {
      case 0: // FLD ST(i)
        return this.fldReg(i);
      case 1:
        return this.fxch(i);
      case 2:
        if (i !== 0) return this.ud();
        this.checkPending(); // FNOP
        return;
      case 3: // FSTP1 alias
        return this.fstReg(i, true);
      case 4:
        switch (i) {
          case 0:
          case 1:
            return this.unaryInPlace((x) => ({ se: i === 0 ? x.se ^ 0x8000 : x.se & 0x7fff, sig: x.sig }), false);
          case 4:
            return this.ftst();
          case 5:
            return this.fxam();
          default:
            return this.ud();
        }
      case 5: {
        if (i === 7) return this.ud();
        this.checkPending();
        this.begin();
        const v =
          i === 0 ? ONE : i === 6 ? makeZero(0) : constant((['l2t', 'l2e', 'pi', 'lg2', 'ln2'] as const)[i - 1], this.ctx);
        if (!this.isEmpty(7)) {
          if (!this.stackOverflow()) return this.done();
          this.push(INDEFINITE);
          return this.done();
        }
        this.push(v);
        return this.done();
      }
      case 6:
        switch (i) {
          case 0:
            return this.unaryInPlace((x) => this.f2xm1(x), true);
          case 1:
            return this.binaryPop((y, x) => this.fyl2x(y, x, false));
          case 2:
            return this.fptan();
          case 3:
            return this.binaryPop((y, x) => this.fpatan(y, x));
          case 4:
            return this.fxtract();
          case 5:
            return this.fprem(true);
          case 6:
            this.checkPending();
            this.begin();
            this.top = (this.top - 1) & 7;
            return this.finish(0, SW_C1);
          default:
            this.checkPending();
            this.begin();
            this.top = (this.top + 1) & 7;
            return this.finish(0, SW_C1);
        }
      default:
        switch (i) {
          case 0:
            return this.fprem(false);
          case 1:
            return this.binaryPop((y, x) => this.fyl2x(y, x, true));
          case 2:
            return this.unaryInPlace((x) => sqrt(x, precisionFormat(this.cw), this.ctx), true);
          case 3:
            return this.fsincos();
          case 4:
            return this.unaryInPlace((x) => roundToIntegral(x, this.ctx), true);
          case 5:
            return this.fscale();
          case 6:
            return this.trig(false);
          default:
            return this.trig(true);
        }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Arithmetic

  private compute(r: number, a: F80, b: F80): F80 | null {
    const fmt = precisionFormat(this.cw);
    switch (r) {
      case 0:
        return add(a, b, false, fmt, this.ctx);
      case 1:
        return mul(a, b, fmt, this.ctx);
      case 4:
        return add(a, b, true, fmt, this.ctx);
      case 5:
        return add(b, a, true, fmt, this.ctx);
      case 6:
        return div(a, b, fmt, this.ctx);
      default:
        return div(b, a, fmt, this.ctx);
    }
  }

  /** ST(0) = ST(0) op b for memory operands. */
  private arithSt0(r: number, b: F80): void {
    if (this.isEmpty(0)) {
      this.ctx.flags &= ~(IE | DE);
      const masked = this.stackUnderflow();
      if (r === 2 || r === 3) {
        this.finish(SW_C0 | SW_C2 | SW_C3, SW_CC);
        if (r === 3 && masked) this.pop();
        return;
      }
      if (masked) this.setSt(0, INDEFINITE);
      return this.done();
    }
    if (r === 2 || r === 3) return this.compareWith(b, false, r === 3 ? 1 : 0, false);
    const res = this.compute(r, this.st(0), b);
    if (res) this.setSt(0, res);
    this.done();
  }

  /** Register forms: a = ST(0), b = ST(i); the result goes to ST(0) or ST(i), then optionally pops. */
  private arithReg(r: number, i: number, toSti: boolean, popAfter: boolean): void {
    const dest = toSti ? i : 0;
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (this.stackUnderflow()) {
        this.setSt(dest, INDEFINITE);
        if (popAfter) this.pop();
      }
      return this.done();
    }
    const res = this.compute(r, this.st(0), this.st(i));
    if (res) {
      this.setSt(dest, res);
      if (popAfter) this.pop();
    }
    this.done();
  }

  // -------------------------------------------------------------------------------------------
  // Comparisons

  private static ccFor(rel: number): number {
    return rel === CMP_GT ? 0 : rel === CMP_LT ? SW_C0 : rel === CMP_EQ ? SW_C3 : SW_C0 | SW_C2 | SW_C3;
  }

  /** FCOM/FUCOM/FCOMI family against ST(i); `pops` = 0, 1 or 2. */
  private fcom(i: number, unordered: boolean, pops: number, eflags: boolean): void {
    if (this.isEmpty(0) || this.isEmpty(i)) {
      // Silicon reports "unordered" even when the stack fault is unmasked; it pops only when masked.
      const masked = this.stackUnderflow();
      if (eflags) {
        this.setEflags(true, true, true);
        this.finish(0, SW_C1);
      } else this.finish(SW_C0 | SW_C2 | SW_C3, SW_CC);
      if (masked) for (let k = 0; k < pops; k++) this.pop();
      return;
    }
    this.compareWith(this.st(i), unordered, pops, eflags);
  }

  private compareWith(b: F80, unordered: boolean, pops: number, eflags: boolean): void {
    const rel = compare(this.st(0), b, unordered, this.ctx);
    const cc = Fpu.ccFor(rel);
    if (eflags) {
      this.setEflags((cc & SW_C3) !== 0, (cc & SW_C2) !== 0, (cc & SW_C0) !== 0);
      this.finish(0, SW_C1);
    } else this.finish(cc, SW_CC);
    // An unmasked exception leaves the stack alone (the codes are still delivered, as on silicon).
    if (this.ctx.flags & EXC_MASK & ~this.cw) return;
    for (let k = 0; k < pops; k++) this.pop();
  }

  private setEflags(zf: boolean, pf: boolean, cf: boolean): void {
    if (!this.host.setEflagsZPC) throw new Error('FpuHost.setEflagsZPC is not wired (needed by FCOMI/FUCOMI)');
    this.host.setEflagsZPC(zf, pf, cf);
  }

  private ftst(): void {
    this.checkPending();
    this.begin();
    if (this.isEmpty(0)) {
      this.stackUnderflow();
      this.finish(SW_C0 | SW_C2 | SW_C3, SW_CC);
      return;
    }
    this.compareWith(makeZero(0), false, 0, false);
  }

  private fxam(): void {
    this.checkPending();
    this.begin();
    const x = this.st(0);
    let cc = signOf(x) ? SW_C1 : 0;
    if (this.isEmpty(0)) cc |= SW_C3 | SW_C0;
    else {
      switch (classify(x)) {
        case K_UNSUPPORTED:
          break;
        case K_QNAN:
        case K_SNAN:
          cc |= SW_C0;
          break;
        case K_NORMAL:
          cc |= SW_C2;
          break;
        case K_INF:
          cc |= SW_C2 | SW_C0;
          break;
        case K_ZERO:
          cc |= SW_C3;
          break;
        default:
          cc |= SW_C3 | SW_C2;
      }
    }
    this.finish(cc, SW_CC);
  }

  private fcmov(r: number, i: number, negate: boolean): void {
    this.checkPending();
    this.begin();
    if (!this.host.getEflags) throw new Error('FpuHost.getEflags is not wired (needed by FCMOVcc)');
    const f = this.host.getEflags();
    const cf = (f & 1) !== 0;
    const zf = (f & 0x40) !== 0;
    const pf = (f & 4) !== 0;
    let cond = r === 0 ? cf : r === 1 ? zf : r === 2 ? cf || zf : pf;
    if (negate) cond = !cond;
    if (this.isEmpty(0) || this.isEmpty(i)) {
      // The stack fault is reported, and the indefinite written, whether or not the condition holds.
      if (this.stackUnderflow()) this.setSt(0, INDEFINITE);
      return this.done();
    }
    if (cond) this.setSt(0, this.st(i));
    this.finish(0, SW_C1);
  }

  // -------------------------------------------------------------------------------------------
  // Loads and stores

  /** Pushes a loaded value; `load` reads memory first (so a fault changes nothing) and may return null (unmasked IE). */
  private fld(load: () => F80 | null): void {
    this.checkPending();
    this.begin();
    const v = load();
    if (!this.isEmpty(7)) {
      this.ctx.flags &= ~(IE | DE);
      if (this.stackOverflow()) this.push(INDEFINITE);
      return this.done();
    }
    if (v !== null) this.push(v);
    this.done();
  }

  /** FLD ST(i): overflow if the push target is in use, underflow if ST(i) is empty. */
  private fldReg(i: number): void {
    this.checkPending();
    this.begin();
    if (!this.isEmpty(7)) {
      if (this.stackOverflow()) this.push(INDEFINITE);
    } else if (this.isEmpty(i)) {
      if (this.stackUnderflow()) this.push(INDEFINITE);
    } else this.push(this.st(i));
    this.done();
  }

  private fstReal(m: FpuMemoryOperand, bytes: number, popAfter: boolean): void {
    this.checkPending();
    this.begin();
    let v: F80;
    if (this.isEmpty(0)) {
      if (!this.stackUnderflow()) return this.done();
      v = INDEFINITE;
    } else v = this.st(0);
    if (bytes === 4) {
      const bits = toF32(v, this.ctx);
      if (bits === null) return this.storeSuppressed();
      m.write32(0, bits);
    } else {
      const d = toF64(v, this.ctx);
      if (d === null) return this.storeSuppressed();
      m.write32(0, d[0]);
      m.write32(4, d[1]);
    }
    if (popAfter) this.pop();
    this.done();
  }

  /** An unmasked exception kept a store from happening: PE is not reported and C1 is cleared. */
  private storeSuppressed(): void {
    this.ctx.flags &= ~PE;
    this.ctx.roundedUp = false;
    this.done();
  }

  private fstp80(m: FpuMemoryOperand): void {
    this.checkPending();
    this.begin();
    let v: F80;
    if (this.isEmpty(0)) {
      if (!this.stackUnderflow()) return this.done();
      v = INDEFINITE;
    } else v = this.st(0);
    Fpu.writeM80(m, v);
    this.pop();
    this.done();
  }

  private fist(m: FpuMemoryOperand, bytes: number, popAfter: boolean): void {
    this.checkPending();
    this.begin();
    let v: bigint | null;
    if (this.isEmpty(0)) {
      if (!this.stackUnderflow()) return this.done();
      v = -(1n << BigInt(bytes * 8 - 1));
    } else v = toInteger(this.st(0), bytes * 8, this.ctx);
    if (v === null) return this.done();
    Fpu.writeInt(m, bytes, v);
    if (popAfter) this.pop();
    this.done();
  }

  private fbstp(m: FpuMemoryOperand): void {
    this.checkPending();
    this.begin();
    let bytes: number[] | null;
    if (this.isEmpty(0)) {
      if (!this.stackUnderflow()) return this.done();
      bytes = [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];
    } else bytes = toBcd(this.st(0), this.ctx);
    if (bytes === null) return this.done();
    for (let k = 0; k < 10; k++) m.write8(k, bytes[k]);
    this.pop();
    this.done();
  }

  private fstReg(i: number, popAfter: boolean): void {
    this.checkPending();
    this.begin();
    if (this.isEmpty(0)) {
      if (!this.stackUnderflow()) return this.done();
      this.setSt(i, INDEFINITE);
    } else this.setSt(i, this.st(0));
    if (popAfter) this.pop();
    this.done();
  }

  private fxch(i: number): void {
    this.checkPending();
    this.begin();
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (!this.stackUnderflow()) return this.done();
      if (this.isEmpty(0)) this.setSt(0, INDEFINITE);
      if (this.isEmpty(i)) this.setSt(i, INDEFINITE);
    }
    const a = this.st(0);
    this.setSt(0, this.st(i));
    this.setSt(i, a);
    this.done();
  }

  // -------------------------------------------------------------------------------------------
  // One- and two-operand helpers

  /** ST(0) = f(ST(0)); NaN operands are propagated by `f` itself when `screen` is false. */
  private unaryInPlace(f: (x: F80) => F80 | null, screen: boolean): void {
    this.checkPending();
    this.begin();
    if (this.isEmpty(0)) {
      if (this.stackUnderflow()) this.setSt(0, INDEFINITE);
      return this.done();
    }
    const x = this.st(0);
    if (screen) {
      const k = classify(x);
      if (k === K_UNSUPPORTED) {
        const r = invalid(this.ctx);
        if (r) this.setSt(0, r);
        return this.done();
      }
      if (k === K_SNAN || k === K_QNAN) {
        const r = propagateNaN(x, k, x, k, this.ctx);
        if (r) this.setSt(0, r);
        return this.done();
      }
    }
    const r = f(x);
    if (r) this.setSt(0, r);
    this.done();
  }

  /** ST(1) = f(ST(1), ST(0)), then pop (FYL2X, FYL2XP1, FPATAN). */
  private binaryPop(f: (y: F80, x: F80) => F80 | null): void {
    this.checkPending();
    this.begin();
    if (this.isEmpty(0) || this.isEmpty(1)) {
      if (this.stackUnderflow()) {
        this.setSt(1, INDEFINITE);
        this.pop();
      }
      return this.done();
    }
    const y = this.st(1);
    const x = this.st(0);
    const kx = classify(x);
    const ky = classify(y);
    let r: F80 | null;
    if (kx === K_UNSUPPORTED || ky === K_UNSUPPORTED) r = invalid(this.ctx);
    else if (kx >= K_QNAN || ky >= K_QNAN) r = propagateNaN(x, kx, y, ky, this.ctx);
    else r = f(y, x);
    if (r) {
      this.setSt(1, r);
      this.pop();
    }
    this.done();
  }

  private denormal(...xs: F80[]): boolean {
    for (const x of xs) {
      if (classify(x) === K_DENORMAL) {
        this.ctx.flags |= DE;
        return (this.cw & DE) === 0;
      }
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------
  // Transcendentals

  private f2xm1(x: F80): F80 | null {
    const k = classify(x);
    if (k === K_ZERO) return x;
    if (k === K_INF) return signOf(x) ? { se: 0xbfff, sig: 0x8000000000000000n } : x;
    if (this.denormal(x)) return null;
    if ((x.se & 0x7fff) > 0x3fff || ((x.se & 0x7fff) === 0x3fff && x.sig !== 0x8000000000000000n)) {
      // Outside [-1, 1] the SDM leaves the result undefined; silicon returns the operand with PE.
      this.ctx.flags |= PE;
      return x;
    }
    return roundResult(exp2m1(x), this.ctx);
  }

  private fyl2x(y: F80, x: F80, plusOne: boolean): F80 | null {
    const kx = classify(x);
    const ky = classify(y);
    const sx = signOf(x);
    const sy = signOf(y);
    if (plusOne) {
      // y * log2(1 + x), defined for |x| < 1 - sqrt(2)/2; beyond it the result is undefined.
      if (kx === K_ZERO) {
        if (ky === K_INF) return invalid(this.ctx);
        if (this.denormal(y)) return null;
        return makeZero(sx ^ sy);
      }
      if (kx === K_INF) {
        if (sx || ky === K_ZERO) return invalid(this.ctx);
        if (this.denormal(y)) return null;
        return makeInf(sy);
      }
      if (sx && cmpMinusOne(x) <= 0) {
        // x <= -1 is outside the domain (undefined in the SDM); this mirrors silicon.
        if (ky === K_ZERO) return makeZero(sy ^ 1);
        if (ky === K_INF) return makeInf(sy ^ 1);
        if (this.denormal(y)) return null;
        this.ctx.flags |= PE;
        return x;
      }
      if (ky === K_ZERO) {
        if (this.denormal(x)) return null;
        return makeZero(sx ^ sy);
      }
      if (ky === K_INF) {
        if (this.denormal(x)) return null;
        return makeInf(sx ^ sy);
      }
      if (this.denormal(x, y)) return null;
      return roundResult(bfMulF80(log2p1(x), y), this.ctx);
    }
    if (sx && kx !== K_ZERO) return invalid(this.ctx);
    if (kx === K_ZERO) {
      if (ky === K_ZERO) return invalid(this.ctx);
      if (ky === K_INF) return makeInf(sy ^ 1);
      if (this.denormal(y)) return null;
      this.ctx.flags |= ZE;
      return this.cw & ZE ? makeInf(sy ^ 1) : null;
    }
    if (kx === K_INF) {
      if (ky === K_ZERO) return invalid(this.ctx);
      if (this.denormal(y)) return null;
      return makeInf(sy);
    }
    const isOne = x.se === 0x3fff && x.sig === 0x8000000000000000n;
    const below1 = (x.se & 0x7fff) < 0x3fff;
    if (isOne) {
      if (ky === K_INF) return invalid(this.ctx);
      if (this.denormal(y)) return null;
      return makeZero(sy);
    }
    if (ky === K_INF) {
      if (this.denormal(x)) return null;
      return makeInf(sy ^ (below1 ? 1 : 0));
    }
    if (ky === K_ZERO) {
      if (this.denormal(x)) return null;
      return makeZero(sy ^ (below1 ? 1 : 0));
    }
    if (this.denormal(x, y)) return null;
    return roundResult(bfMulF80(log2(x), y), this.ctx);
  }

  private fpatan(y: F80, x: F80): F80 | null {
    const kx = classify(x);
    const ky = classify(y);
    const sx = signOf(x);
    const sy = signOf(y);
    const piOver = (num: number, den: number): F80 => roundResult(piFraction(num, den, sy), this.ctx)!;
    if (ky === K_ZERO || ky === K_INF || kx === K_ZERO || kx === K_INF) {
      if (this.denormal(x, y)) return null;
      if (ky === K_ZERO) return sx ? piOver(1, 1) : makeZero(sy);
      if (ky === K_INF) {
        if (kx === K_INF) return sx ? piOver(3, 4) : piOver(1, 4);
        return piOver(1, 2);
      }
      if (kx === K_ZERO) return piOver(1, 2);
      return sx ? piOver(1, 1) : makeZero(sy);
    }
    if (this.denormal(x, y)) return null;
    return roundResult(atan2(y, x), this.ctx);
  }

  /** FSIN (cos = false) and FCOS. */
  private trig(cos: boolean): void {
    this.checkPending();
    this.begin();
    if (this.isEmpty(0)) {
      if (this.stackUnderflow()) this.setSt(0, INDEFINITE);
      return this.finish(0, SW_C1 | SW_C2);
    }
    const x = this.st(0);
    const k = classify(x);
    let r: F80 | null;
    if (k === K_UNSUPPORTED || k === K_INF) r = invalid(this.ctx);
    else if (k === K_QNAN || k === K_SNAN) r = propagateNaN(x, k, x, k, this.ctx);
    else if (k === K_ZERO) r = cos ? ONE : x;
    else if (outOfTrigRange(x)) return this.finish(SW_C2, SW_C1 | SW_C2);
    else if (this.denormal(x)) r = null;
    else {
      const sc = sinCos(x);
      r = roundResult(cos ? sc.cos : sc.sin, this.ctx);
    }
    if (r) this.setSt(0, r);
    this.finish(this.c1(), SW_C1 | SW_C2);
  }

  /** FSINCOS and FPTAN: replace ST(0) and push a second result. */
  private twoResults(f: (x: F80) => [F80, F80] | null): void {
    this.checkPending();
    this.begin();
    if (this.isEmpty(0)) {
      if (this.stackUnderflow()) {
        this.setSt(0, INDEFINITE);
        this.push(INDEFINITE);
      }
      return this.finish(0, SW_C1 | SW_C2);
    }
    if (!this.isEmpty(7)) {
      if (this.stackOverflow()) {
        this.setSt(0, INDEFINITE);
        this.push(INDEFINITE);
      }
      return this.finish(SW_C1, SW_C1 | SW_C2);
    }
    const x = this.st(0);
    const k = classify(x);
    let r: [F80, F80] | null = null;
    if (k === K_UNSUPPORTED || k === K_INF || k === K_QNAN || k === K_SNAN) {
      const n = k === K_QNAN || k === K_SNAN ? propagateNaN(x, k, x, k, this.ctx) : invalid(this.ctx);
      if (n) r = [n, n];
    } else if (k !== K_ZERO && outOfTrigRange(x)) return this.finish(SW_C2, SW_C1 | SW_C2);
    else if (this.denormal(x)) r = null;
    else r = f(x);
    if (r) {
      this.setSt(0, r[0]);
      this.push(r[1]);
    }
    this.finish(this.c1(), SW_C1 | SW_C2);
  }

  private fptan(): void {
    this.twoResults((x) => {
      if (classify(x) === K_ZERO) return [x, ONE];
      const t = roundResult(tan(x), this.ctx);
      return t ? [t, ONE] : null;
    });
  }

  private fsincos(): void {
    this.twoResults((x) => {
      if (classify(x) === K_ZERO) return [x, ONE];
      const sc = sinCos(x);
      // One rounding flag set for both results: the later (cos) rounding decides C1, as on hardware.
      const s = roundResult(sc.sin, this.ctx);
      const c = roundResult(sc.cos, this.ctx);
      return s && c ? [s, c] : null;
    });
  }

  private fxtract(): void {
    this.checkPending();
    this.begin();
    if (this.isEmpty(0)) {
      if (this.stackUnderflow()) {
        this.setSt(0, INDEFINITE);
        this.push(INDEFINITE);
      }
      return this.done();
    }
    if (!this.isEmpty(7)) {
      // Masked overflow: both results are the indefinite (ST(0) is replaced, then one is pushed).
      if (this.stackOverflow()) {
        this.setSt(0, INDEFINITE);
        this.push(INDEFINITE);
      }
      return this.done();
    }
    const x = this.st(0);
    const k = classify(x);
    let e: F80 | null;
    let s: F80 | null;
    if (k === K_UNSUPPORTED) e = s = invalid(this.ctx);
    else if (k === K_QNAN || k === K_SNAN) e = s = propagateNaN(x, k, x, k, this.ctx);
    else if (k === K_INF) {
      e = makeInf(0);
      s = x;
    } else if (k === K_ZERO) {
      this.ctx.flags |= ZE;
      if (this.cw & ZE) {
        e = makeInf(1);
        s = x;
      } else e = s = null;
    } else if (this.denormal(x)) e = s = null;
    else {
      e = fromInt(trueExponent(x));
      s = significandOf(x);
    }
    if (e && s) {
      this.setSt(0, e);
      this.push(s);
    }
    this.done();
  }

  private fscale(): void {
    this.checkPending();
    this.begin();
    if (this.isEmpty(0) || this.isEmpty(1)) {
      if (this.stackUnderflow()) this.setSt(0, INDEFINITE);
      return this.done();
    }
    const r = scale(this.st(0), this.st(1), this.ctx);
    if (r) this.setSt(0, r);
    this.done();
  }

  /** FPREM (truncating quotient) and FPREM1 (IEEE, round-to-nearest quotient). */
  private fprem(ieee: boolean): void {
    this.checkPending();
    this.begin();
    const ccMask = SW_CC;
    if (this.isEmpty(0) || this.isEmpty(1)) {
      if (this.stackUnderflow()) this.setSt(0, INDEFINITE);
      return this.finish(0, ccMask);
    }
    const a = this.st(0);
    const b = this.st(1);
    const ka = classify(a);
    const kb = classify(b);
    let r: F80 | null;
    let cc = 0;
    if (ka === K_UNSUPPORTED || kb === K_UNSUPPORTED) r = invalid(this.ctx);
    else if (ka >= K_QNAN || kb >= K_QNAN) r = propagateNaN(a, ka, b, kb, this.ctx);
    else if (ka === K_INF || kb === K_ZERO) r = invalid(this.ctx);
    else if (this.denormal(a, b)) r = null;
    else if (ka === K_ZERO || kb === K_INF) r = a;
    else {
      const sa = signOf(a);
      const ea = lsbExponent(a);
      const eb = lsbExponent(b);
      const d = trueExponent(a) - trueExponent(b);
      if (d >= 64) {
        // Partial remainder: reduce the exponent difference by N = 32..63 per step (as the P6 does).
        const n = (d & 31) | 32;
        // a' = a - trunc(a / (b * 2^(d-n))) * b * 2^(d-n), exact.
        const shift = ea - eb - (d - n); // scale a onto b*2^(d-n)'s grid
        const A = a.sig << BigInt(shift > 0 ? shift : 0);
        const B = b.sig << BigInt(shift < 0 ? -shift : 0);
        const R = A % B;
        const e = Math.min(ea, eb + d - n);
        r = R === 0n ? makeZero(sa) : roundToRegister(sa, R, e, FMT_EXT64, this.ctx);
        cc = SW_C2;
      } else {
        const e = Math.min(ea, eb);
        const A = a.sig << BigInt(ea - e);
        const B = b.sig << BigInt(eb - e);
        let q = A / B;
        let R = A - q * B;
        let sign = sa;
        if (ieee) {
          const twice = R * 2n;
          if (twice > B || (twice === B && (q & 1n) === 1n)) {
            q += 1n;
            R = B - R;
            sign ^= 1;
          }
        }
        r = R === 0n ? makeZero(sa) : roundToRegister(sign, R, e, FMT_EXT64, this.ctx);
        const qb = Number(q & 7n);
        cc = (qb & 4 ? SW_C0 : 0) | (qb & 2 ? SW_C3 : 0) | (qb & 1 ? SW_C1 : 0);
      }
    }
    if (r) this.setSt(0, r);
    this.finish(cc, ccMask);
  }

  // -------------------------------------------------------------------------------------------
  // Control instructions

  private fldcw(v: number): void {
    this.checkPending();
    this.control = true;
    this.cw = (v & 0x1f3f) | 0x0040;
    // A newly unmasked pending exception becomes deliverable at the next waiting instruction.
    this.setSwFlags(this.sw);
  }

  private envLinear(sel: number, off: number): number {
    return ((sel << 4) + off) >>> 0;
  }

  /** Writes the 14/28-byte environment; returns its size. */
  private writeEnv(m: FpuMemoryOperand): number {
    const op32 = this.host.operandSize32;
    const pm = this.host.protectedMode;
    const sw = this.statusWord;
    const tw = this.tagWord;
    if (op32) {
      m.write32(0, (0xffff0000 | this.cw) >>> 0);
      m.write32(4, (0xffff0000 | sw) >>> 0);
      m.write32(8, (0xffff0000 | tw) >>> 0);
      if (pm) {
        m.write32(12, this.fip);
        m.write32(16, ((this.fop << 16) | this.fcs) >>> 0);
        m.write32(20, this.fdp);
        m.write32(24, (0xffff0000 | this.fds) >>> 0);
      } else {
        const ip = this.envLinear(this.fcs, this.fip);
        const dp = this.envLinear(this.fds, this.fdp);
        m.write32(12, (0xffff0000 | (ip & 0xffff)) >>> 0);
        m.write32(16, (((ip & 0xffff0000) >>> 4) | this.fop) >>> 0);
        m.write32(20, (0xffff0000 | (dp & 0xffff)) >>> 0);
        m.write32(24, (dp & 0xffff0000) >>> 4);
      }
      return 28;
    }
    m.write16(0, this.cw);
    m.write16(2, sw);
    m.write16(4, tw);
    if (pm) {
      m.write16(6, this.fip & 0xffff);
      m.write16(8, this.fcs);
      m.write16(10, this.fdp & 0xffff);
      m.write16(12, this.fds);
    } else {
      const ip = this.envLinear(this.fcs, this.fip);
      const dp = this.envLinear(this.fds, this.fdp);
      m.write16(6, ip & 0xffff);
      m.write16(8, ((ip & 0xf0000) >>> 4) | this.fop);
      m.write16(10, dp & 0xffff);
      m.write16(12, (dp & 0xf0000) >>> 4);
    }
    return 14;
  }

  /** Reads an environment (all reads first, so a fault leaves the FPU untouched). */
  private readEnv(m: FpuMemoryOperand): { size: number; apply: () => void } {
    const op32 = this.host.operandSize32;
    const pm = this.host.protectedMode;
    let cw: number, sw: number, tw: number, fip: number, fcs: number, fdp: number, fds: number, fop: number;
    if (op32) {
      cw = m.read32(0) & 0xffff;
      sw = m.read32(4) & 0xffff;
      tw = m.read32(8) & 0xffff;
      const d3 = m.read32(12) >>> 0;
      const d4 = m.read32(16) >>> 0;
      const d5 = m.read32(20) >>> 0;
      const d6 = m.read32(24) >>> 0;
      if (pm) {
        fip = d3;
        fcs = d4 & 0xffff;
        fop = (d4 >>> 16) & 0x7ff;
        fdp = d5;
        fds = d6 & 0xffff;
      } else {
        fip = (((d4 & 0x0ffff000) << 4) | (d3 & 0xffff)) >>> 0;
        fop = d4 & 0x7ff;
        fdp = (((d6 & 0x0ffff000) << 4) | (d5 & 0xffff)) >>> 0;
        fcs = fds = 0;
      }
    } else {
      cw = m.read16(0);
      sw = m.read16(2);
      tw = m.read16(4);
      const w3 = m.read16(6);
      const w4 = m.read16(8);
      const w5 = m.read16(10);
      const w6 = m.read16(12);
      if (pm) {
        fip = w3;
        fcs = w4;
        fdp = w5;
        fds = w6;
        fop = 0;
      } else {
        fip = ((w4 & 0xf000) << 4) | w3;
        fop = w4 & 0x7ff;
        fdp = ((w6 & 0xf000) << 4) | w5;
        fcs = fds = 0;
      }
    }
    return {
      size: op32 ? 28 : 14,
      apply: () => {
        this.cw = (cw & 0x1f3f) | 0x0040;
        this.top = (sw >> 11) & 7;
        for (let p = 0; p < 8; p++) this.empty[p] = ((tw >> (2 * p)) & 3) === 3 ? 1 : 0;
        this.fip = fip;
        this.fcs = fcs;
        this.fdp = fdp;
        this.fds = fds;
        this.fop = fop;
        this.setSwFlags(sw);
      },
    };
  }

  private fnstenv(m: FpuMemoryOperand): void {
    this.control = true;
    this.writeEnv(m);
    // Masking everything also clears ES and B (nothing unmasked is pending any more), as on silicon.
    this.cw |= EXC_MASK;
    this.setSwFlags(this.sw);
  }

  private fldenv(m: FpuMemoryOperand): void {
    this.checkPending();
    this.control = true;
    this.readEnv(m).apply();
  }

  private fnsave(m: FpuMemoryOperand): void {
    this.control = true;
    const off = this.writeEnv(m);
    for (let i = 0; i < 8; i++) Fpu.writeM80(m, this.st(i), off + 10 * i);
    this.init();
  }

  private frstor(m: FpuMemoryOperand): void {
    this.checkPending();
    this.control = true;
    const env = this.readEnv(m);
    const regs: F80[] = [];
    for (let i = 0; i < 8; i++) regs.push(Fpu.readM80(m, env.size + 10 * i));
    env.apply();
    for (let i = 0; i < 8; i++) {
      const p = this.phys(i);
      this.se[p] = regs[i].se;
      this.sig[p] = regs[i].sig;
    }
  }

  fxsave(m: FpuMemoryOperand): void {
    let ftw = 0;
    for (let p = 0; p < 8; p++) if (!this.empty[p]) ftw |= 1 << p;
    m.write16(0, this.cw);
    m.write16(2, this.statusWord);
    m.write8(4, ftw);
    m.write8(5, 0);
    m.write16(6, this.fop);
    m.write32(8, this.fip);
    m.write16(12, this.fcs);
    m.write16(14, 0);
    m.write32(16, this.fdp);
    m.write16(20, this.fds);
    m.write16(22, 0);
    for (let i = 0; i < 8; i++) {
      const off = 32 + 16 * i;
      Fpu.writeM80(m, this.st(i), off);
      m.write16(off + 10, 0);
      m.write32(off + 12, 0);
    }
  }

  fxrstor(m: FpuMemoryOperand): void {
    const cw = m.read16(0);
    const sw = m.read16(2);
    const ftw = m.read8(4);
    const fop = m.read16(6) & 0x7ff;
    const fip = m.read32(8) >>> 0;
    const fcs = m.read16(12);
    const fdp = m.read32(16) >>> 0;
    const fds = m.read16(20);
    const regs: F80[] = [];
    for (let i = 0; i < 8; i++) regs.push(Fpu.readM80(m, 32 + 16 * i));
    this.cw = (cw & 0x1f3f) | 0x0040;
    this.top = (sw >> 11) & 7;
    for (let p = 0; p < 8; p++) this.empty[p] = (ftw >> p) & 1 ? 0 : 1;
    this.fop = fop;
    this.fip = fip;
    this.fcs = fcs;
    this.fdp = fdp;
    this.fds = fds;
    for (let i = 0; i < 8; i++) {
      const p = this.phys(i);
      this.se[p] = regs[i].se;
      this.sig[p] = regs[i].sig;
    }
    this.setSwFlags(sw);
  }

  // -------------------------------------------------------------------------------------------
  // Saved state

  saveState(): Record<string, unknown> {
    const regs: string[] = [];
    for (let p = 0; p < 8; p++) regs.push(this.se[p].toString(16).padStart(4, '0') + this.sig[p].toString(16).padStart(16, '0'));
    return {
      cw: this.cw,
      sw: this.sw,
      top: this.top,
      empty: Array.from(this.empty),
      regs,
      fip: this.fip,
      fcs: this.fcs,
      fdp: this.fdp,
      fds: this.fds,
      fop: this.fop,
    };
  }

  loadState(state: Record<string, unknown>): void {
    const num = (k: string): number => {
      const v = state[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`FPU state: field "${k}" is missing or not a number`);
      return v;
    };
    const empty = state.empty;
    const regs = state.regs;
    if (!Array.isArray(empty) || empty.length !== 8) throw new Error('FPU state: field "empty" must be 8 entries');
    if (!Array.isArray(regs) || regs.length !== 8 || !regs.every((r) => typeof r === 'string' && /^[0-9a-f]{20}$/i.test(r)))
      throw new Error('FPU state: field "regs" must be 8 hex strings of 20 digits');
    this.cw = num('cw') & 0xffff;
    this.sw = num('sw') & 0xffff;
    this.top = num('top') & 7;
    for (let p = 0; p < 8; p++) {
      this.empty[p] = empty[p] ? 1 : 0;
      this.se[p] = parseInt((regs[p] as string).slice(0, 4), 16);
      this.sig[p] = BigInt('0x' + (regs[p] as string).slice(4));
    }
    this.fip = num('fip') >>> 0;
    this.fcs = num('fcs') & 0xffff;
    this.fdp = num('fdp') >>> 0;
    this.fds = num('fds') & 0xffff;
    this.fop = num('fop') & 0x7ff;
  }
}

/** FSIN/FCOS/FSINCOS/FPTAN leave operands with |x| >= 2^63 alone and set C2. */
function outOfTrigRange(x: F80): boolean {
  return (x.se & 0x7fff) >= 0x3fff + 63;
}

/** Compares -|x| with -1: returns <= 0 when x <= -1 (for FYL2XP1's domain). */
function cmpMinusOne(x: F80): number {
  const e = x.se & 0x7fff;
  if (e > 0x3fff) return -1;
  if (e < 0x3fff) return 1;
  return x.sig === 0x8000000000000000n ? 0 : -1;
}
