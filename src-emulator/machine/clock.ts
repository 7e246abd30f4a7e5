/**
 * Virtual time. Devices never use setTimeout: they arm timers on this clock, and the machine's run
 * loop runs the CPU up to the next deadline, then fires what is due.
 *
 * Time is in nanoseconds (a float; 2^53 ns is 104 days). In deterministic mode time is derived from
 * the count of retired instructions only, so the same inputs give the same run.
 */
export type TimerCallback = (now: number) => void;

export class Timer {
  /** Absolute deadline in ns, or Infinity when disarmed. */
  deadline = Infinity;
  constructor(
    private readonly clock: VirtualClock,
    readonly name: string,
    readonly callback: TimerCallback,
  ) {}
  /** Fire at absolute virtual time `deadlineNs`. */
  armAt(deadlineNs: number): void {
    this.deadline = deadlineNs;
    if (deadlineNs < this.clock.batchEnd) this.clock.onDeadlineInBatch();
    this.clock.timersChanged();
  }
  /** Fire `delayNs` from now. */
  armIn(delayNs: number): void {
    this.armAt(this.clock.now() + delayNs);
  }
  cancel(): void {
    this.deadline = Infinity;
    this.clock.timersChanged();
  }
  get armed(): boolean {
    return this.deadline !== Infinity;
  }
}

export class VirtualClock {
  private readonly timers: Timer[] = [];
  private cachedNext = Infinity;
  private dirty = false;
  /** Current virtual time in ns; advanced by the machine's run loop via `advanceTo`. */
  private nowNs = 0;

  now(): number {
    if (this.source !== null) {
      // The source is the live time (host time, or retired instructions); never let it run backward.
      const t = this.source();
      if (t > this.nowNs) this.nowNs = t;
    }
    return this.nowNs;
  }

  /** Where time comes from between `advanceTo` calls; null = only `advanceTo` moves time (unit tests). */
  private source: (() => number) | null = null;

  /** Installs the machine's time source (realtime or instruction-count based). */
  setSource(source: (() => number) | null): void {
    this.source = source;
  }

  /** Timers are created once per device at construction and armed/cancelled as needed. */
  createTimer(name: string, callback: TimerCallback): Timer {
    const t = new Timer(this, name, callback);
    this.timers.push(t);
    return t;
  }

  /**
   * Virtual time at which the CPU batch now running ends (-Infinity outside a batch). A timer armed
   * before it (a device reacting to a port write mid-batch) would otherwise fire only when the batch
   * ends, up to a whole batch late; the machine sets `onDeadlineInBatch` to end the batch early.
   */
  batchEnd = -Infinity;
  onDeadlineInBatch: () => void = () => {};

  timersChanged(): void {
    this.dirty = true;
  }

  /** Earliest armed deadline (Infinity when none). */
  nextDeadline(): number {
    if (this.dirty) {
      let next = Infinity;
      for (const t of this.timers) if (t.deadline < next) next = t.deadline;
      this.cachedNext = next;
      this.dirty = false;
    }
    return this.cachedNext;
  }

  /** Moves time forward (never backward) and fires every timer whose deadline has passed, in deadline order. */
  advanceTo(ns: number): void {
    if (ns > this.nowNs) this.nowNs = ns;
    for (let guard = 0; guard < 10000; guard++) {
      const next = this.nextDeadline();
      if (next > this.nowNs) return;
      const t = this.timers.find((x) => x.deadline === next)!;
      t.deadline = Infinity;
      this.dirty = true;
      t.callback(this.nowNs);
    }
  }

  /** Deadlines of all armed timers by name, for saved states. */
  saveState(): Record<string, number> {
    const out: Record<string, number> = { now: this.nowNs };
    for (const t of this.timers) if (t.armed) out[`timer:${t.name}`] = t.deadline;
    return out;
  }

  loadState(state: Record<string, number>): void {
    this.nowNs = state.now ?? 0;
    for (const t of this.timers) t.deadline = state[`timer:${t.name}`] ?? Infinity;
    this.dirty = true;
  }
}
