/**
 * Boot device checks shared by the built-in BIOS's INT 19h and the CLI's up-front validation:
 * an MBR needs the 0x55AA signature and boot code, a CD needs an El Torito boot entry.
 */
import type { BlockDevice } from '../storage/block-device';
import { readElTorito } from './disk';

/** null when `dev` looks bootable as a hard disk / floppy, else the reason it is not. */
export function mbrBootProblem(dev: BlockDevice, kind: 'disk' | 'floppy'): string | null {
  if (dev.size < 512) return 'image is smaller than one sector';
  const s = new Uint8Array(512);
  dev.read(0, s);
  if (s[510] !== 0x55 || s[511] !== 0xaa) {
    if (kind === 'floppy' && (s[0] === 0xeb || s[0] === 0xe9)) return null;
    return kind === 'disk'
      ? 'no boot signature (0x55AA) in the MBR: no bootable partition or boot loader'
      : 'no boot signature (0x55AA) in the boot sector';
  }
  let code = 0;
  for (let i = 0; i < 440; i++) code |= s[i];
  if (code === 0) return 'the MBR has a partition table but no boot code';
  return null;
}

export function cdBootProblem(dev: BlockDevice): string | null {
  const r = readElTorito(dev);
  return typeof r === 'string' ? r : null;
}
