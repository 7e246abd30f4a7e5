/**
 * The lifecycle of one VM. Every change goes through `to()`, which refuses a transition the table
 * does not allow, so the hypervisor can never, say, pause a stopped VM or start a running one.
 */
export const VM_STATES = ['stopped', 'starting', 'running', 'paused', 'saving', 'saved', 'aborted'] as const;
export type VmState = (typeof VM_STATES)[number];

const TRANSITIONS: Record<VmState, readonly VmState[]> = {
  stopped: ['starting'],
  // A guest that cannot boot ends aborted; power off while booting ends stopped.
  starting: ['running', 'aborted', 'stopped'],
  running: ['paused', 'saving', 'stopped', 'aborted'],
  paused: ['running', 'saving', 'stopped', 'aborted'],
  // A failed save goes back to the state the machine was in.
  saving: ['saved', 'running', 'paused', 'aborted'],
  // Restoring a saved state starts the machine; discarding it stops it.
  saved: ['starting', 'stopped'],
  aborted: ['starting', 'stopped'],
};

export class InvalidTransitionError extends Error {
  constructor(
    readonly from: VmState,
    readonly to: VmState,
  ) {
    super(`cannot go from '${from}' to '${to}'`);
    this.name = 'InvalidTransitionError';
  }
}

export function canTransition(from: VmState, to: VmState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** States in which a guest process exists. */
export function isLive(state: VmState): boolean {
  return state === 'starting' || state === 'running' || state === 'paused' || state === 'saving';
}

export class VmLifecycle {
  private current: VmState;
  private readonly listeners: ((state: VmState, previous: VmState) => void)[] = [];

  constructor(initial: VmState = 'stopped') {
    // A process that is gone cannot be live: a VM read from disk starts in a resting state.
    this.current = isLive(initial) ? 'aborted' : initial;
  }

  get state(): VmState {
    return this.current;
  }

  can(to: VmState): boolean {
    return canTransition(this.current, to);
  }

  to(next: VmState): void {
    if (!canTransition(this.current, next)) throw new InvalidTransitionError(this.current, next);
    const previous = this.current;
    this.current = next;
    for (const l of this.listeners) l(next, previous);
  }

  onChange(cb: (state: VmState, previous: VmState) => void): void {
    this.listeners.push(cb);
  }
}
