/**
 * The fuzzing machine: RAM + port bus + Boxwood's Cpu, and episodes of random code. Each episode
 * rebuilds the system structures, fills a code page with random bytes, sets random general
 * registers and runs until the guest's exception handler reports a vector (it writes it to port
 * 0xE0 and halts), the code halts or shuts down, or the episode budget runs out.
 *
 * Modes:
 *  - real: real mode, CS=0x1000 over the random page, IVT entries to per-vector stubs.
 *  - pm3: 32-bit protected mode with paging, random code at CPL 3 (flat segments, a TSS for the
 *    ring-0 stack, an IDT of interrupt gates to per-vector stubs; INT3/INTO gates are DPL 3),
 *    page tables with user, supervisor, read-only and not-present pages.
 *  - x87: ring 0 of flat 32-bit protected mode (no paging, CR0.NE=1) running streams of x87
 *    instructions (D8-DF with random ModRM; memory operands at ESI+disp8 over a page of random
 *    bytes, so loads see NaNs, denormals, unnormals and pseudo-infinities), interleaved with
 *    FLDCW/FNCLEX/FNINIT so precision, rounding and exception masks vary and #MF happens.
 *
 * Every exception the CPU delivers is checked against what the architecture allows in the
 * mode at hand (vector and error-code format).
 */
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import type { CpuHost } from '../../../src-emulator/cpu/cpu-host';

export type FuzzMode = 'real' | 'pm3' | 'x87';

/** The Cpu members the fuzzer uses (structural: the file compiles whatever else the Cpu grows). */
export interface FuzzCpu {
  reset(): void;
  run(budget: number): number;
  setReg32(i: number, v: number): void;
  getReg32(i: number): number;
  eip: number;
  setFlags(v: number): void;
  getFlags(): number;
  setSegmentRaw(s: number, selector: number, base: number, limit: number, ar: number): void;
  setCr(n: number, v: number): void;
  getCr(n: number): number;
  setGdtr(base: number, limit: number): void;
  setIdtr(base: number, limit: number): void;
  getSegSelector(s: number): number;
  halted: boolean;
  onException: ((vector: number, errorCode: number) => void) | null;
}

/** mulberry32: small, fast, deterministic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const RAM = 16 << 20;
const STUBS = 0x9000; // 256 stubs of 8 bytes: mov al, v; out 0xE0, al; hlt
const GDT = 0x7000;
const TSS = 0x7800;
const IDT = 0x8000;
const PD = 0x3000;
const PT = 0x4000; // two tables: 0-4 MiB, 4-8 MiB
const REAL_CODE = 0x10000;
const PM_CODE = 0x400000;
const VECTOR_PORT = 0xe0;

/** Exceptions (not software interrupts) the architecture can deliver at all on an i686 without SSE. */
const EXCEPTIONS = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18]);
/** Those with an error code. */
const WITH_ERROR = new Set([8, 10, 11, 12, 13, 14, 17]);

export interface EpisodeResult {
  instructions: number;
  /** Vector reported by the guest handler stub, or -1. */
  handlerVector: number;
  /** Exceptions the CPU delivered (vector, error code). */
  exceptions: [number, number][];
  ended: 'handler' | 'halt' | 'shutdown' | 'budget';
  /** Architecture violations found (empty when all is well). */
  violations: string[];
}

export class FuzzMachine {
  readonly mem = new PhysicalMemory(RAM);
  readonly io = new IoBus();
  readonly cpu: FuzzCpu;
  private handlerVector = -1;
  private shutdown = false;
  /** Episodes since the system structures were last written. */
  private sinceSetup = Infinity;
  private exceptions: [number, number][] = [];

  constructor(CpuClass: new (host: CpuHost) => unknown, readonly mode: FuzzMode) {
    this.io.register(VECTOR_PORT, 1, { out8: (_p, v) => { this.handlerVector = v; } });
    const host: CpuHost = {
      mem: this.mem,
      io: this.io,
      acknowledgeInterrupt: () => 0xff,
      now: () => 0,
      shutdown: () => { this.shutdown = true; },
    };
    this.cpu = new CpuClass(host) as FuzzCpu;
    this.cpu.onException = (v, e) => { if (this.exceptions.length < 64) this.exceptions.push([v, e]); };
  }

