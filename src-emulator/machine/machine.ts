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
import { Cpu } from '../cpu/cpu';
import { Pic8259Pair } from '../devices/pic8259';
import { Pit8254 } from '../devices/pit8254';
import { CmosRtc } from '../devices/cmos-rtc';
import { I8042 } from '../devices/i8042';
import { Uart16550, COM_PORTS } from '../devices/uart16550';
import { PciBus } from '../devices/pci-bus';
import { I440fxHostBridge } from '../devices/i440fx';
import { Piix3IsaBridge } from '../devices/piix3';
import { AcpiPm, ACPI_SCI_IRQ } from '../devices/acpi-pm';
import { LocalApic, LAPIC_BASE } from '../devices/local-apic';
import { IoApic } from '../devices/io-apic';
import { Port92 } from '../devices/port92';
import { DebugExit } from '../devices/debug-exit';
import { Vga } from '../devices/vga';
import { Dma8237 } from '../devices/dma8237';
import { FloppyController } from '../devices/floppy-controller';
import { IdeController, type IdeDrive } from '../devices/ide-controller';
import { AtaDrive } from '../devices/ata-drive';
import { AtapiDrive } from '../devices/atapi-drive';
import { openImage, type ImageFormat } from '../storage/open';
import type { BlockDevice } from '../storage/block-device';
import { installFirmware, type InstalledFirmware } from '../firmware/index';

/** The subset of the Cpu (src-emulator/cpu/cpu.ts) the machine relies on; `requestExit` is used when present. */
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

/** What the display engineer's VGA device offers to the app (see devices/vga.ts, docs/display-and-disks.md). */
export interface MachineDisplay {
  /** Rows joined by \n when in a text mode, else null. */
  getTextScreen(): string | null;
  renderRgba(): { width: number; height: number; data: Uint8ClampedArray };
  /** Renders if needed; the area changed since the previous call, or null. */
  takeDirtyRect(): { x: number; y: number; width: number; height: number } | null;
  /** True when something may have changed since the last render. */
  readonly dirty: boolean;
  getMode(): { kind: 'text' | 'graphics' | 'blank'; width: number; height: number };
}

/** The media behind each BIOS drive (for the built-in BIOS's INT 13h and boot code). */
export interface BiosDrives {
  /** Drive A: and B: (0x00, 0x01); null = no diskette in the drive. */
  floppies: (BlockDevice | null)[];
  /** Hard disks in BIOS order 0x80, 0x81, ...: IDE primary master, primary slave, secondary master, secondary slave. */
  disks: BlockDevice[];
  /** CD-ROM drives in IDE order with their current disc (null = empty). */
  cdroms: { channel: 0 | 1; unit: 0 | 1; medium: BlockDevice | null }[];
}

export interface MachineOptions {
  /** Diagnostics (unhandled ports, triple faults, ...). Default: none. */
  log?: (message: string) => void;
  /** Wall-clock date the RTC starts from (default: host time at creation; DETERMINISTIC_START_DATE in deterministic mode). */
  startDate?: Date;
  /** Deterministic mode only: virtual ns per retired instruction (default 10, i.e. 100 MIPS). */
  nsPerInstruction?: number;
  /** Skip installing firmware (unit tests that put their own code at the reset vector). */
  noFirmware?: boolean;
  /** Supply the CPU (tests); default: `new Cpu(host)` from src-emulator/cpu/cpu.ts. */
  cpuFactory?: (host: CpuHost) => Cpu;
}

export interface MachineEvents {
  serial: (port: number, bytes: Uint8Array) => void;
  shutdown: (reason: string) => void;
  poweroff: () => void;
  reset: () => void;
  log: (message: string) => void;
  /** PC speaker tone in Hz (PIT channel 2 square wave gated by port 0x61), 0 = silent. */
  speaker: (hz: number) => void;
}

export type MachineRunState = 'paused' | 'running' | 'off';

/**
 * Why `runSlice` returned. `waitMs`: host ms until there is something to do ('halted': the next timer,
 * Infinity = only input; 'throttled': realtime guest time ran ahead of host time by this much).
 */
