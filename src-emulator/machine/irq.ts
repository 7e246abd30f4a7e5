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
