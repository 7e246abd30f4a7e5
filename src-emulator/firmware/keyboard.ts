/**
 * The keyboard side of the built-in BIOS: the IRQ1 handler (reads port 0x60, tracks shift
 * states, translates scancode set 1 into BIOS key codes, fills the BDA ring buffer) and INT 16h.
 */
import { BDA } from './bda';
import type { BiosEnv } from './env';
import type { Regs } from './regs';

// [normal, shift, ctrl, alt] key codes (scan << 8 | ascii) for set-1 make codes 0x00..0x58.
const K: [number, number, number, number][] = [];
function def(sc: number, n: number, s: number, c: number, a: number) {
  K[sc] = [n, s, c, a];
}
def(0x01, 0x011b, 0x011b, 0x011b, 0x0100);
const digits = '1234567890';
const shifted = '!@#$%^&*()';
for (let i = 0; i < 10; i++) {
  const sc = 0x02 + i;
  const ctrl = sc === 0x03 ? 0x0300 : sc === 0x07 ? 0x071e : 0;
  def(sc, (sc << 8) | digits.charCodeAt(i), (sc << 8) | shifted.charCodeAt(i), ctrl, (0x78 + i) << 8);
}
def(0x0c, 0x0c2d, 0x0c5f, 0x0c1f, 0x8200);
def(0x0d, 0x0d3d, 0x0d2b, 0, 0x8300);
def(0x0e, 0x0e08, 0x0e08, 0x0e7f, 0x0e00);
def(0x0f, 0x0f09, 0x0f00, 0x9400, 0xa500);
const letters: [number, string][] = [
  [0x10, 'qwertyuiop'],
  [0x1e, 'asdfghjkl'],
  [0x2c, 'zxcvbnm'],
];
for (const [start, row] of letters) {
  for (let i = 0; i < row.length; i++) {
    const sc = start + i;
    const ch = row.charCodeAt(i);
    def(sc, (sc << 8) | ch, (sc << 8) | (ch - 0x20), (sc << 8) | (ch - 0x60), sc << 8);
  }
}
def(0x1a, 0x1a5b, 0x1a7b, 0x1a1b, 0x1a00);
def(0x1b, 0x1b5d, 0x1b7d, 0x1b1d, 0x1b00);
def(0x1c, 0x1c0d, 0x1c0d, 0x1c0a, 0x1c00);
def(0x27, 0x273b, 0x273a, 0, 0x2700);
def(0x28, 0x2827, 0x2822, 0, 0x2800);
def(0x29, 0x2960, 0x297e, 0, 0x2900);
def(0x2b, 0x2b5c, 0x2b7c, 0x2b1c, 0x2b00);
def(0x33, 0x332c, 0x333c, 0, 0x3300);
def(0x34, 0x342e, 0x343e, 0, 0x3400);
def(0x35, 0x352f, 0x353f, 0, 0x3500);
def(0x37, 0x372a, 0x372a, 0x9600, 0x3700);
def(0x39, 0x3920, 0x3920, 0x3920, 0x3920);
for (let i = 0; i < 10; i++) def(0x3b + i, (0x3b + i) << 8, (0x54 + i) << 8, (0x5e + i) << 8, (0x68 + i) << 8);
// Keypad: [normal (nav), numlock/shift digit, ctrl].
const keypad: [number, number, number][] = [
  [0x47, 0x37, 0x7700],
  [0x48, 0x38, 0x8d00],
  [0x49, 0x39, 0x8400],
  [0x4b, 0x34, 0x7300],
  [0x4c, 0x35, 0x8f00],
  [0x4d, 0x36, 0x7400],
  [0x4f, 0x31, 0x7500],
  [0x50, 0x32, 0x9100],
  [0x51, 0x33, 0x7600],
  [0x52, 0x30, 0x9200],
  [0x53, 0x2e, 0x9300],
];
for (const [sc, digit, ctrl] of keypad) def(sc, sc << 8, (sc << 8) | digit, ctrl, 0);
def(0x4a, 0x4a2d, 0x4a2d, 0x8e00, 0x4a00);
def(0x4e, 0x4e2b, 0x4e2b, 0x9000, 0x4e00);
def(0x57, 0x8500, 0x8700, 0x8900, 0x8b00);
def(0x58, 0x8600, 0x8800, 0x8a00, 0x8c00);

