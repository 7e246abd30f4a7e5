import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeHypervisor } from '../../../src-main/hypervisor/node-host';
import { JsonPrefsStore } from '../../../src-main/hypervisor/prefs';
import { VmLibrary } from '../../../src-main/hypervisor/library';

test('settings change, media detach, remove and delete of VMs that are off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-edit-'));
  const prefs = new JsonPrefsStore(join(dir, 'cfg'));
  const hv = createNodeHypervisor({ libraryRoot: join(dir, 'lib'), prefs, withDemo: false });
  try {
    const iso = join(dir, 'a.iso');
    const b = Buffer.alloc(0x9000);
    b.write('\x01CD001', 0x8000, 'latin1');
    writeFileSync(iso, b);
    const vm = await hv.createVm({
      name: 'Edit me',
      osType: 'linux',
      memoryMiB: 64,
      cpus: 1,
      vramMiB: 8,
      disk: { kind: 'none' },
      isoPath: iso,
    });
    const s = hv.updateVm(vm.id, { name: 'Edited', memoryMiB: 128, cpus: 2, vramMiB: 16, osType: 'bsd' });
    assert.deepEqual([s.name, s.memoryMiB, s.requestedCpus, s.vramMiB, s.osType], ['Edited', 128, 2, 16, 'bsd']);
    assert.equal(JSON.parse(readFileSync(join(vm.folder, 'vm.json'), 'utf8')).machine.memoryMiB, 128);
    assert.throws(() => hv.updateVm(vm.id, { memoryMiB: 0 }), /memoryMiB/);
    assert.throws(() => hv.detachMedia(vm.id, 3), /no medium number 4/);
    assert.deepEqual(hv.detachMedia(vm.id, 0).media, []);
    assert.ok(existsSync(iso), 'detaching never deletes the image');

    // a folder in the library root can only be deleted
    assert.throws(() => hv.removeVm(vm.id, false), /can only be deleted/);
    hv.removeVm(vm.id, true);
    assert.ok(!existsSync(vm.folder));
    assert.deepEqual(hv.list(), []);

    // an added folder can be forgotten, its files kept
    const other = await new VmLibrary(join(dir, 'elsewhere'), prefs, () => {}).create({
      name: 'Outside',
      osType: 'other',
      memoryMiB: 4,
      cpus: 1,
      vramMiB: 1,
      disk: { kind: 'none' },
    });
    const added = hv.addExisting(other.folder);
    assert.equal(added.external, true);
    hv.removeVm(added.id, false);
    assert.ok(existsSync(join(other.folder, 'vm.json')));
    assert.deepEqual(hv.list(), []);
    assert.deepEqual(prefs.get('extraVmFolders'), []);
  } finally {
    hv.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
