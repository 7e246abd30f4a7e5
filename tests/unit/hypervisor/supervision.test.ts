import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeHypervisor } from '../../../src-main/hypervisor/node-host';
import { JsonPrefsStore } from '../../../src-main/hypervisor/prefs';
import { NodeGuestProcess } from '../../../src-main/hypervisor/guest-process';
import type { Hypervisor } from '../../../src-main/hypervisor/hypervisor';
import type { VmState } from '../../../src-main/hypervisor/lifecycle';

function waitFor(hv: Hypervisor, id: string, state: VmState, ms = 60_000): Promise<void> {
  return new Promise((ok, fail) => {
    const check = () => {
      if (hv.summary(id).state === state) {
        hv.off('changed', check);
        clearTimeout(t);
        ok();
      }
    };
    const t = setTimeout(() => {
      hv.off('changed', check);
      fail(new Error(`VM ${id} not ${state} in time (is ${hv.summary(id).state}: ${hv.summary(id).lastError})`));
    }, ms);
    hv.on('changed', check);
    check();
  });
}

test('one guest process per VM; a killed guest aborts only its VM, with its log kept', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-sup-'));
  const hv = createNodeHypervisor({ libraryRoot: join(dir, 'lib'), prefs: new JsonPrefsStore(join(dir, 'cfg')) });
  try {
    const demo = hv.list()[0];
    assert.ok(demo.ok);
    const other = await hv.createVm({
      name: 'Second',
      osType: 'other',
      memoryMiB: 4,
      cpus: 1,
      vramMiB: 1,
      disk: { kind: 'none' },
      floppyPath: join(demo.folder, 'disks', 'demo-floppy.img'),
    });
    hv.control(demo.id, 'start');
    hv.control(other.id, 'start');
    assert.throws(() => hv.control(demo.id, 'start'), /cannot start/);
    await waitFor(hv, demo.id, 'running');
    await waitFor(hv, other.id, 'running');
    const g1 = hv.guestOf(demo.id) as NodeGuestProcess;
    const g2 = hv.guestOf(other.id) as NodeGuestProcess;
    assert.ok(g1 && g2 && g1.pid !== g2.pid && g1.pid !== process.pid);

    hv.control(demo.id, 'pause');
    assert.equal(hv.summary(demo.id).state, 'paused');
    assert.throws(() => hv.control(demo.id, 'pause'), /cannot pause/);
    hv.control(demo.id, 'resume');
    assert.equal(hv.summary(demo.id).state, 'running');

    process.kill(g1.pid!, 'SIGKILL');
    await waitFor(hv, demo.id, 'aborted');
    const s = hv.summary(demo.id);
    assert.match(s.lastError ?? '', /SIGKILL/);
    assert.ok(s.logFile);
    const log = readFileSync(s.logFile!, 'utf8');
    assert.match(log, /guest process \d+ started/);
    assert.match(log, /VM aborted: .*SIGKILL/);
    assert.match(hv.readLog(demo.id), /VM aborted/);
    // persisted, so a restart of the app still shows it
    const vmJson = JSON.parse(readFileSync(join(s.folder, 'vm.json'), 'utf8'));
    assert.equal(vmJson.lastState, 'aborted');

    // the other VM did not notice
    assert.equal(hv.summary(other.id).state, 'running');
    assert.equal(g2.child.exitCode, null);

    assert.throws(() => hv.setLibraryPath(join(dir, 'lib2')), /stop every running VM/);
    hv.control(other.id, 'power-off');
    await waitFor(hv, other.id, 'stopped');
    assert.equal(hv.summary(other.id).lastError, null);

    // an aborted VM starts again
    hv.control(demo.id, 'start');
    await waitFor(hv, demo.id, 'running');
    assert.equal(hv.summary(demo.id).lastError, null);
    hv.control(demo.id, 'power-off');
    await waitFor(hv, demo.id, 'stopped');
    assert.throws(() => hv.control(demo.id, 'save-state'), /cannot save-state/);
    assert.throws(() => hv.control(demo.id, 'discard-state'), /cannot discard-state/);

    // with everything off, the library can move; the choice is remembered
    const info = hv.setLibraryPath(join(dir, 'lib2'));
    assert.equal(info.libraryPath, join(dir, 'lib2'));
    assert.deepEqual(hv.list(), []);
    assert.equal(new JsonPrefsStore(join(dir, 'cfg')).get('libraryPath'), join(dir, 'lib2'));
  } finally {
    hv.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
