/**
 * Differential test against real silicon: the host's own x87 unit (x86-64 long double is the 80-bit
 * format). x87-oracle.c is compiled with gcc at test time; every case runs there and in Boxwood's Fpu,
 * and the FNSAVE images (control, status and tag words, all eight registers) plus the memory operand
 * and EFLAGS must agree bit for bit. Transcendentals must agree to 1 ulp (hardware is not correctly
 * rounded; ours is), with the same exception flags apart from PE/C1 on inexact results.
 *
 * Skips, saying why, only when gcc is absent or the host is not x86-64. CI has gcc.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Fpu } from '../../../src-emulator/cpu/fpu';
import type { F80 } from '../../../src-emulator/cpu/fpu-float80';
import { ByteMem, CpuFault, TestHost, M, x, f80hex, newFpu, setCw } from './harness';

const here = dirname(fileURLToPath(import.meta.url));
const gccOk = spawnSync('gcc', ['--version']).status === 0;
const skip = process.arch !== 'x64' ? 'host is not x86-64: no x87 to compare with' : !gccOk ? 'gcc not found: cannot build the x87 oracle' : false;

let oraclePath = '';
let workDir = '';
function oracle(): string {
  if (oraclePath) return oraclePath;
  workDir = mkdtempSync(join(tmpdir(), 'boxwood-x87-'));
  oraclePath = join(workDir, 'oracle');
  const r = spawnSync('gcc', ['-O1', '-mno-red-zone', '-o', oraclePath, join(here, 'x87-oracle.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot compile x87-oracle.c: ${r.stderr}`);
  return oraclePath;
}
process.on('exit', () => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Deterministic random operands

class Rng {
  constructor(private s: number) {}
  u32(): number {
    // xorshift32
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

const J = 0x8000000000000000n;

function randomSig(r: Rng): bigint {
  switch (r.int(6)) {
    case 0: // few significant bits: exact results are common
      return J | (BigInt(r.u32() & 0xff) << 55n);
    case 1: // exactly representable as a double
      return J | (r.u64() & 0x7ffffffffffff800n);
    case 2: // all ones near the bottom: carries on rounding
      return J | (r.u64() & 0x7fffffffffffff00n) | 0xffn;
    default:
      return J | r.u64();
  }
}

/** A random extended value of any class, exponent near `near` when given. */
function randomF80(r: Rng, near?: number, specials = true): F80 {
  const sign = r.int(2) << 15;
  const k = specials ? r.int(100) : 99;
  if (k < 4) return { se: sign, sig: 0n }; // zero
  if (k < 7) return { se: sign | 0x7fff, sig: J }; // infinity
  if (k < 9) return { se: sign | 0x7fff, sig: J | 0x4000000000000000n | (r.u64() & 0x3fffffffffffffffn) }; // QNaN
  if (k < 11) return { se: sign | 0x7fff, sig: J | ((r.u64() & 0x3fffffffffffffffn) || 1n) }; // SNaN
  if (k < 14) return { se: sign, sig: r.u64() & 0x7fffffffffffffffn || 1n }; // denormal
  if (k < 15) return { se: sign, sig: J | r.u64() }; // pseudo-denormal
  if (k < 16) return { se: sign | (1 + r.int(0x7ffe)), sig: r.u64() & 0x7fffffffffffffffn }; // unnormal
  if (k < 17) return { se: sign | 0x7fff, sig: r.u64() & 0x7fffffffffffffffn }; // pseudo-NaN/inf
  let exp: number;
  if (near !== undefined && r.int(4) !== 0) exp = near + r.int(140) - 70;
  else {
    switch (r.int(5)) {
      case 0:
        exp = 1 + r.int(80); // near underflow
        break;
      case 1:
        exp = 0x7ffe - r.int(80); // near overflow
        break;
      case 2:
        exp = 0x3fff - 1100 + r.int(2200); // double range edges
        break;
      default:
        exp = 0x3fff - 70 + r.int(140);
    }
  }
  if (exp < 1) exp = 1;
  if (exp > 0x7ffe) exp = 0x7ffe;
  return { se: sign | exp, sig: randomSig(r) };
}

