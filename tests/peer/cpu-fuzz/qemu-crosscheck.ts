/**
 * Cross-checks random code against QEMU with the differential harness: each stream is wrapped in
 * a BIOS image (random registers; real mode with an IVT, or CPL 3 of protected mode through
 * pm.inc's frame with an IDT, whose every vector leads to its own exit stub), then both run in lock-step until an exception reaches a stub, port I/O or HLT comes
 * up (QEMU's devices are not Boxwood's), or the step budget ends. Undefined flags are masked as
 * in cpu-diff. Divergences that come from a known QEMU shortcut (no segment limit, writability or
 * null-selector checks; lax decoding of C6/C7/8F, LOCK and MMX; #UD for ICEBP and TEST F6/F7 /1;
 * RET imm16 sign-extended) are classed inconclusive with the reason.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleProgram } from '../cpu-diff/program';
import { runDiff, type DiffResult, type DutSide } from '../cpu-diff/harness';
import { rng } from './fuzz-machine';

export const STUB_BASE = 0x3000;
/** Linear address of the exit stubs in the ring-3 flavour (CS 0x08). */
export const PM_STUBS = 0xf9800;

/** The vector whose exit stub a state sits at, or -1. */
function stubVector(s: { eip: number; seg: { selector: number }[] }, chained = false, pm = false): number {
  if (chained && pm) {
    const off = s.eip - PM_STUBS;
    return s.seg[1].selector === 0x08 && off >= 0 && off < 2048 && off % 8 === 0 ? off / 8 : -1;
  }
  if (chained) {
    const off = s.eip - CHAIN_STUBS;
    return s.seg[1].selector === 0xf000 && off >= 0 && off < 1024 && off % 4 === 0 ? off / 4 : -1;
  }
  if (s.seg[1].selector === 0xf000 && s.eip >= STUB_BASE && s.eip < STUB_BASE + 512) return (s.eip - STUB_BASE) / 2;
  if (s.seg[1].selector === 0x08 && s.eip >= PM_STUBS && s.eip < PM_STUBS + 512) return (s.eip - PM_STUBS) / 2;
  return -1;
}

export type CrossMode = 'real' | 'pm3' | 'real-chain' | 'pm3-chain';

/** Chunks of random code a chained real-mode stream may enter (one per exception). */
const CHAIN_CHUNKS = 48;
/** Per-vector entry stubs of the chained flavour (F000:CHAIN_STUBS + v * 4). */
export const CHAIN_STUBS = 0x3000;

/**
 * Chained real-mode flavour: every vector's stub goes to a common handler that resets SS:SP and
 * DS/ES and jumps into the next 64-byte chunk of the random code, so one QEMU start compares many
 * exceptions' worth of random instructions; after CHAIN_CHUNKS exceptions the program exits.
 */
export function randomChainProgramSource(seed: number): string {
  const r = rng(seed);
  const bytes = (n: number) => Array.from({ length: n }, () => r() & 0xff).join(',');
  const regs = ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp'].map((x) => `    mov ${x}, 0x${r().toString(16)}`).join('\n');
  return `; random real-mode stream, chained through exceptions, seed 0x${seed.toString(16)}
; diff-memory: 0x0 0x600
; diff-memory: 0x20000 0x10000
%include "rom.inc"
start:
    lidt [cs:ivt_ptr]
    mov ax, 0x2000
    mov es, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0xfff0
${regs}
    push word 0x${(r() & 0x08d5).toString(16)}
    popf
    jmp 0xf000:code
chain_handler:
    xor ax, ax
    mov ds, ax
    inc word [0x500]
    mov bx, [0x500]
    cmp bx, ${CHAIN_CHUNKS}
    jae .done
    mov ax, 0x2000
    mov ss, ax
    mov sp, 0xfff0
    mov ds, ax
    mov es, ax
    shl bx, 6
    add bx, code
    jmp bx
.done:
    EXIT
ivt_ptr: dw 0x3ff
    dd 0xf0000 + ivt
ivt:
%assign v 0
%rep 256
    dw ${CHAIN_STUBS} + v * 4, 0xf000
%assign v v + 1
%endrep
    times 0x1000 - ($ - $$) db 0
code: db ${bytes(CHAIN_CHUNKS * 64 + 64)}
    times ${CHAIN_STUBS} - ($ - $$) db 0
%rep 256
    jmp near chain_handler
    nop
%endrep
`;
}

