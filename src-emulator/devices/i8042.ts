/**
 * Intel 8042 keyboard controller (0x60 data, 0x64 status/command) with a PS/2 keyboard on its first
 * port and a PS/2 mouse (with the IntelliMouse wheel extension) on its auxiliary port.
 *
 * Host input arrives as set-1 scancodes (what `sendScancodes` takes); the keyboard emits them in its
 * active set: set 2 is produced by converting, and when the controller's translation bit is on the
 * bytes are translated back to set 1 on the way out, as on a real AT. Each device has its own queue;
 * the controller moves one byte at a time into its output buffer and raises IRQ 1 or IRQ 12 for it.
 * The output port carries A20 (bit 1) and the CPU reset line (bit 0); command 0xFE pulses reset.
 */
import type { IoBus } from '../machine/io-bus';
import type { IrqLine } from '../machine/irq';
import type { Device, DeviceState } from '../machine/device';

/** The 8042's set 2 -> set 1 translation table (for codes below 0x80). */
const XLATE = [
  0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
  0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
  0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
  0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
  0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
  0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
  0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
  0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
];

/** Set 1 make code -> set 2 make code (the inverse of the translation table). */
const SET1_TO_SET2 = new Uint8Array(128);
for (let s2 = 0x7f; s2 >= 1; s2--) if (XLATE[s2] < 0x80) SET1_TO_SET2[XLATE[s2]] = s2;
SET1_TO_SET2[0x41] = 0x83; // F7 is the one key whose set 2 code is above 0x7F

/** Translates a set 2 byte stream to set 1 (the controller's translation), for tests and tools. */
export function translateSet2ToSet1(bytes: ArrayLike<number>): number[] {
  const out: number[] = [];
  let brk = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0xf0) {
      brk = true;
      continue;
    }
    let t = b === 0x83 ? 0x41 : b < 0x80 ? XLATE[b] : b;
    if (brk) t |= 0x80;
    brk = false;
    out.push(t);
  }
  return out;
}

/** Converts a set 1 byte stream (with E0/E1 prefixes) to set 2. */
export function set1ToSet2(bytes: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0xe0 || b === 0xe1) {
      out.push(b);
      continue;
    }
    const code = SET1_TO_SET2[b & 0x7f];
    if (b & 0x80) out.push(0xf0);
    out.push(code || b & 0x7f);
  }
  return out;
}

const ST_OBF = 0x01, ST_SYS = 0x04, ST_CMD = 0x08, ST_UNLOCKED = 0x10, ST_AUXOBF = 0x20;
const CB_KBD_INT = 0x01, CB_AUX_INT = 0x02, CB_SYS = 0x04, CB_KBD_OFF = 0x10, CB_AUX_OFF = 0x20, CB_XLATE = 0x40;
const OUT_RESET = 0x01, OUT_A20 = 0x02;
const QUEUE_MAX = 1024;

export class I8042 implements Device {
  readonly name = 'i8042';
  /** The output port's A20 line changed. */
  onA20: (enabled: boolean) => void = () => {};
  /** The CPU reset line was pulsed (output port bit 0 low, or command 0xFE). */
  onReset: () => void = () => {};

  private status = ST_CMD | ST_UNLOCKED;
  private commandByte = CB_XLATE | CB_SYS | CB_KBD_INT | CB_AUX_OFF;
  private outputPort = OUT_RESET | OUT_A20 | 0x0c;
  /** A controller command waiting for its data byte (0x60, 0xD1, 0xD2, 0xD3, 0xD4), or 0. */
  private pendingCommand = 0;
  private ram = new Uint8Array(32);
  private outByte = 0;
  /** Source of the byte in the output buffer: 0 controller/keyboard, 1 aux. */
  private ctrlQueue: number[] = [];
  private kbdQueue: number[] = [];
  private auxQueue: number[] = [];

  // keyboard
  private kbdScanning = true;
  private kbdSet = 2;
  /** Keyboard command waiting for its argument (0xED, 0xF0, 0xF3), or 0. */
  private kbdPendingCmd = 0;
  private leds = 0;

