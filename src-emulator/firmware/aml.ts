/**
 * An AML byte encoder just big enough for our DSDT (ACPI 6.x spec, chapter 20): names, scopes,
 * devices, packages, buffers, integers, strings, EISA ids and a few resource descriptors.
 * Each builder returns bytes; nesting is plain array composition.
 */
export type Aml = Uint8Array;

function cat(parts: ArrayLike<number>[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** PkgLength: the length of the package including the PkgLength bytes themselves. */
export function pkgLength(bodyLength: number): Uint8Array {
  for (let n = 1; n <= 4; n++) {
    const total = bodyLength + n;
    if (n === 1 && total < 0x40) return Uint8Array.of(total);
    if (n > 1 && total < 1 << (4 + 8 * (n - 1))) {
      const out = new Uint8Array(n);
      out[0] = ((n - 1) << 6) | (total & 0x0f);
      for (let i = 1; i < n; i++) out[i] = (total >> (4 + 8 * (i - 1))) & 0xff;
      return out;
    }
  }
  throw new Error(`AML package too long: ${bodyLength}`);
}

function nameSeg(seg: string): number[] {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) throw new Error(`bad AML name segment '${seg}'`);
  return [...seg.padEnd(4, '_')].map((c) => c.charCodeAt(0));
}

/** NameString: "\\_SB.PCI0", "_HID", "^FOO". */
export function nameString(name: string): Uint8Array {
  const out: number[] = [];
  let rest = name;
  while (rest.startsWith('\\') || rest.startsWith('^')) {
    out.push(rest.charCodeAt(0));
    rest = rest.slice(1);
  }
  const segs = rest === '' ? [] : rest.split('.');
  if (segs.length === 0) out.push(0x00);
  else if (segs.length === 1) out.push(...nameSeg(segs[0]));
  else if (segs.length === 2) out.push(0x2e, ...nameSeg(segs[0]), ...nameSeg(segs[1]));
  else {
    out.push(0x2f, segs.length);
    for (const s of segs) out.push(...nameSeg(s));
  }
  return Uint8Array.from(out);
}

export function integer(v: number): Aml {
  if (v === 0) return Uint8Array.of(0x00);
  if (v === 1) return Uint8Array.of(0x01);
  if (v < 0 || !Number.isInteger(v) || v > 0xffffffff) throw new Error(`AML integer out of range: ${v}`);
  if (v <= 0xff) return Uint8Array.of(0x0a, v);
  if (v <= 0xffff) return Uint8Array.of(0x0b, v & 0xff, v >> 8);
  return Uint8Array.of(0x0c, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
}

export function string(s: string): Aml {
  return cat([[0x0d], [...s].map((c) => c.charCodeAt(0) & 0x7f), [0x00]]);
}

/** EisaId("PNP0A03") as the 32-bit integer ASL would produce. */
export function eisaId(id: string): Aml {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new Error(`bad EISA id '${id}'`);
  const c = (i: number) => id.charCodeAt(i) - 0x40;
  const vendor = (c(0) << 10) | (c(1) << 5) | c(2);
  const product = parseInt(id.slice(3), 16);
  const v = ((vendor >> 8) | ((vendor & 0xff) << 8) | ((product >> 8) << 16) | ((product & 0xff) << 24)) >>> 0;
  return integer(v);
}

export function name(n: string, value: Aml): Aml {
  return cat([[0x08], nameString(n), value]);
}

export function scope(n: string, ...body: Aml[]): Aml {
  const inner = cat([nameString(n), ...body]);
  return cat([[0x10], pkgLength(inner.length), inner]);
}

export function device(n: string, ...body: Aml[]): Aml {
  const inner = cat([nameString(n), ...body]);
  return cat([[0x5b, 0x82], pkgLength(inner.length), inner]);
}

export function pkg(...elements: Aml[]): Aml {
  if (elements.length > 255) throw new Error('AML package: too many elements for PackageOp');
  const inner = cat([[elements.length], ...elements]);
  return cat([[0x12], pkgLength(inner.length), inner]);
}

export function buffer(bytes: ArrayLike<number>): Aml {
  const inner = cat([integer(bytes.length), bytes]);
  return cat([[0x11], pkgLength(inner.length), inner]);
}

/** Method(name, args) { Return (value) } — enough for _STA-style constant methods. */
export function methodReturning(n: string, value: Aml): Aml {
  const inner = cat([nameString(n), [0x00], [0xa4], value]);
  return cat([[0x14], pkgLength(inner.length), inner]);
}

// Resource descriptors (ACPI 6.x 6.4) for _CRS buffers.

export function ioPort(min: number, max: number, align: number, length: number): number[] {
  return [0x47, 0x01, min & 0xff, min >> 8, max & 0xff, max >> 8, align, length];
}

export function irqNoFlags(...irqs: number[]): number[] {
  let mask = 0;
  for (const i of irqs) mask |= 1 << i;
  return [0x22, mask & 0xff, mask >> 8];
}

const le16 = (v: number) => [v & 0xff, (v >> 8) & 0xff];
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** Word address space descriptor (bus numbers or I/O), a bridge window: producer, MinFixed, MaxFixed. */
function wordSpace(type: 1 | 2, typeFlags: number, min: number, max: number): number[] {
  return [0x88, 0x0d, 0x00, type, 0x0c, typeFlags, ...le16(0), ...le16(min), ...le16(max), ...le16(0), ...le16(max - min + 1)];
}

export function wordBusNumber(min: number, max: number): number[] {
  return wordSpace(2, 0, min, max);
}

/** WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, ...). */
export function wordIo(min: number, max: number): number[] {
  return wordSpace(1, 0x03, min, max);
}

/** DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable|NonCacheable, ReadWrite, ...). */
export function dwordMemory(min: number, max: number, cacheable: boolean): number[] {
  const len = (max - min + 1) >>> 0;
  return [0x87, 0x17, 0x00, 0, 0x0c, cacheable ? 0x03 : 0x01, ...le32(0), ...le32(min), ...le32(max), ...le32(0), ...le32(len)];
}

export function resourceTemplate(...descriptors: number[][]): Aml {
  return buffer([...descriptors.flat(), 0x79, 0x00]);
}

export { cat as amlConcat };
