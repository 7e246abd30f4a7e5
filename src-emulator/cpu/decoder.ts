/**
 * Decodes guest code into blocks of pre-decoded instructions (one closure each) for the code cache.
 *
 * Decoding happens once per physical address; running a cached instruction skips prefix parsing,
 * ModRM/SIB decoding and immediate fetches, and calls a closure with its operands bound. Only the
 * common forms get a closure of their own (see `decodeOne`); anything else, and anything that
 * can change how the following bytes decode (CS, CR0, mode switches, string and I/O instructions),
 * ends the block with `GENERIC`, which hands that one instruction to the interpreter. The
 * semantics must stay bit-identical to exec.ts: the vectors, cpu-diff and fuzz suites run through
 * both paths (tests/unit/cpu/code-cache.test.ts compares them directly).
 */
import type { Cpu } from './cpu';
import { CS, DS, EAX, EBP, EBX, EDI, EDX, ESI, ESP, SS } from './constants';
import { alu, alu32, executeOne, imulTrunc, incDec, incDec32, logicFlags, shift, shift32 } from './exec';

/** One decoded instruction: runs with EIP already pointing past it (branches overwrite EIP). */
export type DecodedOp = (c: Cpu) => void;

/** Hands the instruction at EIP to the interpreter (its length in the block is 0). */
export const GENERIC: DecodedOp = executeOne;

/** Longest run of instructions one block holds. */
export const MAX_BLOCK_OPS = 48;

export interface DecodedBlockCode {
  ops: DecodedOp[];
  /** Length in bytes of each op (0 for GENERIC, which fetches for itself). */
  lens: number[];
  /** Bytes covered by the decoded (non-GENERIC) ops, from the block's start. */
  bytes: number;
}

/** Byte offset of 8-bit register r (AL CL DL BL AH CH DH BH) in the register file's byte view. */
const R8 = [0, 4, 8, 12, 1, 5, 9, 13];

/** Effective-address computation of a memory operand: segment and an offset function. */
interface MemOperand {
  seg: number;
  off: (c: Cpu) => number;
}

/** Reads instruction bytes from RAM within [pos, end); `ok` turns false when an instruction runs past it. */
class CodeReader {
  ok = true;
  constructor(
    readonly ram: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}
  u8(): number {
    if (this.pos >= this.end) {
      this.ok = false;
      return 0;
    }
    return this.ram[this.pos++];
  }
  s8(): number {
    return (this.u8() << 24) >> 24;
  }
  u16(): number {
    const lo = this.u8();
    return lo | (this.u8() << 8);
  }
  s16(): number {
    return (this.u16() << 16) >> 16;
  }
  i32(): number {
    const a = this.u8();
    const b = this.u8();
    const c = this.u8();
    return a | (b << 8) | (c << 16) | (this.u8() << 24);
  }
}

/**
 * Decodes a block starting at physical `start` of `ram`, never reading at or past `end` (the end of
 * the page, or of the CS limit as seen when the block was made).
 */
export function decodeBlock(ram: Uint8Array, start: number, end: number, code32: boolean): DecodedBlockCode {
  const ops: DecodedOp[] = [];
  const lens: number[] = [];
  const rd = new CodeReader(ram, start, end);
  let bytes = 0;
  while (ops.length < MAX_BLOCK_OPS) {
    const at = rd.pos;
    const d = decodeOne(rd, code32);
    if (d === null || !rd.ok) {
      ops.push(GENERIC);
      lens.push(0);
      break;
    }
    ops.push(d.op);
    lens.push(rd.pos - at);
    bytes = rd.pos - start;
    if (d.branch) break;
  }
  return { ops, lens, bytes };
}

interface Decoded {
  op: DecodedOp;
  /** Control transfer: the block ends after it. */
  branch: boolean;
}

const straight = (op: DecodedOp): Decoded => ({ op, branch: false });
const branch = (op: DecodedOp): Decoded => ({ op, branch: true });