export interface SliceResult {
  reason: 'slice' | 'halted' | 'idle' | 'throttled' | 'off';
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
/** Where the RTC starts in deterministic mode when no start date is given. */
export const DETERMINISTIC_START_DATE = '2026-01-01T00:00:00Z';
export const BIOS_HIGH_END = 0x1_0000_0000;

/** Instructions per CPU batch at most: bounds the latency of timers and of leaving a slice. */
const MAX_BATCH = 100_000;
const MIN_BATCH = 64;
/** Realtime: virtual time may lag host time by this much before the difference is dropped. */
const MAX_LAG_NS = 200e6;
/** Realtime: a lag of this size doubles the pace of virtual time (and a lead of half of it halves it). */
const STEER_HORIZON_NS = 200e6;
/** Realtime: the pace of virtual time changes at most once per this much virtual time. */
const STEER_PERIOD_NS = 100e6;
/** Realtime: virtual time may run ahead of host time by this much before the CPU waits. */
const MAX_LEAD_NS = 10e6;
/** Serial bytes are handed out in chunks at slice ends, or earlier when this many accumulate. */
const SERIAL_FLUSH_BYTES = 4096;

type PendingAction = { kind: 'reset'; reason: string } | { kind: 'stop'; reason: string } | { kind: 'poweroff' };

export class Machine {
  readonly config: MachineConfig;
  readonly mem: PhysicalMemory;
  readonly io: IoBus;
  readonly clock: VirtualClock;
  readonly irq: IrqRouter;
  readonly cpu: Cpu;
  /** Every device, in construction order; the machine resets and saves them all. */
  readonly devices: Device[] = [];
  /** Images this machine opened from `config.disks`; flushed and closed when it turns off. */
  private disks: BlockDevice[] = [];
  /** The VGA (devices/vga.ts); also reachable as `vga` with its full API. */
  display: MachineDisplay | null = null;
  readonly vga: Vga;
  readonly dma: Dma8237;
  readonly floppy: FloppyController;
  readonly ide: IdeController;
  readonly keyboard: KeyboardInput;
  readonly mouse: MouseInput;
  /** Set when the guest wrote to isa-debug-exit (port 0xF4): (value << 1) | 1, as QEMU's. */
  exitCode: number | null = null;
  state: MachineRunState = 'paused';
  /** What `create` installed (built-in BIOS or SeaBIOS + fw_cfg); null with `noFirmware`. */
  firmware: InstalledFirmware | null = null;

  // --- chipset and core devices
  readonly pic: Pic8259Pair;
  readonly pit: Pit8254;
  readonly rtc: CmosRtc;
  readonly i8042: I8042;
  readonly uarts: Uart16550[] = [];
  readonly pci: PciBus;
  readonly hostBridge: I440fxHostBridge;
  readonly isaBridge: Piix3IsaBridge;
  readonly acpi: AcpiPm;
  readonly lapic: LocalApic;
  readonly ioapic: IoApic;
  readonly port92: Port92;
  readonly debugExit: DebugExit;

  private readonly listeners: { [K in keyof MachineEvents]: MachineEvents[K][] } = {
    serial: [],
    shutdown: [],
    poweroff: [],
    reset: [],
    log: [],
    speaker: [],
  };
  private readonly logFn: (message: string) => void;
  private biosImage: Uint8Array | null = null;
  private biosHigh: MmioHandler | null = null;
  private readonly optionRoms: [number, Uint8Array][] = [];
  readonly nsPerInstruction: number;
  // Time bookkeeping (see timeNow).
  private timeBase = 0;
  private instrBase = 0;
  /** Virtual ns per retired instruction in effect now. */
  private rateNs = 10;
  /** Realtime: measured host ns per instruction (moving average), and the host <-> virtual anchor. */
  private hostNsPerInstr = 20;
  /** Realtime pacing: instructions and host ns accumulated since virtual time `paceSince`. */
  private paceRan = 0;
  private paceHostNs = 0;
  private paceSince = 0;
  private paceSinceHost = 0;
  private hostAnchor = 0;
  private virtAnchor = 0;
  private clockRunning = false;
  private pending: PendingAction | null = null;
  private inSlice = false;
  private forcedHalt = false;
  private readonly serialOut: number[][] = [];
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private wantRun = false;

