/**
 * The Linux x86 boot protocol (Documentation/arch/x86/boot.rst): parsing a bzImage's setup header
 * and laying out setup code, kernel, command line and initrd in guest memory the way a boot loader
 * (or QEMU's -kernel) does.
 */
export class KernelImageError extends Error {
  constructor(
    readonly file: string,
    readonly fault: string,
  ) {
    super(`${file}: ${fault}`);
    this.name = 'KernelImageError';
  }
}

export interface SetupHeader {
  setupSects: number;
  /** Boot protocol version, e.g. 0x020f. */
  version: number;
  loadFlags: number;
  code32Start: number;
  initrdAddrMax: number;
  cmdlineSize: number;
  relocatable: boolean;
  kernelAlignment: number;
  /** Bytes of real-mode setup code (including the boot sector). */
  setupBytes: number;
  /** Bytes of the protected-mode kernel that follows. */
  kernelBytes: number;
}

export const LOADED_HIGH = 0x01;
export const CAN_USE_HEAP = 0x80;

export function parseBzImage(image: Uint8Array, file = 'kernel'): SetupHeader {
  if (image.length < 0x264) throw new KernelImageError(file, `not a Linux bzImage (only ${image.length} bytes)`);
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (dv.getUint32(0x202, true) !== 0x53726448) {
    if (image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46) {
      throw new KernelImageError(file, 'is an ELF file (vmlinux), not a bzImage; use the compressed bzImage (vmlinuz)');
    }
    throw new KernelImageError(file, 'not a Linux bzImage (no "HdrS" boot protocol signature at 0x202)');
  }
  const version = dv.getUint16(0x206, true);
  if (version < 0x0202) throw new KernelImageError(file, `boot protocol ${fmtVersion(version)} is too old (need 2.02 or later)`);
  const loadFlags = image[0x211];
  if (!(loadFlags & LOADED_HIGH)) throw new KernelImageError(file, 'is a zImage (loaded low), not a bzImage');
  const setupSects = image[0x1f1] || 4;
  const setupBytes = (setupSects + 1) * 512;
  if (setupBytes >= image.length)
    throw new KernelImageError(file, `truncated: setup of ${setupBytes} bytes but the file has ${image.length}`);
  return {
    setupSects,
    version,
    loadFlags,
    code32Start: dv.getUint32(0x214, true),
    initrdAddrMax: version >= 0x0203 ? dv.getUint32(0x22c, true) : 0x37ffffff,
    cmdlineSize: version >= 0x0206 ? dv.getUint32(0x238, true) : 255,
    relocatable: version >= 0x0205 ? image[0x234] !== 0 : false,
    kernelAlignment: version >= 0x0205 ? dv.getUint32(0x230, true) : 0x100000,
    setupBytes,
    kernelBytes: image.length - setupBytes,
  };
}

export function fmtVersion(v: number): string {
  return `${v >> 8}.${(v & 0xff).toString().padStart(2, '0')}`;
}

/** Where the pieces go; real-mode base 0x10000 with the command line at 0x20000, as QEMU does. */
export interface LinuxLayout {
  realBase: number;
  cmdlineAddr: number;
  kernelAddr: number;
  initrdAddr: number;
  initrdSize: number;
  /** Real-mode entry: CS = realSeg + 0x20, IP = 0; SS = DS = realSeg, SP = stack. */
  realSeg: number;
  stackPointer: number;
  /** Patched setup code (boot sector + setup), ready to copy to realBase. */
  setup: Uint8Array;
  kernel: Uint8Array;
  cmdline: Uint8Array;
}

export const TYPE_OF_LOADER = 0xff;

/**
 * Lays out a kernel for `ramBytes` of RAM whose usable top (below ACPI tables) is `usableTop`.
 * Throws KernelImageError when the initrd or command line does not fit.
 */
export function layoutLinux(
  image: Uint8Array,
  file: string,
  usableTop: number,
  cmdlineText: string,
  initrd: Uint8Array | null,
  initrdFile = 'initrd',
): LinuxLayout {
  const hdr = parseBzImage(image, file);
  const realBase = 0x10000;
  const cmdlineAddr = 0x20000;
  const kernelAddr = 0x100000;
  const setup = image.slice(0, hdr.setupBytes);
  const kernel = image.subarray(hdr.setupBytes);
  const dv = new DataView(setup.buffer);
  const enc = new TextEncoder().encode(cmdlineText);
  if (enc.length > hdr.cmdlineSize)
    throw new KernelImageError(file, `command line of ${enc.length} bytes exceeds the kernel's limit of ${hdr.cmdlineSize}`);
  const cmdline = new Uint8Array(enc.length + 1);
  cmdline.set(enc);
  if (kernelAddr + kernel.length > usableTop)
    throw new KernelImageError(file, `kernel of ${kernel.length} bytes does not fit in guest memory`);
  let initrdAddr = 0;
  const initrdSize = initrd ? initrd.length : 0;
  if (initrd) {
    const max = Math.min(hdr.initrdAddrMax, usableTop - 1);
    initrdAddr = Math.floor((max + 1 - initrdSize) / 4096) * 4096;
    if (initrdAddr < kernelAddr + kernel.length) {
      throw new KernelImageError(
        initrdFile,
        `initrd of ${initrdSize} bytes does not fit in guest memory below ${hex(max + 1)} (add memory)`,
      );
    }
  }
  setup[0x210] = TYPE_OF_LOADER;
  setup[0x211] = hdr.loadFlags | CAN_USE_HEAP;
  const heapEnd = cmdlineAddr - realBase - 0x200;
  dv.setUint16(0x224, heapEnd, true);
  dv.setUint32(0x228, cmdlineAddr, true);
  dv.setUint32(0x218, initrdAddr, true);
  dv.setUint32(0x21c, initrdSize, true);
  // vid_mode: keep the kernel's default (normally 0xFFFF, "normal").
  return {
    realBase,
    cmdlineAddr,
    kernelAddr,
    initrdAddr,
    initrdSize,
    realSeg: realBase >> 4,
    stackPointer: (heapEnd + 0x200) & 0xffff,
    setup,
    kernel,
    cmdline,
  };
}

function hex(v: number): string {
  return '0x' + v.toString(16);
}