function decodeOne(rd: CodeReader, code32: boolean): Decoded | null {
  let opSize32 = code32;
  let addrSize32 = code32;
  let seg = -1;
  let op = rd.u8();
  for (let prefixes = 0; ; prefixes++) {
    if (prefixes > 3) return null;
    if (op === 0x66) opSize32 = !code32;
    else if (op === 0x67) addrSize32 = !code32;
    else if (op === 0x26) seg = 0;
    else if (op === 0x2e) seg = CS;
    else if (op === 0x36) seg = SS;
    else if (op === 0x3e) seg = DS;
    else if (op === 0x64) seg = 4;
    else if (op === 0x65) seg = 5;
    else if (op === 0xf0 || op === 0xf2 || op === 0xf3) return null; // LOCK/REP: the interpreter's
    else break;
    op = rd.u8();
  }
  if (!rd.ok) return null;
  const modrm = (): { m: number; mem: MemOperand | null } => {
    const m = rd.u8();
    return { m, mem: m >= 0xc0 ? null : decodeMem(rd, m, addrSize32, seg) };
  };

  // ALU ops 00-3D (without the segment/BCD/push/pop slots).
  if (op < 0x40 && (op & 7) < 6) {
    const aop = op >> 3;
    switch (op & 7) {
      case 0:
        return straight(aluEbGb(aop, modrm()));
      case 1:
        return opSize32 ? straight(aluEvGv(aop, modrm())) : null;
      case 2:
        return straight(aluGbEb(aop, modrm()));
      case 3:
        return opSize32 ? straight(aluGvEv(aop, modrm())) : null;
      case 4: {
        const imm = rd.u8();
        return straight(
          aop === 7
            ? (c) => void alu(c, 7, c.r8[0], imm, 8)
            : (c) => {
                c.r8[0] = alu(c, aop, c.r8[0], imm, 8);
              },
        );
      }
      default: {
        if (!opSize32) return null;
        const imm = rd.i32();
        return straight(
          aop === 7
            ? (c) => void alu32(c, 7, c.regs[EAX], imm)
            : (c) => {
                c.regs[EAX] = alu32(c, aop, c.regs[EAX], imm);
              },
        );
      }
    }
  }
  if (op >= 0x40 && op <= 0x4f) {
    if (!opSize32) return null;
    const r = op & 7;
    const dec = op >= 0x48;
    return straight((c) => {
      c.regs[r] = incDec32(c, c.regs[r], dec);
    });
  }
  if (op >= 0x50 && op <= 0x57) {
    if (!opSize32) return null;
    const r = op & 7;
    return straight((c) => c.push32(c.regs[r]));
  }
  if (op >= 0x58 && op <= 0x5f) {
    if (!opSize32) return null;
    const r = op & 7;
    return straight((c) => {
      c.regs[r] = c.pop32();
    });
  }
  if (op >= 0x70 && op <= 0x7f) {
    const cc = op & 15;
    return branch(jccOp(cc, rd.s8(), opSize32));
  }
  if (op >= 0xb0 && op <= 0xb7) {
    const at = R8[op & 7];
    const imm = rd.u8();
    return straight((c) => {
      c.r8[at] = imm;
    });
  }
  if (op >= 0xb8 && op <= 0xbf) {
    const r = op & 7;
    if (opSize32) {
      const imm = rd.i32();
      return straight((c) => {
        c.regs[r] = imm;
      });
    }
    const imm = rd.u16();
    return straight((c) => {
      c.r16[r << 1] = imm;
    });
  }

  switch (op) {
    case 0x0f:
      return decode0F(rd, opSize32, modrm);
    case 0x68:
    case 0x6a: {
      if (!opSize32) return null;
      const imm = op === 0x68 ? rd.i32() : rd.s8();
      return straight((c) => c.push32(imm));
    }
    case 0x69:
    case 0x6b: {
      if (!opSize32) return null;
      const { m, mem } = modrm();
      const imm = op === 0x6b ? rd.s8() : rd.i32();
      const r = (m >> 3) & 7;
      if (mem === null) {
        const s = m & 7;
        return straight((c) => {
          c.regs[r] = imulTrunc(c, c.regs[s], imm, 32);
        });
      }
      return straight((c) => {
        c.regs[r] = imulTrunc(c, c.read32(mem.seg, mem.off(c)), imm, 32);
      });
    }
    case 0x80:
    case 0x82:
      return straight(group1Eb(modrm(), rd));
    case 0x81:
    case 0x83: {
      if (!opSize32) return null;
      const md = modrm();
      return straight(group1Ev(md, op === 0x83 ? rd.s8() : rd.i32()));
    }
    case 0x84: {
      const { m, mem } = modrm();
      const g = R8[(m >> 3) & 7];
      if (mem === null) {
        const e = R8[m & 7];
        return straight((c) => logicFlags(c, c.r8[e] & c.r8[g], 8));
      }
      return straight((c) => logicFlags(c, c.read8(mem.seg, mem.off(c)) & c.r8[g], 8));
    }
    case 0x85: {
      if (!opSize32) return null;
      const { m, mem } = modrm();
      const g = (m >> 3) & 7;
      if (mem === null) {
        const e = m & 7;
        return straight((c) => logicFlags(c, c.regs[e] & c.regs[g], 32));
      }
      return straight((c) => logicFlags(c, c.read32(mem.seg, mem.off(c)) & c.regs[g], 32));
    }
    case 0x88: {
      const { m, mem } = modrm();
      const g = R8[(m >> 3) & 7];
      if (mem === null) {
        const e = R8[m & 7];
        return straight((c) => {
          c.r8[e] = c.r8[g];
        });
      }
      return straight((c) => c.write8(mem.seg, mem.off(c), c.r8[g]));
    }
    case 0x89: {
      const { m, mem } = modrm();
      const g = (m >> 3) & 7;
      if (opSize32) {
        if (mem === null) {
          const e = m & 7;
          return straight((c) => {
            c.regs[e] = c.regs[g];
          });
        }
        return straight((c) => c.write32(mem.seg, mem.off(c), c.regs[g]));
      }
      if (mem === null) {
        const e = (m & 7) << 1;
        return straight((c) => {
          c.r16[e] = c.r16[g << 1];
        });
      }
      return straight((c) => c.write16(mem.seg, mem.off(c), c.r16[g << 1]));
    }
    case 0x8a: {
      const { m, mem } = modrm();
      const g = R8[(m >> 3) & 7];
      if (mem === null) {
        const e = R8[m & 7];
        return straight((c) => {
          c.r8[g] = c.r8[e];
        });
      }
      return straight((c) => {
        c.r8[g] = c.read8(mem.seg, mem.off(c));
      });
    }
    case 0x8b: {
      const { m, mem } = modrm();
      const g = (m >> 3) & 7;
      if (opSize32) {
        if (mem === null) {
          const e = m & 7;
          return straight((c) => {
            c.regs[g] = c.regs[e];
          });
        }
        return straight((c) => {
          c.regs[g] = c.read32(mem.seg, mem.off(c));
        });
      }
      if (mem === null) {
        const e = (m & 7) << 1;
        return straight((c) => {
          c.r16[g << 1] = c.r16[e];
        });
      }
      return straight((c) => {
        c.r16[g << 1] = c.read16(mem.seg, mem.off(c));
      });
    }
    case 0x8d: {
      const { m, mem } = modrm();
      if (mem === null) return null; // #UD
      const g = (m >> 3) & 7;
      if (opSize32)
        return straight((c) => {
          c.regs[g] = mem.off(c);
        });
      return straight((c) => {
        c.r16[g << 1] = mem.off(c);
      });
    }
    case 0x90:
      return straight(() => {});
    case 0x98:
      if (!opSize32) return null;
      return straight((c) => {
        c.regs[EAX] = (c.r16[0] << 16) >> 16;
      });
    case 0x99:
      if (!opSize32) return null;
      return straight((c) => {
        c.regs[EDX] = c.regs[EAX] >> 31;
      });
    case 0xa1:
    case 0xa3: {
      if (!opSize32) return null;
      const off = addrSize32 ? rd.i32() >>> 0 : rd.u16();
      const s = seg >= 0 ? seg : DS;
      if (op === 0xa1)
        return straight((c) => {
          c.regs[EAX] = c.read32(s, off);
        });
      return straight((c) => c.write32(s, off, c.regs[EAX]));
    }
    case 0xa8: {
      const imm = rd.u8();
      return straight((c) => logicFlags(c, c.r8[0] & imm, 8));
    }
    case 0xa9: {
      if (!opSize32) return null;
      const imm = rd.i32();
      return straight((c) => logicFlags(c, c.regs[EAX] & imm, 32));
    }
    case 0xc1:
    case 0xd1:
    case 0xd3: {
      const { m, mem } = modrm();
      if (mem !== null) return null;
      const kind = (m >> 3) & 7;
      const r = m & 7;
      if (!opSize32) {
        // 16-bit register forms (XZ decompressors are full of them); count 0 changes nothing.
        const at = r << 1;
        if (op === 0xd3)
          return straight((c) => {
            const n = c.r8[4];
            if (n & 0x1f) c.r16[at] = shift(c, kind, c.r16[at], n, 16);
          });
        const n = op === 0xd1 ? 1 : rd.u8();
        if ((n & 0x1f) === 0) return straight(() => {});
        return straight((c) => {
          c.r16[at] = shift(c, kind, c.r16[at], n, 16);
        });
      }
      if (op === 0xd3) return straight((c) => shiftReg(c, kind, r, c.r8[4]));
      const n = op === 0xd1 ? 1 : rd.u8();
      return straight((c) => shiftReg(c, kind, r, n));
    }
    case 0xc3:
      if (!opSize32) return null;
      return branch((c) => {
        const target = c.pop32() >>> 0;
        if (target > c.segLimit[CS]) c.gp(0);
        c.eip = target;
      });
    case 0xc6:
    case 0xc7: {
      const { m, mem } = modrm();
      if ((m >> 3) & 7) return null; // #UD
      if (op === 0xc6) {
        const imm = rd.u8();
        if (mem === null) {
          const e = R8[m & 7];
          return straight((c) => {
            c.r8[e] = imm;
          });
        }
        return straight((c) => c.write8(mem.seg, mem.off(c), imm));
      }
      if (!opSize32) return null;
      const imm = rd.i32();
      if (mem === null) {
        const e = m & 7;
        return straight((c) => {
          c.regs[e] = imm;
        });
      }
      return straight((c) => c.write32(mem.seg, mem.off(c), imm));
    }
    case 0xe8: {
      if (!opSize32) return null;
      const disp = rd.i32();
      return branch((c) => {
        const target = (c.eip + disp) >>> 0;
        if (target > c.segLimit[CS]) c.gp(0);
        c.push32(c.eip);
        c.eip = target;
      });
    }
    case 0xe9:
      return branch(jmpOp(opSize32 ? rd.i32() : rd.s16(), opSize32));
    case 0xeb:
      return branch(jmpOp(rd.s8(), opSize32));
    case 0xf6:
    case 0xf7: {
      if (op === 0xf7 && !opSize32) return null;
      const { m, mem } = modrm();
      const reg = (m >> 3) & 7;
      // TEST, NOT and NEG; MUL/DIV and friends stay with the interpreter.
      if (reg > 3) return null;
      return straight(op === 0xf6 ? group3Byte(reg, m, mem, rd) : group3Dword(reg, m, mem, rd));
    }
    case 0xff:
      return opSize32 ? group5(modrm()) : null;
    default:
      return null;
  }
}

