/**
 * A PC (i440FX/PIIX3 class) assembled from a plain `MachineConfig`.
 *
 * Memory map: RAM from 0 (up to 3.5 GiB, below the PCI hole at 0xE0000000); the legacy VGA window
 * 0xA0000-0xBFFFF is left unmapped for the VGA device; 0xC0000-0xFFFFF is ROM/shadow RAM under the
 * i440FX PAM registers; the BIOS image is also aliased at the top of 4 GiB; the I/O APIC sits at
 * 0xFEC00000 and the local APIC at 0xFEE00000.
 *
 * Interrupts: ISA lines go through the IrqRouter to the 8259 pair and the I/O APIC; the PIC's INTR
 * goes to the local APIC's LINT0 (virtual wire, ExtINT) and from there to `cpu.setIntr`.
 *
 * Time: `clock` is virtual. Realtime mode follows host time while running; deterministic mode derives
 * time from retired instructions only. The run loop runs the CPU in slices up to the next timer
 * deadline and yields to the event loop every few milliseconds of host time.
 */
import { PhysicalMemory, PAGE_ROM, PAGE_UNMAPPED, type MmioHandler } from './memory';
import { IoBus } from './io-bus';
import { IrqRouter } from './irq';
import { VirtualClock } from './clock';
import type { Device, DeviceState } from './device';
import type { MachineConfig } from './config';
import type { CpuHost } from '../cpu/cpu-host';

/** The planned Cpu API (src-emulator/cpu/cpu.ts); the subset the machine uses. */
export interface MachineCpu {
  reset(): void;
  run(budget: number): number;
  halted: boolean;
  setIntr(level: boolean): void;
  raiseNmi(): void;
  a20Mask: number;
  instructionsRetired: number;
  saveState(): unknown;
  loadState(state: unknown): void;
  /** Optional: leave `run` at the next instruction boundary (reset/exit requested by a device). */
  requestExit?(): void;
}

/** What the display engineer's VGA device offers to the app (see devices/vga.ts). */
export interface MachineDisplay {
  /** Rows joined by \n when in a text mode, else null. */
  getTextScreen(): string | null;
  renderRgba(): { width: number; height: number; data: Uint8ClampedArray };
}

export interface MachineOptions {
  /** Diagnostics (unhandled ports, triple faults, ...). Default: none. */
  log?: (message: string) => void;
  /** Wall-clock date the RTC starts from (default: host time at creation). */
  startDate?: Date;
  /** Deterministic mode only: virtual ns per retired instruction (default 10, i.e. 100 MIPS). */
  nsPerInstruction?: number;
  /** Skip installing firmware (unit tests that put their own code at the reset vector). */
  noFirmware?: boolean;
  /** Supply the CPU (tests); default: `new Cpu(host)` from src-emulator/cpu/cpu.ts. */
  cpuFactory?: (host: CpuHost) => MachineCpu;
}

export interface MachineEvents {
  serial: (port: number, bytes: Uint8Array) => void;
  shutdown: (reason: string) => void;
  poweroff: () => void;
  reset: () => void;
  log: (message: string) => void;
}

export type MachineRunState = 'paused' | 'running' | 'off';

/** Why `runSlice` returned. `waitMs` (halted in realtime mode): host ms until the next timer. */
export interface SliceResult {
  reason: 'slice' | 'halted' | 'idle' | 'off';
  waitMs: number;
}

export interface KeyboardInput {
  /** Scancodes in set 1 (XT) as a host keyboard produces them, e.g. [0x1e, 0x9e] for 'a'. */
  sendScancodes(bytes: ArrayLike<number>): void;
}
export interface MouseInput {
  /** Relative motion (dy > 0 = down on screen), buttons bit 0 left, 1 right, 2 middle; wheel > 0 = down. */
  move(dx: number, dy: number, buttons: number, wheel?: number): void;
}

export const PCI_HOLE_START = 0xe0000000;
export const BIOS_HIGH_END = 0x1_0000_0000;

export class Machine {
  readonly config: MachineConfig;
  readonly mem: PhysicalMemory;
  readonly io: IoBus;
  readonly clock: VirtualClock;
  readonly irq: IrqRouter;
  cpu!: MachineCpu;
  /** Every device, in construction order; the machine resets and saves them all. */
  readonly devices: Device[] = [];
  /** Set by the VGA device's construction line. */
  display: MachineDisplay | null = null;
  readonly keyboard: KeyboardInput;
  readonly mouse: MouseInput;
  /** Set when the guest wrote to isa-debug-exit (port 0xF4): (value << 1) | 1, as QEMU's. */
  exitCode: number | null = null;
  state: MachineRunState = 'paused';

  private readonly listeners: { [K in keyof MachineEvents]: MachineEvents[K][] } = {
    serial: [],
    shutdown: [],
    poweroff: [],
    reset: [],
    log: [],
  };
  private readonly logFn: (message: string) => void;
  private biosImage: Uint8Array | null = null;
  private biosHigh: MmioHandler | null = null;
  private readonly nsPerInstruction: number;
  // Time bookkeeping (see installTimeSource).
  private timeBase = 0;
  private instrBase = 0;
  private hostBase = 0;
  private pendingReset = false;
  private loopPromise: Promise<void> | null = null;

