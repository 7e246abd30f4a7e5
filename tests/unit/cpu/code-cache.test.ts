/**
 * The decoded-instruction cache: the same programs with and without it end in the same state, and
 * decoded code never outlives a write to its page, whoever writes (the guest itself through any
 * alias, DMA, a ROM load, a state load).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMachine, loadProtected, loadReal, runToHalt, exceptionLog, assemble, type TestMachine } from './harness';
import { rng } from '../../peer/cpu-fuzz/fuzz-machine';

/** Everything a program can change that the comparison looks at. */
function snapshot(m: TestMachine, dataBase: number, dataLen: number) {
  const regs = Array.from({ length: 8 }, (_, i) => m.cpu.getReg32(i));
  return {
    regs,
    eip: m.cpu.eip >>> 0,
    flags: m.cpu.getFlags(),
    retired: m.cpu.instructionsRetired,
    data: Buffer.from(m.mem.readBytes(dataBase, dataLen)).toString('hex'),
    log: exceptionLog(m),
  };
}

// -----------------------------------------------------------------------------------------------
// Random programs from the instruction forms the decoder handles, and some it leaves to the
// interpreter, run with the cache and without: every register, flag and byte must agree.

const R32 = ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp'];
const R8N = ['al', 'bl', 'cl', 'dl', 'ah', 'bh', 'ch', 'dh'];
const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];
const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];

