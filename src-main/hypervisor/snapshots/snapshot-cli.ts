/**
 * `boxwood vm snapshot|clone|savestate`: the snapshot tree from the command line, through the same
 * SnapshotService as the UI.
 *
 * A VM started with `boxwood vm start` runs inside that CLI process; `savestate` (and a live
 * snapshot of such a VM) reaches it through a session file in the VM folder naming that process,
 * which saves the state when it receives SIGUSR2 and exits once the VM is 'saved'.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hypervisor } from '../hypervisor';
import type { VmListEntry } from '../../api/types';
import { snapshotServiceOf, type SnapshotItem } from './snapshot-service';

export const SNAPSHOT_USAGE = `  snapshot NAME|ID take SNAP [--live] [--description TEXT]
                                take a snapshot (--live keeps the machine state; a running VM needs it)
  snapshot NAME|ID list         the snapshot tree ('*' marks where the current state is)
  snapshot NAME|ID restore SNAP [--discard-changes] | delete SNAP | rename SNAP NEW | describe SNAP TEXT
  clone NAME|ID --name NEW [--snapshot SNAP] [--linked]
                                full (or linked) clone from a snapshot or the current state
  savestate NAME|ID             save the machine state of a VM running in 'boxwood vm start'
  stop NAME|ID                  power off a VM running in 'boxwood vm start'
`;

export const SESSION_FILE = 'logs/cli-session.pid';

/** Marks a VM folder as run by this CLI process and saves its state on SIGUSR2. */
export function registerCliSession(hv: Hypervisor, vm: { id: string; folder: string }): () => void {
  const file = join(vm.folder, SESSION_FILE);
  writeFileSync(file, String(process.pid));
  const onSave = () => {
    try {
      process.stderr.write('\nboxwood: saving the machine state\n');
      hv.control(vm.id, 'save-state');
    } catch (err) {
      process.stderr.write(`boxwood: cannot save: ${(err as Error).message}\n`);
    }
  };
  process.on('SIGUSR2', onSave);
  return () => {
    process.off('SIGUSR2', onSave);
    rmSync(file, { force: true });
  };
}

function sessionPid(folder: string): number | null {
  const file = join(folder, SESSION_FILE);
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8'));
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/** Asks the CLI process running a VM to save its state; resolves when vm.json says 'saved'. */
async function saveRemote(hv: Hypervisor, vm: VmListEntry & { ok: true }): Promise<void> {
  const pid = sessionPid(vm.folder);
  if (pid === null) throw new Error(`'${vm.name}' is not running in a 'boxwood vm start' process`);
  process.kill(pid, 'SIGUSR2');
  const end = Date.now() + 120_000;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    hv.reloadState(vm.id);
    const s = hv.summary(vm.id).state;
    if (s === 'saved' && sessionPid(vm.folder) === null) return;
    if (s === 'aborted' && sessionPid(vm.folder) === null) throw new Error(`saving failed: ${hv.summary(vm.id).lastError}`);
  }
  throw new Error('the VM did not save its state within 120 s');
}