function randomCw(r: Rng, allowUnmasked: boolean): number {
  const pc = r.pick([0, 2, 3, 3, 3, 1]);
  const rc = r.int(4);
  const masks = allowUnmasked && r.int(3) === 0 ? r.u32() & 0x3f : 0x3f;
  return (rc << 10) | (pc << 8) | 0x40 | masks;
}

interface Case {
  op: string;
  cw: number;
  a: F80;
  b: F80;
}

const line = (c: Case): string => `${c.op} ${c.cw.toString(16)} ${f80hex(c.a)} ${f80hex(c.b)}`;

// ---------------------------------------------------------------------------------------------
// Running a case in Boxwood

const ENC: Record<string, [number, number, boolean?]> = {
  fadd: [0xd8, 0xc1],
  fmul: [0xd8, 0xc9],
  fsub: [0xd8, 0xe1],
  fsubr: [0xd8, 0xe9],
  fdiv: [0xd8, 0xf1],
  fdivr: [0xd8, 0xf9],
  faddp: [0xde, 0xc1],
  fsubp: [0xde, 0xe9],
  fdivp: [0xde, 0xf9],
  fcom: [0xd8, 0xd1],
  fucom: [0xdd, 0xe1],
  fcompp: [0xde, 0xd9],
  fcomi: [0xdb, 0xf1],
  fucomi: [0xdb, 0xe9],
  ftst: [0xd9, 0xe4],
  fxam: [0xd9, 0xe5],
  fchs: [0xd9, 0xe0],
  fabs: [0xd9, 0xe1],
  fsqrt: [0xd9, 0xfa],
  frndint: [0xd9, 0xfc],
  fscale: [0xd9, 0xfd],
  fprem: [0xd9, 0xf8],
  fprem1: [0xd9, 0xf5],
  fxtract: [0xd9, 0xf4],
  f2xm1: [0xd9, 0xf0],
  fyl2x: [0xd9, 0xf1],
  fyl2xp1: [0xd9, 0xf9],
  fptan: [0xd9, 0xf2],
  fpatan: [0xd9, 0xf3],
  fsin: [0xd9, 0xfe],
  fcos: [0xd9, 0xff],
  fsincos: [0xd9, 0xfb],
  fst32: [0xd9, M(2), true],
  fst64: [0xdd, M(2), true],
  fist16: [0xdf, M(2), true],
  fist32: [0xdb, M(2), true],
  fistp64: [0xdf, M(7), true],
  fbstp: [0xdf, M(6), true],
  fld32: [0xd9, M(0), true],
  fld64: [0xdd, M(0), true],
  fbld: [0xdf, M(4), true],
  fild16: [0xdf, M(0), true],
  fild32: [0xdb, M(0), true],
  fild64: [0xdf, M(5), true],
  fadd32: [0xd8, M(0), true],
  fmul64: [0xdc, M(1), true],
  fiadd16: [0xde, M(0), true],
  fidivr32: [0xda, M(7), true],
  fcom32: [0xd8, M(2), true],
  fld80: [0xdb, M(5), true],
  fstp80: [0xdb, M(7), true],
  fldst1: [0xd9, 0xc1],
  fxch: [0xd9, 0xc9],
  fstst1: [0xdd, 0xd1],
  fcmovb: [0xda, 0xc1],
  fincstp: [0xd9, 0xf7],
  fdecstp: [0xd9, 0xf6],
  ffreep: [0xdf, 0xc1],
  'fldpi.push': [0xd9, 0xeb],
  'fldz.push': [0xd9, 0xee],
  frstor: [0xdd, M(4), true],
};
const CONSTS: Record<string, number> = { fld1: 0xe8, fldl2t: 0xe9, fldl2e: 0xea, fldpi: 0xeb, fldlg2: 0xec, fldln2: 0xed };

