/**
 * The architectural state both sides are compared on, and the comparison itself.
 */

export interface SegmentCache {
  selector: number;
  base: number;
  limit: number;
  /**
   * Access rights in the layout of a descriptor's high dword with base and limit bits cleared
   * (type/S/DPL/P in bits 8-15, AVL/L/DB/G in bits 20-23), as QEMU keeps them.
   */
  flags: number;
}

export interface FpuState {
  fcw: number;
  /** Status word including TOP. */
  fsw: number;
  /** Abridged tag: bit i = physical register i is not empty. */
  ftagAbridged: number;
  /** ST(0)..ST(7) as 20 hex digits (sign+exponent, then the 64-bit significand), or null if empty. */
  st: (string | null)[];
}

export interface CpuState {
  /** EAX ECX EDX EBX ESP EBP ESI EDI. */
  gpr: number[];
  eip: number;
  eflags: number;
  /** ES CS SS DS FS GS. */
  seg: SegmentCache[];
  /** Present when the side could provide them (QEMU always; Boxwood if the CPU exposes them). */
  ldtr?: SegmentCache;
  tr?: SegmentCache;
  gdtr?: { base: number; limit: number };
  idtr?: { base: number; limit: number };
  cr: { cr0: number; cr2: number; cr3: number; cr4: number };
  cpl?: number;
  /** Debug status and control (DR6, DR7). */
  dr6?: number;
  dr7?: number;
  fpu?: FpuState;
}

export const GPR_NAMES = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
export const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'];

export const hex = (v: number, digits = 8) => (v >>> 0).toString(16).padStart(digits, '0');

/** Which parts of the state a comparison covers. */
export interface CompareOptions {
  /** EFLAGS bits whose value is architecturally undefined after this instruction. */
  flagsMask: number;
  /** Compare descriptor caches, system registers and CRs (otherwise only selectors). */
  system: boolean;
  /** Compare the x87 state (only once both sides have executed FNINIT: reset values differ, see docs). */
  fpu: boolean;
  /** Tolerance for ST(i) in ulps of the 64-bit significand (transcendentals). */
  fpuUlps?: number;
  /** FSW bits not compared (undefined condition codes, C1 where QEMU does not keep it). */
  fswMask?: number;
  /** Compare only the FSW exception bits (QEMU just took an unmasked x87 exception; see harness). */
  fpuExceptionOnly?: boolean;
}

/**
 * Access-rights bits compared: type, S, DPL, P, D/B, G. AVL and L are software/64-bit only.
 * In real and V86 mode only base and limit are compared for CS: QEMU keeps CS "code" (0x9b) at
 * reset while the SDM (Table 9-1) says "present, R/W, accessed" (0x93); neither is visible there.
 */
const SEG_FLAGS_MASK = 0x00c0ff00;

export function diffStates(ref: CpuState, dut: CpuState, opt: CompareOptions): string[] {
  const d: string[] = [];
  const cmp = (what: string, a: number | undefined, b: number | undefined, mask = 0xffffffff) => {
    if (a === undefined || b === undefined) return;
    if (((a ^ b) & mask) !== 0) d.push(`${what}: qemu=${hex(a & mask)} boxwood=${hex(b & mask)}${mask !== 0xffffffff ? ` (mask ${hex(mask)})` : ''}`);
  };
  for (let i = 0; i < 8; i++) cmp(GPR_NAMES[i], ref.gpr[i], dut.gpr[i]);
  cmp('eip', ref.eip, dut.eip);
  cmp('eflags', ref.eflags, dut.eflags, ~opt.flagsMask);
  for (let i = 0; i < 6; i++) cmp(SEG_NAMES[i], ref.seg[i].selector, dut.seg[i].selector);
  if (opt.system) {
    const realOrV86 = (ref.cr.cr0 & 1) === 0 || (ref.eflags & 0x20000) !== 0;
    for (let i = 0; i < 6; i++) {
      // A null selector in protected mode leaves a cache nobody can observe (QEMU keeps the old
      // base and limit and clears P; hardware marks it unusable): only the selector is compared.
      const nullSel = !realOrV86 && (ref.seg[i].selector & ~3) === 0 && i !== 1 && i !== 2;
      if (nullSel) continue;
      cmp(`${SEG_NAMES[i]}.base`, ref.seg[i].base, dut.seg[i].base);
      cmp(`${SEG_NAMES[i]}.limit`, ref.seg[i].limit, dut.seg[i].limit);
      const m = realOrV86 && i === 1 ? 0 : realOrV86 ? 0x00408000 : SEG_FLAGS_MASK;
      cmp(`${SEG_NAMES[i]}.flags`, ref.seg[i].flags, dut.seg[i].flags, m);
    }
    for (const k of ['ldtr', 'tr'] as const) {
      const a = ref[k], b = dut[k];
      if (a && b) {
        cmp(`${k}.selector`, a.selector, b.selector);
        cmp(`${k}.base`, a.base, b.base);
        cmp(`${k}.limit`, a.limit, b.limit);
        // QEMU's LTR/task switch caches the TSS type from before it marks the descriptor busy
        // (type 9 where hardware holds 11); the busy bit of the TR cache is not compared (the
        // descriptor in memory is).
        cmp(`${k}.flags`, a.flags, b.flags, k === 'tr' ? 0x0000fd00 : 0x0000ff00);
      }
    }
    for (const k of ['gdtr', 'idtr'] as const) {
      const a = ref[k], b = dut[k];
      if (a && b) {
        cmp(`${k}.base`, a.base, b.base);
        cmp(`${k}.limit`, a.limit, b.limit);
      }
    }
    cmp('cr0', ref.cr.cr0, dut.cr.cr0);
    cmp('cr2', ref.cr.cr2, dut.cr.cr2);
    cmp('cr3', ref.cr.cr3, dut.cr.cr3);
    cmp('cr4', ref.cr.cr4, dut.cr.cr4);
    cmp('cpl', ref.cpl, dut.cpl);
    // DR6 is not compared step by step: under gdb single-stepping QEMU's monitor shows the
    // single-step BS bit only later than the trap; programs read DR6 into memory instead.
    cmp('dr7', ref.dr7, dut.dr7);
  }
  if (opt.fpu && ref.fpu && dut.fpu) {
    cmp('fcw', ref.fpu.fcw, dut.fpu.fcw, 0x1f3f);
    const ulps = opt.fpuUlps ?? 0;
    if (opt.fpuExceptionOnly) {
      cmp('fsw', ref.fpu.fsw, dut.fpu.fsw, 0x80bd);
      return d;
    }
    // DE (bit 1) is never compared: QEMU 7.2 does not report the denormal-operand exception.
    cmp('fsw', ref.fpu.fsw, dut.fpu.fsw, ~(opt.fswMask ?? 0) & ~0x0002);
    cmp('ftag', ref.fpu.ftagAbridged, dut.fpu.ftagAbridged);
    for (let i = 0; i < 8; i++) {
      const a = ref.fpu.st[i], b = dut.fpu.st[i];
      if (a === b) continue;
      if (a !== null && b !== null && ulps && ulpDistance(a, b) <= BigInt(ulps)) continue;
      d.push(`st${i}: qemu=${a ?? 'empty'} boxwood=${b ?? 'empty'}${ulps && a && b ? ` (${ulpDistance(a, b)} ulps apart, tolerance ${ulps})` : ''}`);
    }
  }
  return d;
}