  // mouse
  private mouseReporting = false;
  private mouseRemote = false;
  private mouseWrap = false;
  private mouseId = 0;
  private mouseRate = 100;
  private mouseResolution = 2;
  private mouseScaling21 = false;
  private mousePendingCmd = 0;
  private rateHistory: number[] = [];
  private mouseButtons = 0;
  private mouseDx = 0;
  private mouseDy = 0;
  private mouseDz = 0;

  constructor(
    io: IoBus,
    private readonly kbdIrq: IrqLine,
    private readonly auxIrq: IrqLine,
  ) {
    io.register(0x60, 1, { in8: () => this.readData(), out8: (_p, v) => this.writeData(v) });
    io.register(0x64, 1, { in8: () => this.status, out8: (_p, v) => this.writeCommand(v) });
    this.reset();
  }

  get a20(): boolean {
    return (this.outputPort & OUT_A20) !== 0;
  }

  get translation(): boolean {
    return (this.commandByte & CB_XLATE) !== 0;
  }

  get scancodeSet(): number {
    return this.kbdSet;
  }

  // ---- host input

  /** Key events as set 1 scancodes (E0/E1 prefixes included), converted to the keyboard's active set. */
  sendScancodes(bytes: ArrayLike<number>): void {
    if (!this.kbdScanning) return;
    const out = this.kbdSet === 2 && !this.translation ? set1ToSet2(bytes) : Array.from(bytes);
    for (const b of out) this.pushKbd(b);
    this.pump();
  }

  /** Relative motion: dx right, dy down (screen convention), buttons bit 0 left, 1 right, 2 middle; dz wheel, down positive. */
  mouseMove(dx: number, dy: number, buttons: number, dz = 0): void {
    const changed = buttons !== this.mouseButtons;
    this.mouseButtons = buttons & 7;
    this.mouseDx += dx;
    this.mouseDy -= dy; // PS/2: positive y is up
    this.mouseDz += dz;
    if (!this.mouseReporting || this.mouseRemote) return;
    if (!changed && this.mouseDx === 0 && this.mouseDy === 0 && this.mouseDz === 0) return;
    // Emit packets until the accumulated motion is consumed (each packet carries at most +-255).
    for (let guard = 0; guard < 64; guard++) {
      if (this.auxQueue.length + 4 > QUEUE_MAX) break;
      this.queueMousePacket();
      if (this.mouseDx === 0 && this.mouseDy === 0 && this.mouseDz === 0) break;
    }
    this.pump();
  }

  private queueMousePacket(): void {
    const clamp = (v: number) => Math.max(-256, Math.min(255, v));
    const dx = clamp(this.mouseDx);
    const dy = clamp(this.mouseDy);
    const dz = Math.max(-8, Math.min(7, this.mouseDz));
    this.mouseDx -= dx;
    this.mouseDy -= dy;
    this.mouseDz -= dz;
    this.auxQueue.push(0x08 | this.mouseButtons | (dx < 0 ? 0x10 : 0) | (dy < 0 ? 0x20 : 0), dx & 0xff, dy & 0xff);
    if (this.mouseId === 3) this.auxQueue.push(dz & 0xff);
    else if (this.mouseId === 4) this.auxQueue.push(dz & 0x0f);
  }

  // ---- output buffer

  private pushKbd(b: number): void {
    if (this.kbdQueue.length < QUEUE_MAX) this.kbdQueue.push(b);
  }

  private pushAux(b: number): void {
    if (this.auxQueue.length < QUEUE_MAX) this.auxQueue.push(b);
  }

  /** Moves the next byte into the output buffer when it is empty, and drives the IRQ lines. */
  private pump(): void {
    if (!(this.status & ST_OBF)) {
      if (this.ctrlQueue.length) {
        this.outByte = this.ctrlQueue.shift()!;
        this.status = (this.status | ST_OBF) & ~ST_AUXOBF;
      } else if (this.kbdQueue.length && !(this.commandByte & CB_KBD_OFF)) {
        this.outByte = this.kbdQueue.shift()!;
        this.status = (this.status | ST_OBF) & ~ST_AUXOBF;
      } else if (this.auxQueue.length && !(this.commandByte & CB_AUX_OFF)) {
        this.outByte = this.auxQueue.shift()!;
        this.status |= ST_OBF | ST_AUXOBF;
      }
    }
    this.updateIrqs();
  }

