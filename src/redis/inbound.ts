/**
 * The inbound half shared by every reader of one {@link RedisStreamsIO}: the
 * bounded queue, the counters and the events.
 *
 * @module
 */
import { debugLog } from '../debug-log.js';
import { RPCProtocolError, RPCSignatureError } from '../errors.js';
import { InboundQueue } from '../io/inbound-queue.js';
import type { IoInboundMessage, IoLane } from '../io/io-interface.js';
import { TypedEmitter, type Logger } from '../io/typed-emitter.js';
import { MAX_HEADER_CHARS } from '../protocol/envelope.js';
import { Control, Field, parseEntry, type ControlEntry, type ParsedEntry, type RawEntry } from './entries.js';
import { looksSigned, type EntrySigner } from './signing.js';
import type { RedisStreamsIOEvents } from './types.js';

/**
 * Most peers remembered as gone (oldest forgotten first). Each costs a map
 * entry; a caller is remembered long after its requests' deadlines passed.
 */
export const MAX_GONE_PEERS = 10_000;

/** Milliseconds part of a stream id (`ms-seq`). */
export function streamTime(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

type DataEntry = ParsedEntry & { type: 'data' };

/**
 * Whether a request message waits for an answer (it is not a notification).
 * Runs only for requests of callers that went away, so parsing the header
 * costs nothing on the hot path. Unreadable: treated as a call (skipped, as
 * it would have been refused).
 */
function expectsAnswer(data: string): boolean {
  const nl = data.indexOf('\n');
  if (nl <= 0 || nl > MAX_HEADER_CHARS) return true;
  try {
    const header = JSON.parse(data.slice(0, nl)) as { n?: unknown } | null;
    return header?.n !== 1;
  } catch {
    return true;
  }
}

/** The queue lane of a message: replies (answers, callback invocations) never wait behind requests. */
function laneOf(message: IoInboundMessage): IoLane {
  return message.lane === 'reply' ? 'reply' : 'request';
}

/** Queue, counters and events of one IO. */
export class Inbound {
  /** What happens here: messages queued and dropped, entries refused, skipped or malformed. Read by the IO's stats(). */
  readonly counters = { received: 0, dropped: 0, refusedEntries: 0, expiredControlEntries: 0, abandoned: 0, malformed: 0 };
  readonly events: TypedEmitter<RedisStreamsIOEvents>;
  readonly queue: InboundQueue<IoInboundMessage>;
  /** Set once the IO is destroyed; every loop checks it. */
  closed = false;
  /** Told about every message dropped from the queue (set by the load-balanced consumer). */
  onDrop: ((message: IoInboundMessage) => void) | undefined;
  /** Settles a queued request taken out because its caller went away (set by the IO: load-balanced, it is acknowledged). */
  onAbandon: ((message: IoInboundMessage) => void) | undefined;
  /** Told about every live `serve` announcement of the control stream; set by the IO once it serves (see mode-watch.ts). */
  onServe: ((entry: ControlEntry) => void) | undefined;
  /** Peers that announced they went away: session id to the stream time (ms) of their `bye`, oldest first. */
  private readonly gone = new Map<string, number>();
  /** Requests pushed so far; the next one gets this number (see {@link Inbound.left}). */
  private requestPushes = 0;
  /** Without signing: a signed entry was reported already. */
  private toldSigned = false;

  /**
   * @param signer - Verifies every entry read (the `signing` option); without
   *   it, signed entries are refused (both sides of a stream must agree).
   */
  constructor(
    maxQueueSize: number,
    logger: Logger | undefined,
    private readonly signer: EntrySigner | undefined,
  ) {
    this.events = new TypedEmitter<RedisStreamsIOEvents>(logger);
    this.queue = new InboundQueue<IoInboundMessage>(
      maxQueueSize,
      (dropped, error) => {
        this.counters.dropped++;
        this.onDrop?.(dropped);
        this.events.emit('error', error);
      },
      laneOf,
    );
  }

  /** Sequence number of the next request pushed. */
  get nextSeq(): number {
    return this.requestPushes;
  }

  /**
   * Requests that have left the queue: every request numbered below this was
   * handed out by `read()` or dropped, the rest are still queued. The request
   * lane is first in, first out for both, so the queued ones are always the newest.
   */
  get left(): number {
    return this.requestPushes - this.queue.sizeOf('request');
  }

  /**
   * Queues a message for `read()`, dropping the oldest (counted, reported) when
   * the queue is `slack` past full.
   */
  push(message: IoInboundMessage, slack = 0): void {
    this.counters.received++;
    if (laneOf(message) === 'request') this.requestPushes++;
    this.queue.push(message, slack);
    this.events.emit('message', message);
  }

  /**
   * Parses an entry read from `key`, refusing it first (before anything
   * decodes it) when signing says so.
   */
  parse(key: string, raw: RawEntry): ParsedEntry {
    if (this.signer === undefined) {
      // Accepted unverified (without signing nothing is), but a peer signs: say so once. Its
      // answers to that peer are refused there as unsigned, and the peer's calls time out with
      // that refusal as the cause.
      if (!this.toldSigned && looksSigned(raw)) {
        this.toldSigned = true;
        this.events.emit('error', new RPCSignatureError('unexpected-signature', key, raw.id, claimedSender(raw)));
      }
      return parseEntry(raw);
    }
    const problem = this.signer.verify(key, raw);
    const opened = problem === undefined ? this.signer.open(raw) : undefined;
    if (opened !== undefined) return parseEntry(opened);
    return { type: 'refused', id: raw.id, error: new RPCSignatureError(problem ?? 'undecryptable', key, raw.id, claimedSender(raw)) };
  }

  /** Counts and reports an entry refused by signing. */
  reportRefused(entry: ParsedEntry & { type: 'refused' }): void {
    this.counters.refusedEntries++;
    this.events.emit('error', entry.error);
  }

  /**
   * Acts on a control entry, unless it is read after its deadline: then it is
   * counted in `expiredControlEntries`, logged and ignored, so an old `bye`
   * read late (a new group reading the retained history, a write held through
   * an outage) cannot skip the calls of a caller restarted under its session id.
   */
  control(entry: ControlEntry): void {
    if (entry.deadline !== undefined && Date.now() > entry.deadline) {
      this.counters.expiredControlEntries++;
      debugLog.control('ignored %s entry %s of %s: read after its deadline %d', entry.control, entry.id, entry.from, entry.deadline);
      return;
    }
    if (entry.control === Control.Bye) this.peerGone(entry.from, streamTime(entry.id));
    else if (entry.control === Control.Serve) this.onServe?.(entry);
  }

  /**
   * A peer announced it is going away (a `bye` entry stamped at `byeMs`): its
   * requests written before then are skipped from now on, the ones still
   * queued are taken out (counted in `abandoned`, settled), and
   * `'peer-destroyed'` is emitted, once per peer.
   */
  peerGone(peerId: string, byeMs: number): void {
    const known = this.gone.get(peerId);
    if (known !== undefined && known >= byeMs) return;
    this.gone.delete(peerId);
    this.gone.set(peerId, byeMs);
    if (this.gone.size > MAX_GONE_PEERS) this.gone.delete(this.gone.keys().next().value as string);
    const removed = this.queue.removeWhere(
      (m) => m.lane === 'request' && m.undeliverable === undefined && m.from === peerId && m.id !== undefined && streamTime(m.id) < byeMs && expectsAnswer(m.data),
    );
    this.counters.abandoned += removed.length;
    for (const message of removed) this.onAbandon?.(message);
    if (known === undefined) this.events.emit('peer-destroyed', peerId);
  }

  /**
   * A request entry without the calls its caller abandoned: those written
   * before the caller announced it went away (counted in `abandoned`).
   * Notifications are kept: nobody waits for them, they still run. A
   * restarted caller reusing the session id is served again: its new requests
   * are stamped after the `bye`. `undefined` when nothing is left.
   */
  withoutAbandoned(entry: DataEntry): DataEntry | undefined {
    if (!this.wasGone(entry.from, entry.id)) return entry;
    const data = entry.data.filter((d) => !expectsAnswer(d));
    this.counters.abandoned += entry.data.length - data.length;
    if (data.length === 0) return undefined;
    return data.length === entry.data.length ? entry : { ...entry, data };
  }

  private wasGone(from: string, entryId: string): boolean {
    if (this.gone.size === 0) return false;
    const bye = this.gone.get(from);
    return bye !== undefined && streamTime(entryId) < bye;
  }

  /** Counts and reports an entry this library did not write. */
  reportMalformed(entry: ParsedEntry & { type: 'malformed' }): void {
    this.counters.malformed++;
    this.events.emit('error', new RPCProtocolError(`Skipped an entry not written by redis-streams-rpc: ${entry.reason}`, entry.id));
  }

  /**
   * Accepts entries while the queue has room; returns the id of the last one
   * taken (the reader re-reads the rest). An entry is taken whole, so one
   * carrying several messages may fill the queue past its size by at most
   * `MAX_MESSAGES_PER_ENTRY - 1` (pass that as the push's slack).
   */
  acceptWhileRoom(key: string, entries: readonly RawEntry[] | undefined, lane: IoLane, accept: (entry: ParsedEntry) => void): string | undefined {
    let last: string | undefined;
    for (const raw of entries ?? []) {
      if (this.queue.roomOf(lane) === 0) break;
      accept(this.parse(key, raw));
      last = raw.id;
    }
    return last;
  }

  /** Resolves once a lane of the queue has room (or the IO is closed). */
  async waitForRoom(lane: IoLane): Promise<void> {
    while (!this.closed && this.queue.roomOf(lane) === 0) await this.queue.waitForRoom(lane);
  }
}

/** The sender field of an entry not trusted yet (for the report). */
function claimedSender(raw: RawEntry): string | undefined {
  const { fields } = raw;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === Field.From) return fields[i + 1];
  return undefined;
}
