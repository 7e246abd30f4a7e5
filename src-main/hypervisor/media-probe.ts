/**
 * Recognises disk images and CD/DVD images by their content, never by their name: the magic
 * numbers of the container formats, the ISO 9660 volume descriptor, an MBR boot signature, or a
 * floppy-sized image with a boot sector. A file that is none of these is refused.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { DiskKind } from '../../src-emulator/machine/config';

export interface MediaProbe {
  path: string;
  /** How a VM would attach it. */
  kind: DiskKind;
  /** Container format: raw, iso, qcow2, vdi, vmdk, vhd, vhdx. */
  format: string;
  sizeBytes: number;
  /** A human description: "ISO 9660 CD/DVD image", ... */
  description: string;
}

export class NotAnImageError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'NotAnImageError';
  }
}

const FLOPPY_SIZES = new Set([163840, 184320, 327680, 368640, 737280, 1228800, 1474560, 1720320, 2949120]);

function ascii(b: Uint8Array, off: number, len: number): string {
  return String.fromCharCode(...b.subarray(off, off + len));
}

export function probeMedia(path: string): MediaProbe {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new NotAnImageError(path, `cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NotAnImageError(path, 'is not a regular file');
    const size = st.size;
    const read = (off: number, len: number): Uint8Array => {
      const b = new Uint8Array(len);
      const n = off + len <= size ? readSync(fd, b, 0, len, off) : 0;
      return b.subarray(0, n);
    };
    const head = read(0, Math.min(1024, size));
    const found = (kind: DiskKind, format: string, description: string): MediaProbe => ({
      path,
      kind,
      format,
      sizeBytes: size,
      description,
    });
    if (head.length >= 4 && ascii(head, 0, 4) === 'QFI\xfb') return found('disk', 'qcow2', 'QEMU qcow2 disk image');
    if (head.length >= 0x44 && new DataView(head.buffer).getUint32(0x40, true) === 0xbeda107f)
      return found('disk', 'vdi', 'VirtualBox VDI disk image');
    if (head.length >= 4 && (ascii(head, 0, 4) === 'KDMV' || ascii(head, 0, 4) === 'COWD'))
      return found('disk', 'vmdk', 'VMware VMDK disk image');
    if (head.length >= 8 && ascii(head, 0, 8) === 'vhdxfile') return found('disk', 'vhdx', 'Hyper-V VHDX disk image');
    if (head.length >= 8 && ascii(head, 0, 8) === 'conectix') return found('disk', 'vhd', 'Virtual PC VHD disk image');
    if (size < 1024 * 1024 && /#\s*Disk DescriptorFile/i.test(new TextDecoder('latin1').decode(head)))
      return found('disk', 'vmdk', 'VMware VMDK descriptor');
    if (size >= 512 && ascii(read(size - 512, 8), 0, 8) === 'conectix') return found('disk', 'vhd', 'Virtual PC VHD disk image (fixed)');
    if (size >= 0x8800 && ascii(read(0x8001, 5), 0, 5) === 'CD001') return found('cdrom', 'iso', 'ISO 9660 CD/DVD image');
    const bootSig = head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa;
    if (FLOPPY_SIZES.has(size) && bootSig) return found('floppy', 'raw', 'bootable floppy image');
    if (FLOPPY_SIZES.has(size) && head.length >= 512 && (head[0] === 0xeb || head[0] === 0xe9))
      return found('floppy', 'raw', 'floppy image (FAT)');
    if (bootSig && size % 512 === 0) return found('disk', 'raw', 'raw disk image with a partition table or boot sector');
    throw new NotAnImageError(
      path,
      'is not a disk image or ISO that Boxwood recognises (no qcow2/VDI/VMDK/VHD/VHDX header, no ISO 9660 volume, no boot sector)',
    );
  } finally {
    closeSync(fd);
  }
}
