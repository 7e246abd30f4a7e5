import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const committed = join('resources', 'demo-guest', 'demo-floppy.img');
const hasNasm = spawnSync('nasm', ['-v']).status === 0;

test('the committed demo guest image is a bootable 1.44 MB floppy', () => {
  const img = readFileSync(committed);
  assert.equal(img.length, 1474560);
  assert.equal(img[510], 0x55);
  assert.equal(img[511], 0xaa);
});

test(
  'a fresh nasm build of the demo guest is byte-identical to the committed image',
  { skip: hasNasm ? false : 'nasm is not installed' },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-demo-'));
    try {
      const out = join(dir, 'demo.img');
      const r = spawnSync(process.execPath, ['scripts/build-demo-guest.mjs', out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.ok(
        readFileSync(out).equals(readFileSync(committed)),
        'rebuild differs: run `node scripts/build-demo-guest.mjs` and commit the image',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