function randomProgram(seed: number, bits: 16 | 32): string {
  const r = rng(seed);
  const pick = <T,>(a: T[]): T => a[r() % a.length];
  const imm = () => (r() % 5 === 0 ? pick([0, 1, -1, 0x7fffffff, -0x80000000, 0x80]) : (r() | 0) % 100000);
  // Memory operands stay inside the data area: base register pinned to it, small displacements.
  // (16-bit forms use only SI, DI and BP, which the program never changes.)
  const mem = (size: string) =>
    bits === 32
      ? pick([`${size} [data+${r() % 64}]`, `${size} [esi+${r() % 32}]`, `${size} [esi+edi*2+${r() % 16}]`, `${size} [ebp-${r() % 16}]`])
      : pick([`${size} [data+${r() % 64}]`, `${size} [si+${r() % 32}]`, `${size} [bp+di+${r() % 16}]`]);
  const r32 = () => pick(R32.filter((x) => x !== 'esi' && x !== 'edi' && x !== 'ebp'));
  const lines: string[] = [];
  const n = 60 + (r() % 60);
  for (let i = 0; i < n; i++) {
    switch (r() % 25) {
      case 0:
        lines.push(`${pick(ALU)} ${r32()}, ${r32()}`);
        break;
      case 1:
        lines.push(`${pick(ALU)} ${r32()}, ${mem('dword')}`);
        break;
      case 2:
        lines.push(`${pick(ALU)} ${mem('dword')}, ${r32()}`);
        break;
      case 3:
        lines.push(`${pick(ALU)} ${pick(R8N)}, ${pick(R8N)}`);
        break;
      case 4:
        lines.push(`${pick(ALU)} ${mem('byte')}, ${r() & 0xff}`);
        break;
      case 5:
        lines.push(`${pick(ALU)} ${r32()}, ${imm()}`);
        break;
      case 6:
        lines.push(`${pick(ALU)} ${mem('dword')}, byte ${(r() % 256) - 128}`);
        break;
      case 7:
        lines.push(`${pick(['inc', 'dec'])} ${pick([r32(), mem('dword')])}`);
        break;
      case 8:
        lines.push(`mov ${r32()}, ${pick([String(imm()), mem('dword'), r32()])}`);
        break;
      case 9:
        lines.push(`mov ${mem(pick(['dword', 'word', 'byte']))}, ${r() & 0x7f}`);
        break;
      case 10:
        lines.push(`${pick(['movzx', 'movsx'])} ${r32()}, ${pick([mem('byte'), mem('word'), pick(R8N)])}`);
        break;
      case 11:
        lines.push(`lea ${r32()}, [${pick(['eax', 'ebx', 'ecx', 'edx'])}+${pick(['ebx', 'ecx'])}*${pick([1, 2, 4, 8])}+${imm()}]`);
        break;
      case 12:
        lines.push(`${pick(['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr'])} ${r32()}, ${pick(['1', 'cl', String(r() % 40)])}`);
        break;
      case 13:
        lines.push(`test ${pick([r32(), mem('dword')])}, ${r32()}`);
        break;
      case 14:
        lines.push(`cmov${pick(CC)} ${r32()}, ${pick([r32(), mem('dword')])}`);
        break;
      case 15:
        lines.push(`set${pick(CC)} ${pick([pick(R8N), mem('byte')])}`);
        break;
      case 16:
        lines.push(`imul ${r32()}, ${pick([r32(), mem('dword')])}${r() % 2 ? `, ${imm()}` : ''}`);
        break;
      case 17: {
        // a forward branch over a few instructions
        const l = `f${i}`;
        lines.push(`j${pick(CC)} ${l}`, `${pick(ALU)} ${r32()}, ${imm()}`, `xor ${r32()}, ${r32()}`, `${l}:`);
        break;
      }
      case 18:
        lines.push(`push ${pick([r32(), String(imm()), mem('dword')])}`, `pop ${r32()}`);
        break;
      case 19:
        lines.push(`call sub${seed % 3}`);
        break;
      case 20:
        // interpreter-only forms in between: the block must end and resume correctly
        lines.push(pick(['cld', 'stc', 'cmc', 'bswap eax', 'xchg eax, ebx', 'bsf eax, ecx', 'bt ebx, 5', 'sahf', 'lahf', 'cdq', 'cwde', 'nop', 'mul ebx', 'imul ecx']));
        break;
      case 23:
        lines.push(
          pick([
            `${pick(['neg', 'not'])} ${pick([r32(), pick(R8N), mem('dword'), mem('byte'), pick(['ax', 'bx'])])}`,
            `test ${pick([r32(), mem('dword')])}, ${imm()}`,
            `test ${pick([pick(R8N), mem('byte')])}, ${r() & 0xff}`,
            `${pick(['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr'])} ${pick(['ax', 'bx', 'cx', 'dx'])}, ${pick(['1', 'cl', String(r() % 40)])}`,
          ]),
        );
        break;
      case 21:
        lines.push(`mov ${pick(['ax', 'bx', 'cx', 'dx'])}, ${pick([mem('word'), String(r() & 0xffff)])}`);
        break;
      case 22:
        lines.push(`${pick(ALU)} ${pick(['ax', 'bx', 'cx', 'dx'])}, ${pick(['ax', 'bx', 'cx', 'dx'])}`);
        break;
      default:
        lines.push(`mov ${mem('dword')}, ${r32()}`);
        break;
    }
  }
  // A loop around the body, so decoded blocks run again and again.
  const counter = bits === 32 ? 'dword [data+100]' : 'word [data+100]';
  return `
 mov ${counter}, 5
again:
${lines.join('\n')}
 dec ${counter}
 jnz again
 hlt
sub0: add eax, 3
 ret
sub1: ror ebx, 3
 ret
sub2: sbb ecx, edx
 ret
align 4096                ; data in its own page, or the code page would churn and back off
data: times 128 db 0
`;
}

function runBoth(build: (m: TestMachine) => void, dataBase: number, dataLen: number) {
  const results = [true, false].map((decoded) => {
    const m = makeMachine();
    if (!decoded) m.cpu.codeCache = null;
    build(m);
    runToHalt(m.cpu, 200_000);
    return { m, state: snapshot(m, dataBase, dataLen) };
  });
  return { decoded: results[0], interpreted: results[1] };
}

