import { Redis, type RedisOptions } from 'ioredis';
import { RPCError, RPCInvalidArgumentError, RedisStreamsDestroyedError } from '../../errors.js';
import { connectionError, createBlockingConnection, createCommandConnection, type RedisConnection } from '../connection.js';
import { streamKeys, type StreamKeys } from '../keys.js';
import { pendingSafeMinId, readGroupPositions } from '../safe-trim.js';
import { EntrySigner } from '../signing.js';
import { getDeadLetter, listDeadLetters, purge, redrive, type DeadLetterQuery, type DeadLetterSelection } from './dead-letters.js';
import { resolveInspectorOptions, type ResolvedInspectorOptions, type StreamInspectorOptions } from './options.js';
import { assertStream, readPending, readStatus, type InspectHost, type PendingQuery } from './status.js';
import { follow, type TailOptions } from './tail.js';
import type { DeadLetter, DeadLetterDetail, PendingEntry, RedriveResult, StreamStatus, TailEvent, TrimResult } from './types.js';

/**
 * Connections the inspector opens fail fast: an operator's command should say
 * "cannot connect" within seconds, not wait in ioredis' offline queue.
 */
const INSPECTOR_REDIS_OPTIONS: RedisOptions = {
  maxRetriesPerRequest: 1,
  connectTimeout: 5000,
  retryStrategy: (times) => (times > 3 ? null : 100 * times),
};

/**
 * Reads and operates one service stream from outside: what is pending, which
 * consumer holds what, how far each group lags, what sits in the dead
 * letters; redrives and purges dead letters, trims what no group needs, and
 * follows the traffic live. Every method returns plain data (JSON-ready).
 *
 * Looking changes nothing: no group, consumer, inbox or stream is created by
 * {@link StreamInspector.inspect}, {@link StreamInspector.pending},
 * {@link StreamInspector.deadLetters} or {@link StreamInspector.tail} (no
 * XREADGROUP, no MKSTREAM; XREAD consumes nothing). This is what the
 * `redis-streams-rpc` command line runs.
 *
 * @example
 * ```ts
 * const inspector = new StreamInspector({ url: process.env.REDIS_URL, stream: 'jobs' });
 * const status = await inspector.inspect();
 * for (const g of status.groups) process.stdout.write(`${g.name}: ${g.pending} pending, lag ${g.lag}\n`);
 * const { redriven } = await inspector.redriveDeadLetters('all');
 * await inspector.close();
 * ```
 */
export class StreamInspector {
  private readonly opts: ResolvedInspectorOptions;
  private readonly keys: StreamKeys;
  private readonly cmd: RedisConnection;
  private readonly owns: boolean;
  private readonly host: InspectHost;
  private readonly others = new Set<RedisConnection>();
  /** Redrives and purges run one at a time: they share a WATCH connection. */
  private writes: Promise<unknown> = Promise.resolve();
  private writer: Redis | undefined;
  private lastConnectionError: Error | undefined;
  private closed = false;

  /**
   * @param options - See {@link StreamInspectorOptions}; defaults in {@link DEFAULT_INSPECTOR_OPTIONS}.
   * @throws {@link RPCInvalidArgumentError} naming the first invalid option.
   */
  constructor(options: StreamInspectorOptions = {}) {
    this.opts = resolveInspectorOptions(options);
    this.keys = streamKeys(this.opts.stream, this.opts.deadLetterStream);
    this.owns = this.opts.client === undefined;
    this.cmd = this.opts.client ?? this.watch(createCommandConnection(this.opts.url, this.redisOptions()));
    this.host = { cmd: this.cmd, keys: this.keys, claimIdleMs: this.opts.claimIdleMs };
  }

  /** The request stream's key. */
  get stream(): string {
    return this.keys.stream;
  }

  /** The dead-letter stream's key. */
  get deadLetterStream(): string {
    return this.keys.deadLetter;
  }

  /**
   * Status of the service: the request stream (length, memory), its groups
   * (pending, lag, oldest pending age), their consumers (pending, idle,
   * alive), the reply inboxes and the dead-letter count.
   *
   * @throws {@link RedisStreamsNotFoundError} when the request stream does not exist.
   * @throws {@link RedisStreamsConnectionError} when Redis cannot be reached.
   */
  inspect(): Promise<StreamStatus> {
    return this.run('inspect', () => readStatus(this.host));
  }