function decode0F(rd: CodeReader, opSize32: boolean, modrm: () => { m: number; mem: MemOperand | null }): Decoded | null {
  const op = rd.u8();
  if (op >= 0x80 && op <= 0x8f) {
    const cc = op & 15;
    return branch(jccOp(cc, opSize32 ? rd.i32() : rd.s16(), opSize32));
  }
  if (!opSize32) return null;
  if (op >= 0x40 && op <= 0x4f) {
    const cc = op & 15;
    const { m, mem } = modrm();
    const g = (m >> 3) & 7;
    if (mem === null) {
      const e = m & 7;
      return straight((c) => {
        const v = c.regs[e];
        if (c.condition(cc)) c.regs[g] = v;
      });
    }
    // The source is read (and may fault) whether or not the condition holds.
    return straight((c) => {
      const v = c.read32(mem.seg, mem.off(c));
      if (c.condition(cc)) c.regs[g] = v;
    });
  }
  if (op >= 0x90 && op <= 0x9f) {
    const cc = op & 15;
    const { m, mem } = modrm();
    if (mem === null) {
      const e = R8[m & 7];
      return straight((c) => {
        c.r8[e] = c.condition(cc) ? 1 : 0;
      });
    }
    return straight((c) => c.write8(mem.seg, mem.off(c), c.condition(cc) ? 1 : 0));
  }
  switch (op) {
    case 0xaf: {
      const { m, mem } = modrm();
      const g = (m >> 3) & 7;
      if (mem === null) {
        const e = m & 7;
        return straight((c) => {
          c.regs[g] = imulTrunc(c, c.regs[g], c.regs[e], 32);
        });
      }
      return straight((c) => {
        c.regs[g] = imulTrunc(c, c.regs[g], c.read32(mem.seg, mem.off(c)), 32);
      });
    }
    case 0xb6:
    case 0xbe: {
      const { m, mem } = modrm();
      const g = (m >> 3) & 7;
      const signed = op === 0xbe;
      if (mem === null) {
        const e = R8[m & 7];
        return straight(
          signed
            ? (c) => {
                c.regs[g] = (c.r8[e] << 24) >> 24;
              }
            : (c) => {
                c.regs[g] = c.r8[e];
              },
        );
      }
      return straight(
        signed
          ? (c) => {
              c.regs[g] = (c.read8(mem.seg, mem.off(c)) << 24) >> 24;
            }
          : (c) => {
              c.regs[g] = c.read8(mem.seg, mem.off(c));
            },
      );
    }
    case 0xb7:
    case 0xbf: {
      const { m, mem } = modrm();
      const g = (m >> 3) & 7;
      const signed = op === 0xbf;
      if (mem === null) {
        const e = (m & 7) << 1;
        return straight(
          signed
            ? (c) => {
                c.regs[g] = (c.r16[e] << 16) >> 16;
              }
            : (c) => {
                c.regs[g] = c.r16[e];
              },
        );
      }
      return straight(
        signed
          ? (c) => {
              c.regs[g] = (c.read16(mem.seg, mem.off(c)) << 16) >> 16;
            }
          : (c) => {
              c.regs[g] = c.read16(mem.seg, mem.off(c));
            },
      );
    }
    default:
      return null;
  }
}

