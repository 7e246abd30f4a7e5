/**
 * System control port A (0x92, "fast A20"): bit 1 drives A20 (ORed with the 8042's A20 line by the
 * machine), a 0 -> 1 transition of bit 0 resets the CPU.
 */
import type { IoBus } from '../machine/io-bus';
import type { Device, DeviceState } from '../machine/device';

export class Port92 implements Device {
  readonly name = 'port92';
  private value = 0;
  onA20: (enabled: boolean) => void = () => {};
  onReset: () => void = () => {};

  constructor(io: IoBus) {
    io.register(0x92, 1, {
      in8: () => this.value,
      out8: (_p, v) => this.write(v),
    });
  }

  get a20(): boolean {
    return (this.value & 2) !== 0;
  }

  private write(v: number): void {
    const old = this.value;
    this.value = v & 0x03;
    if ((old ^ v) & 2) this.onA20((v & 2) !== 0);
    // The reset bit reads back as written; only its rising edge resets.
    if (v & 1 && !(old & 1)) {
      this.value &= ~1;
      this.onReset();
    }
  }

  reset(): void {
    this.value = 0;
  }

  saveState(): DeviceState {
    return { value: this.value };
  }

  loadState(state: DeviceState): void {
    this.value = state.value as number;
  }
}
