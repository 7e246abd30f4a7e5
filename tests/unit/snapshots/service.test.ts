/**
 * Snapshots through the hypervisor with a real guest process (the built-in demo guest on a floppy
 * image): a live snapshot of the running VM, restore of it (the VM becomes saved and resumes the
 * guest without a new boot), offline snapshots, clone into the library, delete; and the CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeHypervisor } from '../../../src-main/hypervisor/node-host';
import { JsonPrefsStore } from '../../../src-main/hypervisor/prefs';
import { NodeGuestProcess } from '../../../src-main/hypervisor/guest-process';
import type { Hypervisor } from '../../../src-main/hypervisor/hypervisor';
import type { VmState } from '../../../src-main/hypervisor/lifecycle';
import { snapshotServiceOf } from '../../../src-main/hypervisor/snapshots/snapshot-service';
import { decodeStream, encodeStream, frameForPipe, PipeDeframer, StreamType } from '../../../src-emulator/guest/protocol';
import { spawnSync } from 'node:child_process';
import { openImage } from '../../../src-emulator/storage/open';

function waitFor(hv: Hypervisor, id: string, state: VmState, ms = 90_000): Promise<void> {
  return new Promise((ok, fail) => {
    const check = () => {
      if (hv.summary(id).state === state) {
        hv.off('changed', check);
        clearTimeout(t);
        ok();
      }
    };
    const t = setTimeout(() => fail(new Error(`not ${state} in time (is ${hv.summary(id).state}: ${hv.summary(id).lastError})`)), ms);
    hv.on('changed', check);
    check();
  });
}

function serialOf(hv: Hypervisor, id: string) {
  const guest = hv.guestOf(id) as NodeGuestProcess;
  const out = { text: '' };
  const d = new PipeDeframer((b) => {
    const m = decodeStream(b);
    if (m.type === StreamType.Serial) out.text += new TextDecoder().decode(m.bytes);
  });
  guest.stream.on('data', (c: Buffer) => d.push(new Uint8Array(c)));
  const type = (s: string) =>
    guest.stream.write(frameForPipe(encodeStream({ type: StreamType.SerialIn, port: 0, bytes: new TextEncoder().encode(s) })));
  return { out, type };
}

async function until(what: string, cond: () => boolean, ms = 90_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('live snapshot of a running guest, restore resumes it; offline snapshot, clone, delete', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-snapsvc-'));
  const hv = createNodeHypervisor({ libraryRoot: join(dir, 'lib'), prefs: new JsonPrefsStore(join(dir, 'cfg')) });
  const svc = snapshotServiceOf(hv);
  try {
    const demo = hv.list()[0];
    assert.ok(demo.ok);
    await assert.rejects(svc.take(demo.id, 'x', '', true), /no machine state for a live snapshot/);
    hv.control(demo.id, 'start');
    await waitFor(hv, demo.id, 'running');
    const a = serialOf(hv, demo.id);
    await until('boot banner', () => a.out.text.includes('hello from COM1'));
    a.type('before snapshot\r');
    await until('echo', () => a.out.text.includes('before snapshot'));
    await assert.rejects(svc.take(demo.id, 'not live'), /take a live snapshot/);
    const r = await svc.take(demo.id, 'live one', 'taken while running', true);
    assert.equal(hv.summary(demo.id).state, 'running', 'the VM runs on after a live snapshot');
    assert.ok(r.pausedMs !== null && r.pausedMs > 0);
    const snap = r.listing.snapshots[0];
    assert.equal(snap.name, 'live one');
    assert.equal(snap.live, true);
    assert.equal(snap.isCurrent, true);
    assert.match(snap.thumbnail ?? '', /^data:image\/png;base64,/);
    // It runs on from the state: no new boot banner, and it still echoes.
    const b = serialOf(hv, demo.id);
    b.type('after snapshot\r');
    await until('echo after snapshot', () => b.out.text.includes('after snapshot'));
    assert.doesNotMatch(b.out.text, /hello from COM1/);
    assert.throws(() => svc.restore(demo.id, 'live one'), /needs the VM off/);
    hv.control(demo.id, 'power-off');
    await waitFor(hv, demo.id, 'stopped');
    // Offline snapshot, then restore the live one: the VM is saved and resumes the guest.
    await svc.take(demo.id, 'offline');
    const l = svc.restore(demo.id, 'live one');
    assert.equal(hv.summary(demo.id).state, 'saved');
    assert.equal(l.current, snap.uuid);
    hv.control(demo.id, 'start');
    await waitFor(hv, demo.id, 'running');
    // The log is written through a stream: wait for the line rather than read it at once.
    await until('log line', () => /machine running from its saved state/.test(hv.readLog(demo.id)));
    const c = serialOf(hv, demo.id);
    c.type('after restore\r');
    await until('echo after restore', () => c.out.text.includes('after restore'));
    assert.doesNotMatch(c.out.text, /hello from COM1/);
    hv.control(demo.id, 'power-off');
    await waitFor(hv, demo.id, 'stopped');
    // Clone the offline snapshot (full) into the library.
    const clone = await svc.clone(demo.id, 'offline', 'Demo clone', false);
    assert.equal(clone.name, 'Demo clone');
    assert.ok(hv.list().some((v) => v.id === clone.id));
    // Delete both snapshots: the VM still boots.
    await svc.delete(demo.id, 'offline');
    await svc.delete(demo.id, 'live one');
    assert.deepEqual(svc.list(demo.id).snapshots, []);
    hv.control(demo.id, 'start');
    await waitFor(hv, demo.id, 'running');
    hv.control(demo.id, 'power-off');
    await waitFor(hv, demo.id, 'stopped');
  } finally {
    hv.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: snapshot take/list/restore/delete and clone', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-snapcli-'));
  const env = { ...process.env, BOXWOOD_CONFIG_DIR: join(dir, 'cfg') };
  const lib = join(dir, 'lib');
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '../../../bin/boxwood.mjs'), 'vm', '--library', lib, ...args], {
      encoding: 'utf8',
      env,
      timeout: 120_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  try {
    let r = cli('create', 'cli vm', '--disk', '64M', '--memory', '16');
    assert.equal(r.code, 0, r.err);
    r = cli('snapshot', 'cli vm', 'take', 'first', '--description', 'the first one');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /snapshot 'first' taken/);
    r = cli('snapshot', 'cli vm', 'take', 'second');
    assert.equal(r.code, 0, r.err);
    r = cli('snapshot', 'cli vm', 'list');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^- first .*the first one\n  \* second /m);
    r = cli('snapshot', 'cli vm', 'restore', 'first');
    assert.equal(r.code, 0, r.err);
    // Changes since the snapshot are not dropped without being told to.
    const vmj = JSON.parse(readFileSync(join(lib, 'cli vm', 'vm.json'), 'utf8'));
    const img = openImage(join(lib, 'cli vm', vmj.machine.disks[0].path), {});
    img.write(0, new Uint8Array(512).fill(7));
    img.close();
    r = cli('snapshot', 'cli vm', 'restore', 'second');
    assert.equal(r.code, 1);
    assert.match(r.err, /has changes since its last snapshot.*--discard-changes/);
    r = cli('snapshot', 'cli vm', 'restore', 'second', '--discard-changes');
    assert.equal(r.code, 0, r.err);
    r = cli('snapshot', 'cli vm', 'restore', 'first');
    assert.equal(r.code, 0, r.err);
    r = cli('snapshot', 'cli vm', 'list');
    assert.match(r.out, /^\* first/m);
    r = cli('clone', 'cli vm', '--snapshot', 'second', '--name', 'cli clone', '--linked');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /cloned 'cli vm' into 'cli clone'.*\(linked\)/);
    r = cli('snapshot', 'cli vm', 'delete', 'second');
    assert.equal(r.code, 1);
    assert.match(r.err, /linked clones/);
    r = cli('snapshot', 'cli vm', 'delete', 'first');
    assert.equal(r.code, 0, r.err);
    r = cli('snapshot', 'cli vm', 'take', 'x', '--live');
    assert.equal(r.code, 1);
    assert.match(r.err, /no machine state/);
    r = cli('savestate', 'cli vm');
    assert.equal(r.code, 1);
    assert.match(r.err, /not running/);
    r = cli('list');
    assert.match(r.out, /cli clone/);
    assert.ok(existsSync(join(lib, 'cli clone', 'vm.json')));
    assert.ok(JSON.parse(readFileSync(join(lib, 'cli vm', 'vm.json'), 'utf8')).snapshots.length === 1);
    // The source of a linked clone cannot be deleted while the clone exists.
    const hv = createNodeHypervisor({ libraryRoot: lib, prefs: new JsonPrefsStore(join(dir, 'cfg2')), withDemo: false });
    const src = hv.list().find((v) => v.ok && v.name === 'cli vm')!;
    assert.throws(() => hv.removeVm(src.id, true), /linked clones read through this VM's snapshots/);
    const cl = hv.list().find((v) => v.ok && v.name === 'cli clone')!;
    hv.removeVm(cl.id, true);
    hv.removeVm(src.id, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Input sent before the resumed machine is up is dropped: type until the guest echoes it. */