// -----------------------------------------------------------------------------------------------
// Operand forms

/** Linear address of a read-modify-write operand, checked for reading and writing before any access. */
function rmwLin(c: Cpu, seg: number, off: number, len: number): number {
  const lin = c.linW(seg, off, len);
  c.linR(seg, off, len);
  c.probeWrite(lin, len);
  return lin;
}

function aluEbGb(aop: number, { m, mem }: { m: number; mem: MemOperand | null }): DecodedOp {
  const g = R8[(m >> 3) & 7];
  if (mem === null) {
    const e = R8[m & 7];
    if (aop === 7) return (c) => void alu(c, 7, c.r8[e], c.r8[g], 8);
    return (c) => {
      c.r8[e] = alu(c, aop, c.r8[e], c.r8[g], 8);
    };
  }
  if (aop === 7) return (c) => void alu(c, 7, c.read8(mem.seg, mem.off(c)), c.r8[g], 8);
  return (c) => {
    const lin = rmwLin(c, mem.seg, mem.off(c), 1);
    c.writeLin8(lin, alu(c, aop, c.readLin8(lin), c.r8[g], 8));
  };
}

function aluGbEb(aop: number, { m, mem }: { m: number; mem: MemOperand | null }): DecodedOp {
  const g = R8[(m >> 3) & 7];
  if (mem === null) {
    const e = R8[m & 7];
    if (aop === 7) return (c) => void alu(c, 7, c.r8[g], c.r8[e], 8);
    return (c) => {
      c.r8[g] = alu(c, aop, c.r8[g], c.r8[e], 8);
    };
  }
  if (aop === 7) return (c) => void alu(c, 7, c.r8[g], c.read8(mem.seg, mem.off(c)), 8);
  return (c) => {
    c.r8[g] = alu(c, aop, c.r8[g], c.read8(mem.seg, mem.off(c)), 8);
  };
}

