/**
 * The XREAD side of a {@link RedisStreamsIO}: this endpoint's reply inbox
 * (every IO reads it) and, for a serving broadcast peer, the request stream.
 * XREAD consumes nothing, so no queue room is held while a read blocks:
 * entries beyond the room left are simply read again next time.
 *
 * @module
 */
import type { Redis } from 'ioredis';
import { debugLog } from '../debug-log.js';
import type { RedisConnection } from './connection.js';
import { Control, controlWordOf, MAX_MESSAGES_PER_ENTRY, parseReadReply, type ParsedEntry, type RawEntry } from './entries.js';
import { READ_BATCH } from './group-consumer.js';
import { streamTime, type Inbound } from './inbound.js';

/** Entries are taken whole once there is room: see {@link Inbound.acceptWhileRoom}. */
const ENTRY_SLACK = MAX_MESSAGES_PER_ENTRY - 1;

/** How far back (ms) a new endpoint reads the control stream: `bye`s of callers gone this recently still count. */
export const CONTROL_LOOKBACK_MS = 10 * 60_000;

/** Entries the control stream keeps (`MAXLEN ~`): one `bye` per caller destroyed. */
export const CONTROL_MAXLEN = 1000;

/** Inbox entries read between two trims of the inbox. */
const TRIM_EVERY = 1000;

/** What the readers need from their IO. */
export interface StreamReadersHost {
  readonly cmd: RedisConnection;
  readonly inbound: Inbound;
  /** The request stream's key. */
  readonly stream: string;
  /** This endpoint's inbox key. */
  readonly inboxKey: string;
  /** The control stream (`bye` announcements), read beside the inbox. */
  readonly controlKey: string;
  /** This endpoint's session id: broadcast readers skip their own requests. */
  readonly sessionId: string;
  readonly blockTimeout: number;
  reportBackground(error: unknown): void;
}

/** Read positions and blocking reads of the inbox and the broadcast request stream. */
export class StreamReaders {
  /** The next inbox read returns entries after this id: the inbox's `open` entry, then the last entry taken. */
  inboxPosition = '0-0';
  /** The next request-stream read returns entries after this id (broadcast). */
  streamPosition = '0-0';
  /**
   * The next control-stream read returns entries after this id. It starts
   * {@link CONTROL_LOOKBACK_MS} back, so a worker started after a caller went
   * away still skips that caller's queued requests.
   */
  controlPosition = `${Date.now() - CONTROL_LOOKBACK_MS}-0`;
  private readonly startedAt = Date.now();
  private inboxReadSinceTrim = 0;

  constructor(private readonly host: StreamReadersHost) {}

  /** One blocking XREAD of this endpoint's inbox. */
  async readInboxOnce(reader: RedisConnection): Promise<void> {
    const { inbound, inboxKey, controlKey, blockTimeout } = this.host;
    await inbound.waitForRoom('reply');
    if (inbound.closed) return;
    // One blocking read of both streams (they share a hash tag): announcements cost no connection.
    const reply = await (reader as Redis).xread('COUNT', READ_BATCH, 'BLOCK', blockTimeout, 'STREAMS', inboxKey, controlKey, this.inboxPosition, this.controlPosition);
    const streams = parseReadReply(reply);
    this.acceptControl(streams.get(controlKey));
    const entries = streams.get(inboxKey);
    if (debugLog.read.enabled && entries !== undefined) debugLog.read('%s XREAD: %d entries', inboxKey, entries.length);
    const last = inbound.acceptWhileRoom(inboxKey, entries, 'reply', (e) => this.acceptReply(e));
    if (last === undefined) return;
    this.inboxPosition = last;
    this.inboxReadSinceTrim += entries?.length ?? 0;
    if (this.inboxReadSinceTrim >= TRIM_EVERY) this.trimInbox().catch((err: unknown) => this.host.reportBackground(err));
  }

  /** One blocking XREAD of the request stream, for a serving broadcast peer. */
  async readBroadcastOnce(reader: RedisConnection): Promise<void> {
    const { inbound, stream, blockTimeout } = this.host;
    await inbound.waitForRoom('request');
    if (inbound.closed) return;
    const reply = await (reader as Redis).xread('COUNT', READ_BATCH, 'BLOCK', blockTimeout, 'STREAMS', stream, this.streamPosition);
    const entries = parseReadReply(reply).get(stream);
    if (debugLog.read.enabled && entries !== undefined) debugLog.read('%s XREAD: %d entries', stream, entries.length);
    this.streamPosition = inbound.acceptWhileRoom(stream, entries, 'request', (e) => this.acceptBroadcast(e)) ?? this.streamPosition;
  }

  /** Drops inbox entries already read: MINID keeps the inbox of a long-lived caller short. */
  async trimInbox(): Promise<void> {
    this.inboxReadSinceTrim = 0;
    const removed = await this.host.cmd.xtrim(this.host.inboxKey, 'MINID', '~', this.inboxPosition);
    if (removed > 0) debugLog.trim('%s trimmed %d entries (MINID ~ %s)', this.host.inboxKey, removed, this.inboxPosition);
  }

  /** Announcements of the control stream: taken whatever the queue's room (nothing is queued). */
  private acceptControl(entries: readonly RawEntry[] | undefined): void {
    const { inbound, controlKey, sessionId } = this.host;
    for (const raw of entries ?? []) {
      this.controlPosition = raw.id;
      // Announcements of serving peers concern serving peers only: an endpoint that serves nothing
      // neither verifies nor reports them (a signing mismatch shows on its answers already).
      if (inbound.onServe === undefined && controlWordOf(raw) === Control.Serve) continue;
      const entry = inbound.parse(controlKey, raw);
      // History read back at start (CONTROL_LOOKBACK_MS) is skipped quietly when refused: after
      // a key rotation the byes signed with the retired key are not news to every new endpoint.
      // `<=`: an entry stamped in the millisecond this endpoint started may have been written
      // before it (a peer's `bye` just ahead of it: the key-rotation test met that race).
      if (entry.type === 'refused' && streamTime(raw.id) <= this.startedAt) continue;
      if (entry.type === 'malformed') inbound.reportMalformed(entry);
      else if (entry.type === 'refused') inbound.reportRefused(entry);
      else if (entry.type === 'data') inbound.reportMalformed({ type: 'malformed', id: entry.id, reason: 'messages on the control stream' });
      // Its own `serve` tells the mode watch where live announcements start; its own `bye` is not news.
      else if (entry.control !== Control.Bye || entry.from !== sessionId) inbound.control(entry);
    }
  }

  private acceptBroadcast(entry: ParsedEntry): void {
    const { inbound } = this.host;
    if (entry.type === 'malformed') return inbound.reportMalformed(entry);
    if (entry.type === 'refused') return inbound.reportRefused(entry);
    if (entry.from === this.host.sessionId) return;
    if (entry.type === 'control') {
      if (entry.control === Control.Bye) inbound.control(entry);
      return;
    }
    const live = inbound.withoutAbandoned(entry);
    if (live === undefined) return;
    for (const data of live.data) inbound.push({ data, from: entry.from, id: entry.id, lane: 'request' }, ENTRY_SLACK);
  }

  private acceptReply(entry: ParsedEntry): void {
    const { inbound } = this.host;
    if (entry.type === 'malformed') return inbound.reportMalformed(entry);
    if (entry.type === 'refused') return inbound.reportRefused(entry);
    if (entry.type === 'control') return;
    for (const data of entry.data) inbound.push({ data, from: entry.from, id: entry.id, lane: 'reply' }, ENTRY_SLACK);
  }
}
