/**
 * Protected-mode machinery: descriptor loads with their checks, far transfers through call gates,
 * interrupt/trap/task gates, privilege changes with stack switches, task switches, IRET to V86,
 * I/O permission checks, and the system instructions (0F 00, 0F 01, LAR/LSL, MOV CR/DR...).
 */
import type { Cpu } from './cpu';
import {
  AC,
  ARITH_FLAGS,
  AR_ACCESSED,
  AR_CODE,
  AR_DB,
  AR_DC,
  AR_G,
  AR_P,
  AR_RW,
  AR_S,
  CR0_CD,
  CR0_ET,
  CR0_NW,
  CR0_PE,
  CR0_PG,
  CR0_TS,
  CR0_WP,
  CR4_DE,
  CR4_PAE,
  CR4_PGE,
  CR4_PSE,
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
  EXC_NP,
  EXC_SS,
  EXC_TS,
  FS,
  GS,
  ID,
  IF,
  INT_SOFTWARE,
  IOPL,
  LDTR,
  LZ_NONE,
  NT,
  RF,
  SS,
  TF,
  TR,
  VIF,
  VIP,
  VM,
  ZF,
} from './constants';
import { decodeModrm, getReg, setReg, rmRead, rmWrite } from './exec';


const TS_JMP = 0;
const TS_CALL = 1;
const TS_IRET = 2;

// -----------------------------------------------------------------------------------------------
// Descriptors

/** Reads the descriptor of `sel` into c.descLo/c.descHi; false if it lies beyond the table limit. */
export function readDescriptor(c: Cpu, sel: number): boolean {
  const index = sel & 0xfff8;
  let base: number;
  let limit: number;
  if (sel & 4) {
    if ((c.segSel[LDTR] & 0xfffc) === 0) return false;
    base = c.segBase[LDTR];
    limit = c.segLimit[LDTR];
  } else {
    base = c.gdtBase;
    limit = c.gdtLimit;
  }
  if (index + 7 > limit) return false;
  const prev = c.supervisorAccess;
  c.supervisorAccess = true;
  try {
    c.descLo = c.readLin32((base + index) | 0);
    c.descHi = c.readLin32((base + index + 4) | 0);
  } finally {
    c.supervisorAccess = prev;
  }
  return true;
}

function descriptorAddress(c: Cpu, sel: number): number {
  return ((sel & 4 ? c.segBase[LDTR] : c.gdtBase) + (sel & 0xfff8)) | 0;
}

/** Sets the accessed bit of a code/data descriptor in memory (as the CPU does on a load). */
function setAccessed(c: Cpu, sel: number): void {
  if (c.descHi & 0x100) return;
  c.descHi |= 0x100;
  const prev = c.supervisorAccess;
  c.supervisorAccess = true;
  try {
    c.writeLin32((descriptorAddress(c, sel) + 4) | 0, c.descHi);
  } finally {
    c.supervisorAccess = prev;
  }
}

function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
}
function descLimit(lo: number, hi: number): number {
  const l = (lo & 0xffff) | (hi & 0xf0000);
  return hi & 0x800000 ? ((l << 12) | 0xfff) >>> 0 : l;
}
function descAr(hi: number): number {
  return (hi >>> 8) & 0xf0ff;
}

function loadCache(c: Cpu, s: number, sel: number, lo: number, hi: number): void {
  c.segSel[s] = sel;
  c.segBase[s] = descBase(lo, hi);
  c.segLimit[s] = descLimit(lo, hi);
  c.segAr[s] = descAr(hi);
  c.updateSeg(s);
}

function loadNull(c: Cpu, s: number, sel: number): void {
  c.segSel[s] = sel;
  c.segBase[s] = 0;
  c.segLimit[s] = 0;
  c.segAr[s] = 0;
  c.updateSeg(s);
}

/** Loads CS from a validated code descriptor at privilege `cpl`. */
function loadCs(c: Cpu, sel: number, lo: number, hi: number, cpl: number): void {
  loadCache(c, CS, (sel & 0xfffc) | cpl, lo, hi);
  c.cpl = cpl;
  c.updateSeg(CS);
  for (let s = 0; s < 6; s++) if (s !== CS) c.updateSeg(s);
}

function np(c: Cpu, error: number): never {
  return c.fault(EXC_NP, error & 0xfffc);
}
function ts(c: Cpu, error: number): never {
  return c.fault(EXC_TS, error & 0xfffc);
}

/** MOV/POP/LxS into a data segment register or SS, with all protected-mode checks. */
export function loadSeg(c: Cpu, s: number, sel: number): void {
  sel &= 0xffff;
  if (!c.protectedMode) {
    c.loadSegmentReal(s, sel);
    return;
  }
  const rpl = sel & 3;
  if ((sel & 0xfffc) === 0) {
    if (s === SS) c.gp(0);
    loadNull(c, s, sel);
    return;
  }
  if (!readDescriptor(c, sel)) c.gp(sel & 0xfffc);
  const lo = c.descLo;
  const hi = c.descHi;
  const ar = (hi >>> 8) & 0xff;
  const dpl = (ar >> 5) & 3;
  if (s === SS) {
    if (rpl !== c.cpl || dpl !== c.cpl || (ar & (AR_S | AR_CODE | AR_RW)) !== (AR_S | AR_RW)) c.gp(sel & 0xfffc);
    if (!(ar & AR_P)) c.fault(EXC_SS, sel & 0xfffc);
  } else {
    if (!(ar & AR_S) || (ar & (AR_CODE | AR_RW)) === AR_CODE) c.gp(sel & 0xfffc);
    if (!(ar & AR_CODE) || !(ar & AR_DC)) {
      if (dpl < c.cpl || dpl < rpl) c.gp(sel & 0xfffc);
    }
    if (!(ar & AR_P)) np(c, sel);
  }
  setAccessed(c, sel);
  loadCache(c, s, sel, lo, c.descHi);
}

export function popSeg(c: Cpu, s: number): void {
  const v = c.opSize32 ? c.peekStack(0, 32) & 0xffff : c.peekStack(0, 16);
  loadSeg(c, s, v);
  c.adjustEsp(c.opSize32 ? 4 : 2);
  if (s === SS) {
    c.interruptShadow = true;
    c.eventCheck = true;
    if (c.flags & TF) c.ssInhibit = true;
  }
}

