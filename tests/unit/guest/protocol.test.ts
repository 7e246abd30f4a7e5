import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeStream,
  encodeStream,
  frameForPipe,
  PipeDeframer,
  StreamDecodeError,
  StreamType,
  type StreamMessage,
} from '../../../src-emulator/guest/protocol';
import { ctrlAltDelScancodes, scancodesFor } from '../../../src-emulator/guest/keymap';
import { DisplayStreamer } from '../../../src-emulator/guest/display-stream';

test('every stream message survives encode/decode', () => {
  const msgs: StreamMessage[] = [
    { type: StreamType.Serial, port: 0, bytes: new Uint8Array([104, 105, 0, 255]) },
    { type: StreamType.Text, cols: 80, rows: 2, cursorCol: 3, cursorRow: 1, text: 'Boxwood ▒ demo\nline two' },
    { type: StreamType.Frame, width: 320, height: 200, x: 64, y: 16, w: 2, h: 1, rgba: new Uint8Array([1, 2, 3, 255, 4, 5, 6, 255]) },
    { type: StreamType.Status, status: { mode: 'graphics', paused: true, width: 320, height: 200 } },
    { type: StreamType.Key, code: 'KeyA', down: true },
    { type: StreamType.Scancodes, bytes: new Uint8Array([0xe0, 0x48]) },
    { type: StreamType.Mouse, dx: -300, dy: 5, buttons: 5, wheel: -1 },
    { type: StreamType.SerialIn, port: 1, bytes: new Uint8Array([13]) },
    { type: StreamType.Refresh },
    { type: StreamType.CtrlAltDel },
  ];
  for (const m of msgs) assert.deepEqual(decodeStream(encodeStream(m)), m);
});

test('malformed stream messages throw StreamDecodeError, never anything else', () => {
  const bad = [
    new Uint8Array([]),
    new Uint8Array([99]),
    new Uint8Array([StreamType.Frame, 1, 0]),
    encodeStream({ type: StreamType.Frame, width: 4, height: 4, x: 0, y: 0, w: 1, h: 1, rgba: new Uint8Array(4) }).subarray(0, 15),
    new Uint8Array([StreamType.Frame, 4, 0, 4, 0, 3, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), // rect past the edge
    new Uint8Array([StreamType.Key, 123, 34]),
    new Uint8Array([StreamType.Key, ...new TextEncoder().encode('{"code":5,"down":true}')]),
    new Uint8Array([StreamType.Mouse, 1]),
  ];
  for (const b of bad) assert.throws(() => decodeStream(b), StreamDecodeError, String([...b]));
});

test('the pipe framing splits and joins messages at any chunk boundary', () => {
  const a = encodeStream({ type: StreamType.Text, cols: 3, rows: 1, cursorCol: -1, cursorRow: -1, text: 'abc' });
  const b = encodeStream({ type: StreamType.Refresh });
  const wire = new Uint8Array([...frameForPipe(a), ...frameForPipe(b), ...frameForPipe(a)]);
  for (let step = 1; step <= wire.length; step++) {
    const got: Uint8Array[] = [];
    const d = new PipeDeframer((m) => got.push(m));
    for (let i = 0; i < wire.length; i += step) d.push(wire.slice(i, i + step));
    assert.deepEqual(
      got.map((m) => [...m]),
      [[...a], [...b], [...a]],
      `step ${step}`,
    );
  }
  const d = new PipeDeframer(() => {});
  assert.throws(() => d.push(new Uint8Array([0xff, 0xff, 0xff, 0x7f])), StreamDecodeError);
});

test('keys map to PS/2 set 1 scancodes, with E0 prefixes for extended keys', () => {
  assert.deepEqual(scancodesFor('KeyA', true), [0x1e]);
  assert.deepEqual(scancodesFor('KeyA', false), [0x9e]);
  assert.deepEqual(scancodesFor('Enter', true), [0x1c]);
  assert.deepEqual(scancodesFor('F2', true), [0x3c]);
  assert.deepEqual(scancodesFor('ArrowUp', true), [0xe0, 0x48]);
  assert.deepEqual(scancodesFor('ArrowUp', false), [0xe0, 0xc8]);
  assert.deepEqual(scancodesFor('ControlRight', true), [0xe0, 0x1d]);
  assert.deepEqual(scancodesFor('NumpadEnter', false), [0xe0, 0x9c]);
  assert.deepEqual(scancodesFor('PrintScreen', true), [0xe0, 0x2a, 0xe0, 0x37]);
  assert.deepEqual(scancodesFor('Pause', true), [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
  assert.deepEqual(scancodesFor('Pause', false), []);
  assert.equal(scancodesFor('Fn', true), null);
  assert.deepEqual(ctrlAltDelScancodes(), [0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d]);
});

test('the display streamer sends text on change and only the dirty rectangles of graphics', () => {
  const s = new DisplayStreamer();
  let text: string | null = 'hello\nworld';
  const rgba = new Uint8ClampedArray(320 * 200 * 4);
  const display = { getTextScreen: () => text, renderRgba: () => ({ width: 320, height: 200, data: rgba }) };
  // text mode: the text, and the pixels the VGA device renders for it (13 bands of 16 rows)
  const first = s.poll(display, false);
  assert.deepEqual(
    first.map((m) => m.type),
    [StreamType.Status, StreamType.Text, ...Array(13).fill(StreamType.Frame)],
  );
  assert.deepEqual(s.poll(display, false), []);
  text = 'hello\nthere';
  assert.deepEqual(
    s.poll(display, false).map((m) => m.type),
    [StreamType.Text],
  );
  text = null;
  // same pixels in graphics mode: only the mode changes
  assert.deepEqual(
    s.poll(display, false).map((m) => m.type),
    [StreamType.Status],
  );
  assert.deepEqual(s.poll(display, false), []);
  s.invalidate();
  assert.deepEqual(
    s.poll(display, false).map((m) => m.type),
    [StreamType.Status, ...Array(13).fill(StreamType.Frame)],
  );
  rgba[(100 * 320 + 200) * 4] = 7; // one pixel in the band of rows 96..111
  const diff = s.poll(display, false);
  assert.equal(diff.length, 1);
  const f = diff[0] as Extract<StreamMessage, { type: StreamType.Frame }>;
  assert.deepEqual([f.x, f.y, f.w, f.h], [192, 96, 64, 16]);
  assert.equal(f.rgba[((100 - 96) * 64 + 8) * 4], 7);
  assert.deepEqual(
    s.poll(null, false).map((m) => m.type),
    [StreamType.Status],
  );
});

test('random bytes decode to a message or a StreamDecodeError, nothing else', () => {
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
  for (let i = 0; i < 5000; i++) {
    const b = new Uint8Array(rand(40));
    for (let k = 0; k < b.length; k++) b[k] = rand(256);
    if (b.length && rand(2)) b[0] = [1, 2, 3, 4, 16, 17, 18, 19, 20, 21][rand(10)];
    try {
      decodeStream(b);
    } catch (err) {
      assert.ok(err instanceof StreamDecodeError, String(err));
    }
  }
});
