/**
 * The i686 (Pentium Pro / Pentium II class) CPU: state, memory access through segmentation and
 * paging (with a TLB), lazy flags, event delivery and the run loop. Instruction semantics live in
 * exec.ts (integer instructions) and system.ts (protected-mode transfers, task switches, descriptor
 * loads); the x87 unit in fpu.ts. See docs/cpu.md.
 */
import type { CpuHost } from './cpu-host';
import type { FpuHost, FpuMemoryOperand, FpuUnit } from './fpu-host';
import { Fpu } from './fpu';
import { CodeCache, type DecodedBlock } from './code-cache';
import { PAGE_RAM, type PhysicalMemory } from '../machine/memory';
import type { IoBus } from '../machine/io-bus';
import {
  AC,
  AF,
  ARITH_FLAGS,
  AR_ACCESSED,
  AR_CODE,
  AR_DB,
  AR_DC,
  AR_P,
  AR_RW,
  AR_S,
  CF,
  CR0_ET,
  CR0_NE,
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  CR4_PSE,
  CS,
  DF,
  DS,
  EAX,
  EBX,
  ECX,
  EDX,
  ESP,
  EXC_DB,
  EXC_DF,
  EXC_GP,
  EXC_MF,
  EXC_NM,
  EXC_NMI,
  EXC_PF,
  EXC_SS,
  EXC_UD,
  ID,
  IF,
  INT_EXCEPTION,
  INT_EXTERNAL,
  IOPL,
  LDTR,
  LZ_ADD,
  LZ_DEC,
  LZ_INC,
  LZ_LOGIC,
  LZ_NONE,
  LZ_RES,
  LZ_SUB,
  NT,
  OF,
  PF,
  RF,
  SF,
  SS,
  TF,
  TR,
  VM,
  ZF,
} from './constants';
import { executeOne } from './exec';
import * as Sys from './system';

/** Thrown (as this one object) to unwind an instruction that faulted; the fault is in `cpu.pendingVector`. */
export const FAULT = { fault: true };
/** Thrown when the CPU shut down (triple fault) in the middle of an instruction. */
export const SHUTDOWN = { shutdown: true };

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i;
  b ^= b >> 4;
  b ^= b >> 2;
  b ^= b >> 1;
  PARITY[i] = (b & 1) === 0 ? PF : 0;
}

/** TLB entry bits (low 12 bits of an entry; the high 20 hold the physical page). */
const TLB_VALID = 1;
const TLB_USER_READ = 2;
const TLB_SUPER_WRITE = 4;
const TLB_USER_WRITE = 8;
const TLB_GLOBAL = 16;
const TLB_LIST_SIZE = 8192;

const MSR_TSC = 0x10;
const MSR_APIC_BASE = 0x1b;
const MSR_SYSENTER_CS = 0x174;
const MSR_SYSENTER_ESP = 0x175;
const MSR_SYSENTER_EIP = 0x176;

export class Cpu {
  readonly mem: PhysicalMemory;
  readonly io: IoBus;
  readonly host: CpuHost;
  readonly fpu: FpuUnit;

  /** General registers EAX..EDI (index 8-15 reserved for the x86-64 extension), with 16/8-bit views. */
  readonly regs = new Int32Array(16);
  readonly r16 = new Uint16Array(this.regs.buffer);
  readonly r8 = new Uint8Array(this.regs.buffer);
  /** Upper halves of the 64-bit registers (unused until long mode). */
  readonly regsHi = new Int32Array(16);
  eip = 0;

  /** Segment caches: ES CS SS DS FS GS LDTR TR. */
  readonly segSel = new Uint16Array(8);
  readonly segBase = new Uint32Array(8);
  readonly segLimit = new Uint32Array(8);
  readonly segAr = new Uint16Array(8);
  /** Derived per segment: the inclusive range of valid offsets, and whether reads/writes are allowed. */
  readonly segLo = new Uint32Array(8);
  readonly segHi = new Uint32Array(8);
  readonly segR = new Uint8Array(8);
  readonly segW = new Uint8Array(8);
  /** Derived: every offset 0..4G-1 is valid for reads / writes (flat segments), the fast case. */
  readonly segWholeR = new Uint8Array(8);
  readonly segWholeW = new Uint8Array(8);

  gdtBase = 0;
  gdtLimit = 0xffff;
  idtBase = 0;
  idtLimit = 0x3ff;

  cr0 = 0x60000010;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  readonly dr = new Int32Array(8);
  cpl = 0;
  /** CS.D: default operand/address size 32. */
  code32 = false;
  /** SS.B: stack uses ESP (else SP). */
  stack32 = false;
  /** CR0.PE && !VM. */
  protectedMode = false;
  pagingEnabled = false;

  /**
   * EFLAGS, with CF/PF/AF/ZF/SF/OF possibly stale while `lzOp` is not LZ_NONE. The lazy operands
   * may be held signed (int32) or unsigned: every consumer compares them through `>>> 0`.
   */
  flags = 2;
  lzOp = 0;
  lzA = 0;
  lzB = 0;
  lzR = 0;
  lzC = 0;
  lzSize = 8;

  private a20 = -1;
  /** Physical address mask: -1, or ~(1 << 20) with the A20 gate closed. */
  get a20Mask(): number {
    return this.a20;
  }
  set a20Mask(v: number) {
    if ((v | 0) === this.a20) return;
    this.a20 = v | 0;
    this.flushTlb(true);
  }
  halted = false;
  instructionsRetired = 0;

  intrLine = false;
  nmiPending = false;
  nmiBlocked = false;
  /** One-instruction interrupt inhibit after STI / MOV SS / POP SS. */
  interruptShadow = false;
  /** Set by MOV SS / POP SS while TF=1: the single-step trap waits one instruction. */
  ssInhibit = false;
  /** Set by anything that may need the run loop to look at interrupts/traps before the next instruction. */
  eventCheck = true;

  /** Pending fault while unwinding. */
  pendingVector = -1;
  pendingError = -1;
  /** Vector being delivered (for double-fault classification), -1 when none. */
  deliveringVector = -1;

  /** Instruction being executed: start EIP and ESP (restored when it faults). */
  startEip = 0;
  startEsp = 0;
  /** Prefix state of the current instruction. */
  opSize32 = false;
  addrSize32 = false;
  segOverride = -1;
  repPrefix = 0;
  lockPrefix = false;
  /** Decoded ModRM of the current instruction. */
  modrm = 0;
  eaSeg = DS;
  eaOff = 0;

  /**
   * Instruction-fetch cache: while fetchLo <= EIP < fetchHi the code byte is ram[EIP + fetchDelta]
   * (one RAM/ROM page, inside the CS limit). fetchHi = 0 invalidates.
   */
  fetchLo = 0;
  fetchHi = 0;
  fetchDelta = 0;

  /**
   * Decoded-instruction cache (null: interpret every instruction, as the differential tests of
   * the cache itself do). See code-cache.ts.
   */
  codeCache: CodeCache | null;

  /** Accesses to descriptor tables and the TSS are supervisor accesses whatever the CPL. */
  supervisorAccess = false;

  readonly tlb = new Int32Array(1 << 20);
  readonly tlbList = new Int32Array(TLB_LIST_SIZE);
  tlbCount = 0;
  tlbOverflow = false;

