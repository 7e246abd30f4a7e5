/**
 * The Boxwood side of the differential test: a PhysicalMemory + IoBus + the Cpu, with the program
 * image as the BIOS ROM at 0xF0000 (and aliased below 4 GiB), and nothing else — the same bare
 * machine QEMU gives the program (its other devices are never touched by the programs).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PhysicalMemory, PAGE_ROM, type MmioHandler } from '../../../src-emulator/machine/memory';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import type { CpuHost } from '../../../src-emulator/cpu/cpu-host';
import type { DutSide } from './harness';
import { RAM_MIB } from './qemu';
import type { CpuState, FpuState, SegmentCache } from './state';

/** The members of `Cpu` (src-emulator/cpu/cpu.ts) the harness uses; structural so this file compiles before the CPU lands. */
export interface CpuLike {
  reset(): void;
  run(budget: number): number;
  getReg32(i: number): number;
  setReg32(i: number, v: number): void;
  eip: number;
  getFlags(): number;
  setFlags(v: number): void;
  getSegSelector(s: number): number;
  getCr(n: number): number;
  instructionsRetired: number;
  halted: boolean;
  // Present in the Cpu as built (cpu.ts); optional so a change there degrades the comparison, not the build.
  getSegBase?(s: number): number;
  getSegLimit?(s: number): number;
  getSegAccessRights?(s: number): number;
  gdtBase?: number;
  gdtLimit?: number;
  idtBase?: number;
  idtLimit?: number;
  cpl?: number;
  /** Debug registers DR0-DR7 (cpu.ts keeps them in an Int32Array). */
  dr?: ArrayLike<number>;
  fpu?: unknown;
  setGdtr?(base: number, limit: number): void;
  setSegmentRaw?(s: number, selector: number, base: number, limit: number, ar: number): void;
  setIdtr?(base: number, limit: number): void;
}

interface FpuFields {
  cw: number;
  sw: number;
  top: number;
  empty: Uint8Array;
  /** Physical registers: sign << 15 | exponent ... */
  se: Uint16Array;
  /** ... and the significand, as one 64-bit value or two 32-bit halves (either layout is read). */
  sig?: BigUint64Array;
  hi?: Uint32Array;
  lo?: Uint32Array;
}

export const CPU_MODULE = process.env.CPU_DIFF_CPU_MODULE ?? join(import.meta.dirname, '../../../src-emulator/cpu/cpu.ts');

/** Loads the Cpu class, or returns null with the reason when the CPU has not landed yet. */
export async function loadCpuClass(): Promise<{ Cpu: new (host: CpuHost) => CpuLike } | { missing: string }> {
  if (!existsSync(CPU_MODULE)) return { missing: `${CPU_MODULE} does not exist yet` };
  const mod = (await import(CPU_MODULE)) as { Cpu?: new (host: CpuHost) => CpuLike };
  if (!mod.Cpu) throw new Error(`${CPU_MODULE} exports no Cpu class`);
  return { Cpu: mod.Cpu };
}

/** Boxwood keeps access rights as byte 5 | (byte 6 & 0xF0) << 8; QEMU as the descriptor's high dword. */
function arToQemuFlags(ar: number): number {
  return ((ar & 0xff) << 8) | ((ar & 0xf000) << 8);
}

export class BoxwoodDut implements DutSide {
  readonly mem: PhysicalMemory;
  readonly io = new IoBus();
  readonly cpu: CpuLike;
  shutdownReason: string | null = null;
  exitCode: number | null = null;
  /** Exceptions and ports the CPU reported (diagnostics). */
  portWrites: { port: number; value: number }[] = [];

  constructor(CpuClass: new (host: CpuHost) => CpuLike, image: Uint8Array) {
    this.mem = new PhysicalMemory(RAM_MIB << 20);
    const mem = this.mem;
    // QEMU's pc machine with -nodefaults: the VGA window 0xA0000-0xBFFFF (no VGA) and the
    // option-ROM area 0xC0000-0xEFFFF read as zeros and ignore writes; the BIOS at 0xF0000 and
    // its alias at 0xFFFF0000.
    mem.setKind(0xa0000, 0x50000, PAGE_ROM);
    mem.ram.fill(0, 0xa0000, 0x100000);
    // Above RAM nothing decodes; QEMU's unassigned memory reads as zeros (PhysicalMemory's
    // unmapped pages float high), so the hole is an MMIO window of zeros here.
    const hole: MmioHandler = { read8: () => 0, write8: () => {} };
    mem.mapMmio(RAM_MIB << 20, ((0x100000000 - image.length) >>> 0) - (RAM_MIB << 20), hole);
    const low = image.subarray(image.length - 0x10000);
    if (image.length > 0x10000) {
      mem.loadRom(0xe0000, image.subarray(0, image.length - 0x10000));
    }
    mem.loadRom(0xf0000, low);
    const alias: MmioHandler = {
      read8: (addr) => image[(addr - (0x100000000 - image.length)) >>> 0] ?? 0xff,
      write8: () => {},
    };
    mem.mapMmio((0x100000000 - image.length) >>> 0, image.length, alias);
    this.io.register(0xf4, 4, {
      out8: (_port, value) => { this.exitCode = value; },
    });
    const host: CpuHost = {
      mem,
      io: this.io,
      acknowledgeInterrupt: () => 0xff,
      now: () => 0,
      shutdown: (reason: string) => { this.shutdownReason = reason; },
    };
    this.cpu = new CpuClass(host);
    this.cpu.reset();
  }

  step(): void {
    this.cpu.run(1);
  }

  setFlags(value: number): void {
    this.cpu.setFlags(value);
  }

