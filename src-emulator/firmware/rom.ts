/**
 * The built-in BIOS ROM image, generated at run time: a few hundred bytes of real-mode stubs that
 * trap into the TypeScript BIOS through TRAP_PORT, the reset vector, the boot hand-off code and
 * fixed data (fonts, diskette parameter table). Tables written at POST go into the TABLES area.
 *
 * A service stub (vector N):
 *     push ax / push dx / mov dx, TRAP_PORT
 *   again: mov al, N / out dx, al / in al, dx / test al, al / jnz wait
 *     pop dx / pop ax / iret
 *   wait: sti / hlt / cli / jmp again
 * so the TypeScript handler sees the caller's AX and DX on the stack at SS:SP+2 and SS:SP, the
 * return FLAGS image at SS:SP+8 (CF/ZF results are written there), and can ask to wait for an
 * interrupt (INT 16h read, INT 15h 86h) by answering 1 to the `in`.
 */
import { VGA_FONT_8X16, VGA_FONT_8X8 } from '../devices/vga-font';
import { RomOffset, ROM_SEGMENT, ROM_SIZE, TRAP_PORT, TrapId, POST_STACK_TOP } from './layout';

class Asm {
  readonly out: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: { at: number; label: string; kind: 'rel8' | 'rel16' | 'abs16' }[] = [];
  constructor(readonly origin: number) {}
  get pc(): number {
    return this.origin + this.out.length;
  }
  label(name: string): void {
    if (this.labels.has(name)) throw new Error(`duplicate label ${name}`);
    this.labels.set(name, this.pc);
  }
  db(...b: number[]): this {
    for (const x of b) this.out.push(x & 0xff);
    return this;
  }
  dw(v: number): this {
    return this.db(v & 0xff, (v >> 8) & 0xff);
  }
  rel8(op: number, label: string): this {
    this.db(op);
    this.fixups.push({ at: this.out.length, label, kind: 'rel8' });
    return this.db(0);
  }
  jmp16(label: string): this {
    this.db(0xe9);
    this.fixups.push({ at: this.out.length, label, kind: 'rel16' });
    return this.dw(0);
  }
  abs16(label: string): this {
    this.fixups.push({ at: this.out.length, label, kind: 'abs16' });
    return this.dw(0);
  }
  addr(name: string): number {
    const a = this.labels.get(name);
    if (a === undefined) throw new Error(`unknown label ${name}`);
    return a;
  }
  resolve(): void {
    for (const f of this.fixups) {
      const target = this.addr(f.label);
      if (f.kind === 'rel8') {
        const d = target - (this.origin + f.at + 1);
        if (d < -128 || d > 127) throw new Error(`rel8 out of range to ${f.label}`);
        this.out[f.at] = d & 0xff;
      } else if (f.kind === 'rel16') {
        const d = (target - (this.origin + f.at + 2)) & 0xffff;
        this.out[f.at] = d & 0xff;
        this.out[f.at + 1] = d >> 8;
      } else {
        this.out[f.at] = target & 0xff;
        this.out[f.at + 1] = (target >> 8) & 0xff;
      }
    }
  }
}

/** Launch block fields (words), read by the boot hand-off code. */
export const LaunchField = { SS: 0, SP: 2, DS: 4, ES: 6, DX: 8, FLAGS: 10, IP: 12, CS: 14 } as const;

export interface BiosRom {
  image: Uint8Array;
  /** Offset (in segment F000) of each vector's handler. */
  vectors: number[];
  /** Offset of the 16-byte launch block. */
  launchBlock: number;
  /** Offset of the far pointer the POST option-ROM loop calls through. */
  romCallPtr: number;
  /** Offset of the byte where IRQ1 leaves the scancode for INT 15h AH=4Fh. */
  kbdScan: number;
  /** The services that trap (vector numbers). */
  serviceVectors: number[];
}

/** Vectors whose handler is a trapping service stub. */
export const SERVICE_VECTORS = [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x1a];

