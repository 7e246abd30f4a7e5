/**
 * The integration test: a real Linux guest (Debian's 686 kernel + busybox initramfs, a
 * qcow2 hard disk) writes to its disk from inside, a live snapshot is taken, the guest changes
 * more, the snapshot is restored, and the guest itself shows that the disk and its running shell
 * are back exactly; then snapshots in the middle of a three-level tree are deleted and every
 * remaining one still restores with the right content.
 *
 * The guest boots once (`boxwood.ata` makes /init load Debian's ata_piix and sd_mod modules, so
 * /dev/sda exists); every later start resumes a snapshot's saved state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeHypervisor } from '../../../src-main/hypervisor/node-host';
import { JsonPrefsStore } from '../../../src-main/hypervisor/prefs';
import { NodeGuestProcess } from '../../../src-main/hypervisor/guest-process';
import type { Hypervisor } from '../../../src-main/hypervisor/hypervisor';
import { snapshotServiceOf } from '../../../src-main/hypervisor/snapshots/snapshot-service';
import { decodeStream, encodeStream, frameForPipe, PipeDeframer, StreamType } from '../../../src-emulator/guest/protocol';
import { requireGuest } from '../../support/guests';
import { BOOT_MS } from '../../support/linux';

function shell(hv: Hypervisor, id: string) {
  const guest = hv.guestOf(id) as NodeGuestProcess;
  const out = { text: '' };
  const d = new PipeDeframer((b) => {
    const m = decodeStream(b);
    if (m.type === StreamType.Serial && m.port === 0) out.text += new TextDecoder().decode(m.bytes);
  });
  guest.stream.on('data', (c: Buffer) => d.push(new Uint8Array(c)));
  const run = async (cmd: string, until: RegExp, ms = 120_000): Promise<string> => {
    const at = out.text.length;
    guest.stream.write(frameForPipe(encodeStream({ type: StreamType.SerialIn, port: 0, bytes: new TextEncoder().encode(`${cmd}\n`) })));
    const end = Date.now() + ms;
    while (!until.test(out.text.slice(at))) {
      if (Date.now() > end) throw new Error(`no ${until} after '${cmd}': ${out.text.slice(at).slice(-400)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return out.text.slice(at);
  };
  return { out, run };
}

async function until(hv: Hypervisor, id: string, state: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (hv.summary(id).state !== state) {
    if (Date.now() > end) throw new Error(`VM not ${state} (is ${hv.summary(id).state}: ${hv.summary(id).lastError})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test(
  'live snapshot of a Linux guest: disk and running shell come back exactly; deletes in a three-level tree',
  { timeout: 4 * BOOT_MS },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-snaplinux-'));
    const hv = createNodeHypervisor({ libraryRoot: join(dir, 'lib'), prefs: new JsonPrefsStore(join(dir, 'cfg')), withDemo: false });
    const svc = snapshotServiceOf(hv);
    try {
      const vm = await hv.createVm({
        name: 'linux snap',
        osType: 'linux',
        memoryMiB: 256,
        cpus: 1,
        vramMiB: 8,
        disk: { kind: 'new', sizeGiB: 0.0625 },
        kernel: {
          kernelPath: requireGuest('vmlinuz-686'),
          initrdPath: requireGuest('initramfs.cpio.gz'),
          cmdline: 'console=ttyS0 cryptomgr.notests boxwood.ata',
        },
      });
      hv.control(vm.id, 'start');
      await until(hv, vm.id, 'running', BOOT_MS);
      let sh = shell(hv, vm.id);
      await sh.run('', /boxwood# /, BOOT_MS);
      const put = (tag: string, sector: number) =>
        sh.run(`echo ${tag} | dd of=/dev/sda bs=512 seek=${sector} conv=notrunc,fsync 2>/dev/null; echo put-$?`, /put-0/);
      const get = (sector: number) =>
        // The terminal echoes the typed command, so the end marker is spelled so that only its output matches.
        sh.run(`dd if=/dev/sda bs=512 skip=${sector} count=1 iflag=direct 2>/dev/null | head -c 16; echo; echo "g"ot-it`, /got-it/);
      await put('ALPHA-ONE', 100);
      await sh.run('MARK=first; echo set-$MARK', /set-first/);
      await svc.take(vm.id, 'S1', '', true);
      sh = shell(hv, vm.id);
      await put('BRAVO-TWO', 100);
      await put('BRAVO-TWO', 200);
      await sh.run('MARK=second; echo set-$MARK', /set-second/);
      hv.control(vm.id, 'power-off');
      await until(hv, vm.id, 'stopped', 60_000);
      svc.restore(vm.id, 'S1');
      assert.equal(hv.summary(vm.id).state, 'saved');
      hv.control(vm.id, 'start');
      await until(hv, vm.id, 'running', 120_000);
      sh = shell(hv, vm.id);
      // The shell is the one from the snapshot (its variable), the disk is the snapshot's.
      assert.match(await sh.run('echo mark-$MARK', /mark-\w+/), /mark-first/);
      assert.match(await get(100), /ALPHA-ONE/);
      assert.doesNotMatch(await get(200), /BRAVO/);
      // Three levels: S1 -> S2 -> S3, each with its own content at sector 300.
      await put('LEVEL-TWO', 300);
      await svc.take(vm.id, 'S2', '', true);
      sh = shell(hv, vm.id);
      await put('LEVEL-THREE', 300);
      await svc.take(vm.id, 'S3', '', true);
      sh = shell(hv, vm.id);
      hv.control(vm.id, 'power-off');
      await until(hv, vm.id, 'stopped', 60_000);
      await svc.delete(vm.id, 'S2');
      for (const [snap, want] of [
        ['S3', /LEVEL-THREE/],
        ['S1', /^(?!.*LEVEL)/s],
      ] as const) {
        svc.restore(vm.id, snap);
        hv.control(vm.id, 'start');
        await until(hv, vm.id, 'running', 120_000);
        sh = shell(hv, vm.id);
        assert.match(await get(300), want, snap);
        assert.match(await get(100), /ALPHA-ONE/, snap);
        hv.control(vm.id, 'power-off');
        await until(hv, vm.id, 'stopped', 60_000);
      }
      await svc.delete(vm.id, 'S1');
      svc.restore(vm.id, 'S3');
      hv.control(vm.id, 'start');
      await until(hv, vm.id, 'running', 120_000);
      sh = shell(hv, vm.id);
      assert.match(await get(300), /LEVEL-THREE/);
      hv.control(vm.id, 'power-off');
    } finally {
      hv.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