  /** Takes QEMU's condition code C1 and, with `registers`, its ST(i) values (after a transcendental within tolerance). */
  adoptFpu(ref: CpuState, registers: boolean, fswBits = 0x0200): void {
    const f = fpuFields(this.cpu.fpu);
    if (!f || !ref.fpu) return;
    for (let i = 0; i < 8 && registers; i++) {
      const v = ref.fpu.st[i];
      if (v === null) continue;
      const p = (f.top + i) & 7;
      f.se[p] = parseInt(v.slice(0, 4), 16);
      const sig = BigInt('0x' + v.slice(4));
      if (f.sig) f.sig[p] = sig;
      else { f.hi![p] = Number(sig >> 32n); f.lo![p] = Number(sig & 0xffffffffn); }
    }
    const bits = fswBits & ~0x3800;
    f.sw = (f.sw & ~bits) | (ref.fpu.fsw & bits);
  }

  adoptState(ref: CpuState): void {
    const c = this.cpu;
    for (let i = 0; i < 8; i++) c.setReg32(i, ref.gpr[i]);
    c.eip = ref.eip;
    c.setFlags(ref.eflags);
    if (c.setSegmentRaw) {
      ref.seg.forEach((g, i) => c.setSegmentRaw!(i, g.selector, g.base, g.limit, ((g.flags >> 8) & 0xff) | ((g.flags >> 8) & 0xf000)));
    }
    this.adoptTables(ref);
    const f = fpuFields(c.fpu);
    if (f && ref.fpu) f.cw = ref.fpu.fcw;
    this.adoptFpuStack(ref);
  }

  adoptFpuStack(ref: CpuState): void {
    const f = fpuFields(this.cpu.fpu);
    if (!f || !ref.fpu) return;
    f.top = (ref.fpu.fsw >> 11) & 7;
    f.sw = ref.fpu.fsw & ~0x3800;
    for (let p = 0; p < 8; p++) f.empty[p] = ref.fpu.ftagAbridged & (1 << p) ? 0 : 1;
    this.adoptFpu(ref, true, 0);
  }

  adoptTables(ref: CpuState): void {
    if (ref.gdtr) this.cpu.setGdtr?.(ref.gdtr.base, ref.gdtr.limit);
    if (ref.idtr) this.cpu.setIdtr?.(ref.idtr.base, ref.idtr.limit);
  }

  setReg32(index: number, value: number): void {
    this.cpu.setReg32(index, value);
  }

  setEip(value: number): void {
    this.cpu.eip = value;
  }

  readPhys(addr: number, length: number): Uint8Array {
    return this.mem.readBytes(addr, length);
  }

  private seg(s: number): SegmentCache {
    const c = this.cpu;
    return {
      selector: c.getSegSelector(s),
      base: c.getSegBase ? c.getSegBase(s) >>> 0 : 0,
      limit: c.getSegLimit ? c.getSegLimit(s) >>> 0 : 0,
      flags: c.getSegAccessRights ? arToQemuFlags(c.getSegAccessRights(s)) : 0,
    };
  }

  state(): CpuState {
    const c = this.cpu;
    const hasCaches = typeof c.getSegBase === 'function';
    const s: CpuState = {
      gpr: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => c.getReg32(i) >>> 0),
      eip: c.eip >>> 0,
      eflags: c.getFlags() >>> 0,
      seg: [0, 1, 2, 3, 4, 5].map((i) => this.seg(i)),
      cr: { cr0: c.getCr(0), cr2: c.getCr(2), cr3: c.getCr(3), cr4: c.getCr(4) },
      cpl: c.cpl,
      dr6: c.dr ? c.dr[6] >>> 0 : undefined,
      dr7: c.dr ? c.dr[7] >>> 0 : undefined,
    };
    if (hasCaches) {
      s.ldtr = this.seg(6);
      s.tr = this.seg(7);
    } else {
      for (const x of s.seg) x.base = x.limit = x.flags = Number.NaN; // unknown: never reported equal
    }
    if (c.gdtBase !== undefined) s.gdtr = { base: c.gdtBase >>> 0, limit: c.gdtLimit! & 0xffff };
    if (c.idtBase !== undefined) s.idtr = { base: c.idtBase >>> 0, limit: c.idtLimit! & 0xffff };
    const f = fpuFields(c.fpu);
    if (f) s.fpu = fpuState(f);
    return s;
  }
}

function fpuFields(fpu: unknown): FpuFields | null {
  const f = fpu as Partial<FpuFields> | undefined;
  if (!f || !f.se || !f.empty || typeof f.cw !== 'number' || !(f.sig || (f.hi && f.lo))) return null;
  return f as FpuFields;
}

function significand(f: FpuFields, p: number): bigint {
  if (f.sig) return f.sig[p];
  return (BigInt(f.hi![p] >>> 0) << 32n) | BigInt(f.lo![p] >>> 0);
}

function fpuState(f: FpuFields): FpuState {
  const st: (string | null)[] = [];
  let tag = 0;
  for (let p = 0; p < 8; p++) if (!f.empty[p]) tag |= 1 << p;
  for (let i = 0; i < 8; i++) {
    const p = (f.top + i) & 7;
    st.push(f.empty[p] ? null : f.se[p].toString(16).padStart(4, '0') + significand(f, p).toString(16).padStart(16, '0'));
  }
  return { fcw: f.cw, fsw: ((f.sw & ~0x3800) | ((f.top & 7) << 11)) & 0xffff, ftagAbridged: tag, st };
}

/** The factory the harness takes; `CpuClass` from `loadCpuClass()`. */
export function boxwoodDutFactory(CpuClass: new (host: CpuHost) => CpuLike): (image: Uint8Array) => DutSide {
  return (image) => new BoxwoodDut(CpuClass, image);
}
