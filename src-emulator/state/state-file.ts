/**
 * The machine-state file: what a saved VM and a live snapshot keep of a running PC.
 *
 *   header   "BOXWOOD-STATE\0\0\0" (16) | u16 format version | u16 flags | u32 section count
 *            | u32 CRC-32 of the first 24 bytes                                        (28 bytes)
 *   section  u16 name length | name (UTF-8) | u8 encoding | u8 compression | u16 reserved
 *            | u32 stored length | u32 CRC-32 of the stored bytes | stored bytes
 *   trailer  "BOXWOOD-END\0" (12) | u32 section count | u32 CRC-32 of all section CRCs
 *
 * Sections: `machine.<key>` for each top-level field of `MachineState` (config, clock, cpu, ...),
 * `device.<name>` per device, and `ram`. Structured sections are V8 structured-clone data (typed
 * arrays survive), deflated. RAM is stored as a bitmap of non-zero 4 KiB pages followed by the
 * non-zero pages in 1 MiB runs, each run deflated on its own, so an idle 256 MiB guest costs a few
 * MiB and RAM never needs a second full-size copy in memory.
 *
 * Every section carries its own checksum, so a damaged file names the section that is bad, and the
 * trailer tells a truncated file from a damaged one. Files are written to a temporary name, fsynced
 * and renamed: a crash leaves the old file or the new one, never a torn one.
 *
 * Node-only (fs, zlib, v8): it sits at the edge of the emulator like storage/.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync, inflateRawSync, constants as zc } from 'node:zlib';
import { deserialize, serialize } from 'node:v8';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { MachineState } from '../machine/machine';

export const STATE_MAGIC = Buffer.from('BOXWOOD-STATE\0\0\0', 'latin1');
export const STATE_END = Buffer.from('BOXWOOD-END\0', 'latin1');
export const STATE_FORMAT_VERSION = 1;
const HEADER_SIZE = 28;
const PAGE = 4096;
const RUN_PAGES = 256;
/** In a RAM run header: the run is stored uncompressed. */
const RUN_STORED = 0x8000_0000;

const enum Encoding {
  V8 = 1,
  RamPages = 2,
  Bytes = 3,
}
const enum Compression {
  None = 0,
  Deflate = 1,
}

/** A state file that cannot be read: names the file and, when known, the section. */
export class StateFileError extends Error {
  constructor(
    readonly file: string,
    readonly section: string | null,
    readonly fault: string,
  ) {
    super(`${file}: ${section ? `section '${section}': ` : ''}${fault}`);
    this.name = 'StateFileError';
  }
}

export interface StateFileInfo {
  formatVersion: number;
  sections: { name: string; storedBytes: number }[];
  fileBytes: number;
}

interface Section {
  name: string;
  encoding: Encoding;
  compression: Compression;
  stored: Uint8Array;
}

function v8Section(name: string, value: unknown): Section {
  const raw = serialize(value);
  return { name, encoding: Encoding.V8, compression: Compression.Deflate, stored: deflateRawSync(raw, { level: 1 }) };
}

/**
 * RAM: u32 page size | u32 RAM bytes | bitmap | runs of (u32 raw length | u32 stored length, bit 31
 * set when stored uncompressed | deflated or raw pages).
 */
export function encodeRam(ram: Uint8Array): Uint8Array {
  const pages = Math.ceil(ram.length / PAGE);
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  const words = new Uint32Array(ram.buffer, ram.byteOffset, Math.floor(ram.length / 4));
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(8);
  const hv = new DataView(head.buffer);
  hv.setUint32(0, PAGE, true);
  hv.setUint32(4, ram.length, true);
  parts.push(head, bitmap);
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const flush = () => {
    if (!runBytes) return;
    const raw = run.length === 1 ? run[0] : Buffer.concat(run);
    // Deflate is slow on data that does not compress (compressed files in the page cache, keys):
    // a 64 KiB probe decides, and such runs are stored as they are (bit 31 of the stored length).
    const probe = raw.length > 65536 ? deflateRawSync(raw.subarray(0, 65536), { level: 1 }).length / 65536 : 0;
    const packed = probe > 0.9 ? null : deflateRawSync(raw, { level: 1, strategy: zc.Z_DEFAULT_STRATEGY });
    const rh = new Uint8Array(8);
    const rv = new DataView(rh.buffer);
    rv.setUint32(0, raw.length, true);
    if (packed && packed.length < raw.length) {
      rv.setUint32(4, packed.length, true);
      parts.push(rh, packed);
    } else {
      rv.setUint32(4, (raw.length | RUN_STORED) >>> 0, true);
      parts.push(rh, raw);
    }
    run = [];
    runBytes = 0;
  };
  for (let p = 0; p < pages; p++) {
    const start = p * PAGE;
    const end = Math.min(ram.length, start + PAGE);
    let nonZero = false;
    if (ram.byteOffset % 4 === 0 && end - start === PAGE) {
      for (let w = start >> 2, we = end >> 2; w < we; w++) {
        if (words[w] !== 0) {
          nonZero = true;
          break;
        }
      }
    } else {
      for (let i = start; i < end; i++) {
        if (ram[i] !== 0) {
          nonZero = true;
          break;
        }
      }
    }
    if (!nonZero) continue;
    bitmap[p >> 3] |= 1 << (p & 7);
    run.push(ram.subarray(start, end));
    runBytes += end - start;
    if (run.length >= RUN_PAGES) flush();
  }
  flush();
  return Buffer.concat(parts);
}