  /** Builds the machine synchronously without firmware; `create` is the usual entry point. */
  constructor(config: MachineConfig, options: MachineOptions = {}) {
    this.config = config;
    this.logFn = options.log ?? (() => {});
    this.nsPerInstruction = options.nsPerInstruction ?? 10;
    const ramBytes = Math.round(config.memoryMiB * 1024 * 1024);
    if (!(ramBytes >= 1024 * 1024) || ramBytes > PCI_HOLE_START) {
      throw new Error(`machine: memory ${config.memoryMiB} MiB is out of range (1..3584 MiB)`);
    }
    try {
      this.mem = new PhysicalMemory(ramBytes);
    } catch (e) {
      throw new Error(`machine: cannot allocate ${config.memoryMiB} MiB of guest RAM (${(e as Error).message})`);
    }
    this.io = new IoBus();
    this.clock = new VirtualClock();
    this.irq = new IrqRouter();
    // Legacy VGA window: the VGA device maps itself here.
    this.mem.setKind(0xa0000, 0x20000, PAGE_UNMAPPED);
    // Option ROM + BIOS area: ROM until the guest enables shadow RAM through PAM.
    this.mem.setKind(0xc0000, 0x40000, PAGE_ROM);

    const host: CpuHost = {
      mem: this.mem,
      io: this.io,
      acknowledgeInterrupt: () => this.lapic.acknowledge(),
      now: () => this.clock.now(),
      shutdown: (reason) => this.cpuShutdown(reason),
    };
    this.cpu = options.cpuFactory ? options.cpuFactory(host) : new Cpu(host);
    this.clock.onDeadlineInBatch = () => this.requestCpuExit();
    this.installTimeSource();

    // --- chipset and core devices
    const irq = this.irq;
    this.pic = this.addDevice(new Pic8259Pair(this.io));
    this.ioapic = this.addDevice(new IoApic(this.mem));
    this.lapic = this.addDevice(new LocalApic(this.mem, this.clock));
    irq.addSink(this.pic);
    irq.addSink(this.ioapic);
    this.lapic.cpu = this.cpu;
    this.lapic.picAcknowledge = () => this.pic.acknowledge();
    this.lapic.onEoi = (vector) => this.ioapic.eoi(vector);
    this.ioapic.target = this.lapic;
    this.pic.onIntr = (level) => this.lapic.setLint0(level);

    this.pit = this.addDevice(new Pit8254(this.io, irq.line(0), this.clock));
    let tone = 0;
    this.pit.onSpeaker = (hz) => {
      if (hz !== tone) this.emit('speaker', (tone = hz));
    };
    // A deterministic run must not depend on when it starts: its RTC starts at a fixed date unless told otherwise.
    const startDate = options.startDate ?? (config.deterministic ? new Date(DETERMINISTIC_START_DATE) : new Date());
    this.rtc = this.addDevice(new CmosRtc(this.io, irq.line(8), this.clock, startDate));
    this.i8042 = this.addDevice(new I8042(this.io, irq.line(1), irq.line(12), this.clock));
    this.port92 = this.addDevice(new Port92(this.io));
    const a20 = () => this.updateA20();
    this.i8042.onA20 = a20;
    this.port92.onA20 = a20;
    this.i8042.onReset = () => this.requestReset('keyboard controller reset');
    this.port92.onReset = () => this.requestReset('port 0x92 reset');

    const ports = Math.max(0, Math.min(4, config.serialPorts | 0));
    for (let i = 0; i < ports; i++) {
      const { base, irq: line } = COM_PORTS[i];
      const uart = this.addDevice(new Uart16550(this.io, base, irq.sharedLine(line), this.clock, i));
      uart.onTransmit = (byte) => this.serialByte(i, byte);
      this.uarts.push(uart);
      this.serialOut.push([]);
    }

    this.pci = this.addDevice(new PciBus(this.io, this.mem));
    this.hostBridge = this.addDevice(new I440fxHostBridge(this.mem));
    this.pci.attach(this.hostBridge, 0, 0);
    this.isaBridge = this.addDevice(new Piix3IsaBridge(this.io, irq, this.pic));
    this.pci.attach(this.isaBridge, 1, 0);
    this.pci.intxRouter = (slot, pin, level) => this.isaBridge.routeIntx(slot, pin, level);
    this.isaBridge.onReset = () => this.requestReset('reset control register (0xCF9)');
    this.acpi = this.addDevice(new AcpiPm(this.io, irq.sharedLine(ACPI_SCI_IRQ), this.clock));
    this.pci.attach(this.acpi, 1, 3);
    this.acpi.onPowerOff = () => this.requestPowerOff();
    this.acpi.onSleep = (typ) => this.log(`machine: guest asked for sleep state SLP_TYP=${typ}; not supported, woke at once`);

    // Legacy x87 error reporting (CR0.NE = 0): FERR# drives IRQ 13; a write to port 0xF0 clears the latch.
    const ferr = irq.line(13);
    const cpuWithFerr = this.cpu as { onFerr?: (asserted: boolean) => void };
    if ('onFerr' in cpuWithFerr) cpuWithFerr.onFerr = (asserted) => (asserted ? ferr.raise() : ferr.lower());
    this.io.register(0xf0, 1, { out8: () => ferr.lower() });

    this.debugExit = this.addDevice(new DebugExit(this.io));
    this.debugExit.onExit = (code) => {
      this.exitCode = code;
      this.requestStop(`debug-exit: code ${code}`);
    };

    this.rtc.initPcNvram({
      ramBytes,
      bootOrder: config.bootOrder,
      floppies: Math.min(2, config.disks.filter((d) => d.kind === 'floppy').length),
      cpus: config.cpus,
    });

    this.keyboard = {
      sendScancodes: (bytes) => {
        this.i8042.sendScancodes(bytes);
        this.wake();
      },
    };
    this.mouse = {
      move: (dx, dy, buttons, wheel = 0) => {
        this.i8042.mouseMove(dx, dy, buttons, wheel);
        this.wake();
      },
    };

    // --- display: VGA (devices/vga.ts)
    this.vga = this.addDevice(new Vga({ io: this.io, mem: this.mem, clock: this.clock, vramMiB: config.display.vramMiB }));
    this.pci.attach(this.vga, 2, 0);
    this.display = this.vga;
    // --- disks: IDE + floppy/DMA
    this.dma = this.addDevice(new Dma8237({ io: this.io, mem: this.mem }));
    this.floppy = this.addDevice(new FloppyController({ io: this.io, clock: this.clock, irq: irq.line(6), dma: this.dma }));
    this.ide = this.addDevice(new IdeController({ io: this.io, mem: this.mem, clock: this.clock, irq14: irq.line(14), irq15: irq.line(15) }));
    this.pci.attach(this.ide, 1, 1);
    this.disks = attachDisks(config, this.ide, this.floppy);
    // --- firmware (fw_cfg etc.)

    this.updateA20();
  }

