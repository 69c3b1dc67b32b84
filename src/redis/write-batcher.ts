/**
 * Coalesces the writes issued in one tick. Messages bound for the same stream
 * share one entry (several `d` fields, in order), and every entry of the tick
 * goes out in one round trip. Every acknowledgement of the tick (requests
 * answered, notifications handled) goes into one XACK; when answers settle
 * requests, that XACK commits with them in one MULTI, otherwise a plain
 * pipeline keeps the order for a third of the Redis commands.
 *
 * Order holds per stream: a callback invocation always reaches its caller
 * before the answer of the same call.
 *
 * @module
 */
import { Command, Redis } from 'ioredis';
import type { RedisConnection } from './connection.js';
import { backoffMs } from './async-utils.js';
import { Field } from './entries.js';
import type { SealEntry } from './signing.js';

/** How long an answer (or acknowledgement) that cannot be written is retried through an outage. */
const RETRY_LIMIT_MS = 60_000;

/** Whether a failed write may succeed later: a connection failure, not a reply of Redis refusing it. */
function isRetryable(err: unknown): boolean {
  return err instanceof Error && err.name !== 'ReplyError';
}

/**
 * Characters (UTF-16 units) an entry may carry before a further message goes
 * to the next entry: big payloads get entries of their own instead of one huge
 * entry. One message larger than this still fits, alone.
 */
const ENTRY_SOFT_LIMIT_CHARS = 256 * 1024;

/** A promise with its settle functions, shared by everything one command settles. */
interface Deferred {
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { done, resolve, reject };
}

/** One entry being filled in the current tick. */
interface OpenEntry extends Deferred {
  readonly key: string;
  /** Arguments between the key and the id: `NOMKSTREAM`, or `MAXLEN ~ n`. */
  readonly options: readonly (string | number)[];
  /** `f`, sender, then `d`, message, for each message. */
  readonly fields: string[];
  count: number;
  chars: number;
  /** Messages of this entry that answer (settle) a request: counted as acked once it is written. */
  settles: number;
  /** Requests (entry ids) acknowledged in the same MULTI as this entry. */
  readonly ackIds: string[];
  /** Retried through an outage (answers): set when written. */
  retry: boolean;
  /** When its first write failed, while retried. */
  failedAt?: number;
}

/** Acknowledgements of the tick that ride with no answer (notifications). */
interface PendingAcks extends Deferred {
  readonly ids: string[];
  failedAt?: number;
}

/** Where and as whom entries are written. */
export interface WriteBatcherConfig {
  /** The request stream, for XACK. */
  readonly stream: string;
  /** The consumer group, for XACK (load-balanced mode). */
  readonly group: string | undefined;
  /** Written as the sender field `f` of every entry. */
  readonly sessionId: string;
  /** Most messages per entry (the `writeBatchSize` option; readers accept up to `MAX_MESSAGES_PER_ENTRY`). */
  readonly maxPerEntry: number;
  /** Signs an entry at each send (a retried entry is signed again, with a new signing time). */
  readonly seal: SealEntry;
}

/** What the batcher reports to its IO. */
export interface WriteBatcherHost {
  /** Messages written. */
  sent(count: number): void;
  /**
   * Requests settled by what was written (answers, and acknowledgements of
   * notifications), and request entries acknowledged (ids in the XACK): an
   * entry carrying several requests is acknowledged with the last of them.
   */
  acked(messages: number, entries: number): void;
  /** The library error a promise rejects with when `action` (e.g. `XADD to "key"`) failed. */
  failure(cause: unknown, action: string): Error;
  /** An inbox entry was not written because the inbox no longer exists (`NOMKSTREAM`). */
  undelivered(key: string, count: number): void;
}

/**
 * Batches entry writes per tick. It starts held: nothing is sent before
 * {@link WriteBatcher.release}, which the IO calls once its inbox (and group)
 * exist, so no request can reach a peer before the inbox its answer goes to.
 * (ioredis sends auto-pipelined commands, like the IO's set-up, in a later
 * turn than a pipeline, so ordering by issue time is not enough.)
 */
export class WriteBatcher {
  private entries: OpenEntry[] = [];
  private readonly open = new Map<string, OpenEntry>();
  private acks: PendingAcks | undefined;
  private scheduled = false;
  private held = true;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAttempt = 0;
  private retryEntries: OpenEntry[] = [];
  private retryAcks: PendingAcks[] = [];

  constructor(
    private readonly redis: RedisConnection,
    private readonly config: WriteBatcherConfig,
    private readonly host: WriteBatcherHost,
  ) {}

