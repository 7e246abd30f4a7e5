/**
 * Just enough x86 decoding to steer the differential harness: which EFLAGS bits the instruction
 * leaves architecturally undefined (Intel SDM vol. 2, "Flags Affected" of each instruction), whether
 * it is a REP string instruction (QEMU single-steps each iteration), and whether it is the program's
 * exit (`out 0xf4, al`) or an FNINIT (after which x87 state is compared).
 */
export const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const ARITH = CF | PF | AF | ZF | SF | OF;

export interface InsnInfo {
  /** EFLAGS bits undefined after this instruction. */
  flagsMask: number;
  repString: boolean;
  /**
   * An instruction that cannot change descriptor caches, system registers or x87 state unless it
   * faults (ALU, moves, stack, near branches, strings): QEMU's cheap register packet suffices.
   */
  plain: boolean;
  /** Address size of the instruction (REP counts in CX or ECX). */
  addr32: boolean;
  isExit: boolean;
  isFninit: boolean;
  /**
   * EFLAGS bits hardware clears but QEMU leaves unchanged (FCOMI/FUCOMI clear OF, SF, AF per the
   * SDM; QEMU's helper only writes ZF, PF, CF): the harness clears them in QEMU's state.
   */
  qemuFlagsFix: number;
  /**
   * Tolerance for x87 results, in units in the last place of the 64-bit significand. Non-zero
   * for transcendentals: QEMU 7.2 computes FSIN/FCOS/FSINCOS/FPTAN through the host's double
   * `sin()`/`cos()`/`tan()` (53-bit), so only ~2^11 ulps agree; F2XM1/FYL2X/FYL2XP1/FPATAN are
   * computed in extended precision by both, but hardware itself is only ~1 ulp exact there.
   */
  fpuUlps: number;
  /**
   * x87 status-word bits not compared after this instruction (Boxwood takes QEMU's): the
   * condition codes the SDM leaves undefined (C0/C2/C3 after most non-comparison instructions),
   * and C1 except where QEMU 7.2 maintains it: QEMU does not report round-up in C1 after
   * inexact results, nor set/clear it on loads, stores and stack faults.
   */
  fswMask: number;
  /** FCW bits hardware sets but QEMU 7.2 leaves (FNSTENV masks all exceptions afterwards, SDM): set in QEMU's state. */
  qemuFcwSet: number;
  /** FSW bits hardware clears but QEMU 7.2 leaves (C1 after FCOM/FUCOM/FICOM/FTST/FCOMI): cleared in QEMU's state. */
  qemuFswClear: number;
  /** Length in bytes when `isIoOrHlt` (prefixes included), so a random run can step over it. */
  ioLength: number;
  /** Port I/O or HLT: a random-code run ends before it (QEMU's devices are not Boxwood's; HLT waits forever under single-step). */
  isIoOrHlt: boolean;
  /** A short description for reports. */
  what: string;
}

/**
 * `bytes` start at CS:EIP; `code32` is CS.D; `ecx` is the current ECX (shift counts in CL).
 */
