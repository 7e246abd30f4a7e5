/**
 * The contract between the integer core (cpu.ts) and the x87 unit (fpu.ts).
 *
 * The core decodes the ModRM byte and segment/address-size prefixes of an escape opcode (D8-DF),
 * performs the #NM checks (CR0.EM, CR0.TS with MP for WAIT), resolves the memory operand's segment
 * and offset, and calls `Fpu.execute`. The FPU reads and writes its operand only through
 * `FpuMemoryOperand`, whose accessors perform segmentation/paging checks and may throw the CPU's
 * fault (the FPU must therefore update its own state only after all memory reads of an instruction
 * succeed, and the core restarts the instruction after the fault).
 */
export interface FpuMemoryOperand {
  /** Offsets are relative to the operand's effective address (0, 1, 2, ... bytes in). */
  read8(offset: number): number;
  read16(offset: number): number;
  read32(offset: number): number;
  write8(offset: number, value: number): void;
  write16(offset: number, value: number): void;
  write32(offset: number, value: number): void;
  /** The effective offset and segment selector, recorded as the FPU data pointer. */
  readonly offset: number;
  readonly selector: number;
}

export interface FpuHost {
  /** CR0.NE: 1 = native #MF (vector 16), 0 = legacy FERR# to IRQ 13 via `setFerr`. */
  readonly numericErrorNative: boolean;
  /** True in protected mode (not V86): selects the FSTENV/FSAVE layout. */
  readonly protectedMode: boolean;
  /** Operand size of the current instruction: 32 selects the 28/108-byte layouts, 16 the 14/94-byte ones. */
  readonly operandSize32: boolean;
  /** CS selector and offset of the current instruction, recorded as the FPU instruction pointer. */
  readonly instructionSelector: number;
  readonly instructionOffset: number;
  /** Raises a CPU exception (6 for reserved D8-DF encodings, 7 or 16) at the current instruction; throws, never returns. */
  raiseException(vector: number): never;
  /** Drives the FERR# output (wired to IRQ 13 through the chipset when CR0.NE = 0). */
  setFerr(asserted: boolean): void;
  /**
   * Added by the FPU: FCOMI/FCOMIP/FUCOMI/FUCOMIP write ZF, PF and CF and clear OF, SF and AF.
   * Optional only so that work in progress compiles; the FPU throws a wiring error if it is missing.
   */
  setEflagsZPC?(zf: boolean, pf: boolean, cf: boolean): void;
  /** Added by the FPU: FNSTSW AX writes AX (the low 16 bits of EAX; the upper half is kept). */
  setAx?(value: number): void;
  /** Added by the FPU: FCMOVcc reads CF, PF and ZF from the current EFLAGS. */
  getEflags?(): number;
}

export interface FpuUnit {
  reset(): void;
  /** `opcode` is D8-DF, `modrm` the full ModRM byte; `mem` is null when ModRM.mod = 3. */
  execute(opcode: number, modrm: number, mem: FpuMemoryOperand | null): void;
  /** WAIT/FWAIT: raises a pending unmasked exception, if any. */
  wait(): void;
  /** FXSAVE/FXRSTOR 512-byte area (the x87 part; the SSE part is left to a later issue). */
  fxsave(mem: FpuMemoryOperand): void;
  fxrstor(mem: FpuMemoryOperand): void;
  saveState(): Record<string, unknown>;
  loadState(state: Record<string, unknown>): void;
}
