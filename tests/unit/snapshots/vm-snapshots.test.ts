import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmSnapshots, JOURNAL_FILE, SAVED_STATE } from '../../../src-main/hypervisor/snapshots/vm-snapshots';
import { readVmFile } from '../../../src-main/hypervisor/vm-file';
import { checkVmFolder, DISK_SIZE, makeVm, readDisk, writeCurrent } from './vm-fixture';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'boxwood-snap-'));
}

const isTrue = (v: unknown) => assert.ok(v);

test('take, restore and content on a real qcow2 chain; restore discards the old overlay', () => {
  const root = tmp();
  const folder = join(root, 'vm');
  try {
    makeVm(folder);
    const s = new VmSnapshots(folder);
    const model = new Uint8Array(DISK_SIZE);
    const exp = new Map<string, Uint8Array>();
    writeCurrent(folder, model, 1);
    s.take('one', { description: 'first' });
    exp.set('one', model.slice());
    writeCurrent(folder, model, 2);
    s.take('two');
    exp.set('two', model.slice());
    writeCurrent(folder, model, 3);
    exp.set('current', model.slice());
    checkVmFolder(folder, exp);
    const t = s.tree();
    assert.equal(t.nodes.length, 2);
    assert.equal(t.get(t.current!)!.name, 'two');
    assert.equal(t.find('two').parent, t.find('one').uuid);
    assert.equal(t.find('one').description, 'first');
    // Restore 'one': the current disk reads as it did then, and the overlay with gen 3 is gone.
    assert.equal(s.currentChanged(), true, 'gen 3 was written after the last snapshot');
    const before = readVmFile(join(folder, 'vm.json')).machine.disks[0].path!;
    s.restore('one');
    assert.equal(s.currentChanged(), false, 'right after a restore nothing has changed');
    assert.ok(!existsSync(join(folder, before)), 'old current overlay removed');
    exp.set('current', exp.get('one')!);
    checkVmFolder(folder, exp);
    assert.equal(s.tree().current, t.find('one').uuid);
    // Changes after a restore branch off: take 'three' under 'one'.
    const branch = exp.get('one')!.slice();
    writeCurrent(folder, branch, 4);
    s.take('three');
    exp.set('three', branch.slice());
    exp.set('current', branch.slice());
    checkVmFolder(folder, exp);
    assert.deepEqual(
      s
        .tree()
        .children(t.find('one').uuid)
        .map((n) => n.name)
        .sort(),
      ['three', 'two'],
    );
    s.restore('two');
    exp.set('current', exp.get('two')!);
    checkVmFolder(folder, exp);
    assert.ok(!existsSync(join(folder, JOURNAL_FILE)));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('deleting snapshots in the middle and at the root of a three-level tree keeps every other snapshot byte-exact', () => {
  const root = tmp();
  const folder = join(root, 'vm');
  try {
    makeVm(folder, 2);
    const s = new VmSnapshots(folder);
    const model = new Uint8Array(DISK_SIZE);
    const exp = new Map<string, Uint8Array>();
    writeCurrent(folder, model, 10);
    s.take('A');
    exp.set('A', model.slice());
    writeCurrent(folder, model, 11);
    s.take('B');
    exp.set('B', model.slice());
    writeCurrent(folder, model, 12);
    s.take('C');
    exp.set('C', model.slice());
    s.restore('A');
    const m2 = exp.get('A')!.slice();
    writeCurrent(folder, m2, 13);
    s.take('D');
    exp.set('D', m2.slice());
    writeCurrent(folder, m2, 14);
    exp.set('current', m2.slice());
    checkVmFolder(folder, exp);
    const progress: string[] = [];
    // B is in the middle: its layer merges into C's.
    s.delete('B', (phase) => progress.push(phase));
    exp.delete('B');
    checkVmFolder(folder, exp);
    assert.ok(progress.length > 0);
    assert.equal(s.tree().find('C').parent, s.tree().find('A').uuid);
    // A is the root and holds the base disk: its layer streams into C's and D's layers.
    s.delete('A');
    exp.delete('A');
    const rep = checkVmFolder(folder, exp);
    assert.ok(!existsSync(join(folder, 'disks/d0.qcow2')), 'the merged base layer is removed');
    assert.equal(rep.leaks, 0);
    // D is the parent of the current state: the current overlay absorbs it.
    s.delete('D');
    exp.delete('D');
    checkVmFolder(folder, exp);
    assert.equal(s.tree().current, null);
    // Every remaining snapshot still restores with the right content.
    s.restore('C');
    exp.set('current', exp.get('C')!);
    checkVmFolder(folder, exp);
    assert.equal(readDisk(join(folder, readVmFile(join(folder, 'vm.json')).machine.disks[0].path!)).length, DISK_SIZE);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('delete checks free space first and changes nothing when it is short', () => {
  const root = tmp();
  const folder = join(root, 'vm');
  try {
    makeVm(folder);
    const s = new VmSnapshots(folder);
    const model = new Uint8Array(DISK_SIZE);
    writeCurrent(folder, model, 1);
    s.take('one');
    writeCurrent(folder, model, 2);
    const vmBefore = readFileSync(join(folder, 'vm.json'), 'utf8');
    s.freeBytes = () => 1024;
    assert.throws(() => s.delete('one'), /needs about \d+ MiB of free space.*\d+ MiB are free/);
    assert.equal(readFileSync(join(folder, 'vm.json'), 'utf8'), vmBefore);
    assert.ok(!existsSync(join(folder, JOURNAL_FILE)));
    checkVmFolder(folder, new Map([['current', model]]));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('rename and describe; names and bad keys', () => {
  const root = tmp();
  const folder = join(root, 'vm');
  try {
    makeVm(folder);
    const s = new VmSnapshots(folder);
    const a = s.take('first');
    s.rename('first', 'renamed');
    s.describe(a.uuid, 'a description\nwith two lines');
    const n = s.tree().get(a.uuid)!;
    assert.equal(n.name, 'renamed');
    assert.equal(n.description, 'a description\nwith two lines');
    assert.throws(() => s.rename('nope', 'x'), /no snapshot named or with uuid 'nope'/);
    assert.throws(() => s.rename(a.uuid, '  '), /needs a name/);
    s.take('renamed');
    assert.throws(() => s.restore('renamed'), /2 snapshots are named 'renamed'/);
    assert.equal(s.view()[0].children[0].isCurrent, true);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('full and linked clones from a snapshot and from the current state', async () => {
  const root = tmp();
  const folder = join(root, 'vm');
  try {
    makeVm(folder);
    const s = new VmSnapshots(folder);
    const model = new Uint8Array(DISK_SIZE);
    writeCurrent(folder, model, 1);
    s.take('one');
    const atOne = model.slice();
    writeCurrent(folder, model, 2);
    const full = s.clone('one', 'Full clone');
    assert.equal(full, join(root, 'Full clone'));
    checkVmFolder(full, new Map([['current', atOne]]));
    const fullVm = readVmFile(join(full, 'vm.json'));
    assert.equal(fullVm.name, 'Full clone');
    assert.match(fullVm.machine.disks[0].path!, /^disks\//);
    const linked = s.clone('one', 'Linked clone', { linked: true });
    checkVmFolder(linked, new Map([['current', atOne]]));
    // A snapshot with a linked clone cannot be deleted (the clone reads through its layer).
    assert.throws(() => s.delete('one'), /linked clones/);
    const cur = await s.cloneInBackground(null, 'From current');
    checkVmFolder(cur, new Map([['current', model]]));
    // A linked clone of the current state takes a snapshot to back onto.
    const lc = s.clone(null, 'Linked current', { linked: true });
    checkVmFolder(lc, new Map([['current', model]]));
    assert.ok(s.tree().nodes.some((n) => n.name === 'Linked base for Linked current'));
    // The clone is independent: writing it leaves the source alone.
    const cm = model.slice();
    writeCurrent(lc, cm, 9);
    checkVmFolder(
      folder,
      new Map([
        ['current', model],
        ['one', atOne],
      ]),
    );
    // Once the linked clone is gone, its snapshot can be deleted.
    rmSync(linked, { recursive: true, force: true });
    s.delete('one');
    checkVmFolder(folder, new Map([['current', model]]));
    const names = readdirSync(root).sort();
    assert.deepEqual(names, ['From current', 'Full clone', 'Linked current', 'vm']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('snapshot of a saved VM keeps its state; restoring it makes the VM saved again', () => {
  const root = tmp();
  const folder = join(root, 'vm');
  try {
    makeVm(folder);
    const vmFile = join(folder, 'vm.json');
    const vm = JSON.parse(readFileSync(vmFile, 'utf8'));
    vm.lastState = 'saved';
    writeFileSync(vmFile, JSON.stringify(vm));
    writeFileSync(join(folder, SAVED_STATE), 'state-at-one');
    const s = new VmSnapshots(folder);
    const one = s.take('one');
    isTrue(one.live);
    assert.equal(readFileSync(join(folder, one.stateFile!), 'utf8'), 'state-at-one');
    // Discard the saved state, take an offline snapshot, then restore the live one.
    rmSync(join(folder, SAVED_STATE));
    const vm2 = readVmFile(vmFile);
    writeFileSync(vmFile, JSON.stringify({ ...vm2, lastState: 'stopped' }));
    const two = s.take('two');
    assert.equal(two.live, false);
    s.restore('one');
    assert.equal(readVmFile(vmFile).lastState, 'saved');
    assert.equal(readFileSync(join(folder, SAVED_STATE), 'utf8'), 'state-at-one');
    s.restore('two');
    assert.equal(readVmFile(vmFile).lastState, 'stopped');
    assert.ok(!existsSync(join(folder, SAVED_STATE)));
    s.delete('one');
    assert.ok(!existsSync(join(folder, one.stateFile!)), 'the state file goes with the snapshot');
    checkVmFolder(folder, new Map());
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/**
 * Every step of every operation, interrupted by an exception (the in-process twin of the kill -9
 * test): the next open rolls back or finishes, and nothing complete before is lost.
 */
test('an operation interrupted at any step is rolled back or finished on the next open', () => {
  const root = tmp();
  try {
    const ops: { name: string; run: (s: VmSnapshots) => void; steps: number }[] = [
      {
        name: 'take',
        run: (s) => void s.take('new', { writeState: (p) => writeFileSync(p, 'live'), thumbnail: new Uint8Array([137, 80]) }),
        steps: 4,
      },
      { name: 'restore', run: (s) => void s.restore('one'), steps: 4 },
      { name: 'delete', run: (s) => s.delete('one'), steps: 4 },
      { name: 'delete-mid', run: (s) => s.delete('two'), steps: 4 },
      { name: 'clone', run: (s) => void s.clone('two', 'clone'), steps: 4 },
      { name: 'clone-linked', run: (s) => void s.clone('one', 'lclone', { linked: true }), steps: 4 },
    ];
    let cases = 0;
    for (const op of ops) {
      for (let stopAt = 1; stopAt <= op.steps + 1; stopAt++) {
        const dir = join(root, `${op.name}-${stopAt}`);
        const folder = join(dir, 'vm');
        makeVm(folder);
        const setup = new VmSnapshots(folder);
        const model = new Uint8Array(DISK_SIZE);
        const exp = new Map<string, Uint8Array>();
        writeCurrent(folder, model, 1);
        setup.take('one');
        exp.set('one', model.slice());
        writeCurrent(folder, model, 2);
        setup.take('two');
        exp.set('two', model.slice());
        writeCurrent(folder, model, 3);
        const s = new VmSnapshots(folder);
        let n = 0;
        s.step = () => {
          if (++n === stopAt) throw new Error('simulated crash');
        };
        let finished = true;
        try {
          op.run(s);
        } catch (e) {
          if ((e as Error).message !== 'simulated crash') throw e;
          finished = false;
        }
        const after = new VmSnapshots(folder);
        after.recover();
        const tree = after.tree();
        // Snapshots complete before stay byte-exact, unless this operation deleted them.
        for (const [name, content] of exp) {
          if (tree.nodes.some((x) => x.name === name)) checkVmFolder(folder, new Map([[name, content]]));
          else assert.ok(op.name.startsWith('delete'), `${op.name}@${stopAt}: ${name} vanished`);
        }
        checkVmFolder(folder, new Map());
        if (op.name === 'restore' && tree.current === tree.find('one').uuid) checkVmFolder(folder, new Map([['current', exp.get('one')!]]));
        else if (op.name === 'restore') checkVmFolder(folder, new Map([['current', model]]));
        if (op.name.startsWith('delete') || op.name === 'take') checkVmFolder(folder, new Map([['current', model]]));
        assert.ok(!existsSync(join(folder, JOURNAL_FILE)));
        assert.deepEqual(
          readdirSync(dir).filter((f) => f.startsWith('.')),
          [],
          'no temporary clone folder left',
        );
        cases++;
        if (finished) break;
      }
    }
    assert.ok(cases >= 20, `${cases} interrupted cases`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('delete in the background: yields to the event loop with progress, refuses a second operation, same result', async () => {
  const root = tmp();
  const folder = join(root, 'vm');
  try {
    const size = 32 * 1024 * 1024;
    makeVm(folder, 1, size);
    const s = new VmSnapshots(folder);
    const model = new Uint8Array(size);
    writeCurrent(folder, model, 1, 0, 40);
    s.take('A');
    const atA = model.slice();
    writeCurrent(folder, model, 2, 0, 40);
    s.take('B');
    const atB = model.slice();
    writeCurrent(folder, model, 3);
    const phases: string[] = [];
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    const done = s.deleteInBackground('A', (phase, d, t) => phases.push(`${phase} ${d}/${t}`));
    // While it merges: reading the tree works, another operation is refused.
    await new Promise((r) => setImmediate(r));
    const other = new VmSnapshots(folder);
    assert.equal(other.tree().nodes.length, 2);
    assert.throws(() => other.take('C'), /another snapshot operation is running/);
    await done;
    clearInterval(ticker);
    assert.ok(ticks > 0, 'the event loop ran during the merge');
    assert.ok(
      phases.some((p) => p.startsWith('merging layer 1 of 1')),
      phases.join(', '),
    );
    assert.equal(phases[phases.length - 1], 'done 1/1');
    checkVmFolder(
      folder,
      new Map([
        ['B', atB],
        ['current', model],
      ]),
    );
    assert.ok(atA.length === size);
    assert.ok(!existsSync(join(folder, 'disks/d0.qcow2')));
    s.take('C');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a stale lock of a dead process is taken over; a damaged journal is reported, and the VM still reads', () => {
  const root = tmp();
  const folder = join(root, 'vm');
  try {
    makeVm(folder);
    const s = new VmSnapshots(folder);
    // A lock left by a process that no longer exists.
    writeFileSync(join(folder, '.snapshot.lock'), '999999999');
    s.take('one');
    assert.ok(!existsSync(join(folder, '.snapshot.lock')));
    // A lock held by a live process (this test's parent) is respected.
    writeFileSync(join(folder, '.snapshot.lock'), String(process.ppid));
    assert.throws(() => s.take('two'), /another snapshot operation is running \(process \d+\)/);
    assert.equal(s.tree().nodes.length, 1, 'the tree still reads meanwhile');
    rmSync(join(folder, '.snapshot.lock'));
    writeFileSync(join(folder, JOURNAL_FILE), '{"op": "take", "sn');
    assert.throws(() => s.take('two'), /snapshot-journal\.json: the operation journal is unreadable/);
    assert.equal(readVmFile(join(folder, 'vm.json')).snapshots.length, 1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("recovery removes temporaries of dead writers but not a live process's write in progress", () => {
  const root = tmp();
  const folder = join(root, 'vm');
  try {
    makeVm(folder);
    const snaps = join(folder, 'snapshots');
    // A guest process saving its state right now (this process stands in for it) ...
    const live = `.saved.state.${process.pid}.0a1b2c3d.tmp`;
    // ... and what a killed writer left (PID 2^22 + 1 is above Linux's pid_max default, so dead).
    const dead = `.saved.state.${4194305}.deadbeef.tmp`;
    const unnamed = '.vm.json.tmp';
    for (const n of [live, dead]) writeFileSync(join(snaps, n), 'x');
    writeFileSync(join(folder, unnamed), 'x');
    new VmSnapshots(folder).recover();
    const left = [...readdirSync(snaps), ...readdirSync(folder)];
    assert.ok(left.includes(live), 'the write in progress is kept');
    assert.ok(!left.includes(dead), 'the dead writer\'s file is removed');
    assert.ok(!left.includes(unnamed), 'a temporary without a PID is removed');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
