import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { encodePng, crc32 } from '../../../src-emulator/display/png';
import { blitRgba, cropRgba, scaleDown, screenshotPng } from '../../../src-emulator/display/framebuffer';
import { PhysicalMemory } from '../../../src-emulator/machine/memory';
import { IoBus } from '../../../src-emulator/machine/io-bus';
import { VirtualClock } from '../../../src-emulator/machine/clock';
import { Vga } from '../../../src-emulator/devices/vga';

/**
 * Decodes a PNG with an independent decoder: Python's zlib plus the PNG filter algebra written
 * out in Python (no imaging library needed). Returns width, height and RGBA bytes.
 */
const PY_DECODER = String.raw`
import sys, zlib, struct, base64
b = sys.stdin.buffer.read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'signature'
pos = 8; idat = b''; w = h = ct = None
while pos < len(b):
    n, = struct.unpack('>I', b[pos:pos+4]); t = b[pos+4:pos+8]; body = b[pos+8:pos+8+n]
    crc, = struct.unpack('>I', b[pos+8+n:pos+12+n])
    assert zlib.crc32(t + body) & 0xffffffff == crc, 'crc of ' + t.decode()
    if t == b'IHDR': w, h, depth, ct = struct.unpack('>IIBB', body[:10]); assert depth == 8
    elif t == b'IDAT': idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
bpp = 4 if ct == 6 else 3
stride = w * bpp
out = bytearray(); prev = bytearray(stride)
for y in range(h):
    f = raw[y*(stride+1)]; line = bytearray(raw[y*(stride+1)+1:(y+1)*(stride+1)])
    for i in range(stride):
        a = line[i-bpp] if i >= bpp else 0; c = prev[i-bpp] if i >= bpp else 0; up = prev[i]
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + up) & 255
        elif f == 3: line[i] = (line[i] + (a + up) // 2) & 255
        elif f == 4:
            p = a + up - c; pa, pb, pc = abs(p-a), abs(p-up), abs(p-c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else (up if pb <= pc else c))) & 255
    for x in range(w):
        px = line[x*bpp:x*bpp+bpp]
        out += px if bpp == 4 else px + b'\xff'
    prev = line
sys.stdout.write('%d %d %s' % (w, h, base64.b64encode(bytes(out)).decode()))
`;

function pythonDecode(png: Uint8Array): { width: number; height: number; data: Uint8Array } {
  const r = spawnSync('python3', ['-c', PY_DECODER], { input: png, maxBuffer: 64 << 20, timeout: 60_000 });
  if (r.error) throw new Error(`python3 is needed to check PNG output: ${r.error.message}`);
  assert.equal(r.status, 0, r.stderr.toString());
  const [w, h, b64] = r.stdout.toString().split(' ');
  return { width: Number(w), height: Number(h), data: new Uint8Array(Buffer.from(b64, 'base64')) };
}

function randomImage(w: number, h: number, opaque: boolean) {
  const data = new Uint8ClampedArray(w * h * 4);
  let x = 12345;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    // Smooth areas and noise, so every filter type gets picked somewhere.
    data[i] = i % 4 === 3 && opaque ? 255 : (i >> 9) & 1 ? x >>> 24 : (i >> 4) & 0xff;
  }
  return { width: w, height: h, data };
}

test('crc32 matches the IEND chunk constant', () => {
  assert.equal(crc32(new TextEncoder().encode('IEND')), 0xae426082);
});

test('RGBA PNG decodes to the same pixels (independent Python decoder)', () => {
  const img = randomImage(37, 23, false);
  const png = encodePng(img);
  const dec = pythonDecode(png);
  assert.equal(dec.width, 37);
  assert.equal(dec.height, 23);
  assert.deepEqual(dec.data, new Uint8Array(img.data));
});

test('opaque images are written as RGB and decode identically', () => {
  const img = randomImage(64, 40, true);
  const png = encodePng(img);
  assert.equal(png[25], 2, 'colour type RGB');
  assert.deepEqual(pythonDecode(png).data, new Uint8Array(img.data));
  assert.throws(() => encodePng({ width: 0, height: 1, data: new Uint8Array(0) }), /bad image/);
});

test('screenshot of a VGA text screen decodes to the rendered frame', () => {
  const mem = new PhysicalMemory(2 << 20);
  const vga = new Vga({ io: new IoBus(), mem, clock: new VirtualClock(), vramMiB: 1 });
  const s = 'Boxwood screenshot';
  for (let i = 0; i < s.length; i++) mem.write16(0xb8000 + 160 * 3 + i * 2, 0x2f00 | s.charCodeAt(i));
  const dec = pythonDecode(screenshotPng(vga));
  const frame = vga.renderRgba();
  assert.equal(dec.width, 720);
  assert.equal(dec.height, 400);
  assert.deepEqual(dec.data, new Uint8Array(frame.data));
});

test('crop, blit and scale-down helpers', () => {
  const img = randomImage(50, 30, true);
  const block = cropRgba(img, { x: 45, y: 25, width: 10, height: 10 });
  assert.equal(block.width, 5);
  assert.equal(block.height, 5);
  assert.deepEqual([...block.data.subarray(0, 4)], [...img.data.subarray((25 * 50 + 45) * 4, (25 * 50 + 45) * 4 + 4)]);
  const target = { width: 50, height: 30, data: new Uint8ClampedArray(50 * 30 * 4) };
  blitRgba(target, cropRgba(img, { x: 0, y: 0, width: 50, height: 30 }), 0, 0);
  assert.deepEqual(target.data, img.data);
  const t = scaleDown({ width: 720, height: 400, data: new Uint8ClampedArray(720 * 400 * 4).fill(200) }, 160, 120);
  assert.equal(t.width, 160);
  assert.equal(t.height, 89);
  assert.equal(t.data[0], 200);
});