export function loadFarPointer(c: Cpu, s: number): void {
  const size = c.opSize32 ? 32 : 16;
  const off = c.readSized(size, c.eaSeg, c.eaOff);
  const sel = c.read16(c.eaSeg, (c.eaOff + (size >> 3)) & (c.addrSize32 ? -1 : 0xffff));
  loadSeg(c, s, sel);
  setReg(c, size, (c.modrm >> 3) & 7, off);
}

// -----------------------------------------------------------------------------------------------
// Saved segment state, for rolling back multi-step transfers that fault half way

interface SegSnapshot {
  sel: number;
  base: number;
  limit: number;
  ar: number;
}
function snap(c: Cpu, s: number): SegSnapshot {
  return { sel: c.segSel[s], base: c.segBase[s], limit: c.segLimit[s], ar: c.segAr[s] };
}
function restore(c: Cpu, s: number, v: SegSnapshot): void {
  c.segSel[s] = v.sel;
  c.segBase[s] = v.base;
  c.segLimit[s] = v.limit;
  c.segAr[s] = v.ar;
  c.updateSeg(s);
}

/** Runs `body`; if it faults, restores CS/SS caches and CPL before the fault propagates. */
function transactional(c: Cpu, body: () => void): void {
  const cs = snap(c, CS);
  const ss = snap(c, SS);
  const cpl = c.cpl;
  const flags = c.flags;
  try {
    body();
  } catch (e) {
    restore(c, SS, ss);
    restore(c, CS, cs);
    c.cpl = cpl;
    c.flags = flags;
    c.updateMode();
    throw e;
  }
}

// -----------------------------------------------------------------------------------------------
// Far JMP / CALL / RET

export function farJump(c: Cpu, sel: number, off: number): void {
  if (!c.opSize32) off &= 0xffff;
  off >>>= 0;
  if (!c.protectedMode) {
    const limit = c.flags & VM ? 0xffff : c.segLimit[CS];
    if (off > limit) c.gp(0);
    c.loadSegmentReal(CS, sel);
    c.eip = off;
    return;
  }
  if ((sel & 0xfffc) === 0) c.gp(0);
  if (!readDescriptor(c, sel)) c.gp(sel & 0xfffc);
  const lo = c.descLo;
  const hi = c.descHi;
  const ar = (hi >>> 8) & 0xff;
  const dpl = (ar >> 5) & 3;
  const rpl = sel & 3;
  if (ar & AR_S) {
    checkCodeTarget(c, sel, ar, dpl, rpl);
    if (off > descLimit(lo, hi)) c.gp(0);
    setAccessed(c, sel);
    loadCs(c, sel, lo, c.descHi, c.cpl);
    c.eip = off;
    return;
  }
  const type = ar & 0xf;
  if (dpl < c.cpl || dpl < rpl) c.gp(sel & 0xfffc);
  if (!(ar & AR_P)) np(c, sel);
  switch (type) {
    case 4:
    case 12: {
      const csel = lo >>> 16;
      const goff = type === 12 ? ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0 : lo & 0xffff;
      if ((csel & 0xfffc) === 0) c.gp(0);
      if (!readDescriptor(c, csel)) c.gp(csel & 0xfffc);
      const car = (c.descHi >>> 8) & 0xff;
      const cdpl = (car >> 5) & 3;
      if ((car & (AR_S | AR_CODE)) !== (AR_S | AR_CODE)) c.gp(csel & 0xfffc);
      if (car & AR_DC ? cdpl > c.cpl : cdpl !== c.cpl) c.gp(csel & 0xfffc);
      if (!(car & AR_P)) np(c, csel);
      if (goff > descLimit(c.descLo, c.descHi)) c.gp(0);
      setAccessed(c, csel);
      loadCs(c, csel, c.descLo, c.descHi, c.cpl);
      c.eip = goff;
      return;
    }
    case 5:
      taskGate(c, lo >>> 16, TS_JMP);
      return;
    case 1:
    case 9:
      taskSwitch(c, sel, lo, hi, TS_JMP, -1);
      return;
    default:
      c.gp(sel & 0xfffc);
  }
}

function checkCodeTarget(c: Cpu, sel: number, ar: number, dpl: number, rpl: number): void {
  if (!(ar & AR_CODE)) c.gp(sel & 0xfffc);
  if (ar & AR_DC) {
    if (dpl > c.cpl) c.gp(sel & 0xfffc);
  } else if (rpl > c.cpl || dpl !== c.cpl) c.gp(sel & 0xfffc);
  if (!(ar & AR_P)) np(c, sel);
}

function taskGate(c: Cpu, tssSel: number, kind: number, error = -1): void {
  if (tssSel & 4) c.gp(tssSel & 0xfffc);
  if (!readDescriptor(c, tssSel)) c.gp(tssSel & 0xfffc);
  const type = (c.descHi >>> 8) & 0x1f;
  if (type !== 1 && type !== 9) c.gp(tssSel & 0xfffc);
  if (!(c.descHi & 0x8000)) np(c, tssSel);
  taskSwitch(c, tssSel, c.descLo, c.descHi, kind, error);
}

