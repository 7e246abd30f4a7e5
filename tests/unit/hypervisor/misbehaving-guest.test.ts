import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hypervisor } from '../../../src-main/hypervisor/hypervisor';
import { NodeGuestSpawner } from '../../../src-main/hypervisor/guest-process';
import { JsonPrefsStore } from '../../../src-main/hypervisor/prefs';
import type { VmState } from '../../../src-main/hypervisor/lifecycle';

/** Real processes that misbehave the way a broken guest could: they are what supervision is for. */
const GUESTS = {
  // boots, then ignores power off (and SIGTERM): the hypervisor must end it after the grace period
  stubborn: `process.on('SIGTERM', () => {}); process.on('message', (m) => { if (m.type === 'boot') process.send({ type: 'booted', restored: false }); }); process.send({ type: 'ready', pid: process.pid }); setInterval(() => {}, 1000);`,
  // dies while booting without a word
  crasher: `process.on('message', () => process.exit(3)); process.send({ type: 'ready', pid: process.pid });`,
  // sends garbage, then boots
  noisy: `process.send('garbage'); process.send({ type: 'nonsense' }); process.send(null); process.on('message', (m) => { if (m.type === 'boot') process.send({ type: 'booted', restored: false }); if (m.type === 'power-off') process.exit(0); }); process.send({ type: 'ready', pid: process.pid }); setInterval(() => {}, 1000);`,
};

/** A hypervisor on a temporary library whose guest processes run `source` instead of the emulator. */
function hypervisorWithGuest(prefix: string, source: string): { dir: string; hv: Hypervisor } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const entry = join(dir, 'guest.cjs');
  writeFileSync(entry, source);
  const hv = new Hypervisor({
    libraryRoot: join(dir, 'lib'),
    prefs: new JsonPrefsStore(join(dir, 'cfg')),
    spawner: new NodeGuestSpawner(entry),
    createImage: () => {},
    shell: 'web',
  });
  hv.init();
  return { dir, hv };
}

function waitFor(hv: Hypervisor, id: string, state: VmState, ms = 30_000): Promise<void> {
  return new Promise((ok, fail) => {
    const check = () => {
      if (hv.summary(id).state === state) {
        hv.off('changed', check);
        clearTimeout(t);
        ok();
      }
    };
    const t = setTimeout(() => fail(new Error(`not ${state} in time (is ${hv.summary(id).state})`)), ms);
    hv.on('changed', check);
    check();
  });
}

for (const [kind, source] of Object.entries(GUESTS)) {
  test(`supervision of a ${kind} guest process`, { timeout: 60_000 }, async () => {
    const { dir, hv } = hypervisorWithGuest(`boxwood-${kind}-`, source);
    try {
      const vm = await hv.createVm({ name: kind, osType: 'other', memoryMiB: 4, cpus: 1, vramMiB: 1, disk: { kind: 'none' } });
      hv.control(vm.id, 'start');
      if (kind === 'crasher') {
        await waitFor(hv, vm.id, 'aborted');
        assert.match(hv.summary(vm.id).lastError ?? '', /exited with code 3 unexpectedly/);
        return;
      }
      await waitFor(hv, vm.id, 'running');
      hv.control(vm.id, 'power-off');
      await waitFor(hv, vm.id, 'stopped');
      assert.equal(hv.summary(vm.id).lastError, null);
      if (kind === 'stubborn') assert.match(hv.readLog(vm.id), /after power off/);
      if (kind === 'noisy') assert.match(hv.readLog(vm.id), /ignored an unknown message/);
    } finally {
      hv.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/**
 * A save whose 'saved' message is lost (the process went before its IPC queue drained): the state
 * file, written atomically before the exit, is what counts. Without the file, it is an abort.
 */
const SAVERS = {
  // writes the state file, then exits 0 without a word
  mute: `process.on('message', (m) => { if (m.type === 'boot') process.send({ type: 'booted', restored: false }); if (m.type === 'save') { require('fs').writeFileSync(m.path, 'state'); process.exit(0); } }); process.send({ type: 'ready', pid: process.pid }); setInterval(() => {}, 1000);`,
  // exits 0 on save without writing anything
  empty: `process.on('message', (m) => { if (m.type === 'boot') process.send({ type: 'booted', restored: false }); if (m.type === 'save') process.exit(0); }); process.send({ type: 'ready', pid: process.pid }); setInterval(() => {}, 1000);`,
};

for (const [kind, source] of Object.entries(SAVERS)) {
  test(`a ${kind} save: ${kind === 'mute' ? 'saved, from the state file' : 'aborted, as nothing was saved'}`, { timeout: 60_000 }, async () => {
    const { dir, hv } = hypervisorWithGuest(`boxwood-save-${kind}-`, source);
    try {
      const vm = await hv.createVm({ name: kind, osType: 'other', memoryMiB: 4, cpus: 1, vramMiB: 1, disk: { kind: 'none' } });
      hv.control(vm.id, 'start');
      await waitFor(hv, vm.id, 'running');
      hv.control(vm.id, 'save-state');
      if (kind === 'mute') {
        await waitFor(hv, vm.id, 'saved');
        assert.match(hv.readLog(vm.id), /state file present although the guest did not report it/);
      } else {
        await waitFor(hv, vm.id, 'aborted');
        assert.match(hv.summary(vm.id).lastError ?? '', /saving the machine state failed/);
      }
    } finally {
      hv.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