  /**
   * Pending requests (delivered to a worker, not answered yet), oldest first:
   * method, caller, age, deliveries and the consumer holding each.
   *
   * @param query - Group, consumer and how many per group (100 by default).
   * @throws {@link RedisStreamsNotFoundError} when the stream or the group does not exist.
   */
  pending(query: PendingQuery = {}): Promise<PendingEntry[]> {
    return this.run('pending', async () => {
      const count = query.count ?? 100;
      if (!Number.isInteger(count) || count < 1) throw new RPCInvalidArgumentError('count', `expected a positive integer, got ${String(count)}`);
      return readPending(this.host, query);
    });
  }

  /**
   * The oldest dead letters (an empty list when there are none).
   *
   * @param query - How many (100 by default).
   */
  deadLetters(query: DeadLetterQuery = {}): Promise<DeadLetter[]> {
    return this.run('list dead letters', () => listDeadLetters(this.host, query));
  }

  /**
   * One dead letter, with its encoded messages and every field.
   *
   * @param id - Its id in the dead-letter stream.
   * @throws {@link RedisStreamsNotFoundError} when there is no such dead letter.
   * @throws {@link RPCInvalidArgumentError} when `id` is not a stream id.
   */
  deadLetter(id: string): Promise<DeadLetterDetail> {
    return this.run('show a dead letter', () => getDeadLetter(this.host, id));
  }

  /**
   * Puts dead letters back on the request stream so a worker serves them.
   * Each keeps its call id and sender, so its answer goes to the caller's
   * inbox: a caller still waiting (its timeout not reached) gets it. Each
   * one is moved atomically (MULTI: XADD to the request stream, XDEL from
   * the dead letters, under WATCH, so it is put back once even if redriven
   * twice at the same time) and starts again with a full `maxDeliveries`.
   * With `signing`, a dead letter whose signature does not verify is skipped,
   * and the redriven entry is signed anew. A redriven request whose deadline has passed is acknowledged as expired
   * by the worker, not run. Every group of the stream gets it again.
   *
   * @param ids - Dead-letter ids, or `'all'` for every dead letter present now.
   * @returns What was redriven (old and new ids), what was not found.
   * @throws {@link RPCInvalidArgumentError} when an id is not a stream id.
   */
  redriveDeadLetters(ids: DeadLetterSelection): Promise<RedriveResult> {
    return this.exclusive('redrive dead letters', () => redrive(this.writerConnection(), this.host, ids, this.signer()));
  }

  /**
   * Deletes dead letters.
   *
   * @param ids - Dead-letter ids, or `'all'` (the dead-letter stream is deleted).
   * @returns How many were deleted.
   */
  purgeDeadLetters(ids: DeadLetterSelection): Promise<number> {
    return this.exclusive('purge dead letters', () => purge(this.host, ids));
  }

  /**
   * Trims the request stream of what no consumer group needs any more:
   * `XTRIM MINID` at the smallest of every group's oldest pending id and
   * last-delivered id. A pending request is never trimmed, nor one a group
   * has yet to read. Without a group (broadcast) nothing is trimmed: the
   * readers' positions are not known to Redis.
   *
   * @throws {@link RedisStreamsNotFoundError} when the stream does not exist.
   */
  trim(): Promise<TrimResult> {
    return this.run('trim', async () => {
      const { cmd, keys } = this.host;
      await assertStream(cmd, keys.stream);
      const minId = pendingSafeMinId(await readGroupPositions(cmd, keys.stream));
      const removed = minId === null ? 0 : await cmd.xtrim(keys.stream, 'MINID', minId);
      return { removed, minId, length: await cmd.xlen(keys.stream) };
    });
  }