  private updateIrqs(): void {
    const full = (this.status & ST_OBF) !== 0;
    const aux = (this.status & ST_AUXOBF) !== 0;
    if (full && !aux && this.commandByte & CB_KBD_INT) this.kbdIrq.raise();
    else this.kbdIrq.lower();
    if (full && aux && this.commandByte & CB_AUX_INT) this.auxIrq.raise();
    else this.auxIrq.lower();
  }

  private readData(): number {
    const v = this.outByte;
    if (this.status & ST_OBF) {
      this.status &= ~(ST_OBF | ST_AUXOBF);
      this.kbdIrq.lower();
      this.auxIrq.lower();
      this.pump();
    }
    return v;
  }

  private setCommandByte(v: number): void {
    this.commandByte = v;
    this.ram[0] = v;
    this.status = (this.status & ~ST_SYS) | (v & CB_SYS);
    this.pump();
  }

  private writeOutputPort(v: number): void {
    const oldA20 = this.outputPort & OUT_A20;
    this.outputPort = v | 0x0c;
    if ((v & OUT_A20) !== oldA20) this.onA20((v & OUT_A20) !== 0);
    if (!(v & OUT_RESET)) {
      this.outputPort |= OUT_RESET;
      this.onReset();
    }
  }

  private writeCommand(v: number): void {
    this.status |= ST_CMD;
    this.pendingCommand = 0;
    if (v >= 0x20 && v <= 0x3f) {
      this.ctrlQueue.push(this.ram[v & 0x1f]);
    } else if (v >= 0x60 && v <= 0x7f) {
      this.pendingCommand = v;
    } else {
      switch (v) {
        case 0xa1: // controller firmware version
          this.ctrlQueue.push(0x00);
          break;
        case 0xa4: // password installed?
          this.ctrlQueue.push(0xf1);
          break;
        case 0xa7:
          this.setCommandByte(this.commandByte | CB_AUX_OFF);
          break;
        case 0xa8:
          this.setCommandByte(this.commandByte & ~CB_AUX_OFF);
          break;
        case 0xa9: // test aux port
        case 0xab: // test keyboard port
          this.ctrlQueue.push(0x00);
          break;
        case 0xaa: // self test
          this.ctrlQueue.push(0x55);
          this.setCommandByte(this.commandByte | CB_SYS);
          break;
        case 0xad:
          this.setCommandByte(this.commandByte | CB_KBD_OFF);
          break;
        case 0xae:
          this.setCommandByte(this.commandByte & ~CB_KBD_OFF);
          break;
        case 0xc0: // input port: keyboard not inhibited, colour display
          this.ctrlQueue.push(0xbf);
          break;
        case 0xd0: // read output port
          this.ctrlQueue.push(this.outputPort | (this.status & ST_OBF ? 0x10 : 0) | (this.status & ST_AUXOBF ? 0x20 : 0));
          break;
        case 0xd1:
        case 0xd2:
        case 0xd3:
        case 0xd4:
          this.pendingCommand = v;
          break;
        case 0xdd: // disable A20 (HP Vectra)
          this.writeOutputPort(this.outputPort & ~OUT_A20);
          break;
        case 0xdf:
          this.writeOutputPort(this.outputPort | OUT_A20);
          break;
        case 0xe0: // test inputs
          this.ctrlQueue.push(0x00);
          break;
        default:
          if (v >= 0xf0) {
            // Pulse output port bits whose mask bit is 0; bit 0 is the CPU reset line.
            if (!(v & 1)) this.onReset();
          }
      }
    }
    this.pump();
  }

