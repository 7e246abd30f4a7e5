/**
 * Guest process entry: runs exactly one machine for one VM.
 *
 * Started by the hypervisor as an Electron utilityProcess (control over `process.parentPort`,
 * renderer streams arrive as MessagePorts) or as a Node child process (control over Node's IPC
 * channel, the stream over a length-prefixed pipe on fd 4 that the web twin relays). Anything
 * printed on stdout/stderr lands in the VM's log file.
 */
import { createSocket } from './pipe-socket';
import { DisplayStreamer } from './display-stream';
import { ctrlAltDelScancodes, scancodesFor } from './keymap';
import {
  decodeStream,
  encodeStream,
  frameForPipe,
  PipeDeframer,
  StreamType,
  type GuestToHost,
  type HostToGuest,
  type StreamMessage,
} from './protocol';
import type { Machine, MachineState } from '../machine/machine';
import { readFileSync, rmSync } from 'node:fs';
import { deserialize } from 'node:v8';
import { decodeStateFile, thumbnailRgba, writeStateFile } from '../state/state-file';
import { encodePng } from '../display/png';
import type { DiskAttachment, MachineConfig } from '../machine/config';
import { isAbsolute, join } from 'node:path';

/** What Electron's utilityProcess puts on `process`; typed here so the emulator needs no Electron types. */
interface ParentPortLike {
  on(event: 'message', cb: (e: { data: unknown; ports: MessagePortLike[] }) => void): void;
  postMessage(message: unknown): void;
}
interface MessagePortLike {
  on(event: 'message', cb: (e: { data: unknown }) => void): void;
  on(event: 'close', cb: () => void): void;
  postMessage(message: unknown): void;
  start(): void;
}

const FRAME_INTERVAL_MS = 33;

type Sink = (bytes: Uint8Array) => void;
const sinks = new Set<Sink>();
let machine: Machine | null = null;
let paused = false;
let booting = false;
const streamer = new DisplayStreamer();
let frameTimer: ReturnType<typeof setInterval> | null = null;

const parentPort = (process as unknown as { parentPort?: ParentPortLike }).parentPort;

/** Control messages handed to process.send whose write has not completed yet. */
let controlInFlight = 0;

function sendControl(m: GuestToHost): void {
  if (parentPort) parentPort.postMessage(m);
  else if (process.send) {
    controlInFlight++;
    process.send(m, undefined, undefined, () => controlInFlight--);
  }
}

/** A chatty guest (an unhandled port in a loop) must not fill the disk: the log is capped. */
const LOG_LINES_MAX = 20_000;
let logLines = 0;

function log(message: string): void {
  logLines++;
  if (logLines > LOG_LINES_MAX) return;
  const line = logLines === LOG_LINES_MAX ? `log limit of ${LOG_LINES_MAX} lines reached; further messages are dropped` : message;
  process.stdout.write(`${new Date().toISOString()} guest: ${line}\n`);
}

function broadcast(m: StreamMessage): void {
  if (sinks.size === 0) return;
  const bytes = encodeStream(m);
  for (const sink of sinks) sink(bytes);
}

function onStreamBytes(bytes: Uint8Array): void {
  let m: StreamMessage;
  try {
    m = decodeStream(bytes);
  } catch (err) {
    log(`ignored a bad stream message: ${(err as Error).message}`);
    return;
  }
  try {
    deliverInput(m);
  } catch (err) {
    // Input the machine cannot take (say, serial bytes for a VM without that port) is dropped,
    // never fatal to the VM.
    log(`input dropped: ${(err as Error).message}`);
  }
}

function deliverInput(m: StreamMessage): void {
  const mc = machine;
  switch (m.type) {
    case StreamType.Refresh:
      streamer.invalidate();
      pumpDisplay();
      return;
    case StreamType.Key: {
      const codes = scancodesFor(m.code, m.down);
      if (codes && codes.length && mc) mc.keyboard.sendScancodes(codes);
      return;
    }
    case StreamType.Scancodes:
      if (mc) mc.keyboard.sendScancodes(m.bytes);
      return;
    case StreamType.CtrlAltDel:
      if (mc) mc.keyboard.sendScancodes(ctrlAltDelScancodes());
      return;
    case StreamType.Mouse:
      if (mc) mc.mouse.move(m.dx, m.dy, m.buttons, m.wheel);
      return;
    case StreamType.SerialIn:
      if (mc) mc.serialInput(m.port, m.bytes);
      return;
    default:
      log(`ignored stream message of type ${m.type} (guest-to-renderer only)`);
  }
}

