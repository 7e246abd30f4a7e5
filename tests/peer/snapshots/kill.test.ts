/**
 * kill -9 at random moments of take, restore, delete (merge) and clone, run by a child process on
 * a VM folder with a real qcow2 snapshot tree (needs qemu-utils). After every kill the folder is
 * opened as the app would (recovery runs), and:
 *   - vm.json reads and the snapshot tree is valid;
 *   - every image it references passes `qemu-img check` (exit 0, or 3 = leaked clusters only);
 *   - every snapshot complete before the kill reads byte-exact what it held (unless the killed
 *     operation was deleting it and got far enough to commit), and so does the current state
 *     (or, for a restore that committed, the restored snapshot's content);
 *   - nothing is left over in snapshots/, and a clone folder exists whole or not at all.
 * BOXWOOD_SNAPSHOT_KILLS sets how many kills (default 60).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmSnapshots } from '../../../src-main/hypervisor/snapshots/vm-snapshots';
import { readVmFile } from '../../../src-main/hypervisor/vm-file';
import { checkVmFolder, makeVm, writeCurrent } from '../../unit/snapshots/vm-fixture';

const KILLS = Number(process.env.BOXWOOD_SNAPSHOT_KILLS ?? 60);
const SIZE = 8 * 1024 * 1024;
const WORKER = join(import.meta.dirname, 'kill-worker.ts');
const hasQemu = spawnSync('qemu-img', ['--version']).status === 0;

type Op = 'take' | 'restore' | 'delete' | 'clone';

/** Kill `killAfterMs` after the worker says `ready` (or, with `afterStep`, after it reports that step). */
function runWorker(
  args: string[],
  killAfterMs: number | null,
  afterStep = 'ready',
): Promise<{ killed: boolean; ms: number; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let readyAt = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!readyAt && out.includes('ready')) readyAt = Date.now();
      if (!timer && killAfterMs !== null && out.includes(afterStep)) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (_code, signal) => {
      if (timer) clearTimeout(timer);
      done({ killed: signal === 'SIGKILL', ms: readyAt ? Date.now() - readyAt : 0, stderr: signal ? '' : stderr });
    });
  });
}

test(
  `kill -9 during take/restore/delete/clone, ${KILLS} times: the VM folder always opens whole`,
  { skip: !hasQemu && 'qemu-img is not installed', timeout: 1_800_000 },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'boxwood-snapkill-'));
    const folder = join(root, 'vm');
    try {
      makeVm(folder, 1, SIZE);
      const model = new Uint8Array(SIZE);
      let gen = 1;
      writeCurrent(folder, model, gen++, 0, 100);
      // uuid -> content of the snapshot's disk
      const snaps = new Map<string, Uint8Array>();
      const est: Record<Op, number> = { take: 100, restore: 100, delete: 300, clone: 300 };
      const stats = {
        kills: 0,
        completed: 0,
        byOp: {} as Record<string, number>,
        recovered: {} as Record<string, number>,
        leaks: 0,
        images: 0,
      };
      let seed = 20261121;
      const rnd = (n: number) => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return (seed >>> 8) % n;
      };
      let cycle = 0;
      while (stats.kills < KILLS && cycle < KILLS * 4) {
        cycle++;
        const tree = new VmSnapshots(folder).tree();
        const ids = tree.nodes.map((n) => n.uuid);
        let op: Op;
        if (ids.length < 2) op = 'take';
        else if (ids.length > 5) op = rnd(2) ? 'delete' : 'clone';
        else op = (['take', 'restore', 'delete', 'clone'] as Op[])[rnd(4)];
        const target = ids[rnd(ids.length)];
        const cloneName = `clone${cycle}`;
        const linked = rnd(2) === 1;
        const args =
          op === 'take'
            ? [folder, 'take', `t${cycle}`]
            : op === 'clone'
              ? [folder, 'clone', target, cloneName, linked ? 'linked' : 'full']
              : [folder, op, target];
        const beforeDisk = readVmFile(join(folder, 'vm.json')).machine.disks[0].path;
        // One run in four completes: the tree grows and the op times are measured for the kills.
        const delay = rnd(4) === 0 ? null : rnd(Math.max(1, Math.round(est[op])));
        // Half of the killed deletes are aimed into the merge itself (right after its journal).
        const aimAtMerge = op === 'delete' && delay !== null && rnd(2) === 0;
        const r = await runWorker(
          args,
          aimAtMerge ? rnd(Math.max(1, Math.round(est.delete / 2))) : delay,
          aimAtMerge ? 'step delete:journal' : 'ready',
        );
        assert.equal(r.stderr, '', `worker ${args.join(' ')} failed`);
        if (r.killed) {
          stats.kills++;
          stats.byOp[op] = (stats.byOp[op] ?? 0) + 1;
        } else {
          stats.completed++;
          // A running average, so kills land across a typical run of the operation.
          est[op] = Math.round(est[op] * 0.6 + r.ms * 0.4);
        }
        // "Next open": recovery, then the invariants.
        const did = new VmSnapshots(folder).recover();
        if (did) {
          const kind = did.replace(/ of snapshot \S+/, '').replace(/ into .*? (finished|rolled back)$/, ' $1');
          stats.recovered[kind] = (stats.recovered[kind] ?? 0) + 1;
        }
        const after = new VmSnapshots(folder).tree();
        const vm = readVmFile(join(folder, 'vm.json'));
        if (op === 'take') {
          const n = after.nodes.find((x) => x.name === `t${cycle}`);
          if (n) snaps.set(n.uuid, model.slice());
        }
        if (op === 'restore' && vm.machine.disks[0].path !== beforeDisk) {
          assert.equal(after.current, target, 'a committed restore points the current state at the snapshot');
          model.set(snaps.get(target)!);
        }
        for (const id of [...snaps.keys()]) {
          if (!after.get(id)) {
            assert.ok(op === 'delete' && id === target, `snapshot ${id} vanished during ${op}`);
            snaps.delete(id);
          }
        }
        const expected = new Map<string, Uint8Array>([['current', model]]);
        for (const [id, content] of snaps) expected.set(id, content);
        const rep = checkVmFolder(folder, expected);
        stats.images += rep.images;
        stats.leaks += rep.leaks;
        if (op === 'clone') {
          const cf = join(root, cloneName);
          if (existsSync(cf)) {
            checkVmFolder(cf, new Map([['current', snaps.get(target)!]]));
            rmSync(cf, { recursive: true, force: true });
          }
          assert.deepEqual(
            readdirSync(root).filter((f) => f !== 'vm'),
            [],
            'no half-made clone folder',
          );
        }
        // Change the current state so that layers differ from one another.
        writeCurrent(folder, model, gen++, 0, 1 + rnd(30));
        if (cycle % 10 === 0) process.stderr.write(`cycle ${cycle}: ${JSON.stringify(stats)} est ${JSON.stringify(est)}\n`);
      }
      console.log(`snapshot kill test: ${JSON.stringify(stats)}; estimated op times ms ${JSON.stringify(est)}`);
      assert.ok(stats.kills >= KILLS, `only ${stats.kills} kills in ${cycle} cycles`);
      for (const o of ['take', 'restore', 'delete', 'clone']) assert.ok((stats.byOp[o] ?? 0) > 0, `no kill during ${o}`);
      assert.ok((stats.recovered['delete resumed and finished'] ?? 0) > 0, 'no interrupted merge was resumed');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);