  /** Runs one episode of `code` (random bytes) with random registers from `rand`. */
  episode(code: Uint8Array, rand: () => number, budget: number): EpisodeResult {
    this.handlerVector = -1;
    this.shutdown = false;
    this.exceptions = [];
    const cpu = this.cpu;
    cpu.reset();
    // Ring-3 code cannot write the supervisor pages that hold the system structures; rewriting
    // them every 64 episodes still undoes whatever a CPU bug might have scribbled there.
    const full = this.mode === 'real' || this.sinceSetup >= 64;
    this.sinceSetup = full ? 0 : this.sinceSetup + 1;
    if (full) this.writeStubs();
    if (this.mode === 'real') this.setupReal(code, rand);
    else if (this.mode === 'x87') this.setupX87(code, rand);
    else this.setupPm3(code, rand, full);
    let instructions = 0;
    let ended: EpisodeResult['ended'] = 'budget';
    while (instructions < budget) {
      instructions += cpu.run(Math.min(500, budget - instructions));
      if (this.handlerVector >= 0) { ended = 'handler'; break; }
      if (this.shutdown) { ended = 'shutdown'; break; }
      if (cpu.halted) { ended = 'halt'; break; }
    }
    return { instructions, handlerVector: this.handlerVector, exceptions: this.exceptions, ended, violations: this.check(ended) };
  }

  private check(ended: EpisodeResult['ended']): string[] {
    const out: string[] = [];
    for (const [v, e] of this.exceptions) {
      if (!EXCEPTIONS.has(v)) out.push(`exception vector ${v} is not an i686 exception`);
      if (WITH_ERROR.has(v) && e !== -1 && e !== undefined) {
        if (v === 14 && (e & ~0xf) !== 0) out.push(`#PF error code ${e.toString(16)} has bits beyond P/W/U/RSVD (no I/D without NX)`);
        if (v !== 14 && (e & ~0xffff) !== 0) out.push(`vector ${v} error code ${e.toString(16)} exceeds 16 bits`);
        if ((v === 8 || v === 17) && e !== 0) out.push(`vector ${v} error code must be 0, got ${e.toString(16)}`);
      }
    }
    if (this.mode === 'x87') {
      // Only x87 instructions run (and the ones they may fault into): #UD for undefined
      // encodings, #MF for unmasked exceptions, #GP/#SS for operands past 4 GiB-wrap are not
      // possible with flat segments, #NM not with EM=TS=0.
      for (const [v] of this.exceptions) if (v !== 6 && v !== 16) out.push(`vector ${v} from x87 code`);
      if (ended === 'shutdown') out.push('shutdown (triple fault) from x87 code');
    }
    if (this.mode === 'pm3') {
      // Random ring-3 code cannot touch the system structures (supervisor pages), so nested
      // faults, #DF and shutdown mean a delivery bug; nor can it enable #AC or #NM.
      for (const [v] of this.exceptions) {
        if (v === 8 || v === 7 || v === 17 || v === 2 || v === 18) out.push(`vector ${v} is impossible for ring-3 code here`);
      }
      if (ended === 'shutdown') out.push('shutdown (triple fault) from ring-3 code');
      if (ended === 'halt' && this.handlerVector < 0) out.push('CPU halted without a handler (HLT is privileged at CPL 3)');
    }
    if (this.handlerVector >= 0 && this.mode === 'pm3' && this.exceptions.length) {
      const last = this.exceptions[this.exceptions.length - 1][0];
      if (last !== this.handlerVector && this.handlerVector !== 3 && this.handlerVector !== 4 && this.handlerVector !== 1) {
        out.push(`handler saw vector ${this.handlerVector} but the CPU reported delivering ${last}`);
      }
    }
    return out;
  }

  private writeStubs(): void {
    const m = this.mem;
    for (let v = 0; v < 256; v++) {
      const a = STUBS + v * 8;
      m.write8(a, 0xb0); m.write8(a + 1, v); // mov al, v
      m.write8(a + 2, 0xe6); m.write8(a + 3, VECTOR_PORT); // out 0xE0, al
      m.write8(a + 4, 0xf4); // hlt
      m.write8(a + 5, 0xeb); m.write8(a + 6, 0xfd); // jmp back to hlt
      m.write8(a + 7, 0x90);
    }
  }