test('random 32-bit programs end in the same state with and without the cache', () => {
  let decodedBlocks = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const body = `main:
 mov esi, data
 mov edi, 4
 mov ebp, data+64
 mov esp, 0x7000
${randomProgram(seed, 32)}`;
    const { decoded, interpreted } = runBoth((m) => {
      loadProtected(m, body);
      for (const [i, v] of [0x12345678, 0x9abcdef0, 0x0badf00d, 0x80000000].entries()) m.cpu.setReg32(i, v);
    }, 0x10000, 0x2000);
    assert.deepEqual(decoded.state, interpreted.state, `seed ${seed}`);
    assert.equal(interpreted.m.cpu.codeCache, null);
    decodedBlocks += decoded.m.cpu.codeCache!.stats.blocksDecoded;
  }
  assert.ok(decodedBlocks > 1000, `the cached runs decoded blocks (${decodedBlocks})`);
});

test('random 16-bit real-mode programs end in the same state with and without the cache', () => {
  let decodedBlocks = 0;
  for (let seed = 100; seed < 140; seed++) {
    const src = `bits 16\norg 0x7c00\n mov si, data\n mov bp, data+64\n mov di, 2\n${randomProgram(seed, 16)}`;
    let bin: Uint8Array = new Uint8Array();
    try {
      bin = assemble(src);
    } catch {
      continue; // a 32-bit-only form nasm refuses in 16-bit code (none expected, but harmless)
    }
    const { decoded, interpreted } = runBoth((m) => loadReal(m, bin), 0x7c00, bin.length);
    assert.deepEqual(decoded.state, interpreted.state, `seed ${seed}`);
    decodedBlocks += decoded.m.cpu.codeCache!.stats.blocksDecoded;
  }
  assert.ok(decodedBlocks > 1000, `the cached runs decoded blocks (${decodedBlocks})`);
});

// -----------------------------------------------------------------------------------------------
// Writes into decoded code

test('self-modifying code: a store into the same block changes the very next instruction', () => {
  const m = makeMachine();
  loadProtected(
    m,
    `main:
 mov ecx, 3
again:
 mov byte [patch+1], cl     ; the immediate of the next instruction, in the same block
patch:
 mov al, 0
 add bl, al
 dec ecx
 jnz again
 hlt`,
  );
  runToHalt(m.cpu);
  // 3 + 2 + 1: each pass ran the freshly patched immediate, never the decoded old one.
  assert.equal(m.cpu.getReg32(3) & 0xff, 6);
  assert.ok(m.cpu.codeCache!.stats.pagesInvalidated >= 3);
});

test('code written through another linear alias of the same physical page is not run stale', () => {
  const m = makeMachine();
  // Page tables map linear 0x400000 to physical 0x10000 (the code), identity elsewhere.
  loadProtected(
    m,
    `main:
 mov edi, 0x300000
 mov eax, 0x7
 mov ecx, 1024
.pt: mov [edi+0x1000], eax
 add eax, 0x1000
 add edi, 4
 loop .pt
 mov dword [0x300000], 0x301007
 mov dword [0x302000], 0x10007
 mov dword [0x300004], 0x302007
 mov eax, 0x300000
 mov cr3, eax
 mov eax, cr0
 or eax, 0x80000000
 mov cr0, eax
 mov ecx, 2
again:
 call func
 add ebx, eax
 ; rewrite func's immediate through the alias at 0x400000
 mov dword [0x400000 + (func - $$) + 1], 100
 dec ecx
 jnz again
 hlt
func: mov eax, 1
 ret`,
  );
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(3), 101);
});

