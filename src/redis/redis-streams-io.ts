import { RPCDeliveryError, RPCError, RPCInvalidArgumentError, RedisStreamsConnectionError, RedisStreamsDestroyedError, toError } from '../errors.js';
import type { IoCapabilities, IoInboundMessage, IoInterface, IoOutboundMessage, IoReceipt, IoStats } from '../io/io-interface.js';
import { drainGraceMs, type DrainOptions } from '../io/drain.js';
import { debugLog } from '../debug-log.js';
import { invalidOutbound } from '../io/validate-outbound.js';
import { Signal, backoffMs, sleep, withTimeout } from './async-utils.js';
import {
  connectionError,
  createBlockingConnection,
  createCommandConnection,
  isBusyGroupError,
  isLibraryError,
  isNoGroupError,
  isPermissionError,
  isRefusedConnection,
  redisError,
  type RedisConnection,
} from './connection.js';
import { Control, Field, parseEntryList, toStreamEntry } from './entries.js';
import { GroupConsumer } from './group-consumer.js';
import { Inbound } from './inbound.js';
import { ModeWatch } from './mode-watch.js';
import { streamKeys, type StreamKeys } from './keys.js';
import { resolveOptions, type RedisStreamsIOOptions, type ResolvedRedisStreamsOptions } from './options.js';
import { PoolReplays } from './pool-replays.js';
import { StreamRetention } from './retention.js';
import { EntrySigner, sealWith, type SealEntry } from './signing.js';
import { CONTROL_LOOKBACK_MS, CONTROL_MAXLEN, StreamReaders } from './stream-readers.js';
import { WriteBatcher } from './write-batcher.js';
import type { RedisStreamsIOEvents, StreamEntry, StreamInfo } from './types.js';

export type { RedisStreamsIOEvents, StreamEntry, StreamInfo } from './types.js';

/** Longest destroy() waits for its read loops to stop, in milliseconds. */
const LOOP_STOP_GRACE_MS = 2000;

/** Longest pause between two attempts of a read the ACL refuses; each refusal is reported. */
const DENIED_RETRY_MAX_MS = 5000;

/**
 * {@link IoInterface} on Redis Streams (ioredis), in two modes:
 *
 * - broadcast (`useConsumerGroup: false`): XREAD; every IO on the stream sees every request but its own.
 * - load-balanced (`useConsumerGroup: true`): XREADGROUP; each request reaches one worker of the group,
 *   is acknowledged only once its answer is written (XADD + XACK in one MULTI), is taken over from
 *   stopped workers after `claimIdleMs`, and is dead-lettered after `maxDeliveries`.
 *
 * Answers and callback invocations always go to the caller's own inbox stream, so they reach it only.
 *
 * @example
 * ```ts
 * const io = new RedisStreamsIO({ url: process.env.REDIS_URL, stream: 'jobs', useConsumerGroup: true });
 * const worker = new RPCChannel(io, { expose: { resize: async (url: string) => ... } });
 * ```
 */
