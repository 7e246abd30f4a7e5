/**
 * Electron main process: the desktop shell around the hypervisor. It stays thin on purpose: the
 * hypervisor, API and guest protocol are the same code the web twin runs (and the tests test).
 *
 * Security: sandboxed renderer with contextIsolation and no Node, UI from the boxwood:// scheme
 * with a strict CSP, navigation and new windows refused, permissions refused except pointer lock,
 * IPC only from our window (ipc.ts), every argument validated.
 */
import { app, BrowserWindow, session, shell } from 'electron';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hypervisor } from '../hypervisor/hypervisor';
import { libraryPathFrom } from '../hypervisor/prefs';
import { storageImageCreator } from '../hypervisor/node-host';
import { ElectronGuestSpawner } from './guest-spawner';
import { ElectronPrefsStore } from './prefs';
import { APP_ORIGIN, registerAppScheme, serveRenderer } from './app-protocol';
import { installIpc } from './ipc';
import { isAppUrl } from './sender-check';

const here = dirname(fileURLToPath(import.meta.url));

registerAppScheme();
app.enableSandbox();

let mainWindow: BrowserWindow | null = null;
let hv: Hypervisor | null = null;

/** Where packaged resources live: next to the app when packaged, the repository in development. */
function resourcePath(...parts: string[]): string {
  return app.isPackaged ? join(process.resourcesPath, ...parts) : join(app.getAppPath(), 'resources', ...parts);
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 860,
    minWidth: 900,
    minHeight: 600,
    title: 'Boxwood',
    backgroundColor: '#15181d',
    icon: resourcePath('build', 'icon.png'),
    show: false,
    webPreferences: {
      preload: join(here, '..', 'preload', 'index.cjs'),
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  // The UI never navigates; a link to the outside world opens in the user's browser.
  win.webContents.on('will-navigate', (e, url) => {
    if (!isAppUrl(url)) e.preventDefault();
  });
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('will-attach-webview', (e) => e.preventDefault());
  void win.loadURL(`${APP_ORIGIN}/index.html`);
  win.on('closed', () => {
    if (mainWindow === win) mainWindow = null;
  });
  return win;
}

app.on('web-contents-created', (_e, contents) => {
  contents.on('will-navigate', (e, url) => {
    if (!isAppUrl(url)) e.preventDefault();
  });
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
});

void app.whenReady().then(() => {
  session.defaultSession.setPermissionRequestHandler((_wc, permission, callback) =>
    callback(permission === 'pointerLock' || permission === 'fullscreen'),
  );
  session.defaultSession.setPermissionCheckHandler((_wc, permission) => permission === 'pointerLock' || permission === 'fullscreen');
  serveRenderer(join(here, '..', 'renderer'));

  const prefs = new ElectronPrefsStore();
  hv = new Hypervisor({
    libraryRoot: libraryPathFrom(prefs),
    prefs,
    spawner: new ElectronGuestSpawner(join(here, 'guest.js')),
    createImage: storageImageCreator,
    shell: 'electron',
    demoImage: resourcePath('demo-guest', 'demo-floppy.img'),
  });
  hv.init();
  installIpc(hv, () => mainWindow);
  mainWindow = createWindow();

  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) mainWindow = createWindow();
  });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

app.on('before-quit', () => hv?.shutdown());