  /**
   * Queues one message for `key`. Messages queued in the same tick for the
   * same key and options share an entry; the returned promise is that entry's
   * (shared by its messages) and rejects with the failure of its XADD or of the
   * XACK committed with it.
   *
   * @param options - XADD arguments before the id (`NOMKSTREAM`, `MAXLEN ~ n`).
   * @param ackId - A request entry acknowledged in the same MULTI.
   * @param settles - Whether this message answers a request (counted as acked once written).
   */
  write(key: string, options: readonly (string | number)[], data: string, ackId?: string, settles = false, retry = settles): Promise<void> {
    let entry = this.open.get(key);
    // A message that would take a started entry past the size limit starts the next one.
    if (entry === undefined || entry.options !== options || entry.chars + data.length > ENTRY_SOFT_LIMIT_CHARS) entry = this.startEntry(key, options);
    entry.fields.push(Field.Data, data);
    entry.count++;
    entry.chars += data.length;
    if (ackId !== undefined) entry.ackIds.push(ackId);
    if (settles) entry.settles++;
    if (retry) entry.retry = true;
    if (entry.count >= this.config.maxPerEntry) this.open.delete(key);
    return entry.done;
  }

  /**
   * Acknowledges a request handled without an answer (a notification) in the
   * XACK of the next flush, after any answer queued before it. The promise is
   * shared by every acknowledgement of that flush.
   */
  ack(id: string): Promise<void> {
    this.acks ??= { ...deferred(), ids: [] };
    this.acks.ids.push(id);
    this.schedule();
    return this.acks.done;
  }

  private startEntry(key: string, options: readonly (string | number)[]): OpenEntry {
    const entry: OpenEntry = { key, options, fields: [Field.From, this.config.sessionId], count: 0, chars: 0, settles: 0, ackIds: [], retry: false, ...deferred() };
    this.entries.push(entry);
    this.open.set(key, entry);
    this.schedule();
    return entry;
  }

  /** Starts sending: what was written while held goes out now, in order. */
  release(): void {
    this.held = false;
    this.schedule();
  }

  /** Rejects everything queued while held (set-up failed, or the IO is closing); the batcher stays held. */
  failHeld(cause: unknown): void {
    if (!this.held) return;
    const { batch, acks } = this.take();
    this.fail(batch, acks, cause);
  }

  /** The IO is closing: rejects everything held or being retried, and stops retrying. */
  destroy(cause: unknown): void {
    this.stopped = true;
    this.failHeld(cause);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const entries = this.retryEntries;
    const acks = this.retryAcks;
    this.retryEntries = [];
    this.retryAcks = [];
    for (const e of entries) e.reject(this.host.failure(cause, this.entryAction(e)));
    for (const a of acks) a.reject(this.host.failure(cause, this.ackAction()));
  }

  /**
   * Keeps an answer (with its XACK) whose write failed on a connection error
   * for another attempt, with jittered backoff, for up to RETRY_LIMIT_MS.
   * Returns false when it must fail now.
   */
  private retryLater(item: OpenEntry | PendingAcks, cause: unknown, isEntry: boolean): boolean {
    if (this.stopped || !isRetryable(cause) || (isEntry && !(item as OpenEntry).retry)) return false;
    const now = Date.now();
    item.failedAt ??= now;
    if (now - item.failedAt > RETRY_LIMIT_MS) return false;
    if (isEntry) this.retryEntries.push(item as OpenEntry);
    else this.retryAcks.push(item as PendingAcks);
    if (this.retryTimer === undefined) {
      this.retryTimer = setTimeout(() => this.resend(), backoffMs(++this.retryAttempt, 100, 2000));
      this.retryTimer.unref();
    }
    return true;
  }

  /** Sends the retried entries and acknowledgements again, in their order, in one transaction. */
  private resend(): void {
    this.retryTimer = undefined;
    const batch = this.retryEntries;
    const ackGroups = this.retryAcks;
    this.retryEntries = [];
    this.retryAcks = [];
    if (batch.length === 0 && ackGroups.length === 0) return;
    const acks: PendingAcks | undefined =
      ackGroups.length === 0
        ? undefined
        : {
            ...deferred(),
            ids: ackGroups.flatMap((a) => a.ids),
            failedAt: Math.min(...ackGroups.map((a) => a.failedAt ?? Date.now())),
          };
    if (acks !== undefined) {
      acks.done.then(
        () => ackGroups.forEach((a) => a.resolve()),
        (err: unknown) => ackGroups.forEach((a) => a.reject(err)),
      );
    }
    this.send(batch, acks, true);
  }

