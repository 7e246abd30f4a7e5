import { DiskError } from './block-device';
import type { DiskImage } from './disk-image';
import type { HostFile } from './host-file';
import type { CreateOptions, OpenContext } from './open';

/** Placeholder while the vhd format lands: opening or creating says so clearly. */
export class VhdImage {
  static open(file: HostFile, _ctx?: OpenContext): DiskImage {
    throw new DiskError(file.path, 'vhd images are not supported yet');
  }
  static create(path: string, _size: number, _opts: CreateOptions): void {
    throw new DiskError(path, 'creating vhd images is not supported yet');
  }
}
