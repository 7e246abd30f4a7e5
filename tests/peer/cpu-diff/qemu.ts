/**
 * Starts qemu-system-i386 (TCG) halted at the reset vector with a test program as its BIOS, and
 * connects a GdbClient to its gdbstub on loopback. The process is always killed by `close()`, and
 * also when this Node process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { GdbClient } from './gdb-client';
import { GPR_NAMES, SEG_NAMES, type CpuState, type SegmentCache } from './state';

export const QEMU_BINARY = 'qemu-system-i386';
/** Guest RAM in both QEMU and Boxwood: enough for 4 MiB pages and PAE tables above 1 MiB. */
export const RAM_MIB = 32;

/** The Debian package that provides each tool the tests need; a missing one is reported by name. */
export function missingTools(): string[] {
  const out: string[] = [];
  const probe = (cmd: string, args: string[], pkg: string) => {
    const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 10000 });
    if (r.error || r.status !== 0) out.push(`${cmd} (Debian package ${pkg})`);
  };
  probe(QEMU_BINARY, ['--version'], 'qemu-system-x86');
  probe('nasm', ['-v'], 'nasm');
  return out;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => { for (const p of live) p.kill('SIGKILL'); });

export class QemuSession {
  private constructor(readonly proc: ChildProcess, readonly gdb: GdbClient, readonly stderr: () => string) {}

  /** `biosPath` is a 64 KiB or 128 KiB image; QEMU maps it below 1 MiB and below 4 GiB. */
  /**
   * The CPU model is a Pentium II without MMX: Boxwood's CPUID does not claim MMX/SSE yet, so
   * neither may the reference execute them.
   */
  static async start(biosPath: string, opts: { cpuModel?: string } = {}): Promise<QemuSession> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const args = [
        '-accel', 'tcg', '-M', 'pc', '-cpu', opts.cpuModel ?? 'pentium2,mmx=off', '-m', `${RAM_MIB}M`,
        '-bios', biosPath,
        // nodelay: one small packet each way per step; Nagle would hold them back.
        '-chardev', `socket,id=gdb0,host=127.0.0.1,port=${port},server=on,wait=off,nodelay=on`, '-gdb', 'chardev:gdb0', '-S',
        '-nographic', '-display', 'none', '-no-reboot', '-nodefaults', '-monitor', 'none', '-serial', 'none',
        '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
      ];
      const proc = spawn(QEMU_BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      live.add(proc);
      let err = '';
      proc.stderr!.setEncoding('utf8');
      proc.stderr!.on('data', (d: string) => { err += d; });
      const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => {
        live.delete(proc);
        reject(new Error(`qemu exited with code ${code}: ${err.trim()}`));
      }));
      exited.catch(() => {});
      try {
        const gdb = await Promise.race([GdbClient.connect('127.0.0.1', port, 10000), exited]);
        // SSTEP_ENABLE | SSTEP_NOIRQ | SSTEP_NOTIMER: a step executes exactly one guest instruction,
        // with no interrupt or timer sneaking in between.
        await gdb.command('Qqemu.sstep=7');
        await gdb.loadTargetDescription();
        return new QemuSession(proc, gdb, () => err);
      } catch (e) {
        lastErr = new Error(`${String(e)}${err ? `\nqemu stderr: ${err}` : ''}`);
        proc.kill('SIGKILL');
      }
    }
    throw lastErr;
  }

  close(): void {
    this.gdb.close();
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    live.delete(this.proc);
  }
}

/** Parses one `XX =sel base limit flags` line of QEMU's `info registers`. */
function parseSegLine(text: string, name: string): SegmentCache {
  const m = new RegExp(`^${name}\\s*=([0-9a-f]{4}) ([0-9a-f]{8,16}) ([0-9a-f]{8}) ([0-9a-f]{8})`, 'mi').exec(text);
  if (!m) throw new Error(`cannot find ${name} in QEMU's info registers:\n${text}`);
  return { selector: parseInt(m[1], 16), base: Number(BigInt('0x' + m[2]) & 0xffffffffn), limit: parseInt(m[3], 16), flags: parseInt(m[4], 16) };
}

function parseTableLine(text: string, name: string): { base: number; limit: number } {
  const m = new RegExp(`^${name}=\\s*([0-9a-f]{8,16}) ([0-9a-f]{8})`, 'mi').exec(text);
  if (!m) throw new Error(`cannot find ${name} in QEMU's info registers`);
  return { base: Number(BigInt('0x' + m[1]) & 0xffffffffn), limit: parseInt(m[2], 16) };
}

const u32 = (b: Uint8Array | undefined) => (b ? (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0 : 0);

/** ST(i) as QEMU's gdbstub sends it (10 bytes little-endian) -> sign/exponent then significand, hex. */
function st80(b: Uint8Array): string {
  let s = '';
  for (let i = 9; i >= 0; i--) s += b[i].toString(16).padStart(2, '0');
  return s;
}

export async function readQemuState(gdb: GdbClient): Promise<CpuState> {
  const r = await gdb.readRegisters();
  const text = await gdb.monitor('info registers');
  const v = (k: string) => u32(r.get(k));
  const cpl = /CPL=(\d)/.exec(text);
  const fsw = v('fstat');
  const top = (fsw >> 11) & 7;
  // The monitor's FTW is the abridged tag word (1 = valid), indexed by physical register.
  const ftw = parseInt((/FTW=([0-9a-f]+)/i.exec(text) ?? ['', '0'])[1], 16);
  const st: (string | null)[] = [];
  // QEMU's gdbstub sends the physical registers R0-R7 under the names st0-st7.
  for (let i = 0; i < 8; i++) {
    const p = (top + i) & 7;
    st.push(ftw & (1 << p) ? st80(r.get(`st${p}`)!) : null);
  }
  const cr = (n: string) => parseInt((new RegExp(`${n}=([0-9a-f]{8})`).exec(text) ?? ['', '0'])[1], 16);
  return {
    gpr: GPR_NAMES.map((n) => v(n)),
    eip: v('eip'),
    eflags: v('eflags'),
    seg: SEG_NAMES.map((n) => parseSegLine(text, n.toUpperCase())),
    ldtr: parseSegLine(text, 'LDT'),
    tr: parseSegLine(text, 'TR'),
    gdtr: parseTableLine(text, 'GDT'),
    idtr: parseTableLine(text, 'IDT'),
    cr: { cr0: cr('CR0'), cr2: cr('CR2'), cr3: cr('CR3'), cr4: cr('CR4') },
    cpl: cpl ? Number(cpl[1]) : undefined,
    dr6: cr('DR6'),
    dr7: cr('DR7'),
    fpu: { fcw: v('fctrl'), fsw, ftagAbridged: ftw, st },
  };
}

/**
 * The cheap read after a plain instruction: the register packet only (general registers, EIP,
 * EFLAGS, selectors, CR0-CR4); descriptor caches, tables and x87 come from `prev`.
 */
export async function readQemuStateFast(gdb: GdbClient, prev: CpuState): Promise<CpuState> {
  const r = await gdb.readRegisters();
  const v = (k: string) => u32(r.get(k));
  return {
    ...prev,
    gpr: GPR_NAMES.map((n) => v(n)),
    eip: v('eip'),
    eflags: v('eflags'),
    seg: SEG_NAMES.map((n, i) => ({ ...prev.seg[i], selector: v(n) & 0xffff })),
    cr: { cr0: v('cr0'), cr2: v('cr2'), cr3: v('cr3'), cr4: v('cr4') },
  };
}