// Shift-state bits in BDA 0x417 and 0x418.
const RSHIFT = 0x01,
  LSHIFT = 0x02,
  CTRL = 0x04,
  ALT = 0x08,
  SCROLL = 0x10,
  NUM = 0x20,
  CAPS = 0x40,
  INSERT = 0x80;

/** Translates a set-1 make code given shift state; exported for tests. */
export function translateScancode(sc: number, flags: number, extended: boolean): number {
  const entry = K[sc];
  if (!entry) return 0;
  const shift = (flags & (LSHIFT | RSHIFT)) !== 0;
  if (extended) {
    // Grey keys: ascii E0 marks them for INT 16h AH=10h callers.
    if (sc === 0x1c) return flags & CTRL ? 0xe00a : 0xe00d;
    if (sc === 0x35) return 0xe02f;
    if (sc >= 0x47 && sc <= 0x53 && sc !== 0x4a && sc !== 0x4e) {
      if (flags & ALT) return (sc + 0x50) << 8;
      if (flags & CTRL) return (entry[2] & 0xff00) | 0xe0;
      return (sc << 8) | 0xe0;
    }
  }
  let code: number;
  if (flags & ALT) code = entry[3];
  else if (flags & CTRL) code = entry[2];
  else if (sc >= 0x47 && sc <= 0x53 && sc !== 0x4a && sc !== 0x4e) code = (flags & NUM ? !shift : shift) ? entry[1] : entry[0];
  else {
    code = shift ? entry[1] : entry[0];
    const ascii = code & 0xff;
    if (flags & CAPS && ((ascii >= 0x41 && ascii <= 0x5a) || (ascii >= 0x61 && ascii <= 0x7a))) code = shift ? entry[0] : entry[1];
  }
  return code;
}

export class KeyboardBios {
  constructor(private readonly env: BiosEnv) {}

  private get mem() {
    return this.env.mem;
  }

  init(): void {
    const m = this.mem;
    m.write16(BDA.KBD_HEAD, 0x1e);
    m.write16(BDA.KBD_TAIL, 0x1e);
    m.write16(BDA.KBD_BUF_START, 0x1e);
    m.write16(BDA.KBD_BUF_END, 0x3e);
    m.write8(BDA.KBD_FLAGS1, 0);
    m.write8(BDA.KBD_FLAGS2, 0);
    m.write8(BDA.KBD_FLAGS3, 0x10); // 101/102-key keyboard
    m.write8(BDA.KBD_LEDS, 0);
  }

  /** Appends a key code to the ring buffer; false when full. */
  enqueue(code: number): boolean {
    const m = this.mem;
    const start = m.read16(BDA.KBD_BUF_START) || 0x1e;
    const end = m.read16(BDA.KBD_BUF_END) || 0x3e;
    const tail = m.read16(BDA.KBD_TAIL);
    let next = tail + 2;
    if (next >= end) next = start;
    if (next === m.read16(BDA.KBD_HEAD)) return false;
    m.write16(0x400 + tail, code);
    m.write16(BDA.KBD_TAIL, next);
    return true;
  }

  private peek(): number | null {
    const m = this.mem;
    const head = m.read16(BDA.KBD_HEAD);
    if (head === m.read16(BDA.KBD_TAIL)) return null;
    return m.read16(0x400 + head);
  }

  private dequeue(): number | null {
    const m = this.mem;
    const code = this.peek();
    if (code === null) return null;
    let head = m.read16(BDA.KBD_HEAD) + 2;
    if (head >= (m.read16(BDA.KBD_BUF_END) || 0x3e)) head = m.read16(BDA.KBD_BUF_START) || 0x1e;
    m.write16(BDA.KBD_HEAD, head);
    return code;
  }

  /** IRQ1: one byte from the controller, or null (nothing, or a mouse byte). */
  irq(): number | null {
    const io = this.env.io;
    // Only read when the output buffer holds keyboard data (bit 5 clear: not the mouse).
    const st = io.in8(0x64);
    if (!(st & 0x01) || st & 0x20) return null;
    return io.in8(0x60);
  }