  /**
   * Follows the traffic live: requests, answers (with the time since their
   * request), callback invocations and dead letters, from now on. Reads with
   * XREAD on a connection of its own, so it consumes and creates nothing.
   *
   * @param options - A signal to stop it, a method filter.
   * @example
   * ```ts
   * const stop = new AbortController();
   * for await (const event of inspector.tail({ signal: stop.signal, methods: ['math'] })) process.stdout.write(`${JSON.stringify(event)}\n`);
   * ```
   */
  async *tail(options: TailOptions = {}): AsyncGenerator<TailEvent, void, undefined> {
    this.assertOpen('tail');
    const reader = createBlockingConnection(this.cmd, this.opts.url, this.redisOptions(), this.owns) as Redis;
    this.others.add(this.watch(reader));
    const stop = (): void => reader.disconnect();
    options.signal?.addEventListener('abort', stop);
    try {
      yield* follow(this.host, reader, options);
    } catch (err) {
      throw this.wrap('tail', err);
    } finally {
      options.signal?.removeEventListener('abort', stop);
      this.others.delete(reader);
      reader.disconnect();
    }
  }

  /** Closes the connections the inspector opened (a `client` given to it stays open). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writes.catch(() => undefined);
    for (const conn of this.others) conn.disconnect();
    this.others.clear();
    if (!this.owns) return;
    if (this.cmd.status === 'ready') await this.cmd.quit().catch(() => undefined);
    this.cmd.disconnect();
  }

  /** A signer per redrive: its replay memory must not refuse a dead letter it already looked at. */
  private signer(): EntrySigner | undefined {
    return this.opts.signing === undefined ? undefined : new EntrySigner(this.opts.signing);
  }

  private redisOptions(): RedisOptions {
    return { ...INSPECTOR_REDIS_OPTIONS, ...this.opts.redisOptions };
  }

  /** Keeps the last connection error: commands that fail on a closed connection only say "Connection is closed". */
  private watch<C extends RedisConnection>(conn: C): C {
    conn.on('error', (err: Error) => (this.lastConnectionError = err));
    return conn;
  }

  private writerConnection(): Redis {
    if (this.writer === undefined) {
      // WATCH state is per connection: redrives get one of their own, so the inspector's other reads cannot share it.
      this.writer = this.watch((this.cmd as Redis).duplicate());
      this.others.add(this.writer);
    }
    return this.writer;
  }

  private exclusive<T>(action: string, task: () => Promise<T>): Promise<T> {
    const next = this.writes.catch(() => undefined).then(() => this.run(action, task));
    this.writes = next;
    return next;
  }

  private assertOpen(action: string): void {
    if (this.closed) throw new RedisStreamsDestroyedError(action);
  }

  private async run<T>(action: string, task: () => Promise<T>): Promise<T> {
    this.assertOpen(action);
    try {
      return await task();
    } catch (err) {
      throw this.wrap(action, err);
    }
  }

  private wrap(action: string, err: unknown): Error {
    if (err instanceof RPCError) return err;
    const closedOnly = err instanceof Error && /Connection is closed/.test(err.message) && this.lastConnectionError !== undefined;
    return connectionError(action, closedOnly ? this.lastConnectionError : err);
  }
}

/**
 * The status of one service stream, in one call: opens a
 * {@link StreamInspector}, runs {@link StreamInspector.inspect}, closes it.
 *
 * @param options - Where the stream is.
 * @throws {@link RedisStreamsNotFoundError} when the request stream does not exist.
 * @example
 * ```ts
 * const { groups, deadLetters } = await inspect({ url: process.env.REDIS_URL, stream: 'jobs' });
 * ```
 */
export async function inspect(options: StreamInspectorOptions = {}): Promise<StreamStatus> {
  const inspector = new StreamInspector(options);
  try {
    return await inspector.inspect();
  } finally {
    await inspector.close();
  }
}

/**
 * Redrives dead letters in one call: see {@link StreamInspector.redriveDeadLetters}.
 *
 * @param options - Where the stream is.
 * @param ids - Dead-letter ids, or `'all'`.
 * @example
 * ```ts
 * const { redriven } = await redriveDeadLetters({ stream: 'jobs' }, 'all');
 * ```
 */
export async function redriveDeadLetters(options: StreamInspectorOptions, ids: DeadLetterSelection): Promise<RedriveResult> {
  const inspector = new StreamInspector(options);
  try {
    return await inspector.redriveDeadLetters(ids);
  } finally {
    await inspector.close();
  }
}
