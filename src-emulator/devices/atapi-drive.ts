/**
 * ATAPI CD-ROM on an IDE channel: the PACKET protocol (PIO with the host's byte-count limit, or
 * DMA through the bus master) and the MMC commands Linux's sr/cdrom drivers and boot loaders use:
 * TEST UNIT READY, REQUEST SENSE, INQUIRY, READ CAPACITY, READ(10)/(12), READ TOC (formats 0/1/2,
 * LBA or MSF), MODE SENSE(6/10), GET CONFIGURATION, GET EVENT STATUS NOTIFICATION (media class),
 * START STOP UNIT (eject/load), PREVENT/ALLOW MEDIUM REMOVAL, READ DISC INFORMATION, MECHANISM STATUS,
 * READ CD (user data of data sectors).
 *
 * Media changes follow the SCSI rules: after a disc is inserted the next command other than
 * INQUIRY/REQUEST SENSE/GET EVENT STATUS gets UNIT ATTENTION (6/28h) once; with no disc, media
 * commands fail NOT READY (2/3Ah).
 */
import type { BlockDevice } from '../storage/block-device';
import type { DeviceState } from '../machine/device';
import { ERR_ABRT, IdeDrive, ST_DRDY, ST_ERR } from './ide-controller';
import { finishIdentify, putString } from './ata-drive';

const BLOCK = 2048;

export const SENSE_NONE = 0;
export const SENSE_NOT_READY = 2;
export const SENSE_ILLEGAL_REQUEST = 5;
export const SENSE_UNIT_ATTENTION = 6;

const ASC_INVALID_OPCODE = 0x20;
const ASC_LBA_OUT_OF_RANGE = 0x21;
const ASC_INVALID_FIELD = 0x24;
const ASC_MEDIUM_MAY_HAVE_CHANGED = 0x28;
const ASC_MEDIUM_NOT_PRESENT = 0x3a;
const ASC_MEDIUM_REMOVAL_PREVENTED = 0x53;

/** nsector bits during PACKET phases: CoD (command) and I/O (to host). */
const IR_COD = 1;
const IR_IO = 2;

export class AtapiDrive extends IdeDrive {
  readonly kind = 'atapi';
  private media: BlockDevice | null;
  private senseKey = SENSE_NONE;
  private asc = 0;
  private ascq = 0;
  /** UNIT ATTENTION owed after a media change. */
  private mediaChanged = false;
  /** Media event for GET EVENT STATUS NOTIFICATION: 0 none, 1 eject request, 2 new media, 3 removal. */
  private mediaEvent = 0;
  private locked = false;
  private trayOpen = false;
  /** 'cdb' while receiving the 12-byte packet, 'data' while sending a reply in chunks. */
  private phase: 'idle' | 'cdb' | 'data' = 'idle';
  /** Reply bytes still to send in the data phase (in `reply`), and where we are. */
  private reply: Uint8Array = new Uint8Array(0);
  private replyPos = 0;
  /** Disc read in the data phase: next block and blocks left (streamed, not buffered whole). */
  private readLba = 0;
  private readBlocks = 0;
  private byteLimit = 0xfffe;
  private dmaReq = false;
  private dmaBytes = 0;
  private dmaTotal = 0;
  /** Called when the guest ejects the disc (START STOP UNIT), so the UI can show it. */
  onEject: (() => void) | null = null;

  constructor(
    media: BlockDevice | null,
    readonly model = 'BOXWOOD DVD-ROM',
  ) {
    super();
    this.media = media;
  }

  get hasMedia(): boolean {
    return this.media !== null;
  }

  get medium(): BlockDevice | null {
    return this.media;
  }

  get totalBlocks(): number {
    return this.media ? Math.floor(this.media.size / BLOCK) : 0;
  }

  /** Inserts a disc (or empties the drive with null), as the user changing media does. */
  insertMedia(media: BlockDevice | null): void {
    this.media = media;
    this.trayOpen = false;
    this.mediaChanged = true;
    this.mediaEvent = media ? 2 : 3;
  }

  resetSignature(): void {
    this.cancelPending();
    this.error = 0x01;
    this.nsector = 1;
    this.sector = 1;
    this.lcyl = 0x14;
    this.hcyl = 0xeb;
    this.select = 0xa0 | (this.unit << 4);
    this.status = 0;
    this.phase = 'idle';
    this.pioDir = 0;
    this.dmaDir = 0;
  }

