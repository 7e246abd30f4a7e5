/**
 * Lock-step differential execution: QEMU (reference, through its gdbstub) and a device under test
 * (Boxwood's Cpu) run the same BIOS image from the reset vector, one instruction at a time, and
 * the architectural state is compared after every instruction. The first divergence stops the run
 * with a report: step, CS:EIP, instruction bytes, both states, the differences and the last steps.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex } from './gdb-client';
import { decodeInsn, type InsnInfo } from './insn-info';
import { QemuSession, readQemuState, readQemuStateFast } from './qemu';
import type { TestProgram } from './program';
import { diffStates, formatState, hex, type CpuState } from './state';

/** The side under test. */
export interface DutSide {
  /** Executes one instruction (or delivers one exception/interrupt, as QEMU's single step does). */
  step(): void;
  state(): CpuState;
  /** Overwrites EFLAGS (used to adopt QEMU's value of architecturally undefined flags). */
  setFlags(value: number): void;
  setReg32(index: number, value: number): void;
  /** Moves EIP (random runs stepping over port I/O). */
  setEip?(value: number): void;
  /** Physical memory read. */
  readPhys(addr: number, length: number): Uint8Array;
  /** Takes QEMU's x87 register values (after a transcendental that agreed within tolerance). */
  adoptFpu?(ref: CpuState, registers: boolean, fswBits: number): void;
  /** Takes QEMU's whole x87 register stack (values, TOP, tags, status word). */
  adoptFpuStack?(ref: CpuState): void;
  /** Exploration after a divergence: takes QEMU's registers (general, EIP, EFLAGS, segments, CRs, x87). */
  adoptState?(ref: CpuState): void;
  /** Adopts QEMU's descriptor-table registers (after a reported reset difference). */
  adoptTables?(ref: CpuState): void;
  /** Set when the CPU asked the machine to shut down (triple fault). */
  shutdownReason: string | null;
}

export interface DiffResult {
  program: string;
  agree: boolean;
  steps: number;
  /** Human-readable divergence report (empty when they agree). */
  report: string;
  /** One line for FINDINGS.md: program, instruction, expected vs got. */
  summary: string;
  /** Notes about adjustments made (e.g. reset EDX adopted). */
  notes: string[];
  /** States at the (last) divergence: before the instruction (QEMU), after on both sides. */
  divergence?: { before: CpuState; qemu: CpuState; boxwood: CpuState; bytes: Uint8Array };
  /** Differences of the reset state (reported; the run continues from QEMU's values where possible). */
  resetDiffs: string[];
  /** QEMU's memory for `DiffOptions.dumpAtExit`. */
  dumps: Uint8Array[];
}

export interface DiffOptions {
  /** Called with every step (tracing). */
  trace?: (step: number, state: CpuState, info: InsnInfo, bytes: Uint8Array) => void;
  /** Run QEMU alone (harness development): no DUT. */
  qemuOnly?: boolean;
  /** Physical ranges of QEMU's memory to return at the program's exit (harness development). */
  dumpAtExit?: { start: number; length: number }[];
  /**
   * Exploration: after a divergence, copy QEMU's registers into Boxwood and go on, reporting up
   * to this many divergences (memory is not copied). 0 (default) stops at the first.
   */
  keepGoing?: number;
  /**
   * Random code: the run ends (as agreeing so far) at the step budget or before port I/O or HLT,
   * instead of failing there.
   */
  randomCode?: boolean;
  /** With `randomCode`: step over port I/O and HLT on both sides (EIP += length) instead of ending. */
  skipIoHlt?: boolean;
  /** Per-step timeout towards QEMU, ms. */
  stepTimeoutMs?: number;
}

/** QEMU iterates REP string instructions one element per step; bounded so a runaway count fails. */
const MAX_REP_ITERATIONS = 1 << 20;

