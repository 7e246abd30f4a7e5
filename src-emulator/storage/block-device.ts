/**
 * The one interface every disk image format implements. Synchronous on purpose: the emulated
 * controllers complete requests inside the CPU's run slice, and host file I/O on a local image is
 * fast enough that a sync read beats the bookkeeping of an async one; a block cache sits in front.
 *
 * Offsets and lengths are bytes. Errors are `DiskError`s that name the file and the fault.
 */
export interface BlockDevice {
  /** The file the guest-visible data comes from (the top of a backing chain). */
  readonly path: string;
  /** 'raw' | 'iso' | 'qcow2' | 'vdi' | 'vmdk' | 'vhd' | 'vhdx' */
  readonly format: string;
  /** Virtual size in bytes, as the guest sees it. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fills `buf` from virtual offset `offset`; reads past the end are an error. */
  read(offset: number, buf: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
  /** Makes every completed write durable on the host disk (fsync), as a guest FLUSH CACHE asks. */
  flush(): void;
  close(): void;
}

export class DiskError extends Error {
  constructor(
    readonly file: string,
    readonly fault: string,
  ) {
    super(`${file}: ${fault}`);
    this.name = 'DiskError';
  }
}