  /** MSRs kept as stored values (MTRRs and friends). Keys are MSR numbers; values [lo, hi]. */
  readonly msrs = new Map<number, [number, number]>();
  tscOffset = 0;
  apicBase = 0xfee00900 | 0;
  sysenterCs = 0;
  sysenterEsp = 0;
  sysenterEip = 0;

  /** Scratch for descriptor reads: the two dwords of the last descriptor read. */
  descLo = 0;
  descHi = 0;

  /** Legacy FERR# output (CR0.NE = 0): the machine wires it to IRQ 13. */
  onFerr: (asserted: boolean) => void = () => {};

  /** Diagnostics: called with (vector, errorCode) for every exception delivered (optional). */
  onException: ((vector: number, errorCode: number) => void) | null = null;

  constructor(host: CpuHost) {
    this.host = host;
    this.mem = host.mem;
    this.io = host.io;
    this.fpu = new Fpu(this.makeFpuHost());
    this.codeCache = new CodeCache(this.mem, () => this.instructionsRetired);
    this.reset();
  }

  // ---------------------------------------------------------------------------------------------
  // Public API

  reset(): void {
    this.regs.fill(0);
    this.regsHi.fill(0);
    // EDX holds the CPU signature after reset: family 6, model 5, stepping 2 (Pentium II).
    this.regs[EDX] = 0x652;
    this.eip = 0xfff0;
    this.flags = 2;
    this.lzOp = LZ_NONE;
    this.cr0 = 0x60000010;
    this.cr2 = this.cr3 = this.cr4 = 0;
    this.dr.fill(0);
    this.dr[6] = 0xffff0ff0 | 0;
    this.dr[7] = 0x400;
    this.gdtBase = 0;
    this.gdtLimit = 0xffff;
    this.idtBase = 0;
    this.idtLimit = 0xffff;
    for (let s = 0; s < 8; s++) this.setSegmentRaw(s, 0, 0, 0xffff, AR_P | AR_S | AR_RW | AR_ACCESSED);
    this.setSegmentRaw(CS, 0xf000, 0xffff0000, 0xffff, AR_P | AR_S | AR_CODE | AR_RW | AR_ACCESSED);
    this.setSegmentRaw(LDTR, 0, 0, 0xffff, AR_P | 2);
    this.setSegmentRaw(TR, 0, 0, 0xffff, AR_P | 11);
    this.cpl = 0;
    this.halted = false;
    this.intrLine = false;
    this.nmiPending = false;
    this.nmiBlocked = false;
    this.interruptShadow = false;
    this.deliveringVector = -1;
    this.msrs.clear();
    this.tscOffset = 0;
    this.apicBase = 0xfee00900 | 0;
    this.sysenterCs = this.sysenterEsp = this.sysenterEip = 0;
    this.updateMode();
    this.flushTlb(true);
    this.fpu.reset();
    // Whoever resets may also rewrite memory behind the buses' backs (test harnesses do).
    this.codeCache?.flush();
    this.eventCheck = true;
  }

  /** Runs up to `budget` instructions; returns how many ran. Returns early when halted. */
  run(budget: number): number {
    let done = 0;
    while (done < budget) {
      if (this.exitRequested) {
        this.exitRequested = false;
        break;
      }
      if (this.eventCheck || this.halted) {
        this.handleEvents();
        if (this.halted) break;
      }
      const start = this.instructionsRetired;
      const limit = budget - done;
      try {
        this.runInner(limit);
      } catch (e) {
        if (e === FAULT) this.deliverPendingFault();
        else if (e !== SHUTDOWN) throw e;
      }
      done += this.instructionsRetired - start;
      if (this.halted) break;
      if (this.instructionsRetired === start) done++; // a fault on the first instruction still counts
    }
    return done;
  }

  private runInner(limit: number): void {
    const regs = this.regs;
    // The count lives on the field, not in a local: the machine's clock is derived from it, and
    // devices (PIT, PM timer, RDTSC) read the clock in the middle of a batch.
    const end = this.instructionsRetired + limit;
    while (this.instructionsRetired < end) {
      if (this.codeCache !== null && !(this.flags & TF)) {
        // Decoded path: EIP inside the fetch window (a RAM/ROM page within the CS limit), so
        // EIP + fetchDelta is the physical address the block is keyed by.
        if (this.eip >= this.fetchHi || this.eip < this.fetchLo) {
          // A fault here is the first code fetch's fault, with the instruction's state recorded.
          this.startEip = this.eip;
          this.startEsp = regs[ESP];
          this.mapFetch();
        }
        const e = this.eip;
        if (e < this.fetchHi && e >= this.fetchLo) {
          const phys = e + this.fetchDelta;
          const block =
            this.codeCache.lookup(phys, this.code32) ?? this.codeCache.decode(phys, phys + this.fetchHi - e, this.code32);
          if (block !== null && e + block.bytes <= this.fetchHi) {
            this.runBlock(block, end);
            if (this.eventCheck || this.halted) return;
            continue;
          }
        }
      }
      this.startEip = this.eip;
      this.startEsp = regs[ESP];
      const tf = this.flags & TF;
      executeOne(this);
      // 16-bit code has a 16-bit IP: an instruction ending at offset FFFF continues at 0000.
      if (!this.code32 && this.eip > 0xffff) this.eip &= 0xffff;
      this.instructionsRetired++;
      if (tf) {
        // MOV SS / POP SS hold the single-step trap until after the next instruction.
        if (this.ssInhibit) this.ssInhibit = false;
        else this.singleStepTrap();
      }
      if (this.eventCheck || this.halted) return;
    }
  }

  /**
   * Runs a decoded block from its start (EIP = its first byte) until it ends, the budget runs out,
   * an event is pending, TF gets set, or a write into its page invalidates it.
   */
  private runBlock(block: DecodedBlock, end: number): void {
    const regs = this.regs;
    const ops = block.ops;
    const lens = block.lens;
    const n = ops.length;
    // Only the interpreter (GENERIC, always a block's last op) can halt or set TF: the loop need
    // not look at those between decoded instructions.
    for (let i = 0; i < n; i++) {
      const e = this.eip;
      this.startEip = e;
      this.startEsp = regs[ESP];
      this.eip = e + lens[i];
      ops[i](this);
      // 16-bit code has a 16-bit IP: an instruction ending at offset FFFF continues at 0000. (The
      // code size is read afresh: the interpreter's far jumps change it.)
      if (this.eip > 0xffff && !this.code32) this.eip &= 0xffff;
      if (++this.instructionsRetired >= end || this.eventCheck || !block.valid) return;
    }
  }

  setIntr(level: boolean): void {
    this.intrLine = level;
    if (level) this.eventCheck = true;
  }

  /** Leave `run` at the next instruction boundary (a device asked for a reset or an exit). */
  requestExit(): void {
    this.exitRequested = true;
    this.eventCheck = true;
  }
  private exitRequested = false;

  raiseNmi(): void {
    this.nmiPending = true;
    this.eventCheck = true;
  }

  getReg32(i: number): number {
    return this.regs[i] >>> 0;
  }
  setReg32(i: number, v: number): void {
    this.regs[i] = v;
  }
  getReg16(i: number): number {
    return this.r16[i << 1];
  }
  setReg16(i: number, v: number): void {
    this.r16[i << 1] = v;
  }
  getReg8(i: number): number {
    return this.r8[i < 4 ? i << 2 : ((i - 4) << 2) + 1];
  }
  setReg8(i: number, v: number): void {
    this.r8[i < 4 ? i << 2 : ((i - 4) << 2) + 1] = v;
  }

