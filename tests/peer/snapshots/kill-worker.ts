/**
 * Child process of the kill test: runs one snapshot operation on a VM folder and says when it
 * starts ('ready', after the imports) and ends ('done'). The parent SIGKILLs it at a random moment.
 *   kill-worker.ts FOLDER take NAME | restore KEY | delete KEY | clone KEY|- NEWNAME full|linked
 */
import { writeFileSync } from 'node:fs';
import { VmSnapshots } from '../../../src-main/hypervisor/snapshots/vm-snapshots';

const [folder, op, a, b, c] = process.argv.slice(2);
const s = new VmSnapshots(folder);
// The parent can aim a kill at a given step (e.g. just after a merge's journal is written).
s.step = (what) => process.stdout.write(`step ${what}\n`);
process.stdout.write('ready\n');
switch (op) {
  case 'take':
    s.take(a, { writeState: (p) => writeFileSync(p, Buffer.alloc(2 * 1024 * 1024, 7)), thumbnail: new Uint8Array(1000) });
    break;
  case 'restore':
    s.restore(a);
    break;
  case 'delete':
    s.delete(a);
    break;
  case 'clone':
    s.clone(a === '-' ? null : a, b, { linked: c === 'linked' });
    break;
  default:
    throw new Error(`unknown op ${op}`);
}
process.stdout.write('done\n');