/** Chained ring-3 flavour: each vector's stub (8 bytes at PM_STUBS + v * 8) goes to a ring-0 handler that IRETs into the next chunk. */
export function randomPm3ChainProgramSource(seed: number): string {
  const r = rng(seed);
  const bytes = (n: number) => Array.from({ length: n }, () => r() & 0xff).join(',');
  const regs = ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp'].map((x) => `    mov ${x}, 0x${r().toString(16)}`).join('\n');
  return `; random ring-3 stream, chained through exceptions, seed 0x${seed.toString(16)}
; diff-memory: 0x0 0x8000
%define NO_FAULT_GATES
%include "rom.inc"
%include "pm.inc"
section pm32
bits 32
pm_main:
    lidt [cs:A32(exit_idt)]
    mov dword [SCRATCH + 16], 0
    mov eax, A32(code)
    jmp to_ring3
chain_pm:
    mov ax, SEL_DATA32
    mov ds, ax
    mov es, ax
    mov esp, STACK0
    inc dword [SCRATCH + 16]
    mov eax, [SCRATCH + 16]
    cmp eax, ${CHAIN_CHUNKS}
    jae chain_done
    shl eax, 6
    add eax, A32(code)
to_ring3:
    push dword SEL_DATA3
    push dword STACK3
    push dword 0x${(0x202 | (r() & 0x08d5)).toString(16)}
    push dword SEL_CODE3
    push eax
    mov ax, SEL_DATA3
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
${regs}
    iretd
chain_done:
    EXIT
exit_idt: dw 0x7ff
    dd A32(gates)
align 8
gates:
%assign v 0
%rep 256
    dw (A32(stubs) + v * 8) & 0xffff, SEL_CODE32, 0x8e00, (A32(stubs) + v * 8) >> 16
%assign v v + 1
%endrep
    times ${PM_STUBS - 0xf8000} - ($ - $$) db 0
stubs:
%rep 256
    jmp near chain_pm
    times 3 nop
%endrep
code: db ${bytes(CHAIN_CHUNKS * 64 + 64)}
`;
}

/** Ring-3 flavour: pm.inc's frame, then every IDT gate to its own exit stub, then CPL 3 at the random code. */
export function randomPm3ProgramSource(seed: number): string {
  const r = rng(seed);
  const bytes = (n: number) => Array.from({ length: n }, () => r() & 0xff).join(',');
  const regs = ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp'].map((x) => `    mov ${x}, 0x${r().toString(16)}`).join('\n');
  return `; random ring-3 stream, seed 0x${seed.toString(16)}
; diff-memory: 0x0 0x8000
%define NO_FAULT_GATES
%include "rom.inc"
%include "pm.inc"
section pm32
bits 32
pm_main:
    lidt [cs:A32(exit_idt)]
    push dword SEL_DATA3
    push dword STACK3
    push dword 0x${(0x202 | (r() & 0x08d5)).toString(16)}
    push dword SEL_CODE3
    push dword A32(code)
    mov ax, SEL_DATA3
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
${regs}
    iretd
exit_idt: dw 0x7ff
    dd A32(gates)
align 8
gates:
%assign v 0
%rep 256
    dw (A32(stubs) + v * 2) & 0xffff, SEL_CODE32, 0x${'8e00'}, (A32(stubs) + v * 2) >> 16
%assign v v + 1
%endrep
    times ${PM_STUBS - 0xf8000} - ($ - $$) db 0
stubs:
%rep 256
    out 0xf4, al
%endrep
code: db ${bytes(4096)}
`;
}