  getFlags(): number {
    this.materializeFlags();
    return (this.flags | 2) >>> 0;
  }
  /** Sets EFLAGS as a whole (no privilege filtering; bits 1 forced, 3/5/15 cleared). */
  setFlags(v: number): void {
    this.lzOp = LZ_NONE;
    const oldVm = this.flags & VM;
    this.flags = (v & 0x3f7fd5) | 2;
    if ((this.flags & VM) !== oldVm) this.updateMode();
    this.eventCheck = true;
  }

  getSegSelector(s: number): number {
    return this.segSel[s];
  }
  getSegBase(s: number): number {
    return this.segBase[s];
  }
  getSegLimit(s: number): number {
    return this.segLimit[s];
  }
  getSegAccessRights(s: number): number {
    return this.segAr[s];
  }

  /** Loads a segment register the real-mode way: selector and base = selector * 16, limit and attributes kept. */
  loadSegmentReal(s: number, selector: number): void {
    selector &= 0xffff;
    this.segSel[s] = selector;
    this.segBase[s] = selector << 4;
    if (this.flags & VM) {
      this.segLimit[s] = 0xffff;
      this.segAr[s] = AR_P | AR_S | AR_RW | AR_ACCESSED | 0x60 | (s === CS ? AR_CODE : 0);
    }
    this.updateSeg(s);
  }

  /**
   * Sets a segment cache directly. `limit` is the byte-granular limit; `ar` is descriptor byte 5
   * (type, S, DPL, P) | (descriptor byte 6 & 0xF0) << 8 (AVL, L, D/B, G).
   */
  setSegmentRaw(s: number, selector: number, base: number, limit: number, ar: number): void {
    this.segSel[s] = selector;
    this.segBase[s] = base >>> 0;
    this.segLimit[s] = limit >>> 0;
    this.segAr[s] = ar & 0xf0ff;
    this.updateSeg(s);
    if (s === CS && this.protectedMode) this.cpl = selector & 3;
  }

  getCr(n: number): number {
    switch (n) {
      case 0:
        return this.cr0 >>> 0;
      case 2:
        return this.cr2 >>> 0;
      case 3:
        return this.cr3 >>> 0;
      case 4:
        return this.cr4 >>> 0;
    }
    return 0;
  }
  setCr(n: number, v: number): void {
    switch (n) {
      case 0:
        this.cr0 = (v | CR0_ET) | 0;
        break;
      case 2:
        this.cr2 = v | 0;
        break;
      case 3:
        this.cr3 = v | 0;
        this.flushTlb(false);
        break;
      case 4:
        this.cr4 = v & 0x3ff;
        this.flushTlb(true);
        break;
    }
    this.updateMode();
  }
  setGdtr(base: number, limit: number): void {
    this.gdtBase = base >>> 0;
    this.gdtLimit = limit & 0xffff;
  }
  setIdtr(base: number, limit: number): void {
    this.idtBase = base >>> 0;
    this.idtLimit = limit & 0xffff;
  }

  saveState(): Record<string, unknown> {
    this.materializeFlags();
    const msrs: [number, number, number][] = [];
    for (const [k, [lo, hi]] of this.msrs) msrs.push([k, lo, hi]);
    return {
      version: 1,
      regs: Array.from(this.regs),
      regsHi: Array.from(this.regsHi),
      eip: this.eip,
      flags: this.flags,
      segSel: Array.from(this.segSel),
      segBase: Array.from(this.segBase),
      segLimit: Array.from(this.segLimit),
      segAr: Array.from(this.segAr),
      gdt: [this.gdtBase, this.gdtLimit],
      idt: [this.idtBase, this.idtLimit],
      cr: [this.cr0, this.cr2, this.cr3, this.cr4],
      dr: Array.from(this.dr),
      cpl: this.cpl,
      a20Mask: this.a20,
      halted: this.halted,
      intrLine: this.intrLine,
      nmiPending: this.nmiPending,
      nmiBlocked: this.nmiBlocked,
      interruptShadow: this.interruptShadow,
      instructionsRetired: this.instructionsRetired,
      msrs,
      tscOffset: this.tscOffset,
      apicBase: this.apicBase,
      sysenter: [this.sysenterCs, this.sysenterEsp, this.sysenterEip],
      fpu: this.fpu.saveState(),
    };
  }

  loadState(st: Record<string, unknown>): void {
    const a = (k: string): number[] => {
      const v = st[k];
      if (!Array.isArray(v)) throw new Error(`cpu state: field ${k} missing or not an array`);
      return v as number[];
    };
    if (st.version !== 1) throw new Error(`cpu state: unsupported version ${String(st.version)}`);
    this.regs.set(a('regs'));
    this.regsHi.set(a('regsHi'));
    this.eip = Number(st.eip) | 0;
    this.flags = Number(st.flags) | 2;
    this.lzOp = LZ_NONE;
    this.segSel.set(a('segSel'));
    this.segBase.set(a('segBase'));
    this.segLimit.set(a('segLimit'));
    this.segAr.set(a('segAr'));
    [this.gdtBase, this.gdtLimit] = a('gdt');
    [this.idtBase, this.idtLimit] = a('idt');
    [this.cr0, this.cr2, this.cr3, this.cr4] = a('cr');
    this.dr.set(a('dr'));
    this.cpl = Number(st.cpl) & 3;
    this.a20 = Number(st.a20Mask) | 0;
    this.halted = Boolean(st.halted);
    this.intrLine = Boolean(st.intrLine);
    this.nmiPending = Boolean(st.nmiPending);
    this.nmiBlocked = Boolean(st.nmiBlocked);
    this.interruptShadow = Boolean(st.interruptShadow);
    this.instructionsRetired = Number(st.instructionsRetired) || 0;
    this.msrs.clear();
    for (const [k, lo, hi] of st.msrs as [number, number, number][]) this.msrs.set(k, [lo, hi]);
    this.tscOffset = Number(st.tscOffset) || 0;
    this.apicBase = Number(st.apicBase) | 0;
    [this.sysenterCs, this.sysenterEsp, this.sysenterEip] = a('sysenter');
    for (let s = 0; s < 8; s++) this.updateSeg(s);
    this.updateMode();
    this.flushTlb(true);
    this.fpu.loadState(st.fpu as Record<string, unknown>);
    this.eventCheck = true;
  }

  // ---------------------------------------------------------------------------------------------
  // Mode and segment bookkeeping

  /** Recomputes everything derived from CR0, EFLAGS.VM and CS/SS. */
  updateMode(): void {
    const pe = (this.cr0 & CR0_PE) !== 0;
    const vm = (this.flags & VM) !== 0;
    const wasPaging = this.pagingEnabled;
    this.protectedMode = pe && !vm;
    this.pagingEnabled = pe && (this.cr0 & CR0_PG) !== 0;
    if (wasPaging !== this.pagingEnabled) this.flushTlb(true);
    if (vm) this.cpl = 3;
    else if (!pe) this.cpl = 0;
    for (let s = 0; s < 6; s++) this.updateSeg(s);
    this.fetchHi = 0;
  }

