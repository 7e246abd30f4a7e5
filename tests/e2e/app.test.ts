/**
 * End to end: the web twin with a temporary library, driven in Debian's Chromium as a person would.
 * Screenshots go to test-results/e2e/.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { CHROMIUM, openWebTwin, vmLogTail, type WebTwin } from './support/web-twin';

const SHOTS = join('test-results', 'e2e');
const hasChromium = existsSync(CHROMIUM);
// An ISO maker: xorriso (what .ci/run installs) or genisoimage.
const isoMaker: string[] | null =
  spawnSync('xorriso', ['-version']).status === 0
    ? ['xorriso', '-as', 'mkisofs']
    : spawnSync('genisoimage', ['-version']).status === 0
      ? ['genisoimage']
      : null;
const skip = !hasChromium
  ? `${CHROMIUM} is not installed (apt-get install chromium)`
  : !isoMaker
    ? 'no ISO maker (apt-get install xorriso)'
    : false;

let dir = '';
let twin: WebTwin | null = null;
let server: ChildProcess | null = null;
let page: Page;

async function shot(name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

function vmCard(name: string) {
  return page.getByRole('option').filter({ hasText: name });
}

/** Every control in this part of the page has an accessible name (per Chromium's accessibility tree). */
async function assertAllNamed(where: ReturnType<Page['locator']>): Promise<void> {
  const snap = await where.ariaSnapshot();
  const unnamed = snap
    .split('\n')
    .filter((l) => /^\s*- (button|slider|textbox|combobox|radio|checkbox|option|application|listbox)\b(?! ")/.test(l));
  assert.deepEqual(unnamed, [], `controls without a name:\n${snap}`);
}

async function select(name: string): Promise<void> {
  await vmCard(name).click();
  await page.getByRole('heading', { level: 2, name }).waitFor();
}

function state(name: string) {
  return vmCard(name).locator('[data-state]');
}

async function vmId(name: string): Promise<string> {
  const id = await vmCard(name).getAttribute('data-vm-id');
  assert.ok(id);
  return id;
}

/**
 * Waits for a VM to reach `wanted`; on a timeout the failure carries what the card shows and the
 * VM's newest log, so a CI failure says why the machine did not get there.
 */
async function waitForState(name: string, wanted: string, timeout = 60_000): Promise<void> {
  try {
    await state(name).and(page.locator(`[data-state="${wanted}"]`)).waitFor({ timeout });
  } catch (err) {
    const now = await state(name).getAttribute('data-state').catch(() => '?');
    throw new Error(`'${name}' did not become ${wanted} within ${timeout / 1000} s (it is ${now})\n${vmLogTail(join(dir, 'library'), name)}\nserver: ${twin?.serverLog().slice(-2000)}\n${(err as Error).message}`);
  }
}

/** The guest process of a VM, found by the argument the hypervisor gives it. */
function guestPid(id: string): number | null {
  const r = spawnSync('pgrep', ['-f', '--', `--boxwood-vm=${id}`], { encoding: 'utf8' });
  const pids = r.stdout.split('\n').filter(Boolean).map(Number);
  return pids.length ? pids[0] : null;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'boxwood-e2e-'));
  const lib = join(dir, 'library');
  // A VM folder whose vm.json is truncated: it must show as an error, the rest usable.
  mkdirSync(join(lib, 'Broken VM'), { recursive: true });
  writeFileSync(join(lib, 'Broken VM', 'vm.json'), '{"formatVersion": 1, "uuid": "0b');
  twin = await openWebTwin({ dir, library: lib, viewport: { width: 1280, height: 900 }, timeoutMs: 45_000 });
  ({ server, page } = twin);
});

