/** Paging: 4 KiB and 4 MiB pages, PAE, A/D bits, U/S and WP, #PF error codes and CR2, TLB, INVLPG, global pages. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMachine, loadProtected, runToHalt, exceptionLog, SEL, STACK3 } from './harness';

const PD = 0x80000;
const PT = 0x81000;

/** Identity-maps the first 4 MiB with 4 KiB pages (user, writable) through PD/PT, then enables paging. */
const SETUP = `
 mov edi, ${PT}
 mov eax, 0x7
 mov ecx, 1024
.pt: mov [edi], eax
 add eax, 0x1000
 add edi, 4
 loop .pt
 mov dword [${PD}], ${PT | 7}
 mov eax, ${PD}
 mov cr3, eax
 mov eax, cr0
 or eax, 0x80000000
 mov cr0, eax
`;
const pte = (lin: number) => PT + (lin >>> 12) * 4;

function run(body: string, setup?: (m: ReturnType<typeof makeMachine>) => void) {
  const m = makeMachine();
  loadProtected(m, `main:\n${SETUP}\n${body}\n hlt\n`);
  setup?.(m);
  runToHalt(m.cpu);
  return { m, log: exceptionLog(m) };
}

test('#PF for a not-present page: error code 0/2, CR2, faulting EIP; A and D bits set by accesses', () => {
  let r = run(`mov dword [${pte(0x300000)}], 0\n invlpg [0x300000]\n mov eax, [0x300004]`);
  assert.deepEqual([r.log.vector, r.log.error], [14, 0]);
  assert.equal(r.m.cpu.getCr(2), 0x300004);
  r = run(`mov dword [${pte(0x300000)}], 0\n invlpg [0x300000]\n mov [0x300008], eax`);
  assert.deepEqual([r.log.vector, r.log.error], [14, 2]);
  r = run(`mov dword [${pte(0x300000)}], 0x300007\n invlpg [0x300000]\n mov eax, [0x300000]\n mov ebx, [${pte(0x300000)}]\n mov [0x301000], eax\n mov ecx, [${pte(0x301000)}]`);
  assert.equal(r.m.cpu.getReg32(3) & 0x60, 0x20, 'read sets A only');
  assert.equal(r.m.cpu.getReg32(1) & 0x60, 0x60, 'write sets A and D');
});

test('stale TLB entries survive until INVLPG or a CR3 write', () => {
  const { m } = run(`mov eax, [0x300000]\n mov dword [${pte(0x300000)}], 0x301007\n mov ebx, [0x300000]\n invlpg [0x300000]\n mov ecx, [0x300000]`, (m) => {
    m.mem.write32(0x300000, 0xaaaa);
    m.mem.write32(0x301000, 0xbbbb);
  });
  assert.equal(m.cpu.getReg32(3), 0xaaaa, 'old translation still cached');
  assert.equal(m.cpu.getReg32(1), 0xbbbb, 'INVLPG drops it');
});

test('user/supervisor and read/write protection from ring 3, and WP for ring 0', () => {
  const toRing3 = `mov ax, ${SEL.data3}\n mov ds, ax\n mov es, ax\n push dword ${SEL.data3}\n push dword ${STACK3}\n push dword 2\n push dword ${SEL.code3}\n push dword r3\n iretd\nr3:`;
  let r = run(`and dword [${pte(0x300000)}], ~4\n ${toRing3}\n mov eax, [0x300010]`);
  assert.deepEqual([r.log.vector, r.log.error], [14, 5], 'user read of a supervisor page: P|U');
  r = run(`and dword [${pte(0x300000)}], ~2\n ${toRing3}\n mov eax, [0x300010]\n mov [0x300010], eax`);
  assert.deepEqual([r.log.vector, r.log.error], [14, 7], 'user write to a read-only page: P|W|U');
  r = run(`and dword [${pte(0x300000)}], ~2\n mov [0x300010], eax\n mov eax, cr0\n or eax, 0x10000\n mov cr0, eax\n mov [0x300010], eax`);
  assert.deepEqual([r.log.vector, r.log.error], [14, 3], 'supervisor write to a read-only page faults only with CR0.WP');
});

test('4 MiB pages with CR4.PSE', () => {
  const { m } = run(`mov dword [${PD + 4}], 0x00800087 | 0x00000000\n mov eax, cr4\n or eax, 0x10\n mov cr4, eax\n mov eax, [0x400010]\n mov ebx, [${PD + 4}]`, (mm) => mm.mem.write32(0x800010, 0x5a5a));
  assert.equal(m.cpu.getReg32(0), 0x5a5a, 'linear 4 MiB maps physical 8 MiB');
  assert.equal(m.cpu.getReg32(3) & 0x20, 0x20);
});

test('PAE: 2 MiB and 4 KiB pages, reserved bits give RSVD|P', () => {
  const PDPT = 0x90000;
  const PD2 = 0x91000;
  const PT2 = 0x92000;
  const body = `
 mov eax, cr0
 and eax, 0x7fffffff
 mov cr0, eax
 mov dword [${PDPT}], ${PD2 | 1}
 mov dword [${PDPT + 4}], 0
 mov dword [${PD2}], 0x00000083         ; 0-2 MiB: 2 MiB page
 mov dword [${PD2 + 4}], 0
 mov dword [${PD2 + 8}], ${PT2 | 3}     ; 2-4 MiB: page table
 mov dword [${PD2 + 12}], 0
 mov dword [${PT2}], 0x00700003         ; 2 MiB -> 7 MiB
 mov dword [${PT2 + 4}], 0
 mov dword [${PT2 + 8}], 0x00700003
 mov dword [${PT2 + 12}], 0x00000100    ; reserved physical-address bit
 mov eax, cr4
 or eax, 0x20
 mov cr4, eax
 mov eax, ${PDPT}
 mov cr3, eax
 mov eax, cr0
 or eax, 0x80000000
 mov cr0, eax
 mov esi, [0x200000]
 mov edi, [0x201000]
`;
  const m = makeMachine();
  loadProtected(m, `main:\n${body}\n hlt\n`);
  m.mem.write32(0x700000, 0x1234);
  runToHalt(m.cpu);
  assert.equal(m.cpu.getReg32(6), 0x1234);
  const log = exceptionLog(m);
  assert.deepEqual([log.vector, log.error], [14, 9]);
  assert.equal(m.cpu.getCr(2), 0x201000);
});

test('global pages survive CR3 reloads when CR4.PGE is set', () => {
  const { m } = run(`or dword [${pte(0x300000)}], 0x100\n mov eax, cr4\n or eax, 0x80\n mov cr4, eax\n mov eax, [0x300000]\n mov dword [${pte(0x300000)}], 0x301107\n mov eax, cr3\n mov cr3, eax\n mov ebx, [0x300000]\n mov eax, cr4\n mov cr4, eax\n and eax, ~0x80\n mov cr4, eax\n mov ecx, [0x300000]`, (mm) => {
    mm.mem.write32(0x300000, 1);
    mm.mem.write32(0x301000, 2);
  });
  assert.equal(m.cpu.getReg32(3), 1, 'global entry kept over a CR3 write');
  assert.equal(m.cpu.getReg32(1), 2, 'CR4.PGE toggle flushes globals');
});
