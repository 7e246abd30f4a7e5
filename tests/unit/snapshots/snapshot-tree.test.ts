import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SnapshotTree, SnapshotTreeError, treeView } from '../../../src-main/hypervisor/snapshots/snapshot-tree';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';
import type { VmFile } from '../../../src-main/hypervisor/vm-file';

function node(name: string, parent: string | null, uuid = randomUUID()) {
  return {
    uuid,
    name,
    description: '',
    createdAt: '2026-11-21T10:00:00.000Z',
    parent,
    live: false,
    machine: defaultMachineConfig({ memoryMiB: 16 }),
  };
}

function vm(snapshots: unknown[], currentSnapshot: unknown): VmFile {
  return { snapshots, currentSnapshot } as unknown as VmFile;
}

test('a valid tree: children, path, nested view with the current marker', () => {
  const a = node('a', null);
  const b = node('b', a.uuid);
  const c = node('c', a.uuid);
  const d = node('d', b.uuid);
  const t = SnapshotTree.of(vm([a, b, c, d], d.uuid));
  assert.deepEqual(
    t.children(a.uuid).map((n) => n.name),
    ['b', 'c'],
  );
  assert.deepEqual(
    t.pathTo(d.uuid).map((n) => n.name),
    ['a', 'b', 'd'],
  );
  const v = treeView(t);
  assert.equal(v.length, 1);
  assert.equal(v[0].children[0].children[0].isCurrent, true);
  assert.equal(t.find('c').uuid, c.uuid);
  assert.equal(t.find(b.uuid).name, 'b');
});

test('damaged trees are errors naming the fault, never a hang', () => {
  const a = node('a', null);
  const b = node('b', a.uuid);
  const loopA = node('x', null);
  const loopB = node('y', loopA.uuid);
  loopA.parent = loopB.uuid;
  const cases: [unknown[], unknown, RegExp][] = [
    [[a, { ...b, uuid: a.uuid }], a.uuid, /appears twice/],
    [[a, node('orphan', randomUUID())], a.uuid, /parent .* does not exist/],
    [[loopA, loopB], loopA.uuid, /form a loop/],
    [[a], randomUUID(), /currentSnapshot .* is not a snapshot/],
    [[{ ...a, name: '' }], a.uuid, /snapshots\[0\]\.name/],
    [[{ ...a, machine: { memoryMiB: 'lots' } }], a.uuid, /snapshots\[0\]\.machine/],
    [['not a node'], null, /snapshots\[0\]/],
  ];
  for (const [nodes, current, re] of cases) {
    assert.throws(
      () => SnapshotTree.of(vm(nodes, current), 'x/vm.json'),
      (e: unknown) => e instanceof SnapshotTreeError && re.test((e as Error).message) && (e as Error).message.startsWith('x/vm.json'),
      String(re),
    );
  }
  const self = node('self', null);
  self.parent = self.uuid;
  assert.throws(() => SnapshotTree.of(vm([self], self.uuid)), /loop/);
});
