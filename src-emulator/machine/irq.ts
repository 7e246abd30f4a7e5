/**
 * Interrupt wiring. Devices hold an `IrqLine` and only raise or lower it; the machine connects each
 * ISA line to every `IrqSink` (the 8259 pair and the I/O APIC), the way the board does.
 */
export interface IrqSink {
  setIrq(line: number, level: boolean): void;
}

export interface IrqLine {
  readonly line: number;
  raise(): void;
  lower(): void;
  /** Edge for edge-triggered ISA devices: raise then lower. */
  pulse(): void;
}

export class IrqRouter {
  private readonly sinks: IrqSink[] = [];
  private readonly levels = new Uint8Array(24);

  addSink(sink: IrqSink): void {
    this.sinks.push(sink);
  }

  set(line: number, level: boolean): void {
    this.levels[line] = level ? 1 : 0;
    for (const s of this.sinks) s.setIrq(line, level);
  }

  level(line: number): boolean {
    return this.levels[line] !== 0;
  }

  private readonly sourceMasks = new Uint32Array(24);
  private readonly sourceCounts = new Uint8Array(24);

  /**
   * A line for one of several devices sharing ISA/PCI line `n` (COM1 and COM3 on IRQ 4, PCI functions
   * on one PIRQ): the line is asserted while any of its sources is (wire-OR).
   */
  sharedLine(n: number): IrqLine {
    if (this.sourceCounts[n] >= 32) throw new Error(`irq: more than 32 devices share line ${n}`);
    const bit = (1 << this.sourceCounts[n]++) >>> 0;
    const update = (level: boolean) => {
      const before = this.sourceMasks[n];
      const after = level ? before | bit : before & ~bit;
      this.sourceMasks[n] = after;
      if ((before !== 0) !== (after !== 0) || (level && !this.level(n))) this.set(n, after !== 0);
    };
    return {
      line: n,
      raise: () => update(true),
      lower: () => update(false),
      pulse: () => {
        update(true);
        update(false);
      },
    };
  }

  line(n: number): IrqLine {
    return {
      line: n,
      raise: () => this.set(n, true),
      lower: () => this.set(n, false),
      pulse: () => {
        this.set(n, true);
        this.set(n, false);
      },
    };
  }
}

/**
 * What the CPU sees of the interrupt controller: the INTR pin is pushed to the CPU with
 * `cpu.setIntr(level)`, and when the CPU takes the interrupt it asks for the vector.
 */
export interface InterruptAcknowledge {
  /** INTA cycle: returns the vector (0-255) and updates the controller's in-service state. */
  acknowledge(): number;
}
