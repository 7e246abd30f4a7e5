/**
 * Wiring of the hypervisor for plain Node (web twin, CLI, tests): JSON prefs, child-process
 * guests, the storage module's image creation, and the demo guest from resources/.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Hypervisor } from './hypervisor';
import { NodeGuestSpawner } from './guest-process';
import { JsonPrefsStore, libraryPathFrom, type PrefsStore } from './prefs';
import type { ImageCreator } from './library';

const here = dirname(fileURLToPath(import.meta.url));
export const RESOURCES_DIR = join(here, '..', '..', 'resources');
export const DEMO_IMAGE = join(RESOURCES_DIR, 'demo-guest', 'demo-floppy.img');

/** Dynamic disks come from src-emulator/storage (qcow2). */
export const storageImageCreator: ImageCreator = async (path, format, sizeBytes) => {
  const { createImage } = await import('../../src-emulator/storage/open');
  createImage(path, format, sizeBytes);
};

export interface NodeHypervisorOptions {
  libraryRoot?: string;
  prefs?: PrefsStore;
  configDir?: string;
  shell?: 'electron' | 'web';
  withDemo?: boolean;
}

export function createNodeHypervisor(o: NodeHypervisorOptions = {}): Hypervisor {
  const prefs = o.prefs ?? new JsonPrefsStore(o.configDir);
  const hv = new Hypervisor({
    libraryRoot: o.libraryRoot ?? libraryPathFrom(prefs),
    prefs,
    spawner: new NodeGuestSpawner(),
    createImage: storageImageCreator,
    shell: o.shell ?? 'web',
    demoImage: o.withDemo === false ? undefined : DEMO_IMAGE,
  });
  hv.init();
  return hv;
}
