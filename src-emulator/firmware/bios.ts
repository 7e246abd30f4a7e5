/**
 * The built-in BIOS: POST and every service in TypeScript, reached from the ROM stubs of rom.ts
 * through TRAP_PORT. See docs/firmware.md for the design.
 */
import type { PhysicalMemory } from '../machine/memory';
import type { IoBus } from '../machine/io-bus';
import type { VirtualClock } from '../machine/clock';
import type { MachineConfig, DiskKind } from '../machine/config';
import type { Device, DeviceState } from '../machine/device';
import { BDA } from './bda';
import type { BiosEnv } from './env';
import { Regs, type BiosCpu } from './regs';
import { buildBiosRom, LaunchField, type BiosRom } from './rom';
import {
  ACPI_REGION_SIZE,
  BASE_MEMORY_KIB,
  EBDA_BASE,
  EBDA_SEGMENT,
  EBDA_SIZE_KIB,
  ROM_BASE,
  ROM_SEGMENT,
  RomOffset,
  TRAP_PORT,
  TrapId,
} from './layout';
import { VideoBios } from './video';
import { DiskBios, readElTorito, type BiosDriveSource } from './disk';
import { KeyboardBios } from './keyboard';
import { MouseBios } from './mouse';
import { SystemBios } from './system';
import { initPci, findVgaFramebuffer } from './pci-init';
import { buildE820, acpiRegionBase } from './e820';
import { buildAcpi } from './acpi';
import { buildMpTables } from './mptable';
import { buildSmbios } from './smbios';
import type { LinuxLayout } from './bzimage';
import { mbrBootProblem } from './boot';

/** What the firmware needs from the machine (src-emulator/machine/machine.ts provides it). */
export interface FirmwareHost {
  readonly config: MachineConfig;
  readonly mem: PhysicalMemory;
  readonly io: IoBus;
  readonly clock: VirtualClock;
  loadBios(image: Uint8Array): void;
  log(message: string): void;
}

export interface BuiltinBiosOptions {
  /** The drives as attached now; asked at every POST. */
  drives: () => BiosDriveSource[];
  /** Prepared direct kernel boot (bzimage.ts layoutLinux). */
  linux?: LinuxLayout & { initrd: Uint8Array | null };
}

/** Table placement inside the ROM's TABLES area (offsets from F0000). */
const T_RSDP = 0x0000;
const T_MP_FLOAT = 0x0020;
const T_SMBIOS_ENTRY = 0x0030;
const T_CONFIG = 0x0050;
const T_MP_CONFIG = 0x0100;
const T_SMBIOS_TABLE = 0x0800;

export class BuiltinBios implements Device, BiosEnv {
  readonly name = 'bios';
  readonly rom: BiosRom;
  readonly video: VideoBios;
  readonly disk: DiskBios;
  readonly keyboard: KeyboardBios;
  readonly mouse: MouseBios;
  readonly system: SystemBios;
  /** Last boot failure reasons (for the CLI and tests). */
  bootErrors: string[] = [];
  /** What INT 19h booted, e.g. "cdrom E0h no-emulation" (diagnostics). */
  bootedFrom: string | null = null;
  private status = 0;
  private romScanNext = 0xc0000;
  /** Position in the boot order of the device INT 19h/18h last tried. */
  private bootIndex = 0;
  private cpuRef: BiosCpu | null = null;

  constructor(
    private readonly host: FirmwareHost,
    private readonly options: BuiltinBiosOptions,
    cpu?: BiosCpu,
  ) {
    this.cpuRef = cpu ?? null;
    this.rom = buildBiosRom();
    this.video = new VideoBios(this);
    this.disk = new DiskBios(this);
    this.disk.provider = options.drives;
    this.keyboard = new KeyboardBios(this);
    this.mouse = new MouseBios(this);
    this.system = new SystemBios(this);
  }