  command(cmd: number): void {
    switch (cmd) {
      case 0xa1:
        return this.identifyPacket();
      case 0xa0: {
        // PACKET: byte count limit in the cylinder registers, DMA in feature bit 0.
        this.dmaReq = (this.feature & 1) !== 0;
        let limit = (this.hcyl << 8) | this.lcyl;
        if (limit === 0 || limit === 0xffff) limit = 0xfffe;
        this.byteLimit = Math.max(2, limit & ~1);
        this.phase = 'cdb';
        this.nsector = IR_COD;
        this.ensureBuffer(12);
        this.startPioOut(12, false);
        return;
      }
      case 0xec:
        // IDENTIFY DEVICE aborts, leaving the packet signature for the host to see.
        this.lcyl = 0x14;
        this.hcyl = 0xeb;
        return this.fail(ERR_ABRT);
      case 0x08: // DEVICE RESET
        this.resetSignature();
        return;
      case 0x90:
        this.resetSignature();
        this.complete(0, true);
        return;
      case 0xef: // SET FEATURES: accept transfer modes
        return this.finish();
      case 0xe5:
      case 0x98:
        this.nsector = 0xff;
        return this.finish();
      case 0xe0:
      case 0xe1:
      case 0xe2:
      case 0xe3:
      case 0xe6:
      case 0xe7:
      case 0x00:
        return cmd === 0x00 ? this.fail(ERR_ABRT) : this.finish();
      default:
        return this.fail(ERR_ABRT);
    }
  }

  protected pioDone(): void {
    if (this.phase === 'cdb') {
      this.phase = 'idle';
      this.executePacket(this.buffer.slice(0, 12));
      return;
    }
    if (this.phase === 'data') this.nextChunk();
  }

  // ---- sense and completion

  private setSense(key: number, asc: number, ascq = 0): void {
    this.senseKey = key;
    this.asc = asc;
    this.ascq = ascq;
  }

  private ok(): void {
    this.setSense(SENSE_NONE, 0);
    this.phase = 'idle';
    this.nsector = IR_IO | IR_COD;
    this.finish();
  }

  private checkCondition(key: number, asc: number, ascq = 0): void {
    this.setSense(key, asc, ascq);
    this.phase = 'idle';
    this.nsector = IR_IO | IR_COD;
    this.pioDir = 0;
    this.dmaDir = 0;
    this.error = key << 4;
    this.complete(ST_DRDY | ST_ERR, true);
  }

  /** Sends `data` (truncated to the CDB's allocation length `alloc`) to the host. */
  private sendReply(data: Uint8Array, alloc: number): void {
    const n = Math.min(data.length, alloc);
    if (n === 0) return this.ok();
    this.readBlocks = 0;
    this.reply = data.subarray(0, n);
    this.replyPos = 0;
    this.beginData(n);
  }

  private beginData(total: number): void {
    this.setSense(SENSE_NONE, 0);
    if (this.dmaReq) {
      this.dmaBytes = 0;
      this.dmaTotal = total;
      this.startDma(1);
      return;
    }
    this.phase = 'data';
    this.nextChunk();
  }

  /** Next PIO chunk of the data phase, at most the byte-count limit; or the final status. */
  private nextChunk(): void {
    let n: number;
    if (this.readBlocks > 0) {
      const blocks = Math.max(1, Math.min(this.readBlocks, Math.floor(this.byteLimit / BLOCK)));
      n = blocks * BLOCK;
      this.ensureBuffer(n);
      if (!this.media) return this.checkCondition(SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT);
      try {
        this.media.read(this.readLba * BLOCK, this.buffer.subarray(0, n));
      } catch {
        return this.checkCondition(3, 0x11); // MEDIUM ERROR, unrecovered read error
      }
      this.readLba += blocks;
      this.readBlocks -= blocks;
    } else if (this.replyPos < this.reply.length) {
      n = Math.min(this.reply.length - this.replyPos, this.byteLimit);
      this.ensureBuffer(n);
      this.buffer.set(this.reply.subarray(this.replyPos, this.replyPos + n));
      this.replyPos += n;
    } else {
      return this.ok();
    }
    this.lcyl = n & 0xff;
    this.hcyl = n >> 8;
    this.nsector = IR_IO;
    this.startPioIn(n);
  }

  // ---- DMA