function pumpDisplay(): void {
  if (sinks.size === 0) return;
  let messages: StreamMessage[];
  try {
    messages = streamer.poll(machine?.display ?? null, paused);
  } catch (err) {
    log(`display: ${(err as Error).message}`);
    return;
  }
  for (const m of messages) broadcast(m);
}

/**
 * Saved-state file: the versioned, section-based format of src-emulator/state/ (written to a
 * temporary file, fsynced, renamed), with a thumbnail of the screen as an extra section. Files of
 * the first format (a magic line, then V8 serialization) are still read.
 */
const SAVED_STATE_MAGIC_V1 = Buffer.from('BOXWOOD-SAVED-STATE v1\n');

function readSavedState(path: string): MachineState {
  const data = readFileSync(path);
  if (data.subarray(0, SAVED_STATE_MAGIC_V1.length).equals(SAVED_STATE_MAGIC_V1)) {
    return deserialize(data.subarray(SAVED_STATE_MAGIC_V1.length)) as MachineState;
  }
  return decodeStateFile(path, data).state;
}

function screenThumbnail(m: Machine): Record<string, Uint8Array> {
  try {
    const frame = m.display?.renderRgba();
    if (!frame || !frame.width || !frame.height) return {};
    return { thumbnail: encodePng(thumbnailRgba(frame)) };
  } catch (err) {
    log(`no thumbnail: ${(err as Error).message}`);
    return {};
  }
}

async function saveAndExit(path: string): Promise<void> {
  const m = machine;
  if (!m) return fail('save failed', new Error('no machine is running'));
  try {
    m.pause();
    paused = true;
    // Let the run loop leave its slice so the state is taken between instructions.
    for (let i = 0; i < 200 && m.state === 'running'; i++) await new Promise((r) => setTimeout(r, 10));
    const bytes = writeStateFile(path, m.saveState(), screenThumbnail(m));
    log(`saved the machine state to ${path} (${bytes} bytes)`);
    // Powering off flushes and closes the disks, so they match the saved state.
    m.stop();
    sendControl({ type: 'saved' });
    exitSoon(0);
  } catch (err) {
    fail('save failed', err);
  }
}

/** Disk paths in vm.json are relative to the VM folder, so a copied folder is a working VM. */
function resolveConfig(config: MachineConfig, vmDir: string): MachineConfig {
  const disks: DiskAttachment[] = config.disks.map((d) => ({
    ...d,
    path: d.path === null || isAbsolute(d.path) ? d.path : join(vmDir, d.path),
  }));
  return { ...config, disks };
}

function exitSoon(code: number): void {
  if (frameTimer) clearInterval(frameTimer);
  exitCode = Math.max(exitCode, code);
  if (exiting) return;
  exiting = true;
  // process.exit drops IPC messages still queued in this process: a 'saved' lost that way turns a
  // good save into an abort. Wait until the last control message is written (at most 5 s), and
  // let log lines flush.
  const started = Date.now();
  const tryExit = () => {
    if (controlInFlight > 0 && Date.now() - started < 5000) setTimeout(tryExit, 20);
    else process.exit(exitCode);
  };
  setTimeout(tryExit, 50);
}
let exiting = false;
/** A failure reported after a clean exit was scheduled still makes the exit code non-zero. */
let exitCode = 0;

async function boot(vmId: string, vmDir: string, config: MachineConfig, restorePath?: string): Promise<void> {
  if (machine || booting) {
    log('boot ignored: a machine already runs in this process');
    return;
  }
  booting = true;
  log(`booting VM ${vmId} from ${vmDir}: ${config.memoryMiB} MiB, boot order ${config.bootOrder.join(',')}`);
  try {
    const { Machine } = await import('../machine/machine');
    const m = await Machine.create(resolveConfig(config, vmDir), { log });
    machine = m;
    m.on('serial', (port, bytes) => broadcast({ type: StreamType.Serial, port, bytes }));
    m.on('reset', () => {
      log('machine reset');
      streamer.invalidate();
    });
    m.on('poweroff', () => {
      log('machine powered off');
      sendControl({ type: 'poweroff', reason: 'the guest turned the machine off' });
      exitSoon(0);
    });
    m.on('shutdown', (reason) => {
      log(`machine stopped: ${reason}`);
      sendControl({ type: 'poweroff', reason });
      exitSoon(0);
    });
    if (restorePath) {
      log(`restoring the saved state ${restorePath}`);
      m.loadState(readSavedState(restorePath));
      // Running on from the saved state changes the disks: that state cannot be used again.
      rmSync(restorePath, { force: true });
    }
    frameTimer = setInterval(pumpDisplay, FRAME_INTERVAL_MS);
    sendControl({ type: 'booted', restored: !!restorePath });
    run(m);
  } catch (err) {
    fail('boot failed', err);
  }
}

