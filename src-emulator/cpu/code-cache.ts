/**
 * Decoded-instruction cache: blocks of pre-decoded instructions, keyed by the physical address of
 * their first byte (and the default operand size), dropped when their page is written.
 *
 * Keyed by physical address so every linear alias of a page and every process mapping it share
 * one decode, and so invalidation needs no knowledge of page tables: any write into a page that
 * holds decoded code (by the CPU, a firmware service or DMA) reaches `PhysicalMemory.onCodeWrite`,
 * because `codePages` sends those writes down the memory's slow path. A page whose code keeps
 * being overwritten soon after decoding (code and data sharing a page, common in real-mode code)
 * is left to the interpreter for a while, with a back-off that doubles each time.
 *
 * Blocks are where a JIT tier attaches later: a block that runs often can be compiled as a unit.
 */
import type { PhysicalMemory } from '../machine/memory';
import { decodeBlock, type DecodedOp } from './decoder';

export class DecodedBlock {
  /** Cleared when the block's page is written: a running block stops after the current instruction. */
  valid = true;
  constructor(
    readonly phys: number,
    readonly code32: boolean,
    readonly ops: DecodedOp[],
    readonly lens: number[],
    /** Bytes covered by the decoded instructions; the block runs only if all of them are fetchable. */
    readonly bytes: number,
  ) {}
}

/** Past this many blocks the cache starts over (bounds host memory on guests that churn code). */
const MAX_BLOCKS = 200_000;
/** A page rewritten within this many instructions of being decoded counts as mixing code and data. */
const CHURN_WINDOW = 100_000;

const RECENT_SLOTS = 4096;
function recentSlot(phys: number): number {
  return (phys ^ (phys >>> 11)) & (RECENT_SLOTS - 1);
}

export class CodeCache {
  /** Blocks decoded with 16-bit and with 32-bit default operand size, by physical start address. */
  private readonly blocks16 = new Map<number, DecodedBlock>();
  private readonly blocks32 = new Map<number, DecodedBlock>();
  private readonly byPage = new Map<number, DecodedBlock[]>();
  /** Per page: when it was last decoded, how often in a row it churned, and when to decode again. */
  private readonly decodedAt = new Map<number, number>();
  private readonly churn = new Map<number, number>();
  private readonly retryAt = new Map<number, number>();

  /** Counters for benchmarks and tests. */
  readonly stats = { blocksDecoded: 0, pagesInvalidated: 0, flushes: 0 };

  constructor(
    private readonly mem: PhysicalMemory,
    /** The CPU's retired-instruction count: the clock of the back-off. */
    private readonly now: () => number,
  ) {
    mem.onCodeWrite = (page) => this.invalidatePage(page);
  }

  /**
   * A direct-mapped table in front of the maps: most lookups are loops coming round to the same
   * few blocks. Entries are checked, never trusted (a dropped block is only marked invalid).
   */
  private readonly recent: (DecodedBlock | null)[] = new Array<DecodedBlock | null>(RECENT_SLOTS).fill(null);

  lookup(phys: number, code32: boolean): DecodedBlock | undefined {
    const slot = recentSlot(phys);
    const r = this.recent[slot];
    if (r !== null && r.phys === phys && r.code32 === code32 && r.valid) return r;
    const b = (code32 ? this.blocks32 : this.blocks16).get(phys);
    if (b !== undefined) this.recent[slot] = b;
    return b;
  }

  /**
   * Decodes the block at `phys`; `end` bounds the bytes it may cover (page end, or the CS limit).
   * Returns null while the page is backing off.
   */
  decode(phys: number, end: number, code32: boolean): DecodedBlock | null {
    const page = phys >>> 12;
    const now = this.now();
    const retry = this.retryAt.get(page);
    if (retry !== undefined) {
      if (now < retry) return null;
      this.retryAt.delete(page);
    }
    if (this.blocks16.size + this.blocks32.size >= MAX_BLOCKS) this.flush();
    const code = decodeBlock(this.mem.ram, phys, end, code32);
    const block = new DecodedBlock(phys, code32, code.ops, code.lens, code.bytes);
    this.recent[recentSlot(phys)] = block;
    (code32 ? this.blocks32 : this.blocks16).set(phys, block);
    let list = this.byPage.get(page);
    if (list === undefined) {
      list = [];
      this.byPage.set(page, list);
      this.decodedAt.set(page, now);
    }
    list.push(block);
    this.mem.codePages[page] = 1;
    this.stats.blocksDecoded++;
    return block;
  }

  /** Drops every block of physical page `page` (it was written). */
  invalidatePage(page: number): void {
    this.mem.codePages[page] = 0;
    const list = this.byPage.get(page);
    if (list === undefined) return;
    this.byPage.delete(page);
    for (const b of list) {
      b.valid = false;
      const map = this.blocks32.get(b.phys) === b ? this.blocks32 : this.blocks16;
      if (map.get(b.phys) === b) map.delete(b.phys);
    }
    this.stats.pagesInvalidated++;
    const now = this.now();
    const decodedAt = this.decodedAt.get(page) ?? -Infinity;
    this.decodedAt.delete(page);
    if (now - decodedAt > CHURN_WINDOW) {
      this.churn.delete(page);
      return;
    }
    const n = (this.churn.get(page) ?? 0) + 1;
    this.churn.set(page, n);
    if (n >= 3) this.retryAt.set(page, now + (CHURN_WINDOW << Math.min(n - 3, 8)));
  }

  /** Drops everything (RAM replaced by a state load, CPU reset). */
  flush(): void {
    for (const list of this.byPage.values()) for (const b of list) b.valid = false;
    for (const page of this.byPage.keys()) this.mem.codePages[page] = 0;
    this.blocks16.clear();
    this.blocks32.clear();
    this.recent.fill(null);
    this.byPage.clear();
    this.decodedAt.clear();
    this.churn.clear();
    this.retryAt.clear();
    this.stats.flushes++;
  }

  get size(): number {
    return this.blocks16.size + this.blocks32.size;
  }
}