export function farCall(c: Cpu, sel: number, off: number): void {
  const size = c.opSize32 ? 32 : 16;
  if (!c.opSize32) off &= 0xffff;
  off >>>= 0;
  if (!c.protectedMode) {
    const limit = c.flags & VM ? 0xffff : c.segLimit[CS];
    if (off > limit) c.gp(0);
    c.push(c.segSel[CS]);
    c.push(c.eip);
    c.loadSegmentReal(CS, sel);
    c.eip = off;
    return;
  }
  if ((sel & 0xfffc) === 0) c.gp(0);
  if (!readDescriptor(c, sel)) c.gp(sel & 0xfffc);
  const lo = c.descLo;
  const hi = c.descHi;
  const ar = (hi >>> 8) & 0xff;
  const dpl = (ar >> 5) & 3;
  const rpl = sel & 3;
  if (ar & AR_S) {
    checkCodeTarget(c, sel, ar, dpl, rpl);
    if (off > descLimit(lo, hi)) c.gp(0);
    const retCs = c.segSel[CS];
    const retEip = c.eip;
    if (size === 32) {
      c.push32(retCs);
      c.push32(retEip);
    } else {
      c.push16(retCs);
      c.push16(retEip);
    }
    setAccessed(c, sel);
    loadCs(c, sel, lo, c.descHi, c.cpl);
    c.eip = off;
    return;
  }
  const type = ar & 0xf;
  if (dpl < c.cpl || dpl < rpl) c.gp(sel & 0xfffc);
  if (!(ar & AR_P)) np(c, sel);
  if (type === 5) {
    taskGate(c, lo >>> 16, TS_CALL);
    return;
  }
  if (type === 1 || type === 9) {
    taskSwitch(c, sel, lo, hi, TS_CALL, -1);
    return;
  }
  if (type !== 4 && type !== 12) c.gp(sel & 0xfffc);
  // Call gate.
  const gate32 = type === 12;
  const csel = lo >>> 16;
  const goff = gate32 ? ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0 : lo & 0xffff;
  const params = hi & 0x1f;
  if ((csel & 0xfffc) === 0) c.gp(0);
  if (!readDescriptor(c, csel)) c.gp(csel & 0xfffc);
  const clo = c.descLo;
  const chi = c.descHi;
  const car = (chi >>> 8) & 0xff;
  const cdpl = (car >> 5) & 3;
  if ((car & (AR_S | AR_CODE)) !== (AR_S | AR_CODE) || cdpl > c.cpl) c.gp(csel & 0xfffc);
  if (!(car & AR_P)) np(c, csel);
  if (goff > descLimit(clo, chi)) c.gp(0);
  const retCs = c.segSel[CS];
  const retEip = c.eip;
  if (!(car & AR_DC) && cdpl < c.cpl) {
    // More privileged: switch to the inner stack from the TSS and copy the parameters.
    const [newSs, newEsp] = innerStack(c, cdpl, 0);
    const oldSs = c.segSel[SS];
    const oldEsp = c.regs[ESP];
    const oldStack32 = c.stack32;
    const oldSsBase = c.segBase[SS];
    const paramVals: number[] = [];
    for (let i = params - 1; i >= 0; i--) {
      const o = oldStack32 ? (oldEsp + i * (gate32 ? 4 : 2)) | 0 : (oldEsp + i * (gate32 ? 4 : 2)) & 0xffff;
      c.linR(SS, o, gate32 ? 4 : 2);
      paramVals.push(gate32 ? c.readLin32((oldSsBase + o) | 0) : c.readLin16((oldSsBase + o) | 0));
    }
    transactional(c, () => {
      loadStackForPrivilege(c, newSs, cdpl);
      c.regs[ESP] = newEsp;
      const p = gate32 ? c.push32.bind(c) : c.push16.bind(c);
      p(oldSs);
      p(oldEsp);
      for (const v of paramVals) p(v);
      p(retCs);
      p(retEip);
      setAccessedSel(c, csel);
      loadCs(c, csel, clo, chi, cdpl);
    });
  } else {
    if (gate32) {
      c.push32(retCs);
      c.push32(retEip);
    } else {
      c.push16(retCs);
      c.push16(retEip);
    }
    loadCs(c, csel, clo, chi, c.cpl);
  }
  c.eip = goff;
}

function setAccessedSel(c: Cpu, sel: number): void {
  if (readDescriptor(c, sel)) setAccessed(c, sel);
}

/** Reads SS:ESP for privilege `dpl` from the current TSS, validating the stack segment (#TS). */
function innerStack(c: Cpu, dpl: number, ext: number): [number, number] {
  const tss32 = (c.segAr[TR] & 0xf) >= 9;
  const base = c.segBase[TR];
  let ss: number;
  let esp: number;
  const prev = c.supervisorAccess;
  c.supervisorAccess = true;
  try {
    if (tss32) {
      const at = 4 + dpl * 8;
      if (at + 7 > c.segLimit[TR]) ts(c, c.segSel[TR] | ext);
      esp = c.readLin32((base + at) | 0);
      ss = c.readLin16((base + at + 4) | 0);
    } else {
      const at = 2 + dpl * 4;
      if (at + 3 > c.segLimit[TR]) ts(c, c.segSel[TR] | ext);
      esp = c.readLin16((base + at) | 0);
      ss = c.readLin16((base + at + 2) | 0);
    }
  } finally {
    c.supervisorAccess = prev;
  }
  if ((ss & 0xfffc) === 0) ts(c, ext);
  if ((ss & 3) !== dpl) ts(c, ss | ext);
  if (!readDescriptor(c, ss)) ts(c, ss | ext);
  const ar = (c.descHi >>> 8) & 0xff;
  if (((ar >> 5) & 3) !== dpl || (ar & (AR_S | AR_CODE | AR_RW)) !== (AR_S | AR_RW)) ts(c, ss | ext);
  if (!(ar & AR_P)) c.fault(EXC_SS, (ss & 0xfffc) | ext);
  return [ss, esp];
}

/** Loads SS for a privilege change (descriptor already validated by innerStack). */
function loadStackForPrivilege(c: Cpu, ss: number, dpl: number): void {
  readDescriptor(c, ss);
  setAccessed(c, ss);
  loadCache(c, SS, ss, c.descLo, c.descHi);
  c.cpl = dpl;
}

/** Nulls data segment registers the new (outer) privilege may not use. */
function validateDataSegments(c: Cpu): void {
  for (const s of [ES, DS, FS, GS]) {
    const ar = c.segAr[s];
    const dpl = (ar >> 5) & 3;
    if ((c.segSel[s] & 0xfffc) === 0) continue;
    const dataOrNonConf = !(ar & AR_CODE) || !(ar & AR_DC);
    if (dataOrNonConf && dpl < c.cpl) loadNull(c, s, 0);
  }
}

export function farReturn(c: Cpu, imm: number): void {
  const size = c.opSize32 ? 32 : 16;
  const bytes = size >> 3;
  if (!c.protectedMode) {
    const off = c.peekStack(0, size) >>> 0;
    const sel = c.peekStack(bytes, size) & 0xffff;
    const limit = c.flags & VM ? 0xffff : c.segLimit[CS];
    if (off > limit) c.gp(0);
    c.adjustEsp(2 * bytes + imm);
    c.loadSegmentReal(CS, sel);
    c.eip = off;
    return;
  }
  const off = c.peekStack(0, size) >>> 0;
  const sel = c.peekStack(bytes, size) & 0xffff;
  returnTo(c, sel, off, 2 * bytes, imm, size, -1);
}

/**
 * The common tail of RETF and protected-mode IRET: returns to sel:off; `popped` bytes (EIP, CS
 * and for IRET EFLAGS) are already accounted for at ESP..ESP+popped; `newFlags` is applied for IRET.
 */
