import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppUrl, isTrustedSender } from '../../../src-main/electron/sender-check';

test("IPC is accepted only from our window's main frame on boxwood://app", () => {
  const ok = { fromOurWindow: true, fromMainFrame: true, frameUrl: 'boxwood://app/index.html' };
  assert.equal(isTrustedSender(ok), true);
  assert.equal(isTrustedSender({ ...ok, fromOurWindow: false }), false);
  assert.equal(isTrustedSender({ ...ok, fromMainFrame: false }), false);
  for (const url of [
    'https://evil.example/',
    'file:///work/out/renderer/index.html',
    'boxwood://other/index.html',
    'boxwood://app.evil/x',
    'about:blank',
    'not a url',
    undefined,
  ]) {
    assert.equal(isTrustedSender({ ...ok, frameUrl: url }), false, String(url));
  }
});

test('app URLs are recognised without relying on URL.origin (opaque for custom schemes)', () => {
  assert.equal(isAppUrl('boxwood://app/index.html'), true);
  assert.equal(isAppUrl('boxwood://app/assets/x.js?y#z'), true);
  assert.equal(isAppUrl('https://app/index.html'), false);
  assert.equal(isAppUrl('boxwood://evil/index.html'), false);
});