  private randomRegs(rand: () => number): void {
    for (const r of [0, 1, 2, 3, 5, 6, 7]) this.cpu.setReg32(r, rand());
  }

  private setupReal(code: Uint8Array, rand: () => number): void {
    const cpu = this.cpu;
    const m = this.mem;
    for (let v = 0; v < 256; v++) { m.write16(v * 4, (v * 8) & 0xffff); m.write16(v * 4 + 2, STUBS >> 4); }
    m.writeBytes(REAL_CODE, code);
    // random data around the usual segments
    for (let i = 0; i < 256; i++) m.write32(0x20000 + i * 4, rand());
    const data = 0x0093 | 0; // P S RW A
    cpu.setSegmentRaw(1, REAL_CODE >> 4, REAL_CODE, 0xffff, 0x009b);
    for (const s of [0, 2, 3, 4, 5]) cpu.setSegmentRaw(s, 0x2000, 0x20000, 0xffff, data);
    this.randomRegs(rand);
    cpu.setReg32(4, 0xfff0);
    cpu.eip = 0;
    cpu.setFlags(0x2 | (rand() & 0x8d5)); // random arithmetic flags and DF, IF=0, TF=0
    cpu.setIdtr(0, 0x3ff);
  }

  private setupPm3(code: Uint8Array, rand: () => number, full: boolean): void {
    const cpu = this.cpu;
    const m = this.mem;
    if (full) this.writeSystemPm3();
    m.writeBytes(PM_CODE, code);
    for (let i = 0; i < 1024; i++) m.write32(PM_CODE + 0x1000 + i * 4, rand());
    cpu.setGdtr(GDT, 9 * 8 - 1);
    cpu.setIdtr(IDT, 256 * 8 - 1);
    cpu.setCr(3, PD);
    cpu.setCr(0, 0x80000031); // PG, NE, ET, PE
    cpu.setSegmentRaw(7, 0x28, TSS, 0x67, 0x8b);
    cpu.setSegmentRaw(1, 0x1b, 0, 0xffffffff, 0xc0fb);
    for (const s of [0, 2, 3, 4, 5]) cpu.setSegmentRaw(s, 0x23, 0, 0xffffffff, 0xc0f3);
    this.randomRegs(rand);
    cpu.setReg32(4, PM_CODE + 0x3000 + (rand() & 0xffc));
    cpu.eip = PM_CODE;
    cpu.setFlags(0x202 | (rand() & 0x8d5)); // IF=1 (no interrupt line), IOPL 0
  }

  /** Turns random bytes into a stream of x87 instructions ending in HLT. */
  static x87Stream(bytes: Uint8Array, rand: () => number): Uint8Array {
    const out: number[] = [];
    for (let i = 0; out.length < bytes.length - 16; i++) {
      const r = rand();
      const kind = r & 31;
      if (kind === 0) out.push(0xd9, 0x6e, (r >>> 8) & 0xfc); // FLDCW [esi+disp8]
      else if (kind === 1) out.push(0xdb, 0xe2); // FNCLEX
      else if (kind === 2) out.push(0xdb, 0xe3); // FNINIT
      else if (kind === 3) out.push(0xdb, 0x6e, (r >>> 8) & 0xf0); // FLD m80 [esi+disp8]
      else if (kind === 4) out.push(0x9b); // WAIT
      else {
        const op = 0xd8 + ((r >>> 5) & 7);
        const modrm = (r >>> 8) & 0xff;
        if (modrm < 0xc0) out.push(op, 0x40 | (modrm & 0x38) | 6, (r >>> 16) & 0xf8); // [esi+disp8]
        else out.push(op, modrm);
      }
    }
    out.push(0xf4);
    return new Uint8Array(out.slice(0, bytes.length));
  }