  dmaRemaining(): number {
    return this.dmaTotal - this.dmaBytes;
  }

  dmaRead(max: number): Uint8Array {
    const n = Math.min(max, this.dmaRemaining(), 1 << 20);
    let out: Uint8Array;
    if (this.readBlocks > 0) {
      out = new Uint8Array(n);
      if (!this.media) return new Uint8Array(0);
      try {
        this.media.read(this.readLba * BLOCK + this.dmaBytes, out);
      } catch {
        return new Uint8Array(0);
      }
    } else {
      out = this.reply.slice(this.dmaBytes, this.dmaBytes + n);
    }
    this.dmaBytes += out.length;
    return out;
  }

  dmaWrite(): boolean {
    return false;
  }

  dmaDone(short: boolean): void {
    this.readBlocks = 0;
    this.reply = new Uint8Array(0);
    if (short && this.dmaRemaining() > 0 && !this.media) return this.checkCondition(SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT);
    this.ok();
  }

  // ---- SCSI/MMC commands

  private executePacket(cdb: Uint8Array): void {
    const op = cdb[0];
    // A pending media change is reported once, except to the commands that must always work.
    if (this.mediaChanged && op !== 0x12 && op !== 0x03 && op !== 0x4a) {
      this.mediaChanged = false;
      if (this.media) return this.checkCondition(SENSE_UNIT_ATTENTION, ASC_MEDIUM_MAY_HAVE_CHANGED);
    }
    const be16 = (o: number) => (cdb[o] << 8) | cdb[o + 1];
    const be32 = (o: number) => ((cdb[o] << 24) | (cdb[o + 1] << 16) | (cdb[o + 2] << 8) | cdb[o + 3]) >>> 0;
    switch (op) {
      case 0x00: // TEST UNIT READY
        if (!this.media) return this.notReady();
        return this.ok();
      case 0x03: {
        // REQUEST SENSE
        const d = new Uint8Array(18);
        d[0] = 0x70;
        d[2] = this.senseKey;
        d[7] = 10;
        d[12] = this.asc;
        d[13] = this.ascq;
        if (this.senseKey === SENSE_UNIT_ATTENTION) this.mediaChanged = false;
        const alloc = cdb[4];
        this.senseKey = SENSE_NONE;
        this.asc = this.ascq = 0;
        return this.sendReply(d, alloc);
      }
      case 0x12: {
        // INQUIRY
        const d = new Uint8Array(36);
        d[0] = 0x05; // CD/DVD
        d[1] = 0x80; // removable
        d[2] = 0x05; // SPC-3
        d[3] = 0x32; // ATAPI, response format 2
        d[4] = 31;
        writeAscii(d, 8, 8, 'BOXWOOD');
        writeAscii(d, 16, 16, this.model);
        writeAscii(d, 32, 4, '1.0');
        return this.sendReply(d, be16(3));
      }
      case 0x1b: {
        // START STOP UNIT
        const loej = (cdb[4] & 2) !== 0;
        const start = (cdb[4] & 1) !== 0;
        if (loej && !start) {
          if (this.locked) return this.checkCondition(SENSE_ILLEGAL_REQUEST, ASC_MEDIUM_REMOVAL_PREVENTED, 2);
          if (this.media) {
            this.media = null;
            this.mediaEvent = 3;
          }
          this.trayOpen = true;
          this.onEject?.();
        } else if (loej && start) {
          this.trayOpen = false;
        }
        return this.ok();
      }
      case 0x1e: // PREVENT ALLOW MEDIUM REMOVAL
        this.locked = (cdb[4] & 1) !== 0;
        return this.ok();
      case 0x25: {
        // READ CAPACITY
        if (!this.media) return this.notReady();
        const d = new Uint8Array(8);
        putBe32(d, 0, this.totalBlocks - 1);
        putBe32(d, 4, BLOCK);
        return this.sendReply(d, 8);
      }
      case 0x28:
      case 0xa8: {
        // READ(10) / READ(12)
        if (!this.media) return this.notReady();
        const lba = be32(2);
        const count = op === 0x28 ? be16(7) : be32(6);
        if (lba + count > this.totalBlocks) return this.checkCondition(SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
        if (count === 0) return this.ok();
        this.reply = new Uint8Array(0);
        this.replyPos = 0;
        this.readLba = lba;
        this.readBlocks = count;
        return this.beginData(count * BLOCK);
      }
      case 0xbe: {
        // READ CD: only the 2048-byte user data of data sectors (what a data disc image holds).
        if (!this.media) return this.notReady();
        const lba = be32(2);
        const count = (cdb[6] << 16) | (cdb[7] << 8) | cdb[8];
        const expectedType = (cdb[1] >> 2) & 7; // 0 any, 2 mode 1
        const fields = cdb[9] & 0xf8;
        if ((expectedType !== 0 && expectedType !== 2) || (fields !== 0x10 && fields !== 0)) {
          return this.checkCondition(SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
        }
        if (lba + count > this.totalBlocks) return this.checkCondition(SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
        if (count === 0 || fields === 0) return this.ok();
        this.reply = new Uint8Array(0);
        this.replyPos = 0;
        this.readLba = lba;
        this.readBlocks = count;
        return this.beginData(count * BLOCK);
      }
      case 0x2b: // SEEK(10)
        if (!this.media) return this.notReady();
        return this.ok();
      case 0x43:
        return this.readToc(cdb);
      case 0x42: {
        // READ SUB-CHANNEL: header only (no audio playing)
        if (!this.media) return this.notReady();
        const d = new Uint8Array(4);
        d[1] = 0x15; // audio status: none
        return this.sendReply(d, be16(7));
      }
      case 0x1a:
      case 0x5a:
        return this.modeSense(cdb, op === 0x5a);
      case 0x46:
        return this.getConfiguration(cdb);
      case 0x4a:
        return this.getEventStatus(cdb);
      case 0x51: {
        // READ DISC INFORMATION: a finalized single-session disc
        if (!this.media) return this.notReady();
        const d = new Uint8Array(34);
        d[1] = 32;
        d[2] = 0x0e; // complete session, finalized disc
        d[3] = 1;
        d[4] = 1;
        d[5] = 1;
        d[6] = 1;
        return this.sendReply(d, be16(7));
      }
      case 0xbd: {
        // MECHANISM STATUS
        const d = new Uint8Array(8);
        d[1] = this.trayOpen ? 0x10 : 0;
        return this.sendReply(d, be16(8));
      }
      case 0xbb: // SET CD SPEED
        return this.ok();
      default:
        return this.checkCondition(SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
    }
  }

  private notReady(): void {
    this.checkCondition(SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT);
  }

  private readToc(cdb: Uint8Array): void {
    if (!this.media) return this.notReady();
    const msf = (cdb[1] & 2) !== 0;
    let format = cdb[2] & 0x0f;
    // SFF-8020 placed the format in the top bits of byte 9.
    if (format === 0 && cdb[9] >> 6) format = cdb[9] >> 6;
    const alloc = (cdb[7] << 8) | cdb[8];
    const startTrack = cdb[6];
    const leadOut = this.totalBlocks;
    const addr = (lba: number, d: Uint8Array, o: number) => {
      if (msf) {
        const [m, s, f] = lbaToMsf(lba);
        d[o] = 0;
        d[o + 1] = m;
        d[o + 2] = s;
        d[o + 3] = f;
      } else putBe32(d, o, lba);
    };
    switch (format) {
      case 0: {
        if (startTrack > 1 && startTrack !== 0xaa) return this.checkCondition(SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
        const tracks = startTrack === 0xaa ? [0xaa] : [1, 0xaa];
        const d = new Uint8Array(4 + tracks.length * 8);
        putBe16(d, 0, d.length - 2);
        d[2] = 1;
        d[3] = 1;
        tracks.forEach((t, i) => {
          const o = 4 + i * 8;
          d[o + 1] = 0x14; // ADR 1, data track
          d[o + 2] = t;
          addr(t === 0xaa ? leadOut : 0, d, o + 4);
        });
        return this.sendReply(d, alloc);
      }
      case 1: {
        // Multi-session info: first session, first track at 0.
        const d = new Uint8Array(12);
        putBe16(d, 0, 10);
        d[2] = 1;
        d[3] = 1;
        d[5] = 0x14;
        d[6] = 1;
        addr(0, d, 8);
        return this.sendReply(d, alloc);
      }
      case 2: {
        // Raw TOC: A0 (first track), A1 (last track), A2 (lead-out), then track 1; always MSF.
        const d = new Uint8Array(4 + 4 * 11);
        putBe16(d, 0, d.length - 2);
        d[2] = 1;
        d[3] = 1;
        const entry = (i: number, point: number, pm: number, ps: number, pf: number) => {
          const o = 4 + i * 11;
          d[o] = 1; // session
          d[o + 1] = 0x14;
          d[o + 3] = point;
          d[o + 8] = pm;
          d[o + 9] = ps;
          d[o + 10] = pf;
        };
        entry(0, 0xa0, 1, 0, 0);
        entry(1, 0xa1, 1, 0, 0);
        const [lm, ls, lf] = lbaToMsf(leadOut);
        entry(2, 0xa2, lm, ls, lf);
        entry(3, 1, 0, 2, 0);
        return this.sendReply(d, alloc);
      }
      default:
        return this.checkCondition(SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
    }
  }

  private modeSense(cdb: Uint8Array, ten: boolean): void {
    const page = cdb[2] & 0x3f;
    const pc = cdb[2] >> 6;
    const alloc = ten ? (cdb[7] << 8) | cdb[8] : cdb[4];
    if (pc === 3) return this.checkCondition(SENSE_ILLEGAL_REQUEST, 0x39); // saving parameters not supported
    const pages: number[] = [];
    if (page === 0x01 || page === 0x3f) {
      // Read/write error recovery
      pages.push(0x01, 0x06, 0x00, 0x05, 0, 0, 0, 0);
    }
    if (page === 0x2a || page === 0x3f) {
      // CD capabilities and mechanical status
      const p = new Array(22).fill(0);
      p[0] = 0x2a;
      p[1] = 20;
      p[2] = 0x3b; // reads CD-R/RW, DVD-ROM...
      p[4] = 0x71; // multisession, mode 2 form 1/2, audio play
      p[5] = 0x7f; // CD-DA commands, C2 pointers, ISRC, UPC...
      p[6] = 0x29 | (this.locked ? 0x02 : 0); // tray loader, eject, lock; current lock state
      p[7] = 0x03; // separate channel volume and mute
      // Maximum and current read speed in kB/s (40x).
      p[8] = (7040 >> 8) & 0xff;
      p[9] = 7040 & 0xff;
      p[10] = 0;
      p[11] = 0xff; // volume levels
      p[12] = 0x02;
      p[13] = 0x00; // buffer 512 KiB
      p[14] = (7040 >> 8) & 0xff;
      p[15] = 7040 & 0xff;
      pages.push(...p);
    }
    if (pages.length === 0) return this.checkCondition(SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
    const headerLen = ten ? 8 : 4;
    const d = new Uint8Array(headerLen + pages.length);
    d.set(pages, headerLen);
    const medium = this.media ? 0x01 : 0x70; // 120 mm data disc / door closed, no disc
    if (ten) {
      putBe16(d, 0, d.length - 2);
      d[2] = medium;
    } else {
      d[0] = d.length - 1;
      d[1] = medium;
    }
    this.sendReply(d, alloc);
  }

  private getConfiguration(cdb: Uint8Array): void {
    const alloc = (cdb[7] << 8) | cdb[8];
    const profile = this.media ? (this.totalBlocks > 368_640 ? 0x0010 : 0x0008) : 0;
    // Header, then Profile List (0000h) with DVD-ROM and CD-ROM, then Core (0001h).
    const features: number[] = [];
    features.push(0x00, 0x00, 0x03, 0x08);
    features.push(0x00, 0x10, profile === 0x0010 ? 1 : 0, 0);
    features.push(0x00, 0x08, profile === 0x0008 ? 1 : 0, 0);
    features.push(0x00, 0x01, 0x0b, 0x04, 0, 0, 0, 2); // Core: ATAPI interface
    const d = new Uint8Array(8 + features.length);
    putBe32(d, 0, d.length - 4);
    putBe16(d, 6, profile);
    d.set(features, 8);
    this.sendReply(d, alloc);
  }

  private getEventStatus(cdb: Uint8Array): void {
    if (!(cdb[1] & 1)) return this.checkCondition(SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD); // only polled mode
    const alloc = (cdb[7] << 8) | cdb[8];
    const wantsMedia = (cdb[4] & 0x10) !== 0;
    if (!wantsMedia) {
      const d = new Uint8Array(4);
      putBe16(d, 0, 2);
      d[2] = 0x80; // NEA: no event available for the requested classes
      d[3] = 0x10;
      return this.sendReply(d, alloc);
    }
    const d = new Uint8Array(8);
    putBe16(d, 0, 6);
    d[2] = 0x04; // media class
    d[3] = 0x10; // supported: media
    d[4] = this.mediaEvent;
    d[5] = (this.media ? 0x02 : 0) | (this.trayOpen ? 0x01 : 0);
    this.mediaEvent = 0;
    this.sendReply(d, alloc);
  }

  private identifyPacket(): void {
    const w = new Uint16Array(256);
    w[0] = 0x85c0; // ATAPI, CD-ROM, removable, accelerated DRQ, 12-byte packets
    putString(w, 10, 20, 'BWCD0001');
    putString(w, 23, 8, '1.0');
    putString(w, 27, 40, this.model);
    w[48] = 1;
    w[49] = 0x0300 | 0x0800 | 0x0400; // DMA, LBA, IORDY
    w[53] = 0x0007;
    w[63] = 0x0007;
    w[64] = 0x0003;
    w[65] = w[66] = w[67] = w[68] = 120;
    w[71] = 30;
    w[72] = 30;
    w[80] = 0x001e; // ATAPI-1..4
    w[82] = 0x4010 | 0x0004; // NOP, PACKET, removable media
    w[83] = 0x4000;
    w[84] = 0x4000;
    w[85] = 0x4010;
    w[86] = 0;
    w[87] = 0x4000;
    w[88] = 0x003f;
    w[93] = 0x4000 | 0x2000 | 0x0001 | (this.unit === 0 ? 0x0008 : 0x0100);
    finishIdentify(w);
    this.buffer.set(new Uint8Array(w.buffer), 0);
    this.phase = 'idle';
    this.startPioIn(512);
  }

  saveDriveState(): DeviceState {
    return {
      senseKey: this.senseKey,
      asc: this.asc,
      ascq: this.ascq,
      mediaChanged: this.mediaChanged,
      mediaEvent: this.mediaEvent,
      locked: this.locked,
      trayOpen: this.trayOpen,
      phase: this.phase,
      reply: this.reply.slice(),
      replyPos: this.replyPos,
      readLba: this.readLba,
      readBlocks: this.readBlocks,
      byteLimit: this.byteLimit,
      dmaReq: this.dmaReq,
      dmaBytes: this.dmaBytes,
      dmaTotal: this.dmaTotal,
      mediaPath: this.media ? this.media.path : null,
    };
  }

  /** Restores the drive's protocol state; the disc itself is whatever the machine attached. */
  loadDriveState(s: DeviceState): void {
    this.senseKey = s.senseKey as number;
    this.asc = s.asc as number;
    this.ascq = s.ascq as number;
    this.mediaChanged = s.mediaChanged as boolean;
    this.mediaEvent = s.mediaEvent as number;
    this.locked = s.locked as boolean;
    this.trayOpen = s.trayOpen as boolean;
    this.phase = s.phase as 'idle' | 'cdb' | 'data';
    this.reply = (s.reply as Uint8Array).slice();
    this.replyPos = s.replyPos as number;
    this.readLba = s.readLba as number;
    this.readBlocks = s.readBlocks as number;
    this.byteLimit = s.byteLimit as number;
    this.dmaReq = s.dmaReq as boolean;
    this.dmaBytes = s.dmaBytes as number;
    this.dmaTotal = s.dmaTotal as number;
    if (s.mediaPath === null) this.media = null;
  }
}

/** LBA to minutes/seconds/frames, with the 2-second (150-frame) lead-in offset. */
export function lbaToMsf(lba: number): [number, number, number] {
  const f = lba + 150;
  return [Math.floor(f / (75 * 60)), Math.floor(f / 75) % 60, f % 75];
}

function putBe16(d: Uint8Array, o: number, v: number): void {
  d[o] = (v >> 8) & 0xff;
  d[o + 1] = v & 0xff;
}

function putBe32(d: Uint8Array, o: number, v: number): void {
  d[o] = (v >>> 24) & 0xff;
  d[o + 1] = (v >>> 16) & 0xff;
  d[o + 2] = (v >>> 8) & 0xff;
  d[o + 3] = v & 0xff;
}

function writeAscii(d: Uint8Array, o: number, len: number, s: string): void {
  const p = s.padEnd(len, ' ').slice(0, len);
  for (let i = 0; i < len; i++) d[o + i] = p.charCodeAt(i);
}