after(async () => {
  await twin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the library lists the demo VM and shows a broken vm.json as an error for that VM only', { skip, timeout: 60_000 }, async () => {
  await vmCard('Boxwood Demo').waitFor();
  assert.doesNotMatch(page.url(), /token=/, 'the token leaves the address bar once it is a cookie');
  await assert.doesNotReject(state('Boxwood Demo').waitFor());
  assert.equal(await state('Boxwood Demo').getAttribute('data-state'), 'stopped');
  await vmCard('Broken VM').click();
  const err = page.getByTestId('vm-error');
  await err.waitFor();
  assert.match(await err.innerText(), /vm\.json: is not valid JSON/);
  await shot('01-broken-vm');
  // the rest stays usable
  await select('Boxwood Demo');
  assert.match(await page.getByTestId('vm-media').innerText(), /Floppy: disks\/demo-floppy\.img/);
  // and the broken file was left as it was
  assert.equal(readFileSync(join(dir, 'library', 'Broken VM', 'vm.json'), 'utf8'), '{"formatVersion": 1, "uuid": "0b');
});

test('create a VM with the wizard', { skip, timeout: 60_000 }, async () => {
  await page.getByRole('button', { name: 'New VM…' }).click();
  const dialog = page.getByRole('dialog', { name: 'New virtual machine' });
  await dialog.waitFor();
  await dialog.getByLabel('Name').fill('Wizard VM');
  await dialog.getByLabel('Type').selectOption('freedos');
  // sliders are bounded by the host
  const mem = dialog.getByRole('slider', { name: /^Memory/ });
  const max = Number(await mem.getAttribute('max'));
  assert.ok(max > 0 && max <= 3584);
  await assertAllNamed(dialog);
  await mem.fill('32');
  assert.equal(await dialog.locator('output').first().innerText(), '32 MiB');
  // the processor slider is bounded by the host's cores, and warns at all of them
  const cpus = dialog.getByRole('slider', { name: /^Processors/ });
  const cores = Number(await cpus.getAttribute('max'));
  assert.ok(cores >= 1);
  if (cores > 1) {
    await cpus.fill(String(cores));
    await dialog.getByText(/every core of this host/).waitFor();
    await dialog.getByText(/emulates one processor for now/).waitFor();
    await cpus.fill('1');
  }
  await shot('02-wizard');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.getByRole('heading', { level: 2, name: 'Wizard VM' }).waitFor();
  const media = await page.getByTestId('vm-media').innerText();
  assert.match(media, /Hard disk: disks\/Wizard VM\.qcow2/);
  const qcow = readFileSync(join(dir, 'library', 'Wizard VM', 'disks', 'Wizard VM.qcow2')).subarray(0, 4);
  assert.equal(qcow.toString('latin1'), 'QFI\xfb');
  await shot('03-created');
});

