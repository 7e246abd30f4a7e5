import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeRam,
  decodeStateFile,
  encodeRam,
  encodeStateFile,
  inspectStateFile,
  loadStateFileInto,
  readStateFile,
  StateFileError,
  writeStateFile,
} from '../../../src-emulator/state/state-file';
import { runUntil, serialOf, tickMachine } from './tick-guest';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'boxwood-state-'));
}

test('RAM encoding skips zero pages and round-trips odd sizes and patterns', () => {
  for (const size of [0, 100, 4096, 4096 * 3 + 17, 2 * 1024 * 1024]) {
    const ram = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096 * 3) ram.fill((i >> 12) & 0xff || 1, i, Math.min(size, i + 700));
    if (size) ram[size - 1] = 0x5a;
    const enc = encodeRam(ram);
    assert.deepEqual(decodeRam(enc), ram, `size ${size}`);
  }
  // An empty 64 MiB RAM is only the header and the bitmap.
  const empty = encodeRam(new Uint8Array(64 * 1024 * 1024));
  assert.equal(empty.length, 8 + (64 * 1024 * 1024) / 4096 / 8);
});

test('RAM pages that do not compress are stored as they are, and read back', () => {
  const ram = new Uint8Array(4 * 1024 * 1024);
  let x = 12345;
  for (let i = 0; i < 2 * 1024 * 1024; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    ram[i] = x & 0xff;
  }
  ram.fill(0x41, 3 * 1024 * 1024, 3 * 1024 * 1024 + 300_000);
  const enc = encodeRam(ram);
  assert.deepEqual(decodeRam(enc), ram);
  // 2 MiB of noise stored raw (+ headers), the text run deflated to almost nothing.
  assert.ok(enc.length < 2 * 1024 * 1024 + 64 * 1024, `${enc.length} bytes`);
  assert.ok(enc.length >= 2 * 1024 * 1024);
});

test('RAM encoding detects a bitmap that disagrees with the data', () => {
  const ram = new Uint8Array(8 * 4096);
  ram[5000] = 1;
  const enc = encodeRam(ram);
  const bad = enc.slice();
  bad[8] |= 0x80; // mark page 7 non-zero: no data for it
  assert.throws(() => decodeRam(bad), /bitmap marks pages/);
});

