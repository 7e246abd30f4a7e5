/**
 * gcc-compiled i686 code on the CPU: fixtures/compiled-c.c (64-bit arithmetic through the runtime
 * helpers, signed/unsigned compares, byte/word arithmetic, bit scans, switch tables, recursion,
 * memcpy/memset) is built with `gcc -m32 -march=i686` at -O1/-O2/-Os/-O3, run flat in protected
 * mode, and its result array compared with the same C built for and run on the host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeMachine, loadProtected, runToHalt, exceptionLog } from './harness';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'fixtures', 'compiled-c.c');
const rt = join(here, 'fixtures', 'compiled-c-runtime.c');

function tool(args: string[], dir: string): string | null {
  try {
    return execFileSync(args[0], args.slice(1), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (e) {
    return `FAILED: ${(e as { stderr?: Buffer }).stderr?.toString() ?? String(e)}`;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'bw-cc-'));
const probe = tool(['gcc', '-m32', '-ffreestanding', '-c', rt, '-o', join(dir, 'probe.o')], dir);
const missing = probe !== null && probe.startsWith('FAILED') ? `gcc -m32 is not usable here (${probe.slice(0, 120)})` : '';

test('compiled C (gcc -m32 -march=i686) gives the host-computed results at every optimisation level', { skip: missing || false }, () => {
  try {
    const nat = tool(['gcc', '-O2', src, '-o', join(dir, 'native')], dir);
    assert.ok(nat !== null && !nat.startsWith('FAILED'), `native build: ${nat}`);
    const expected = execFileSync(join(dir, 'native'));
    const cflags = ['-m32', '-march=i686', '-ffreestanding', '-fno-pic', '-fno-stack-protector', '-fno-asynchronous-unwind-tables'];
    assert.ok(!tool(['gcc', ...cflags, '-O1', '-fno-builtin', '-c', rt, '-o', 'rt.o'], dir)?.startsWith('FAILED'));
    for (const opt of ['-O1', '-O2', '-Os', '-O3']) {
      for (const cmd of [
        ['gcc', ...cflags, opt, '-DFREESTANDING', '-c', src, '-o', 't.o'],
        ['ld', '-m', 'elf_i386', '-Ttext', '0x10000', '-e', '_start', '-o', 't.elf', 't.o', 'rt.o'],
        ['objcopy', '-O', 'binary', 't.elf', 't.bin'],
      ]) {
        const r = tool(cmd, dir);
        assert.ok(!r?.startsWith('FAILED'), `${cmd.join(' ')}: ${r}`);
      }
      const start = parseInt((tool(['nm', 't.elf'], dir) ?? '').split('\n').find((l) => l.endsWith(' _start'))!.split(' ')[0], 16);
      const m = makeMachine(32 << 20);
      loadProtected(m, 'main: hlt');
      m.mem.writeBytes(0x10000, new Uint8Array(readFileSync(join(dir, 't.bin'))));
      m.cpu.eip = start;
      m.cpu.setReg32(4, 0x7000);
      runToHalt(m.cpu, 50_000_000);
      assert.equal(exceptionLog(m).count, 0, `${opt}: no exception`);
      const bad: number[] = [];
      for (let i = 0; i < 1024; i++) if (m.mem.read32(0x200000 + i * 4) !== expected.readInt32LE(i * 4)) bad.push(i);
      assert.deepEqual(bad, [], `${opt}: result words that differ from the host`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
