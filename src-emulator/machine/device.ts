/**
 * What every device in `src-emulator/devices/` is: one class, one file. It takes the buses it needs
 * in its constructor, registers its ports/MMIO/IRQ there, and can reset and save/restore itself.
 */
export type StateValue = number | boolean | string | null | Uint8Array | StateValue[] | { [key: string]: StateValue };
export type DeviceState = { [key: string]: StateValue };

export interface Device {
  /** Stable name, used as the section name in saved states ("pic", "pit", "uart0", ...). */
  readonly name: string;
  reset(): void;
  /** A plain, structured-clone-able snapshot of the device, including armed timers' deadlines. */
  saveState(): DeviceState;
  loadState(state: DeviceState): void;
}