test('a machine state round-trips through the file, with sections per device and an extra section', () => {
  const m = tickMachine();
  const out = serialOf(m);
  runUntil(m, () => out.text.length >= 20);
  const state = m.saveState();
  const dir = tmp();
  try {
    const file = join(dir, 'a.state');
    const thumb = new Uint8Array([1, 2, 3]);
    writeStateFile(file, state, { thumbnail: thumb });
    assert.deepEqual(readdirSync(dir), ['a.state'], 'no temporary file left behind');
    const info = inspectStateFile(file);
    assert.equal(info.formatVersion, 1);
    const names = info.sections.map((s) => s.name);
    for (const need of ['machine.version', 'machine.cpu', 'machine.clock', 'machine.config', 'ram', 'extra.thumbnail'])
      assert.ok(names.includes(need), need);
    for (const dev of Object.keys(state.devices)) assert.ok(names.includes(`device.${dev}`), dev);
    // 16 MiB of RAM, nearly all zero: the file is small.
    assert.ok(info.fileBytes < 512 * 1024, `file is ${info.fileBytes} bytes`);
    const back = readStateFile(file);
    assert.deepEqual(back.state, state);
    assert.deepEqual(back.extra.thumbnail, thumb);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deterministic mode: a restored guest prints the same serial output as a run never saved', () => {
  const a = tickMachine();
  const outA = serialOf(a);
  runUntil(a);
  assert.equal(a.state, 'off');
  assert.ok(outA.text.length > 300, `the reference run prints ${outA.text.length} letters`);
  const dir = tmp();
  try {
    for (const cut of [1, 57, 233]) {
      const b = tickMachine();
      const outB = serialOf(b);
      runUntil(b, () => outB.text.length >= cut);
      const before = outB.text;
      const file = join(dir, `cut${cut}.state`);
      writeStateFile(file, b.saveState());
      // The saved machine itself carries on unchanged.
      runUntil(b);
      assert.equal(outB.text, outA.text, `saving at ${cut} does not disturb the run`);
      const c = tickMachine();
      const outC = serialOf(c);
      loadStateFileInto(file, c);
      runUntil(c);
      assert.equal(before + outC.text, outA.text, `restored at ${cut} letters`);
      assert.equal(c.exitCode, a.exitCode);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('damage gives an error naming the file and the section; truncation is told apart', () => {
  const m = tickMachine();
  const out = serialOf(m);
  runUntil(m, () => out.text.length >= 5);
  const bytes = encodeStateFile(m.saveState());
  const file = '/vm/snapshots/x.state';
  assert.doesNotThrow(() => decodeStateFile(file, bytes));
  // Find where the RAM section's payload is and flip a byte inside it.
  const buf = Buffer.from(bytes);
  const ramAt = buf.indexOf(Buffer.from('\x03\x00ram', 'latin1'));
  assert.ok(ramAt > 0);
  const hit = Buffer.from(buf);
  hit[ramAt + 5 + 12 + 20] ^= 0xff;
  assert.throws(
    () => decodeStateFile(file, hit),
    (e: unknown) =>
      e instanceof StateFileError && e.file === file && e.section === 'ram' && /checksum/.test(e.message) && e.message.startsWith(file),
  );
  const cpuAt = buf.indexOf(Buffer.from('machine.cpu', 'latin1'));
  const hit2 = Buffer.from(buf);
  hit2[cpuAt + 11 + 12 + 3] ^= 0x01;
  assert.throws(
    () => decodeStateFile(file, hit2),
    (e: unknown) => e instanceof StateFileError && e.section === 'machine.cpu',
  );
  for (const cut of [3, 20, 40, ramAt + 30, buf.length - 5]) {
    assert.throws(
      () => decodeStateFile(file, buf.subarray(0, cut)),
      (e: unknown) => e instanceof StateFileError && /truncated|magic|end marker/.test(e.message),
      `cut at ${cut}`,
    );
  }
  const header = Buffer.from(buf);
  header[16] = 9; // format version
  assert.throws(() => decodeStateFile(file, header), /header.*checksum|newer Boxwood/);
  assert.throws(() => decodeStateFile(file, Buffer.from('BOXWOOD-SAVED-STATE v1\n')), /not a Boxwood machine-state file/);
});

test('random corruption never escapes as anything but a StateFileError', () => {
  const m = tickMachine();
  const out = serialOf(m);
  runUntil(m, () => out.text.length >= 5);
  const bytes = Buffer.from(encodeStateFile(m.saveState()));
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(bytes);
    const flips = 1 + rnd(4);
    for (let f = 0; f < flips; f++) b[rnd(b.length)] ^= 1 << rnd(8);
    try {
      decodeStateFile('f.state', b);
    } catch (e) {
      assert.ok(e instanceof StateFileError, `case ${i}: ${(e as Error).message}`);
    }
  }
});

test('a state whose device section loads badly names the section and the file', () => {
  const m = tickMachine();
  const dir = tmp();
  try {
    const file = join(dir, 's.state');
    const st = m.saveState();
    (st as { cpu: unknown }).cpu = 'nonsense';
    writeStateFile(file, st);
    const fresh = tickMachine();
    assert.throws(
      () => loadStateFileInto(file, fresh),
      (e: unknown) => e instanceof StateFileError && e.file === file && /cpu/.test(e.message),
    );
    writeFileSync(join(dir, 'empty.state'), '');
    assert.throws(() => readStateFile(join(dir, 'empty.state')), /empty\.state: not a Boxwood/);
    assert.throws(() => readStateFile(join(dir, 'missing.state')), /missing\.state: is missing/);
    assert.ok(readFileSync(file).length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
