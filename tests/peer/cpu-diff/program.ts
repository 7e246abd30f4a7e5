/**
 * Test programs: `programs/*.asm`, assembled at test time with `nasm -f bin` into a 64 KiB BIOS
 * image. Directives in comments at the top of the source steer the harness:
 *   ; diff-memory: 0x1000 0x2000     physical range (start, length) compared at the end; repeatable
 *   ; diff-memory-ignore: 0x13000 0x20 [count]  bits not compared in `count` (default 1) bytes from
 *                                     the address (a documented QEMU inexactness)
 *   ; diff-max-steps: 50000          step budget (default 20000); running out is a failure
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export const PROGRAM_DIR = join(import.meta.dirname, 'programs');

export interface TestProgram {
  name: string;
  source: string;
  image: Uint8Array;
  memory: { start: number; length: number }[];
  /** Physical byte address -> bits not compared there. */
  memoryIgnore: Map<number, number>;
  maxSteps: number;
}

export function listPrograms(): string[] {
  return readdirSync(PROGRAM_DIR).filter((f) => f.endsWith('.asm')).sort().map((f) => join(PROGRAM_DIR, f));
}

/** Assembles `source` (an .asm path); throws with nasm's message on error. */
export function assembleProgram(source: string): TestProgram {
  const dir = mkdtempSync(join(tmpdir(), 'cpu-diff-'));
  try {
    const out = join(dir, 'prog.bin');
    const r = spawnSync('nasm', ['-f', 'bin', '-I', PROGRAM_DIR + '/', '-o', out, source], { encoding: 'utf8', timeout: 30000 });
    if (r.error) throw new Error(`nasm (Debian package nasm) could not run: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`nasm failed on ${source}:\n${r.stderr}`);
    const image = new Uint8Array(readFileSync(out));
    if (image.length !== 0x10000 && image.length !== 0x20000) {
      throw new Error(`${source}: image is ${image.length} bytes; a BIOS image must be 64 or 128 KiB (include rom.inc)`);
    }
    const text = readFileSync(source, 'utf8');
    const memory: TestProgram['memory'] = [];
    let maxSteps = 20000;
    for (const m of text.matchAll(/^;\s*diff-memory:\s*(\S+)\s+(\S+)/gm)) memory.push({ start: Number(m[1]), length: Number(m[2]) });
    const memoryIgnore = new Map<number, number>();
    for (const m of text.matchAll(/^;\s*diff-memory-ignore:\s*(\S+)\s+(\S+)(?:[ \t]+(\S+))?/gm)) {
      for (let k = 0; k < Number(m[3] ?? 1); k++) memoryIgnore.set(Number(m[1]) + k, (memoryIgnore.get(Number(m[1]) + k) ?? 0) | Number(m[2]));
    }
    const ms = /^;\s*diff-max-steps:\s*(\S+)/m.exec(text);
    if (ms) maxSteps = Number(ms[1]);
    return { name: basename(source, '.asm'), source, image, memory, memoryIgnore, maxSteps };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
