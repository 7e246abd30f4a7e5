import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateCall, ApiValidationError, API_METHODS, wsRequestSchema } from '../../../src-main/api/schemas';

const id = '0123456789abcdef';
const snap = '0b5e7f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const spec = { name: 'A', osType: 'linux', memoryMiB: 64, cpus: 1, vramMiB: 8, disk: { kind: 'new', sizeGiB: 2 } };

/** For every method: one good call, and wrong calls that must be refused. */
const cases: Record<string, { good: unknown[][]; bad: unknown[][] }> = {
  hostInfo: { good: [[]], bad: [['x']] },
  listVms: { good: [[]], bad: [[1]] },
  createVm: {
    good: [
      [spec],
      [{ ...spec, disk: { kind: 'existing', path: '/tmp/x.img' }, isoPath: '/tmp/a.iso' }],
      [{ ...spec, disk: { kind: 'none' }, isoPath: null }],
      [{ ...spec, kernel: { kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd', cmdline: 'console=ttyS0' } }],
    ],
    bad: [
      [],
      [{ ...spec, name: '' }],
      [{ ...spec, name: '   ' }],
      [{ ...spec, memoryMiB: 0 }],
      [{ ...spec, memoryMiB: 1.5 }],
      [{ ...spec, memoryMiB: 100000 }],
      [{ ...spec, cpus: 0 }],
      [{ ...spec, disk: { kind: 'new', sizeGiB: -1 } }],
      [{ ...spec, disk: { kind: 'existing', path: 'relative.img' } }],
      [{ ...spec, disk: { kind: 'floppy' } }],
      [{ ...spec, isoPath: '/tmp/a\0.iso' }],
      [{ ...spec, extra: true }],
      [{ ...spec, kernel: { kernelPath: 'vmlinuz' } }],
      [{ ...spec, kernel: { kernelPath: '/boot/vmlinuz', cmdline: 5 } }],
      [spec, spec],
      ['not an object'],
    ],
  },
  addExistingVm: { good: [['/home/me/VMs/x']], bad: [[], ['x'], [42], ['']] },
  control: {
    good: [
      [id, 'start'],
      [id, 'pause'],
      [id, 'resume'],
      [id, 'reset'],
      [id, 'power-button'],
      [id, 'power-off'],
      [id, 'save-state'],
      [id, 'discard-state'],
    ],
    bad: [[id], [id, 'explode'], ['../../etc', 'start'], ['0123456789ABCDEF', 'start'], [id, 'start', 'extra']],
  },
  attachMedia: { good: [[id, '/tmp/a.iso']], bad: [[id], [id, 'a.iso'], ['zz', '/tmp/a.iso']] },
  probeMedia: { good: [['/tmp/a.iso']], bad: [[], ['a.iso'], [{}]] },
  readLog: { good: [[id]], bad: [[], ['nope'], [id, id]] },
  setLibraryPath: { good: [['/home/me/VMs']], bad: [[], ['VMs'], ['/a', '/b']] },
  updateVm: {
    good: [
      [id, {}],
      [id, { name: 'New name', memoryMiB: 64 }],
      [id, { osType: 'linux', cpus: 2, vramMiB: 8 }],
    ],
    bad: [[id], [id, { name: '' }], [id, { memoryMiB: 0 }], [id, { disks: [] }], ['x', {}]],
  },
  detachMedia: {
    good: [
      [id, 0],
      [id, 7],
    ],
    bad: [[id], [id, -1], [id, 8], [id, 1.5], [id, '0']],
  },
  removeVm: {
    good: [
      [id, true],
      [id, false],
    ],
    bad: [[id], [id, 'yes'], ['x', true]],
  },
  listSnapshots: { good: [[id]], bad: [[], ['x'], [id, id]] },
  takeSnapshot: {
    good: [
      [id, 'Before update', '', false],
      [id, 'Live', 'with a description', true],
    ],
    bad: [[id], [id, '', '', false], [id, 'x', '', 'yes'], [id, 'x', 5, false], ['x', 'n', '', false]],
  },
  restoreSnapshot: { good: [[id, snap]], bad: [[id], [id, 'name'], [id, snap, snap]] },
  deleteSnapshot: { good: [[id, snap]], bad: [[id], [id, ''], ['x', snap]] },
  editSnapshot: {
    good: [
      [id, snap, {}],
      [id, snap, { name: 'New', description: 'text' }],
    ],
    bad: [[id, snap], [id, snap, { name: '' }], [id, snap, { other: 1 }], [id, 'x', {}]],
  },
  cloneVm: {
    good: [
      [id, snap, 'Clone', false],
      [id, null, 'Clone', true],
    ],
    bad: [[id, snap, '', false], [id, 'x', 'Clone', false], [id, snap, 'Clone'], [id, snap, 'Clone', 'yes']],
  },
};

test('every API method has validation cases here', () => {
  assert.deepEqual(Object.keys(cases).sort(), [...API_METHODS].sort());
});

for (const [method, c] of Object.entries(cases)) {
  test(`${method}: well-formed calls pass, wrong ones are refused`, () => {
    for (const params of c.good) assert.doesNotThrow(() => validateCall(method, params), JSON.stringify(params));
    for (const params of c.bad) assert.throws(() => validateCall(method, params), ApiValidationError, JSON.stringify(params));
    assert.throws(() => validateCall(method, 'not an array'), ApiValidationError);
  });
}

test('unknown and inherited method names are refused', () => {
  for (const m of ['deleteEverything', 'constructor', '__proto__', 'toString', 42, null]) {
    assert.throws(() => validateCall(m, []), /unknown API method/);
  }
});

test('validation trims the name and names the faulty argument', () => {
  assert.equal((validateCall('createVm', [{ ...spec, name: '  Trim me ' }]).params[0] as { name: string }).name, 'Trim me');
  assert.throws(() => validateCall('createVm', [{ ...spec, memoryMiB: -1 }]), /createVm: argument 0\.memoryMiB/);
});

test('WebSocket requests have a fixed shape', () => {
  assert.ok(wsRequestSchema.safeParse({ id: 1, method: 'listVms', params: [] }).success);
  for (const bad of [
    {},
    { id: -1, method: 'x', params: [] },
    { id: 1, method: 'x' },
    { id: 1, method: 'x', params: [], more: 1 },
    { id: '1', method: 'x', params: [] },
  ]) {
    assert.ok(!wsRequestSchema.safeParse(bad).success, JSON.stringify(bad));
  }
});