export function randomProgramSource(seed: number): string {
  const r = rng(seed);
  // RAM starts zeroed on both sides; the random part is the code and the registers.
  const bytes = (n: number) => Array.from({ length: n }, () => r() & 0xff).join(',');
  const regs = ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp'].map((x) => `    mov ${x}, 0x${r().toString(16)}`).join('\n');
  return `; random real-mode stream, seed 0x${seed.toString(16)}
; diff-memory: 0x20000 0x10000
%include "rom.inc"
start:
    lidt [cs:ivt_ptr]            ; the IVT stays in ROM (QEMU steps every REP iteration: no copies)
    mov ax, 0x2000
    mov es, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0xfff0
${regs}
    push word 0x${(r() & 0x08d5).toString(16)}
    popf
    jmp 0xf000:code
ivt_ptr: dw 0x3ff
    dd 0xf0000 + ivt
ivt:
%assign v 0
%rep 256
    dw ${STUB_BASE} + v * 2, 0xf000
%assign v v + 1
%endrep
    times 0x2000 - ($ - $$) db 0
code: db ${bytes(4096)}
    times ${STUB_BASE} - ($ - $$) db 0
%rep 256
    out 0xf4, al
%endrep
`;
}

export interface CrossCheckResult {
  seed: number;
  verdict: 'agree' | 'diverge' | 'inconclusive';
  /** Why a divergence is inconclusive (a known QEMU shortcut). */
  why: string;
  steps: number;
  result: DiffResult;
}

