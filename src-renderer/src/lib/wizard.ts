import type { MediaProbeResult } from '../../../src-main/api/types';

/** What the drop zone hands the wizard when a VM is made from a dropped image. */
export interface WizardPrefill {
  name?: string;
  isoPath?: string;
  existingDiskPath?: string;
  floppyPath?: string;
}

export function prefillFromProbe(p: MediaProbeResult, fileName: string): WizardPrefill {
  const name = fileName.replace(/\.[^.]+$/, '').slice(0, 60) || 'New VM';
  if (p.kind === 'cdrom') return { name, isoPath: p.path };
  if (p.kind === 'floppy') return { name, floppyPath: p.path };
  return { name, existingDiskPath: p.path };
}

export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