export function buildBiosRom(): BiosRom {
  const image = new Uint8Array(ROM_SIZE);
  const a = new Asm(RomOffset.CODE);
  const trapLo = TRAP_PORT & 0xff;
  const trapHi = TRAP_PORT >> 8;

  a.label('iret');
  a.db(0xcf);

  // Data: launch block and the option-ROM call pointer.
  a.label('launch_block');
  for (let i = 0; i < 16; i++) a.db(0);
  a.label('rom_ptr');
  a.dw(0).dw(0);
  a.label('kbd_scan');
  a.db(0);

  const serviceStub = (id: number, label: string) => {
    a.label(label);
    a.db(0x50, 0x52, 0xba, trapLo, trapHi); // push ax; push dx; mov dx, TRAP
    a.label(`${label}_again`);
    a.db(0xb0, id, 0xee, 0xec, 0x84, 0xc0); // mov al, id; out dx, al; in al, dx; test al, al
    a.rel8(0x75, `${label}_wait`); // jnz wait
    a.db(0x5a, 0x58, 0xcf); // pop dx; pop ax; iret
    a.label(`${label}_wait`);
    a.db(0xfb, 0xf4, 0xfa); // sti; hlt; cli
    a.rel8(0xeb, `${label}_again`);
  };
  for (const v of SERVICE_VECTORS) serviceStub(v, `int${v.toString(16)}`);

  // INT 19h (boot) and INT 18h (boot failed: try the next device): the TypeScript side prepares the
  // launch block; 0 = go, else halt (the message is on screen and COM1).
  for (const v of [0x19, 0x18]) {
    a.label(`int${v.toString(16)}`);
    a.db(0x50, 0x52, 0xba, trapLo, trapHi, 0xb0, v, 0xee, 0xec, 0x84, 0xc0);
    a.rel8(0x75, 'boot_fail');
    a.db(0x5a, 0x58);
    a.jmp16('launch');
  }
  a.label('boot_fail');
  a.db(0xfb, 0xf4); // sti; hlt
  a.rel8(0xeb, 'boot_fail');

  // IRQ0: ticks in TypeScript, then the user hook INT 1Ch, then EOI.
  a.label('irq0');
  a.db(0x50, 0x52, 0xba, trapLo, trapHi, 0xb0, 0x08, 0xee);
  a.db(0xcd, 0x1c); // int 1Ch
  a.db(0xb0, 0x20, 0xe6, 0x20); // EOI master
  a.db(0x5a, 0x58, 0xcf);

  // IRQ1: TypeScript reads port 0x60 and leaves the scancode in kbd_scan (status 1 = a key byte);
  // INT 15h AH=4Fh may then translate (AL) or swallow it (CF clear), as keyboard layout drivers
  // expect; trap 0xF4 processes the resulting scancode, found at SS:SP.
  a.label('irq1');
  a.db(0x50, 0x52, 0xba, trapLo, trapHi, 0xb0, 0x09, 0xee, 0xec, 0x84, 0xc0);
  a.rel8(0x74, 'irq1_eoi');
  a.db(0x2e, 0xa0); // mov al, cs:[kbd_scan]
  a.abs16('kbd_scan');
  a.db(0xb4, 0x4f, 0xf9, 0xcd, 0x15); // mov ah, 4Fh; stc; int 15h
  a.rel8(0x73, 'irq1_eoi'); // jnc: swallowed
  a.db(0x50, 0xba, trapLo, trapHi, 0xb0, TrapId.KEY, 0xee, 0x58); // push ax; mov dx,TRAP; mov al,F4h; out; pop ax
  a.label('irq1_eoi');
  a.db(0xb0, 0x20, 0xe6, 0x20);
  a.db(0x5a, 0x58, 0xcf);

  // IRQ12: the PS/2 mouse BIOS collects the byte; 1 = a packet for the driver's handler, which is
  // called far with the status, X, Y and Z words (from the EBDA) on the stack.
  a.label('irq12');
  a.db(0x50, 0x52, 0xba, trapLo, trapHi, 0xb0, 0x74, 0xee, 0xec, 0x84, 0xc0);
  a.rel8(0x74, 'irq12_eoi');
  a.db(0x60, 0x1e, 0x06); // pusha; push ds; push es
  a.db(0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0x1e, 0x0e, 0x04); // xor ax,ax; mov ds,ax; mov ds,[040Eh]
  for (const off of [0x30, 0x32, 0x34, 0x36]) a.db(0xff, 0x36, off, 0x00); // push word [off]
  a.db(0xff, 0x1e, 0x22, 0x00); // call far [22h]
  a.db(0x83, 0xc4, 0x08); // add sp, 8
  a.db(0x07, 0x1f, 0x61); // pop es; pop ds; popa
  a.label('irq12_eoi');
  a.db(0xb0, 0x20, 0xe6, 0xa0, 0xe6, 0x20, 0x5a, 0x58, 0xcf);

  // Unclaimed master IRQ: EOI.
  a.label('irq_master');
  a.db(0x50, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf);
  // IRQ7 may be spurious: EOI only when the in-service bit is really set (OCW3 read ISR).
  a.label('irq7');
  a.db(0x50, 0xb0, 0x0b, 0xe6, 0x20, 0xe4, 0x20, 0xa8, 0x80); // push ax; mov al,0Bh; out 20h,al; in al,20h; test al,80h
  a.rel8(0x74, 'irq7_done');
  a.db(0xb0, 0x20, 0xe6, 0x20);
  a.label('irq7_done');
  a.db(0x58, 0xcf);
  // IRQ15 likewise on the slave; a spurious one still needs the master's cascade EOI.
  a.label('irq15');
  a.db(0x50, 0xb0, 0x0b, 0xe6, 0xa0, 0xe4, 0xa0, 0xa8, 0x80);
  a.rel8(0x74, 'irq15_master');
  a.db(0xb0, 0x20, 0xe6, 0xa0);
  a.label('irq15_master');
  a.db(0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf);
  // Unclaimed slave IRQ: acknowledge the RTC (harmless for others), EOI both.
  a.label('irq_slave');
  a.db(0x50, 0xb0, 0x0c, 0xe6, 0x70, 0xe4, 0x71); // mov al,0Ch; out 70h,al; in al,71h
  a.db(0xb0, 0x20, 0xe6, 0xa0, 0xe6, 0x20, 0x58, 0xcf);

  // Boot hand-off: load the registers from the launch block and jump.
  a.label('launch');
  const lb = (f: number) => a.addr('launch_block') + f;
  const csWord = (modrmPrefix: number[], field: number) => {
    a.db(0x2e, ...modrmPrefix);
    a.dw(lb(field));
  };
  a.db(0xfa); // cli
  csWord([0xa1], LaunchField.SS); // mov ax, cs:[ss]
  a.db(0x8e, 0xd0); // mov ss, ax
  csWord([0x8b, 0x26], LaunchField.SP); // mov sp, cs:[sp]
  csWord([0xa1], LaunchField.ES);
  a.db(0x8e, 0xc0); // mov es, ax
  csWord([0xa1], LaunchField.DS);
  a.db(0x8e, 0xd8, 0x8e, 0xe0, 0x8e, 0xe8); // mov ds/fs/gs, ax
  csWord([0x8b, 0x16], LaunchField.DX); // mov dx, cs:[dx]
  a.db(0x31, 0xc0, 0x31, 0xdb, 0x31, 0xc9, 0x31, 0xf6, 0x31, 0xff, 0x31, 0xed); // xor ax,bx,cx,si,di,bp
  csWord([0xff, 0x36], LaunchField.FLAGS); // push word cs:[flags]
  a.db(0x9d); // popf
  csWord([0xff, 0x2e], LaunchField.IP); // jmp far cs:[ip]

  // POST: trap, run option ROMs, boot.
  a.label('post');
  a.db(0xfa, 0xfc, 0x31, 0xc0, 0x8e, 0xd0, 0xbc, POST_STACK_TOP & 0xff, POST_STACK_TOP >> 8);
  a.db(0x8e, 0xd8, 0x8e, 0xc0, 0xba, trapLo, trapHi, 0xb0, TrapId.POST, 0xee);
  a.label('post_scan');
  a.db(0xb0, TrapId.ROM_SCAN, 0xee, 0xec, 0x84, 0xc0);
  a.rel8(0x74, 'post_boot'); // jz
  a.db(0x2e, 0xff, 0x1e);
  a.dw(a.addr('rom_ptr')); // call far cs:[rom_ptr]
  a.db(0xfa, 0xfc, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0, 0xba, trapLo, trapHi);
  a.rel8(0xeb, 'post_scan');
  a.label('post_boot');
  a.db(0xfb, 0xcd, 0x19); // sti; int 19h
  a.label('post_halt');
  a.db(0xf4);
  a.rel8(0xeb, 'post_halt');

  a.resolve();
  if (a.pc > RomOffset.DISKETTE_PARAMS) throw new Error('BIOS stubs overflow the code area');
  image.set(a.out, RomOffset.CODE);

  // Vector table.
  const vectors = new Array<number>(256).fill(a.addr('iret'));
  for (const v of SERVICE_VECTORS) vectors[v] = a.addr(`int${v.toString(16)}`);
  vectors[0x19] = a.addr('int19');
  vectors[0x18] = a.addr('int18');
  vectors[0x08] = a.addr('irq0');
  vectors[0x09] = a.addr('irq1');
  for (let v = 0x0a; v <= 0x0f; v++) vectors[v] = a.addr('irq_master');
  for (let v = 0x70; v <= 0x77; v++) vectors[v] = a.addr('irq_slave');
  vectors[0x0f] = a.addr('irq7');
  vectors[0x77] = a.addr('irq15');
  vectors[0x74] = a.addr('irq12');

  // Fixed data.
  // Diskette parameter table (1.44 MB): specify bytes, motor off delay, 512-byte sectors, 18 spt, gap, DTL, format gap, fill, settle, motor start.
  image.set([0xaf, 0x02, 0x25, 0x02, 0x12, 0x1b, 0xff, 0x6c, 0xf6, 0x0f, 0x08], RomOffset.DISKETTE_PARAMS);
  image.set(VGA_FONT_8X16, RomOffset.FONT_8X16);
  image.set(make8x14(VGA_FONT_8X16), RomOffset.FONT_8X14);
  image.set(VGA_FONT_8X8, RomOffset.FONT_8X8_FULL);
  image.set(VGA_FONT_8X8.subarray(0, 128 * 8), RomOffset.FONT_8X8);

  // Reset vector: jmp far F000:post; then the BIOS date and model byte where DOS-era software looks.
  const post = a.addr('post');
  image.set([0xea, post & 0xff, post >> 8, ROM_SEGMENT & 0xff, ROM_SEGMENT >> 8], 0xfff0);
  image.set(
    [...'01/01/26'].map((c) => c.charCodeAt(0)),
    0xfff5,
  );
  image[0xfffe] = 0xfc;

  return {
    image,
    vectors,
    launchBlock: a.addr('launch_block'),
    romCallPtr: a.addr('rom_ptr'),
    kbdScan: a.addr('kbd_scan'),
    serviceVectors: SERVICE_VECTORS,
  };
}

/** 8x14 glyphs from the 8x16 ones: drop the first and last scan lines (they are blank in VGA fonts). */
function make8x14(font16: Uint8Array): Uint8Array {
  const out = new Uint8Array(256 * 14);
  for (let c = 0; c < 256; c++) out.set(font16.subarray(c * 16 + 1, c * 16 + 15), c * 14);
  return out;
}
