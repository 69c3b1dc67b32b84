/**
 * The XREAD side of a {@link RedisStreamsIO}: this endpoint's reply inbox
 * (every IO reads it) and, for a serving broadcast peer, the request stream.
 * XREAD consumes nothing, so no queue room is held while a read blocks:
 * entries beyond the room left are simply read again next time.
 *
 * @module
 */
import type { Redis } from 'ioredis';
import type { RedisConnection } from './connection.js';
import { Control, MAX_MESSAGES_PER_ENTRY, parseReadReply, type ParsedEntry } from './entries.js';
import { READ_BATCH } from './group-consumer.js';
import type { Inbound } from './inbound.js';

/** Entries are taken whole once there is room: see {@link Inbound.acceptWhileRoom}. */
const ENTRY_SLACK = MAX_MESSAGES_PER_ENTRY - 1;

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
  private inboxReadSinceTrim = 0;

  constructor(private readonly host: StreamReadersHost) {}

  /** One blocking XREAD of this endpoint's inbox. */
  async readInboxOnce(reader: RedisConnection): Promise<void> {
    const { inbound, inboxKey, blockTimeout } = this.host;
    await inbound.waitForRoom();
    if (inbound.closed) return;
    const reply = await (reader as Redis).xread('COUNT', READ_BATCH, 'BLOCK', blockTimeout, 'STREAMS', inboxKey, this.inboxPosition);
    const entries = parseReadReply(reply).get(inboxKey);
    const last = inbound.acceptWhileRoom(inboxKey, entries, (e) => this.acceptReply(e));
    if (last === undefined) return;
    this.inboxPosition = last;
    this.inboxReadSinceTrim += entries?.length ?? 0;
    if (this.inboxReadSinceTrim >= TRIM_EVERY) this.trimInbox().catch((err: unknown) => this.host.reportBackground(err));
  }

  /** One blocking XREAD of the request stream, for a serving broadcast peer. */
  async readBroadcastOnce(reader: RedisConnection): Promise<void> {
    const { inbound, stream, blockTimeout } = this.host;
    await inbound.waitForRoom();
    if (inbound.closed) return;
    const reply = await (reader as Redis).xread('COUNT', READ_BATCH, 'BLOCK', blockTimeout, 'STREAMS', stream, this.streamPosition);
    this.streamPosition = inbound.acceptWhileRoom(stream, parseReadReply(reply).get(stream), (e) => this.acceptBroadcast(e)) ?? this.streamPosition;
  }

  /** Drops inbox entries already read: MINID keeps the inbox of a long-lived caller short. */
  async trimInbox(): Promise<void> {
    this.inboxReadSinceTrim = 0;
    await this.host.cmd.xtrim(this.host.inboxKey, 'MINID', '~', this.inboxPosition);
  }

  private acceptBroadcast(entry: ParsedEntry): void {
    const { inbound } = this.host;
    if (entry.type === 'malformed') return inbound.reportMalformed(entry);
    if (entry.type === 'refused') return inbound.reportRefused(entry);
    if (entry.from === this.host.sessionId) return;
    if (entry.type === 'control') {
      if (entry.control === Control.Bye) inbound.events.emit('peer-destroyed', entry.from);
      return;
    }
    for (const data of entry.data) inbound.push({ data, from: entry.from, id: entry.id, lane: 'request' }, ENTRY_SLACK);
  }

  private acceptReply(entry: ParsedEntry): void {
    const { inbound } = this.host;
    if (entry.type === 'malformed') return inbound.reportMalformed(entry);
    if (entry.type === 'refused') return inbound.reportRefused(entry);
    if (entry.type === 'control') return;
    for (const data of entry.data) inbound.push({ data, from: entry.from, id: entry.id, lane: 'reply' }, ENTRY_SLACK);
  }
}