function aluEvGv(aop: number, { m, mem }: { m: number; mem: MemOperand | null }): DecodedOp {
  const g = (m >> 3) & 7;
  if (mem === null) {
    const e = m & 7;
    if (aop === 7) return (c) => void alu32(c, 7, c.regs[e], c.regs[g]);
    return (c) => {
      c.regs[e] = alu32(c, aop, c.regs[e], c.regs[g]);
    };
  }
  if (aop === 7) return (c) => void alu32(c, 7, c.read32(mem.seg, mem.off(c)), c.regs[g]);
  return (c) => {
    const lin = rmwLin(c, mem.seg, mem.off(c), 4);
    c.writeLin32(lin, alu32(c, aop, c.readLin32(lin), c.regs[g]));
  };
}

function aluGvEv(aop: number, { m, mem }: { m: number; mem: MemOperand | null }): DecodedOp {
  const g = (m >> 3) & 7;
  if (mem === null) {
    const e = m & 7;
    if (aop === 7) return (c) => void alu32(c, 7, c.regs[g], c.regs[e]);
    return (c) => {
      c.regs[g] = alu32(c, aop, c.regs[g], c.regs[e]);
    };
  }
  if (aop === 7) return (c) => void alu32(c, 7, c.regs[g], c.read32(mem.seg, mem.off(c)));
  return (c) => {
    c.regs[g] = alu32(c, aop, c.regs[g], c.read32(mem.seg, mem.off(c)));
  };
}