  get mem(): PhysicalMemory {
    return this.host.mem;
  }
  get io(): IoBus {
    return this.host.io;
  }
  get clock(): VirtualClock {
    return this.host.clock;
  }
  get cpu(): BiosCpu {
    if (this.cpuRef) return this.cpuRef;
    const cpu = (this.host as unknown as { cpu?: BiosCpu }).cpu;
    if (!cpu || typeof cpu.getReg16 !== 'function') throw new Error('bios: the machine has no CPU with the register API');
    return cpu;
  }
  log(message: string): void {
    this.host.log(message);
  }
  writeRom(addr: number, data: Uint8Array): void {
    this.host.mem.loadRom(addr, data);
  }

  /** Maps the ROM and the trap port. */
  install(): void {
    this.host.loadBios(this.rom.image);
    this.host.io.register(TRAP_PORT, 1, {
      out8: (_p, id) => this.trap(id),
      in8: () => this.status,
    });
  }

  private trap(id: number): void {
    this.status = 0;
    try {
      switch (id) {
        case TrapId.POST:
          this.post();
          return;
        case TrapId.ROM_SCAN:
          this.status = this.romScan() ? 1 : 0;
          return;
        case 0x08:
          this.system.tick();
          return;
        case 0x09: {
          const sc = this.keyboard.irq();
          if (sc === null) return;
          this.writeRom(ROM_BASE + this.rom.kbdScan, Uint8Array.of(sc));
          this.status = 1;
          return;
        }
        case TrapId.KEY:
          // The scancode INT 15h AH=4Fh let through (AL of the word pushed at SS:SP).
          this.keyboard.scancode(this.mem.read8((this.cpu.getSegBase(2) + this.cpu.getReg16(4)) >>> 0));
          return;
        case 0x74:
          this.status = this.mouse.irq() ? 1 : 0;
          return;
        default:
          break;
      }
      const r = new Regs(this.cpu, this.mem);
      switch (id) {
        case 0x10:
          this.video.handle(r);
          return;
        case 0x11:
          this.system.int11(r);
          return;
        case 0x12:
          this.system.int12(r);
          return;
        case 0x13:
          this.disk.handle(r);
          return;
        case 0x14:
          this.system.int14(r);
          return;
        case 0x15:
          if (r.ah === 0xc2) this.status = this.mouse.handle(r) ? 1 : 0;
          else this.status = this.system.int15(r) ? 1 : 0;
          return;
        case 0x16:
          this.status = this.keyboard.handle(r) ? 1 : 0;
          return;
        case 0x17:
          this.system.int17(r);
          return;
        case 0x18:
          // The boot sector gave up (INT 18h): go on with the next device in the boot order.
          this.status = this.boot(true) ? 0 : 1;
          return;
        case 0x19:
          this.status = this.boot(false) ? 0 : 1;
          return;
        case 0x1a:
          this.system.int1a(r);
          return;
        default:
          return;
      }
    } catch (e) {
      this.log(`bios: service ${id.toString(16)}h failed: ${(e as Error).stack ?? e}`);
    }
  }

  // ------------------------------------------------------------------ POST

