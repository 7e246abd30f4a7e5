/**
 * QEMU's isa-debug-exit at port 0xF4: a write of `v` ends the machine with exit code (v << 1) | 1,
 * so a test program can report success or failure without a shutdown path of its own.
 */
import type { IoBus } from '../machine/io-bus';
import type { Device, DeviceState } from '../machine/device';

export class DebugExit implements Device {
  readonly name = 'debug-exit';
  onExit: (code: number) => void = () => {};

  constructor(io: IoBus, port = 0xf4) {
    const exit = (_p: number, v: number) => this.onExit(((v << 1) | 1) >>> 0);
    io.register(port, 1, { out8: exit, out16: exit, out32: exit });
  }

  reset(): void {}

  saveState(): DeviceState {
    return {};
  }

  loadState(_state: DeviceState): void {}
}