export function formatState(s: CpuState): string {
  const l: string[] = [];
  l.push(GPR_NAMES.slice(0, 4).map((n, i) => `${n.toUpperCase()}=${hex(s.gpr[i])}`).join(' '));
  l.push(GPR_NAMES.slice(4).map((n, i) => `${n.toUpperCase()}=${hex(s.gpr[i + 4])}`).join(' '));
  l.push(`EIP=${hex(s.eip)} EFL=${hex(s.eflags)}${s.cpl !== undefined ? ` CPL=${s.cpl}` : ''}`);
  for (let i = 0; i < 6; i++) {
    const c = s.seg[i];
    l.push(`${SEG_NAMES[i].toUpperCase()}=${hex(c.selector, 4)} ${hex(c.base)} ${hex(c.limit)} ${hex(c.flags)}`);
  }
  if (s.ldtr) l.push(`LDT=${hex(s.ldtr.selector, 4)} ${hex(s.ldtr.base)} ${hex(s.ldtr.limit)} ${hex(s.ldtr.flags)}`);
  if (s.tr) l.push(`TR =${hex(s.tr.selector, 4)} ${hex(s.tr.base)} ${hex(s.tr.limit)} ${hex(s.tr.flags)}`);
  if (s.gdtr) l.push(`GDT=${hex(s.gdtr.base)} ${hex(s.gdtr.limit)}  IDT=${s.idtr ? `${hex(s.idtr.base)} ${hex(s.idtr.limit)}` : '?'}`);
  l.push(`CR0=${hex(s.cr.cr0)} CR2=${hex(s.cr.cr2)} CR3=${hex(s.cr.cr3)} CR4=${hex(s.cr.cr4)}`);
  if (s.fpu) {
    l.push(`FCW=${hex(s.fpu.fcw, 4)} FSW=${hex(s.fpu.fsw, 4)} FTW=${hex(s.fpu.ftagAbridged, 2)} ` + s.fpu.st.map((v, i) => `ST${i}=${v ?? '-'}`).join(' '));
  }
  return l.join('\n');
}

/** Distance between two 80-bit values (20 hex digits) of the same sign, in ulps of the 64-bit significand. */
export function ulpDistance(a: string, b: string): bigint {
  const sa = parseInt(a.slice(0, 4), 16) & 0x8000, sb = parseInt(b.slice(0, 4), 16) & 0x8000;
  if (sa !== sb) return 1n << 80n;
  // Exponent and significand concatenated are monotonic in magnitude for normal numbers, except
  // that the explicit integer bit repeats at each binade: drop it.
  const key = (v: string) => {
    const e = BigInt(parseInt(v.slice(0, 4), 16) & 0x7fff);
    const m = BigInt('0x' + v.slice(4)) & ((1n << 63n) - 1n);
    return (e << 63n) | m;
  };
  const d = key(a) - key(b);
  return d < 0n ? -d : d;
}