test('DMA, ROM loads and state loads into decoded code are seen by the next instruction fetched there', () => {
  const m = makeMachine();
  const code = (v: number) => assemble(`bits 32\norg 0x20000\nagain: add eax, ${v}\n dec ecx\n jnz again\n hlt\n`);
  loadProtected(m, `main:\n jmp 0x20000\n`);
  m.mem.writeBytes(0x20000, code(1));
  m.cpu.setReg32(1, 10);
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(0), 10);
  assert.ok(m.mem.codePages[0x20], 'the page holds decoded code');

  // A device's DMA goes through writeBytes.
  m.mem.writeBytes(0x20000, code(2));
  assert.equal(m.mem.codePages[0x20], 0, 'the write dropped the decoded code');
  m.cpu.halted = false;
  m.cpu.eip = 0x20000;
  m.cpu.setReg32(0, 0);
  m.cpu.setReg32(1, 10);
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(0), 20);

  m.mem.loadRom(0x20000, code(3));
  m.cpu.halted = false;
  m.cpu.eip = 0x20000;
  m.cpu.setReg32(0, 0);
  m.cpu.setReg32(1, 10);
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(0), 30);

  const ram = m.mem.ram.slice();
  ram.set(code(4), 0x20000);
  m.mem.restore(ram);
  m.cpu.halted = false;
  m.cpu.eip = 0x20000;
  m.cpu.setReg32(0, 0);
  m.cpu.setReg32(1, 10);
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(0), 40);
});

test('a page that mixes code and busy data is left to the interpreter, and stays correct', () => {
  const m = makeMachine();
  loadProtected(
    m,
    `main:
 mov ecx, 20000
again:
 inc dword [counter]        ; data in the same page as the loop
 dec ecx
 jnz again
 hlt
counter: dd 0`,
  );
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(1), 0);
  const main = m.mem.read32(0x10000);
  // main: mov ecx (5 bytes), then the loop: inc dword [counter] (6), dec ecx (1), jnz (2), hlt (1)
  assert.equal(m.mem.read32(main + 5 + 10), 20000);
  const stats = m.cpu.codeCache!.stats;
  // Without the back-off every iteration would decode the page anew.
  assert.ok(stats.pagesInvalidated < 200, `page invalidations: ${stats.pagesInvalidated}`);
});

test('a block decoded under a large CS limit faults at the right instruction under a smaller one', () => {
  const m = makeMachine();
  const bin = loadProtected(m, `main:\n jmp body\nbody:\n inc eax\n inc eax\n inc eax\n inc eax\n hlt\n`);
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(0), 4);
  // Run the same bytes again with CS ending after the second INC: the third must #GP.
  const startInc = 0x10000 + Buffer.from(bin).indexOf(Buffer.from([0x40, 0x40, 0x40, 0x40, 0xf4]));
  m.cpu.halted = false;
  m.cpu.setReg32(0, 0);
  m.cpu.setSegmentRaw(1, 0x08, 0, startInc + 1, 0x9b | (0x4 << 12)); // byte-granular limit
  m.cpu.eip = startInc;
  m.cpu.run(1000);
  assert.equal(m.cpu.getReg32(0), 2);
  assert.equal(exceptionLog(m).vector, 13);
  assert.equal(exceptionLog(m).eip, startInc + 2);
});

test('a far jump from 16-bit code to a 32-bit offset above 64 KiB is not wrapped like a 16-bit IP', () => {
  for (const decoded of [true, false]) {
    const m = makeMachine();
    if (!decoded) m.cpu.codeCache = null;
    // Linux's setup code enters protected mode this way (66 EA with a 32-bit offset).
    const boot = assemble(`bits 16
org 0x7c00
 cli
 lgdt [gdtr]
 mov eax, cr0
 or al, 1
 mov cr0, eax
 jmp dword 0x08:0x20000
align 8
gdt: dq 0, 0x00cf9a000000ffff, 0x00cf92000000ffff
gdtr: dw 23
 dd gdt
`);
    loadReal(m, boot);
    m.mem.writeBytes(0x20000, assemble('bits 32\nmov eax, 0x1234\nhlt\n'));
    runToHalt(m.cpu, 1000);
    assert.equal(m.cpu.getReg32(0), 0x1234, decoded ? 'with the cache' : 'interpreter');
    assert.equal(m.cpu.eip >>> 0, 0x20006);
  }
});