function group1Eb({ m, mem }: { m: number; mem: MemOperand | null }, rd: CodeReader): DecodedOp {
  const aop = (m >> 3) & 7;
  const imm = rd.u8();
  if (mem === null) {
    const e = R8[m & 7];
    if (aop === 7) return (c) => void alu(c, 7, c.r8[e], imm, 8);
    return (c) => {
      c.r8[e] = alu(c, aop, c.r8[e], imm, 8);
    };
  }
  if (aop === 7) return (c) => void alu(c, 7, c.read8(mem.seg, mem.off(c)), imm, 8);
  return (c) => {
    const lin = rmwLin(c, mem.seg, mem.off(c), 1);
    c.writeLin8(lin, alu(c, aop, c.readLin8(lin), imm, 8));
  };
}

function group1Ev({ m, mem }: { m: number; mem: MemOperand | null }, imm: number): DecodedOp {
  const aop = (m >> 3) & 7;
  if (mem === null) {
    const e = m & 7;
    if (aop === 7) return (c) => void alu32(c, 7, c.regs[e], imm);
    return (c) => {
      c.regs[e] = alu32(c, aop, c.regs[e], imm);
    };
  }
  if (aop === 7) return (c) => void alu32(c, 7, c.read32(mem.seg, mem.off(c)), imm);
  return (c) => {
    const lin = rmwLin(c, mem.seg, mem.off(c), 4);
    c.writeLin32(lin, alu32(c, aop, c.readLin32(lin), imm));
  };
}