  /** Recomputes the derived access checks of segment `s` from its cache. */
  updateSeg(s: number): void {
    this.deriveSegChecks(s);
    const whole = this.segLo[s] === 0 && this.segHi[s] === 0xffffffff;
    this.segWholeR[s] = whole && this.segR[s] ? 1 : 0;
    this.segWholeW[s] = whole && this.segW[s] ? 1 : 0;
  }

  private deriveSegChecks(s: number): void {
    const ar = this.segAr[s];
    const limit = this.segLimit[s];
    if (s === CS) {
      this.code32 = (ar & AR_DB) !== 0 && (this.cr0 & CR0_PE) !== 0 && !(this.flags & VM);
      this.fetchHi = 0;
    } else if (s === SS) {
      this.stack32 = (ar & AR_DB) !== 0 && (this.cr0 & CR0_PE) !== 0 && !(this.flags & VM);
    }
    const pm = (this.cr0 & CR0_PE) !== 0 && !(this.flags & VM);
    if (!pm) {
      // Real and V86 mode: only the limit counts (and expand-down, for unreal-mode leftovers).
      this.segR[s] = 1;
      this.segW[s] = 1;
      if ((ar & (AR_S | AR_CODE | AR_DC)) === (AR_S | AR_DC)) {
        this.segLo[s] = limit + 1;
        this.segHi[s] = ar & AR_DB ? 0xffffffff : 0xffff;
      } else {
        this.segLo[s] = 0;
        this.segHi[s] = limit;
      }
      return;
    }
    if (!(ar & AR_P) || !(ar & AR_S) || (s !== CS && s < 6 && (this.segSel[s] & 0xfffc) === 0)) {
      // Null or unusable: every access faults.
      this.segLo[s] = 1;
      this.segHi[s] = 0;
      this.segR[s] = 0;
      this.segW[s] = 0;
      if (s === CS || s >= 6) {
        this.segLo[s] = 0;
        this.segHi[s] = limit;
        this.segR[s] = 1;
      }
      return;
    }
    if (ar & AR_CODE) {
      this.segR[s] = ar & AR_RW ? 1 : 0;
      this.segW[s] = 0;
      this.segLo[s] = 0;
      this.segHi[s] = limit;
    } else {
      this.segR[s] = 1;
      this.segW[s] = ar & AR_RW ? 1 : 0;
      if (ar & AR_DC) {
        this.segLo[s] = limit + 1;
        this.segHi[s] = ar & AR_DB ? 0xffffffff : 0xffff;
      } else {
        this.segLo[s] = 0;
        this.segHi[s] = limit;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Faults

  /** Records fault `vector` (error code or -1) and unwinds the current instruction. */
  fault(vector: number, error = -1): never {
    this.pendingVector = vector;
    this.pendingError = error;
    throw FAULT;
  }
  gp(error: number): never {
    return this.fault(EXC_GP, error & 0xffff);
  }
  ud(): never {
    return this.fault(EXC_UD);
  }
  segFault(s: number): never {
    return this.fault(s === SS ? EXC_SS : EXC_GP, 0);
  }

  private deliverPendingFault(): void {
    const vector = this.pendingVector;
    const error = this.pendingError;
    this.pendingVector = -1;
    // Faults restart the instruction: roll EIP and ESP back.
    this.eip = this.startEip;
    this.regs[ESP] = this.startEsp;
    this.raiseException(vector, error);
  }

  /** Delivers exception `vector` now, handling double and triple faults. */
  raiseException(vector: number, error: number): void {
    this.onException?.(vector, error);
    const prev = this.deliveringVector;
    if (prev >= 0) {
      const contributory = (v: number) => v === 0 || (v >= 10 && v <= 13);
      if (prev === EXC_DF) {
        this.deliveringVector = -1;
        this.tripleFault();
        return;
      }
      if ((contributory(prev) && contributory(vector)) || (prev === EXC_PF && (vector === EXC_PF || contributory(vector)))) {
        vector = EXC_DF;
        error = 0;
      }
    }
    this.deliveringVector = vector;
    try {
      this.deliverInterrupt(vector, INT_EXCEPTION, error, this.eip);
      this.deliveringVector = -1;
    } catch (e) {
      if (e !== FAULT) {
        this.deliveringVector = -1;
        throw e;
      }
      const v2 = this.pendingVector;
      const e2 = this.pendingError;
      this.pendingVector = -1;
      this.eip = this.startEip;
      this.regs[ESP] = this.startEsp;
      this.raiseException(v2, e2);
      this.deliveringVector = -1;
    }
  }

  tripleFault(): void {
    this.halted = true;
    this.eventCheck = true;
    this.deliveringVector = -1;
    this.host.shutdown('triple fault');
  }

  private singleStepTrap(): void {
    this.dr[6] |= 0x4000;
    try {
      this.deliverInterrupt(EXC_DB, INT_EXCEPTION, -1, this.eip);
    } catch (e) {
      if (e !== FAULT) throw e;
      const v = this.pendingVector;
      this.pendingVector = -1;
      this.raiseException(v, this.pendingError);
    }
  }

  /** Looks at NMI and INTR before the next instruction. Returns true if something was delivered. */
  private handleEvents(): boolean {
    this.eventCheck = false;
    if (this.interruptShadow) {
      this.interruptShadow = false;
      this.eventCheck = true;
      return false;
    }
    if (this.nmiPending && !this.nmiBlocked) {
      this.nmiPending = false;
      this.nmiBlocked = true;
      this.halted = false;
      this.deliverEvent(EXC_NMI);
      return true;
    }
    if (this.intrLine && this.flags & IF) {
      this.halted = false;
      const vector = this.host.acknowledgeInterrupt() & 0xff;
      this.deliverEvent(vector);
      return true;
    }
    if (this.intrLine) this.eventCheck = false;
    return false;
  }

  private deliverEvent(vector: number): void {
    this.startEip = this.eip;
    this.startEsp = this.regs[ESP];
    try {
      this.deliverInterrupt(vector, INT_EXTERNAL, -1, this.eip);
    } catch (e) {
      if (e === FAULT) this.deliverPendingFault();
      else if (e !== SHUTDOWN) throw e;
    }
  }

  /**
   * Transfers control to the handler of `vector`. `returnEip` is what gets pushed.
   * Real mode: the IVT at IDTR.base; protected and V86 mode: system.ts.
   */
  deliverInterrupt(vector: number, kind: number, error: number, returnEip: number): void {
    if (this.cr0 & CR0_PE) {
      Sys.protectedModeInterrupt(this, vector, kind, error, returnEip);
    } else {
      if (vector * 4 + 3 > this.idtLimit) this.gp(vector * 8 + 2);
      this.supervisorAccess = true;
      const entry = this.readLin32(this.idtBase + vector * 4);
      this.supervisorAccess = false;
      this.push16(this.getFlags());
      this.push16(this.segSel[CS]);
      this.push16(returnEip);
      this.flags &= ~(IF | TF | AC | RF);
      this.loadSegmentReal(CS, entry >>> 16);
      this.eip = entry & 0xffff;
    }
    this.halted = false;
    this.eventCheck = true;
  }

  // ---------------------------------------------------------------------------------------------
  // Lazy flags

  materializeFlags(): void {
    const op = this.lzOp;
    if (op === LZ_NONE) return;
    let f = this.flags & ~ARITH_FLAGS;
    const r = this.lzR;
    const size = this.lzSize;
    if (r === 0) f |= ZF;
    f |= (r >>> (size - 1)) & 1 ? SF : 0;
    f |= PARITY[r & 0xff];
    if (op === LZ_RES) {
      f |= this.flags & (CF | OF | AF);
    } else if (op !== LZ_LOGIC) {
      const a = this.lzA;
      const b = this.lzB;
      f |= (a ^ b ^ r) & AF;
      switch (op) {
        case LZ_ADD:
          if (this.lzC ? r >>> 0 <= a >>> 0 : r >>> 0 < a >>> 0) f |= CF;
          if ((((a ^ r) & (b ^ r)) >>> (size - 1)) & 1) f |= OF;
          break;
        case LZ_SUB:
          if (this.lzC ? a >>> 0 <= b >>> 0 : a >>> 0 < b >>> 0) f |= CF;
          if ((((a ^ b) & (a ^ r)) >>> (size - 1)) & 1) f |= OF;
          break;
        case LZ_INC:
          f |= this.flags & CF;
          if ((((a ^ r) & (b ^ r)) >>> (size - 1)) & 1) f |= OF;
          break;
        case LZ_DEC:
          f |= this.flags & CF;
          if ((((a ^ b) & (a ^ r)) >>> (size - 1)) & 1) f |= OF;
          break;
      }
    }
    this.flags = f;
    this.lzOp = LZ_NONE;
  }

  getCF(): number {
    switch (this.lzOp) {
      case LZ_ADD:
        return (this.lzC ? this.lzR >>> 0 <= this.lzA >>> 0 : this.lzR >>> 0 < this.lzA >>> 0) ? 1 : 0;
      case LZ_SUB:
        return (this.lzC ? this.lzA >>> 0 <= this.lzB >>> 0 : this.lzA >>> 0 < this.lzB >>> 0) ? 1 : 0;
      case LZ_LOGIC:
        return 0;
    }
    return this.flags & CF;
  }
  getZF(): boolean {
    return this.lzOp === LZ_NONE ? (this.flags & ZF) !== 0 : this.lzR === 0;
  }
  getSF(): boolean {
    return this.lzOp === LZ_NONE ? (this.flags & SF) !== 0 : ((this.lzR >>> (this.lzSize - 1)) & 1) !== 0;
  }
  getOF(): boolean {
    const op = this.lzOp;
    if (op === LZ_NONE || op === LZ_RES) return (this.flags & OF) !== 0;
    if (op === LZ_LOGIC) return false;
    const a = this.lzA;
    const b = this.lzB;
    const r = this.lzR;
    if (op === LZ_ADD || op === LZ_INC) return ((((a ^ r) & (b ^ r)) >>> (this.lzSize - 1)) & 1) !== 0;
    return ((((a ^ b) & (a ^ r)) >>> (this.lzSize - 1)) & 1) !== 0;
  }
  getPF(): boolean {
    return this.lzOp === LZ_NONE ? (this.flags & PF) !== 0 : PARITY[this.lzR & 0xff] !== 0;
  }

  /** Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc). */
  condition(cc: number): boolean {
    let r: boolean;
    switch (cc >> 1) {
      case 0:
        r = this.getOF();
        break;
      case 1:
        r = this.getCF() !== 0;
        break;
      case 2:
        r = this.getZF();
        break;
      case 3:
        r = this.getCF() !== 0 || this.getZF();
        break;
      case 4:
        r = this.getSF();
        break;
      case 5:
        r = this.getPF();
        break;
      case 6:
        r = this.getSF() !== this.getOF();
        break;
      default:
        r = this.getZF() || this.getSF() !== this.getOF();
        break;
    }
    return cc & 1 ? !r : r;
  }

  /** Sets the lazy-flag record for a result whose CF/OF/AF the caller computed (shifts, MUL...). */
  setResultFlags(result: number, size: number, cf: number, of: number, af: number): void {
    // No need to materialize: ZF/SF/PF come from `result`, CF/OF/AF are set here.
    this.flags = (this.flags & ~(CF | OF | AF)) | (cf ? CF : 0) | (of ? OF : 0) | (af ? AF : 0);
    this.lzOp = LZ_RES;
    this.lzR = result;
    this.lzSize = size;
  }

  // ---------------------------------------------------------------------------------------------
  // Paging and the TLB

  flushTlb(includeGlobal: boolean): void {
    this.fetchHi = 0;
    if (this.tlbOverflow) {
      if (includeGlobal) {
        this.tlb.fill(0);
        this.tlbCount = 0;
        this.tlbOverflow = false;
        return;
      }
      // Keep the globals: scan the whole table once.
      const t = this.tlb;
      this.tlbCount = 0;
      this.tlbOverflow = false;
      for (let p = 0; p < t.length; p++) {
        const e = t[p];
        if (e === 0) continue;
        if (e & TLB_GLOBAL && this.tlbCount < TLB_LIST_SIZE) this.tlbList[this.tlbCount++] = p;
        else t[p] = 0;
      }
      return;
    }
    const list = this.tlbList;
    const n = this.tlbCount;
    let keep = 0;
    for (let i = 0; i < n; i++) {
      const p = list[i];
      if (!includeGlobal && this.tlb[p] & TLB_GLOBAL) list[keep++] = p;
      else this.tlb[p] = 0;
    }
    this.tlbCount = keep;
  }

  invlpg(lin: number): void {
    this.tlb[lin >>> 12] = 0;
    this.fetchHi = 0;
  }

  /** Linear to physical for an access; faults #PF. `write` is 0/1. */
  translate(lin: number, write: number): number {
    if (!this.pagingEnabled) return (lin & this.a20) >>> 0;
    const user = this.cpl === 3 && !this.supervisorAccess;
    const e = this.tlb[lin >>> 12];
    const need = write ? (user ? TLB_USER_WRITE : TLB_SUPER_WRITE) : user ? TLB_USER_READ : TLB_VALID;
    if (e & need) return ((e & ~0xfff) | (lin & 0xfff)) >>> 0;
    return this.walk(lin, write, user);
  }

  private walk(lin: number, write: number, user: boolean): number {
    lin >>>= 0;
    const mem = this.mem;
    const wp = (this.cr0 & CR0_WP) !== 0;
    let phys: number;
    let writable: boolean;
    let usr: boolean;
    let global: boolean;
    let dirty: boolean;
    if (this.cr4 & CR4_PAE) {
      const pdpteAddr = ((this.cr3 & ~0x1f) + ((lin >>> 30) << 3)) >>> 0;
      const pdpte = mem.read32(pdpteAddr & this.a20);
      if (!(pdpte & 1)) this.pageFault(lin, 0, write, user);
      if (mem.read32((pdpteAddr + 4) & this.a20) & 0xfffffff0 || pdpte & 0x1e6) this.pageFault(lin, 9, write, user);
      const pdeAddr = ((pdpte & ~0xfff) + (((lin >>> 21) & 0x1ff) << 3)) >>> 0;
      let pde = mem.read32(pdeAddr & this.a20);
      const pdeHi = mem.read32((pdeAddr + 4) & this.a20);
      if (!(pde & 1)) this.pageFault(lin, 0, write, user);
      if (pdeHi & 0xfffffff0) this.pageFault(lin, 9, write, user);
      if (pde & 0x80) {
        if (pde & 0x1fe000) this.pageFault(lin, 9, write, user);
        writable = (pde & 2) !== 0;
        usr = (pde & 4) !== 0;
        if (user ? !usr || (write && !writable) : write && !writable && wp) this.pageFault(lin, 1, write, user);
        dirty = (pde & 0x40) !== 0 || write !== 0;
        const npde = pde | 0x20 | (write ? 0x40 : 0);
        if (npde !== pde) mem.write32(pdeAddr & this.a20, npde);
        global = (pde & 0x100) !== 0;
        phys = ((pde & 0xffe00000) | (lin & 0x1ff000)) >>> 0;
      } else {
        // The directory entry is marked accessed as soon as the walk uses it.
        if (!(pde & 0x20)) {
          pde |= 0x20;
          mem.write32(pdeAddr & this.a20, pde);
        }
        const pteAddr = ((pde & ~0xfff) + (((lin >>> 12) & 0x1ff) << 3)) >>> 0;
        const pte = mem.read32(pteAddr & this.a20);
        const pteHi = mem.read32((pteAddr + 4) & this.a20);
        if (!(pte & 1)) this.pageFault(lin, 0, write, user);
        if (pteHi & 0xfffffff0) this.pageFault(lin, 9, write, user);
        writable = (pde & pte & 2) !== 0;
        usr = (pde & pte & 4) !== 0;
        if (user ? !usr || (write && !writable) : write && !writable && wp) this.pageFault(lin, 1, write, user);
        dirty = (pte & 0x40) !== 0 || write !== 0;
        const npte = pte | 0x20 | (write ? 0x40 : 0);
        if (npte !== pte) mem.write32(pteAddr & this.a20, npte);
        global = (pte & 0x100) !== 0;
        phys = (pte & ~0xfff) >>> 0;
      }
    } else {
      const pdeAddr = ((this.cr3 & ~0xfff) + ((lin >>> 22) << 2)) >>> 0;
      let pde = mem.read32(pdeAddr & this.a20);
      if (!(pde & 1)) this.pageFault(lin, 0, write, user);
      if (pde & 0x80 && this.cr4 & CR4_PSE) {
        writable = (pde & 2) !== 0;
        usr = (pde & 4) !== 0;
        if (user ? !usr || (write && !writable) : write && !writable && wp) this.pageFault(lin, 1, write, user);
        dirty = (pde & 0x40) !== 0 || write !== 0;
        const npde = pde | 0x20 | (write ? 0x40 : 0);
        if (npde !== pde) mem.write32(pdeAddr & this.a20, npde);
        global = (pde & 0x100) !== 0;
        phys = ((pde & 0xffc00000) | (lin & 0x3ff000)) >>> 0;
      } else {
        if (!(pde & 0x20)) {
          pde |= 0x20;
          mem.write32(pdeAddr & this.a20, pde);
        }
        const pteAddr = ((pde & ~0xfff) + (((lin >>> 12) & 0x3ff) << 2)) >>> 0;
        const pte = mem.read32(pteAddr & this.a20);
        if (!(pte & 1)) this.pageFault(lin, 0, write, user);
        writable = (pde & pte & 2) !== 0;
        usr = (pde & pte & 4) !== 0;
        if (user ? !usr || (write && !writable) : write && !writable && wp) this.pageFault(lin, 1, write, user);
        dirty = (pte & 0x40) !== 0 || write !== 0;
        const npte = pte | 0x20 | (write ? 0x40 : 0);
        if (npte !== pte) mem.write32(pteAddr & this.a20, npte);
        global = (pte & 0x100) !== 0;
        phys = (pte & ~0xfff) >>> 0;
      }
    }
    phys = (phys & this.a20) >>> 0;
    let bits = TLB_VALID;
    if (usr) bits |= TLB_USER_READ;
    if (dirty) {
      if (writable || !wp) bits |= TLB_SUPER_WRITE;
      if (writable && usr) bits |= TLB_USER_WRITE;
    }
    if (global && this.cr4 & CR4_PGE) bits |= TLB_GLOBAL;
    const page = lin >>> 12;
    if (this.tlb[page] === 0) {
      if (this.tlbCount < TLB_LIST_SIZE) this.tlbList[this.tlbCount++] = page;
      else this.tlbOverflow = true;
    }
    this.tlb[page] = phys | bits;
    return (phys | (lin & 0xfff)) >>> 0;
  }

  private pageFault(lin: number, bits: number, write: number, user: boolean): never {
    this.cr2 = lin | 0;
    return this.fault(EXC_PF, bits | (write ? 2 : 0) | (user ? 4 : 0));
  }

  // ---------------------------------------------------------------------------------------------
  // Linear-address memory access

  readLin8(lin: number): number {
    const p = this.translate(lin, 0);
    const mem = this.mem;
    return mem.pageKind[p >>> 12] === PAGE_RAM ? mem.ram[p] : mem.read8(p);
  }
  readLin16(lin: number): number {
    if ((lin & 0xfff) === 0xfff) return this.readLin8(lin) | (this.readLin8(lin + 1) << 8);
    const p = this.translate(lin, 0);
    const mem = this.mem;
    return mem.pageKind[p >>> 12] === PAGE_RAM ? mem.ram[p] | (mem.ram[p + 1] << 8) : mem.read16(p);
  }
  readLin32(lin: number): number {
    if ((lin & 0xfff) > 0xffc) {
      const p0 = this.translate(lin, 0);
      const p1 = this.translate((lin | 0xfff) + 1, 0);
      let v = 0;
      for (let i = 3; i >= 0; i--) {
        const a = (lin & 0xfff) + i > 0xfff ? p1 + ((lin + i) & 0xfff) : p0 + i;
        v = (v << 8) | this.mem.read8(a);
      }
      return v;
    }
    const p = this.translate(lin, 0);
    const mem = this.mem;
    if (mem.pageKind[p >>> 12] === PAGE_RAM) return mem.view.getInt32(p, true);
    return mem.read32(p);
  }
  writeLin8(lin: number, v: number): void {
    const p = this.translate(lin, 1);
    const mem = this.mem;
    const page = p >>> 12;
    if (mem.pageKind[page] === PAGE_RAM && !mem.codePages[page]) mem.ram[p] = v;
    else mem.write8(p, v & 0xff);
  }
  writeLin16(lin: number, v: number): void {
    if ((lin & 0xfff) === 0xfff) {
      const p0 = this.translate(lin, 1);
      const p1 = this.translate(lin + 1, 1);
      this.mem.write8(p0, v & 0xff);
      this.mem.write8(p1, (v >>> 8) & 0xff);
      return;
    }
    const p = this.translate(lin, 1);
    const mem = this.mem;
    const page = p >>> 12;
    if (mem.pageKind[page] === PAGE_RAM && !mem.codePages[page]) {
      mem.ram[p] = v;
      mem.ram[p + 1] = v >>> 8;
    } else mem.write16(p, v & 0xffff);
  }
  writeLin32(lin: number, v: number): void {
    if ((lin & 0xfff) > 0xffc) {
      const p0 = this.translate(lin, 1);
      const p1 = this.translate((lin | 0xfff) + 1, 1);
      for (let i = 0; i < 4; i++) {
        const a = (lin & 0xfff) + i > 0xfff ? p1 + ((lin + i) & 0xfff) : p0 + i;
        this.mem.write8(a, (v >>> (i * 8)) & 0xff);
      }
      return;
    }
    const p = this.translate(lin, 1);
    const mem = this.mem;
    const page = p >>> 12;
    if (mem.pageKind[page] === PAGE_RAM && !mem.codePages[page]) mem.view.setInt32(p, v, true);
    else mem.write32(p, v | 0);
  }

  /** Checks a write of `len` bytes at linear `lin` would not page-fault (for multi-part writes). */
  probeWrite(lin: number, len: number): void {
    this.translate(lin, 1);
    if (((lin & 0xfff) + len - 1) > 0xfff) this.translate(lin + len - 1, 1);
  }
  probeRead(lin: number, len: number): void {
    this.translate(lin, 0);
    if (((lin & 0xfff) + len - 1) > 0xfff) this.translate(lin + len - 1, 0);
  }

  // ---------------------------------------------------------------------------------------------
  // Segmented memory access

  /** Linear address of a read of `len` bytes at `seg:off` after the segment checks. */
  linR(s: number, off: number, len: number): number {
    if (this.segWholeR[s] !== 0) {
      // Offsets 0..4G-1 all valid: only an access wrapping past 4G faults. Int32 arithmetic
      // throughout, so offsets above 2 GiB (Linux user stacks) stay small integers for the JIT.
      const o = off | 0;
      if (o >= 0 || o <= -len) return (this.segBase[s] + o) | 0;
    }
    off >>>= 0;
    if (off < this.segLo[s] || off + len - 1 > this.segHi[s] || !this.segR[s]) this.segFault(s);
    return (this.segBase[s] + off) | 0;
  }
  linW(s: number, off: number, len: number): number {
    if (this.segWholeW[s] !== 0) {
      const o = off | 0;
      if (o >= 0 || o <= -len) return (this.segBase[s] + o) | 0;
    }
    off >>>= 0;
    if (off < this.segLo[s] || off + len - 1 > this.segHi[s] || !this.segW[s]) this.segFault(s);
    return (this.segBase[s] + off) | 0;
  }
  read8(s: number, off: number): number {
    return this.readLin8(this.linR(s, off, 1));
  }
  read16(s: number, off: number): number {
    return this.readLin16(this.linR(s, off, 2));
  }
  read32(s: number, off: number): number {
    return this.readLin32(this.linR(s, off, 4));
  }
  write8(s: number, off: number, v: number): void {
    this.writeLin8(this.linW(s, off, 1), v);
  }
  write16(s: number, off: number, v: number): void {
    this.writeLin16(this.linW(s, off, 2), v);
  }
  write32(s: number, off: number, v: number): void {
    this.writeLin32(this.linW(s, off, 4), v);
  }
  readSized(size: number, s: number, off: number): number {
    return size === 8 ? this.read8(s, off) : size === 16 ? this.read16(s, off) : this.read32(s, off) >>> 0;
  }
  writeSized(size: number, s: number, off: number, v: number): void {
    if (size === 8) this.write8(s, off, v);
    else if (size === 16) this.write16(s, off, v);
    else this.write32(s, off, v);
  }

  // ---------------------------------------------------------------------------------------------
  // Instruction fetch

  fetch8(): number {
    const e = this.eip;
    if (e < this.fetchHi && e >= this.fetchLo) {
      this.eip = e + 1;
      return this.mem.ram[e + this.fetchDelta];
    }
    return this.fetchSlow();
  }

  /** EIP at which the current instruction would exceed 15 bytes (0 = not tracked; see execPrefixed). */
  lengthCap = 0;

  private fetchSlow(): number {
    const p = this.mapFetch();
    this.eip++;
    return this.mem.read8(p);
  }

  /**
   * Checks and translates the code byte at CS:EIP (EIP normalised to unsigned), sets the fetch
   * window when that is a RAM/ROM page, and returns the byte's physical address. Faults (#GP on the
   * CS limit or the 15-byte limit, #PF) are those of fetching that byte.
   */
  private mapFetch(): number {
    const off = this.eip >>> 0;
    const limit = this.segLimit[CS];
    if (off > limit) this.gp(0);
    if (this.lengthCap !== 0 && off >= this.lengthCap) this.gp(0);
    const lin = (this.segBase[CS] + off) | 0;
    const p = this.translate(lin, 0);
    const mem = this.mem;
    this.eip = off;
    if (mem.pageKind[p >>> 12] <= 1 && p < mem.ram.length) {
      const pageStart = off - (lin & 0xfff);
      this.fetchLo = Math.max(pageStart, 0);
      this.fetchHi = Math.min(pageStart + 0x1000, limit + 1);
      this.fetchDelta = ((p & ~0xfff) >>> 0) - pageStart;
      if (this.lengthCap !== 0 && this.fetchHi > this.lengthCap) this.fetchHi = this.lengthCap;
    } else this.fetchHi = 0;
    return p;
  }

  fetch16(): number {
    const e = this.eip;
    if (e + 2 <= this.fetchHi && e >= this.fetchLo) {
      const p = e + this.fetchDelta;
      const ram = this.mem.ram;
      this.eip = e + 2;
      return ram[p] | (ram[p + 1] << 8);
    }
    const lo = this.fetch8();
    return lo | (this.fetch8() << 8);
  }
  fetch32(): number {
    const e = this.eip;
    if (e + 4 <= this.fetchHi && e >= this.fetchLo) {
      const p = e + this.fetchDelta;
      const ram = this.mem.ram;
      this.eip = e + 4;
      return ram[p] | (ram[p + 1] << 8) | (ram[p + 2] << 16) | (ram[p + 3] << 24);
    }
    const a = this.fetch8();
    const b = this.fetch8();
    const c = this.fetch8();
    return a | (b << 8) | (c << 16) | (this.fetch8() << 24);
  }

  // ---------------------------------------------------------------------------------------------
  // Stack

  push16(v: number): void {
    const esp = this.regs[ESP];
    if (this.stack32) {
      const n = (esp - 2) | 0;
      this.writeLin16(this.linW(SS, n, 2), v);
      this.regs[ESP] = n;
    } else {
      const n = (esp - 2) & 0xffff;
      this.writeLin16(this.linW(SS, n, 2), v);
      this.r16[ESP << 1] = n;
    }
  }
  push32(v: number): void {
    const esp = this.regs[ESP];
    if (this.stack32) {
      const n = (esp - 4) | 0;
      this.writeLin32(this.linW(SS, n, 4), v);
      this.regs[ESP] = n;
    } else {
      const n = (esp - 4) & 0xffff;
      this.writeLin32(this.linW(SS, n, 4), v);
      this.r16[ESP << 1] = n;
    }
  }
  push(v: number): void {
    if (this.opSize32) this.push32(v);
    else this.push16(v);
  }
  pop16(): number {
    const esp = this.regs[ESP];
    if (this.stack32) {
      const v = this.readLin16(this.linR(SS, esp, 2));
      this.regs[ESP] = esp + 2;
      return v;
    }
    const v = this.readLin16(this.linR(SS, esp & 0xffff, 2));
    this.r16[ESP << 1] = esp + 2;
    return v;
  }
  pop32(): number {
    const esp = this.regs[ESP];
    if (this.stack32) {
      const v = this.readLin32(this.linR(SS, esp, 4));
      this.regs[ESP] = esp + 4;
      return v;
    }
    const v = this.readLin32(this.linR(SS, esp & 0xffff, 4));
    this.r16[ESP << 1] = esp + 4;
    return v;
  }
  pop(): number {
    return this.opSize32 ? this.pop32() : this.pop16();
  }
  /** Reads the stack at ESP + `delta` without popping. */
  peekStack(delta: number, size: number): number {
    const off = this.stack32 ? (this.regs[ESP] + delta) | 0 : (this.regs[ESP] + delta) & 0xffff;
    return size === 16 ? this.readLin16(this.linR(SS, off, 2)) : this.readLin32(this.linR(SS, off, 4));
  }
  adjustEsp(delta: number): void {
    if (this.stack32) this.regs[ESP] = this.regs[ESP] + delta;
    else this.r16[ESP << 1] = this.regs[ESP] + delta;
  }

  // ---------------------------------------------------------------------------------------------
  // Flags writes with privilege rules (POPF, IRET)

  /** Writes EFLAGS from POPF/IRET: IOPL only at CPL 0, IF only when CPL <= IOPL; VM/RF untouched. */
  writeFlagsChecked(v: number, size: number): void {
    this.materializeFlags();
    let mask = ARITH_FLAGS | TF | DF | NT | IF | IOPL;
    if (size === 32) mask |= AC | ID;
    if (this.protectedMode || this.flags & VM) {
      if (this.cpl > 0) mask &= ~IOPL;
      if (this.cpl > ((this.flags >> 12) & 3)) mask &= ~IF;
    }
    if (size === 16) mask &= 0xffff;
    this.flags = (this.flags & ~mask) | (v & mask) | 2;
    this.eventCheck = true;
  }

  // ---------------------------------------------------------------------------------------------
  // MSRs, CPUID, TSC

  readTsc(): number {
    return this.host.now() + this.tscOffset;
  }

  readMsr(index: number): [number, number] {
    switch (index) {
      case MSR_TSC: {
        const t = this.readTsc();
        return [t % 4294967296 | 0, Math.floor(t / 4294967296) | 0];
      }
      case MSR_APIC_BASE:
        return [this.apicBase, 0];
      case MSR_SYSENTER_CS:
        return [this.sysenterCs, 0];
      case MSR_SYSENTER_ESP:
        return [this.sysenterEsp, 0];
      case MSR_SYSENTER_EIP:
        return [this.sysenterEip, 0];
      case 0xfe: // MTRRcap: 8 variable ranges, fixed ranges, write-combining
        return [0x508, 0];
      case 0x17: // IA32_PLATFORM_ID
      case 0x8b: // BIOS_SIGN_ID (microcode revision)
        return this.msrs.get(index) ?? [0, 0];
    }
    if (isMtrr(index)) return this.msrs.get(index) ?? [0, 0];
    return this.gp(0);
  }

  writeMsr(index: number, lo: number, hi: number): void {
    switch (index) {
      case MSR_TSC:
        this.tscOffset = hi * 4294967296 + (lo >>> 0) - this.host.now();
        return;
      case MSR_APIC_BASE:
        this.apicBase = (lo & 0xfffff900) | 0;
        return;
      case MSR_SYSENTER_CS:
        this.sysenterCs = lo & 0xffff;
        return;
      case MSR_SYSENTER_ESP:
        this.sysenterEsp = lo | 0;
        return;
      case MSR_SYSENTER_EIP:
        this.sysenterEip = lo | 0;
        return;
      case 0x79: // microcode update trigger: accepted, nothing to load
      case 0x8b:
        this.msrs.set(index, [lo | 0, hi | 0]);
        return;
    }
    if (isMtrr(index)) {
      this.msrs.set(index, [lo | 0, hi | 0]);
      return;
    }
    this.gp(0);
  }

  /** CPUID: a Pentium II that reports exactly what this emulator implements. */
  cpuid(): void {
    const leaf = this.regs[EAX] >>> 0;
    const r = this.regs;
    if (leaf === 0 || (leaf > 2 && leaf < 0x80000000)) {
      r[EAX] = 2;
      r[EBX] = 0x756e6547; // "Genu"
      r[EDX] = 0x49656e69; // "ineI"
      r[ECX] = 0x6c65746e; // "ntel"
      if (leaf !== 0) r[EAX] = r[EBX] = r[ECX] = r[EDX] = 0;
      return;
    }
    if (leaf === 1) {
      r[EAX] = 0x652;
      r[EBX] = 0;
      r[ECX] = 0;
      // FPU, PSE, TSC, MSR, PAE, CX8, APIC, SEP, MTRR, PGE, CMOV, FXSR
      r[EDX] = (1 << 0) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 9) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 15) | (1 << 24);
      return;
    }
    if (leaf === 2) {
      // One iteration: 32 KiB L1 (split), 512 KiB L2, instruction/data TLB descriptors.
      r[EAX] = 0x03020101;
      r[EBX] = 0;
      r[ECX] = 0;
      r[EDX] = 0x0c040843;
      return;
    }
    // Extended leaves do not exist on this CPU.
    r[EAX] = r[EBX] = r[ECX] = r[EDX] = 0;
  }

  // ---------------------------------------------------------------------------------------------
  // The x87 unit's view of the core

  private makeFpuHost(): FpuHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const cpu = this;
    return {
      get numericErrorNative() {
        return (cpu.cr0 & CR0_NE) !== 0;
      },
      get protectedMode() {
        return cpu.protectedMode;
      },
      get operandSize32() {
        return cpu.opSize32;
      },
      get instructionSelector() {
        return cpu.segSel[CS];
      },
      get instructionOffset() {
        return cpu.startEip;
      },
      raiseException(vector: number): never {
        return cpu.fault(vector, vector === EXC_UD || vector === EXC_NM || vector === EXC_MF ? -1 : 0);
      },
      setFerr(asserted: boolean) {
        cpu.onFerr(asserted);
      },
      setEflagsZPC(zf: boolean, pf: boolean, cf: boolean) {
        cpu.materializeFlags();
        cpu.flags = (cpu.flags & ~ARITH_FLAGS) | (zf ? ZF : 0) | (pf ? PF : 0) | (cf ? CF : 0);
      },
      setAx(value: number) {
        cpu.r16[0] = value;
      },
      getEflags() {
        return cpu.getFlags();
      },
    };
  }

  /** A memory operand for the FPU at seg:off (checks done per access, so faults restart the instruction). */
  fpuOperand(seg: number, off: number): FpuMemoryOperand {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const cpu = this;
    const mask = this.addrSize32 ? -1 : 0xffff;
    return {
      offset: off >>> 0,
      selector: this.segSel[seg],
      read8: (o) => cpu.read8(seg, (off + o) & mask),
      read16: (o) => cpu.read16(seg, (off + o) & mask),
      read32: (o) => cpu.read32(seg, (off + o) & mask) >>> 0,
      write8: (o, v) => cpu.write8(seg, (off + o) & mask, v),
      write16: (o, v) => cpu.write16(seg, (off + o) & mask, v),
      write32: (o, v) => cpu.write32(seg, (off + o) & mask, v),
    };
  }
}

function isMtrr(index: number): boolean {
  return (index >= 0x200 && index <= 0x20f) || index === 0x250 || index === 0x258 || index === 0x259 || (index >= 0x268 && index <= 0x26f) || index === 0x2ff;
}