function take(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

function flag(args: string[], name: string): boolean {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

function printTree(items: SnapshotItem[], depth = 0): void {
  for (const s of items) {
    const when = s.createdAt.replace('T', ' ').slice(0, 19);
    process.stdout.write(
      `${'  '.repeat(depth)}${s.isCurrent ? '*' : '-'} ${s.name}  (${s.uuid.slice(0, 8)}, ${when}${s.live ? ', live' : ''})${s.description ? `  ${s.description.split('\n')[0]}` : ''}\n`,
    );
    printTree(s.children, depth + 1);
  }
}

export async function snapshotCommand(hv: Hypervisor, vm: VmListEntry, args: string[]): Promise<number> {
  if (!vm.ok) throw new Error(vm.error);
  const svc = snapshotServiceOf(hv);
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list': {
      const l = svc.list(vm.id);
      if (!l.snapshots.length) process.stdout.write('(no snapshots)\n');
      printTree(l.snapshots);
      return 0;
    }
    case 'take': {
      const live = flag(rest, '--live');
      const description = take(rest, '--description') ?? '';
      const name = rest.join(' ');
      if (!name) throw new Error('take needs a snapshot NAME');
      let state = hv.summary(vm.id).state;
      if (sessionPid(vm.folder) !== null) {
        // Running in another CLI process: save there, then snapshot the saved VM (live).
        if (!live) throw new Error(`'${vm.name}' is running: use --live, or power it off first`);
        await saveRemote(hv, vm);
        state = 'saved';
      }
      if (live && state === 'stopped') throw new Error(`'${vm.name}' is off: there is no machine state for a live snapshot`);
      const r = await svc.take(vm.id, name, description, live);
      process.stdout.write(`snapshot '${name}' taken (${r.uuid})${state === 'saved' ? ' with the machine state' : ''}\n`);
      return 0;
    }
    case 'restore':
    case 'delete': {
      const discard = flag(rest, '--discard-changes');
      const key = rest.join(' ');
      if (!key) throw new Error(`${sub} needs a snapshot NAME or uuid`);
      if (sub === 'restore') {
        // As the UI asks first, the CLI refuses to drop changes unless told to.
        if (!discard && svc.list(vm.id).currentChanged) {
          throw new Error(
            `'${vm.name}' has changes since its last snapshot (disk writes or a saved state) that restoring would lose; take a snapshot first, or pass --discard-changes`,
          );
        }
        svc.restore(vm.id, key);
      } else await svc.delete(vm.id, key);
      process.stdout.write(`snapshot '${key}' ${sub === 'restore' ? 'restored' : 'deleted'}\n`);
      return 0;
    }
    case 'rename':
      if (rest.length !== 2) throw new Error('rename needs SNAP and NEW');
      svc.rename(vm.id, rest[0], rest[1]);
      return 0;
    case 'describe':
      if (rest.length < 1) throw new Error('describe needs SNAP and TEXT');
      svc.describe(vm.id, rest[0], rest.slice(1).join(' '));
      return 0;
    default:
      throw new Error(`unknown snapshot command '${sub ?? ''}' (take, list, restore, delete, rename, describe)`);
  }
}

export async function cloneCommand(hv: Hypervisor, find: (key: string) => VmListEntry, args: string[]): Promise<number> {
  const name = take(args, '--name');
  const snap = take(args, '--snapshot') ?? null;
  const linked = flag(args, '--linked');
  const vm = find(args.join(' '));
  if (!vm.ok) throw new Error(vm.error);
  if (!name) throw new Error('clone needs --name NEW');
  const c = await snapshotServiceOf(hv).clone(vm.id, snap, name, linked);
  process.stdout.write(`cloned '${vm.name}' into '${c.name}' (${c.id}) in ${c.folder}${linked ? ' (linked)' : ''}\n`);
  return 0;
}

export async function saveStateCommand(hv: Hypervisor, vm: VmListEntry): Promise<number> {
  if (!vm.ok) throw new Error(vm.error);
  await saveRemote(hv, vm);
  process.stdout.write(`'${vm.name}' saved; 'boxwood vm start' resumes it\n`);
  return 0;
}

/** Powers off a VM running in another `boxwood vm start` process (it handles SIGTERM so). */
export async function stopCommand(hv: Hypervisor, vm: VmListEntry): Promise<number> {
  if (!vm.ok) throw new Error(vm.error);
  const pid = sessionPid(vm.folder);
  if (pid === null) throw new Error(`'${vm.name}' is not running in a 'boxwood vm start' process`);
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + 60_000;
  while (sessionPid(vm.folder) !== null) {
    if (Date.now() > end) throw new Error('the VM did not power off within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  hv.reloadState(vm.id);
  process.stdout.write(`'${vm.name}' is ${hv.summary(vm.id).state}\n`);
  return 0;
}