  /** Builds the machine, then installs its firmware (unless `options.noFirmware`). */
  static async create(config: MachineConfig, options: MachineOptions = {}): Promise<Machine> {
    const m = new Machine(config, options);
    // --- firmware
    // (FirmwareMachine.addDevice is typed for { name } objects; every device added here is a full Device.)
    if (!options.noFirmware) m.firmware = await installFirmware(m as unknown as Parameters<typeof installFirmware>[0], config);
    return m;
  }

  /** The media behind each BIOS drive number, as attached now (CD and floppy media can change). */
  biosDrives(): BiosDrives {
    const disks: BlockDevice[] = [];
    const cdroms: BiosDrives['cdroms'] = [];
    for (const [channel, unit] of IDE_ORDER) {
      const d = this.ide.drive(channel, unit);
      if (d instanceof AtaDrive) disks.push(d.disk);
      else if (d instanceof AtapiDrive) cdroms.push({ channel, unit, medium: d.medium });
    }
    return { floppies: [this.floppy.disk(0), this.floppy.disk(1)], disks, cdroms };
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

  private emit<K extends keyof MachineEvents>(event: K, ...args: Parameters<MachineEvents[K]>): void {
    for (const cb of this.listeners[event].slice()) (cb as (...a: Parameters<MachineEvents[K]>) => void)(...args);
  }

  log(message: string): void {
    this.logFn(message);
    this.emit('log', message);
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
   * Loads a system BIOS image (64 to 256 KiB, a multiple of 64 KiB): aliased at the top of 4 GiB, and
   * its last 128 KiB (at most) at 0xE0000-0xFFFFF below 1 MiB, as the ISA BIOS window. The image is
   * reloaded there on every reset, since the guest may have written the shadow RAM.
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

  /** Loads an option ROM (e.g. a VGA BIOS) into the ROM area below 1 MiB; reloaded on reset too. */
  loadOptionRom(addr: number, image: Uint8Array): void {
    if (addr < 0xc0000 || addr + image.length > 0x100000) throw new Error(`machine: option ROM at 0x${addr.toString(16)} does not fit below 1 MiB`);
    this.optionRoms.push([addr, image.slice()]);
    this.mem.loadRom(addr, image);
  }

  private copyBiosLow(): void {
    for (const [addr, rom] of this.optionRoms) this.mem.loadRom(addr, rom);
    if (!this.biosImage) return;
    const n = Math.min(this.biosImage.length, 0x20000);
    this.mem.loadRom(0x100000 - n, this.biosImage.subarray(this.biosImage.length - n));
  }

  // ---------------------------------------------------------------- time

  /**
   * Virtual time is paced by retired instructions in both modes:
   *   now = timeBase + (retired - instrBase) * nsPerInstr
   * so that time advances smoothly with the guest's progress (a guest timing a loop with the TSC
   * against the PIT or PM timer sees consistent clocks however the host schedules us).
   *
   * Deterministic: nsPerInstr is fixed and a halted CPU jumps to the next deadline.
   * Realtime: nsPerInstr follows the measured host cost of an instruction, corrected after every
   * batch (between half and twice that cost) to steer virtual time toward host time; a halted CPU
   * lets host time pass (up to the next deadline); a lag beyond MAX_LAG_NS (host stalled, machine
   * suspended) is dropped with a jump.
   */
  private installTimeSource(): void {
    this.rateNs = this.config.deterministic ? this.nsPerInstruction : this.hostNsPerInstr;
    this.clock.setSource(() => this.timeBase + (this.cpu.instructionsRetired - this.instrBase) * this.rateNs);
  }

  /** Re-anchors the instruction-paced time at the current instant (before a rate change or a jump). */
  private rebase(): void {
    this.timeBase = this.clock.now();
    this.instrBase = this.cpu.instructionsRetired;
  }

  /** Host time mapped to virtual time (realtime mode): what virtual time should be now. */
  private hostTarget(): number {
    return this.virtAnchor + (performance.now() - this.hostAnchor) * 1e6;
  }

  private resumeClock(): void {
    if (this.clockRunning) return;
    this.rebase();
    this.virtAnchor = this.timeBase;
    this.hostAnchor = performance.now();
    this.paceSince = this.timeBase;
    this.paceSinceHost = this.hostAnchor;
    this.paceRan = this.paceHostNs = 0;
    this.clockRunning = true;
  }

  private freezeClock(): void {
    if (!this.clockRunning) return;
    this.rebase();
    this.clockRunning = false;
  }

  /** Moves time forward to `t` (never back) and fires what is due. */
  private jumpTo(t: number): void {
    this.rebase();
    if (t > this.timeBase) this.timeBase = t;
    this.clock.advanceTo(this.timeBase);
  }

  /**
   * Realtime: after a batch of `ran` instructions that took `hostNs`, account it; every STEER_PERIOD_NS
   * of virtual time, re-pace: the measured host cost of an instruction times a correction (0.5-2)
   * that steers virtual time toward host time, moving at most by a factor of 2 per step. Holding
   * the pace for a period keeps any short guest measurement (Linux calibrates the TSC against the
   * PIT over 10-50 ms and gives up when one loop iteration takes 10 times longer than another)
   * consistent, however the host schedules us.
   */
  private steerRealtime(ran: number, hostNs: number): void {
    this.paceRan += ran;
    this.paceHostNs += hostNs;
    const now = this.clock.now();
    const hostNow = performance.now();
    // Re-pace every STEER_PERIOD_NS of virtual time, or every 250 ms of host time while virtual time
    // crawls far behind (the initial pace is only a guess).
    const crawling = hostNow - this.paceSinceHost >= 250 && this.hostTarget() - now > 50e6;
    if (now - this.paceSince < STEER_PERIOD_NS && !crawling) return;
    if (this.paceRan > 0 && this.paceHostNs > 0) {
      this.hostNsPerInstr = Math.min(Math.max(this.paceHostNs / this.paceRan, 0.05), 100_000);
    }
    this.paceRan = 0;
    this.paceHostNs = 0;
    this.paceSince = now;
    this.paceSinceHost = hostNow;
    let lag = this.hostTarget() - now;
    if (lag > MAX_LAG_NS) {
      // The host could not run us for a while: let that time go instead of racing to catch up.
      this.virtAnchor -= lag - MAX_LAG_NS;
      lag = MAX_LAG_NS;
    }
    const correction = Math.min(2, Math.max(0.5, 1 + lag / STEER_HORIZON_NS));
    const ideal = this.hostNsPerInstr * correction;
    this.rebase();
    this.rateNs = Math.min(this.rateNs * 2, Math.max(this.rateNs / 2, ideal));
  }

  // ---------------------------------------------------------------- run control

  /**
   * Runs the machine for up to `maxMs` of host time and returns why it stopped: 'slice' (time is up),
   * 'halted' (realtime: the CPU waits for a timer `waitMs` away, or for input when waitMs is
   * Infinity), 'throttled' (realtime: guest time is ahead of host time; call again after `waitMs`),
   * 'idle' (deterministic: halted with no timer armed; only input can wake it) or 'off'.
   */
  runSlice(maxMs: number): SliceResult {
    if (this.state === 'off') return { reason: 'off', waitMs: 0 };
    this.state = 'running';
    this.resumeClock();
    this.syncApicEnable();
    const deterministic = this.config.deterministic;
    const t0 = performance.now();
    const limit = t0 + maxMs;
    let result: SliceResult = { reason: 'slice', waitMs: 0 };
    if (!deterministic && this.cpu.halted) {
      // Host time passed while we waited for the halted CPU; it passes for the guest too.
      this.jumpTo(Math.min(this.hostTarget(), this.clock.nextDeadline()));
    }
    this.inSlice = true;
    try {
      for (;;) {
        const now = this.clock.now();
        this.clock.advanceTo(now);
        if (this.pending) break;
        const next = this.clock.nextDeadline();
        let budget = Math.ceil((next - now) / this.rateNs);
        budget = budget > MAX_BATCH || !(budget >= MIN_BATCH) ? (budget >= MIN_BATCH ? MAX_BATCH : MIN_BATCH) : budget;
        const h0 = deterministic ? 0 : performance.now();
        // A halted CPU must only look at pending events (some CPU builds would otherwise step on past HLT).
        if (this.cpu.halted) (this.cpu as { eventCheck?: boolean }).eventCheck = true;
        this.clock.batchEnd = now + budget * this.rateNs;
        const ran = this.cpu.run(budget);
        this.clock.batchEnd = -Infinity;
        if (this.forcedHalt) {
          this.forcedHalt = false;
          this.cpu.halted = false;
        }
        if (!deterministic && ran > 0) {
          this.steerRealtime(ran, (performance.now() - h0) * 1e6);
          // Never let the guest's clock run ahead of the host's: wait for the host to catch up.
          const lead = this.clock.now() - this.hostTarget();
          if (lead > MAX_LEAD_NS) {
            result = { reason: 'throttled', waitMs: lead / 1e6 };
            break;
          }
        }
        if (this.pending) break;
        if (ran === 0 && this.cpu.halted) {
          const t = this.clock.now();
          const due = this.clock.nextDeadline();
          if (due <= t) continue;
          if (deterministic) {
            if (due === Infinity) {
              result = { reason: 'idle', waitMs: Infinity };
              break;
            }
            this.jumpTo(due);
          } else {
            const target = this.hostTarget();
            if (target >= due) {
              this.jumpTo(due);
            } else {
              if (target > t) this.jumpTo(target);
              result = { reason: 'halted', waitMs: due === Infinity ? Infinity : (due - Math.max(target, t)) / 1e6 };
              break;
            }
          }
        }
        if (performance.now() >= limit) break;
      }
    } catch (e) {
      // An emulator bug must not take the host process down: stop this machine and say why.
      const err = e as Error;
      this.log(`machine: internal error at ${this.describeCpu()}: ${err?.stack ?? String(e)}`);
      this.pending = { kind: 'stop', reason: `emulator error at ${this.describeCpu()}: ${err?.message ?? String(e)}` };
    } finally {
      this.inSlice = false;
      if (this.forcedHalt) {
        this.forcedHalt = false;
        this.cpu.halted = false;
      }
    }
    this.flushSerial();
    if (this.pending) this.performPending();
    if ((this.state as MachineRunState) === 'off') return { reason: 'off', waitMs: 0 };
    return result;
  }

  /**
   * Runs until paused, stopped or powered off, yielding to the event loop between slices of ~15 ms so
   * that input and control messages are served. The promise resolves when the loop ends.
   */
  start(): Promise<void> {
    if (this.state === 'off') return Promise.resolve();
    this.wantRun = true;
    if (!this.loop) {
      this.loop = this.runLoop().finally(() => {
        this.loop = null;
      });
    }
    return this.loop;
  }

  private async runLoop(): Promise<void> {
    while (this.wantRun && this.state !== 'off') {
      const r = this.runSlice(15);
      if (r.reason === 'off') break;
      if (r.reason === 'halted' || r.reason === 'idle' || r.reason === 'throttled') {
        await this.sleep(Math.min(r.waitMs, r.reason === 'idle' ? 1000 : 50));
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    if (this.state !== 'off') {
      this.freezeClock();
      this.state = 'paused';
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.wakeUp = done;
    });
  }

  /** Ends a host-side wait early (input arrived, a control message changed something). */
  private wake(): void {
    this.wakeUp?.();
  }

  /** Stops the run loop at the next slice boundary and freezes virtual time. */
  pause(): void {
    this.wantRun = false;
    this.wake();
    if (!this.loop && this.state === 'running') {
      this.freezeClock();
      this.state = 'paused';
    }
  }

  /** Stops the machine for good (the host's power switch): 'shutdown' is emitted with reason 'stopped'. */
  stop(): void {
    this.wantRun = false;
    this.wake();
    if (this.state === 'off') return;
    if (this.inSlice) {
      this.pending = { kind: 'stop', reason: 'stopped' };
      this.requestCpuExit();
      return;
    }
    this.turnOff('stopped');
  }

  /** A hard power-off from the host (no guest involvement); emits 'poweroff' and 'shutdown'. */
  powerOff(): void {
    if (this.inSlice) this.requestPowerOff();
    else {
      this.pending = { kind: 'poweroff' };
      this.performPending();
    }
  }

  /** Resets the machine like the reset button (RAM is kept, devices and CPU reset). */
  reset(): void {
    if (this.inSlice) this.requestReset('reset requested');
    else this.doReset('reset requested');
  }

  /** ACPI power button: the guest OS decides what to do (usually an orderly shutdown to S5). */
  pressPowerButton(): void {
    this.acpi.pressPowerButton();
    this.wake();
  }

  /** Bytes for the guest's serial port `port` (0 = COM1). */
  serialInput(port: number, bytes: ArrayLike<number>): void {
    const uart = this.uarts[port];
    if (!uart) throw new Error(`machine: no serial port ${port} (this machine has ${this.uarts.length})`);
    uart.receive(bytes);
    this.wake();
  }

  // ---------------------------------------------------------------- internals

  private serialByte(port: number, byte: number): void {
    const buf = this.serialOut[port];
    buf.push(byte);
    if (buf.length >= SERIAL_FLUSH_BYTES) this.flushSerial();
  }

  private flushSerial(): void {
    for (let i = 0; i < this.serialOut.length; i++) {
      const buf = this.serialOut[i];
      if (buf.length === 0) continue;
      const bytes = Uint8Array.from(buf);
      buf.length = 0;
      this.emit('serial', i, bytes);
    }
  }

  private updateA20(): void {
    const enabled = this.i8042.a20 || this.port92.a20;
    const mask = enabled ? -1 : ~0x100000;
    if (this.cpu.a20Mask === mask) return;
    this.cpu.a20Mask = mask;
    (this.cpu as { flushTlb?: (global: boolean) => void }).flushTlb?.(true);
  }

  /** Follows IA32_APIC_BASE (kept by the CPU): the global enable bit, and a relocated APIC window. */
  private syncApicEnable(): void {
    const msr = (this.cpu as { apicBase?: number }).apicBase;
    if (msr === undefined) return;
    this.lapic.globalEnable = (msr & 0x800) !== 0;
    const base = (msr & 0xfffff000) >>> 0;
    if (base !== this.lapicBase && base !== 0) {
      this.mem.unmapMmio(this.lapic);
      this.mem.mapMmio(base, 0x1000, this.lapic);
      this.lapicBase = base;
    }
  }

  private lapicBase = LAPIC_BASE;

  /** Makes `cpu.run` return at the next instruction boundary. */
  private requestCpuExit(): void {
    const cpu = this.cpu as unknown as MachineCpu;
    if (cpu.requestExit) cpu.requestExit();
    else if (!this.cpu.halted) {
      // The CPU leaves its run loop after any instruction that halts; we undo the halt afterwards.
      this.cpu.halted = true;
      this.forcedHalt = true;
    }
  }

  private requestReset(reason: string): void {
    if (!this.pending || this.pending.kind === 'reset') this.pending = { kind: 'reset', reason };
    if (this.inSlice) this.requestCpuExit();
    else this.performPending();
  }

  private requestStop(reason: string): void {
    this.pending = { kind: 'stop', reason };
    if (this.inSlice) this.requestCpuExit();
    else this.performPending();
  }

  private requestPowerOff(): void {
    this.pending = { kind: 'poweroff' };
    if (this.inSlice) this.requestCpuExit();
    else this.performPending();
  }

  private cpuShutdown(reason: string): void {
    if (reason === 'triple fault') {
      const msg = `machine: triple fault at ${this.describeCpu()}`;
      this.log(msg);
      if (this.config.onTripleFault === 'reset') this.requestReset(msg);
      else this.requestStop(msg);
      return;
    }
    // HLT with interrupts off: nothing but an NMI could wake the CPU, and nothing raises one.
    this.requestStop(`cpu: ${reason} at ${this.describeCpu()}`);
  }

  private describeCpu(): string {
    const c = this.cpu as unknown as { eip?: number; getSegSelector?: (s: number) => number };
    const cs = c.getSegSelector ? c.getSegSelector(1) : 0;
    return `${cs.toString(16).padStart(4, '0')}:${((c.eip ?? 0) >>> 0).toString(16).padStart(8, '0')}`;
  }

  private performPending(): void {
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    this.flushSerial();
    if (p.kind === 'reset') this.doReset(p.reason);
    else if (p.kind === 'stop') this.turnOff(p.reason);
    else {
      this.emit('poweroff');
      this.turnOff('poweroff');
    }
  }

  private turnOff(reason: string): void {
    if (this.state === 'off') return;
    this.freezeClock();
    this.state = 'off';
    this.closeDisks();
    this.wantRun = false;
    this.wake();
    this.emit('shutdown', reason);
  }

  /**
   * Images open with a write-back cache: what the guest wrote but never flushed is still in host
   * memory, so turning the machine off must write it out, or a power-off would lose it.
   */
  private closeDisks(): void {
    for (const d of this.disks.splice(0)) {
      try {
        d.close();
      } catch (err) {
        this.log(`machine: closing ${d.path} failed: ${(err as Error).message}`);
      }
    }
  }

  private doReset(reason: string): void {
    this.log(`machine: reset (${reason})`);
    for (const d of this.devices) d.reset();
    this.cpu.reset();
    this.copyBiosLow();
    this.updateA20();
    this.emit('reset');
  }

  // ---------------------------------------------------------------- saved state

  /** Every device's state + clock + CPU + RAM, as plain structured-clone-able data. */
  saveState(): MachineState {
    const devices: { [name: string]: DeviceState } = {};
    for (const d of this.devices) devices[d.name] = d.saveState();
    const wasRunning = this.clockRunning;
    this.freezeClock();
    const state: MachineState = {
      version: 1,
      config: JSON.parse(JSON.stringify(this.config)) as MachineConfig,
      clock: this.clock.saveState(),
      cpu: this.cpu.saveState(),
      devices,
      ram: this.mem.ram.slice(),
      exitCode: this.exitCode,
    };
    if (wasRunning) this.resumeClock();
    return state;
  }

  /** Restores a state saved from a machine built from the same config. */
  loadState(state: MachineState): void {
    if (state.version !== 1) throw new Error(`machine state: unsupported version ${String(state.version)}`);
    if (!(state.ram instanceof Uint8Array) || state.ram.length !== this.mem.ram.length) {
      throw new Error(`machine state: RAM size ${state.ram?.length} does not match this machine's ${this.mem.ram.length}`);
    }
    this.freezeClock();
    this.mem.restore(state.ram);
    const section = (what: string, load: () => void) => {
      try {
        load();
      } catch (e) {
        throw new Error(`machine state: section ${what} is damaged (${(e as Error).message})`);
      }
    };
    if (!state.cpu || typeof state.cpu !== 'object') throw new Error('machine state: the cpu section is missing');
    if (!state.devices || typeof state.devices !== 'object') throw new Error('machine state: the devices section is missing');
    section('cpu', () => this.cpu.loadState(state.cpu as Record<string, unknown>));
    for (const d of this.devices) {
      const s = state.devices[d.name];
      if (s) section(d.name, () => d.loadState(s));
      else this.log(`machine state: no section for device ${d.name}; it keeps its reset state`);
    }
    section('clock', () => this.clock.loadState(state.clock));
    this.timeBase = this.clock.now();
    this.instrBase = this.cpu.instructionsRetired;
    this.exitCode = (state.exitCode as number | null) ?? null;
    this.updateA20();
    if (this.state === 'off') this.state = 'paused';
  }
}

export interface MachineState {
  version: number;
  clock: Record<string, number>;
  cpu: unknown;
  devices: { [name: string]: DeviceState };
  ram: Uint8Array;
  [key: string]: unknown;
}

const IDE_ORDER: [0 | 1, 0 | 1][] = [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
];

/**
 * Opens `config.disks` and puts them on the IDE channels and the floppy controller. Positions
 * given in the config are kept; the rest take the first free place (hard disks from the primary
 * master on, CD-ROMs from the secondary master on, as QEMU places -hda and -cdrom).
 */
/** Opens and places every configured image; returns the images opened, which the machine owns. */
function attachDisks(config: MachineConfig, ide: IdeController, fdc: FloppyController): BlockDevice[] {
  const opened: BlockDevice[] = [];
  const taken = new Set<string>();
  let floppies = 0;
  const place = (want: [0 | 1, 0 | 1][], what: string): [0 | 1, 0 | 1] => {
    const pos = want.find(([c, u]) => !taken.has(`${c}:${u}`));
    if (!pos) throw new Error(`machine: no free IDE position for ${what}`);
    return pos;
  };
  const ordered = [...config.disks].sort((a, b) => Number(b.channel !== undefined) - Number(a.channel !== undefined));
  for (const att of ordered) {
    const label = att.path ?? `empty ${att.kind}`;
    const open = (readOnly: boolean): BlockDevice => {
      const dev = openImage(att.path!, { readOnly, format: att.format as ImageFormat | undefined });
      opened.push(dev);
      return dev;
    };
    if (att.kind === 'floppy') {
      if (floppies >= 2) throw new Error(`machine: more than two floppy drives (${label})`);
      fdc.insertDisk(floppies++ as 0 | 1, att.path ? open(att.readOnly ?? false) : null);
      continue;
    }
    let pos: [0 | 1, 0 | 1];
    if (att.channel !== undefined) {
      pos = [att.channel, att.unit ?? 0];
      if (taken.has(`${pos[0]}:${pos[1]}`)) throw new Error(`machine: IDE ${pos[0]}:${pos[1]} is given twice (${label})`);
    } else {
      pos = place(att.kind === 'cdrom' ? [IDE_ORDER[2], IDE_ORDER[3], IDE_ORDER[1], IDE_ORDER[0]] : IDE_ORDER, label);
    }
    taken.add(`${pos[0]}:${pos[1]}`);
    let drive: IdeDrive;
    if (att.kind === 'cdrom') drive = new AtapiDrive(att.path ? open(true) : null);
    else {
      if (!att.path) throw new Error('machine: a hard disk needs an image file');
      drive = new AtaDrive(open(att.readOnly ?? false));
    }
    ide.attach(pos[0], pos[1], drive);
  }
  return opened;
}
