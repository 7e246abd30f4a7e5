/**
 * Who may talk to the main process: only our own window's main frame, showing the app's origin.
 * Pure (no Electron import) so it is unit-tested in Node.
 */
export const APP_ORIGIN = 'boxwood://app';

export interface SenderFacts {
  /** The message came from the webContents of our window. */
  fromOurWindow: boolean;
  /** ...from its main frame (not an iframe). */
  fromMainFrame: boolean;
  /** The URL that frame shows. */
  frameUrl: string | undefined;
}

/**
 * True for a URL of the app itself. (Not `new URL().origin`: for a custom scheme the WHATWG URL
 * parser gives the opaque origin "null".)
 */
export function isAppUrl(url: string | undefined): boolean {
  if (!url) return false;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}` === APP_ORIGIN;
  } catch {
    return false;
  }
}

export function isTrustedSender(f: SenderFacts): boolean {
  return f.fromOurWindow && f.fromMainFrame && isAppUrl(f.frameUrl);
}
