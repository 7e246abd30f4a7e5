/**
 * A minimal GDB remote-serial-protocol client, enough to drive QEMU's gdbstub for differential CPU
 * testing: register file (layout learnt from the target description), memory reads, single steps
 * and monitor commands. Every request has a timeout so a wedged QEMU fails the test instead of
 * hanging it.
 */
import { Socket, createConnection } from 'node:net';

export interface RegisterInfo {
  name: string;
  bitsize: number;
  /** Byte offset of the register inside the `g` packet payload (decoded). */
  offset: number;
  regnum: number;
}

export class GdbError extends Error {}

function checksum(s: string): string {
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum = (sum + s.charCodeAt(i)) & 0xff;
  return sum.toString(16).padStart(2, '0');
}

/** Undoes the protocol's binary escaping ('}' x ^ 0x20) and run-length encoding ('*'). */
export function decodePayload(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '}') {
      out += String.fromCharCode(raw.charCodeAt(++i) ^ 0x20);
    } else if (c === '*') {
      const n = raw.charCodeAt(++i) - 29;
      out += out[out.length - 1].repeat(n);
    } else {
      out += c;
    }
  }
  return out;
}

export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export class GdbClient {
  private buf = '';
  private waiters: ((pkt: string | null) => void)[] = [];
  private queue: string[] = [];
  private closed = false;
  private noAck = false;
  layout: RegisterInfo[] = [];
  private byName = new Map<string, RegisterInfo>();

  private constructor(private readonly sock: Socket) {
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => this.onData(d));
    const onEnd = () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(null);
    };
    sock.on('close', onEnd);
    sock.on('error', onEnd);
  }

  /** Connects, retrying until `timeoutMs` (QEMU needs a moment to open its listening socket). */
  static async connect(host: string, port: number, timeoutMs = 10000): Promise<GdbClient> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    while (Date.now() < deadline) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection({ host, port });
          const t = setTimeout(() => { s.destroy(); reject(new Error('connect timeout')); }, 2000);
          s.once('connect', () => { clearTimeout(t); resolve(s); });
          s.once('error', (e) => { clearTimeout(t); reject(e); });
        });
        const c = new GdbClient(sock);
        await c.handshake();
        return c;
      } catch (e) {
        lastErr = e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new GdbError(`cannot connect to gdbstub at ${host}:${port}: ${String(lastErr)}`);
  }

  private onData(d: string): void {
    this.buf += d;
    for (;;) {
      // Acks and stray characters before a packet start are skipped.
      const start = this.buf.indexOf('$');
      if (start < 0) { this.buf = ''; return; }
      const hash = this.buf.indexOf('#', start);
      if (hash < 0 || this.buf.length < hash + 3) { this.buf = this.buf.slice(start); return; }
      const body = this.buf.slice(start + 1, hash);
      this.buf = this.buf.slice(hash + 3);
      if (!this.noAck) this.sock.write('+');
      const w = this.waiters.shift();
      if (w) w(body); else this.queue.push(body);
    }
  }

  private nextPacket(timeoutMs: number, what: string): Promise<string> {
    const q = this.queue.shift();
    if (q !== undefined) return Promise.resolve(q);
    if (this.closed) return Promise.reject(new GdbError(`gdbstub connection closed (waiting for reply to ${what})`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new GdbError(`timeout after ${timeoutMs} ms waiting for reply to ${what}`));
      }, timeoutMs);
      const waiter = (pkt: string | null) => {
        clearTimeout(t);
        if (pkt === null) reject(new GdbError(`gdbstub connection closed (waiting for reply to ${what})`));
        else resolve(pkt);
      };
      this.waiters.push(waiter);
    });
  }

  private send(pkt: string): void {
    if (this.closed) throw new GdbError(`gdbstub connection closed (sending ${pkt.slice(0, 20)})`);
    this.sock.write(`$${pkt}#${checksum(pkt)}`);
  }

  /** Sends a packet and returns the decoded reply body. */
  async command(pkt: string, timeoutMs = 5000): Promise<string> {
    this.send(pkt);
    return decodePayload(await this.nextPacket(timeoutMs, pkt.slice(0, 24)));
  }

  private async handshake(): Promise<void> {
    await this.command('qSupported:multiprocess-;swbreak+;hwbreak+;qRelocInsn-;xmlRegisters=i386');
    const r = await this.command('QStartNoAckMode');
    if (r === 'OK') this.noAck = true;
    await this.command('?');
  }

  /** Reads a qXfer object completely. */
  async xfer(object: string, annex: string): Promise<string> {
    let out = '';
    for (;;) {
      const r = await this.command(`qXfer:${object}:read:${annex}:${out.length.toString(16)},ffb`);
      if (r[0] !== 'm' && r[0] !== 'l') throw new GdbError(`qXfer ${object} ${annex}: ${r}`);
      out += r.slice(1);
      if (r[0] === 'l') return out;
    }
  }

  /** Learns the register layout of the `g` packet from the target description (and its includes). */
  async loadTargetDescription(): Promise<RegisterInfo[]> {
    const regs: { name: string; bitsize: number; regnum?: number }[] = [];
    const visit = async (annex: string) => {
      // Commented-out registers (QEMU's description has some) are not in the packet.
      const xml = (await this.xfer('features', annex)).replace(/<!--[\s\S]*?-->/g, '');
      // Elements appear in document order; includes are expanded where they stand.
      const re = /<(xi:include|reg)\s([^>]*)\/?>/g;
      let m: RegExpExecArray | null;
      while ((m = re.exec(xml))) {
        const attr = (k: string) => (new RegExp(`\\b${k}="([^"]*)"`).exec(m![2]) ?? [])[1];
        if (m[1] === 'xi:include') await visit(attr('href')!);
        else {
          const rn = attr('regnum');
          regs.push({ name: attr('name')!, bitsize: Number(attr('bitsize')), regnum: rn === undefined ? undefined : Number(rn) });
        }
      }
    };
    await visit('target.xml');
    let regnum = 0;
    let offset = 0;
    this.layout = [];
    for (const r of regs) {
      if (r.regnum !== undefined) regnum = r.regnum;
      this.layout.push({ name: r.name, bitsize: r.bitsize, offset, regnum });
      offset += r.bitsize / 8;
      regnum++;
    }
    this.byName = new Map(this.layout.map((r) => [r.name, r]));
    return this.layout;
  }

  /** All registers of the `g` packet as raw little-endian bytes, by name. */
  async readRegisters(): Promise<Map<string, Uint8Array>> {
    const r = await this.command('g');
    if (r.startsWith('E')) throw new GdbError(`g: ${r}`);
    const bytes = hexToBytes(r);
    const out = new Map<string, Uint8Array>();
    for (const reg of this.layout) {
      if (reg.offset + reg.bitsize / 8 > bytes.length) break;
      out.set(reg.name, bytes.subarray(reg.offset, reg.offset + reg.bitsize / 8));
    }
    return out;
  }

  /** A single register through `p` (for registers outside the `g` packet). */
  async readRegister(name: string): Promise<Uint8Array> {
    const info = this.byName.get(name);
    if (!info) throw new GdbError(`no register ${name} in the target description`);
    const r = await this.command(`p${info.regnum.toString(16)}`);
    if (r.startsWith('E')) throw new GdbError(`p ${name}: ${r}`);
    return hexToBytes(r);
  }

  /** Writes one register through `P` (value as little-endian bytes of the register's size). */
  async writeRegister(name: string, value: Uint8Array): Promise<void> {
    const info = this.byName.get(name);
    if (!info) throw new GdbError(`no register ${name} in the target description`);
    const r = await this.command(`P${info.regnum.toString(16)}=${bytesToHex(value)}`);
    if (r !== 'OK') throw new GdbError(`P ${name}: ${r}`);
  }

  /** Reads linear (post-segmentation, pre-paging-translation by QEMU) memory. */
  async readMemory(addr: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const n = Math.min(0x400, length - done);
      const r = await this.command(`m${((addr + done) >>> 0).toString(16)},${n.toString(16)}`);
      if (r.startsWith('E') && r.length === 3) throw new GdbError(`m ${(addr + done).toString(16)}: ${r}`);
      out.set(hexToBytes(r), done);
      done += n;
    }
    return out;
  }

  /** Writes linear memory (physical in PhyMemMode). */
  async writeMemory(addr: number, data: Uint8Array): Promise<void> {
    const r = await this.command(`M${(addr >>> 0).toString(16)},${data.length.toString(16)}:${bytesToHex(data)}`);
    if (r !== 'OK') throw new GdbError(`M ${addr.toString(16)}: ${r}`);
  }

  /** Single-steps one instruction; returns the stop reply (e.g. `T05thread:01;`). */
  async step(timeoutMs = 5000): Promise<string> {
    const r = await this.command('s', timeoutMs);
    if (r[0] === 'W' || r[0] === 'X') {
      // The target is gone (QEMU exits on shutdown with -no-reboot).
      this.exited = r;
      throw new GdbError(`target exited during a step (${r})`);
    }
    if (r[0] !== 'T' && r[0] !== 'S') throw new GdbError(`step: unexpected stop reply ${r}`);
    return r;
  }

  /** Runs a monitor command (`qRcmd`) and returns its text output. */
  async monitor(cmd: string, timeoutMs = 5000): Promise<string> {
    this.send(`qRcmd,${bytesToHex(new TextEncoder().encode(cmd))}`);
    let text = '';
    for (;;) {
      const r = decodePayload(await this.nextPacket(timeoutMs, `qRcmd ${cmd}`));
      if (r === 'OK') return text;
      if (r[0] === 'O' && r !== 'OK') { text += Buffer.from(hexToBytes(r.slice(1))).toString('latin1'); continue; }
      if (r.startsWith('E')) throw new GdbError(`monitor ${cmd}: ${r}`);
      // Some stubs return the whole output hex-encoded in one packet.
      text += Buffer.from(hexToBytes(r)).toString('latin1');
      return text;
    }
  }

  /** The exit reply (W/X) if the target has exited. */
  exited: string | null = null;

  get isClosed(): boolean {
    return this.closed || this.exited !== null;
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
