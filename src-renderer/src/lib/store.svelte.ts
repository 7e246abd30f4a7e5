/** App-wide state: the VM list (kept fresh by API events), the host, the selection, notices. */
import { api } from './api';
import { liveHub } from './live.svelte';
import type { HostInfo, VmListEntry, VmState } from '../../../src-main/api/types';

export interface Notice {
  id: number;
  kind: 'info' | 'error';
  text: string;
}

const LIVE: VmState[] = ['starting', 'running', 'paused', 'saving'];

class AppState {
  vms = $state<VmListEntry[]>([]);
  host = $state<HostInfo | null>(null);
  selectedId = $state<string | null>(null);
  notices = $state<Notice[]>([]);
  loadError = $state<string | null>(null);
  /** False while the web UI has lost its server. */
  connected = $state(true);
  private nextNotice = 1;

  /** The wizard's label for an OS type id. */
  osLabel(id: string): string {
    return this.host?.presets.find((p) => p.id === id)?.label ?? id;
  }

  get selected(): VmListEntry | null {
    return this.vms.find((v) => v.id === this.selectedId) ?? null;
  }

  setVms(vms: VmListEntry[]): void {
    this.vms = vms;
    if (this.selectedId && !vms.some((v) => v.id === this.selectedId)) this.selectedId = null;
    if (!this.selectedId && vms.length) this.selectedId = vms[0].id;
    liveHub.sync(vms.filter((v) => v.ok && LIVE.includes(v.state)).map((v) => v.id));
  }

  async load(): Promise<void> {
    try {
      api.onEvent((e) => {
        if (e.type === 'vms-changed') this.setVms(e.vms);
      });
      api.onConnection((up) => {
        this.connected = up;
        // Back after a drop: whatever happened meanwhile is in a fresh list.
        if (up) void this.refresh().catch(() => {});
      });
      this.host = await api.hostInfo();
      this.setVms(await api.listVms());
      this.loadError = null;
    } catch (err) {
      this.loadError = (err as Error).message;
    }
  }

  async refresh(): Promise<void> {
    this.setVms(await api.listVms());
  }

  notify(kind: Notice['kind'], text: string): void {
    const n = { id: this.nextNotice++, kind, text };
    this.notices = [...this.notices, n];
    if (kind === 'info') setTimeout(() => this.dismiss(n.id), 6000);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }

  /** Runs an API call, turning a failure into an error notice. */
  async attempt<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      this.notify('error', `${what}: ${(err as Error).message}`);
      return undefined;
    }
  }
}

export const app = new AppState();
export const isLive = (s: VmState): boolean => LIVE.includes(s);