export async function crossCheck(seed: number, makeDut: (image: Uint8Array) => DutSide, steps = 400, mode: CrossMode = 'real'): Promise<CrossCheckResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cpu-xcheck-'));
  try {
    const file = join(dir, `random-${seed.toString(16)}.asm`);
    const source = { real: randomProgramSource, pm3: randomPm3ProgramSource, 'real-chain': randomChainProgramSource, 'pm3-chain': randomPm3ChainProgramSource }[mode];
    writeFileSync(file, source(seed));
    const prog = assembleProgram(file);
    // pm.inc's set-up takes ~100 steps before the random code runs.
    prog.maxSteps = steps + (mode === 'pm3' || mode === 'pm3-chain' ? 120 : 0);
    const r = await runDiff(prog, makeDut, { randomCode: true, skipIoHlt: mode === 'real-chain' || mode === 'pm3-chain' });
    let verdict: CrossCheckResult['verdict'] = r.agree ? 'agree' : 'diverge';
    const d = r.divergence;
    let why = '';
    const chained = mode === 'real-chain' || mode === 'pm3-chain';
    const bv = d ? stubVector(d.boxwood, chained, mode === 'pm3-chain') : -1;
    const qv = d ? stubVector(d.qemu, chained, mode === 'pm3-chain') : -1;
    if (d && bv >= 0 && qv !== bv) {
      const v = bv;
      if (v === 12 || v === 13) why = 'QEMU TCG does not check segment limits or writability on accesses (Boxwood raised #GP/#SS)';
      if (v === 13 && [0, 3, 4, 5].some((k) => (d.before.seg[k].selector & ~3) === 0) && (d.before.cr.cr0 & 1) && !(d.before.eflags & 0x20000)) {
        why = 'QEMU does not fault on the use of a null segment selector';
      }
      // QEMU decodes C6/C7 (MOV Ev, imm) and 8F (POP Ev) without checking ModRM.reg; hardware raises #UD for /1-/7.
      const op = firstOpcode(d.bytes);
      if (v === 6 && op && [0xc6, 0xc7, 0x8f].includes(op.op) && ((op.modrm >> 3) & 7) !== 0) why = `QEMU executes ${op.op.toString(16)} /${(op.modrm >> 3) & 7} instead of raising #UD`;
      // MMX opcodes: QEMU TCG executes them even with mmx=off in CPUID; Boxwood (no MMX yet) raises #UD.
      if (v === 6 && op && op.op === 0x0f && ((op.op2 >= 0x60 && op.op2 <= 0x7f) || (op.op2 >= 0xc2 && op.op2 <= 0xc6) || op.op2 >= 0xd1)) why = `QEMU executes MMX/SSE opcode 0f ${op.op2.toString(16)} without MMX/SSE in CPUID`;
      // FISTTP (DB/DD/DF /1 with memory) is SSE3; QEMU executes it on a model without SSE3.
      if (v === 6 && op && [0xdb, 0xdd, 0xdf].includes(op.op) && op.modrm < 0xc0 && ((op.modrm >> 3) & 7) === 1) why = 'QEMU executes FISTTP (SSE3) without SSE3 in CPUID';
      // LOCK on an instruction that cannot be locked: hardware raises #UD, QEMU mostly ignores the prefix.
      if (v === 6 && op && op.lock && !lockable(op)) why = `QEMU ignores LOCK on ${op.op.toString(16)} /${(op.modrm >> 3) & 7} (hardware: #UD)`;
    }
    if (d && qv === 6 && bv !== 6) {
      const op = firstOpcode(d.bytes);
      // F6/F7 /1 is an undocumented alias of TEST that Intel parts execute; QEMU raises #UD.
      if (op && (op.op === 0xf6 || op.op === 0xf7) && ((op.modrm >> 3) & 7) === 1) why = 'QEMU raises #UD for the TEST alias F6/F7 /1';
      // ICEBP (F1) raises #DB (vector 1) on P6; QEMU 7.2 raises #UD.
      if (op && op.op === 0xf1) why = 'QEMU raises #UD for ICEBP (F1)';
    }
    if (d && d.boxwood.fpu && d.qemu.fpu && (d.boxwood.fpu.fsw & 0x40) && !(d.qemu.fpu.fsw & 0x40)) {
      why = 'QEMU does not detect x87 stack overflow/underflow (Boxwood set SF)';
    }
    if (d && /boxwood shut down/.test(r.report) && !(d.before.cr.cr0 & 1) && (d.before.gpr[4] & 0xffff) < 6) {
      // SDM (PUSH): with SP < 6 in real mode an exception frame crosses the stack limit: #SS, then
      // #DF, then shutdown. QEMU does not check the limit and wraps SP.
      why = 'QEMU wraps a real-mode exception frame pushed at SP < 6 (hardware: #SS, #DF, shutdown)';
    }
    if (d) {
      const op = firstOpcode(d.bytes);
      // RET/RETF imm16 adds the immediate zero-extended (SDM; Bochs); QEMU 7.2 sign-extends it,
      // which shows with a 32-bit stack and an immediate >= 0x8000.
      if (op && (op.op === 0xc2 || op.op === 0xca) && (d.bytes[op.at + 2] & 0x80) && d.qemu.gpr[4] !== d.boxwood.gpr[4] &&
          ((d.qemu.gpr[4] - d.boxwood.gpr[4]) >>> 0) === 0xffff0000) {
        why = 'QEMU sign-extends the RET imm16 operand';
      }
    }
    if (why) verdict = 'inconclusive';
    return { seed, verdict, steps: r.steps, result: r, why };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function firstOpcode(bytes: Uint8Array): { op: number; op2: number; modrm: number; lock: boolean; at: number } | null {
  let i = 0;
  let lock = false;
  while (i < bytes.length && [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3].includes(bytes[i])) lock ||= bytes[i++] === 0xf0;
  if (i + 2 >= bytes.length) return null;
  if (bytes[i] === 0x0f) return { op: 0x0f, op2: bytes[i + 1], modrm: bytes[i + 2], lock, at: i };
  return { op: bytes[i], op2: -1, modrm: bytes[i + 1], lock, at: i };
}

/** Instructions LOCK may prefix (with a memory destination): SDM vol. 2, LOCK. */
function lockable(o: { op: number; op2: number; modrm: number }): boolean {
  const reg = (o.modrm >> 3) & 7;
  if (o.modrm >= 0xc0) return false;
  if (o.op === 0x0f) return [0xab, 0xb3, 0xbb, 0xb0, 0xb1, 0xc0, 0xc1].includes(o.op2) || (o.op2 === 0xba && reg >= 5) || (o.op2 === 0xc7 && reg === 1);
  if ([0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, 0x20, 0x21, 0x28, 0x29, 0x30, 0x31, 0x86, 0x87].includes(o.op)) return true;
  if (o.op >= 0x80 && o.op <= 0x83) return reg !== 7;
  if (o.op === 0xf6 || o.op === 0xf7) return reg === 2 || reg === 3;
  if (o.op === 0xfe || o.op === 0xff) return reg === 0 || reg === 1;
  return false;
}
