/**
 * Child process of crash.test.ts: writes pseudo-random data through an image until killed.
 * Prints "W <i>" before write i starts and "F <i>" once a flush covering writes 0..i returned.
 * The lines go out with write(2) on fd 1, never through process.stdout, whose queue could still
 * hold them when the kill lands (the parent would then miss a write that did happen).
 */
import { writeSync } from 'node:fs';
import { openImage } from '../../../src-emulator/storage/open';
import { crashWrite } from './crash-plan';

const [file, seedArg, maxArg] = process.argv.slice(2);
const img = openImage(file);
const seed = Number(seedArg);
const max = Number(maxArg ?? 100000);
writeSync(1, 'R\n');
for (let i = 0; i < max; i++) {
  const w = crashWrite(seed, i, img.size);
  writeSync(1, `W ${i}\n`);
  img.write(w.offset, w.data);
  if (i % 4 === 3) {
    img.flush();
    writeSync(1, `F ${i}\n`);
  }
}
img.close();
writeSync(1, 'D\n');