export class RedisStreamsIO implements IoInterface<RedisStreamsIOEvents> {
  readonly name: string;
  readonly id: string;
  readonly capabilities: IoCapabilities;
  /** The consumer group, in load-balanced mode; undefined in broadcast mode. */
  readonly consumerGroup: string | undefined;
  private readonly opts: ResolvedRedisStreamsOptions;
  private readonly keys: StreamKeys;
  private readonly inboxKey: string;
  private readonly cmd: RedisConnection;
  private readonly ownsCmd: boolean;
  private readonly inbound: Inbound;
  private readonly group: GroupConsumer | undefined;
  private readonly writes: WriteBatcher;
  /** Signs what this IO writes (the identity without the `signing` option). */
  private readonly seal: SealEntry;
  /** XADD arguments of a request entry (MAXLEN), and of an inbox entry (never recreate an expired inbox; `inboxMaxLen`). */
  private readonly requestOptions: readonly (string | number)[];
  private readonly inboxOptions: readonly (string | number)[];
  private readonly stopSignal = new Signal();
  private readonly readers: RedisConnection[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly ready: Promise<boolean>;
  private resolveStopped: (value: false) => void = () => undefined;
  /** Resolves `false` on destroy, so nothing waits on `ready` past it (Redis may be down). */
  private readonly stopped = new Promise<false>((resolve) => (this.resolveStopped = resolve));
  private readonly streams: StreamReaders;
  /** Reports serving peers of the other mode on this stream (see mode-watch.ts). */
  private readonly modes: ModeWatch;
  private serving = false;
  /** The connection of the request read loop, once serving. */
  private requestReader: RedisConnection | undefined;
  /** Set by drain(). */
  private draining: Promise<number> | undefined;
  /** Set once this IO wrote a request: its destroy() announces it on the control stream. */
  private wroteRequests = false;
  private destroying: Promise<void> | undefined;
  private commandDown = false;
  /** Why the last set-up attempt failed, while the IO is not set up. */
  private setUpFailure: unknown = undefined;
  private setUpDone = false;
  /** Whether set-up found this IO serving (broadcast: it then fixed the read position in the request stream). */
  private servedAtSetUp = false;
  /** The command connection failed in a way only an operator fixes (TLS verification, credentials); cleared on 'ready'. */
  private connectionRefusal: RPCError | undefined;
  /** Notified when set-up fails or the connection is refused: wakes waitUntilReady(). */
  private readonly setUpFailed = new Signal();

  /**
   * @param options - See {@link RedisStreamsIOOptions}; defaults in {@link DEFAULT_REDIS_STREAMS_OPTIONS}.
   * @throws {@link RPCInvalidArgumentError} naming the first invalid option.
   */
  constructor(options: RedisStreamsIOOptions = {}) {
    this.opts = resolveOptions(options);
    const o = this.opts;
    this.name = o.stream;
    this.id = o.sessionId;
    this.keys = streamKeys(o.stream, o.deadLetterStream);
    this.inboxKey = this.keys.inbox(o.sessionId);
    this.consumerGroup = o.useConsumerGroup ? o.consumerGroup : undefined;
    this.capabilities = { addressing: true, acknowledgements: o.useConsumerGroup, loadBalanced: o.useConsumerGroup, broadcast: !o.useConsumerGroup };
    const signer = o.signing === undefined ? undefined : new EntrySigner(o.signing);
    this.seal = sealWith(signer);
    this.inbound = new Inbound(o.maxQueueSize, o.logger, signer);
    this.ownsCmd = o.client === undefined;
    this.cmd = o.client ?? createCommandConnection(o.url, o.redisOptions);
    this.watchConnection(this.cmd, 'command');
    this.streams = new StreamReaders({
      cmd: this.cmd,
      inbound: this.inbound,
      stream: this.keys.stream,
      inboxKey: this.inboxKey,
      controlKey: this.keys.control,
      sessionId: o.sessionId,
      blockTimeout: o.blockTimeout,
      reportBackground: (err) => this.reportBackground(err),
    });
    this.modes = new ModeWatch({
      cmd: this.cmd,
      stream: o.stream,
      controlKey: this.keys.control,
      sessionId: o.sessionId,
      mode: o.useConsumerGroup ? 'group' : 'broadcast',
      group: this.consumerGroup,
      controlEntry: (key, word, extra) => this.controlEntry(key, word, extra),
      report: (error) => void this.inbound.events.emit('error', error),
      reportBackground: (err) => this.reportBackground(err),
    });
    this.group = o.useConsumerGroup
      ? new GroupConsumer({ cmd: this.cmd, opts: o, keys: this.keys, inbound: this.inbound, seal: this.seal, replays: signer === undefined ? undefined : new PoolReplays(this.cmd, this.keys.seen(o.consumerGroup), o.signing?.replayWindowMs ?? 0), reportBackground: (err) => this.reportBackground(err) })
      : undefined;
    const group = this.group;
    // A request dropped from the full queue is no longer held: see GroupConsumer.drop.
    if (group !== undefined) this.inbound.onDrop = (message) => group.drop(message);
    // A queued request whose caller went away: acknowledged like an answered one, never run.
    this.inbound.onAbandon = (message) => {
      if (message.receipt !== undefined) this.ack(message.receipt).catch((err: unknown) => this.reportBackground(err));
    };
    this.requestOptions = o.maxLen === undefined ? [] : ['MAXLEN', '~', o.maxLen];
    this.inboxOptions = o.inboxMaxLen === undefined ? ['NOMKSTREAM'] : ['NOMKSTREAM', 'MAXLEN', '~', o.inboxMaxLen];
    this.writes = new WriteBatcher(
      this.cmd,
      { stream: this.keys.stream, group: o.useConsumerGroup ? o.consumerGroup : undefined, sessionId: o.sessionId, maxPerEntry: o.writeBatchSize, seal: this.seal },
      {
        sent: (n) => void (this.inbound.counters.sent += n),
        acked: (messages, entries) => {
          this.inbound.counters.acked += messages;
          this.inbound.counters.ackedEntries += entries;
        },
        failure: (cause, action) => this.commandError(action, cause),
        undelivered: (key, count) => {
          const message = `${count} message(s) to "${key}" were dropped: that inbox no longer exists (its caller stopped, or the inbox expired after inboxTtlMs)`;
          this.inbound.events.emit('error', new RPCDeliveryError(message, 1));
        },
      },
    );
    // Writes are held until this has created the inbox and the group (see WriteBatcher).
    this.ready = this.setUp();
    // A caller that may not read its inbox gets no answers: its pending calls fail with the refusal.
    const inboxDenied = (error: Error): void => void this.inbound.events.emit('answers-unreachable', error);
    this.loops.push(this.readLoop(this.newReader(), (reader) => this.streams.readInboxOnce(reader), `read the inbox "${this.inboxKey}"`, inboxDenied));
    this.every(Math.floor(o.inboxTtlMs / 3), () => this.heartbeat());
  }

  /**
   * Resolves once this IO has created its inbox (and group) and fixed its read
   * position. In broadcast mode a request written before a peer is ready is not
   * seen by that peer, like any subscription; await this on servers before
   * announcing them. Writes need not wait for it.
   *
   * While Redis is unreachable it keeps waiting (the IO retries with backoff),
   * but a failure that retrying cannot fix rejects at once; the IO keeps
   * retrying in the background, so a later call may resolve once fixed.
   *
   * @throws {@link RedisStreamsPermissionError} when the ACL refuses a command set-up needs.
   * @throws {@link RedisStreamsConnectionError} when the server's TLS certificate fails
   *   verification (wrong CA, wrong host name: the TLS error is the `cause`) or Redis refuses the credentials.
   * @throws {@link RedisStreamsDestroyedError} if destroyed before becoming ready.
   */
  async waitUntilReady(): Promise<void> {
    for (;;) {
      const refused = this.refusal();
      if (refused !== undefined) throw refused;
      let unsubscribe: () => void = () => undefined;
      const failed = new Promise<undefined>((resolve) => (unsubscribe = this.setUpFailed.subscribe(() => resolve(undefined))));
      const ready = await Promise.race([this.whenReady(), failed]).finally(unsubscribe);
      if (ready === true) return;
      if (ready === false) throw new RedisStreamsDestroyedError('become ready');
    }
  }

  /** The stream carrying requests. */
  getStream(): string {
    return this.opts.stream;
  }

  /** The consumer group (used in load-balanced mode). */
  getConsumerGroup(): string {
    return this.opts.consumerGroup;
  }

  /** This worker's name in the group. */
  getConsumerName(): string {
    return this.opts.consumerName;
  }

  /** This endpoint's id; replies are addressed to it. */
  getSessionId(): string {
    return this.opts.sessionId;
  }

  /** The stream's length, number of groups and newest entry. */
  async getStreamInfo(): Promise<StreamInfo> {
    this.assertUsable('getStreamInfo');
    const [length, groups, last] = await this.command('XLEN/XINFO', async () =>
      Promise.all([this.cmd.xlen(this.keys.stream), this.cmd.call('XINFO', 'GROUPS', this.keys.stream).catch(() => []), this.cmd.xrevrange(this.keys.stream, '+', '-', 'COUNT', 1)]),
    );
    const entry = parseEntryList(last)[0];
    return { length, groups: Array.isArray(groups) ? groups.length : 0, lastEntry: entry === undefined ? null : toStreamEntry(entry.id, entry.fields) };
  }

  /**
   * Trims the stream to about `maxLen` entries (`MAXLEN ~`). Load-balanced pending
   * entries that get trimmed are acknowledged and reported when next reclaimed.
   *
   * @returns The number of entries removed.
   */
  async trimStream(maxLen: number): Promise<number> {
    this.assertUsable('trimStream');
    if (!Number.isInteger(maxLen) || maxLen < 0) {
      throw new RPCInvalidArgumentError('maxLen', `expected a non-negative integer, got ${String(maxLen)}`);
    }
    const removed = await this.command('XTRIM', () => this.cmd.xtrim(this.keys.stream, 'MAXLEN', '~', maxLen));
    debugLog.trim('%s trimmed %d entries (MAXLEN ~ %d)', this.keys.stream, removed, maxLen);
    return removed;
  }

  /** Every entry of the stream, oldest first (for inspection and tests; O(N)). */
  async getAllEntries(): Promise<StreamEntry[]> {
    this.assertUsable('getAllEntries');
    const list = await this.command('XRANGE', () => this.cmd.xrange(this.keys.stream, '-', '+'));
    return parseEntryList(list).map((e) => toStreamEntry(e.id, e.fields));
  }

  read(): Promise<IoInboundMessage | null> {
    return this.inbound.queue.next();
  }

  write(message: IoOutboundMessage): Promise<void> {
    // Not async: on this hot path every async layer costs a promise and a tick
    // per message. Messages written in one tick to the same stream share an
    // entry (up to writeBatchSize), and its promise: one XADD instead of
    // one per message, for the caller, the worker and Redis. The try keeps
    // every failure, a malformed message included, on the promise.
    try {
      const invalid = invalidOutbound(message);
      if (invalid !== undefined) return Promise.reject(invalid);
      return this.writeValid(message);
    } catch (err) {
      return Promise.reject(toError(err));
    }
  }

  async ack(receipt: IoReceipt): Promise<void> {
    if (this.group === undefined) return;
    if (!this.group.release(receipt)) {
      // Settled, but its entry still carries requests being handled: acknowledged with the last of them.
      this.inbound.counters.acked++;
      return;
    }
    this.assertUsable('ack');
    // Through the batcher: after any answer of the same entry queued before it, and one XACK per tick.
    await this.writes.ack(receipt.id);
  }

  acceptRequests(): void {
    if (this.serving || this.inbound.closed) return;
    this.serving = true;
    this.inbound.onServe = (entry) => this.modes.onServe(entry);
    // Requests get a reader of their own, so that serving can start at any time
    // without interrupting the inbox reader's blocking XREAD.
    const group = this.group;
    const read = group === undefined ? (reader: RedisConnection) => this.streams.readBroadcastOnce(reader) : (reader: RedisConnection) => group.readOnce(reader);
    let positioned = group !== undefined;
    let announced = false;
    const step = async (reader: RedisConnection): Promise<void> => {
      // Set up as a pure caller (whose ACL need not let it read the stream): fix the position now.
      if (!positioned && !this.servedAtSetUp) await this.fixStreamPosition();
      positioned = true;
      // Not awaited: reading requests never waits for (nor fails with) the announcement.
      if (!announced) this.modes.start().catch((err: unknown) => this.reportBackground(err));
      announced = true;
      await read(reader);
    };
    const action = group === undefined ? `read requests from "${this.keys.stream}"` : `read requests of group "${this.opts.consumerGroup}" from "${this.keys.stream}"`;
    this.requestReader = this.newReader();
    this.loops.push(this.readLoop(this.requestReader, step, action, undefined, () => this.draining !== undefined));
    this.startRetention();
    if (group === undefined) return;
    this.every(Math.max(20, Math.floor(this.opts.claimIdleMs / 3)), () => group.renewLeases());
    this.every(group.recoveryIntervalMs, () => Promise.resolve(group.markRecoveryDue()));
  }

  on<E extends keyof RedisStreamsIOEvents & string>(event: E, listener: RedisStreamsIOEvents[E]): this {
    this.inbound.events.on(event, listener);
    return this;
  }

  off<E extends keyof RedisStreamsIOEvents & string>(event: E, listener: RedisStreamsIOEvents[E]): this {
    this.inbound.events.off(event, listener);
    return this;
  }

  stats(): IoStats {
    return { ...this.inbound.counters, dropped: this.inbound.queue.dropped };
  }

  /**
   * Tells peers this endpoint is going away: a `bye` entry on the control
   * stream (every endpoint reads it beside its inbox) and on the request stream.
   * Every peer emits `'peer-destroyed'` with this session id, stops invoking
   * callbacks of its calls, and skips its calls written before the `bye`
   * (counted in `abandoned`); notifications still run. Nothing is destroyed.
   */
  async signalDestroy(): Promise<void> {
    this.assertUsable('signalDestroy');
    // On the control stream, which every endpoint reads at once; and on the request stream, in
    // order after this endpoint's requests, for peers of earlier versions.
    await this.command('XADD bye', () => Promise.all([this.writeBye(), this.cmd.xadd(this.keys.stream, '*', ...this.controlEntry(this.keys.stream, Control.Bye))]));
    this.inbound.counters.sent++;
  }

  /** A `bye` on the control stream: workers skip this endpoint's requests written before it. */
  private writeBye(): Promise<unknown> {
    const key = this.keys.control;
    return this.cmd.xadd(key, 'MAXLEN', '~', CONTROL_MAXLEN, '*', ...this.controlEntry(key, Control.Bye));
  }

  /**
   * Graceful stop of a serving IO, for rolling deploys: stops taking
   * requests at once, lets the requests being handled settle for up to
   * `graceMs`, then (load-balanced) hands every request it still holds back
   * to the group, so another worker runs it now instead of after
   * `claimIdleMs`: requests queued here and not started, requests still
   * running (these may then run twice: at least once), and any entry
   * delivered while the read was being cut off. In broadcast mode every
   * server sees every request, so the requests not started are dropped here.
   * The IO keeps writing (answers, calls of its own) and reading its inbox;
   * call {@link destroy} after (or use `RPCChannel.drain()`, which does both
   * and also waits for its own handlers). Idempotent.
   *
   * @param options.graceMs - Longest wait for running requests. @defaultValue 10000
   * @returns The number of requests handed back (counted in `handedBack`).
   * @throws {@link RPCInvalidArgumentError} for a bad `graceMs`.
   * @throws {@link RedisStreamsConnectionError} when Redis is unreachable while handing back
   *   (what was not handed back stays pending and is taken over after `claimIdleMs`).
   */
  async drain(options?: DrainOptions): Promise<number> {
    const graceMs = drainGraceMs(options);
    this.draining ??= this.drainNow(graceMs);
    return this.draining;
  }

  private async drainNow(graceMs: number): Promise<number> {
    this.assertUsable('drain');
    const group = this.group;
    group?.stopReading();
    // Breaks a blocking XREADGROUP at once; an entry delivered meanwhile is found by handBack.
    this.requestReader?.disconnect();
    const unqueued = this.inbound.queue.removeWhere((m) => m.lane === 'request');
    debugLog.connection('%s draining: %d queued requests taken out', this.id, unqueued.length);
    if (group === undefined || !this.serving) return 0;
    return this.command('hand back requests (drain)', () => group.handBack(unqueued, graceMs));
  }

  /**
   * Stops reading, closes every connection it opened and deletes its reply
   * inbox. Idempotent; returns without waiting for `blockTimeout`. Requests
   * being handled are not acknowledged, so another worker takes them over.
   * An IO that wrote requests writes a `bye` first (see {@link signalDestroy}),
   * so workers skip its calls still queued instead of running them for nobody.
   */
  destroy(): Promise<void> {
    this.destroying ??= this.close();
    return this.destroying;
  }

  /** Reports a background failure on `'error'`, once per outage. */
  private reportBackground(err: unknown): void {
    if (this.inbound.closed) return;
    const error = redisError('background task', err);
    if (error instanceof RedisStreamsConnectionError && this.commandDown) return;
    this.inbound.events.emit('error', error);
  }

  private writeValid(message: IoOutboundMessage): Promise<void> {
    if (this.inbound.closed) return Promise.reject(new RedisStreamsDestroyedError('write'));
    // Set only while set-up keeps failing: nothing has been sent yet.
    if (this.setUpFailure !== undefined) return Promise.reject(this.refusal() ?? redisError('write (the IO could not create its inbox)', this.setUpFailure));
    const { data, target, settles } = message;
    if (target === undefined) {
      this.wroteRequests = true;
      return this.writes.write(this.keys.stream, this.requestOptions, data);
    }
    // An answer is retried through an outage (see WriteBatcher); other inbox messages are not.
    if (settles === undefined || this.group === undefined) return this.writes.write(this.keys.inbox(target), this.inboxOptions, data, undefined, false, settles !== undefined);
    // An entry carrying several requests is acknowledged with the answer of its last one.
    const ackId = this.group.release(settles) ? settles.id : undefined;
    return this.writes.write(this.keys.inbox(target), this.inboxOptions, data, ackId, true);
  }

  private async close(): Promise<void> {
    this.inbound.closed = true;
    this.writes.destroy(new RedisStreamsDestroyedError('write'));
    this.resolveStopped(false);
    this.stopSignal.notify();
    this.group?.wake();
    for (const timer of this.timers) clearInterval(timer);
    this.inbound.queue.close();
    // Disconnecting breaks a pending blocking read at once.
    for (const reader of this.readers) reader.disconnect();
    // Bounded: a reader disconnected while it was waiting to reconnect (just after a Redis
    // restart) never settles the read it had queued (ioredis flushes its offline queue only on a
    // close event, which a socket already closed does not emit again). That loop holds no socket
    // or timer any more; waiting for it would hang destroy().
    await withTimeout(Promise.allSettled(this.loops), LOOP_STOP_GRACE_MS);
    if (this.cmd.status === 'ready') {
      const leave = this.serving ? this.group?.leaveGroup().catch((err: unknown) => this.reportDenied('leave the consumer group', err)) : undefined;
      // A caller going away tells the workers, so its requests still queued are skipped, not run.
      const bye = this.wroteRequests ? this.writeBye().catch((err: unknown) => this.reportDenied('write the bye entry', err)) : undefined;
      const del = this.cmd.del(this.inboxKey).catch((err: unknown) => this.reportDenied(`delete the inbox "${this.inboxKey}"`, err));
      await withTimeout(Promise.all([del, leave, bye]), 1000);
    }
    if (this.ownsCmd) {
      if (this.cmd.status === 'ready') await withTimeout(this.cmd.quit(), 1000).catch(() => undefined);
      this.cmd.disconnect();
    }
    this.inbound.events.removeAllListeners();
  }

  /** A clean-up step of destroy() that the ACL refuses is reported (a connection failure there is not news). */
  private reportDenied(action: string, err: unknown): void {
    if (isPermissionError(err)) this.inbound.events.emit('error', redisError(action, err));
  }

  /**
   * Why set-up cannot succeed without an operator, while it has not: the ACL
   * refused one of its commands, or the command connection was refused.
   */
  private refusal(): RPCError | undefined {
    if (this.setUpDone) return undefined;
    if (isPermissionError(this.setUpFailure)) return redisError('set up (create the inbox and the group)', this.setUpFailure);
    return this.connectionRefusal;
  }

  private assertUsable(operation: string): void {
    if (this.inbound.closed) throw new RedisStreamsDestroyedError(operation);
  }

  private async command<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      this.failCommand(action, err);
    }
  }

  /** Throws a failed command's error as the library's: destroyed, or a connection error. */
  private failCommand(action: string, err: unknown): never {
    throw this.commandError(action, err);
  }

  private commandError(action: string, err: unknown): Error {
    if (this.inbound.closed) return new RedisStreamsDestroyedError(action, { cause: err });
    return redisError(action, err);
  }

  private every(ms: number, task: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(() => {
      if (running || this.inbound.closed) return;
      running = true;
      task()
        .catch((err: unknown) => this.reportBackground(err))
        .finally(() => (running = false));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /**
   * Turns a connection's ioredis events into one `'error'` per outage and a
   * `'reconnect'` when it is back. A connection that closes is only "lost":
   * if ioredis gets it back at the first attempt (CLIENT KILL, an idle
   * timeout on a proxy) that is a `'reconnect'` alone. The first failure
   * after that (a refused reconnect, a socket error) is the outage, reported
   * once; ioredis then reports every failed attempt, and those are dropped.
   */
  private watchConnection(conn: RedisConnection, role: 'command' | 'reader'): void {
    let wasReady = false;
    let state: 'up' | 'lost' | 'down' = 'up';
    const { events, counters } = this.inbound;
    conn.on('ready', () => {
      const back = wasReady && state !== 'up';
      debugLog.connection('%s %s connection ready%s', this.id, role, back ? ' again' : '');
      wasReady = true;
      state = 'up';
      if (role === 'command') {
        this.commandDown = false;
        this.connectionRefusal = undefined;
      }
      if (!back || this.inbound.closed) return;
      counters.reconnects++;
      events.emit('reconnect', { connection: role, reconnects: counters.reconnects });
      this.opts.logger?.info?.('redis-streams-rpc reconnected', { connection: role, reconnects: counters.reconnects, stream: this.name });
      if (role === 'command') this.recreateTopology();
    });
    conn.on('error', (err: Error) => {
      if (role === 'command' && isRefusedConnection(err)) {
        this.connectionRefusal = connectionError('command connection', err);
        this.setUpFailed.notify();
      }
      if (state === 'down' || this.inbound.closed) return;
      debugLog.connection('%s %s connection down: %s', this.id, role, err.message);
      state = 'down';
      if (role === 'command') this.commandDown = true;
      events.emit('error', connectionError(`${role} connection`, err));
    });
    conn.on('close', () => {
      debugLog.connection('%s %s connection closed', this.id, role);
      if (wasReady && state === 'up') state = 'lost';
    });
  }

  private newReader(): RedisConnection {
    const reader = createBlockingConnection(this.cmd, this.opts.url, this.opts.redisOptions, this.ownsCmd);
    this.watchConnection(reader, 'reader');
    this.readers.push(reader);
    return reader;
  }

  private whenReady(): Promise<boolean> {
    return Promise.race([this.ready, this.stopped]);
  }

  /**
   * Creates the inbox (and group), retrying with backoff. Writes are held
   * until it succeeds; while it fails they fail at once with the connection
   * error, as commands on a down connection do.
   */
  private async setUp(): Promise<boolean> {
    // One microtask: a channel built on this IO in the same turn has called
    // acceptRequests() by then, so set-up knows whether this IO serves.
    await Promise.resolve();
    for (let attempt = 0; !this.inbound.closed; attempt++) {
      try {
        await this.ensureTopology(true);
        debugLog.connection('%s set up: inbox %s%s', this.id, this.inboxKey, this.consumerGroup === undefined ? '' : `, group ${this.consumerGroup}`);
        this.setUpFailure = undefined;
        this.setUpDone = true;
        this.writes.release();
        return true;
      } catch (err) {
        this.setUpFailure = err;
        // A refused connection fails the commands with "max retries": the refusal says why.
        this.writes.failHeld(this.refusal() ?? err);
        this.reportBackground(err);
        this.setUpFailed.notify();
        await sleep(backoffMs(attempt, 100, 2000), this.stopSignal);
      }
    }
    return false;
  }

  /** Creates the inbox (and group) when missing: at start, and after every reconnect (Redis may have lost them). */
  private async ensureTopology(first = false): Promise<void> {
    const o = this.opts;
    const exists = first ? 0 : await this.cmd.exists(this.inboxKey);
    const pending: Promise<unknown>[] = [];
    if (exists === 0) {
      pending.push(
        this.cmd.xadd(this.inboxKey, '*', ...this.controlEntry(this.inboxKey, Control.Open)).then((id) => {
          if (first && typeof id === 'string') this.streams.inboxPosition = id;
        }),
        this.cmd.pexpire(this.inboxKey, o.inboxTtlMs),
      );
    }
    if (first) this.servedAtSetUp = this.serving;
    if (o.useConsumerGroup) {
      // `0`: a new group starts at the retained history, so requests written
      // before any worker existed (by broadcast-mode callers, which never create
      // the group) are served. Stale ones do not run: every request carries its
      // deadline and the channel acknowledges expired ones as expired.
      pending.push(this.createGroup());
    } else if (first && this.serving) {
      // Only a serving peer reads the request stream: a pure caller's ACL need not allow it (README "ACL roles").
      pending.push(this.fixStreamPosition());
    }
    await Promise.all(pending);
  }

  /** Broadcast: a serving peer reads requests written from now on. */
  private async fixStreamPosition(): Promise<void> {
    const last = await this.cmd.xrevrange(this.keys.stream, '+', '-', 'COUNT', 1);
    this.streams.streamPosition = parseEntryList(last)[0]?.id ?? '0-0';
  }

  /**
   * After a reconnect of the command connection: Redis may have restarted
   * empty, so the inbox (and group) are created again, unconditionally. This
   * runs in ioredis's `'ready'` event, before it re-sends the commands issued
   * during the outage, and goes out as a pipeline (sent at once, not
   * auto-pipelined to a later turn): so no request of this IO can reach a
   * peer before the inbox its answer goes to exists again. An inbox that
   * survived gets one more `open` entry, which readers skip.
   */
  private recreateTopology(): void {
    const o = this.opts;
    const tx = this.cmd.pipeline();
    tx.xadd(this.inboxKey, '*', ...this.controlEntry(this.inboxKey, Control.Open));
    tx.pexpire(this.inboxKey, o.inboxTtlMs);
    if (o.useConsumerGroup) tx.xgroup('CREATE', this.keys.stream, o.consumerGroup, '0', 'MKSTREAM');
    tx.exec().then(
      (results) => {
        const failed = results?.find(([err]) => err !== null && !isBusyGroupError(err))?.[0];
        if (failed) this.reportBackground(connectionError('recreate the inbox after a reconnect', failed));
      },
      (err: unknown) => this.reportBackground(connectionError('recreate the inbox after a reconnect', err)),
    );
  }

  /**
   * The fields of a control entry for `key`, signed with the `signing` option.
   * Its deadline: a control entry is news for as long as a new endpoint reads
   * the control stream back (CONTROL_LOOKBACK_MS); read later, it is ignored.
   */
  private controlEntry(key: string, control: string, extra: readonly string[] = []): readonly string[] {
    return this.seal(key, [Field.From, this.id, Field.Control, control, ...extra, Field.Deadline, String(Date.now() + CONTROL_LOOKBACK_MS)]);
  }

  private async createGroup(): Promise<void> {
    try {
      await this.cmd.xgroup('CREATE', this.keys.stream, this.opts.consumerGroup, '0', 'MKSTREAM');
    } catch (err) {
      if (!isBusyGroupError(err)) throw err;
    }
  }

  /** Serving peers trim the request stream of what nobody needs (see retention.ts). */
  private startRetention(): void {
    const { retentionIntervalMs, retentionMs } = this.opts;
    const counters = this.inbound.counters;
    const trimmed = (n: number): void => void (counters.retentionTrimmedEntries += n);
    const retention = new StreamRetention({ cmd: this.cmd, stream: this.keys.stream, mode: this.group === undefined ? 'broadcast' : 'group', windowMs: retentionMs, trimmed });
    if (retentionIntervalMs === undefined || !retention.active) return;
    this.every(retentionIntervalMs, async () => {
      if (await this.whenReady()) await retention.run();
    });
  }

  private async heartbeat(): Promise<void> {
    if (!(await this.whenReady())) return;
    const alive = await this.cmd.pexpire(this.inboxKey, this.opts.inboxTtlMs);
    if (alive === 0) await this.ensureTopology();
    await this.streams.trimInbox();
  }

  /**
   * Runs `step` until destroyed. Failures back off with jitter, and one report
   * is made per failure streak, so an outage neither spins nor floods logs.
   */
  private async readLoop(reader: RedisConnection, step: (reader: RedisConnection) => Promise<void>, action: string, onDenied?: (error: Error) => void, stopped: () => boolean = () => false): Promise<void> {
    if (!(await this.whenReady())) return;
    let failures = 0;
    while (!this.inbound.closed && !stopped()) {
      try {
        await step(reader);
        failures = 0;
      } catch (err) {
        if (this.inbound.closed || stopped()) return;
        failures++;
        const denied = isPermissionError(err);
        if (isNoGroupError(err)) await this.createGroup().catch((e: unknown) => this.reportBackground(redisError('create the consumer group', e)));
        else if (denied) {
          // Refused until an operator changes the ACL: reported at every attempt, never retried silently.
          const error = redisError(action, err);
          this.reportBackground(error);
          onDenied?.(error);
        }
        // Through reportBackground: while the command connection is down, its outage is already reported.
        else if (failures === 1) this.reportBackground(isLibraryError(err) ? err : connectionError(action, err));
        await sleep(backoffMs(failures, denied ? 250 : 50, denied ? DENIED_RETRY_MAX_MS : 2000), this.stopSignal);
      }
    }
  }
}
