import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createNodeHypervisor } from '../../../src-main/hypervisor/node-host';
import { JsonPrefsStore } from '../../../src-main/hypervisor/prefs';
import { WebTwin } from '../../../src-main/web/server';
import type { Hypervisor } from '../../../src-main/hypervisor/hypervisor';

let dir: string;
let hv: Hypervisor;
let twin: WebTwin;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'boxwood-twin-'));
  const ui = join(dir, 'ui');
  mkdirSync(ui);
  writeFileSync(join(ui, 'index.html'), '<!doctype html><title>Boxwood</title>');
  writeFileSync(join(dir, 'secret.txt'), 'outside the bundle');
  hv = createNodeHypervisor({ libraryRoot: join(dir, 'lib'), prefs: new JsonPrefsStore(join(dir, 'cfg')) });
  twin = new WebTwin({ hv, rendererDir: ui });
  await twin.start();
});

after(async () => {
  hv.shutdown();
  await twin.close();
  rmSync(dir, { recursive: true, force: true });
});

function get(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: twin.port, path, method, headers }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

function ws(path: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket } | { status: number }> {
  return new Promise((ok) => {
    const s = new WebSocket(`ws://127.0.0.1:${twin.port}${path}`, { headers });
    s.on('open', () => ok({ ws: s }));
    s.on('unexpected-response', (_req, res) => ok({ status: res.statusCode ?? 0 }));
    s.on('error', () => ok({ status: -1 }));
  });
}

test('the server listens on 127.0.0.1 only and prints a URL with a long random token', () => {
  assert.match(twin.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{40,}$/);
  assert.notEqual(new WebTwin({ hv, rendererDir: dir }).token, twin.token);
});

test('requests without the right token get 403', async () => {
  assert.equal((await get('/')).status, 403);
  assert.equal((await get('/?token=wrong')).status, 403);
  assert.equal((await get(`/?token=${twin.token}x`)).status, 403);
  assert.equal((await get('/', { Cookie: `boxwood_token_${twin.port}=nope` })).status, 403);
  // another twin's cookie (cookies ignore ports) is not ours
  assert.equal((await get('/', { Cookie: `boxwood_token_1=${twin.token}` })).status, 403);
  assert.equal((await get('/api/upload?name=a.iso', {}, 'POST', Buffer.from('x'))).status, 403);
});

test('the token in the URL opens the UI and becomes a strict HttpOnly cookie', async () => {
  const r = await get(`/?token=${twin.token}`);
  assert.equal(r.status, 200);
  assert.match(r.body, /Boxwood/);
  assert.match(String(r.headers['set-cookie']), new RegExp(`boxwood_token_${twin.port}=.+HttpOnly; SameSite=Strict`));
  assert.match(String(r.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
  assert.equal((await get('/index.html', { Cookie: `other=1; boxwood_token_${twin.port}=${twin.token}` })).status, 200);
  assert.equal((await get('/', { Authorization: `Bearer ${twin.token}` })).status, 200);
});

test('a foreign Host header is refused even with the token (DNS rebinding)', async () => {
  assert.equal((await get(`/?token=${twin.token}`, { Host: `evil.example:${twin.port}` })).status, 403);
});

test('files outside the bundle are not served', async () => {
  const r = await get(`/..%2fsecret.txt?token=${twin.token}`);
  assert.equal(r.status, 404);
  assert.doesNotMatch(r.body, /outside the bundle/);
});

test('WebSockets need the token and our Origin', async () => {
  assert.deepEqual(await ws('/api'), { status: 403 });
  assert.deepEqual(await ws('/api?token=bad'), { status: 403 });
  assert.deepEqual(await ws(`/api?token=${twin.token}`, { Origin: 'http://evil.example' }), { status: 403 });
  const ok = await ws(`/api?token=${twin.token}`, { Origin: `http://127.0.0.1:${twin.port}` });
  assert.ok('ws' in ok);
  const s = ok.ws;
  const reply = new Promise<{ id: number; result?: unknown; error?: string }[]>((done) => {
    const got: { id: number; result?: unknown; error?: string }[] = [];
    s.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if ('id' in m) got.push(m);
      if (got.length === 2) done(got);
    });
  });
  s.send(JSON.stringify({ id: 1, method: 'listVms', params: [] }));
  s.send(JSON.stringify({ id: 2, method: 'control', params: ['zz', 'start'] }));
  const [a, b] = (await reply).sort((x, y) => x.id - y.id);
  assert.ok(Array.isArray(a.result) && (a.result as { name: string }[])[0].name === 'Boxwood Demo');
  assert.match(b.error ?? '', /control: argument 0: not a VM id/);
  s.close();
});

test('a stream socket of a VM that is not running is closed with a reason', async () => {
  const vm = hv.list()[0];
  const r = await ws(`/stream/${vm.id}?token=${twin.token}`);
  assert.ok('ws' in r);
  const code = await new Promise<number>((done) => r.ws.on('close', (c) => done(c)));
  assert.equal(code, 4404);
});

test('an uploaded non-image is refused with a message and not kept', async () => {
  const r = await get(`/api/upload?name=readme.iso&token=${twin.token}`, {}, 'POST', Buffer.from('hello, I am text'));
  assert.equal(r.status, 415);
  assert.match(JSON.parse(r.body).error, /readme\.iso is not a disk image or ISO/);
  const iso = Buffer.alloc(0x9000);
  iso.write('\x01CD001\x01', 0x8000, 'latin1');
  const ok = await get(`/api/upload?name=tiny.iso&token=${twin.token}`, {}, 'POST', iso);
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).kind, 'cdrom');
});
