// Boots a kernel + initrd in v86 (npm package) with Debian's SeaBIOS, copying COM1 to stdout.
// Usage: node v86-runner.mjs KERNEL INITRD CMDLINE MEMORY_MIB
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const [kernel, initrd, cmdline, mem] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const v86dir = dirname(require.resolve('v86'));
const { V86 } = await import(join(v86dir, 'libv86.mjs'));
const buf = (p) => ({ buffer: new Uint8Array(readFileSync(p)).buffer });
const emulator = new V86({
  wasm_path: join(v86dir, 'v86.wasm'),
  memory_size: Number(mem) * 1024 * 1024,
  vga_memory_size: 8 * 1024 * 1024,
  bios: buf('/usr/share/seabios/bios.bin'),
  vga_bios: buf('/usr/share/seabios/vgabios-stdvga.bin'),
  bzimage: buf(kernel),
  initrd: buf(initrd),
  cmdline,
  autostart: true,
  disable_keyboard: true,
  disable_mouse: true,
  disable_speaker: true,
});
emulator.add_listener('serial0-output-byte', (b) => process.stdout.write(Buffer.of(b)));