function returnTo(c: Cpu, sel: number, off: number, popped: number, imm: number, size: number, newFlags: number): void {
  if ((sel & 0xfffc) === 0) c.gp(0);
  if (!readDescriptor(c, sel)) c.gp(sel & 0xfffc);
  const lo = c.descLo;
  const hi = c.descHi;
  const ar = (hi >>> 8) & 0xff;
  const dpl = (ar >> 5) & 3;
  const rpl = sel & 3;
  if ((ar & (AR_S | AR_CODE)) !== (AR_S | AR_CODE)) c.gp(sel & 0xfffc);
  if (rpl < c.cpl) c.gp(sel & 0xfffc);
  if (ar & AR_DC ? dpl > rpl : dpl !== rpl) c.gp(sel & 0xfffc);
  if (!(ar & AR_P)) np(c, sel);
  const oldCpl = c.cpl;
  if (rpl === c.cpl) {
    if (off > descLimit(lo, hi)) c.gp(0);
    setAccessed(c, sel);
    loadCs(c, sel, lo, c.descHi, rpl);
    c.adjustEsp(popped + imm);
    if (newFlags >= 0) applyIretFlags(c, newFlags, size, oldCpl);
    c.eip = off;
    return;
  }
  // Return to an outer privilege level: the outer stack pointer follows.
  const bytes = size >> 3;
  const newEsp = c.peekStack(popped + imm, size);
  const newSs = c.peekStack(popped + imm + bytes, size) & 0xffff;
  if ((newSs & 0xfffc) === 0) c.gp(0);
  if ((newSs & 3) !== rpl) c.gp(newSs & 0xfffc);
  if (!readDescriptor(c, newSs)) c.gp(newSs & 0xfffc);
  const slo = c.descLo;
  const shi = c.descHi;
  const sar = (shi >>> 8) & 0xff;
  if ((sar & (AR_S | AR_CODE | AR_RW)) !== (AR_S | AR_RW) || ((sar >> 5) & 3) !== rpl) c.gp(newSs & 0xfffc);
  if (!(sar & AR_P)) c.fault(EXC_SS, newSs & 0xfffc);
  if (off > descLimit(lo, hi)) c.gp(0);
  if (newFlags >= 0) applyIretFlags(c, newFlags, size, oldCpl);
  setAccessed(c, newSs);
  const shi2 = c.descHi;
  readDescriptor(c, sel);
  setAccessed(c, sel);
  loadCs(c, sel, lo, c.descHi, rpl);
  loadCache(c, SS, newSs, slo, shi2);
  if (c.stack32) c.regs[ESP] = (newEsp + imm) | 0;
  else c.r16[ESP << 1] = newEsp + imm;
  c.eip = off;
  validateDataSegments(c);
}

function applyIretFlags(c: Cpu, v: number, size: number, cpl: number): void {
  c.materializeFlags();
  let mask = ARITH_FLAGS | TF | DF | NT | IF | IOPL;
  if (size === 32) mask |= AC | ID | RF;
  if (cpl > 0) mask &= ~IOPL;
  if (cpl > ((c.flags >> 12) & 3)) mask &= ~IF;
  if (size === 32 && cpl === 0) mask |= VIF | VIP;
  if (size === 16) mask &= 0xffff;
  c.flags = (c.flags & ~mask) | (v & mask) | 2;
  c.eventCheck = true;
}

// -----------------------------------------------------------------------------------------------
// IRET

export function iret(c: Cpu): void {
  // IRET ends NMI blocking (even when it faults later, as on hardware).
  if (c.nmiBlocked) {
    c.nmiBlocked = false;
    if (c.nmiPending) c.eventCheck = true;
  }
  const size = c.opSize32 ? 32 : 16;
  const bytes = size >> 3;
  if (!(c.cr0 & CR0_PE)) {
    const off = c.peekStack(0, size) >>> 0;
    const sel = c.peekStack(bytes, size) & 0xffff;
    const fl = c.peekStack(2 * bytes, size);
    if (size === 16 ? off > c.segLimit[CS] : off > c.segLimit[CS]) c.gp(0);
    c.adjustEsp(3 * bytes);
    c.loadSegmentReal(CS, sel);
    c.eip = off;
    c.writeFlagsChecked(fl, size);
    return;
  }
  if (c.flags & VM) {
    if (((c.flags >> 12) & 3) !== 3) c.gp(0);
    const off = c.peekStack(0, size) >>> 0;
    const sel = c.peekStack(bytes, size) & 0xffff;
    const fl = c.peekStack(2 * bytes, size);
    if (off > 0xffff) c.gp(0);
    c.adjustEsp(3 * bytes);
    c.loadSegmentReal(CS, sel);
    c.eip = off;
    c.writeFlagsChecked(fl, size);
    return;
  }
  if (c.flags & NT) {
    // Return from a nested task through the back link.
    const prev = c.supervisorAccess;
    c.supervisorAccess = true;
    let link: number;
    try {
      link = c.readLin16(c.segBase[TR] | 0);
    } finally {
      c.supervisorAccess = prev;
    }
    if (link & 4) ts(c, link);
    if (!readDescriptor(c, link)) ts(c, link);
    const type = (c.descHi >>> 8) & 0x1f;
    if (type !== 3 && type !== 11) ts(c, link);
    if (!(c.descHi & 0x8000)) np(c, link);
    taskSwitch(c, link, c.descLo, c.descHi, TS_IRET, -1);
    return;
  }
  const off = c.peekStack(0, size) >>> 0;
  const sel = c.peekStack(bytes, size) & 0xffff;
  const fl = c.peekStack(2 * bytes, size);
  if (size === 32 && fl & VM && c.cpl === 0) {
    // Return to virtual-8086 mode.
    const esp = c.peekStack(12, 32);
    const ss = c.peekStack(16, 32) & 0xffff;
    const es = c.peekStack(20, 32) & 0xffff;
    const ds = c.peekStack(24, 32) & 0xffff;
    const fs = c.peekStack(28, 32) & 0xffff;
    const gs = c.peekStack(32, 32) & 0xffff;
    c.lzOp = LZ_NONE;
    c.flags = (fl & 0x3f7fd5) | 2;
    c.updateMode();
    for (const [s, v] of [[CS, sel], [SS, ss], [ES, es], [DS, ds], [FS, fs], [GS, gs]] as const) c.loadSegmentReal(s, v);
    c.regs[ESP] = esp;
    c.eip = off & 0xffff;
    c.cpl = 3;
    c.eventCheck = true;
    return;
  }
  returnTo(c, sel, off, 3 * bytes, 0, size, fl);
}

// -----------------------------------------------------------------------------------------------
// Interrupts and exceptions in protected and V86 mode

