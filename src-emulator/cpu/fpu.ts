import type { FpuHost, FpuMemoryOperand, FpuUnit } from './fpu-host';

/** The x87 FPU of a Pentium Pro class CPU (387+ semantics). See docs/fpu.md. */
export class Fpu implements FpuUnit {
  /** Control word (bit 6 reads as 1 on 387+). */
  cw = 0x037f;
  /** Status word without TOP (TOP lives in `top`). */
  sw = 0;
  top = 0;
  /** 1 = physical register empty. */
  readonly empty = new Uint8Array(8).fill(1);
  /** Physical registers: sign<<15 | exponent, significand high and low 32 bits. */
  readonly se = new Uint16Array(8);
  readonly hi = new Uint32Array(8);
  readonly lo = new Uint32Array(8);
  fip = 0;
  fcs = 0;
  fdp = 0;
  fds = 0;
  fop = 0;

  constructor(private readonly host: FpuHost) {}

  reset(): void {
    this.cw = 0x0040;
    this.sw = 0;
    this.top = 0;
    this.empty.fill(1);
    this.se.fill(0);
    this.hi.fill(0);
    this.lo.fill(0);
    this.fip = this.fcs = this.fdp = this.fds = this.fop = 0;
  }

  execute(opcode: number, modrm: number, mem: FpuMemoryOperand | null): void {
    void opcode;
    void modrm;
    void mem;
    this.host.raiseException(6);
  }

  wait(): void {}

  fxsave(mem: FpuMemoryOperand): void {
    void mem;
  }

  fxrstor(mem: FpuMemoryOperand): void {
    void mem;
  }

  saveState(): Record<string, unknown> {
    return {};
  }

  loadState(state: Record<string, unknown>): void {
    void state;
  }
}