function runOurs(c: Case): { save: Uint8Array; mem: Uint8Array; eflags: number } {
  const host = new TestHost();
  const fpu = new Fpu(host);
  const ld = new ByteMem(16);
  x(fpu, 0xdb, 0xe3); // FNINIT
  ld.write16(0, c.cw);
  x(fpu, 0xd9, M(5), ld);
  ld.setF80(c.b);
  x(fpu, 0xdb, M(5), ld);
  ld.setF80(c.a);
  x(fpu, 0xdb, M(5), ld);
  const mem = new ByteMem(512);
  mem.write32(0, Number(c.a.sig & 0xffffffffn));
  mem.write32(4, Number(c.a.sig >> 32n));
  mem.write32(8, Number(c.b.sig & 0xffffffffn));
  mem.write32(12, Number(c.b.sig >> 32n));
  if (c.op === 'frstor' || c.op === 'fxrstor') buildImage(mem, c, c.op === 'fxrstor');
  host.eflags = 0x246;
  let op = c.op;
  if (op.startsWith('e0.')) {
    x(fpu, 0xdd, 0xc0);
    op = op.slice(3);
  } else if (op.startsWith('e1.')) {
    x(fpu, 0xdd, 0xc1);
    op = op.slice(3);
  } else if (op.startsWith('full.')) {
    for (let k = 0; k < 6; k++) x(fpu, 0xd9, 0xc0);
    op = op.slice(5);
  }
  if (op in CONSTS) {
    x(fpu, 0xdd, 0xd8);
    x(fpu, 0xdd, 0xd8);
    x(fpu, 0xd9, CONSTS[op]);
  } else {
    if (op === 'fxsave') fpu.fxsave(mem);
    else if (op === 'fxrstor') fpu.fxrstor(mem);
    else {
      const [opc, modrm] = ENC[op];
      x(fpu, opc, modrm, mem);
    }
  }
  const sv = new ByteMem(108);
  x(fpu, 0xdd, M(6), sv); // FNSAVE
  return { save: sv.bytes, mem: mem.bytes, eflags: host.eflags };
}

/** The FSAVE/FXSAVE image x87-oracle.c builds for "frstor"/"fxrstor" (see there). */
function buildImage(mem: ByteMem, c: Case, fx: boolean): void {
  mem.bytes.fill(0);
  const cw = Number(c.a.sig & 0xffffn);
  const sw = Number((c.a.sig >> 16n) & 0xffffn);
  const tw = Number((c.a.sig >> 32n) & 0xffffn);
  if (fx) {
    mem.write16(0, cw);
    mem.write16(2, sw);
    mem.write8(4, tw & 0xff);
    mem.write32(24, 0x1f80);
  } else {
    mem.write16(0, cw);
    mem.write16(4, sw);
    mem.write16(8, tw);
  }
  for (let i = 0; i < 8; i++) {
    mem.setF80({ se: (c.b.se + i * 0x1111) & 0xffff, sig: c.b.sig ^ (BigInt(i) << BigInt(8 * i)) }, fx ? 32 + 16 * i : 28 + 10 * i);
  }
}

function hexBytes(b: Uint8Array): string {
  return Array.from(b, (v) => v.toString(16).padStart(2, '0')).join('');
}

function parseHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function regOf(save: Uint8Array, i: number): F80 {
  const o = 28 + 10 * i;
  let sig = 0n;
  for (let k = 7; k >= 0; k--) sig = (sig << 8n) | BigInt(save[o + k]);
  return { se: save[o + 8] | (save[o + 9] << 8), sig };
}

/** The architectural part of an FNSAVE image: CW, SW, TW and the registers (not FIP/FDP). */
function state(save: Uint8Array): string {
  const w = (o: number): string => (save[o] | (save[o + 1] << 8)).toString(16).padStart(4, '0');
  // Empty registers keep stale contents from earlier cases on the host: compare only live ones.
  const tw = save[8] | (save[9] << 8);
  const top = (save[5] >> 3) & 7;
  const regs: string[] = [];
  for (let i = 0; i < 8; i++) regs.push(((tw >> (2 * ((top + i) & 7))) & 3) === 3 ? 'empty' : f80hex(regOf(save, i)));
  return `cw=${w(0)} sw=${w(4)} tw=${w(8)} st=[${regs.join(' ')}]`;
}