  /** Builds the machine synchronously without firmware; `create` is the usual entry point. */
  constructor(config: MachineConfig, options: MachineOptions = {}) {
    this.config = config;
    this.logFn = options.log ?? (() => {});
    this.nsPerInstruction = options.nsPerInstruction ?? 10;
    const ramBytes = Math.round(config.memoryMiB * 1024 * 1024);
    if (!(ramBytes >= 1024 * 1024) || ramBytes > PCI_HOLE_START) {
      throw new Error(`machine: memory ${config.memoryMiB} MiB is out of range (1..3584 MiB)`);
    }
    this.mem = new PhysicalMemory(ramBytes);
    this.io = new IoBus();
    this.clock = new VirtualClock();
    this.irq = new IrqRouter();
    // Legacy VGA window: the VGA device maps itself here.
    this.mem.setKind(0xa0000, 0x20000, PAGE_UNMAPPED);
    // Option ROM + BIOS area: ROM until the guest enables shadow RAM through PAM.
    this.mem.setKind(0xc0000, 0x40000, PAGE_ROM);

    this.keyboard = { sendScancodes: () => {} };
    this.mouse = { move: () => {} };

    // --- chipset and core devices
    // --- display: VGA (devices/vga.ts)
    // --- disks: IDE + floppy/DMA
    // --- firmware (fw_cfg etc.)
  }

  static async create(config: MachineConfig, options: MachineOptions = {}): Promise<Machine> {
    const m = new Machine(config, options);
    return m;
  }

  // ---------------------------------------------------------------- events

  on<K extends keyof MachineEvents>(event: K, cb: MachineEvents[K]): this {
    this.listeners[event].push(cb);
    return this;
  }

  off<K extends keyof MachineEvents>(event: K, cb: MachineEvents[K]): this {
    const list = this.listeners[event] as MachineEvents[K][];
    const i = list.indexOf(cb);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  log(message: string): void {
    this.logFn(message);
    for (const cb of this.listeners.log) cb(message);
  }

  /** Registers a device so that reset/saveState/loadState include it (other engineers' devices too). */
  addDevice<T extends Device>(device: T): T {
    if (this.devices.some((d) => d.name === device.name)) throw new Error(`machine: duplicate device name ${device.name}`);
    this.devices.push(device);
    return device;
  }

  device<T extends Device>(name: string): T | undefined {
    return this.devices.find((d) => d.name === name) as T | undefined;
  }

  // ---------------------------------------------------------------- firmware

  /**
   * Loads a system BIOS image (64, 128 or 256 KiB): aliased at the top of 4 GiB, and its last
   * 128 KiB (at most) at 0xE0000-0xFFFFF below 1 MiB, as the ISA BIOS window.
   */
  loadBios(image: Uint8Array): void {
    if (image.length === 0 || image.length % 0x10000 !== 0 || image.length > 0x40000) {
      throw new Error(`machine: BIOS image of ${image.length} bytes; expected 64, 128, 192 or 256 KiB`);
    }
    this.biosImage = image.slice();
    this.copyBiosLow();
    const data = this.biosImage;
    const base = BIOS_HIGH_END - data.length;
    if (this.biosHigh) this.mem.unmapMmio(this.biosHigh);
    this.biosHigh = {
      read8: (a) => data[a - base],
      read16: (a) => data[a - base] | (data[a - base + 1] << 8),
      read32: (a) => data[a - base] | (data[a - base + 1] << 8) | (data[a - base + 2] << 16) | (data[a - base + 3] << 24),
      write8: () => {},
    };
    this.mem.mapMmio(base, data.length, this.biosHigh);
  }

  /** Loads an option ROM (e.g. a VGA BIOS) into the ROM area below 1 MiB. */
  loadOptionRom(addr: number, image: Uint8Array): void {
    if (addr < 0xc0000 || addr + image.length > 0x100000) throw new Error(`machine: option ROM at ${addr.toString(16)} does not fit below 1 MiB`);
    this.mem.loadRom(addr, image);
  }

  private copyBiosLow(): void {
    if (!this.biosImage) return;
    const n = Math.min(this.biosImage.length, 0x20000);
    this.mem.loadRom(0x100000 - n, this.biosImage.subarray(this.biosImage.length - n));
  }

  // ---------------------------------------------------------------- run control

  runSlice(maxMs: number): SliceResult {
    return { reason: 'off', waitMs: 0 };
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  pause(): void {}

  stop(): void {}

  reset(): void {}

  pressPowerButton(): void {}

  serialInput(port: number, bytes: ArrayLike<number>): void {}

  saveState(): MachineState {
    return { version: 1, devices: {}, clock: this.clock.saveState(), cpu: null, ram: this.mem.ram };
  }

  loadState(state: MachineState): void {}
}

export interface MachineState {
  version: number;
  clock: Record<string, number>;
  cpu: unknown;
  devices: { [name: string]: DeviceState };
  ram: Uint8Array;
  [key: string]: unknown;
}
