/**
 * The register view a BIOS service handler works on. The trapping stub has pushed AX and DX
 * (SS:SP+2 and SS:SP) and the INT frame (IP, CS, FLAGS at SS:SP+4..+8); the handler reads and
 * writes AX/DX and the returned FLAGS through that stack frame and every other register directly
 * through the CPU.
 */
import type { PhysicalMemory } from '../machine/memory';

/** The part of src-emulator/cpu/cpu.ts the BIOS uses. */
export interface BiosCpu {
  getReg32(i: number): number;
  setReg32(i: number, v: number): void;
  getReg16(i: number): number;
  setReg16(i: number, v: number): void;
  getReg8(i: number): number;
  setReg8(i: number, v: number): void;
  getFlags(): number;
  setFlags(v: number): void;
  getSegSelector(s: number): number;
  getSegBase(s: number): number;
  loadSegmentReal(s: number, selector: number): void;
  getCr(n: number): number;
}

export const Seg = { ES: 0, CS: 1, SS: 2, DS: 3, FS: 4, GS: 5 } as const;
export const R16 = { AX: 0, CX: 1, DX: 2, BX: 3, SP: 4, BP: 5, SI: 6, DI: 7 } as const;

export const FLAG_CF = 0x0001;
export const FLAG_ZF = 0x0040;
export const FLAG_IF = 0x0200;

export class Regs {
  private readonly frame: number;

  constructor(
    readonly cpu: BiosCpu,
    readonly mem: PhysicalMemory,
  ) {
    const sp = cpu.getReg16(R16.SP);
    this.ssBase = cpu.getSegBase(Seg.SS);
    this.sp = sp;
    this.frame = sp;
  }
  readonly ssBase: number;
  readonly sp: number;

  private stackAddr(off: number): number {
    return (this.ssBase + ((this.frame + off) & 0xffff)) >>> 0;
  }

  get ax(): number {
    return this.mem.read16(this.stackAddr(2));
  }
  set ax(v: number) {
    this.mem.write16(this.stackAddr(2), v & 0xffff);
  }
  get dx(): number {
    return this.mem.read16(this.stackAddr(0));
  }
  set dx(v: number) {
    this.mem.write16(this.stackAddr(0), v & 0xffff);
  }
  get al(): number {
    return this.ax & 0xff;
  }
  set al(v: number) {
    this.ax = (this.ax & 0xff00) | (v & 0xff);
  }
  get ah(): number {
    return this.ax >> 8;
  }
  set ah(v: number) {
    this.ax = (this.ax & 0xff) | ((v & 0xff) << 8);
  }
  get dl(): number {
    return this.dx & 0xff;
  }
  set dl(v: number) {
    this.dx = (this.dx & 0xff00) | (v & 0xff);
  }
  get dh(): number {
    return this.dx >> 8;
  }
  set dh(v: number) {
    this.dx = (this.dx & 0xff) | ((v & 0xff) << 8);
  }
  get eax(): number {
    return ((this.cpu.getReg32(R16.AX) & 0xffff0000) | this.ax) >>> 0;
  }
  set eax(v: number) {
    // Only the high half lives in the CPU register now; the stub pops the low half off the stack.
    this.cpu.setReg32(R16.AX, ((v & 0xffff0000) | (this.cpu.getReg32(R16.AX) & 0xffff)) >>> 0);
    this.ax = v & 0xffff;
  }
  get edx(): number {
    return ((this.cpu.getReg32(R16.DX) & 0xffff0000) | this.dx) >>> 0;
  }
  set edx(v: number) {
    // DX still holds the trap port the stub reads its status from: keep the low half.
    this.cpu.setReg32(R16.DX, ((v & 0xffff0000) | (this.cpu.getReg32(R16.DX) & 0xffff)) >>> 0);
    this.dx = v & 0xffff;
  }

  private g16(i: number): number {
    return this.cpu.getReg16(i);
  }
  private s16(i: number, v: number): void {
    this.cpu.setReg16(i, v & 0xffff);
  }
  get bx(): number {
    return this.g16(R16.BX);
  }
  set bx(v: number) {
    this.s16(R16.BX, v);
  }
  get cx(): number {
    return this.g16(R16.CX);
  }
  set cx(v: number) {
    this.s16(R16.CX, v);
  }
  get si(): number {
    return this.g16(R16.SI);
  }
  set si(v: number) {
    this.s16(R16.SI, v);
  }
  get di(): number {
    return this.g16(R16.DI);
  }
  set di(v: number) {
    this.s16(R16.DI, v);
  }
  get bp(): number {
    return this.g16(R16.BP);
  }
  set bp(v: number) {
    this.s16(R16.BP, v);
  }
  get bl(): number {
    return this.bx & 0xff;
  }
  set bl(v: number) {
    this.bx = (this.bx & 0xff00) | (v & 0xff);
  }
  get bh(): number {
    return this.bx >> 8;
  }
  set bh(v: number) {
    this.bx = (this.bx & 0xff) | ((v & 0xff) << 8);
  }
  get cl(): number {
    return this.cx & 0xff;
  }
  set cl(v: number) {
    this.cx = (this.cx & 0xff00) | (v & 0xff);
  }
  get ch(): number {
    return this.cx >> 8;
  }
  set ch(v: number) {
    this.cx = (this.cx & 0xff) | ((v & 0xff) << 8);
  }
  get ebx(): number {
    return this.cpu.getReg32(R16.BX) >>> 0;
  }
  set ebx(v: number) {
    this.cpu.setReg32(R16.BX, v);
  }
  get ecx(): number {
    return this.cpu.getReg32(R16.CX) >>> 0;
  }
  set ecx(v: number) {
    this.cpu.setReg32(R16.CX, v);
  }
  get esi(): number {
    return this.cpu.getReg32(R16.SI) >>> 0;
  }
  get edi(): number {
    return this.cpu.getReg32(R16.DI) >>> 0;
  }
  set edi(v: number) {
    this.cpu.setReg32(R16.DI, v);
  }

  get es(): number {
    return this.cpu.getSegSelector(Seg.ES);
  }
  set es(v: number) {
    this.cpu.loadSegmentReal(Seg.ES, v);
  }
  get ds(): number {
    return this.cpu.getSegSelector(Seg.DS);
  }
  /** Linear address of ES:off / DS:off (real mode). */
  esAddr(off: number): number {
    return (this.cpu.getSegBase(Seg.ES) + (off & 0xffff)) >>> 0;
  }
  dsAddr(off: number): number {
    return (this.cpu.getSegBase(Seg.DS) + (off & 0xffff)) >>> 0;
  }

  /** The FLAGS image the final IRET restores. */
  get flags(): number {
    return this.mem.read16(this.stackAddr(8));
  }
  set flags(v: number) {
    this.mem.write16(this.stackAddr(8), v & 0xffff);
  }
  set cf(on: boolean) {
    this.flags = on ? this.flags | FLAG_CF : this.flags & ~FLAG_CF;
  }
  get cf(): boolean {
    return (this.flags & FLAG_CF) !== 0;
  }
  set zf(on: boolean) {
    this.flags = on ? this.flags | FLAG_ZF : this.flags & ~FLAG_ZF;
  }
  /** Caller's return CS:IP. */
  get returnCs(): number {
    return this.mem.read16(this.stackAddr(6));
  }
  get returnIp(): number {
    return this.mem.read16(this.stackAddr(4));
  }
  /** Success: AH = 0, CF clear. */
  ok(): void {
    this.ah = 0;
    this.cf = false;
  }
  /** Failure: AH = status, CF set. */
  fail(status: number): void {
    this.ah = status;
    this.cf = true;
  }
}
