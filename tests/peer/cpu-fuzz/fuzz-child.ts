/**
 * Child process of cpu-fuzz.test.ts: runs fuzz episodes for one mode and seed and reports over
 * IPC, so a hang in the CPU can be killed by the parent's watchdog.
 * Messages: {progress}, then {done} or {failure}.
 */
import { FuzzMachine, rng, type FuzzMode } from './fuzz-machine';

const [mode, seedArg, instrArg, cpuModule] = process.argv.slice(2);
const seed = Number(seedArg);
const target = Number(instrArg);
const send = (m: unknown) => new Promise<void>((resolve) => process.send!(m, () => resolve()));

const { Cpu } = (await import(cpuModule)) as { Cpu: new (host: never) => unknown };
const machine = new FuzzMachine(Cpu as never, mode as FuzzMode);
const rand = rng(seed);
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const heapStart = process.memoryUsage().heapUsed;
let instructions = 0;
let episodes = 0;
const vectors: Record<string, number> = {};
const endings: Record<string, number> = {};
let heapPeak = heapStart;
let lastProgress = Date.now();
const code = new Uint8Array(4096);
while (instructions < target) {
  const episodeSeed = rand();
  const r2 = rng(episodeSeed);
  for (let i = 0; i < code.length; i += 4) {
    const x = r2();
    code[i] = x; code[i + 1] = x >>> 8; code[i + 2] = x >>> 16; code[i + 3] = x >>> 24;
  }
  let res;
  try {
    res = machine.episode(code, r2, 4000);
  } catch (e) {
    await send({ failure: `host exception in episode ${episodes} (mode ${mode}, run seed ${seed}, episode seed ${episodeSeed}): ${(e as Error)?.stack ?? String(e)}`, codeHead: Buffer.from(code.subarray(0, 64)).toString('hex') });
    process.exit(1);
  }
  if (res.violations.length) {
    await send({ failure: `architecture violation in episode ${episodes} (mode ${mode}, run seed ${seed}, episode seed ${episodeSeed}): ${res.violations.join('; ')}; exceptions ${JSON.stringify(res.exceptions)}; handler ${res.handlerVector}`, codeHead: Buffer.from(code.subarray(0, 64)).toString('hex') });
    process.exit(1);
  }
  instructions += res.instructions;
  episodes++;
  endings[res.ended] = (endings[res.ended] ?? 0) + 1;
  for (const [v] of res.exceptions) vectors[v] = (vectors[v] ?? 0) + 1;
  if (res.handlerVector >= 0) {
    const k = res.handlerVector >= 32 ? 'h32+' : `h${res.handlerVector}`; // software INT n
    vectors[k] = (vectors[k] ?? 0) + 1;
  }
  if ((episodes & 63) === 0) {
    const h = process.memoryUsage().heapUsed;
    if (h > heapPeak) heapPeak = h;
    if (Date.now() - lastProgress > 1000) {
      lastProgress = Date.now();
      await send({ progress: { episodes, instructions } });
    }
  }
}
gc?.();
const heapEnd = process.memoryUsage().heapUsed;
await send({ done: { mode, seed, episodes, instructions, vectors, endings, heapStart, heapEnd, heapPeak } });
process.exit(0);
