import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseServeArgs } from '../../../src-main/cli/serve';
import { parseSizeGiB } from '../../../src-main/cli/vm';

test('serve: options are parsed and bad ones named', () => {
  assert.deepEqual(parseServeArgs([]), { port: 0, build: true });
  assert.deepEqual(parseServeArgs(['--port', '8080', '--no-build', '--library', '/x']), { port: 8080, build: false, library: '/x' });
  assert.match(String(parseServeArgs(['--port', 'http'])), /--port needs a port number/);
  assert.match(String(parseServeArgs(['--port', '70000'])), /--port needs a port number/);
  assert.match(String(parseServeArgs(['--bogus'])), /unknown option --bogus/);
});

test('vm create: disk sizes', () => {
  assert.equal(parseSizeGiB('8G'), 8);
  assert.equal(parseSizeGiB('512M'), 0.5);
  assert.equal(parseSizeGiB('1.5GiB'), 1.5);
  assert.equal(parseSizeGiB('2048'), 2);
  assert.equal(parseSizeGiB('1T'), 1024);
  for (const bad of ['', 'G', '0G', 'disk.qcow2', '-1G', '8X']) assert.equal(parseSizeGiB(bad), null, bad);
});

test('boxwood vm: list, create, refuse bad input, start with the serial console on the terminal', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-cli-'));
  const env = { ...process.env, BOXWOOD_CONFIG_DIR: join(dir, 'cfg') };
  const lib = join(dir, 'lib');
  const vm = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/boxwood.mjs', 'vm', ...args, '--library', lib], { env, encoding: 'utf8' });
  try {
    const list = vm('list');
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^[0-9a-f]{16} {2}stopped {3}Boxwood Demo/m);
    const created = vm('create', 'CLI VM', '--os', 'freedos', '--no-disk');
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /created CLI VM \([0-9a-f]{16}\)/);
    const iso = join(dir, 'x.iso');
    const isoBytes = Buffer.alloc(0x9000);
    isoBytes.write('\x01CD001', 0x8000, 'latin1');
    writeFileSync(iso, isoBytes);
    const c2 = vm('create', '--name', 'Sized', '--disk', '16M', '--cdrom', iso, '--memory', '64');
    assert.equal(c2.status, 0, c2.stderr);
    const info = JSON.parse(vm('info', 'Sized').stdout);
    assert.deepEqual(
      info.media.map((m: { kind: string }) => m.kind),
      ['disk', 'cdrom'],
    );
    assert.equal(info.memoryMiB, 64);
    assert.match(vm('create', 'K', '--kernel', join(dir, 'no-such-kernel'), '--no-disk').stderr, /no-such-kernel: no such file/);
    assert.match(vm('create', 'K', '--initrd', iso).stderr, /need --kernel/);
    const bad = vm('create', 'Bad', '--memory', '0', '--no-disk');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /memoryMiB/);
    assert.equal(vm('frobnicate').status, 2);
    assert.match(vm('start', 'Nope').stderr, /no VM named or with id 'Nope'/);

    const child = spawn(process.execPath, ['bin/boxwood.mjs', 'vm', 'start', 'Boxwood Demo', '--library', lib], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const until = async (what: RegExp) => {
      const end = Date.now() + 60_000;
      while (!what.test(out)) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`no ${what} in ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until(/hello from COM1/);
    child.stdin.write('from the terminal\r');
    await until(/> from the terminal\r\n/);
    const code = new Promise<number | null>((ok) => child.on('exit', (c) => ok(c)));
    child.kill('SIGINT');
    assert.equal(await code, 0);
    assert.match(vm('log', 'Boxwood Demo').stdout, /power off/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