  private setupX87(code: Uint8Array, rand: () => number): void {
    const cpu = this.cpu;
    const m = this.mem;
    const desc = (i: number, access: number) => {
      m.write32(GDT + i * 8, 0x0000ffff);
      m.write32(GDT + i * 8 + 4, 0x00cf0000 | (access << 8));
    };
    m.write32(GDT, 0); m.write32(GDT + 4, 0);
    desc(1, 0x9b);
    desc(2, 0x93);
    for (let v = 0; v < 256; v++) {
      const off = STUBS + v * 8;
      m.write32(IDT + v * 8, (0x08 << 16) | (off & 0xffff));
      m.write32(IDT + v * 8 + 4, (off & 0xffff0000) | (0x8e << 8));
    }
    m.writeBytes(PM_CODE, FuzzMachine.x87Stream(code, rand));
    for (let i = 0; i < 1024; i++) m.write32(PM_CODE + 0x1000 + i * 4, rand());
    cpu.setGdtr(GDT, 3 * 8 - 1);
    cpu.setIdtr(IDT, 256 * 8 - 1);
    cpu.setCr(0, 0x00000031); // NE, ET, PE
    cpu.setSegmentRaw(1, 0x08, 0, 0xffffffff, 0xc09b);
    for (const s of [0, 2, 3, 4, 5]) cpu.setSegmentRaw(s, 0x10, 0, 0xffffffff, 0xc093);
    this.randomRegs(rand);
    cpu.setReg32(6, PM_CODE + 0x1000 + (rand() & 0xf00));
    cpu.setReg32(4, 0x7000);
    cpu.eip = PM_CODE;
    cpu.setFlags(0x2);
  }

  private writeSystemPm3(): void {
    const m = this.mem;
    const desc = (i: number, base: number, limit: number, access: number, flags: number) => {
      m.write32(GDT + i * 8, ((base & 0xffff) << 16) | (limit & 0xffff));
      m.write32(GDT + i * 8 + 4, (base & 0xff000000) | (flags << 20) | (limit & 0xf0000) | (access << 8) | ((base >>> 16) & 0xff));
    };
    m.write32(GDT, 0); m.write32(GDT + 4, 0);
    desc(1, 0, 0xfffff, 0x9b, 0xc); // 0x08 code ring 0
    desc(2, 0, 0xfffff, 0x93, 0xc); // 0x10 data ring 0
    desc(3, 0, 0xfffff, 0xfb, 0xc); // 0x1b code ring 3
    desc(4, 0, 0xfffff, 0xf3, 0xc); // 0x23 data ring 3
    desc(5, TSS, 0x67, 0x8b, 0x0); // 0x28 TSS (busy: it is the current task)
    desc(6, 0, 0xfffff, 0x73, 0xc); // 0x33 data ring 3, not present
    desc(7, 0x400000, 0xfff, 0xf3, 0x0); // 0x3b small data ring 3 (limit checks)
    desc(8, 0, 0xffff, 0xfb, 0x0); // 0x43 16-bit code ring 3
    m.write32(TSS + 4, 0x7000); // ESP0
    m.write32(TSS + 8, 0x10); // SS0
    m.write16(TSS + 0x66, 0x68); // no I/O bitmap: every port denied at IOPL 0
    for (let v = 0; v < 256; v++) {
      const off = STUBS + v * 8;
      const dpl = v === 3 || v === 4 ? 0xee : 0x8e;
      m.write32(IDT + v * 8, (0x08 << 16) | (off & 0xffff));
      m.write32(IDT + v * 8 + 4, (off & 0xffff0000) | (dpl << 8));
    }
    // Paging: 0-64 KiB supervisor (tables, stubs), the rest of 0-8 MiB user; at 4 MiB a mix.
    m.write32(PD, PT | 7);
    m.write32(PD + 4, (PT + 0x1000) | 7);
    for (let i = 1; i < 1024; i++) m.write32(PD + i * 4, i < 2 ? m.read32(PD + i * 4) : 0);
    for (let p = 0; p < 2048; p++) {
      let pte = (p << 12) | 7;
      if (p < 16) pte = (p << 12) | 3; // supervisor
      else if (p >= 1024 + 8) {
        const k = p % 8;
        if (k === 5) pte = 0; // not present
        else if (k === 6) pte = (p << 12) | 5; // user read-only
        else if (k === 7) pte = (p << 12) | 3; // supervisor
      }
      m.write32(PT + p * 4, pte);
    }
  }
}