  post(): void {
    const mem = this.mem;
    const io = this.io;
    const ram = mem.ramBytes;
    // IVT and BDA.
    for (let a = 0; a < 0x500; a += 4) mem.write32(a, 0);
    for (let v = 0; v < 256; v++) {
      mem.write16(v * 4, this.rom.vectors[v]);
      mem.write16(v * 4 + 2, ROM_SEGMENT);
    }
    const setVec = (v: number, seg: number, off: number) => {
      mem.write16(v * 4, off);
      mem.write16(v * 4 + 2, seg);
    };
    setVec(0x1d, 0, 0);
    setVec(0x1e, ROM_SEGMENT, RomOffset.DISKETTE_PARAMS);
    setVec(0x1f, ROM_SEGMENT, RomOffset.FONT_8X8_FULL + 128 * 8);
    setVec(0x41, 0, 0);
    setVec(0x43, ROM_SEGMENT, RomOffset.FONT_8X8_FULL);
    setVec(0x46, 0, 0);
    for (let v = 0x60; v < 0x68; v++) setVec(v, 0, 0);
    for (let v = 0x78; v < 0x100; v++) setVec(v, 0, 0);

    const serialPorts = Math.min(this.host.config.serialPorts ?? 1, 4);
    [0x3f8, 0x2f8, 0x3e8, 0x2e8].slice(0, serialPorts).forEach((p, i) => mem.write16(BDA.COM_PORTS + 2 * i, p));
    mem.write16(BDA.EBDA_SEG, EBDA_SEGMENT);
    mem.write16(BDA.MEMORY_KIB, BASE_MEMORY_KIB);
    for (let a = EBDA_BASE; a < EBDA_BASE + EBDA_SIZE_KIB * 1024; a += 4) mem.write32(a, 0);
    mem.write8(EBDA_BASE, EBDA_SIZE_KIB);

    this.disk.setDrives(this.options.drives());
    const floppies = this.disk.floppyCount();
    let equipment = 0x0002 /* x87 */ | 0x0020 /* 80x25 colour */ | 0x0004; /* PS/2 mouse */
    if (floppies) equipment |= 0x0001 | ((floppies - 1) << 6);
    equipment |= serialPorts << 9;
    mem.write16(BDA.EQUIPMENT, equipment);
    this.disk.updateBda();
    for (let i = 0; i < 4; i++) mem.write8(BDA.COM_TIMEOUT + i, 1);
    this.keyboard.init();
    this.mouse.init();

    // Interrupt controllers: vectors 08h/70h, cascade on IRQ2, only timer and keyboard unmasked.
    io.out8(0x20, 0x11);
    io.out8(0x21, 0x08);
    io.out8(0x21, 0x04);
    io.out8(0x21, 0x01);
    io.out8(0xa0, 0x11);
    io.out8(0xa1, 0x70);
    io.out8(0xa1, 0x02);
    io.out8(0xa1, 0x01);
    io.out8(0x21, 0xf8);
    io.out8(0xa1, 0xff);
    // PIT channel 0: mode 3, divisor 65536 (18.2 Hz).
    io.out8(0x43, 0x36);
    io.out8(0x40, 0);
    io.out8(0x40, 0);
    // i8042: keyboard interrupt on, translation on, system flag.
    io.out8(0x64, 0x60);
    io.out8(0x60, 0x45);
    // COM1 at 115200 8N1 so BIOS messages are readable.
    if (serialPorts) {
      io.out8(0x3fb, 0x80);
      io.out8(0x3f8, 0x01);
      io.out8(0x3f9, 0x00);
      io.out8(0x3fb, 0x03);
    }
    this.system.initTicks();

    const pci = initPci(io, (m) => this.log(m));
    this.video.init(pci.vgaFramebuffer);

    // Tables.
    const acpiBase = acpiRegionBase(ram);
    // With barely more than 1 MiB of RAM there is no room for ACPI tables: no RSDP then.
    if (acpiBase >= 0x100000) {
      const acpi = buildAcpi(acpiBase, { serialPorts });
      if (acpi.tables.length > ACPI_REGION_SIZE) throw new Error('ACPI tables exceed their region');
      mem.writeBytes(acpiBase, acpi.tables);
      this.writeRom(ROM_BASE + T_RSDP, acpi.rsdp);
    } else this.writeRom(ROM_BASE + T_RSDP, new Uint8Array(20));
    const pciInts = pci.functions.filter((f) => f.pin >= 1 && f.pin <= 4).map((f) => ({ slot: f.devfn >> 3, pin: f.pin }));
    const mp = buildMpTables(ROM_BASE + T_MP_CONFIG, pciInts);
    this.writeRom(ROM_BASE + T_MP_FLOAT, mp.floating);
    this.writeRom(ROM_BASE + T_MP_CONFIG, mp.config);
    const smbios = buildSmbios(ROM_BASE + T_SMBIOS_TABLE, { memoryBytes: ram });
    this.writeRom(ROM_BASE + T_SMBIOS_ENTRY, smbios.entry);
    this.writeRom(ROM_BASE + T_SMBIOS_TABLE, smbios.table);
    // INT 15h C0h: model FC, second PIC, RTC, EBDA, INT 16h 09h.
    this.writeRom(ROM_BASE + T_CONFIG, Uint8Array.of(0x08, 0x00, 0xfc, 0x01, 0x00, 0x74, 0x40, 0x00, 0x00, 0x00));
    this.deriveSystemState();

    this.romScanNext = 0xc0000;
    this.bootErrors = [];
    this.bootedFrom = null;
  }