export function protectedModeInterrupt(c: Cpu, vector: number, kind: number, error: number, returnEip: number): void {
  const ext = kind === INT_SOFTWARE ? 0 : 1;
  const idtErr = vector * 8 + 2 + ext;
  if (vector * 8 + 7 > c.idtLimit) c.gp(idtErr);
  const prev = c.supervisorAccess;
  c.supervisorAccess = true;
  let lo: number;
  let hi: number;
  try {
    lo = c.readLin32((c.idtBase + vector * 8) | 0);
    hi = c.readLin32((c.idtBase + vector * 8 + 4) | 0);
  } finally {
    c.supervisorAccess = prev;
  }
  const type = (hi >>> 8) & 0x1f;
  const dpl = (hi >>> 13) & 3;
  if (type !== 5 && type !== 6 && type !== 7 && type !== 14 && type !== 15) c.gp(idtErr);
  if (kind === INT_SOFTWARE && dpl < c.cpl) c.gp(idtErr);
  if (!(hi & 0x8000)) c.fault(EXC_NP, idtErr);
  if (type === 5) {
    c.eip = returnEip;
    taskGate(c, lo >>> 16, TS_CALL, error);
    return;
  }
  const gate32 = type >= 14;
  const trap = (type & 1) !== 0;
  const csel = lo >>> 16;
  const goff = gate32 ? ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0 : lo & 0xffff;
  if ((csel & 0xfffc) === 0) c.gp(ext);
  if (!readDescriptor(c, csel)) c.gp((csel & 0xfffc) + ext);
  const clo = c.descLo;
  const chi = c.descHi;
  const car = (chi >>> 8) & 0xff;
  const cdpl = (car >> 5) & 3;
  if ((car & (AR_S | AR_CODE)) !== (AR_S | AR_CODE) || cdpl > c.cpl) c.gp((csel & 0xfffc) + ext);
  if (!(car & AR_P)) c.fault(EXC_NP, (csel & 0xfffc) + ext);
  if (goff > descLimit(clo, chi)) c.gp(ext);
  const oldFlags = c.getFlags();
  const fromVm = (c.flags & VM) !== 0;
  const p = gate32 ? c.push32.bind(c) : c.push16.bind(c);
  if (!(car & AR_DC) && cdpl < c.cpl) {
    if (fromVm && cdpl !== 0) c.gp((csel & 0xfffc) + ext);
    const [newSs, newEsp] = innerStack(c, cdpl, ext);
    const oldSs = c.segSel[SS];
    const oldEsp = c.regs[ESP];
    const saved = fromVm ? [ES, DS, FS, GS].map((s) => snap(c, s)) : [];
    transactional(c, () => {
      try {
        if (fromVm) {
          c.flags &= ~VM;
          c.updateMode();
        }
        loadStackForPrivilege(c, newSs, cdpl);
        c.regs[ESP] = newEsp;
        if (!c.stack32) c.regs[ESP] = newEsp & 0xffff;
        if (fromVm) {
          p(saved[3].sel);
          p(saved[2].sel);
          p(saved[1].sel);
          p(saved[0].sel);
        }
        p(oldSs);
        p(oldEsp);
        p(oldFlags);
        p(c.segSel[CS]);
        p(returnEip);
        if (error >= 0) p(error);
        setAccessedSel(c, csel);
        loadCs(c, csel, clo, chi, cdpl);
        if (fromVm) for (const s of [ES, DS, FS, GS]) loadNull(c, s, 0);
      } catch (e) {
        if (fromVm) [ES, DS, FS, GS].forEach((s, i) => restore(c, s, saved[i]));
        c.regs[ESP] = oldEsp;
        throw e;
      }
    });
  } else {
    if (fromVm) c.gp((csel & 0xfffc) + ext);
    p(oldFlags);
    p(c.segSel[CS]);
    p(returnEip);
    if (error >= 0) p(error);
    setAccessedSel(c, csel);
    loadCs(c, csel, clo, chi, c.cpl);
  }
  c.materializeFlags();
  c.flags &= ~(TF | NT | RF | VM);
  if (!trap) c.flags &= ~IF;
  c.updateMode();
  c.eip = goff;
}

export function softwareInterrupt(c: Cpu, vector: number, int3OrInto: boolean): void {
  if (c.flags & VM && ((c.flags >> 12) & 3) !== 3 && !int3OrInto) c.gp(0);
  c.deliverInterrupt(vector, INT_SOFTWARE, -1, c.eip);
}

// -----------------------------------------------------------------------------------------------
// Task switch

