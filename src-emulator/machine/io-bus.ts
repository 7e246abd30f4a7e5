/**
 * The x86 port I/O space (64 Ki ports). Devices register handlers per port; an access of a width
 * the device did not register is split into byte accesses (as the ISA bus would), and a read of a
 * port nobody decodes floats high.
 */
export interface PortHandlers {
  in8?(port: number): number;
  in16?(port: number): number;
  in32?(port: number): number;
  out8?(port: number, value: number): void;
  out16?(port: number, value: number): void;
  out32?(port: number, value: number): void;
}

type In = (port: number) => number;
type Out = (port: number, value: number) => void;

export class IoBus {
  private readonly in8s: (In | undefined)[] = new Array(0x10000);
  private readonly in16s: (In | undefined)[] = new Array(0x10000);
  private readonly in32s: (In | undefined)[] = new Array(0x10000);
  private readonly out8s: (Out | undefined)[] = new Array(0x10000);
  private readonly out16s: (Out | undefined)[] = new Array(0x10000);
  private readonly out32s: (Out | undefined)[] = new Array(0x10000);
  /** Called for accesses to ports nobody registered (diagnostics); `size` in bytes. */
  onUnhandled: ((port: number, size: number, write: boolean, value?: number) => void) | null = null;

  /** Registers `handlers` for ports [port, port+count). Later registrations replace earlier ones. */
  register(port: number, count: number, handlers: PortHandlers): void {
    for (let p = port; p < port + count; p++) {
      if (handlers.in8) this.in8s[p] = handlers.in8.bind(handlers);
      if (handlers.in16) this.in16s[p] = handlers.in16.bind(handlers);
      if (handlers.in32) this.in32s[p] = handlers.in32.bind(handlers);
      if (handlers.out8) this.out8s[p] = handlers.out8.bind(handlers);
      if (handlers.out16) this.out16s[p] = handlers.out16.bind(handlers);
      if (handlers.out32) this.out32s[p] = handlers.out32.bind(handlers);
    }
  }

  unregister(port: number, count: number): void {
    for (let p = port; p < port + count; p++) {
      this.in8s[p] = this.in16s[p] = this.in32s[p] = undefined;
      this.out8s[p] = this.out16s[p] = this.out32s[p] = undefined;
    }
  }

  in8(port: number): number {
    port &= 0xffff;
    const h = this.in8s[port];
    if (h) return h(port) & 0xff;
    this.onUnhandled?.(port, 1, false);
    return 0xff;
  }

  in16(port: number): number {
    port &= 0xffff;
    const h = this.in16s[port];
    if (h) return h(port) & 0xffff;
    return this.in8(port) | (this.in8(port + 1) << 8);
  }

  in32(port: number): number {
    port &= 0xffff;
    const h = this.in32s[port];
    if (h) return h(port) | 0;
    return (this.in16(port) | (this.in16(port + 2) << 16)) | 0;
  }

  out8(port: number, value: number): void {
    port &= 0xffff;
    const h = this.out8s[port];
    if (h) h(port, value & 0xff);
    else this.onUnhandled?.(port, 1, true, value & 0xff);
  }

  out16(port: number, value: number): void {
    port &= 0xffff;
    const h = this.out16s[port];
    if (h) return h(port, value & 0xffff);
    this.out8(port, value);
    this.out8(port + 1, value >>> 8);
  }

  out32(port: number, value: number): void {
    port &= 0xffff;
    const h = this.out32s[port];
    if (h) return h(port, value | 0);
    this.out16(port, value);
    this.out16(port + 2, value >>> 16);
  }
}
