import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeHypervisor } from '../../../src-main/hypervisor/node-host';
import { JsonPrefsStore } from '../../../src-main/hypervisor/prefs';
import { NodeGuestProcess } from '../../../src-main/hypervisor/guest-process';
import { savedStatePath, type Hypervisor } from '../../../src-main/hypervisor/hypervisor';
import type { VmState } from '../../../src-main/hypervisor/lifecycle';
import { decodeStream, encodeStream, frameForPipe, PipeDeframer, StreamType } from '../../../src-emulator/guest/protocol';

function waitFor(hv: Hypervisor, id: string, state: VmState, ms = 60_000): Promise<void> {
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

/** Watches a running VM's COM1 through its stream pipe. */
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

async function until(what: string, cond: () => boolean, ms = 60_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('save state, then start continues where the machine was, and the state is used once', { timeout: 150_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-save-'));
  const hv = createNodeHypervisor({ libraryRoot: join(dir, 'lib'), prefs: new JsonPrefsStore(join(dir, 'cfg')) });
  try {
    const demo = hv.list()[0];
    assert.ok(demo.ok);
    hv.control(demo.id, 'start');
    await waitFor(hv, demo.id, 'running');
    const a = serialOf(hv, demo.id);
    await until('boot banner', () => a.out.text.includes('hello from COM1'));
    a.type('before save\r');
    await until('echo', () => a.out.text.includes('before save'));

    hv.control(demo.id, 'save-state');
    assert.equal(hv.summary(demo.id).state, 'saving');
    await waitFor(hv, demo.id, 'saved');
    const file = savedStatePath(demo.folder);
    assert.ok(existsSync(file));
    assert.equal(JSON.parse(readFileSync(join(demo.folder, 'vm.json'), 'utf8')).lastState, 'saved');

    hv.control(demo.id, 'start');
    await waitFor(hv, demo.id, 'running');
    const b = serialOf(hv, demo.id);
    b.type('after restore\r');
    await until('echo after restore', () => b.out.text.includes('after restore'));
    // a restored machine does not boot again: no new banner
    assert.doesNotMatch(b.out.text, /hello from COM1/);
    assert.match(hv.readLog(demo.id), /machine running from its saved state/);
    assert.ok(!existsSync(file), 'a used saved state is removed');

    // saving, then discarding, ends stopped
    hv.control(demo.id, 'save-state');
    await waitFor(hv, demo.id, 'saved');
    hv.control(demo.id, 'discard-state');
    assert.equal(hv.summary(demo.id).state, 'stopped');
    assert.ok(!existsSync(file));
  } finally {
    hv.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
