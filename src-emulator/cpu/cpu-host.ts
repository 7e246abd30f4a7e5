import type { PhysicalMemory } from '../machine/memory';
import type { IoBus } from '../machine/io-bus';

/**
 * Everything the CPU knows of the machine around it. The CPU reaches memory and ports only through
 * these buses and knows no device.
 */
export interface CpuHost {
  readonly mem: PhysicalMemory;
  readonly io: IoBus;
  /** INTA: called when the CPU takes a maskable interrupt signalled by `cpu.setIntr(true)`. */
  acknowledgeInterrupt(): number;
  /** Virtual time in ns; RDTSC and the APIC timer derive from it. */
  now(): number;
  /** The CPU shut down (triple fault, or HLT with interrupts off and no NMI): the machine decides to reset or stop. */
  shutdown(reason: string): void;
}