  private writeData(v: number): void {
    this.status &= ~ST_CMD;
    const cmd = this.pendingCommand;
    this.pendingCommand = 0;
    if (cmd >= 0x60 && cmd <= 0x7f) {
      if (cmd === 0x60) this.setCommandByte(v);
      else this.ram[cmd & 0x1f] = v;
    } else if (cmd === 0xd1) {
      this.writeOutputPort(v);
    } else if (cmd === 0xd2) {
      this.pushKbd(v);
    } else if (cmd === 0xd3) {
      this.pushAux(v);
    } else if (cmd === 0xd4) {
      this.mouseCommand(v);
    } else {
      // Writing to the keyboard re-enables its clock, as on the chip.
      if (this.commandByte & CB_KBD_OFF) this.setCommandByte(this.commandByte & ~CB_KBD_OFF);
      this.keyboardCommand(v);
    }
    this.pump();
  }

  // ---- PS/2 keyboard

  private keyboardCommand(v: number): void {
    const pending = this.kbdPendingCmd;
    if (pending) {
      this.kbdPendingCmd = 0;
      switch (pending) {
        case 0xed:
          this.leds = v & 7;
          this.pushKbd(0xfa);
          return;
        case 0xf3:
          this.pushKbd(0xfa);
          return;
        case 0xf0:
          this.pushKbd(0xfa);
          if (v === 0) {
            const set = this.kbdSet;
            // The set number is itself a scancode-like byte that the controller translates.
            this.pushKbd(this.translation ? [0, 0x43, 0x41, 0x3f][set] : set);
          } else if (v >= 1 && v <= 3) {
            this.kbdSet = v === 3 ? 2 : v; // set 3 is not offered: keep set 2
          }
          return;
      }
    }
    switch (v) {
      case 0xed:
      case 0xf0:
      case 0xf3:
        this.kbdPendingCmd = v;
        this.pushKbd(0xfa);
        break;
      case 0xee: // echo
        this.pushKbd(0xee);
        break;
      case 0xf2: // identify: MF2 keyboard (translated ID when translation is on)
        this.pushKbd(0xfa);
        this.pushKbd(0xab);
        this.pushKbd(this.translation ? 0x41 : 0x83);
        break;
      case 0xf4:
        this.kbdScanning = true;
        this.pushKbd(0xfa);
        break;
      case 0xf5:
        this.kbdScanning = false;
        this.kbdQueue = [];
        this.pushKbd(0xfa);
        break;
      case 0xf6:
        this.kbdScanning = true;
        this.kbdSet = 2;
        this.pushKbd(0xfa);
        break;
      case 0xfe: // resend: nothing is ever lost here
        this.pushKbd(0xfa);
        break;
      case 0xff:
        this.kbdQueue = [];
        this.kbdSet = 2;
        this.kbdScanning = true;
        this.leds = 0;
        this.pushKbd(0xfa);
        this.pushKbd(0xaa);
        break;
      default:
        if (v >= 0xf7 && v <= 0xfd) this.pushKbd(0xfa);
        else this.pushKbd(0xfe);
    }
  }

  // ---- PS/2 mouse