export function decodeRam(data: Uint8Array): Uint8Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 8) throw new Error('too short for a RAM header');
  const pageSize = view.getUint32(0, true);
  const size = view.getUint32(4, true);
  if (pageSize !== PAGE) throw new Error(`page size ${pageSize}, expected ${PAGE}`);
  if (size > 0xe000_0000) throw new Error(`RAM size ${size} is beyond what a machine has`);
  const pages = Math.ceil(size / PAGE);
  const bitmapLen = Math.ceil(pages / 8);
  if (data.length < 8 + bitmapLen) throw new Error('bitmap is truncated');
  const bitmap = data.subarray(8, 8 + bitmapLen);
  const ram = new Uint8Array(size);
  let off = 8 + bitmapLen;
  let p = 0;
  const nextPage = () => {
    while (p < pages && !(bitmap[p >> 3] & (1 << (p & 7)))) p++;
    return p < pages ? p++ : -1;
  };
  while (off < data.length) {
    if (off + 8 > data.length) throw new Error('run header is truncated');
    const rawLen = view.getUint32(off, true);
    const lenField = view.getUint32(off + 4, true);
    const stored = (lenField & RUN_STORED) !== 0;
    const packedLen = lenField & ~RUN_STORED;
    off += 8;
    if (off + packedLen > data.length) throw new Error('run is truncated');
    const raw = stored ? data.subarray(off, off + packedLen) : inflateRawSync(data.subarray(off, off + packedLen));
    off += packedLen;
    if (raw.length !== rawLen) throw new Error(`run inflates to ${raw.length} bytes, header says ${rawLen}`);
    let r = 0;
    while (r < raw.length) {
      const page = nextPage();
      if (page < 0) throw new Error('more page data than the bitmap marks');
      const start = page * PAGE;
      const len = Math.min(PAGE, size - start);
      if (r + len > raw.length) throw new Error('run ends inside a page');
      ram.set(raw.subarray(r, r + len), start);
      r += len;
    }
  }
  if (nextPage() >= 0) throw new Error('the bitmap marks pages that have no data');
  return ram;
}

function sectionsOf(state: MachineState, extra: Record<string, Uint8Array>): Section[] {
  const out: Section[] = [];
  for (const key of Object.keys(state)) {
    if (key === 'devices' || key === 'ram') continue;
    out.push(v8Section(`machine.${key}`, state[key]));
  }
  const devices = state.devices ?? {};
  for (const name of Object.keys(devices)) out.push(v8Section(`device.${name}`, devices[name]));
  out.push({ name: 'ram', encoding: Encoding.RamPages, compression: Compression.None, stored: encodeRam(state.ram) });
  for (const [name, bytes] of Object.entries(extra)) {
    out.push({ name: `extra.${name}`, encoding: Encoding.Bytes, compression: Compression.None, stored: bytes });
  }
  return out;
}

/** The whole file as bytes (tests, benchmarks); `writeStateFile` is the crash-safe way to store it. */
export function encodeStateFile(state: MachineState, extra: Record<string, Uint8Array> = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const c of stateChunks(state, extra)) chunks.push(c);
  return Buffer.concat(chunks);
}

