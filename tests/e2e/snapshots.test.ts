/**
 * End to end: the snapshot tree view of the web twin, in Debian's Chromium. Takes an offline and
 * a live snapshot of the demo VM, restores the first, deletes the live one, clones the first.
 * Screenshots go to test-results/e2e/.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { CHROMIUM, openWebTwin, vmLogTail, type WebTwin } from './support/web-twin';

const SHOTS = join('test-results', 'e2e');
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

let dir = '';
let twin: WebTwin | null = null;
let page: Page;

async function shot(name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const card = (name: string) => page.getByRole('option').filter({ hasText: name });
const stateIs = (name: string, s: string) => card(name).locator(`[data-state="${s}"]`).waitFor({ timeout: 150_000 });
const row = (name: string) => page.getByTestId('snapshot-row').and(page.locator(`[data-name="${name}"]`));

function vmJson(): { snapshots: { name: string; uuid: string; live: boolean }[]; currentSnapshot: string | null; lastState: string } {
  return JSON.parse(readFileSync(join(dir, 'library', 'Boxwood Demo', 'vm.json'), 'utf8'));
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'boxwood-e2e-snap-'));
  twin = await openWebTwin({ dir, library: join(dir, 'library'), viewport: { width: 1280, height: 1000 }, timeoutMs: 60_000 });
  page = twin.page;
});

after(async () => {
  await twin?.close();
  if (dir && !process.env.BOXWOOD_KEEP_E2E) rmSync(dir, { recursive: true, force: true });
});

async function takeSnapshot(name: string): Promise<void> {
  await page.getByTestId('snapshot-take').click();
  const dialog = page.getByRole('dialog', { name: /Take a snapshot/ });
  await dialog.getByTestId('snapshot-name').fill(name);
  await dialog.getByTestId('snapshot-take-go').click();
  try {
    await row(name).waitFor({ timeout: 150_000 });
  } catch (err) {
    const error = await page.getByRole('alert').allInnerTexts().then((t) => t.join(' | ') || '(no error notice)');
    throw new Error(`snapshot '${name}' did not appear: ${error}\n${vmLogTail(join(dir, 'library'), 'Boxwood Demo')}\nserver: ${twin?.serverLog().slice(-2000)}\n${(err as Error).message}`);
  }
}

/** Restores through the tree; `asks`: the confirmation must appear (the current state has changes). */
async function restore(name: string, asks: boolean): Promise<void> {
  await row(name).click();
  await page.getByTestId('snapshot-restore').click();
  const go = page.getByTestId('snapshot-restore-go');
  if (asks) {
    await go.click();
    return;
  }
  await page.waitForTimeout(500);
  // Without changes since the snapshot there is nothing to lose; if the guest did write, confirm.
  if (await go.isVisible()) await go.click();
}

test('take, restore, delete and clone snapshots through the tree view', { skip, timeout: 600_000 }, async () => {
  await card('Boxwood Demo').click();
  await page.getByRole('heading', { level: 2, name: 'Boxwood Demo' }).waitFor();
  const tree = page.getByTestId('snapshot-tree');
  await tree.waitFor();
  await page.getByTestId('snapshot-current').waitFor();

  // Offline snapshot of the stopped VM.
  await takeSnapshot('Fresh');
  assert.equal(vmJson().snapshots.length, 1);
  assert.equal(vmJson().snapshots[0].live, false);

  // Live snapshot of the running VM: it runs on afterwards.
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  await stateIs('Boxwood Demo', 'running');
  await page.waitForFunction(
    () => /Boxwood demo guest/.test(document.querySelector('[data-testid="screen-text"]')?.textContent ?? ''),
    null,
    {
      timeout: 150_000,
    },
  );
  await takeSnapshot('Running');
  await stateIs('Boxwood Demo', 'running');
  const live = vmJson().snapshots.find((s) => s.name === 'Running');
  assert.ok(live?.live, 'the snapshot of the running VM has its machine state');
  await row('Running').locator('img').waitFor();
  await shot('20-snapshot-tree');

  // Restore needs the VM off; restoring the live one makes it saved.
  await page.getByRole('button', { name: 'Power off' }).click();
  await stateIs('Boxwood Demo', 'stopped');
  await restore('Running', false);
  await stateIs('Boxwood Demo', 'saved');
  assert.equal(vmJson().currentSnapshot, live!.uuid);

  // Restore the offline one: the VM is stopped, the current state sits under 'Fresh'.
  // Now the VM holds a saved state: restoring would lose it, so the user is asked.
  await restore('Fresh', true);
  await stateIs('Boxwood Demo', 'stopped');
  const fresh = vmJson().snapshots.find((s) => s.name === 'Fresh')!;
  assert.equal(vmJson().currentSnapshot, fresh.uuid);
  await page
    .locator('li', { has: row('Fresh') })
    .getByTestId('snapshot-current')
    .waitFor();

  // Delete the live snapshot.
  await row('Running').click();
  await page.getByTestId('snapshot-delete').click();
  await page.getByTestId('snapshot-delete-go').click();
  await row('Running').waitFor({ state: 'detached' });
  assert.deepEqual(
    vmJson().snapshots.map((s) => s.name),
    ['Fresh'],
  );

  // Clone from 'Fresh'.
  await row('Fresh').click();
  await page.getByTestId('snapshot-clone').click();
  const dialog = page.getByRole('dialog', { name: /Clone Boxwood Demo/ });
  await dialog.getByTestId('clone-name').fill('Demo clone');
  await dialog.getByTestId('clone-go').click();
  await card('Demo clone').waitFor();
  assert.ok(existsSync(join(dir, 'library', 'Demo clone', 'vm.json')));
  await shot('21-snapshot-after');
});