  /** TypeScript-side state that follows from the config alone (set at POST and after loadState). */
  private deriveSystemState(): void {
    this.system.configTableOffset = T_CONFIG;
    this.system.e820 = buildE820(this.mem.ramBytes);
    this.system.ramTop = acpiRegionBase(this.mem.ramBytes);
  }

  /** Finds the next option ROM in C0000-DFFFF; sets the far pointer the POST stub calls. */
  private romScan(): boolean {
    const mem = this.mem;
    for (let a = this.romScanNext; a < 0xe0000; a += 0x800) {
      if (mem.read8(a) !== 0x55 || mem.read8(a + 1) !== 0xaa) continue;
      const len = mem.read8(a + 2) * 512;
      if (len === 0) continue;
      let sum = 0;
      for (let i = 0; i < len; i++) sum = (sum + mem.read8(a + i)) & 0xff;
      this.romScanNext = a + Math.ceil(len / 0x800) * 0x800;
      if (sum !== 0) {
        this.log(`bios: option ROM at ${a.toString(16)} has a bad checksum; skipped`);
        continue;
      }
      const ptr = new Uint8Array(4);
      new DataView(ptr.buffer).setUint16(0, 0x0003, true);
      new DataView(ptr.buffer).setUint16(2, a >> 4, true);
      this.writeRom(ROM_BASE + this.rom.romCallPtr, ptr);
      return true;
    }
    this.romScanNext = 0xe0000;
    return false;
  }

  // ------------------------------------------------------------------ boot

  private launch(f: { ss: number; sp: number; ds: number; es: number; dx: number; flags: number; cs: number; ip: number }): void {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setUint16(LaunchField.SS, f.ss, true);
    dv.setUint16(LaunchField.SP, f.sp, true);
    dv.setUint16(LaunchField.DS, f.ds, true);
    dv.setUint16(LaunchField.ES, f.es, true);
    dv.setUint16(LaunchField.DX, f.dx, true);
    dv.setUint16(LaunchField.FLAGS, f.flags, true);
    dv.setUint16(LaunchField.IP, f.ip, true);
    dv.setUint16(LaunchField.CS, f.cs, true);
    this.writeRom(ROM_BASE + this.rom.launchBlock, b);
  }