export async function runDiff(prog: TestProgram, makeDut: ((image: Uint8Array) => DutSide) | null, opt: DiffOptions = {}): Promise<DiffResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cpu-diff-run-'));
  const biosPath = join(dir, `${prog.name}.bin`);
  writeFileSync(biosPath, prog.image);
  const notes: string[] = [];
  const history: string[] = [];
  let q: QemuSession | null = null;
  const result = (agree: boolean, steps: number, report: string, summary: string): DiffResult => ({ program: prog.name, agree, steps, report, summary, notes, dumps, resetDiffs, divergence });
  const dumps: Uint8Array[] = [];
  const resetDiffs: string[] = [];
  let divergence: DiffResult['divergence'];
  try {
    q = await QemuSession.start(biosPath);
    const gdb = q.gdb;
    const dut = makeDut && !opt.qemuOnly ? makeDut(prog.image) : null;
    let ref = await readQemuState(gdb);
    if (dut) {
      // EDX at reset holds the CPU signature (family/model/stepping), which differs by design.
      const d0 = dut.state();
      if (d0.gpr[2] !== ref.gpr[2]) {
        notes.push(`reset EDX: qemu=${hex(ref.gpr[2])} boxwood=${hex(d0.gpr[2])} (CPU signature; adopted QEMU's)`);
        dut.setReg32(2, ref.gpr[2]);
      }
      let diffs = diffStates(ref, dut.state(), { flagsMask: 0, system: true, fpu: false });
      if (diffs.length && dut.adoptTables) {
        resetDiffs.push(...diffs);
        dut.adoptTables(ref);
        notes.push(`reset state differs (${diffs.join('; ')}); continued from QEMU's descriptor-table registers`);
        diffs = diffStates(ref, dut.state(), { flagsMask: 0, system: true, fpu: false });
      }
      if (diffs.length) {
        return result(false, 0, `reset state differs:\n${diffs.join('\n')}\n--- qemu\n${formatState(ref)}\n--- boxwood\n${formatState(dut.state())}`, `${prog.name}: reset state: ${diffs[0]}`);
      }
    }
    let fpuCompared = false;
    const earlier: string[] = [];
    let qemuFlagFixes = 0;
    for (let step = 0; step < prog.maxSteps; step++) {
      const lin = (ref.seg[1].base + ref.eip) >>> 0;
      // Without paging the code bytes come from Boxwood's memory (one round trip less per step;
      // the memories are compared at the end anyway); with paging QEMU translates them.
      const bytes = dut && !(ref.cr.cr0 & 0x80000000) ? dut.readPhys(lin, 16) : await readCode(q, lin);
      const code32 = (ref.seg[1].flags & 0x00400000) !== 0 && (ref.cr.cr0 & 1) !== 0 && (ref.eflags & 0x20000) === 0;
      const info = decodeInsn(bytes, code32, ref.gpr[1]);
      opt.trace?.(step, ref, info, bytes);
      const where = `${hex(ref.seg[1].selector, 4)}:${hex(ref.eip)}`;
      history.push(`#${step} ${where} ${bytesToHex(bytes.subarray(0, 8))}`);
      if (history.length > 12) history.shift();

      if (opt.randomCode && info.repString && (info.addr32 ? ref.gpr[1] : ref.gpr[1] & 0xffff) > 4096) {
        notes.push(`stopped before a REP string instruction with a count above 4096 at ${where}`);
        return result(earlier.length === 0, step, earlier.join('\n'), earlier.join('\n'));
      }
      if (opt.randomCode && opt.skipIoHlt && info.isIoOrHlt && !info.isExit && dut) {
        // Neither side executes it: QEMU's devices are not Boxwood's, and HLT would wait forever.
        const eip = (ref.eip + info.ioLength) >>> 0;
        const bytesLE = new Uint8Array([eip & 0xff, (eip >> 8) & 0xff, (eip >> 16) & 0xff, eip >>> 24]);
        await gdb.writeRegister('eip', bytesLE);
        dut.setEip?.(eip);
        ref = await readQemuState(gdb);
        continue;
      }
      if (opt.randomCode && info.isIoOrHlt && !info.isExit) {
        notes.push(`stopped before port I/O or HLT at ${where}`);
        return result(true, step, '', '');
      }
      if (info.isExit) {
        if (qemuFlagFixes) notes.push(`${qemuFlagFixes}x FCOMI/FUCOMI: OF/SF/AF cleared in QEMU's EFLAGS as the SDM specifies`);
        if (opt.dumpAtExit?.length) {
          await gdb.command('Qqemu.PhyMemMode:1');
          for (const r of opt.dumpAtExit) dumps.push(await gdb.readMemory(r.start, r.length));
          await gdb.command('Qqemu.PhyMemMode:0');
        }
        if (!dut) return result(true, step, '', '');
        for (const r of prog.memory) {
          await gdb.command('Qqemu.PhyMemMode:1');
          const a = await gdb.readMemory(r.start, r.length);
          await gdb.command('Qqemu.PhyMemMode:0');
          const b = dut.readPhys(r.start, r.length);
          for (let k = 0; k < r.length; k++) {
            if ((a[k] ^ b[k]) & ~(prog.memoryIgnore.get(r.start + k) ?? 0)) {
              const at = r.start + k;
              const ctx = (m: Uint8Array) => bytesToHex(m.subarray(k & ~15, (k & ~15) + 16));
              const rep = `memory differs at physical ${hex(at)} after ${step} steps: qemu=${hex(a[k], 2)} boxwood=${hex(b[k], 2)}\n` +
                `  qemu    ${hex(at & ~15)}: ${ctx(a)}\n  boxwood ${hex(at & ~15)}: ${ctx(b)}`;
              return result(false, step, [...earlier, rep].join('\n\n'), [...earlier, `${prog.name}: final memory at ${hex(at)}: expected ${hex(a[k], 2)}, got ${hex(b[k], 2)}`].join('\n'));
            }
          }
        }
        if (earlier.length) return result(false, step, earlier.join('\n'), earlier.join('\n'));
        return result(true, step, '', '');
      }
      if (info.isFninit) fpuCompared = true;

      const before = ref;
      let qemuGone: string | null = null;
      try {
        await gdb.step(opt.stepTimeoutMs ?? 5000);
        if (info.repString) {
          for (let n = 0; n < MAX_REP_ITERATIONS; n++) {
            const r = await gdb.readRegisters();
            const eip = r.get('eip')!;
            const cur = eip[0] | (eip[1] << 8) | (eip[2] << 16) | (eip[3] << 24);
            if (cur >>> 0 !== before.eip) break;
            await gdb.step(opt.stepTimeoutMs ?? 5000);
          }
        }
        ref = info.plain && step % 64 !== 0 ? await readQemuStateFast(gdb, before) : await readQemuState(gdb);
        // A plain instruction that faulted into another code or stack segment, or changed mode:
        // read everything after all.
        if (info.plain && (ref.seg[1].selector !== before.seg[1].selector || ref.seg[2].selector !== before.seg[2].selector ||
            ((ref.eflags ^ before.eflags) & 0x20000) || ref.cr.cr0 !== before.cr.cr0 || ref.cr.cr2 !== before.cr.cr2)) {
          ref = await readQemuState(gdb);
        }
        if (info.qemuFlagsFix && (ref.eflags & info.qemuFlagsFix)) {
          ref.eflags &= ~info.qemuFlagsFix;
          const v = ref.eflags;
          await gdb.writeRegister('eflags', new Uint8Array([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff]));
          qemuFlagFixes++;
        }
        if (info.qemuFcwSet && ref.fpu && (ref.fpu.fcw & info.qemuFcwSet) !== info.qemuFcwSet) {
          ref.fpu.fcw |= info.qemuFcwSet;
          const v = ref.fpu.fcw;
          await gdb.writeRegister('fctrl', new Uint8Array([v & 0xff, (v >> 8) & 0xff, 0, 0]));
        }
        if (info.qemuFswClear && ref.fpu && (ref.fpu.fsw & info.qemuFswClear)) {
          ref.fpu.fsw &= ~info.qemuFswClear;
          const v = ref.fpu.fsw;
          await gdb.writeRegister('fstat', new Uint8Array([v & 0xff, (v >> 8) & 0xff, 0, 0]));
        }
        const fixed = await fixQemuRsvdErrorCode(q, ref);
        if (fixed) notes.push(`step ${step}: ${fixed}`);
      } catch (e) {
        if (!gdb.isClosed) throw e;
        // QEMU leaves on shutdown (triple fault) with -no-reboot.
        qemuGone = String(e);
      }
      if (!dut) {
        if (qemuGone) return result(false, step, `QEMU exited at step ${step} (${where}): ${qemuGone}`, `${prog.name}: QEMU exited at ${where}`);
        continue;
      }
      dut.step();
      if (info.repString) {
        for (let n = 0; n < MAX_REP_ITERATIONS && dut.state().eip === before.eip && dut.state().seg[1].selector === before.seg[1].selector; n++) dut.step();
      }
      if (qemuGone) {
        if (dut.shutdownReason) return result(true, step, '', '');
        return result(false, step, `QEMU shut down (triple fault) at step ${step} (${where}); Boxwood did not`, `${prog.name}: ${where} ${bytesToHex(bytes.subarray(0, 6))}: expected shutdown, got none`);
      }
      const got = dut.state();
      // QEMU 7.2 stores the result (and pops) even when the x87 exception it raises is unmasked;
      // hardware leaves the registers alone. When QEMU's ES goes 0 -> 1, only the exception bits
      // are compared and Boxwood takes QEMU's register stack, so the run stays in step.
      const unmaskedX87 = fpuCompared && !!before.fpu && !!ref.fpu && !(before.fpu.fsw & 0x80) && !!(ref.fpu.fsw & 0x80);
      const diffs = diffStates(ref, got, { flagsMask: info.flagsMask, system: true, fpu: fpuCompared, fpuUlps: info.fpuUlps, fswMask: info.fswMask, fpuExceptionOnly: unmaskedX87 });
      if (dut.shutdownReason) diffs.unshift(`boxwood shut down: ${dut.shutdownReason}`);
      if (diffs.length) {
        const report = [
          `${prog.name}: divergence after step ${step} at ${where} (linear ${hex(lin)}) bytes ${bytesToHex(bytes.subarray(0, 12))} [${info.what}]`,
          `undefined-flags mask ${hex(info.flagsMask, 4)}`,
          ...diffs.map((x) => `  ${x}`),
          '--- state before the instruction (qemu)', formatState(before),
          '--- qemu after', formatState(ref),
          '--- boxwood after', formatState(got),
          '--- last steps', ...history,
        ].join('\n');
        const summary = `${prog.name}: ${where} ${bytesToHex(bytes.subarray(0, 6))}: ${diffs.slice(0, 3).join('; ')}`;
        divergence = { before, qemu: ref, boxwood: got, bytes };
        if (opt.keepGoing && earlier.length < opt.keepGoing && dut.adoptState) {
          earlier.push(summary);
          dut.adoptState(ref);
          continue;
        }
        return result(false, step, [...earlier, report].join('\n\n'), [...earlier, summary].join('\n'));
      }
      if (unmaskedX87) dut.adoptFpuStack?.(ref);
      else if (fpuCompared) dut.adoptFpu?.(ref, info.fpuUlps > 0, info.fswMask | 0x0002);
      if (info.flagsMask && ((ref.eflags ^ got.eflags) & info.flagsMask)) {
        dut.setFlags((got.eflags & ~info.flagsMask) | (ref.eflags & info.flagsMask));
      }
    }
    if (opt.randomCode) return result(earlier.length === 0, prog.maxSteps, earlier.join('\n'), earlier.join('\n'));
    return result(false, prog.maxSteps, `step budget of ${prog.maxSteps} exhausted before the program's EXIT`, `${prog.name}: no EXIT within ${prog.maxSteps} steps`);
  } finally {
    q?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Instruction bytes at a linear address (shorter near an unmapped page). */
async function readCode(q: QemuSession, lin: number): Promise<Uint8Array> {
  for (let n = 16; n > 0; n >>= 1) {
    try {
      return await q.gdb.readMemory(lin, n);
    } catch {
      /* partially unmapped: try fewer bytes */
    }
  }
  return new Uint8Array(0);
}

/**
 * QEMU 7.x reports a reserved-bit page fault with error code RSVD but P=0; the SDM (4.7) and
 * hardware set P=1 there (the translation exists, its entry is malformed). When QEMU has just
 * entered the #PF handler with such an error code on its stack, the reference is corrected to
 * what hardware pushes, so the comparison holds Boxwood to the hardware behaviour.
 */
async function fixQemuRsvdErrorCode(q: QemuSession, s: CpuState): Promise<string | null> {
  if (!(s.cr.cr0 & 0x80000000) || !s.idtr || s.idtr.limit < 14 * 8 + 7) return null;
  const gate = await q.gdb.readMemory(s.idtr.base + 14 * 8, 8);
  const off = (gate[0] | (gate[1] << 8) | (gate[6] << 16) | (gate[7] << 24)) >>> 0;
  const sel = gate[2] | (gate[3] << 8);
  if (s.eip !== off || (sel & ~3) !== (s.seg[1].selector & ~3)) return null;
  const sp = (s.seg[2].base + s.gpr[4]) >>> 0;
  const e = await q.gdb.readMemory(sp, 4);
  const err = e[0] | (e[1] << 8) | (e[2] << 16) | (e[3] << 24);
  if ((err & 8) === 0 || (err & 1) !== 0) return null;
  const fixed = err | 1;
  await q.gdb.writeMemory(sp, new Uint8Array([fixed & 0xff, (fixed >> 8) & 0xff, (fixed >> 16) & 0xff, (fixed >>> 24) & 0xff]));
  return `QEMU's #PF error code ${hex(err, 2)} (RSVD without P) corrected to ${hex(fixed, 2)} as hardware pushes`;
}
