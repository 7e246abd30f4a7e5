import type { OsPreset } from './types';

/** Starting points for the wizard; every value stays adjustable. */
export const OS_PRESETS: OsPreset[] = [
  { id: 'linux', label: 'Linux (32-bit)', memoryMiB: 256, cpus: 1, vramMiB: 16, diskGiB: 8 },
  { id: 'linux-small', label: 'Small Linux (busybox, live CD)', memoryMiB: 64, cpus: 1, vramMiB: 8, diskGiB: 1 },
  { id: 'freedos', label: 'FreeDOS / MS-DOS', memoryMiB: 32, cpus: 1, vramMiB: 4, diskGiB: 1 },
  { id: 'windows-9x', label: 'Windows 95/98', memoryMiB: 64, cpus: 1, vramMiB: 8, diskGiB: 2 },
  { id: 'windows-xp', label: 'Windows XP', memoryMiB: 512, cpus: 1, vramMiB: 16, diskGiB: 10 },
  { id: 'bsd', label: 'BSD (32-bit)', memoryMiB: 256, cpus: 1, vramMiB: 16, diskGiB: 8 },
  { id: 'other', label: 'Other / unknown', memoryMiB: 64, cpus: 1, vramMiB: 8, diskGiB: 2 },
];
