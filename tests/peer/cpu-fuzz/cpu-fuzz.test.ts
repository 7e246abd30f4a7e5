/**
 * "Never a host exception": random byte streams run as code in real mode and at CPL 3 in 32-bit
 * protected mode with paging (fuzz-machine.ts). The host must see no thrown error, no hang (a
 * watchdog kills a child that stops reporting progress) and bounded heap growth; the guest must
 * see only exceptions the architecture allows there. Deterministic seeds; a failure prints the
 * seed and episode to replay with `npx tsx tests/peer/cpu-fuzz/fuzz-child.ts MODE SEED N CPU`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const CPU_MODULE = process.env.CPU_DIFF_CPU_MODULE ?? join(import.meta.dirname, '../../../src-emulator/cpu/cpu.ts');
/** ~2 million instructions in all (CI): 1 M each for real and ring 3, 300 k x87; FUZZ_INSTRUCTIONS overrides per mode. */
const PER_MODE: Record<string, number> = process.env.FUZZ_INSTRUCTIONS
  ? { real: Number(process.env.FUZZ_INSTRUCTIONS), pm3: Number(process.env.FUZZ_INSTRUCTIONS), x87: Number(process.env.FUZZ_INSTRUCTIONS) }
  : { real: 1_000_000, pm3: 1_000_000, x87: 300_000 };
const SEEDS: Record<string, number> = { real: 0x5eed0001, pm3: 0x5eed0002, x87: 0x5eed0003 };
/** No progress message for this long means a hang. */
const WATCHDOG_MS = 30_000;
/** Heap growth allowed between start and end (after GC) of a run. */
const HEAP_GROWTH_LIMIT = 64 << 20;

interface Done { mode: string; seed: number; episodes: number; instructions: number; vectors: Record<string, number>; endings: Record<string, number>; heapStart: number; heapEnd: number; heapPeak: number }

function runChild(mode: string, seed: number, instructions: number): Promise<Done> {
  return new Promise((resolve, reject) => {
    const child = fork(join(import.meta.dirname, 'fuzz-child.ts'), [mode, String(seed), String(instructions), CPU_MODULE], {
      execArgv: ['--import', 'tsx', '--expose-gc', '--max-old-space-size=512'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let settled = false;
    const finish = (f: () => void) => { if (!settled) { settled = true; clearTimeout(timer); child.kill('SIGKILL'); f(); } };
    let timer = setTimeout(onHang, WATCHDOG_MS);
    function onHang() {
      finish(() => reject(new Error(`hang: no progress from the ${mode} fuzzer (seed ${seed.toString(16)}) for ${WATCHDOG_MS / 1000} s`)));
    }
    child.on('message', (m: { progress?: unknown; done?: Done; failure?: string; codeHead?: string }) => {
      clearTimeout(timer);
      timer = setTimeout(onHang, WATCHDOG_MS);
      if (m.done) finish(() => resolve(m.done!));
      else if (m.failure) finish(() => reject(new Error(`${m.failure}\nfirst code bytes: ${m.codeHead}`)));
    });
    child.on('exit', (code, signal) => finish(() => reject(new Error(`${mode} fuzzer exited (code ${code}, signal ${signal}) without a result; seed ${seed.toString(16)}`))));
  });
}

const TITLES: Record<string, string> = {
  real: 'real mode',
  pm3: 'ring 3 of 32-bit protected mode with paging',
  x87: 'x87 instruction streams over random operands',
};
for (const mode of ['real', 'pm3', 'x87']) {
  test(`cpu fuzz: random code in ${TITLES[mode]}`, {
    timeout: 600_000,
    skip: existsSync(CPU_MODULE) ? false : `Boxwood CPU not landed: ${CPU_MODULE} does not exist yet`,
  }, async (t) => {
    const started = Date.now();
    const r = await runChild(mode, SEEDS[mode], PER_MODE[mode]);
    assert.ok(r.instructions >= PER_MODE[mode], `ran ${r.instructions} instructions`);
    assert.ok(r.heapEnd - r.heapStart < HEAP_GROWTH_LIMIT, `heap grew from ${r.heapStart} to ${r.heapEnd} bytes (peak ${r.heapPeak})`);
    t.diagnostic(`${mode}: ${r.instructions} instructions in ${r.episodes} episodes, ${((Date.now() - started) / 1000).toFixed(1)} s; endings ${JSON.stringify(r.endings)}; vectors ${JSON.stringify(r.vectors)}; heap ${(r.heapStart / 1048576).toFixed(1)} -> ${(r.heapEnd / 1048576).toFixed(1)} MiB (peak ${(r.heapPeak / 1048576).toFixed(1)})`);
  });
}
