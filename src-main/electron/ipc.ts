/**
 * The main-process end of the preload bridge. Every message must come from our own window's main
 * frame on the app origin, and every argument is validated (api/schemas.ts) before use.
 */
import { ipcMain, MessageChannelMain, type BrowserWindow, type IpcMainEvent, type IpcMainInvokeEvent } from 'electron';
import type { Hypervisor } from '../hypervisor/hypervisor';
import { createApiHandler } from '../api/handler';
import { vmIdSchema } from '../api/schemas';
import type { ApiEvent } from '../api/types';
import { isTrustedSender } from './sender-check';
import { ElectronGuestProcess } from './guest-spawner';

export const IPC = {
  invoke: 'boxwood:invoke',
  event: 'boxwood:event',
  openStream: 'boxwood:open-stream',
  stream: 'boxwood:stream',
} as const;

export function installIpc(hv: Hypervisor, getWindow: () => BrowserWindow | null): void {
  const handler = createApiHandler(hv);

  const trusted = (e: IpcMainEvent | IpcMainInvokeEvent): boolean => {
    const win = getWindow();
    const frame = e.senderFrame;
    return isTrustedSender({
      fromOurWindow: !!win && e.sender === win.webContents,
      fromMainFrame: !!win && !!frame && frame === win.webContents.mainFrame,
      frameUrl: frame?.url,
    });
  };

  ipcMain.handle(IPC.invoke, async (e, method: unknown, params: unknown) => {
    if (!trusted(e)) throw new Error('refused: not the Boxwood window');
    return handler(method, params);
  });

  ipcMain.on(IPC.openStream, (e, vmId: unknown) => {
    if (!trusted(e)) return;
    const id = vmIdSchema.safeParse(vmId);
    if (!id.success) return;
    const guest = hv.guestOf(id.data);
    if (!(guest instanceof ElectronGuestProcess)) return;
    const { port1, port2 } = new MessageChannelMain();
    guest.attachPort(port1);
    e.sender.postMessage(IPC.stream, { vmId: id.data }, [port2]);
  });

  let pending: ReturnType<typeof setTimeout> | null = null;
  hv.on('changed', () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      const event: ApiEvent = { type: 'vms-changed', vms: hv.list() };
      getWindow()?.webContents.send(IPC.event, event);
    }, 30);
  });
}