function taskSwitch(c: Cpu, sel: number, lo: number, hi: number, kind: number, error: number): void {
  const newType = (hi >>> 8) & 0xf;
  const new32 = (newType & 8) !== 0;
  const newBase = descBase(lo, hi);
  const newLimit = descLimit(lo, hi);
  if (newLimit < (new32 ? 0x67 : 0x2b)) ts(c, sel);
  const oldSel = c.segSel[TR];
  const oldBase = c.segBase[TR];
  const old32 = (c.segAr[TR] & 0xf) >= 9;
  c.materializeFlags();
  const prevSup = c.supervisorAccess;
  c.supervisorAccess = true;
  try {
    // Probe the new TSS before touching anything.
    c.probeRead(newBase | 0, new32 ? 0x68 : 0x2c);
    let flags = c.flags | 2;
    if (kind === TS_IRET) flags &= ~NT;
    const r = c.regs;
    if (old32) {
      c.probeWrite((oldBase + 32) | 0, 64);
      c.writeLin32((oldBase + 32) | 0, c.eip);
      c.writeLin32((oldBase + 36) | 0, flags);
      for (let i = 0; i < 8; i++) c.writeLin32((oldBase + 40 + i * 4) | 0, r[i]);
      for (let s = 0; s < 6; s++) c.writeLin16((oldBase + 72 + s * 4) | 0, c.segSel[s]);
    } else {
      c.probeWrite((oldBase + 14) | 0, 28);
      c.writeLin16((oldBase + 14) | 0, c.eip);
      c.writeLin16((oldBase + 16) | 0, flags);
      for (let i = 0; i < 8; i++) c.writeLin16((oldBase + 18 + i * 2) | 0, r[i]);
      for (let s = 0; s < 4; s++) c.writeLin16((oldBase + 34 + s * 2) | 0, c.segSel[s]);
    }
    if (kind === TS_JMP || kind === TS_IRET) {
      // Clear the old task's busy bit.
      if (readDescriptor(c, oldSel)) c.writeLin32((descriptorAddress(c, oldSel) + 4) | 0, c.descHi & ~0x200);
    }
    if (kind === TS_CALL) c.writeLin16(newBase | 0, oldSel);
    if (kind !== TS_IRET) {
      readDescriptor(c, sel);
      c.writeLin32((descriptorAddress(c, sel) + 4) | 0, c.descHi | 0x200);
    }
    readDescriptor(c, sel);
    c.segSel[TR] = sel;
    c.segBase[TR] = newBase;
    c.segLimit[TR] = newLimit;
    c.segAr[TR] = descAr(c.descHi) | 0x2;
    c.updateSeg(TR);

    // Read the new state.
    let eip: number;
    let nflags: number;
    const nr = new Int32Array(8);
    const nsel = new Uint16Array(6);
    let ldt: number;
    let cr3 = -1;
    if (new32) {
      cr3 = c.readLin32((newBase + 28) | 0);
      eip = c.readLin32((newBase + 32) | 0);
      nflags = c.readLin32((newBase + 36) | 0);
      for (let i = 0; i < 8; i++) nr[i] = c.readLin32((newBase + 40 + i * 4) | 0);
      for (let s = 0; s < 6; s++) nsel[s] = c.readLin16((newBase + 72 + s * 4) | 0);
      ldt = c.readLin16((newBase + 96) | 0);
    } else {
      eip = c.readLin16((newBase + 14) | 0);
      nflags = c.readLin16((newBase + 16) | 0);
      for (let i = 0; i < 8; i++) nr[i] = c.readLin16((newBase + 18 + i * 2) | 0) | 0xffff0000;
      for (let s = 0; s < 4; s++) nsel[s] = c.readLin16((newBase + 34 + s * 2) | 0);
      ldt = c.readLin16((newBase + 42) | 0);
    }
    if (new32 && c.pagingEnabled) {
      c.cr3 = cr3;
      c.flushTlb(false);
    }
    // The switch is committed: faults from here on belong to the new task.
    c.eip = eip >>> 0;
    if (new32) r.set(nr);
    else for (let i = 0; i < 8; i++) c.r16[i << 1] = nr[i];
    if (kind === TS_CALL) nflags |= NT;
    c.lzOp = LZ_NONE;
    c.flags = (nflags & 0x3f7fd5) | 2;
    c.cr0 |= CR0_TS;
    for (let s = 0; s < 6; s++) c.segSel[s] = nsel[s];
    c.updateMode();
    c.startEip = c.eip;
    c.startEsp = r[ESP];
    // LDT
    if ((ldt & 0xfffc) === 0) loadNull(c, LDTR, ldt);
    else {
      if (ldt & 4) ts(c, ldt);
      if (!readDescriptor(c, ldt)) ts(c, ldt);
      if (((c.descHi >>> 8) & 0x1f) !== 2) ts(c, ldt);
      if (!(c.descHi & 0x8000)) ts(c, ldt);
      loadCache(c, LDTR, ldt, c.descLo, c.descHi);
    }
    if (c.flags & VM) {
      for (let s = 0; s < 6; s++) c.loadSegmentReal(s, nsel[s]);
      c.cpl = 3;
    } else {
      const csel = nsel[CS];
      const newCpl = csel & 3;
      if ((csel & 0xfffc) === 0) ts(c, csel);
      if (!readDescriptor(c, csel)) ts(c, csel);
      const car = (c.descHi >>> 8) & 0xff;
      const cdpl = (car >> 5) & 3;
      if ((car & (AR_S | AR_CODE)) !== (AR_S | AR_CODE)) ts(c, csel);
      if (car & AR_DC ? cdpl > newCpl : cdpl !== newCpl) ts(c, csel);
      if (!(car & AR_P)) np(c, csel);
      loadCs(c, csel, c.descLo, c.descHi, newCpl);
      const ss = nsel[SS];
      if ((ss & 0xfffc) === 0) ts(c, ss);
      if (!readDescriptor(c, ss)) ts(c, ss);
      const sar = (c.descHi >>> 8) & 0xff;
      if ((ss & 3) !== newCpl || ((sar >> 5) & 3) !== newCpl || (sar & (AR_S | AR_CODE | AR_RW)) !== (AR_S | AR_RW)) ts(c, ss);
      if (!(sar & AR_P)) c.fault(EXC_SS, ss & 0xfffc);
      loadCache(c, SS, ss, c.descLo, c.descHi);
      for (const s of [ES, DS, FS, GS]) {
        const v = nsel[s];
        if ((v & 0xfffc) === 0) {
          loadNull(c, s, v);
          continue;
        }
        if (!readDescriptor(c, v)) ts(c, v);
        const ar = (c.descHi >>> 8) & 0xff;
        if (!(ar & AR_S) || (ar & (AR_CODE | AR_RW)) === AR_CODE) ts(c, v);
        if ((!(ar & AR_CODE) || !(ar & AR_DC)) && (((ar >> 5) & 3) < newCpl || ((ar >> 5) & 3) < (v & 3))) ts(c, v);
        if (!(ar & AR_P)) np(c, v);
        loadCache(c, s, v, c.descLo, c.descHi);
      }
    }
  } finally {
    c.supervisorAccess = prevSup;
  }
  if (c.eip > c.segLimit[CS]) c.gp(0);
  if (error >= 0) {
    if (new32) c.push32(error);
    else c.push16(error);
  }
  c.eventCheck = true;
}

// -----------------------------------------------------------------------------------------------
// Flags, CLI/STI, I/O permission

export function pushf(c: Cpu): void {
  if (c.flags & VM && ((c.flags >> 12) & 3) !== 3) c.gp(0);
  const f = c.getFlags() & ~(VM | RF);
  if (c.opSize32) c.push32(f);
  else c.push16(f);
}

export function popf(c: Cpu): void {
  if (c.flags & VM && ((c.flags >> 12) & 3) !== 3) c.gp(0);
  const size = c.opSize32 ? 32 : 16;
  const v = c.opSize32 ? c.pop32() : c.pop16();
  c.writeFlagsChecked(v, size);
}

export function cli(c: Cpu): void {
  if ((c.protectedMode || c.flags & VM) && c.cpl > ((c.flags >> 12) & 3)) c.gp(0);
  c.flags &= ~IF;
}

export function sti(c: Cpu): void {
  if ((c.protectedMode || c.flags & VM) && c.cpl > ((c.flags >> 12) & 3)) c.gp(0);
  if (!(c.flags & IF)) {
    c.flags |= IF;
    c.interruptShadow = true;
    c.eventCheck = true;
  }
}

