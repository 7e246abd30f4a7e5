/**
 * Runs differential test programs by hand: `npx tsx tests/peer/cpu-diff/run.ts [--qemu-only] [--trace] [name|path ...]`.
 */
import { assembleProgram, listPrograms, PROGRAM_DIR } from './program';
import { runDiff } from './harness';
import { formatState, hex } from './state';
import { bytesToHex } from './gdb-client';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { boxwoodDutFactory, loadCpuClass } from './boxwood-side';

const args = process.argv.slice(2);
const qemuOnly = args.includes('--qemu-only');
const trace = args.includes('--trace');
const dumpArg = args.find((a) => a.startsWith('--dump='));
const dumps = dumpArg ? dumpArg.slice(7).split(',').map((x) => { const [a, l] = x.split(':'); return { start: Number(a), length: Number(l) }; }) : [];
const names = args.filter((a) => !a.startsWith('--'));
const files = names.length ? names.map((n) => (existsSync(n) ? n : join(PROGRAM_DIR, n.endsWith('.asm') ? n : `${n}.asm`))) : listPrograms();
let makeDut = null;
if (!qemuOnly) {
  const c = await loadCpuClass();
  if ('missing' in c) { console.error(`Boxwood CPU: ${c.missing}; use --qemu-only`); process.exit(2); }
  makeDut = boxwoodDutFactory(c.Cpu);
}
let failed = 0;
for (const f of files) {
  const prog = assembleProgram(f);
  const r = await runDiff(prog, makeDut, {
    qemuOnly,
    dumpAtExit: dumps,
    keepGoing: args.includes('--keep-going') ? 20 : 0,
    trace: trace ? (step, s, info, bytes) => console.log(`#${step} ${hex(s.seg[1].selector, 4)}:${hex(s.eip)} ${bytesToHex(bytes.subarray(0, 8))} ${info.what} eax=${hex(s.gpr[0])} ecx=${hex(s.gpr[1])} edx=${hex(s.gpr[2])} ebx=${hex(s.gpr[3])} esp=${hex(s.gpr[4])} efl=${hex(s.eflags)} cpl=${s.cpl}`) : undefined,
  });
  console.log(`${r.agree ? 'AGREE ' : 'DIFFER'} ${prog.name} (${r.steps} steps)${r.notes.length ? ' notes: ' + r.notes.join('; ').slice(0, 400) : ''}`);
  if (!r.agree) { failed++; console.log(args.includes('--full') ? r.report : args.includes('--summary') ? r.summary : r.report.split('\n').slice(0, 60).join('\n')); }
  r.dumps.forEach((d, i) => {
    for (let o = 0; o < d.length; o += 16) console.log(`${hex(dumps[i].start + o)}: ${bytesToHex(d.subarray(o, o + 16)).replace(/(.{8})/g, '$1 ')}`);
  });
}
void formatState;
process.exit(failed ? 1 : 0);
