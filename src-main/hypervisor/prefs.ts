/**
 * App preferences. In Electron they live in electron-store; in plain Node (web twin, CLI, tests)
 * in a small JSON file of the same shape and the same `get/set/store` surface, written atomically.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './atomic-write';

export const prefsSchema = z.object({
  /** Folder holding VM folders; null means the default (`~/Boxwood VMs`). */
  libraryPath: z.string().min(1).nullable().default(null),
  /** VM folders added from elsewhere ("Add existing VM"). */
  extraVmFolders: z.array(z.string().min(1)).default([]),
});
export type Prefs = z.infer<typeof prefsSchema>;

export function defaultPrefs(): Prefs {
  return prefsSchema.parse({});
}

/** The part of electron-store's API the hypervisor uses. */
export interface PrefsStore {
  get<K extends keyof Prefs>(key: K): Prefs[K];
  set<K extends keyof Prefs>(key: K, value: Prefs[K]): void;
  readonly store: Prefs;
}

/** `~/.config/boxwood` (XDG), or BOXWOOD_CONFIG_DIR. */
export function defaultConfigDir(): string {
  if (process.env.BOXWOOD_CONFIG_DIR) return process.env.BOXWOOD_CONFIG_DIR;
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'boxwood');
  if (process.platform === 'win32') return join(process.env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'boxwood');
  return join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'boxwood');
}

export class JsonPrefsStore implements PrefsStore {
  readonly path: string;
  private data: Prefs;
  /** Set when the file existed but could not be used; it is then not overwritten. */
  readonly loadError: string | null = null;

  constructor(dir = defaultConfigDir()) {
    this.path = join(dir, 'config.json');
    this.data = defaultPrefs();
    if (existsSync(this.path)) {
      try {
        this.data = prefsSchema.parse(JSON.parse(readFileSync(this.path, 'utf8')));
      } catch (err) {
        this.loadError = `${this.path}: unreadable preferences, using defaults (${(err as Error).message.split('\n')[0]})`;
      }
    }
  }

  get<K extends keyof Prefs>(key: K): Prefs[K] {
    return this.data[key];
  }

  set<K extends keyof Prefs>(key: K, value: Prefs[K]): void {
    this.data = prefsSchema.parse({ ...this.data, [key]: value });
    if (this.loadError) return; // never replace a file we could not read with our defaults
    mkdirSync(join(this.path, '..'), { recursive: true });
    writeFileAtomic(this.path, JSON.stringify(this.data, null, 2) + '\n');
  }

  get store(): Prefs {
    return structuredClone(this.data);
  }
}

/** The library folder: BOXWOOD_LIBRARY (tests), then the preference, then `~/Boxwood VMs`. */
export function libraryPathFrom(prefs: PrefsStore): string {
  return process.env.BOXWOOD_LIBRARY || prefs.get('libraryPath') || join(homedir(), 'Boxwood VMs');
}