function group3Byte(reg: number, m: number, mem: MemOperand | null, rd: CodeReader): DecodedOp {
  if (reg < 2) {
    const imm = rd.u8();
    if (mem === null) {
      const e = R8[m & 7];
      return (c) => logicFlags(c, c.r8[e] & imm, 8);
    }
    return (c) => logicFlags(c, c.read8(mem.seg, mem.off(c)) & imm, 8);
  }
  const neg = reg === 3;
  if (mem === null) {
    const e = R8[m & 7];
    return neg
      ? (c) => {
          c.r8[e] = alu(c, 5, 0, c.r8[e], 8);
        }
      : (c) => {
          c.r8[e] = ~c.r8[e];
        };
  }
  return (c) => {
    const lin = rmwLin(c, mem.seg, mem.off(c), 1);
    const a = c.readLin8(lin);
    c.writeLin8(lin, neg ? alu(c, 5, 0, a, 8) : ~a);
  };
}

function group3Dword(reg: number, m: number, mem: MemOperand | null, rd: CodeReader): DecodedOp {
  if (reg < 2) {
    const imm = rd.i32();
    if (mem === null) {
      const e = m & 7;
      return (c) => logicFlags(c, c.regs[e] & imm, 32);
    }
    return (c) => logicFlags(c, c.read32(mem.seg, mem.off(c)) & imm, 32);
  }
  const neg = reg === 3;
  if (mem === null) {
    const e = m & 7;
    return neg
      ? (c) => {
          c.regs[e] = alu(c, 5, 0, c.regs[e], 32);
        }
      : (c) => {
          c.regs[e] = ~c.regs[e];
        };
  }
  return (c) => {
    const lin = rmwLin(c, mem.seg, mem.off(c), 4);
    const a = c.readLin32(lin);
    c.writeLin32(lin, neg ? alu(c, 5, 0, a, 32) : ~a);
  };
}

/** Group 2 on a 32-bit register; a count of 0 (after masking) changes nothing, flags included. */
function shiftReg(c: Cpu, kind: number, r: number, count: number): void {
  const n = count & 31;
  if (n === 0) return;
  // As exec.ts: SHL/SHR/SAL/SAR take the 32-bit fast path, rotates the general one.
  c.regs[r] = kind >= 4 ? shift32(c, kind, c.regs[r], n) : shift(c, kind, c.regs[r] >>> 0, n, 32);
}

function group5({ m, mem }: { m: number; mem: MemOperand | null }): Decoded | null {
  const reg = (m >> 3) & 7;
  switch (reg) {
    case 0:
    case 1: {
      const dec = reg === 1;
      if (mem === null) {
        const e = m & 7;
        return straight((c) => {
          c.regs[e] = incDec32(c, c.regs[e], dec);
        });
      }
      return straight((c) => {
        const lin = rmwLin(c, mem.seg, mem.off(c), 4);
        c.writeLin32(lin, incDec(c, c.readLin32(lin), 32, dec));
      });
    }
    case 2:
      return branch((c) => {
        const target = (mem === null ? c.regs[m & 7] : c.read32(mem.seg, mem.off(c))) >>> 0;
        if (target > c.segLimit[CS]) c.gp(0);
        c.push32(c.eip);
        c.eip = target;
      });
    case 4:
      return branch((c) => {
        const target = (mem === null ? c.regs[m & 7] : c.read32(mem.seg, mem.off(c))) >>> 0;
        if (target > c.segLimit[CS]) c.gp(0);
        c.eip = target;
      });
    case 6:
      return straight((c) => c.push32(mem === null ? c.regs[m & 7] : c.read32(mem.seg, mem.off(c))));
    default:
      return null;
  }
}

