/**
 * The CPU alone on fixed in-repo workloads (32-bit flat protected mode, assembled with nasm):
 * millions of guest instructions per second.
 */
import type { BenchRow } from './types';
import { makeMachine, loadProtected } from '../unit/cpu/harness';

const WORKLOADS: { name: string; body: string; budget: number }[] = [
  {
    name: 'integer loop',
    budget: 30_000_000,
    body: `main:
 xor eax, eax
 mov ebx, 1
.outer:
 mov ecx, 1000000
.l:
 add eax, ecx
 xor ebx, eax
 lea edx, [eax+ebx*2]
 sub edx, ecx
 dec ecx
 jnz .l
 jmp .outer`,
  },
  {
    name: 'rep movsd 64 KiB',
    budget: 200_000,
    body: `main:
 cld
.again:
 mov esi, 0x100000
 mov edi, 0x200000
 mov ecx, 16384
 rep movsd
 inc dword [0x3000]
 jmp .again`,
  },
  {
    name: 'sieve 64K',
    budget: 20_000_000,
    body: `main:
.again:
 mov edi, 0x100000
 mov ecx, 65536
 mov al, 1
 rep stosb
 mov ebx, 2
.outer:
 cmp byte [0x100000+ebx], 0
 je .next
 mov edx, ebx
 imul edx, ebx
 cmp edx, 65536
 jae .again
.inner:
 mov byte [0x100000+edx], 0
 add edx, ebx
 cmp edx, 65536
 jb .inner
.next:
 inc ebx
 jmp .outer`,
  },
  {
    name: 'paging: 4 KiB pages, scattered reads, CR3 reloads',
    budget: 20_000_000,
    body: `main:
 ; identity map 16 MiB with 4 KiB pages: directory at 0x300000, tables at 0x301000
 mov edi, 0x301000
 mov eax, 0x7
 mov ecx, 4096
.pt:
 mov [edi], eax
 add eax, 0x1000
 add edi, 4
 loop .pt
 mov edi, 0x300000
 mov eax, 0x301007
 mov ecx, 4
.pd:
 mov [edi], eax
 add eax, 0x1000
 add edi, 4
 loop .pd
 mov eax, 0x300000
 mov cr3, eax
 mov eax, cr0
 or eax, 0x80000000
 mov cr0, eax
.again:
 mov eax, 0x300000
 mov cr3, eax
 mov esi, 0x400000
 mov ecx, 2048
.touch:
 add ebx, [esi]
 mov [esi+8], ebx
 add esi, 0x1004
 dec ecx
 jnz .touch
 jmp .again`,
  },
  {
    name: 'x87 arithmetic',
    budget: 5_000_000,
    body: `main:
 fninit
 fld1
 fld1
.l:
 fadd st0, st1
 fmul st0, st1
 fsqrt
 fst dword [0x3000]
 jmp .l`,
  },
];

interface Measured {
  mips: number;
  wallMips: number;
  instructions: number;
  /** MiB copied per CPU-second (the rep movsd workload). */
  copyRate: number;
  stoppedAt: number | null;
}

/** Runs one workload with the decoded-instruction cache on or off; per CPU-second of this process. */
function measure(w: (typeof WORKLOADS)[number], decoded: boolean): Measured {
  const m = makeMachine(32 << 20);
  if (!decoded) m.cpu.codeCache = null;
  loadProtected(m, w.body);
  // Warm up, then measure.
  for (let warm = 0; warm < Math.min(3_000_000, w.budget / 3) && !m.cpu.halted; ) warm += m.cpu.run(100_000);
  const start = m.cpu.instructionsRetired;
  const copies0 = m.mem.read32(0x3000);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let left = w.budget;
  while (left > 0 && !m.cpu.halted) left -= m.cpu.run(Math.min(left, 100_000));
  const ms = performance.now() - t0;
  const cu = process.cpuUsage(c0);
  // The host is shared: CPU time of this process is a steadier measure than wall time.
  const cpuMs = (cu.user + cu.system) / 1000;
  const n = m.cpu.instructionsRetired - start;
  const copies = m.mem.read32(0x3000) - copies0;
  return {
    mips: n / cpuMs / 1000,
    wallMips: n / ms / 1000,
    instructions: n,
    copyRate: (copies * 65536) / (1 << 20) / (cpuMs / 1000),
    stoppedAt: m.cpu.halted ? m.cpu.eip : null,
  };
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const w of WORKLOADS) {
    try {
      // Both paths in one run, so the ratio is measured on the same host at the same time.
      const interp = measure(w, false);
      const dec = measure(w, true);
      if (dec.stoppedAt !== null || interp.stoppedAt !== null) {
        rows.push({ suite: 'cpu', name: w.name, value: 0, unit: 'MIPS', note: `stopped early at eip ${(dec.stoppedAt ?? interp.stoppedAt ?? 0).toString(16)} (exception or unimplemented)` });
        continue;
      }
      const ratio = dec.mips / interp.mips;
      rows.push({
        suite: 'cpu',
        name: w.name,
        value: Number(dec.mips.toFixed(2)),
        unit: 'MIPS',
        note: `per CPU-second, decoded-instruction cache; ${ratio.toFixed(2)}x the interpreter alone (${interp.mips.toFixed(1)} MIPS); ${dec.wallMips.toFixed(1)} MIPS wall`,
      });
      if (w.name.startsWith('rep movsd')) {
        // A REP counts as one instruction per 4096 iterations: report the copy rate too.
        rows.push({ suite: 'cpu', name: 'rep movsd throughput', value: Number(dec.copyRate.toFixed(0)), unit: 'MiB/s', note: 'per CPU-second' });
      }
    } catch (e) {
      rows.push({ suite: 'cpu', name: w.name, value: 0, unit: 'MIPS', note: `failed: ${(e as Error).message}` });
    }
  }
  return rows;
}