/** I/O permission: CPL <= IOPL passes; otherwise (and always in V86) the TSS bitmap decides. */
export function checkIo(c: Cpu, port: number, len: number): void {
  if (!(c.cr0 & CR0_PE)) return;
  if (!(c.flags & VM) && c.cpl <= ((c.flags >> 12) & 3)) return;
  const type = c.segAr[TR] & 0xf;
  if ((type !== 9 && type !== 11) || c.segLimit[TR] < 103) c.gp(0);
  const base = c.segBase[TR];
  const prev = c.supervisorAccess;
  c.supervisorAccess = true;
  try {
    const ioBase = c.readLin16((base + 102) | 0);
    const at = ioBase + (port >> 3);
    if (at + 1 > c.segLimit[TR]) c.gp(0);
    const bits = c.readLin16((base + at) | 0);
    if ((bits >> (port & 7)) & ((1 << len) - 1)) c.gp(0);
  } finally {
    c.supervisorAccess = prev;
  }
}

// -----------------------------------------------------------------------------------------------
// ENTER, ARPL

export function enter(c: Cpu, size: number, level: number): void {
  level &= 31;
  const os = c.opSize32 ? 32 : 16;
  const bytes = os >> 3;
  const r = c.regs;
  c.push(os === 32 ? r[EBP] : c.r16[EBP << 1]);
  const frame = c.stack32 ? r[ESP] : c.r16[ESP << 1];
  if (level > 0) {
    let bp = c.stack32 ? r[EBP] : c.r16[EBP << 1];
    for (let i = 1; i < level; i++) {
      bp = c.stack32 ? (bp - bytes) | 0 : (bp - bytes) & 0xffff;
      c.push(c.readSized(os, SS, bp));
    }
    c.push(frame);
  }
  // The final stack pointer must be writable (P6 checks it before committing).
  const newSp = c.stack32 ? (r[ESP] - size) | 0 : (r[ESP] - size) & 0xffff;
  if (size > 0) c.linW(SS, newSp, 1);
  if (os === 32) r[EBP] = frame;
  else c.r16[EBP << 1] = frame;
  c.adjustEsp(-size);
}

export function arpl(c: Cpu): void {
  if (!c.protectedMode) c.ud();
  decodeModrm(c);
  const dst = rmRead(c, 16);
  const src = getReg(c, 16, (c.modrm >> 3) & 7);
  c.materializeFlags();
  if ((dst & 3) < (src & 3)) {
    rmWrite(c, 16, (dst & ~3) | (src & 3));
    c.flags |= ZF;
  } else c.flags &= ~ZF;
}

// -----------------------------------------------------------------------------------------------
// 0F 00: SLDT STR LLDT LTR VERR VERW

export function group6(c: Cpu): void {
  if (!c.protectedMode) c.ud();
  const m = decodeModrm(c);
  const reg = (m >> 3) & 7;
  switch (reg) {
    case 0:
    case 1: {
      const v = c.segSel[reg === 0 ? LDTR : TR];
      if (m >= 0xc0) setReg(c, c.opSize32 ? 32 : 16, m & 7, v);
      else c.write16(c.eaSeg, c.eaOff, v);
      return;
    }
    case 2: {
      if (c.cpl !== 0) c.gp(0);
      const sel = rmRead(c, 16);
      if ((sel & 0xfffc) === 0) {
        loadNull(c, LDTR, sel);
        return;
      }
      if (sel & 4) c.gp(sel & 0xfffc);
      if (!readDescriptor(c, sel)) c.gp(sel & 0xfffc);
      if (((c.descHi >>> 8) & 0x1f) !== 2) c.gp(sel & 0xfffc);
      if (!(c.descHi & 0x8000)) np(c, sel);
      loadCache(c, LDTR, sel, c.descLo, c.descHi);
      return;
    }
    case 3: {
      if (c.cpl !== 0) c.gp(0);
      const sel = rmRead(c, 16);
      if ((sel & 0xfffc) === 0) c.gp(0);
      if (sel & 4) c.gp(sel & 0xfffc);
      if (!readDescriptor(c, sel)) c.gp(sel & 0xfffc);
      const type = (c.descHi >>> 8) & 0x1f;
      if (type !== 1 && type !== 9) c.gp(sel & 0xfffc);
      if (!(c.descHi & 0x8000)) np(c, sel);
      c.descHi |= 0x200;
      const prev = c.supervisorAccess;
      c.supervisorAccess = true;
      try {
        c.writeLin32((descriptorAddress(c, sel) + 4) | 0, c.descHi);
      } finally {
        c.supervisorAccess = prev;
      }
      loadCache(c, TR, sel, c.descLo, c.descHi);
      return;
    }
    case 4:
    case 5: {
      const sel = rmRead(c, 16);
      c.materializeFlags();
      c.flags &= ~ZF;
      if ((sel & 0xfffc) === 0 || !readDescriptor(c, sel)) return;
      const ar = (c.descHi >>> 8) & 0xff;
      if (!(ar & AR_S)) return;
      const dpl = (ar >> 5) & 3;
      const conforming = (ar & (AR_CODE | AR_DC)) === (AR_CODE | AR_DC);
      if (!conforming && (dpl < c.cpl || dpl < (sel & 3))) return;
      let ok: boolean;
      if (reg === 4) ok = !(ar & AR_CODE) || (ar & AR_RW) !== 0;
      else ok = !(ar & AR_CODE) && (ar & AR_RW) !== 0;
      if (ok) c.flags |= ZF;
      return;
    }
    default:
      c.ud();
  }
}

// -----------------------------------------------------------------------------------------------
// 0F 01: SGDT SIDT LGDT LIDT SMSW LMSW INVLPG