export function decodeInsn(bytes: Uint8Array, code32: boolean, ecx: number): InsnInfo {
  let i = 0;
  let rep = false;
  let opsize32 = code32;
  let addr32 = code32;
  for (; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0xf2 || b === 0xf3) rep = true;
    else if (b === 0x66) opsize32 = !code32;
    else if (b === 0x67) addr32 = !code32;
    else if (![0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x67, 0xf0].includes(b)) break;
  }
  const prefixes = i;
  const op = bytes[i] ?? 0;
  const modrm = bytes[i + 1] ?? 0;
  const reg = (modrm >> 3) & 7;
  const info: InsnInfo = { flagsMask: 0, repString: false, isExit: false, isFninit: false, qemuFlagsFix: 0, fpuUlps: 0, fswMask: 0, qemuFswClear: 0, qemuFcwSet: 0, isIoOrHlt: false, ioLength: 0, addr32, plain: false, what: `op ${op.toString(16)}` };
  if ((op === 0xdb || op === 0xdf) && modrm >= 0xe8 && modrm <= 0xf7) info.qemuFlagsFix = OF | SF | AF;
  if (op >= 0xd8 && op <= 0xdf) x87StatusRules(op, modrm, info);
  if (op === 0xd9) {
    if (modrm === 0xf2 || modrm === 0xfb || modrm === 0xfe || modrm === 0xff) info.fpuUlps = 1 << 12;
    else if (modrm === 0xf0 || modrm === 0xf1 || modrm === 0xf3 || modrm === 0xf9) info.fpuUlps = 4;
  }
  const cl = ecx & 0x1f;

  if (op === 0x0f) {
    const op2 = bytes[i + 1] ?? 0;
    const modrm2 = bytes[i + 2] ?? 0;
    info.what = `op 0f ${op2.toString(16)}`;
    info.plain = PLAIN_0F.has(op2);
    if (op2 === 0xaf) info.flagsMask = SF | ZF | AF | PF; // IMUL r, r/m
    else if (op2 === 0xbc || op2 === 0xbd) info.flagsMask = CF | OF | SF | AF | PF; // BSF/BSR: only ZF defined
    else if ([0xa3, 0xab, 0xb3, 0xbb, 0xba].includes(op2)) info.flagsMask = OF | SF | AF | PF; // BT*: only CF defined
    else if ([0xa4, 0xa5, 0xac, 0xad].includes(op2)) {
      // SHLD/SHRD: AF always, OF unless count = 1; all flags when a 16-bit count exceeds 16.
      info.flagsMask = OF | AF;
      if (!opsize32) {
        const count = op2 === 0xa4 || op2 === 0xac ? (bytes[i + 2 + modrmLength(modrm2, code32, bytes, i + 2)] ?? 0) & 0x1f : cl;
        if (count > 16) info.flagsMask = ARITH;
      }
    }
    return info;
  }
  info.plain = PLAIN_1.has(op) && !((op === 0xff) && ((modrm >> 3) & 7) !== 0 && ((modrm >> 3) & 7) !== 1 && ((modrm >> 3) & 7) !== 2 && ((modrm >> 3) & 7) !== 4 && ((modrm >> 3) & 7) !== 6);
  if (rep && [0x6c, 0x6d, 0x6e, 0x6f, 0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf].includes(op)) info.repString = true;
  if (op === 0xe6 && bytes[i + 1] === 0xf4 && prefixes === 0) info.isExit = true;
  if ((op >= 0xe4 && op <= 0xe7) || (op >= 0xec && op <= 0xef) || (op >= 0x6c && op <= 0x6f) || op === 0xf4) {
    info.isIoOrHlt = true;
    info.ioLength = prefixes + (op >= 0xe4 && op <= 0xe7 ? 2 : 1);
  }
  if (op === 0xdb && modrm === 0xe3) info.isFninit = true;

  if ((op >= 0x08 && op <= 0x0d) || (op >= 0x20 && op <= 0x25) || (op >= 0x30 && op <= 0x35) || op === 0x84 || op === 0x85 || op === 0xa8 || op === 0xa9) {
    info.flagsMask = AF; // OR/AND/XOR/TEST
  } else if (op >= 0x80 && op <= 0x83) {
    if (reg === 1 || reg === 4 || reg === 6) info.flagsMask = AF;
  } else if (op === 0xf6 || op === 0xf7) {
    if (reg === 0 || reg === 1) info.flagsMask = AF;
    else if (reg === 4 || reg === 5) info.flagsMask = SF | ZF | AF | PF; // MUL/IMUL
    else if (reg === 6 || reg === 7) info.flagsMask = ARITH; // DIV/IDIV
  } else if (op === 0x69 || op === 0x6b) {
    info.flagsMask = SF | ZF | AF | PF;
  } else if (op === 0xc0 || op === 0xc1 || (op >= 0xd0 && op <= 0xd3)) {
    const byOne = op === 0xd0 || op === 0xd1;
    const count = byOne ? 1 : op === 0xd2 || op === 0xd3 ? cl : (bytes[i + 1 + modrmLength(modrm, code32, bytes, i + 1)] ?? 0) & 0x1f;
    if (reg <= 3) {
      // Rotates: OF is defined only for 1-bit rotates.
      if (count !== 1) info.flagsMask = OF;
    } else {
      info.flagsMask = AF | (count !== 1 ? OF : 0);
    }
  } else if (op === 0x27 || op === 0x2f) {
    info.flagsMask = OF; // DAA/DAS
  } else if (op === 0x37 || op === 0x3f) {
    info.flagsMask = OF | SF | ZF | PF; // AAA/AAS
  } else if (op === 0xd4 || op === 0xd5) {
    info.flagsMask = OF | AF | CF; // AAM/AAD
  }
  return info;
}