  private mouseCommand(v: number): void {
    const pending = this.mousePendingCmd;
    if (pending) {
      this.mousePendingCmd = 0;
      if (pending === 0xf3) {
        this.mouseRate = v;
        this.rateHistory.push(v);
        if (this.rateHistory.length > 3) this.rateHistory.shift();
        const h = this.rateHistory.join(',');
        // The IntelliMouse knocks: 200,100,80 enables the wheel (ID 3); 200,200,80 the 5-button mouse (ID 4).
        if (h === '200,100,80' && this.mouseId === 0) this.mouseId = 3;
        else if (h === '200,200,80' && this.mouseId === 3) this.mouseId = 4;
      } else if (pending === 0xe8) {
        this.mouseResolution = v & 3;
      }
      this.pushAux(0xfa);
      return;
    }
    if (this.mouseWrap && v !== 0xec && v !== 0xff) {
      this.pushAux(v);
      return;
    }
    switch (v) {
      case 0xe6:
        this.mouseScaling21 = false;
        this.pushAux(0xfa);
        break;
      case 0xe7:
        this.mouseScaling21 = true;
        this.pushAux(0xfa);
        break;
      case 0xe8:
      case 0xf3:
        this.mousePendingCmd = v;
        this.pushAux(0xfa);
        break;
      case 0xe9: // status request
        this.pushAux(0xfa);
        this.pushAux((this.mouseRemote ? 0x40 : 0) | (this.mouseReporting ? 0x20 : 0) | (this.mouseScaling21 ? 0x10 : 0) | (this.mouseButtons & 1 ? 4 : 0) | (this.mouseButtons & 4 ? 2 : 0) | (this.mouseButtons & 2 ? 1 : 0));
        this.pushAux(this.mouseResolution);
        this.pushAux(this.mouseRate);
        break;
      case 0xea:
        this.mouseRemote = false;
        this.pushAux(0xfa);
        break;
      case 0xeb: // read data
        this.pushAux(0xfa);
        this.queueMousePacket();
        break;
      case 0xec:
        this.mouseWrap = false;
        this.pushAux(0xfa);
        break;
      case 0xee:
        this.mouseWrap = true;
        this.pushAux(0xfa);
        break;
      case 0xf0:
        this.mouseRemote = true;
        this.pushAux(0xfa);
        break;
      case 0xf2:
        this.pushAux(0xfa);
        this.pushAux(this.mouseId);
        break;
      case 0xf4:
        this.mouseReporting = true;
        this.pushAux(0xfa);
        break;
      case 0xf5:
        this.mouseReporting = false;
        this.pushAux(0xfa);
        break;
      case 0xf6:
        this.mouseDefaults();
        this.pushAux(0xfa);
        break;
      case 0xff:
        this.mouseDefaults();
        this.mouseId = 0;
        this.mouseWrap = false;
        this.auxQueue = [];
        this.pushAux(0xfa);
        this.pushAux(0xaa);
        this.pushAux(0x00);
        break;
      default:
        this.pushAux(0xfe);
    }
  }

  private mouseDefaults(): void {
    this.mouseReporting = false;
    this.mouseRemote = false;
    this.mouseRate = 100;
    this.mouseResolution = 2;
    this.mouseScaling21 = false;
    this.mouseDx = this.mouseDy = this.mouseDz = 0;
    this.rateHistory = [];
  }

  // ---- Device

  reset(): void {
    this.status = ST_CMD | ST_UNLOCKED;
    this.commandByte = CB_XLATE | CB_SYS | CB_KBD_INT | CB_AUX_OFF;
    this.ram.fill(0);
    this.ram[0] = this.commandByte;
    this.status |= ST_SYS;
    this.outputPort = OUT_RESET | OUT_A20 | 0x0c;
    this.pendingCommand = 0;
    this.ctrlQueue = [];
    this.kbdQueue = [];
    this.auxQueue = [];
    this.outByte = 0;
    this.kbdScanning = true;
    this.kbdSet = 2;
    this.kbdPendingCmd = 0;
    this.leds = 0;
    this.mouseDefaults();
    this.mouseId = 0;
    this.mouseWrap = false;
    this.mousePendingCmd = 0;
    this.mouseButtons = 0;
    this.kbdIrq.lower();
    this.auxIrq.lower();
  }

  saveState(): DeviceState {
    return {
      status: this.status, commandByte: this.commandByte, outputPort: this.outputPort, pendingCommand: this.pendingCommand,
      ram: this.ram.slice(), outByte: this.outByte, ctrlQueue: this.ctrlQueue.slice(), kbdQueue: this.kbdQueue.slice(),
      auxQueue: this.auxQueue.slice(), kbdScanning: this.kbdScanning, kbdSet: this.kbdSet, kbdPendingCmd: this.kbdPendingCmd,
      leds: this.leds, mouseReporting: this.mouseReporting, mouseRemote: this.mouseRemote, mouseWrap: this.mouseWrap,
      mouseId: this.mouseId, mouseRate: this.mouseRate, mouseResolution: this.mouseResolution, mouseScaling21: this.mouseScaling21,
      mousePendingCmd: this.mousePendingCmd, rateHistory: this.rateHistory.slice(), mouseButtons: this.mouseButtons,
    };
  }

  loadState(s: DeviceState): void {
    const self = this as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(s)) {
      if (k === 'ram') this.ram.set(v as Uint8Array);
      else self[k] = Array.isArray(v) ? v.slice() : v;
    }
    this.updateIrqs();
  }
}
