/** App preferences in electron-store, behind the hypervisor's PrefsStore interface. */
import Store from 'electron-store';
import { defaultPrefs, prefsSchema, type Prefs, type PrefsStore } from '../hypervisor/prefs';

export class ElectronPrefsStore implements PrefsStore {
  private readonly store_ = new Store<Prefs>({ name: 'config', defaults: defaultPrefs() });

  get<K extends keyof Prefs>(key: K): Prefs[K] {
    // A hand-edited file with a wrong type falls back to the default for that key.
    const r = prefsSchema.shape[key].safeParse(this.store_.get(key));
    return (r.success ? r.data : defaultPrefs()[key]) as Prefs[K];
  }

  set<K extends keyof Prefs>(key: K, value: Prefs[K]): void {
    this.store_.set(key, prefsSchema.shape[key].parse(value) as Prefs[K]);
  }

  get store(): Prefs {
    const r = prefsSchema.safeParse(this.store_.store);
    return r.success ? r.data : defaultPrefs();
  }
}