// -----------------------------------------------------------------------------------------------
// Branches

function jccOp(cc: number, disp: number, opSize32: boolean): DecodedOp {
  if (opSize32)
    return (c) => {
      if (!c.condition(cc)) return;
      const target = (c.eip + disp) >>> 0;
      if (target > c.segLimit[CS]) c.gp(0);
      c.eip = target;
    };
  return (c) => {
    if (!c.condition(cc)) return;
    const target = (c.eip + disp) & 0xffff;
    if (target > c.segLimit[CS]) c.gp(0);
    c.eip = target;
  };
}

function jmpOp(disp: number, opSize32: boolean): DecodedOp {
  if (opSize32)
    return (c) => {
      const target = (c.eip + disp) >>> 0;
      if (target > c.segLimit[CS]) c.gp(0);
      c.eip = target;
    };
  return (c) => {
    const target = (c.eip + disp) & 0xffff;
    if (target > c.segLimit[CS]) c.gp(0);
    c.eip = target;
  };
}

// -----------------------------------------------------------------------------------------------
// Effective addresses

const RM16: [number, number, number][] = [
  // base, index (-1 none), default segment
  [EBX, ESI, DS],
  [EBX, EDI, DS],
  [EBP, ESI, SS],
  [EBP, EDI, SS],
  [ESI, -1, DS],
  [EDI, -1, DS],
  [EBP, -1, SS],
  [EBX, -1, DS],
];

/** Decodes the memory form of ModRM `m` (mod < 3), with its SIB and displacement, into an offset function. */
function decodeMem(rd: CodeReader, m: number, addrSize32: boolean, override: number): MemOperand {
  const mod = m >> 6;
  const rm = m & 7;
  if (!addrSize32) {
    if (mod === 0 && rm === 6) {
      const disp = rd.u16();
      return { seg: override >= 0 ? override : DS, off: () => disp };
    }
    const [base, index, defSeg] = RM16[rm];
    const disp = mod === 1 ? rd.s8() : mod === 2 ? rd.u16() : 0;
    const seg = override >= 0 ? override : defSeg;
    const b = base << 1;
    if (index < 0) return { seg, off: (c) => (c.r16[b] + disp) & 0xffff };
    const x = index << 1;
    return { seg, off: (c) => (c.r16[b] + c.r16[x] + disp) & 0xffff };
  }
  let defSeg = DS;
  let base = -1;
  let index = -1;
  let scale = 0;
  let disp = 0;
  if (rm === 4) {
    const sib = rd.u8();
    const b = sib & 7;
    const i = (sib >> 3) & 7;
    if (b === 5 && mod === 0) disp = rd.i32();
    else {
      base = b;
      if (b === ESP || b === EBP) defSeg = SS;
    }
    if (i !== 4) {
      index = i;
      scale = sib >> 6;
    }
  } else if (rm === 5 && mod === 0) {
    disp = rd.i32();
  } else {
    base = rm;
    if (rm === EBP) defSeg = SS;
  }
  if (mod === 1) disp = rd.s8();
  else if (mod === 2) disp = rd.i32();
  const seg = override >= 0 ? override : defSeg;
  return { seg, off: offset32(base, index, scale, disp) };
}

function offset32(base: number, index: number, scale: number, disp: number): (c: Cpu) => number {
  if (base < 0 && index < 0) return () => disp;
  if (index < 0) return disp === 0 ? (c) => c.regs[base] : (c) => (c.regs[base] + disp) | 0;
  if (base < 0) return (c) => ((c.regs[index] << scale) + disp) | 0;
  if (disp === 0) return (c) => (c.regs[base] + (c.regs[index] << scale)) | 0;
  return (c) => (c.regs[base] + (c.regs[index] << scale) + disp) | 0;
}
