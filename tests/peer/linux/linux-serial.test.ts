/**
 * Real guests: Debian's i386 kernel (linux-image-686) with a busybox-static initramfs, booted by
 * Boxwood from the command line exactly as a user would run it. Built by `npm run guests`; a missing
 * guest fails the test with the remedy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { requireGuest } from '../../support/guests';
import { startCli, runCli } from '../../support/run-cli';
import { BOOT_MS } from '../../support/linux';


async function shellRoundTrip(args: string[]): Promise<void> {
  const s = startCli(args);
  try {
    await s.waitFor('BOXWOOD-INIT-OK', BOOT_MS);
    const at = s.stdout().length;
    await s.waitFor('boxwood# ', 120_000, at - 20);
    // The marker text only appears when the shell really evaluated the arithmetic.
    s.type('echo "answer=$((6*7))"; uname -m\n');
    const out = await s.waitFor(/answer=42\s+i686/, 120_000, at);
    assert.match(out, /answer=42/);
  } finally {
    s.kill();
  }
}

test('Debian 686 kernel + busybox initramfs boots to a shell on the serial console', { timeout: BOOT_MS + 300_000 }, async () => {
  await shellRoundTrip(['run', '--memory', '256', '--kernel', requireGuest('vmlinuz-686'), '--initrd', requireGuest('initramfs.cpio.gz'),
    '--append', 'console=ttyS0 cryptomgr.notests', '--serial', 'stdio', '--timeout', String(BOOT_MS / 1000)]);
});

test('bad input: one clear line naming the file and the fault, non-zero exit', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxwood-bad-'));
  const notKernel = join(dir, 'notes.txt');
  writeFileSync(notKernel, 'this is not a kernel\n'.repeat(100));
  const isoNoBoot = join(dir, 'plain.iso');
  // 17 sectors of zeros and a primary volume descriptor, but no El Torito boot record.
  const iso = Buffer.alloc(20 * 2048);
  iso[16 * 2048] = 1;
  iso.write('CD001', 16 * 2048 + 1, 'latin1');
  iso[16 * 2048 + 6] = 1;
  iso[17 * 2048] = 255;
  iso.write('CD001', 17 * 2048 + 1, 'latin1');
  writeFileSync(isoNoBoot, iso);
  const blankDisk = join(dir, 'blank.img');
  writeFileSync(blankDisk, Buffer.alloc(1 << 20));
  const cases: [string[], RegExp][] = [
    [['--kernel', notKernel], /notes\.txt.*(bzImage|kernel)/i],
    [['--kernel', join(dir, 'missing-vmlinuz')], /missing-vmlinuz.*(no such file|not found|does not exist|missing)/i],
    [['--cdrom', isoNoBoot, '--boot', 'd'], /plain\.iso.*(boot|El Torito)/i],
    [['--hda', blankDisk, '--boot', 'c'], /blank\.img.*(boot|partition|signature)/i],
  ];
  for (const [args, expected] of cases) {
    const r = await runCli(['run', '--memory', '32', ...args, '--serial', 'none', '--timeout', '20'], 60_000);
    assert.notEqual(r.code, 0, `boxwood run ${args.join(' ')} should fail`);
    assert.match(r.stderr, expected, `stderr for ${args.join(' ')}: ${r.stderr}`);
  }
});
