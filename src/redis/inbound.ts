/**
 * The inbound half shared by every reader of one {@link RedisStreamsIO}: the
 * bounded queue, the counters and the events.
 *
 * @module
 */
import { RPCProtocolError, RPCSignatureError } from '../errors.js';
import { InboundQueue } from '../io/inbound-queue.js';
import { emptyIoStats, type IoInboundMessage, type IoStats } from '../io/io-interface.js';
import { TypedEmitter, type Logger } from '../io/typed-emitter.js';
import { Field, parseEntry, type ParsedEntry, type RawEntry } from './entries.js';
import { looksSigned, type EntrySigner } from './signing.js';
import type { RedisStreamsIOEvents } from './types.js';

/** Queue, counters and events of one IO. */
export class Inbound {
  readonly counters: IoStats = emptyIoStats();
  readonly events: TypedEmitter<RedisStreamsIOEvents>;
  readonly queue: InboundQueue<IoInboundMessage>;
  /** Set once the IO is destroyed; every loop checks it. */
  closed = false;
  /** Told about every message dropped from the queue (set by the load-balanced consumer). */
  onDrop: ((message: IoInboundMessage) => void) | undefined;
  /** Messages pushed so far; the next push gets this number (see {@link Inbound.left}). */
  private pushes = 0;
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
    this.queue = new InboundQueue<IoInboundMessage>(maxQueueSize, (dropped, error) => {
      this.counters.dropped++;
      this.onDrop?.(dropped);
      this.events.emit('error', error);
    });
  }

  /** Sequence number of the next message pushed. */
  get nextSeq(): number {
    return this.pushes;
  }

  /**
   * Messages that have left the queue: every message numbered below this was
   * handed out by `read()` or dropped, the rest are still queued. The queue is
   * first in, first out for both, so the queued ones are always the newest.
   */
  get left(): number {
    return this.pushes - this.queue.size;
  }

  /**
   * Queues a message for `read()`, dropping the oldest (counted, reported) when
   * the queue is `slack` past full.
   */
  push(message: IoInboundMessage, slack = 0): void {
    this.counters.received++;
    this.pushes++;
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
    if (problem === undefined) return parseEntry(raw);
    return { type: 'refused', id: raw.id, error: new RPCSignatureError(problem, key, raw.id, claimedSender(raw)) };
  }

  /** Counts and reports an entry refused by signing. */
  reportRefused(entry: ParsedEntry & { type: 'refused' }): void {
    this.counters.refusedEntries++;
    this.events.emit('error', entry.error);
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
  acceptWhileRoom(key: string, entries: readonly RawEntry[] | undefined, accept: (entry: ParsedEntry) => void): string | undefined {
    let last: string | undefined;
    for (const raw of entries ?? []) {
      if (this.queue.room === 0) break;
      accept(this.parse(key, raw));
      last = raw.id;
    }
    return last;
  }

  /** Resolves once the queue has room (or the IO is closed). */
  async waitForRoom(): Promise<void> {
    while (!this.closed && this.queue.room === 0) await this.queue.waitForRoom();
  }
}

/** The sender field of an entry not trusted yet (for the report). */
function claimedSender(raw: RawEntry): string | undefined {
  const { fields } = raw;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === Field.From) return fields[i + 1];
  return undefined;
}
