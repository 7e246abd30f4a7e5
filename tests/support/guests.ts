/**
 * Where the real guests built by `npm run guests` live, and how a test asks for one. A test that
 * needs a guest fails (never skips) when it is missing, and says how to build it: CI runs
 * `npm run guests` first, so a missing guest there is a real failure.
 */
import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function guestCacheDir(): string {
  return process.env.BOXWOOD_GUEST_CACHE ? resolve(process.env.BOXWOOD_GUEST_CACHE) : join(repoRoot, '.cache', 'guests');
}

export type GuestArtifact = 'vmlinuz-686' | 'initramfs.cpio.gz' | 'linux.iso' | 'linux-hd.img';

/** Path of a built i386 guest artifact; throws with the remedy when it has not been built. */
export function requireGuest(name: GuestArtifact, arch = 'i386'): string {
  const p = join(guestCacheDir(), arch, name);
  if (!existsSync(p)) {
    throw new Error(`real guest '${arch}/${name}' is missing at ${p}: run 'npm run guests' (it fetches Debian's packages and builds it)`);
  }
  return p;
}

/** The shared 80286 real-mode vectors; throws when ../shared is absent. */
export function sharedTestdata(...parts: string[]): string {
  const p = join(repoRoot, '..', 'shared', 'testdata', ...parts);
  if (!existsSync(p)) throw new Error(`shared test data missing at ${p}: the repository expects ../shared beside it`);
  return p;
}