/** Runs (or resumes) the machine; an error in the run loop ends this VM, reported as such. */
function run(m: Machine): void {
  m.start().catch((err) => fail('machine stopped on an error', err));
}

function fail(what: string, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  log(`${what}: ${e.stack ?? e.message}`);
  sendControl({ type: 'error', message: e.message });
  exitSoon(1);
}

function onControl(raw: unknown, ports: MessagePortLike[] = []): void {
  const m = raw as HostToGuest;
  if (typeof m !== 'object' || m === null || typeof m.type !== 'string') {
    log('ignored a malformed control message');
    return;
  }
  switch (m.type) {
    case 'boot':
      void boot(m.vmId, m.vmDir, m.config, m.restorePath);
      return;
    case 'save':
      void saveAndExit(m.path);
      return;
    case 'pause':
      machine?.pause();
      paused = true;
      pumpDisplay();
      sendControl({ type: 'paused' });
      return;
    case 'resume':
      paused = false;
      if (machine) run(machine);
      pumpDisplay();
      sendControl({ type: 'resumed' });
      return;
    case 'reset':
      machine?.reset();
      streamer.invalidate();
      return;
    case 'power-button':
      machine?.pressPowerButton();
      return;
    case 'power-off':
      log('power off requested by the hypervisor');
      machine?.stop();
      sendControl({ type: 'poweroff', reason: 'powered off' });
      exitSoon(0);
      return;
    case 'attach-stream':
      for (const port of ports) attachPort(port);
      return;
    default:
      log(`ignored unknown control message ${(m as { type: string }).type}`);
  }
}

function attachPort(port: MessagePortLike): void {
  const sink: Sink = (bytes) => port.postMessage(bytes);
  sinks.add(sink);
  port.on('message', (e) => {
    const d = e.data;
    if (d instanceof Uint8Array) onStreamBytes(d);
    else if (d instanceof ArrayBuffer) onStreamBytes(new Uint8Array(d));
  });
  port.on('close', () => sinks.delete(sink));
  port.start();
  streamer.invalidate();
}

function attachPipe(): void {
  const socket = createSocket(4);
  if (!socket) return;
  const deframer = new PipeDeframer(onStreamBytes);
  socket.on('data', (chunk: Buffer) => {
    try {
      deframer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (err) {
      log(`stream pipe: ${(err as Error).message}; closing it`);
      socket.destroy();
    }
  });
  socket.on('error', () => {});
  // The relay (web twin) multiplexes viewers on its side; one sink here. Nobody may be reading
  // (no viewer yet): past a limit, screen updates are dropped rather than queued in memory, and
  // the whole screen is sent again once the pipe drains. Serial bytes are kept up to a larger cap.
  let missedScreen = false;
  socket.on('drain', () => {
    if (!missedScreen) return;
    missedScreen = false;
    streamer.invalidate();
  });
  sinks.add((bytes) => {
    const queued = socket.writableLength;
    const isScreen = bytes[0] === StreamType.Frame || bytes[0] === StreamType.Text || bytes[0] === StreamType.Status;
    if (isScreen && queued > PIPE_SCREEN_LIMIT) {
      missedScreen = true;
      return;
    }
    if (queued > PIPE_HARD_LIMIT) return;
    socket.write(frameForPipe(bytes));
  });
}

const PIPE_SCREEN_LIMIT = 4 * 1024 * 1024;
const PIPE_HARD_LIMIT = 32 * 1024 * 1024;

process.on('uncaughtException', (err) => fail('uncaught exception', err));
process.on('unhandledRejection', (err) => fail('unhandled rejection', err));

if (parentPort) {
  parentPort.on('message', (e) => onControl(e.data, e.ports));
} else if (process.send) {
  process.on('message', (m) => onControl(m));
  process.on('disconnect', () => {
    // The hypervisor went away: nobody can see or stop this machine any more.
    log('hypervisor disconnected; exiting');
    exitSoon(0);
  });
  attachPipe();
} else {
  process.stderr.write('boxwood guest: start me through the hypervisor (no IPC channel)\n');
  process.exit(2);
}
sendControl({ type: 'ready', pid: process.pid });
