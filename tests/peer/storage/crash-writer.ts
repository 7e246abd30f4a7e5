/**
 * Child process of crash.test.ts: writes pseudo-random data through an image until killed.
 * Prints "W <i>" before write i starts and "F <i>" once a flush covering writes 0..i returned.
 * (stdout on a pipe is synchronous on Linux, so what the parent reads did happen.)
 */
import { openImage } from '../../../src-emulator/storage/open';
import { crashWrite } from './crash-plan';

const [file, seedArg, maxArg] = process.argv.slice(2);
const img = openImage(file);
const seed = Number(seedArg);
const max = Number(maxArg ?? 100000);
process.stdout.write('R\n');
for (let i = 0; i < max; i++) {
  const w = crashWrite(seed, i, img.size);
  process.stdout.write(`W ${i}\n`);
  img.write(w.offset, w.data);
  if (i % 4 === 3) {
    img.flush();
    process.stdout.write(`F ${i}\n`);
  }
}
img.close();
process.stdout.write('D\n');
