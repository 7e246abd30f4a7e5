import type { PhysicalMemory } from '../machine/memory';
import type { IoBus } from '../machine/io-bus';
import type { VirtualClock } from '../machine/clock';
import type { BiosCpu } from './regs';

/** What the BIOS service modules share: buses, the CPU, and a few helpers. */
export interface BiosEnv {
  readonly mem: PhysicalMemory;
  readonly io: IoBus;
  readonly clock: VirtualClock;
  readonly cpu: BiosCpu;
  log(message: string): void;
  /** Writes into the BIOS ROM (F000 segment) area, bypassing write protection. */
  writeRom(addr: number, data: Uint8Array): void;
}

export function rd8(mem: PhysicalMemory, a: number): number {
  return mem.read8(a);
}
export function rd16(mem: PhysicalMemory, a: number): number {
  return mem.read16(a);
}
export function rd32(mem: PhysicalMemory, a: number): number {
  return mem.read32(a) >>> 0;
}
export function farPtr(mem: PhysicalMemory, a: number): number {
  return ((mem.read16(a + 2) << 4) + mem.read16(a)) >>> 0;
}