/** A real (tiny) ISO 9660 image, made with xorriso or genisoimage. */
function makeIso(): Buffer {
  const src = join(dir, 'iso-src');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'README.TXT'), 'a tiny live CD\n');
  const out = join(dir, 'tiny.iso');
  const [cmd, ...pre] = isoMaker!;
  const r = spawnSync(cmd, [...pre, '-quiet', '-V', 'TINY', '-o', out, src], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd}: ${r.stderr ?? r.error}`);
  return readFileSync(out);
}

/** Dispatches a real drop of a File (made in the page from these bytes) on the window. */
async function dropFile(name: string, content: Buffer): Promise<void> {
  await page.evaluate(
    ({ name, b64 }) => {
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([data as BlobPart], name, { type: 'application/octet-stream' }));
      const target = document.querySelector('main') ?? document.body;
      for (const type of ['dragenter', 'dragover', 'drop']) {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    },
    { name, b64: content.toString('base64') },
  );
}

test('drop an ISO on the window and attach it; a non-image is refused', { skip, timeout: 60_000 }, async () => {
  await select('Wizard VM');
  await dropFile('tiny-live.iso', makeIso());
  const offer = page.getByRole('dialog', { name: 'Use this image' });
  await offer.waitFor();
  assert.match(await offer.getByTestId('drop-offer').innerText(), /tiny-live\.iso is a ISO 9660 CD\/DVD image/);
  await shot('04-drop-offer');
  await offer.getByRole('button', { name: 'Attach to Wizard VM' }).click();
  await offer.waitFor({ state: 'hidden' });
  await page
    .getByTestId('vm-media')
    .getByText(/CD\/DVD: .*tiny-live\.iso/)
    .waitFor();

  await dropFile('notes.iso', Buffer.from('these are my notes, not a CD'));
  const alert = page.getByRole('alert').filter({ hasText: 'Refused notes.iso' });
  await alert.waitFor();
  assert.match(await alert.innerText(), /not a disk image or ISO that Boxwood recognises/);
  await shot('05-drop-refused');
  await alert.getByRole('button', { name: 'Dismiss' }).click();
});

test(
  'start the demo VM, watch its screen and serial console, type into it, pause, resume, save and restore',
  { skip, timeout: 420_000 },
  async () => {
    await select('Boxwood Demo');
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForFunction(
      () => document.querySelector('[aria-selected="true"] [data-state]')?.getAttribute('data-state') === 'running',
      null,
      { timeout: 150_000 },
    );
    const screenText = page.getByTestId('screen-text');
    await page.waitForFunction(
      () => /Boxwood demo guest/.test(document.querySelector('[data-testid="screen-text"]')?.textContent ?? ''),
      null,
      { timeout: 150_000 },
    );
    const console_ = page.getByTestId('serial-console');
    const consoleShows = (text: string) =>
      page.waitForFunction(
        (t) => (document.querySelector('[data-testid="serial-console"] .xterm-rows')?.textContent ?? '').includes(t),
        text,
        { timeout: 60_000 },
      );
    await consoleShows('hello from COM1');
    await shot('06-demo-text');

    // the uptime counter in the corner keeps changing the screen
    const before = await screenText.textContent();
    await page.waitForFunction((b) => document.querySelector('[data-testid="screen-text"]')?.textContent !== b, before, {
      timeout: 60_000,
    });

    // keyboard: capture, type, see it echoed on the screen and on the serial port
    await page.getByRole('application', { name: /Screen of Boxwood Demo/ }).click();
    await page.getByTestId('capture-state').getByText('Right Ctrl').waitFor();
    await page.keyboard.type('hi there', { delay: 30 });
    await page.waitForFunction(() => /> hi there/.test(document.querySelector('[data-testid="screen-text"]')?.textContent ?? ''), null, {
      timeout: 60_000,
    });
    await consoleShows('hi there');
    await page.keyboard.press('ControlRight');
    await page.getByTestId('capture-state').getByText('Click the screen').waitFor();

    // serial input goes the other way
    await console_.click();
    await page.keyboard.type('via serial', { delay: 20 });
    await page.waitForFunction(() => /via serial/.test(document.querySelector('[data-testid="screen-text"]')?.textContent ?? ''), null, {
      timeout: 60_000,
    });
    await shot('07-demo-typed');

    // graphics mode: F2 draws in mode 13h
    await page.getByRole('application', { name: /Screen of Boxwood Demo/ }).click();
    await page.keyboard.press('F2');
    await page.waitForFunction(
      () => document.querySelector('[data-testid="screen-mode"]')?.getAttribute('data-mode') === 'graphics',
      null,
      { timeout: 60_000 },
    );
    await consoleShows('[graphics mode 13h drawn]');
    // the picture: colour bands around a black box with a white frame. A function, not a
    // string: a string predicate is eval'd in the page, which the UI's CSP rightly forbids.
    await page.waitForFunction(
      () => {
        const c = document.querySelector<HTMLCanvasElement>('[role="application"] canvas');
        if (!c || c.width !== 320 || c.height !== 200) return false;
        const ctx = c.getContext('2d');
        if (!ctx) return false;
        const centre = ctx.getImageData(160, 100, 1, 1).data;
        const frame = ctx.getImageData(160, 60, 1, 1).data;
        const band = ctx.getImageData(10, 190, 1, 1).data;
        return centre[0] + centre[1] + centre[2] === 0 && frame[0] > 200 && frame[1] > 200 && band[0] + band[1] + band[2] > 0;
      },
      null,
      { timeout: 60_000 },
    );
    await shot('08-demo-graphics');
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.querySelector('[data-testid="screen-mode"]')?.getAttribute('data-mode') === 'text', null, {
      timeout: 60_000,
    });
    await page.keyboard.press('ControlRight');

    await page.getByRole('button', { name: 'Pause' }).click();
    await waitForState('Boxwood Demo', 'paused');
    await shot('09-paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await waitForState('Boxwood Demo', 'running');

    // save the state, then carry on from it: what was typed is still on the screen
    await page.getByRole('application', { name: /Screen of Boxwood Demo/ }).click();
    await page.keyboard.type('kept', { delay: 30 });
    await page.waitForFunction(() => /> kept/.test(document.querySelector('[data-testid="screen-text"]')?.textContent ?? ''), null, {
      timeout: 60_000,
    });
    await page.keyboard.press('ControlRight');
    await page.getByRole('button', { name: 'Save state' }).click();
    await waitForState('Boxwood Demo', 'saved', 60_000);
    await shot('10-saved');
    await page.getByRole('button', { name: 'Start (restore saved state)' }).click();
    await waitForState('Boxwood Demo', 'running', 60_000);
    await page.waitForFunction(() => /> kept/.test(document.querySelector('[data-testid="screen-text"]')?.textContent ?? ''), null, {
      timeout: 60_000,
    });
  },
);

test('isolation: killing one guest process aborts that VM with its log; another VM keeps running', { skip, timeout: 300_000 }, async () => {
  // make sure both run (the demo may already)
  for (const name of ['Boxwood Demo', 'Wizard VM']) {
    if ((await state(name).getAttribute('data-state')) !== 'running') {
      await select(name);
      await page.getByRole('button', { name: 'Start' }).click();
      await waitForState(name, 'running', 150_000);
    }
  }
  const demoId = await vmId('Boxwood Demo');
  const pid = guestPid(demoId);
  assert.ok(pid, 'the demo VM has a guest process');
  const otherPid = guestPid(await vmId('Wizard VM'));
  assert.ok(otherPid && otherPid !== pid);
  process.kill(pid, 'SIGKILL');
  await waitForState('Boxwood Demo', 'aborted', 60_000);
  await select('Boxwood Demo');
  const notice = page.getByTestId('aborted-notice');
  await notice.waitFor();
  assert.match(await notice.innerText(), /aborted/i);
  assert.match(await notice.innerText(), /SIGKILL/);
  await notice.getByRole('button', { name: 'Show log' }).click();
  assert.match(await notice.getByRole('textbox', { name: 'VM log' }).inputValue(), /VM aborted/);
  await shot('11-aborted');
  // the other VM did not notice
  assert.equal(await state('Wizard VM').getAttribute('data-state'), 'running');
  assert.equal(guestPid(await vmId('Wizard VM')), otherPid);
});

test('power off', { skip, timeout: 60_000 }, async () => {
  await select('Wizard VM');
  await page.getByRole('button', { name: 'Power off' }).click();
  await waitForState('Wizard VM', 'stopped', 60_000);
  await page.getByTestId('vm-off').waitFor();
  assert.equal(guestPid(await vmId('Wizard VM')), null);
  await page.getByRole('button', { name: 'Log…' }).click();
  const log = page.getByRole('dialog', { name: 'Log of Wizard VM' });
  await page.waitForFunction(() =>
    /hypervisor: power off/.test((document.querySelector('dialog[open] textarea') as HTMLTextAreaElement | null)?.value ?? ''),
  );
  await shot('12-powered-off');
  await log.getByRole('button', { name: 'Close' }).click();
});

test('change settings, detach media, delete a VM', { skip, timeout: 60_000 }, async () => {
  await select('Wizard VM');
  await page.getByRole('button', { name: 'Settings…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Settings of Wizard VM' });
  await dialog.getByRole('slider', { name: 'Memory', exact: true }).fill('48');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.getByText('48 MiB', { exact: true }).waitFor();
  await page.getByRole('button', { name: /^Detach CD\/DVD/ }).click();
  await page
    .getByTestId('vm-media')
    .getByText(/tiny-live\.iso/)
    .waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Remove…' }).click();
  await page.getByRole('dialog', { name: 'Remove Wizard VM' }).getByRole('button', { name: 'Delete VM and its files' }).click();
  await vmCard('Wizard VM').waitFor({ state: 'detached' });
  assert.ok(!existsSync(join(dir, 'library', 'Wizard VM')));
});

test('from the keyboard alone: create a VM from a dropped ISO with the wizard', { skip, timeout: 60_000 }, async () => {
  await dropFile('live-cd.iso', makeIso());
  const offer = page.getByRole('dialog', { name: 'Use this image' });
  await offer.waitFor();
  // the offer's buttons are reachable with Tab; Enter presses the focused one
  const create = offer.getByRole('button', { name: 'Create a VM from it…' });
  for (let i = 0; i < 6 && !(await create.evaluate((el) => el === document.activeElement)); i++) await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  const wizard = page.getByRole('dialog', { name: 'New virtual machine' });
  await wizard.waitFor();
  assert.equal(await wizard.getByLabel('Name').inputValue(), 'live-cd');
  assert.match(await wizard.getByRole('textbox', { name: 'CD/DVD image (ISO)', exact: true }).inputValue(), /live-cd\.iso$/);
  await wizard.getByLabel('Name').focus();
  await page.keyboard.press('End');
  await page.keyboard.type(' VM');
  await page.keyboard.press('Enter'); // submits the form
  await wizard.waitFor({ state: 'hidden' });
  await page.getByRole('heading', { level: 2, name: 'live-cd VM' }).waitFor();
  assert.match(await page.getByTestId('vm-media').innerText(), /CD\/DVD: .*live-cd\.iso/);
  // the library list moves with the arrow keys
  await vmCard('live-cd VM').focus();
  await page.keyboard.press('ArrowUp');
  const selected = page.locator('[role="option"][aria-selected="true"]');
  assert.notEqual(await selected.getAttribute('data-vm-id'), await vmId('live-cd VM'));
  await shot('13-keyboard');
});

test('the wizard can set up a direct kernel boot', { skip, timeout: 60_000 }, async () => {
  const kernel = join(dir, 'vmlinuz-test');
  writeFileSync(kernel, 'not really a kernel, only its path matters here');
  await page.getByRole('button', { name: 'New VM…' }).click();
  const wizard = page.getByRole('dialog', { name: 'New virtual machine' });
  await wizard.getByLabel('Name').fill('Kernel VM');
  await wizard.getByRole('radio', { name: 'No hard disk' }).check();
  await wizard.getByText('Advanced: boot a Linux kernel directly').click();
  await wizard.getByLabel('Kernel (bzImage)').fill(kernel);
  await wizard.getByRole('button', { name: 'Create' }).click();
  await wizard.waitFor({ state: 'hidden' });
  await page.getByTestId('vm-media').getByText(`Kernel (direct boot): ${kernel}`).waitFor();
  const vmJson = JSON.parse(readFileSync(join(dir, 'library', 'Kernel VM', 'vm.json'), 'utf8'));
  assert.deepEqual(vmJson.machine.kernel, { kernelPath: kernel, cmdline: 'console=ttyS0' });
});

test('when the server goes away, the web UI says so', { skip, timeout: 60_000 }, async () => {
  server!.kill('SIGTERM');
  await page.getByRole('alert').filter({ hasText: 'Lost the connection to the Boxwood server' }).waitFor({ timeout: 60_000 });
  await shot('14-connection-lost');
});
