import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeGuestSpawner } from '../../../src-main/hypervisor/guest-process';
import { DEMO_IMAGE } from '../../../src-main/hypervisor/node-host';
import { defaultMachineConfig } from '../../../src-emulator/machine/config';
import {
  decodeStream,
  encodeStream,
  frameForPipe,
  PipeDeframer,
  StreamType,
  type GuestToHost,
  type StreamMessage,
} from '../../../src-emulator/guest/protocol';

/** The guest process on its own, with the real machine: the demo guest over the real protocol. */
test('a guest process boots the demo guest and speaks the stream protocol', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-guest-'));
  const logFile = join(dir, 'guest.log');
  const log = createWriteStream(logFile);
  const guest = new NodeGuestSpawner().spawn({ vmId: '0123456789abcdef', displayName: 'test', log });
  const control: GuestToHost[] = [];
  const stream: StreamMessage[] = [];
  let serial = '';
  let screen = '';
  guest.on('message', (m) => control.push(m as GuestToHost));
  const deframer = new PipeDeframer((bytes) => {
    const m = decodeStream(bytes);
    stream.push(m);
    if (m.type === StreamType.Serial) serial += new TextDecoder().decode(m.bytes);
    if (m.type === StreamType.Text) screen = m.text;
  });
  guest.stream.on('data', (c: Buffer) => deframer.push(new Uint8Array(c)));
  const send = (m: StreamMessage) => guest.stream.write(frameForPipe(encodeStream(m)));
  const until = async (what: string, cond: () => boolean, ms = 60_000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; log:\n${readFileSync(logFile, 'utf8')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const exited = new Promise<number | null>((ok) => guest.on('exit', (code) => ok(code)));
  try {
    await until('ready', () => control.some((m) => m.type === 'ready'));
    guest.send({
      type: 'boot',
      vmId: '0123456789abcdef',
      vmDir: dir,
      config: defaultMachineConfig({ memoryMiB: 4, bootOrder: ['floppy'], disks: [{ kind: 'floppy', path: DEMO_IMAGE, readOnly: true }] }),
    });
    await until('booted', () => control.some((m) => m.type === 'booted'));
    send({ type: StreamType.Refresh });
    await until('the banner', () => screen.includes('Boxwood demo guest'));
    await until('serial hello', () => serial.includes('hello from COM1'));
    // a port the machine does not have: dropped, the VM lives on
    send({ type: StreamType.SerialIn, port: 3, bytes: new Uint8Array([65]) });
    send({ type: StreamType.SerialIn, port: 0, bytes: new TextEncoder().encode('ok\r') });
    await until('serial echo', () => /> ok\r\n/.test(serial));
    for (const code of ['KeyX', 'KeyY']) {
      send({ type: StreamType.Key, code, down: true });
      send({ type: StreamType.Key, code, down: false });
    }
    await until('keys on the screen', () => screen.includes('> xy'));
    send({ type: StreamType.Key, code: 'F2', down: true });
    send({ type: StreamType.Key, code: 'F2', down: false });
    await until('graphics frame', () => stream.some((m) => m.type === StreamType.Frame && m.width === 320 && m.height === 200));
    assert.ok(stream.some((m) => m.type === StreamType.Status && m.status.mode === 'graphics'));
    guest.send({ type: 'power-off' });
    assert.equal(await exited, 0);
    assert.ok(control.some((m) => m.type === 'poweroff'));
    assert.ok(!control.some((m) => m.type === 'error'), JSON.stringify(control));
  } finally {
    guest.kill();
    log.end();
    rmSync(dir, { recursive: true, force: true });
  }
});