function runOracle(cases: Case[]): { save: Uint8Array; mem: Uint8Array; eflags: number }[] {
  const r = spawnSync(oracle(), [], { input: cases.map(line).join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`x87 oracle failed: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, cases.length, 'oracle answered every case');
  return lines.map((l) => {
    const [s, m, f] = l.split(' ');
    return { save: parseHex(s), mem: parseHex(m), eflags: parseInt(f, 16) };
  });
}

/** Runs cases on both; returns mismatch descriptions (at most `limit`). */
function differential(cases: Case[], exactOps: boolean, limit = Number(process.env.FPU_SHOW ?? 10)): { bad: string[]; total: number } {
  const ref = runOracle(cases);
  const bad: string[] = [];
  for (let i = 0; i < cases.length; i++) {
    const ours = runOurs(cases[i]);
    const hw = ref[i];
    let diff = '';
    if (exactOps) {
      const so = state(ours.save);
      const sh = state(hw.save);
      if (so !== sh) diff += `\n   hw:   ${sh}\n   ours: ${so}`;
    } else {
      diff += transcendentalDiff(ours.save, hw.save, cases[i].op === 'fsincos' ? 2 : 1);
    }
    const om = ours.mem.slice(0, 160);
    const hm = hw.mem.slice(0, 160);
    if (cases[i].op === 'fxsave') {
      // FOP, FIP, FCS, FDP, FDS are the host's own pointers; MXCSR belongs to the SSE unit.
      om.fill(0, 6, 32);
      hm.fill(0, 6, 32);
      // Slots of empty registers hold stale host contents from earlier cases.
      const ftw = hm[4];
      const top = (hm[3] >> 3) & 7;
      for (let k = 0; k < 8; k++) {
        if (!((ftw >> ((top + k) & 7)) & 1)) {
          om.fill(0, 32 + 16 * k, 48 + 16 * k);
          hm.fill(0, 32 + 16 * k, 48 + 16 * k);
        }
      }
    }
    if (hexBytes(om) !== hexBytes(hm)) diff += `\n   mem hw ${hexBytes(hm)}\n   mem ours ${hexBytes(om)}`;
    // Only FCOMI/FUCOMI write EFLAGS; otherwise the host's flags are whatever the C code left.
    if (cases[i].op.includes('comi') && (ours.eflags & 0x45) !== (hw.eflags & 0x45)) diff += `\n   eflags hw ${hw.eflags.toString(16)} ours ${ours.eflags.toString(16)}`;
    if (diff && bad.length < limit) bad.push(`${line(cases[i])}${diff}`);
    else if (diff) bad.push('');
  }
  return { bad, total: cases.length };
}

/** Distance in ulps between two finite extended values of the same sign and class. */
function ulpDistance(a: F80, b: F80): bigint {
  const key = (v: F80): bigint => {
    const mag = (BigInt(v.se & 0x7fff) << 63n) | (v.sig & 0x7fffffffffffffffn);
    return v.se & 0x8000 ? -mag : mag;
  };
  const d = key(a) - key(b);
  return d < 0n ? -d : d;
}

/** Results of the transcendental comparison: bit-identical registers vs. those 1 ulp apart. */
const ulpStats = { exact: 0, oneUlp: 0 };

function transcendentalDiff(ours: Uint8Array, hw: Uint8Array, results: number): string {
  const w = (s: Uint8Array, o: number): number => s[o] | (s[o + 1] << 8);
  const swMask = ~(0x20 | 0x200 | 0x80 | 0x8000) & 0xffff; // PE and C1 may differ with 1-ulp results; ES/B follow PE
  let d = '';
  if ((w(ours, 4) & swMask) !== (w(hw, 4) & swMask) || w(ours, 8) !== w(hw, 8)) d += ' [sw/tw]';
  const tw = w(hw, 8);
  const top = (hw[5] >> 3) & 7;
  for (let i = 0; i < 8; i++) {
    if (((tw >> (2 * ((top + i) & 7))) & 3) === 3) continue;
    const a = regOf(ours, i);
    const b = regOf(hw, i);
    if (a.se === b.se && a.sig === b.sig) {
      if (i < results) ulpStats.exact++;
      continue;
    }
    if ((a.se & 0x7fff) !== 0x7fff && (b.se & 0x7fff) !== 0x7fff && ulpDistance(a, b) <= 1n) {
      if (i < results) ulpStats.oneUlp++;
      continue;
    }
    d += ` [st${i}]`;
  }
  return d ? `\n   hw:   ${state(hw)}\n   ours: ${state(ours)} ${d}` : '';
}

function report(name: string, r: { bad: string[]; total: number }): void {
  const shown = r.bad.filter((s) => s).join('\n');
  assert.equal(r.bad.length, 0, `${name}: ${r.bad.length} of ${r.total} cases differ from silicon:\n${shown}`);
}

// ---------------------------------------------------------------------------------------------

function genBinary(ops: string[], n: number, seed: number, unmasked = true): Case[] {
  const r = new Rng(seed);
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    const a = randomF80(r);
    const near = a.se & 0x7fff;
    const b = r.int(10) === 0 ? { se: a.se ^ (r.int(2) << 15), sig: a.sig } : randomF80(r, near > 0 && near < 0x7fff ? near : undefined);
    cases.push({ op: ops[i % ops.length], cw: randomCw(r, unmasked), a, b });
  }
  return cases;
}

test('add/sub/mul/div in every PC and RC, all operand classes, masked and unmasked: bit-exact with silicon', { skip }, () => {
  report('arith', differential(genBinary(['fadd', 'fsub', 'fsubr', 'fmul', 'fdiv', 'fdivr', 'faddp', 'fsubp', 'fdivp'], 6000, 12345), true));
});

test('double-valued operands (the fast path) under PC 53/64 and every RC: bit-exact with silicon', { skip }, () => {
  const r = new Rng(8080);
  const cases: Case[] = [];
  const ops = ['fadd', 'fsub', 'fsubr', 'fmul', 'fdiv', 'fdivr'];
  const dbl = (near: number): F80 => {
    const sig = r.int(3) === 0 ? J | (BigInt(r.u32() & 0xfff) << 51n) : J | (r.u64() & 0x7ffffffffffff800n);
    return { se: (r.int(2) << 15) | (near + r.int(130) - 65), sig };
  };
  for (let i = 0; i < 6000; i++) {
    // Exponents around the fast path's +-450 limit on both sides, so products reach 2^+-900.
    const base = 0x3fff + r.int(1000) - 500;
    const a = dbl(base);
    const b = r.int(8) === 0 ? { se: a.se ^ 0x8000, sig: a.sig } : dbl(r.int(2) ? base : 0x3fff + r.int(1000) - 500);
    const cw = (r.int(4) << 10) | (r.pick([2, 3]) << 8) | 0x40 | (r.int(4) === 0 ? r.u32() & 0x3f : 0x3f);
    cases.push({ op: ops[i % ops.length], cw, a, b });
  }
  report('fast path', differential(cases, true));
});

test('fsqrt of 3000 positive operands (normal, denormal, exact squares) under every PC and RC: bit-exact with silicon', { skip }, () => {
  const r = new Rng(4711);
  const cases: Case[] = [];
  for (let i = 0; i < 3000; i++) {
    let a: F80;
    const k = r.int(10);
    if (k === 0) a = { se: 0, sig: r.u64() & 0x7fffffffffffffffn || 1n };
    else if (k === 1) {
      const root = BigInt(r.u32() | 1);
      const sq = root * root;
      const n = sq.toString(2).length;
      a = { se: 0x3fff + r.int(200) - 100, sig: sq << BigInt(64 - n) };
    } else a = { se: 1 + r.int(0x7ffe), sig: randomSig(r) };
    cases.push({ op: 'fsqrt', cw: randomCw(r, true), a, b: a });
  }
  report('fsqrt', differential(cases, true));
});

test('sqrt, frndint, fscale, fprem, fprem1, fxtract, fchs, fabs: bit-exact with silicon', { skip }, () => {
  const cases = genBinary(['fsqrt', 'frndint', 'fscale', 'fprem', 'fprem1', 'fxtract', 'fchs', 'fabs'], 4000, 777);
  // FSCALE with a sensible scale factor half of the time.
  const r = new Rng(99);
  for (const c of cases) {
    if (c.op === 'fscale' && r.int(2)) c.b = { se: 0x3fff + r.int(15) | (r.int(2) << 15), sig: J | r.u64() };
  }
  report('misc', differential(cases, true));
});

test('comparisons: fcom/fucom/fcompp/fcomi/fucomi/ftst/fxam codes and flags match silicon', { skip }, () => {
  const cases = genBinary(['fcom', 'fucom', 'fcompp', 'fcomi', 'fucomi', 'ftst', 'fxam'], 3000, 4242);
  for (let i = 0; i < cases.length; i += 5) cases[i].b = cases[i].a; // equal operands
  report('compare', differential(cases, true));
});

test('stores to m32/m64/m16int/m32int/m64int/BCD round like silicon under every RC', { skip }, () => {
  const r = new Rng(31337);
  const cases: Case[] = [];
  const ops = ['fst32', 'fst64', 'fist16', 'fist32', 'fistp64', 'fbstp', 'fstp80', 'fld80'];
  for (let i = 0; i < 6000; i++) {
    const op = ops[i % ops.length];
    let a = randomF80(r);
    const mode = r.int(3);
    if (op.startsWith('fist') || op === 'fbstp') {
      // Mostly in or near the integer range of the destination.
      const bits = op === 'fist16' ? 16 : op === 'fist32' ? 32 : op === 'fbstp' ? 60 : 64;
      if (mode) a = { se: (a.se & 0x8000) | (0x3fff + r.int(bits + 2) - 2), sig: randomSig(r) };
    } else if (op === 'fst32' && mode) a = { se: (a.se & 0x8000) | (0x3fff - 150 + r.int(300)), sig: randomSig(r) };
    else if (op === 'fst64' && mode) a = { se: (a.se & 0x8000) | (0x3fff - 1090 + r.int(2180)), sig: randomSig(r) };
    cases.push({ op, cw: randomCw(r, true), a, b: randomF80(r) });
  }
  report('stores', differential(cases, true));
});

test('loads of m32/m64 reals (incl. NaN payloads, denormals), integers and BCD match silicon', { skip }, () => {
  const r = new Rng(2024);
  const cases: Case[] = [];
  const ops = ['fld32', 'fld64', 'fild16', 'fild32', 'fild64', 'fbld', 'fadd32', 'fmul64', 'fiadd16', 'fidivr32', 'fcom32'];
  for (let i = 0; i < 4000; i++) {
    const op = ops[i % ops.length];
    let sig: bigint;
    const k = r.int(8);
    if (op === 'fbld') {
      sig = 0n;
      // Mostly valid digits; sometimes A-F, which silicon takes at face value.
      const radix = k === 0 ? 16 : 10;
      for (let d = 0; d < 16; d++) sig = (sig << 4n) | BigInt(r.int(radix));
    } else if (op.endsWith('32') && !op.startsWith('fi')) {
      const exps = [0, 0xff, 1 + r.int(254), 1 + r.int(254)];
      sig = BigInt(((r.int(2) << 31) | (exps[k & 3] << 23) | (k < 6 ? r.u32() & 0x7fffff : 0)) >>> 0);
    } else if (op === 'fld64' || op === 'fmul64') {
      const exps = [0n, 0x7ffn, BigInt(1 + r.int(2046)), BigInt(1 + r.int(2046))];
      sig = (BigInt(r.int(2)) << 63n) | (exps[k & 3] << 52n) | (k < 6 ? r.u64() & 0xfffffffffffffn : 0n);
    } else sig = k === 0 ? 0n : r.u64();
    const a: F80 = { se: 0x3fff, sig };
    const b = randomF80(r);
    cases.push({ op, cw: randomCw(r, true), a, b });
  }
  report('loads', differential(cases, true));
});

test('constants FLD1/FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2 under every RC match silicon', { skip }, () => {
  const cases: Case[] = [];
  for (const op of Object.keys(CONSTS)) for (let rc = 0; rc < 4; rc++) for (const pc of [0, 2, 3]) cases.push({ op, cw: (rc << 10) | (pc << 8) | 0x7f, a: { se: 0, sig: 0n }, b: { se: 0, sig: 0n } });
  report('constants', differential(cases, true));
});

test('stack underflow (ST0 or ST1 empty) and overflow (all eight in use) for every instruction: bit-exact with silicon', { skip }, () => {
  const r = new Rng(1357);
  const exact = Object.keys(ENC).filter((o) => !['f2xm1', 'fyl2x', 'fyl2xp1', 'fptan', 'fpatan', 'fsin', 'fcos', 'fsincos'].includes(o));
  const cases: Case[] = [];
  for (const pre of ['e0.', 'e1.', 'full.']) {
    for (const op of exact) {
      for (let k = 0; k < 6; k++) {
        const a = randomF80(r, undefined, k % 2 === 0);
        cases.push({ op: pre + op, cw: randomCw(r, true) | (k < 3 ? 0x3f : 0), a, b: randomF80(r, undefined, k % 2 === 0) });
      }
    }
  }
  report('stack faults', differential(cases, true));
  const trans: Case[] = [];
  for (const pre of ['e0.', 'e1.', 'full.'])
    for (const op of ['f2xm1', 'fyl2x', 'fyl2xp1', 'fptan', 'fpatan', 'fsin', 'fcos', 'fsincos'])
      for (let k = 0; k < 4; k++) trans.push({ op: pre + op, cw: (k < 2 ? 0x037f : 0x037e), a: { se: 0x3ffe, sig: J | r.u64() }, b: { se: 0x3fff, sig: J | r.u64() } });
  report('stack faults (transcendental)', differential(trans, false));
});

test('FRSTOR/FXRSTOR of arbitrary control/status/tag words and registers, and FXSAVE: match silicon', { skip }, () => {
  const r = new Rng(6502);
  const cases: Case[] = [];
  for (let i = 0; i < 900; i++) {
    const op = ['frstor', 'fxrstor', 'fxsave'][i % 3];
    // CW with any masks, PC and RC; SW with any flags, ES/B and TOP; any tag word.
    const words = (BigInt(r.u32() & 0xffff) << 32n) | (BigInt(r.u32()) << 16n) | BigInt(r.u32() & 0xffff);
    const a: F80 = op === 'fxsave' ? randomF80(r) : { se: 0x3fff, sig: words & 0xffffffffffffn };
    cases.push({ op, cw: randomCw(r, true), a, b: randomF80(r) });
  }
  report('environment images', differential(cases, true));
});

test('which instructions deliver a pending unmasked exception (waiting) and which do not: as on silicon', { skip }, () => {
  const exe = join(workDir || (oracle(), workDir), 'waiting');
  const cc = spawnSync('gcc', ['-O1', '-mno-red-zone', '-o', exe, join(here, 'x87-waiting.c')], { encoding: 'utf8' });
  assert.equal(cc.status, 0, `cannot compile x87-waiting.c: ${cc.stderr}`);
  const run = spawnSync(exe, [], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const hw = new Map(run.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  const clean = new ByteMem(512);
  const fresh = newFpu().fpu;
  x(fresh, 0xdd, M(6), clean); // FNSAVE image of a clean FPU
  const cleanFx = new ByteMem(512);
  fresh.fxsave(cleanFx);
  const acts: Record<string, (f: Fpu, m: ByteMem) => void> = {
    fldcw: (f, m) => x(f, 0xd9, M(5), m),
    fnstcw: (f, m) => x(f, 0xd9, M(7), m),
    'fnstsw.m16': (f, m) => x(f, 0xdd, M(7), m),
    'fnstsw.ax': (f) => x(f, 0xdf, 0xe0),
    fnclex: (f) => x(f, 0xdb, 0xe2),
    fninit: (f) => x(f, 0xdb, 0xe3),
    fnstenv: (f, m) => x(f, 0xd9, M(6), m),
    fnsave: (f, m) => x(f, 0xdd, M(6), m),
    fxsave: (f, m) => f.fxsave(m),
    'fnstenv+fnop': (f, m) => (x(f, 0xd9, M(6), m), x(f, 0xd9, 0xd0)),
    fnop: (f) => x(f, 0xd9, 0xd0),
    fwait: (f) => f.wait(),
    ffree: (f) => x(f, 0xdd, 0xc3),
    ffreep: (f) => x(f, 0xdf, 0xc3),
    fincstp: (f) => x(f, 0xd9, 0xf7),
    fdecstp: (f) => x(f, 0xd9, 0xf6),
    fxch: (f) => x(f, 0xd9, 0xc9),
    fld1: (f) => x(f, 0xd9, 0xe8),
    fldst1: (f) => x(f, 0xd9, 0xc1),
    fstst1: (f) => x(f, 0xdd, 0xd1),
    fchs: (f) => x(f, 0xd9, 0xe0),
    fxam: (f) => x(f, 0xd9, 0xe5),
    fcmovb: (f) => x(f, 0xda, 0xc1),
    fucomi: (f) => x(f, 0xdb, 0xe9),
    'fstp.m32': (f, m) => x(f, 0xd9, M(3), m),
    fldenv: (f) => x(f, 0xd9, M(4), clean),
    frstor: (f) => x(f, 0xdd, M(4), clean),
    fxrstor: (f) => f.fxrstor(cleanFx),
  };
  assert.equal(hw.size, Object.keys(acts).length, 'every instruction reported');
  const wrong: string[] = [];
  for (const [name, act] of Object.entries(acts)) {
    const { fpu } = newFpu();
    setCw(fpu, 0x037b);
    x(fpu, 0xd9, 0xe8);
    x(fpu, 0xd9, 0xee);
    x(fpu, 0xde, 0xf9); // 1/0: ZE pending
    let ours = 'ok';
    try {
      act(fpu, new ByteMem(512));
    } catch (e) {
      if (!(e instanceof CpuFault) || e.vector !== 16) throw e;
      ours = 'trap';
    }
    if (ours !== hw.get(name)) wrong.push(`${name}: silicon ${hw.get(name)}, ours ${ours}`);
  }
  assert.deepEqual(wrong, []);
});

test('transcendentals agree with silicon to 1 ulp with the same exceptions and C2', { skip }, (t) => {
  const r = new Rng(555);
  const cases: Case[] = [];
  const ops = ['f2xm1', 'fyl2x', 'fyl2xp1', 'fptan', 'fpatan', 'fsin', 'fcos', 'fsincos'];
  for (let i = 0; i < 2400; i++) {
    const op = ops[i % ops.length];
    let a = randomF80(r, undefined, r.int(4) === 0);
    const b = randomF80(r, 0x3fff, r.int(4) === 0);
    const sign = r.int(2) << 15;
    if (r.int(4) !== 0) {
      if (op === 'f2xm1') a = { se: sign | (0x3fff - r.int(70)), sig: randomSig(r) };
      else if (op === 'fyl2xp1') a = { se: sign | (0x3ffd - r.int(70)), sig: randomSig(r) };
      else if (op === 'fyl2x') a = { se: 0x3fff - 100 + r.int(200), sig: randomSig(r) };
      else if (op === 'fpatan') a = { se: sign | (0x3fff - 40 + r.int(80)), sig: randomSig(r) };
      else a = { se: sign | (0x3fff - 20 + r.int(83)), sig: randomSig(r) };
    }
    cases.push({ op, cw: randomCw(r, false), a, b });
  }
  ulpStats.exact = ulpStats.oneUlp = 0;
  report('transcendental', differential(cases, false));
  t.diagnostic(`transcendental result registers: ${ulpStats.exact} bit-identical to silicon, ${ulpStats.oneUlp} one ulp apart`);
});