export function group7(c: Cpu): void {
  const m = decodeModrm(c);
  const reg = (m >> 3) & 7;
  const mask = c.addrSize32 ? -1 : 0xffff;
  switch (reg) {
    case 0:
    case 1: {
      if (m >= 0xc0) c.ud();
      const base = reg === 0 ? c.gdtBase : c.idtBase;
      const limit = reg === 0 ? c.gdtLimit : c.idtLimit;
      c.write16(c.eaSeg, c.eaOff, limit);
      c.write32(c.eaSeg, (c.eaOff + 2) & mask, c.opSize32 ? base : base & 0xffffff);
      return;
    }
    case 2:
    case 3: {
      if (m >= 0xc0) c.ud();
      if (c.cpl !== 0 || c.flags & VM) c.gp(0);
      const limit = c.read16(c.eaSeg, c.eaOff);
      let base = c.read32(c.eaSeg, (c.eaOff + 2) & mask) >>> 0;
      if (!c.opSize32) base &= 0xffffff;
      if (reg === 2) c.setGdtr(base, limit);
      else c.setIdtr(base, limit);
      return;
    }
    case 4: {
      const v = c.cr0;
      if (m >= 0xc0) setReg(c, c.opSize32 ? 32 : 16, m & 7, v);
      else c.write16(c.eaSeg, c.eaOff, v);
      return;
    }
    case 6: {
      if (c.cpl !== 0 || c.flags & VM) c.gp(0);
      const v = rmRead(c, 16);
      // LMSW can set PE but never clear it.
      c.cr0 = (c.cr0 & ~0xe) | (v & 0xf) | (c.cr0 & 1);
      c.updateMode();
      return;
    }
    case 7: {
      if (m >= 0xc0) c.ud();
      if (c.cpl !== 0 || c.flags & VM) c.gp(0);
      c.invlpg((c.segBase[c.eaSeg] + c.eaOff) | 0);
      return;
    }
    default:
      c.ud();
  }
}

export function larLsl(c: Cpu, lar: boolean): void {
  if (!c.protectedMode) c.ud();
  decodeModrm(c);
  const sel = rmRead(c, 16);
  const size = c.opSize32 ? 32 : 16;
  c.materializeFlags();
  c.flags &= ~ZF;
  if ((sel & 0xfffc) === 0 || !readDescriptor(c, sel)) return;
  const hi = c.descHi;
  const ar = (hi >>> 8) & 0xff;
  const dpl = (ar >> 5) & 3;
  if (ar & AR_S) {
    const conforming = (ar & (AR_CODE | AR_DC)) === (AR_CODE | AR_DC);
    if (!conforming && (dpl < c.cpl || dpl < (sel & 3))) return;
  } else {
    const type = ar & 0xf;
    const okTypes = lar ? [1, 2, 3, 4, 5, 9, 11, 12] : [1, 2, 3, 9, 11];
    if (!okTypes.includes(type)) return;
    if (dpl < c.cpl || dpl < (sel & 3)) return;
  }
  const v = lar ? hi & 0x00f0ff00 : descLimit(c.descLo, hi);
  setReg(c, size, (c.modrm >> 3) & 7, size === 16 ? v & 0xffff : v);
  c.flags |= ZF;
}

// -----------------------------------------------------------------------------------------------
// MOV to/from control and debug registers

export function movCrDr(c: Cpu, op: number): void {
  const m = c.fetch8();
  c.modrm = m;
  const n = (m >> 3) & 7;
  const r = m & 7;
  if (c.flags & VM || c.cpl !== 0) c.gp(0);
  const regs = c.regs;
  switch (op) {
    case 0x20:
      if (n === 1 || n > 4) c.ud();
      regs[r] = c.getCr(n);
      return;
    case 0x22: {
      const v = regs[r];
      switch (n) {
        case 0: {
          if (v & CR0_PG && !(v & CR0_PE)) c.gp(0);
          if (v & CR0_NW && !(v & CR0_CD)) c.gp(0);
          if (v & CR0_PG && c.cr4 & CR4_PAE) {
            // PDPTEs are read at walk time; nothing to preload.
          }
          const old = c.cr0;
          c.cr0 = (v | CR0_ET) & (0xe005003f | 0);
          if ((old ^ c.cr0) & (CR0_PG | CR0_WP | CR0_PE)) c.flushTlb(true);
          c.updateMode();
          return;
        }
        case 2:
          c.cr2 = v;
          return;
        case 3:
          c.cr3 = v;
          c.flushTlb(false);
          return;
        case 4: {
          if (v & ~0x3fe) c.gp(0);
          const old = c.cr4;
          c.cr4 = v;
          if ((old ^ v) & (CR4_PSE | CR4_PAE | CR4_PGE)) c.flushTlb(true);
          c.updateMode();
          return;
        }
        default:
          c.ud();
      }
      return;
    }
    case 0x21: {
      let d = n;
      if (d === 4 || d === 5) {
        if (c.cr4 & CR4_DE) c.ud();
        d += 2;
      }
      regs[r] = c.dr[d];
      return;
    }
    default: {
      let d = n;
      if (d === 4 || d === 5) {
        if (c.cr4 & CR4_DE) c.ud();
        d += 2;
      }
      if (d === 6) c.dr[6] = (regs[r] & 0xe00f) | (0xffff0ff0 | 0);
      else if (d === 7) c.dr[7] = (regs[r] & 0xffff2bff) | 0x400;
      else c.dr[d] = regs[r];
    }
  }
}

// -----------------------------------------------------------------------------------------------
// SYSENTER / SYSEXIT

const FLAT_CODE_AR = AR_P | AR_S | AR_CODE | AR_RW | AR_ACCESSED | AR_DB | AR_G;
const FLAT_DATA_AR = AR_P | AR_S | AR_RW | AR_ACCESSED | AR_DB | AR_G;

export function sysenter(c: Cpu): void {
  if (!(c.cr0 & CR0_PE) || (c.sysenterCs & 0xfffc) === 0) c.gp(0);
  c.materializeFlags();
  c.flags &= ~(VM | IF | RF);
  c.updateMode();
  const cs = c.sysenterCs & 0xfffc;
  c.cpl = 0;
  c.setSegmentRaw(CS, cs, 0, 0xffffffff, FLAT_CODE_AR);
  c.setSegmentRaw(SS, (cs + 8) & 0xfffc, 0, 0xffffffff, FLAT_DATA_AR);
  c.cpl = 0;
  c.regs[ESP] = c.sysenterEsp;
  c.eip = c.sysenterEip >>> 0;
  c.updateMode();
}

export function sysexit(c: Cpu): void {
  if (!(c.cr0 & CR0_PE) || c.flags & VM || c.cpl !== 0 || (c.sysenterCs & 0xfffc) === 0) c.gp(0);
  const cs = ((c.sysenterCs + 16) & 0xfffc) | 3;
  c.setSegmentRaw(CS, cs, 0, 0xffffffff, FLAT_CODE_AR | 0x60);
  c.setSegmentRaw(SS, ((c.sysenterCs + 24) & 0xfffc) | 3, 0, 0xffffffff, FLAT_DATA_AR | 0x60);
  c.cpl = 3;
  c.regs[ESP] = c.regs[ECX];
  c.eip = c.regs[EDX] >>> 0;
  c.updateMode();
}

void EAX;
void EBX;
void ESI;
void EDI;
void TS_IRET;
