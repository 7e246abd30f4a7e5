/** The writes a crash-test child makes: a pure function of (seed, index), so the parent can replay them. */
export function crashWrite(seed: number, i: number, size: number): { offset: number; data: Uint8Array } {
  let x = (seed * 2654435761 + i * 40503 + 12345) >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  for (let k = 0; k < 4; k++) next();
  // Mostly sector-sized guest-like writes, some unaligned, some large.
  const kind = next() % 8;
  const len = kind < 5 ? 512 * (1 + (next() % 16)) : kind < 7 ? 1 + (next() % 9000) : 65536 + (next() % 200000);
  const offset = kind < 5 ? (next() % Math.floor((size - len) / 512)) * 512 : next() % (size - len);
  const data = new Uint8Array(len);
  for (let j = 0; j < len; j += 4) {
    const v = next();
    data[j] = v;
    if (j + 1 < len) data[j + 1] = v >>> 8;
    if (j + 2 < len) data[j + 2] = v >>> 16;
    if (j + 3 < len) data[j + 3] = v >>> 24;
  }
  return { offset, data };
}