function* stateChunks(state: MachineState, extra: Record<string, Uint8Array>): Generator<Uint8Array> {
  const sections = sectionsOf(state, extra);
  const header = Buffer.alloc(HEADER_SIZE);
  STATE_MAGIC.copy(header, 0);
  header.writeUInt16LE(STATE_FORMAT_VERSION, 16);
  header.writeUInt16LE(0, 18);
  header.writeUInt32LE(sections.length, 20);
  header.writeUInt32LE(crc32(header.subarray(0, 24)), 24);
  yield header;
  const crcs = Buffer.alloc(sections.length * 4);
  sections.forEach((s, i) => crcs.writeUInt32LE(crc32(s.stored), i * 4));
  for (let i = 0; i < sections.length; i++) {
    const s = sections[i];
    const name = Buffer.from(s.name, 'utf8');
    const h = Buffer.alloc(2 + name.length + 12);
    h.writeUInt16LE(name.length, 0);
    name.copy(h, 2);
    const o = 2 + name.length;
    h.writeUInt8(s.encoding, o);
    h.writeUInt8(s.compression, o + 1);
    h.writeUInt32LE(s.stored.length, o + 4);
    h.writeUInt32LE(crcs.readUInt32LE(i * 4), o + 8);
    yield h;
    yield s.stored;
  }
  const trailer = Buffer.alloc(STATE_END.length + 8);
  STATE_END.copy(trailer, 0);
  trailer.writeUInt32LE(sections.length, STATE_END.length);
  trailer.writeUInt32LE(crc32(crcs), STATE_END.length + 4);
  yield trailer;
}

/**
 * Writes a machine state crash-safely: temporary file, fsync, rename over `path`, fsync of the
 * folder. `extra` holds opaque byte sections (a thumbnail, say) that travel with the state.
 */
export function writeStateFile(path: string, state: MachineState, extra: Record<string, Uint8Array> = {}): number {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o644);
  let total = 0;
  try {
    for (const chunk of stateChunks(state, extra)) {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      total += chunk.length;
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
  return total;
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* Windows cannot fsync a folder; the rename is still atomic */
  }
}

interface ParsedSection {
  name: string;
  encoding: number;
  compression: number;
  stored: Uint8Array;
}

function parse(file: string, data: Uint8Array): { version: number; sections: ParsedSection[] } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < HEADER_SIZE || !buf.subarray(0, 16).equals(STATE_MAGIC)) {
    throw new StateFileError(file, null, 'not a Boxwood machine-state file (bad magic)');
  }
  if (buf.readUInt32LE(24) !== crc32(buf.subarray(0, 24))) throw new StateFileError(file, 'header', 'checksum mismatch (damaged)');
  const version = buf.readUInt16LE(16);
  if (version > STATE_FORMAT_VERSION) {
    throw new StateFileError(
      file,
      'header',
      `format version ${version} was written by a newer Boxwood (this one reads ${STATE_FORMAT_VERSION})`,
    );
  }
  if (version !== STATE_FORMAT_VERSION) throw new StateFileError(file, 'header', `unknown format version ${version}`);
  const count = buf.readUInt32LE(20);
  if (count > 10_000) throw new StateFileError(file, 'header', `${count} sections is not plausible (damaged)`);
  const sections: ParsedSection[] = [];
  const crcs = Buffer.alloc(count * 4);
  let off = HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    const where = sections.length ? `after section '${sections[sections.length - 1].name}'` : 'first section';
    if (off + 2 > buf.length) throw new StateFileError(file, null, `truncated: the file ends at ${where} (${i} of ${count} sections)`);
    const nameLen = buf.readUInt16LE(off);
    if (off + 2 + nameLen + 12 > buf.length)
      throw new StateFileError(file, null, `truncated: the file ends at ${where} (${i} of ${count} sections)`);
    const name = buf.toString('utf8', off + 2, off + 2 + nameLen);
    let o = off + 2 + nameLen;
    const encoding = buf.readUInt8(o);
    const compression = buf.readUInt8(o + 1);
    const len = buf.readUInt32LE(o + 4);
    const crc = buf.readUInt32LE(o + 8);
    o += 12;
    if (o + len > buf.length) throw new StateFileError(file, name, `truncated: ${len} bytes announced, ${buf.length - o} present`);
    const stored = buf.subarray(o, o + len);
    if (crc32(stored) !== crc) throw new StateFileError(file, name, 'checksum mismatch (damaged)');
    crcs.writeUInt32LE(crc, i * 4);
    sections.push({ name, encoding, compression, stored });
    off = o + len;
  }
  if (off + STATE_END.length + 8 > buf.length || !buf.subarray(off, off + STATE_END.length).equals(STATE_END)) {
    throw new StateFileError(file, null, 'truncated or damaged: the end marker is missing');
  }
  if (buf.readUInt32LE(off + STATE_END.length) !== count || buf.readUInt32LE(off + STATE_END.length + 4) !== crc32(crcs)) {
    throw new StateFileError(file, 'trailer', 'section count or checksum does not match (damaged)');
  }
  return { version, sections };
}

