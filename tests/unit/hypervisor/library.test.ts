import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmLibrary } from '../../../src-main/hypervisor/library';
import { JsonPrefsStore } from '../../../src-main/hypervisor/prefs';
import { parseVmFile, VmFileError, VM_FORMAT_VERSION } from '../../../src-main/hypervisor/vm-file';
import { writeFileAtomic } from '../../../src-main/hypervisor/atomic-write';
import { DEMO_IMAGE } from '../../../src-main/hypervisor/node-host';

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-lib-'));
  const prefs = new JsonPrefsStore(join(dir, 'config'));
  const created: string[] = [];
  const lib = new VmLibrary(join(dir, 'lib'), prefs, (path) => {
    created.push(path);
    writeFileSync(path, 'QFI\xfb');
  });
  return { dir, prefs, lib, created, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const spec = { name: 'Test VM', osType: 'linux', memoryMiB: 64, cpus: 2, vramMiB: 8, disk: { kind: 'new' as const, sizeGiB: 1 } };

test('creating a VM makes its folder, a valid vm.json and a new disk', async () => {
  const s = setup();
  try {
    const e = await s.lib.create(spec);
    for (const sub of ['disks', 'snapshots', 'logs']) assert.ok(existsSync(join(e.folder, sub)), sub);
    const vm = parseVmFile('vm.json', readFileSync(join(e.folder, 'vm.json'), 'utf8'));
    assert.equal(vm.formatVersion, VM_FORMAT_VERSION);
    assert.equal(vm.name, 'Test VM');
    assert.equal(vm.requestedCpus, 2);
    assert.equal(vm.machine.cpus, 1);
    assert.deepEqual(vm.machine.disks, [{ kind: 'disk', path: 'disks/Test VM.qcow2' }]);
    assert.equal(s.created.length, 1);
    const again = await s.lib.create(spec);
    assert.ok(again.folder.endsWith('Test VM (2)'));
    assert.notEqual(again.id, e.id);
    assert.equal(s.lib.scan().length, 2);
  } finally {
    s.done();
  }
});

test('a broken vm.json is reported for that VM only; the others stay usable', async () => {
  const s = setup();
  try {
    const good = await s.lib.create({ ...spec, name: 'Good' });
    const cases: [string, string, RegExp][] = [
      ['Truncated', '{"formatVersion": 1, "uuid": "ab', /not valid JSON/],
      ['Empty', '', /is empty/],
      ['Mistyped', JSON.stringify({ ...good.vm, machine: { ...good.vm.machine, memoryMiB: 'lots' } }), /machine\.memoryMiB/],
      ['Future', JSON.stringify({ ...good.vm, formatVersion: 99 }), /newer Boxwood/],
      ['NotBoxwood', JSON.stringify({ hello: 'world' }), /no formatVersion/],
    ];
    for (const [name, text] of cases) {
      mkdirSync(join(s.lib.root, name));
      writeFileSync(join(s.lib.root, name, 'vm.json'), text);
    }
    const entries = s.lib.scan();
    assert.equal(entries.length, cases.length + 1);
    for (const [name, text, why] of cases) {
      const e = entries.find((x) => x.folder.endsWith(name))!;
      assert.equal(e.ok, false, name);
      assert.match((e as { error: string }).error, why, name);
      assert.match((e as { error: string }).error, /vm\.json/, name);
      // never written to: an update is refused and the bytes stay as they were
      assert.throws(() => s.lib.update(e.id, (vm) => void (vm.name = 'x')), /not changing it/);
      assert.equal(readFileSync(join(s.lib.root, name, 'vm.json'), 'utf8'), text);
    }
    const g = entries.find((x) => x.id === good.id)!;
    assert.equal(g.ok, true);
    s.lib.update(good.id, (vm) => void (vm.name = 'Renamed'));
    assert.equal(parseVmFile('x', readFileSync(join(good.folder, 'vm.json'), 'utf8')).name, 'Renamed');
  } finally {
    s.done();
  }
});

test("unknown fields survive a rewrite (an older build never drops a newer one's data)", async () => {
  const s = setup();
  try {
    const e = await s.lib.create(spec);
    const file = join(e.folder, 'vm.json');
    const raw = JSON.parse(readFileSync(file, 'utf8'));
    raw.futureFeature = { keep: [1, 2, 3] };
    raw.machine.futureDevice = 'yes';
    writeFileSync(file, JSON.stringify(raw));
    s.lib.update(e.id, (vm) => void (vm.lastState = 'aborted'));
    const back = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual(back.futureFeature, { keep: [1, 2, 3] });
    assert.equal(back.machine.futureDevice, 'yes');
    assert.equal(back.lastState, 'aborted');
  } finally {
    s.done();
  }
});

test('an update that would make vm.json invalid is refused and the file kept', async () => {
  const s = setup();
  try {
    const e = await s.lib.create(spec);
    const file = join(e.folder, 'vm.json');
    const before = readFileSync(file, 'utf8');
    assert.throws(() => s.lib.update(e.id, (vm) => void (vm.machine.memoryMiB = -5)));
    assert.equal(readFileSync(file, 'utf8'), before);
  } finally {
    s.done();
  }
});

test('atomic writes replace the whole file and leave no temporary behind', () => {
  const s = setup();
  try {
    const file = join(s.dir, 'x.json');
    writeFileAtomic(file, 'first version, rather long');
    writeFileAtomic(file, 'second');
    assert.equal(readFileSync(file, 'utf8'), 'second');
    assert.deepEqual(
      readdirSync(s.dir).filter((n) => n.includes('.tmp')),
      [],
    );
    assert.throws(() => writeFileAtomic(join(s.dir, 'missing-dir', 'y'), 'z'));
    assert.deepEqual(
      readdirSync(s.dir).filter((n) => n.includes('.tmp')),
      [],
    );
  } finally {
    s.done();
  }
});

test('adding an existing VM folder from elsewhere remembers it in the prefs', async () => {
  const s = setup();
  try {
    const other = new VmLibrary(join(s.dir, 'elsewhere'), s.prefs, () => {});
    const e = await other.create({ ...spec, disk: { kind: 'none' } });
    assert.throws(() => s.lib.addExisting(join(s.dir, 'nope')), /no such folder/);
    const added = s.lib.addExisting(e.folder);
    assert.equal(added.ok, true);
    assert.deepEqual(s.prefs.get('extraVmFolders'), [e.folder]);
    const reopened = new VmLibrary(s.lib.root, new JsonPrefsStore(join(s.dir, 'config')), () => {});
    assert.ok(reopened.scan().some((x) => x.id === added.id));
  } finally {
    s.done();
  }
});

test('the demo VM is put in the library once, with its own copy of the image', () => {
  const s = setup();
  try {
    s.lib.ensureDemo(DEMO_IMAGE);
    s.lib.ensureDemo(DEMO_IMAGE);
    const all = s.lib.scan();
    assert.equal(all.length, 1);
    const demo = all[0];
    assert.ok(demo.ok);
    assert.deepEqual(demo.vm.machine.disks, [{ kind: 'floppy', path: 'disks/demo-floppy.img' }]);
    assert.deepEqual(demo.vm.machine.bootOrder, ['floppy']);
    assert.ok(readFileSync(join(demo.folder, 'disks', 'demo-floppy.img')).equals(readFileSync(DEMO_IMAGE)));
    assert.equal(JSON.parse(readFileSync(join(s.lib.root, '.boxwood-library.json'), 'utf8')).demoCreated, true);
    // deleted by the user: not put back
    s.lib.remove(demo.id, true);
    s.lib.ensureDemo(DEMO_IMAGE);
    assert.equal(s.lib.scan().length, 0);
    // another library gets its own demo
    const other = new VmLibrary(join(s.dir, 'lib2'), s.prefs, () => {});
    other.ensureDemo(DEMO_IMAGE);
    assert.equal(other.scan().length, 1);
  } finally {
    s.done();
  }
});

test('a VM cannot be made from a file that is not an image', async () => {
  const s = setup();
  try {
    const junk = join(s.dir, 'notes.iso');
    writeFileSync(junk, 'just some text, despite the name');
    await assert.rejects(s.lib.create({ ...spec, disk: { kind: 'none' }, isoPath: junk }), /not a disk image or ISO/);
    assert.equal(s.lib.scan().length, 0);
  } finally {
    s.done();
  }
});

test('VmFileError names the file and the fault', () => {
  assert.throws(
    () => parseVmFile('/x/vm.json', '[1,2]'),
    (e: unknown) => e instanceof VmFileError && e.message === '/x/vm.json: is not a JSON object',
  );
});

test('any truncation or byte damage of vm.json gives a VmFileError or a valid file, nothing else', async () => {
  const s = setup();
  try {
    const e = await s.lib.create(spec);
    const text = readFileSync(join(e.folder, 'vm.json'), 'utf8');
    let seed = 12345;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
    const variants: string[] = [];
    for (let cut = 0; cut < text.length; cut += 7) variants.push(text.slice(0, cut));
    for (let i = 0; i < 300; i++) {
      const chars = [...text];
      for (let k = 0; k < 1 + rand(4); k++) chars[rand(chars.length)] = String.fromCharCode(rand(128));
      variants.push(chars.join(''));
    }
    let valid = 0;
    for (const v of variants) {
      try {
        parseVmFile('vm.json', v);
        valid++;
      } catch (err) {
        assert.ok(err instanceof VmFileError, `${(err as Error).name}: ${(err as Error).message}`);
      }
    }
    assert.ok(valid < variants.length);
  } finally {
    s.done();
  }
});
