/**
 * Cross-checks random real-mode code against QEMU with the differential harness: each stream is
 * wrapped in a BIOS image (random registers and data, an IVT whose every vector leads to its own
 * exit stub), then both run in lock-step until an exception reaches a stub, port I/O or HLT comes
 * up (QEMU's devices are not Boxwood's), or the step budget ends. Undefined flags are masked as
 * in cpu-diff. A divergence where Boxwood raises #GP/#SS and QEMU does not is classed as
 * inconclusive: QEMU TCG does not check segment limits.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleProgram } from '../cpu-diff/program';
import { runDiff, type DiffResult, type DutSide } from '../cpu-diff/harness';
import { rng } from './fuzz-machine';

export const STUB_BASE = 0x3000;

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

export async function crossCheck(seed: number, makeDut: (image: Uint8Array) => DutSide, steps = 400): Promise<CrossCheckResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cpu-xcheck-'));
  try {
    const file = join(dir, `random-${seed.toString(16)}.asm`);
    writeFileSync(file, randomProgramSource(seed));
    const prog = assembleProgram(file);
    prog.maxSteps = steps;
    const r = await runDiff(prog, makeDut, { randomCode: true });
    let verdict: CrossCheckResult['verdict'] = r.agree ? 'agree' : 'diverge';
    const d = r.divergence;
    let why = '';
    if (d && d.boxwood.seg[1].selector === 0xf000 && d.qemu.eip !== d.boxwood.eip && d.boxwood.eip >= STUB_BASE) {
      const v = (d.boxwood.eip - STUB_BASE) / 2;
      if (v === 12 || v === 13) why = 'QEMU TCG does not check segment limits (Boxwood raised #GP/#SS)';
      // QEMU decodes C6/C7 (MOV Ev, imm) and 8F (POP Ev) without checking ModRM.reg; hardware raises #UD for /1-/7.
      const op = firstOpcode(d.bytes);
      if (v === 6 && op && [0xc6, 0xc7, 0x8f].includes(op.op) && ((op.modrm >> 3) & 7) !== 0) why = `QEMU executes ${op.op.toString(16)} /${(op.modrm >> 3) & 7} instead of raising #UD`;
      // MMX opcodes: QEMU TCG executes them even with mmx=off in CPUID; Boxwood (no MMX yet) raises #UD.
      if (v === 6 && op && op.op === 0x0f && ((op.op2 >= 0x60 && op.op2 <= 0x7f) || op.op2 >= 0xd1)) why = `QEMU executes MMX opcode 0f ${op.op2.toString(16)} without MMX in CPUID`;
      // LOCK on an instruction that cannot be locked: hardware raises #UD, QEMU mostly ignores the prefix.
      if (v === 6 && op && op.lock && !lockable(op)) why = `QEMU ignores LOCK on ${op.op.toString(16)} /${(op.modrm >> 3) & 7} (hardware: #UD)`;
    }
    if (d && d.qemu.seg[1].selector === 0xf000 && d.qemu.eip === STUB_BASE + 12 && d.boxwood.eip !== d.qemu.eip) {
      const op = firstOpcode(d.bytes);
      // F6/F7 /1 is an undocumented alias of TEST that Intel parts execute; QEMU raises #UD.
      if (op && (op.op === 0xf6 || op.op === 0xf7) && ((op.modrm >> 3) & 7) === 1) why = 'QEMU raises #UD for the TEST alias F6/F7 /1';
      // ICEBP (F1) raises #DB (vector 1) on P6; QEMU 7.2 raises #UD.
      if (op && op.op === 0xf1) why = 'QEMU raises #UD for ICEBP (F1)';
    }
    if (why) verdict = 'inconclusive';
    return { seed, verdict, steps: r.steps, result: r, why };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function firstOpcode(bytes: Uint8Array): { op: number; op2: number; modrm: number; lock: boolean } | null {
  let i = 0;
  let lock = false;
  while (i < bytes.length && [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3].includes(bytes[i])) lock ||= bytes[i++] === 0xf0;
  if (i + 2 >= bytes.length) return null;
  if (bytes[i] === 0x0f) return { op: 0x0f, op2: bytes[i + 1], modrm: bytes[i + 2], lock };
  return { op: bytes[i], op2: -1, modrm: bytes[i + 1], lock };
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
