/**
 * Test bench for the CPU: a bare PhysicalMemory + IoBus + Cpu, programs assembled with nasm, and a
 * protected-mode frame (flat GDT, IDT whose handlers log the exception and halt or resume).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Cpu } from '../../../src-emulator/cpu/cpu';
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { IoBus } from '../../../src-emulator/machine/io-bus';

const cache = new Map<string, Uint8Array>();

/** Assembles nasm source to a flat binary (cached per source text). */
export function assemble(src: string): Uint8Array {
  const key = createHash('sha1').update(src).digest('hex');
  const hit = cache.get(key);
  if (hit) return hit;
  const dir = mkdtempSync(join(tmpdir(), 'bw-asm-'));
  try {
    writeFileSync(join(dir, 'p.asm'), src);
    try {
      execFileSync('nasm', ['-f', 'bin', '-o', join(dir, 'p.bin'), join(dir, 'p.asm')], { stdio: 'pipe' });
    } catch (e) {
      const err = e as { stderr?: Buffer };
      throw new Error(`nasm failed: ${err.stderr?.toString() ?? String(e)}`);
    }
    const out = new Uint8Array(readFileSync(join(dir, 'p.bin')));
    cache.set(key, out);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestMachine {
  cpu: Cpu;
  mem: PhysicalMemory;
  io: IoBus;
  shutdowns: string[];
  now: { ns: number };
  intVector: { v: number };
}

export function makeMachine(ramBytes = 16 << 20): TestMachine {
  const mem = new PhysicalMemory(ramBytes);
  const io = new IoBus();
  const shutdowns: string[] = [];
  const now = { ns: 0 };
  const intVector = { v: 0x20 };
  const cpu = new Cpu({
    mem,
    io,
    acknowledgeInterrupt: () => intVector.v,
    now: () => now.ns,
    shutdown: (r) => shutdowns.push(r),
  });
  return { cpu, mem, io, shutdowns, now, intVector };
}

/** Runs until HLT (or `max` instructions); returns instructions executed. */
export function runToHalt(cpu: Cpu, max = 1_000_000): number {
  let n = 0;
  while (!cpu.halted && n < max) n += cpu.run(Math.min(10000, max - n));
  if (!cpu.halted) throw new Error(`did not halt within ${max} instructions (eip=${cpu.eip.toString(16)})`);
  return n;
}

/** Real mode: loads `code` at 0000:7C00-style address `at` (segment 0) and points CS:IP at it. */
export function loadReal(m: TestMachine, code: Uint8Array, at = 0x7c00): void {
  m.mem.writeBytes(at, code);
  m.cpu.reset();
  m.cpu.loadSegmentReal(1, 0);
  for (const s of [0, 2, 3, 4, 5]) m.cpu.loadSegmentReal(s, 0);
  m.cpu.eip = at;
  m.cpu.setReg32(4, 0x7000);
}

// ---------------------------------------------------------------------------------------------
// Protected-mode frame

export const GDT = 0x1000;
export const IDT = 0x1800;
export const TSS = 0x2000;
export const LOG = 0x500; // vector, error, eip, cs, count, resume
export const STACK0 = 0x7000;
export const STACK3 = 0x6000;
export const CODE_BASE = 0x10000;

export const SEL = {
  code0: 0x08,
  data0: 0x10,
  code3: 0x1b,
  data3: 0x23,
  tss: 0x28,
  code16: 0x30,
  data16: 0x38,
};

/** Exceptions with an error code. */
const WITH_ERROR = new Set([8, 10, 11, 12, 13, 14, 17]);

/** The prelude each protected-mode program starts with: handler table, handlers, common logger. */
export function prelude(): string {
  let s = `bits 32\norg ${CODE_BASE}\ntable: dd main\n`;
  for (let i = 0; i < 32; i++) s += `dd h${i}\n`;
  for (let i = 0; i < 32; i++) {
    s += `h${i}:\n`;
    if (!WITH_ERROR.has(i)) s += '  push dword 0xffffffff\n';
    s += `  push dword ${i}\n  jmp exc_common\n`;
  }
  s += `
exc_common:
  push eax
  mov eax, [esp+4]
  mov [ss:${LOG}], eax
  mov eax, [esp+8]
  mov [ss:${LOG + 4}], eax
  mov eax, [esp+12]
  mov [ss:${LOG + 8}], eax
  mov eax, [esp+16]
  mov [ss:${LOG + 12}], eax
  inc dword [ss:${LOG + 16}]
  mov eax, [ss:${LOG + 20}]
  test eax, eax
  jz .stop
  mov [esp+12], eax       ; resume address replaces the faulting EIP
  pop eax
  add esp, 8
  iretd
.stop:
  pop eax
  hlt
  jmp .stop
`;
  return s;
}

function putDesc(mem: PhysicalMemory, at: number, base: number, limit: number, access: number, flags: number): void {
  mem.write32(at, ((base & 0xffff) << 16) | (limit & 0xffff));
  mem.write32(at + 4, (base & 0xff000000) | (flags << 20) | (limit & 0xf0000) | (access << 8) | ((base >>> 16) & 0xff));
}

export function putGate(mem: PhysicalMemory, at: number, sel: number, off: number, typeAttr: number, params = 0): void {
  mem.write32(at, (sel << 16) | (off & 0xffff));
  mem.write32(at + 4, (off & 0xffff0000) | (typeAttr << 8) | params);
}

export { putDesc };

/**
 * Loads `body` (nasm source with a `main:` label, 32-bit) after the prelude at CODE_BASE and puts
 * the CPU straight into flat 32-bit ring-0 protected mode with GDT, IDT, TSS set up.
 */
export function loadProtected(m: TestMachine, body: string, opts: { idtDpl3?: number[] } = {}): Uint8Array {
  const bin = assemble(prelude() + body);
  const { cpu, mem } = m;
  cpu.reset();
  mem.writeBytes(CODE_BASE, bin);
  for (let i = 0; i < 6 * 4; i++) mem.write8(LOG + i, 0);
  putDesc(mem, GDT + 0, 0, 0, 0, 0);
  putDesc(mem, GDT + 0x08, 0, 0xfffff, 0x9a, 0xc);
  putDesc(mem, GDT + 0x10, 0, 0xfffff, 0x92, 0xc);
  putDesc(mem, GDT + 0x18, 0, 0xfffff, 0xfa, 0xc);
  putDesc(mem, GDT + 0x20, 0, 0xfffff, 0xf2, 0xc);
  putDesc(mem, GDT + 0x28, TSS, 0x2067, 0x89, 0);
  putDesc(mem, GDT + 0x30, 0, 0xffff, 0x9a, 0);
  putDesc(mem, GDT + 0x38, 0, 0xffff, 0x92, 0);
  for (let i = 0; i < 32; i++) {
    const h = mem.read32(CODE_BASE + 4 + i * 4);
    const dpl = opts.idtDpl3?.includes(i) ? 3 : 0;
    putGate(mem, IDT + i * 8, SEL.code0, h, 0x8e | (dpl << 5));
  }
  // TSS: ring-0 stack, I/O bitmap at 0x68 all-zero (all ports allowed) with the terminator byte.
  for (let i = 0; i < 0x2068; i++) mem.write8(TSS + i, 0);
  mem.write32(TSS + 4, STACK0);
  mem.write16(TSS + 8, SEL.data0);
  mem.write16(TSS + 102, 0x68);
  mem.write8(TSS + 0x68 + 8192, 0xff);
  for (let i = 0x40; i < 0x400; i++) mem.write8(GDT + i, 0);
  for (let i = 32 * 8; i < 256 * 8; i++) mem.write8(IDT + i, 0);
  cpu.setGdtr(GDT, 0x3ff);
  cpu.setIdtr(IDT, 256 * 8 - 1);
  cpu.setCr(0, 0x60000011);
  const code = 0x9b | (0xc << 12);
  const data = 0x93 | (0xc << 12);
  cpu.setSegmentRaw(1, SEL.code0, 0, 0xffffffff, code);
  for (const s of [0, 2, 3, 4, 5]) cpu.setSegmentRaw(s, SEL.data0, 0, 0xffffffff, data);
  cpu.setSegmentRaw(7, SEL.tss, TSS, 0x2067, 0x8b);
  mem.write8(GDT + 0x28 + 5, 0x8b);
  cpu.setReg32(4, STACK0);
  cpu.eip = mem.read32(CODE_BASE);
  return bin;
}

export interface ExceptionLog {
  vector: number;
  error: number;
  eip: number;
  cs: number;
  count: number;
}
export function exceptionLog(m: TestMachine): ExceptionLog {
  const r = (o: number) => m.mem.read32(LOG + o) >>> 0;
  return { vector: r(0), error: r(4), eip: r(8), cs: r(12) & 0xffff, count: r(16) };
}
