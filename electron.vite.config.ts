// electron-vite builds the desktop app into out/: the main process (with the guest-process entry
// beside it, for utilityProcess.fork), the sandboxed preload (CommonJS, as sandboxed preloads must
// be), and the Svelte renderer (the same bundle the web twin serves).
import { defineConfig } from 'electron-vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  main: {
    build: {
      outDir: join(root, 'out', 'main'),
      rollupOptions: {
        input: {
          index: join(root, 'src-main', 'electron', 'main.ts'),
          guest: join(root, 'src-emulator', 'guest', 'main.ts'),
        },
        output: { format: 'es', entryFileNames: '[name].js' },
      },
    },
  },
  preload: {
    build: {
      outDir: join(root, 'out', 'preload'),
      externalizeDeps: false,
      rollupOptions: {
        input: { index: join(root, 'src-main', 'electron', 'preload.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: join(root, 'src-renderer'),
    base: './',
    plugins: [svelte()],
    build: {
      outDir: join(root, 'out', 'renderer'),
      target: 'chrome120',
      rollupOptions: { input: join(root, 'src-renderer', 'index.html') },
    },
  },
});