  /**
   * INT 19h (from the first device) / INT 18h (`next`: from the device after the one that failed):
   * prepares the launch block; false (after printing why) when nothing boots.
   */
  boot(next = false): boolean {
    const mem = this.mem;
    const linux = this.options.linux;
    if (linux && !next) {
      mem.writeBytes(linux.realBase, linux.setup);
      mem.writeBytes(linux.cmdlineAddr, linux.cmdline);
      mem.writeBytes(linux.kernelAddr, linux.kernel);
      if (linux.initrd) mem.writeBytes(linux.initrdAddr, linux.initrd);
      this.launch({
        ss: linux.realSeg,
        sp: linux.stackPointer,
        ds: linux.realSeg,
        es: linux.realSeg,
        dx: 0,
        flags: 0x0002,
        cs: linux.realSeg + 0x20,
        ip: 0,
      });
      this.bootedFrom = 'linux';
      return true;
    }
    const reasons: string[] = next ? [...this.bootErrors] : [];
    if (next) reasons.push(`${this.bootedFrom ?? 'boot sector'}: the boot sector gave up (INT 18h)`);
    const order: DiskKind[] = this.host.config.bootOrder?.length ? this.host.config.bootOrder : ['cdrom', 'disk', 'floppy'];
    for (let i = next ? this.bootIndex + 1 : 0; i < order.length; i++) {
      const kind = order[i];
      this.bootIndex = i;
      const drive = this.disk.drives.find((d) => d.kind === kind && !d.emulated);
      if (!drive) continue;
      const file = drive.device.path;
      try {
        if (kind === 'cdrom') {
          const et = readElTorito(drive.device);
          if (typeof et === 'string') {
            reasons.push(`${file}: ${et}`);
            continue;
          }
          const { drive: dl, segment } = this.disk.bootCd(drive, et);
          this.launch({ ss: 0, sp: 0x7c00, ds: 0, es: 0, dx: dl, flags: 0x0202, cs: segment, ip: 0 });
          this.bootedFrom = `${file} (CD-ROM ${dl.toString(16)}h)`;
          this.bootErrors = reasons;
          return true;
        }
        const problem = mbrBootProblem(drive.device, kind === 'disk' ? 'disk' : 'floppy');
        if (problem) {
          reasons.push(`${file}: ${problem}`);
          continue;
        }
        const sector = new Uint8Array(512);
        drive.device.read(0, sector);
        mem.writeBytes(0x7c00, sector);
        this.launch({ ss: 0, sp: 0x7c00, ds: 0, es: 0, dx: drive.number, flags: 0x0202, cs: 0, ip: 0x7c00 });
        this.bootedFrom = `${file} (${kind} ${drive.number.toString(16)}h)`;
        this.bootErrors = reasons;
        return true;
      } catch (e) {
        reasons.push(`${file}: ${(e as Error).message}`);
      }
    }
    if (!reasons.length) reasons.push('no boot device attached');
    this.bootIndex = order.length;
    this.reportBootFailure(reasons);
    return false;
  }

  private reportBootFailure(reasons: string[]): void {
    this.bootErrors = reasons;
    const text = `No bootable device.\r\n${reasons.map((r) => `  ${r}\r\n`).join('')}`;
    this.video.print(text);
    if (this.mem.read16(BDA.COM_PORTS)) for (const c of text) this.io.out8(0x3f8, c.charCodeAt(0));
    this.log(`bios: no bootable device: ${reasons.join('; ')}`);
  }

  // ------------------------------------------------------------------ Device

  reset(): void {
    this.status = 0;
  }

  saveState(): DeviceState {
    const cd = this.disk.saveCdBoot();
    return {
      status: this.status,
      romScanNext: this.romScanNext,
      vbeMode: this.video.vbeMode,
      cdBoot: cd
        ? {
            cd: cd.cd,
            media: cd.boot.media,
            loadSegment: cd.boot.loadSegment,
            sectorCount: cd.boot.sectorCount,
            lba: cd.boot.lba,
            systemType: cd.boot.systemType,
          }
        : null,
    };
  }

  loadState(state: DeviceState): void {
    this.status = (state.status as number) ?? 0;
    this.romScanNext = (state.romScanNext as number) ?? 0xc0000;
    this.deriveSystemState();
    this.video.prepareVbe(findVgaFramebuffer(this.io));
    this.video.vbeMode = (state.vbeMode as number) ?? 0;
    const cd = state.cdBoot as { [k: string]: number } | null | undefined;
    this.disk.restore(
      this.options.drives(),
      cd
        ? {
            cd: cd.cd,
            boot: { media: cd.media, loadSegment: cd.loadSegment, sectorCount: cd.sectorCount, lba: cd.lba, systemType: cd.systemType },
          }
        : null,
    );
  }
}