  scancode(sc: number): void {
    const m = this.mem;
    let f1 = m.read8(BDA.KBD_FLAGS1);
    let f2 = m.read8(BDA.KBD_FLAGS2);
    let f3 = m.read8(BDA.KBD_FLAGS3);
    if (sc === 0xe0) {
      m.write8(BDA.KBD_FLAGS3, f3 | 0x02);
      return;
    }
    if (sc === 0xe1) {
      m.write8(BDA.KBD_FLAGS3, f3 | 0x01);
      return;
    }
    const extended = (f3 & 0x02) !== 0;
    const e1 = (f3 & 0x01) !== 0;
    f3 &= ~0x03;
    m.write8(BDA.KBD_FLAGS3, f3);
    if (e1) return; // Pause: ignored
    const release = (sc & 0x80) !== 0;
    const code = sc & 0x7f;
    const set = (bit: number, on: boolean) => (f1 = on ? f1 | bit : f1 & ~bit);
    switch (code) {
      case 0x2a:
        if (!extended) set(LSHIFT, !release); // E0 2A is a fake shift
        break;
      case 0x36:
        if (!extended) set(RSHIFT, !release);
        break;
      case 0x1d:
        set(CTRL, !release);
        if (!extended) f2 = release ? f2 & ~0x01 : f2 | 0x01;
        break;
      case 0x38:
        set(ALT, !release);
        if (!extended) f2 = release ? f2 & ~0x02 : f2 | 0x02;
        break;
      case 0x3a:
        if (!release && !(f2 & 0x40)) f1 ^= CAPS;
        f2 = release ? f2 & ~0x40 : f2 | 0x40;
        break;
      case 0x45:
        if (!release && !(f2 & 0x20)) f1 ^= NUM;
        f2 = release ? f2 & ~0x20 : f2 | 0x20;
        break;
      case 0x46:
        if (!release && !(f2 & 0x10)) f1 ^= SCROLL;
        f2 = release ? f2 & ~0x10 : f2 | 0x10;
        break;
      case 0x52:
        if (!release && !(f1 & (CTRL | ALT)) && !(f1 & NUM && !extended)) f1 ^= INSERT;
        break;
      default:
        break;
    }
    m.write8(BDA.KBD_FLAGS1, f1);
    m.write8(BDA.KBD_FLAGS2, f2);
    if (release || [0x2a, 0x36, 0x1d, 0x38, 0x3a, 0x45, 0x46].includes(code)) return;
    if (code === 0x53 && f1 & CTRL && f1 & ALT) {
      // Ctrl+Alt+Del: warm reboot through the keyboard controller's reset line.
      m.write16(BDA.SOFT_RESET_FLAG, 0x1234);
      this.env.io.out8(0x64, 0xfe);
      return;
    }
    const key = translateScancode(code, f1, extended);
    if (key) this.enqueue(key);
  }

  /** INT 16h. Returns true when the caller must wait for a key and retry. */
  handle(r: Regs): boolean {
    const ah = r.ah;
    switch (ah) {
      case 0x00:
      case 0x10: {
        const code = this.dequeue();
        if (code === null) return true;
        r.ax = ah === 0x00 && (code & 0xff) === 0xe0 ? code & 0xff00 : code;
        return false;
      }
      case 0x01:
      case 0x11: {
        const code = this.peek();
        if (code === null) {
          r.zf = true;
          return false;
        }
        r.zf = false;
        r.ax = ah === 0x01 && (code & 0xff) === 0xe0 ? code & 0xff00 : code;
        return false;
      }
      case 0x02:
        r.al = this.mem.read8(BDA.KBD_FLAGS1);
        return false;
      case 0x12: {
        const f2 = this.mem.read8(BDA.KBD_FLAGS2);
        r.al = this.mem.read8(BDA.KBD_FLAGS1);
        r.ah = (f2 & 0x73) | (this.mem.read8(BDA.KBD_FLAGS3) & 0x0c);
        return false;
      }
      case 0x03:
        return false;
      case 0x05:
        r.al = this.enqueue(r.cx) ? 0 : 1;
        return false;
      case 0x09:
        r.al = 0x30; // 10h-12h supported
        return false;
      case 0x0a:
        r.bx = 0x41ab;
        return false;
      default:
        return false;
    }
  }
}