  private schedule(): void {
    if (this.scheduled || this.held || (this.entries.length === 0 && this.acks === undefined)) return;
    this.scheduled = true;
    process.nextTick(() => this.flush());
  }

  private take(): { batch: OpenEntry[]; acks: PendingAcks | undefined } {
    const batch = this.entries;
    const acks = this.acks;
    this.entries = [];
    this.acks = undefined;
    this.open.clear();
    return { batch, acks };
  }

  private flush(): void {
    this.scheduled = false;
    const { batch, acks } = this.take();
    this.send(batch, acks, false);
  }

  private send(batch: OpenEntry[], acks: PendingAcks | undefined, retried: boolean): void {
    const { stream, group } = this.config;
    const only = batch.length === 1 && acks === undefined ? batch[0] : undefined;
    if (only !== undefined && only.ackIds.length === 0 && this.redis instanceof Redis) {
      this.sendOne(this.redis, only, retried);
      return;
    }
    const ackIds = group === undefined ? [] : [...batch.flatMap((e) => e.ackIds), ...(acks?.ids ?? [])];
    // MULTI only when an XACK must commit with answers.
    const tx = batch.some((e) => e.ackIds.length > 0) ? this.redis.multi() : this.redis.pipeline();
    const { seal } = this.config;
    for (const e of batch) tx.xadd(e.key, ...e.options, '*', ...seal(e.key, e.fields));
    if (ackIds.length > 0 && group !== undefined) tx.xack(stream, group, ...ackIds);
    tx.exec().then(
      (results) => {
        if (retried && results !== null && results.every(([err]) => err === null)) this.retryAttempt = 0;
        this.settle(batch, acks, results, ackIds.length);
      },
      (err: unknown) => this.fail(batch, acks, err),
    );
  }

  /**
   * One entry and nothing to acknowledge (every sequential call, most
   * answers in broadcast mode): a plain XADD, sent at once. A pipeline costs
   * more, and an ordinary command call on the auto-pipelining connection
   * would wait for the next turn of the event loop.
   */
  private sendOne(redis: Redis, entry: OpenEntry, retried: boolean): void {
    const command = new Command('xadd', [entry.key, ...entry.options, '*', ...this.config.seal(entry.key, entry.fields)]);
    (redis.sendCommand(command) as Promise<unknown>).then(
      (id) => {
        if (retried) this.retryAttempt = 0;
        this.settle([entry], undefined, [[null, id]], 0);
      },
      (err: unknown) => this.fail([entry], undefined, err),
    );
  }

  private fail(batch: readonly OpenEntry[], acks: PendingAcks | undefined, cause: unknown): void {
    for (const e of batch) if (!this.retryLater(e, cause, true)) e.reject(this.host.failure(cause, this.entryAction(e)));
    if (acks !== undefined && !this.retryLater(acks, cause, false)) acks.reject(this.host.failure(cause, this.ackAction()));
  }

  private entryAction(e: OpenEntry): string {
    return `XADD to "${e.key}"${e.ackIds.length > 0 ? ' + XACK' : ''}`;
  }

  private ackAction(): string {
    return `XACK on "${this.config.stream}"`;
  }

  private settle(batch: OpenEntry[], acks: PendingAcks | undefined, results: [Error | null, unknown][] | null, ackCount: number): void {
    if (results === null) {
      this.fail(batch, acks, new Error('MULTI aborted'));
      return;
    }
    // A connection failure anywhere: the whole batch again (XADD of an answer twice is ignored by its caller).
    const failed = results.find(([err]) => err !== null && isRetryable(err))?.[0];
    if (failed && !this.stopped && (batch.some((e) => e.retry) || acks !== undefined)) {
      this.fail(batch, acks, failed);
      return;
    }
    const ackError = ackCount > 0 ? results[batch.length]?.[0] : null;
    // Each acknowledgement without an answer settles one request (a notification).
    let settled = ackError ? 0 : (acks?.ids.length ?? 0);
    if (ackError) acks?.reject(this.host.failure(ackError, this.ackAction()));
    else acks?.resolve();
    batch.forEach((e, i) => {
      const err = results[i]?.[0] ?? (e.ackIds.length > 0 ? ackError : null);
      if (err) {
        e.reject(this.host.failure(err, this.entryAction(e)));
        return;
      }
      settled += e.settles;
      // XADD NOMKSTREAM answers nil when the inbox is gone: its caller stopped or it expired.
      if (results[i]?.[1] === null) this.host.undelivered(e.key, e.count);
      else this.host.sent(e.count);
      e.resolve();
    });
    if (settled > 0 || (ackCount > 0 && !ackError)) this.host.acked(settled, ackError ? 0 : ackCount);
  }
}