function decodeSection(file: string, s: ParsedSection): unknown {
  try {
    let raw: Uint8Array = s.stored;
    if (s.compression === Compression.Deflate) raw = inflateRawSync(s.stored);
    else if (s.compression !== Compression.None) throw new Error(`unknown compression ${s.compression}`);
    switch (s.encoding) {
      case Encoding.V8:
        return deserialize(raw);
      case Encoding.RamPages:
        return decodeRam(raw);
      case Encoding.Bytes:
        return new Uint8Array(raw);
      default:
        throw new Error(`unknown encoding ${s.encoding}`);
    }
  } catch (err) {
    if (err instanceof StateFileError) throw err;
    throw new StateFileError(file, s.name, `cannot be decoded (${(err as Error).message})`);
  }
}

/** Decodes a state file's bytes; `file` only names it in errors. */
export function decodeStateFile(file: string, data: Uint8Array): { state: MachineState; extra: Record<string, Uint8Array> } {
  const { sections } = parse(file, data);
  const state: Record<string, unknown> = { devices: {} };
  const devices = state.devices as Record<string, unknown>;
  const extra: Record<string, Uint8Array> = {};
  const seen = new Set<string>();
  for (const s of sections) {
    if (seen.has(s.name)) throw new StateFileError(file, s.name, 'appears twice');
    seen.add(s.name);
    const value = decodeSection(file, s);
    if (s.name === 'ram') state.ram = value;
    else if (s.name.startsWith('machine.')) state[s.name.slice(8)] = value;
    else if (s.name.startsWith('device.')) devices[s.name.slice(7)] = value;
    else if (s.name.startsWith('extra.')) extra[s.name.slice(6)] = value as Uint8Array;
    else throw new StateFileError(file, s.name, 'unknown section kind');
  }
  for (const need of ['ram', 'machine.version', 'machine.cpu', 'machine.clock']) {
    if (!seen.has(need)) throw new StateFileError(file, need, 'is missing');
  }
  return { state: state as MachineState, extra };
}

/** Reads a state file; any fault is a StateFileError naming the file and the section. */
export function readStateFile(path: string): { state: MachineState; extra: Record<string, Uint8Array> } {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new StateFileError(path, null, code === 'ENOENT' ? 'is missing' : `cannot be read (${code ?? (err as Error).message})`);
  }
  return decodeStateFile(path, data);
}

/** Header and section list without decoding (for `info` and tests). */
export function inspectStateFile(path: string): StateFileInfo {
  const data = readFileSync(path);
  const { version, sections } = parse(path, data);
  return {
    formatVersion: version,
    sections: sections.map((s) => ({ name: s.name, storedBytes: s.stored.length })),
    fileBytes: data.length,
  };
}

/**
 * Loads a state file into a machine. The machine's own `loadState` names a damaged section too;
 * its error is rewrapped so the file name is in it.
 */
export function loadStateFileInto(path: string, machine: { loadState(s: MachineState): void }): Record<string, Uint8Array> {
  const { state, extra } = readStateFile(path);
  try {
    machine.loadState(state);
  } catch (err) {
    const m = /section (\S+) is damaged/.exec((err as Error).message);
    throw new StateFileError(path, m ? m[1] : null, (err as Error).message);
  }
  return extra;
}

/** One `extra.<name>` section's bytes (a thumbnail, say) without decoding the machine state. */
export function readStateExtra(path: string, name: string): Uint8Array | null {
  const { sections } = parse(path, readFileSync(path));
  const s = sections.find((x) => x.name === `extra.${name}`);
  return s ? (decodeSection(path, s) as Uint8Array) : null;
}

/** A thumbnail of an RGBA screen: at most `maxWidth` wide, nearest-neighbour, aspect kept. */
export function thumbnailRgba(
  img: { width: number; height: number; data: Uint8Array | Uint8ClampedArray },
  maxWidth = 160,
): { width: number; height: number; data: Uint8Array } {
  const scale = Math.min(1, maxWidth / Math.max(1, img.width));
  const width = Math.max(1, Math.round(img.width * scale));
  const height = Math.max(1, Math.round(img.height * scale));
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(img.height - 1, Math.floor(y / scale));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(img.width - 1, Math.floor(x / scale));
      const s = (sy * img.width + sx) * 4;
      const d = (y * width + x) * 4;
      data[d] = img.data[s];
      data[d + 1] = img.data[s + 1];
      data[d + 2] = img.data[s + 2];
      data[d + 3] = 255;
    }
  }
  return { width, height, data };
}