async function typeUntilEchoed(
  run: { type(s: string): void; waitFor(t: string, ms: number): Promise<string> },
  text: string,
): Promise<void> {
  for (let i = 0; i < 30; i++) {
    run.type(`${text}\r`);
    try {
      await run.waitFor(text, 5000);
      return;
    } catch {
      /* not up yet */
    }
  }
  throw new Error(`'${text}' was never echoed`);
}

test('CLI: savestate, live snapshot and stop of a VM running in another `boxwood vm start`', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-snapcli2-'));
  const lib = join(dir, 'lib');
  const saved = process.env.BOXWOOD_CONFIG_DIR;
  process.env.BOXWOOD_CONFIG_DIR = join(dir, 'cfg');
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '../../../bin/boxwood.mjs'), 'vm', '--library', lib, ...args], {
      encoding: 'utf8',
      timeout: 150_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const { startCli } = await import('../../support/run-cli');
  let run = startCli(['vm', '--library', lib, 'start', 'Boxwood Demo', '--headless']);
  try {
    await run.waitFor('hello from COM1', 150_000);
    run.type('first part\r');
    await run.waitFor('first part', 60_000);
    // A live snapshot of the VM running over there: it saves its state and that process ends.
    let r = cli('snapshot', 'Boxwood Demo', 'take', 'while running', '--live');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /with the machine state/);
    assert.equal(await run.exit(), 0);
    r = cli('list');
    assert.match(r.out, /saved\s+Boxwood Demo/);
    // Start resumes it (no new banner); savestate from here saves it again.
    run = startCli(['vm', '--library', lib, 'start', 'Boxwood Demo', '--headless']);
    await typeUntilEchoed(run, 'second part');
    assert.doesNotMatch(run.stdout(), /hello from COM1/);
    r = cli('savestate', 'Boxwood Demo');
    assert.equal(r.code, 0, r.err);
    assert.equal(await run.exit(), 0);
    run = startCli(['vm', '--library', lib, 'start', 'Boxwood Demo', '--headless']);
    await typeUntilEchoed(run, 'third part');
    r = cli('stop', 'Boxwood Demo');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /is stopped/);
    await run.exit();
    r = cli('snapshot', 'Boxwood Demo', 'list');
    assert.match(r.out, /\* while running .*live/);
  } finally {
    run.kill();
    if (saved === undefined) delete process.env.BOXWOOD_CONFIG_DIR;
    else process.env.BOXWOOD_CONFIG_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