/** Length of ModRM + SIB + displacement starting at `bytes[at]` (the ModRM byte). */
function modrmLength(modrm: number, addr32: boolean, bytes: Uint8Array, at: number): number {
  const mod = modrm >> 6;
  const rm = modrm & 7;
  if (mod === 3) return 1;
  if (!addr32) {
    if (mod === 0) return rm === 6 ? 3 : 1;
    return mod === 1 ? 2 : 3;
  }
  let len = 1;
  let base = rm;
  if (rm === 4) { len++; base = (bytes[at + 1] ?? 0) & 7; }
  if (mod === 0) return len + (base === 5 ? 4 : 0);
  return len + (mod === 1 ? 1 : 4);
}

const C0 = 0x0100, C1 = 0x0200, C2 = 0x0400, C3 = 0x4000;

function x87StatusRules(op: number, modrm: number, info: InsnInfo): void {
  const reg = (modrm >> 3) & 7;
  const isReg = modrm >= 0xc0;
  // Comparisons: C0/C2/C3 carry the result, C1 is cleared (QEMU leaves it).
  const isCompare =
    ((op === 0xd8 || op === 0xdc) && reg >= 2 && reg <= 3) ||
    ((op === 0xda || op === 0xde) && !isReg && reg >= 2 && reg <= 3) ||
    (op === 0xde && modrm === 0xd9) || (op === 0xda && modrm === 0xe9) ||
    (op === 0xdd && modrm >= 0xe0 && modrm <= 0xef) ||
    (op === 0xd9 && modrm === 0xe4);
  const isComi = (op === 0xdb || op === 0xdf) && modrm >= 0xe8 && modrm <= 0xf7;
  if (isCompare) { info.qemuFswClear = C1; return; }
  if (isComi) { info.qemuFswClear = C1; return; }
  if (op === 0xd9 && (modrm === 0xe5 || modrm === 0xf8)) return; // FXAM, FPREM: all defined
  // FPREM1: QEMU 7.2 leaves C0/C1/C3 clear instead of the quotient bits (10 rem 3 gives 000, SDM: Q2 Q1 Q0 = 011).
  if (op === 0xd9 && modrm === 0xf5) { info.fswMask = C0 | C1 | C3; return; }
  // FNSTENV masks all exceptions afterwards (SDM), which on silicon also clears ES and B (seen
  // by the FPU's host-x87 oracle); QEMU 7.2 does neither: both are applied to QEMU's state.
  if (op === 0xd9 && !isReg && reg === 6) { info.qemuFcwSet = 0x3f; info.qemuFswClear = 0x8080; return; }
  if (op === 0xd9 && !isReg && (reg === 4 || reg === 5 || reg === 7)) return; // FLDENV, FLDCW, FNSTCW
  if (op === 0xdd && !isReg && (reg === 4 || reg === 6 || reg === 7)) return; // FRSTOR, FNSAVE, FNSTSW
  if (op === 0xdf && modrm === 0xe0) return; // FNSTSW AX
  if (op === 0xdb && (modrm === 0xe2 || modrm === 0xe3)) return; // FNCLEX, FNINIT
  // FSIN/FCOS/FSINCOS/FPTAN: C2 = reduction incomplete; PE is not compared either (QEMU's
  // host-double implementation never reports inexact).
  if (op === 0xd9 && [0xf2, 0xfb, 0xfe, 0xff].includes(modrm)) { info.fswMask = C0 | C1 | C3 | 0x20; return; }
  info.fswMask = C0 | C1 | C2 | C3;
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, k) => a + k);
}
const PLAIN_1 = new Set<number>([
  ...[0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38].flatMap((b) => range(b, b + 5)),
  0x27, 0x2f, 0x37, 0x3f, ...range(0x40, 0x61), ...range(0x68, 0x6b), ...range(0x70, 0x8b), 0x8d,
  ...range(0x90, 0x99), 0x9e, 0x9f, ...range(0xa0, 0xbf), 0xc0, 0xc1, 0xc2, 0xc3, 0xc6, 0xc7, 0xc8, 0xc9,
  ...range(0xd0, 0xd5), 0xd7, ...range(0xe0, 0xe3), 0xe8, 0xe9, 0xeb, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfc, 0xfd, 0xfe, 0xff,
]);
const PLAIN_0F = new Set<number>([
  ...range(0x40, 0x4f), ...range(0x80, 0x9f), 0xa3, 0xa4, 0xa5, 0xab, 0xac, 0xad, 0xaf, 0xb0, 0xb1, 0xb3,
  0xb6, 0xb7, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, ...range(0xc8, 0xcf),
]);
