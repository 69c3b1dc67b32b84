import { RPCDeliveryError, RedisStreamsDestroyedError, toError } from '../errors.js';
import { emptyIoStats, type IoCapabilities, type IoGauges, type IoInboundMessage, type IoInterface, type IoOutboundMessage, type IoReceipt, type IoStats } from '../io/io-interface.js';
import { drainGraceMs, type DrainOptions } from '../io/drain.js';
import { debugLog } from '../debug-log.js';
import { invalidOutbound } from '../io/validate-outbound.js';
import { withTimeout } from './async-utils.js';
import { BackgroundTasks } from './background.js';
import { createBlockingConnection, createCommandConnection, isPermissionError, redisError, type RedisConnection } from './connection.js';
import { GroupConsumer } from './group-consumer.js';
import { Inbound } from './inbound.js';
import { ModeWatch } from './mode-watch.js';
import { streamKeys, type StreamKeys } from './keys.js';
import { resolveOptions, type RedisStreamsIOOptions, type ResolvedRedisStreamsOptions } from './options.js';
import { PoolReplays } from './pool-replays.js';
import { StreamRetention } from './retention.js';
import type { GroupPosition } from './safe-trim.js';
import { EntrySigner, sealWith, type SealEntry } from './signing.js';
import { allEntries, checkTrimLength, streamInfo, trimToLength } from './stream-admin.js';
import { StreamReaders } from './stream-readers.js';
import { ConnectionSupervisor } from './supervision.js';
import { Topology } from './topology.js';
import { WriteBatcher } from './write-batcher.js';
import type { RedisStreamsIOEvents, StreamEntry, StreamInfo } from './types.js';

export type { RedisStreamsIOEvents, StreamEntry, StreamInfo } from './types.js';

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
 * This class wires the pieces and keeps the IO contract; each idea has its own file: set-up and
 * upkeep of the keys (topology.ts), connection supervision (supervision.ts), read loops and
 * periodic tasks (background.ts), the XREAD readers (stream-readers.ts), the load-balanced
 * consumer (group-consumer.ts) with its credit ledger (credit-ledger.ts) and recovery
 * (group-recovery.ts), writes (write-batcher.ts), retention (retention.ts), stream
 * administration (stream-admin.ts).
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
  private readonly streams: StreamReaders;
  private readonly supervisor: ConnectionSupervisor;
  private readonly tasks: BackgroundTasks;
  private readonly topology: Topology;
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
  /** What happens here: messages written, requests settled and entries acknowledged by writes, entries trimmed by retention. */
  private readonly counters = { sent: 0, acked: 0, ackedEntries: 0, retentionTrimmedEntries: 0 };
  /** This worker's group as the last retention run saw it. */
  private sampled: IoGauges = {};

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
    this.requestOptions = o.maxLen === undefined ? [] : ['MAXLEN', '~', o.maxLen];
    this.inboxOptions = o.inboxMaxLen === undefined ? ['NOMKSTREAM'] : ['NOMKSTREAM', 'MAXLEN', '~', o.inboxMaxLen];
    const report = (err: unknown): void => this.supervisor.report(err);
    this.supervisor = new ConnectionSupervisor({
      id: o.sessionId,
      stream: o.stream,
      inbound: this.inbound,
      logger: o.logger,
      onCommandBack: () => this.topology.recreate(),
      onRefused: () => this.topology.setUpFailed.notify(),
    });
    this.ownsCmd = o.client === undefined;
    this.cmd = o.client ?? createCommandConnection(o.url, o.redisOptions);
    this.supervisor.watch(this.cmd, 'command');
    const { cmd, keys, inbound } = this;
    this.streams = new StreamReaders({ cmd, inbound, stream: keys.stream, inboxKey: this.inboxKey, controlKey: keys.control, sessionId: o.sessionId, blockTimeout: o.blockTimeout, reportBackground: report });
    this.writes = this.newWriteBatcher();
    this.tasks = new BackgroundTasks({ closed: () => inbound.closed, whenReady: () => this.topology.whenReady(), report, createGroup: () => this.topology.createGroup() });
    // Writes are held until this has created the inbox and the group (see WriteBatcher).
    this.topology = new Topology({
      cmd,
      opts: o,
      keys,
      inboxKey: this.inboxKey,
      seal: this.seal,
      streams: this.streams,
      stopping: this.tasks.stopping,
      serving: () => this.serving,
      closed: () => inbound.closed,
      onReady: () => this.writes.release(),
      onFailure: (error) => this.writes.failHeld(error),
      report,
      connectionRefusal: () => this.supervisor.refusal,
    });
    this.modes = new ModeWatch({
      cmd,
      stream: o.stream,
      controlKey: keys.control,
      sessionId: o.sessionId,
      mode: o.useConsumerGroup ? 'group' : 'broadcast',
      group: this.consumerGroup,
      controlEntry: (key, word, extra) => this.topology.controlEntry(key, word, extra),
      report: (error) => void inbound.events.emit('error', error),
      reportBackground: report,
    });
    const replays = signer === undefined || !o.useConsumerGroup ? undefined : new PoolReplays(cmd, keys.seen(o.consumerGroup), o.signing?.replayWindowMs ?? 0);
    this.group = o.useConsumerGroup ? new GroupConsumer({ cmd, opts: o, keys, inbound, seal: this.seal, replays, reportBackground: report }) : undefined;
    const group = this.group;
    // A request dropped from the full queue is no longer held: see GroupConsumer.drop.
    if (group !== undefined) inbound.onDrop = (message) => group.drop(message);
    // A queued request whose caller went away: acknowledged like an answered one, never run.
    inbound.onAbandon = (message) => {
      if (message.receipt !== undefined) this.ack(message.receipt).catch(report);
    };
    // A caller that may not read its inbox gets no answers: its pending calls fail with the refusal.
    const onDenied = (error: Error): void => void inbound.events.emit('answers-unreachable', error);
    this.tasks.startReadLoop(this.newReader(), { step: (reader) => this.streams.readInboxOnce(reader), action: `read the inbox "${this.inboxKey}"`, onDenied });
    this.tasks.every(Math.floor(o.inboxTtlMs / 3), () => this.topology.heartbeat());
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
  waitUntilReady(): Promise<void> {
    return this.topology.waitUntilReady();
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
    return this.command('XLEN/XINFO', () => streamInfo(this.cmd, this.keys.stream));
  }

  /**
   * Trims the stream to about `maxLen` entries (`MAXLEN ~`). Load-balanced pending
   * entries that get trimmed are acknowledged and reported when next reclaimed.
   * Retention (see the README) trims what nobody needs without this.
   *
   * @returns The number of entries removed.
   * @throws {@link RPCInvalidArgumentError} naming `maxLen` when it is not a non-negative integer.
   */
  async trimStream(maxLen: number): Promise<number> {
    this.assertUsable('trimStream');
    const length = checkTrimLength(maxLen);
    return this.command('XTRIM', () => trimToLength(this.cmd, this.keys.stream, length));
  }

  /** Every entry of the stream, oldest first (for inspection and tests; O(N)). */
  async getAllEntries(): Promise<StreamEntry[]> {
    this.assertUsable('getAllEntries');
    return this.command('XRANGE', () => allEntries(this.cmd, this.keys.stream));
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
      this.counters.acked++;
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
      if (!positioned && !this.topology.positionedAtSetUp) await this.topology.fixStreamPosition();
      positioned = true;
      // Not awaited: reading requests never waits for (nor fails with) the announcement.
      if (!announced) this.modes.start().catch((err: unknown) => this.supervisor.report(err));
      announced = true;
      await read(reader);
    };
    const action = group === undefined ? `read requests from "${this.keys.stream}"` : `read requests of group "${this.opts.consumerGroup}" from "${this.keys.stream}"`;
    this.requestReader = this.newReader();
    this.tasks.startReadLoop(this.requestReader, { step, action, stopped: () => this.draining !== undefined });
    this.startRetention();
    if (group === undefined) return;
    this.tasks.every(Math.max(20, Math.floor(this.opts.claimIdleMs / 3)), () => group.renewLeases());
    this.tasks.every(group.recoveryIntervalMs, () => Promise.resolve(group.markRecoveryDue()));
  }

  on<E extends keyof RedisStreamsIOEvents & string>(event: E, listener: RedisStreamsIOEvents[E]): this {
    this.inbound.events.on(event, listener);
    return this;
  }

  off<E extends keyof RedisStreamsIOEvents & string>(event: E, listener: RedisStreamsIOEvents[E]): this {
    this.inbound.events.off(event, listener);
    return this;
  }

  /** Counters since creation, each read from where it is counted; see {@link IoStats}. */
  stats(): IoStats {
    const group = this.group?.counters;
    return {
      ...emptyIoStats(),
      ...group,
      ...this.inbound.counters,
      ...this.counters,
      dropped: this.inbound.queue.dropped,
      reconnects: this.supervisor.reconnects,
      ackedEntries: this.counters.ackedEntries + (group?.ackedEntries ?? 0),
    };
  }

  /**
   * Load-balanced, serving: the lag and pending count of this worker's group,
   * as the last retention run read them (every `retentionIntervalMs`); empty
   * before the first run, in broadcast mode, and with retention off.
   */
  gauges(): IoGauges {
    return { ...this.sampled };
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
    await this.command('XADD bye', () => Promise.all([this.topology.writeBye(), this.topology.writeByeOnStream()]));
    this.counters.sent++;
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

  private writeValid(message: IoOutboundMessage): Promise<void> {
    if (this.inbound.closed) return Promise.reject(new RedisStreamsDestroyedError('write'));
    // Set only while set-up keeps failing: nothing has been sent yet.
    const failure = this.topology.failure;
    if (failure !== undefined) return Promise.reject(this.topology.refusal() ?? redisError('write (the IO could not create its inbox)', failure));
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
    this.topology.stop();
    this.group?.wake();
    this.inbound.queue.close();
    await this.tasks.stop();
    if (this.cmd.status === 'ready') {
      const leave = this.serving ? this.group?.leaveGroup().catch((err: unknown) => this.reportDenied('leave the consumer group', err)) : undefined;
      // A caller going away tells the workers, so its requests still queued are skipped, not run.
      const bye = this.wroteRequests ? this.topology.writeBye().catch((err: unknown) => this.reportDenied('write the bye entry', err)) : undefined;
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

  private assertUsable(operation: string): void {
    if (this.inbound.closed) throw new RedisStreamsDestroyedError(operation);
  }

  /** Runs a command of the public API; a failure is thrown as the library's error. */
  private async command<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw this.commandError(action, err);
    }
  }

  /** A failed command's error as the library's: destroyed, or a connection error. */
  private commandError(action: string, err: unknown): Error {
    if (this.inbound.closed) return new RedisStreamsDestroyedError(action, { cause: err });
    return redisError(action, err);
  }

  private newWriteBatcher(): WriteBatcher {
    const o = this.opts;
    const { counters } = this;
    const { events } = this.inbound;
    return new WriteBatcher(
      this.cmd,
      { stream: this.keys.stream, group: o.useConsumerGroup ? o.consumerGroup : undefined, sessionId: o.sessionId, maxPerEntry: o.writeBatchSize, seal: this.seal },
      {
        sent: (n) => void (counters.sent += n),
        acked: (messages, entries) => {
          counters.acked += messages;
          counters.ackedEntries += entries;
        },
        failure: (cause, action) => this.commandError(action, cause),
        undelivered: (key, count) => {
          const message = `${count} message(s) to "${key}" were dropped: that inbox no longer exists (its caller stopped, or the inbox expired after inboxTtlMs)`;
          events.emit('error', new RPCDeliveryError(message, 1));
        },
      },
    );
  }

  private newReader(): RedisConnection {
    const reader = createBlockingConnection(this.cmd, this.opts.url, this.opts.redisOptions, this.ownsCmd);
    this.supervisor.watch(reader, 'reader');
    return reader;
  }

  /** Serving peers trim the request stream of what nobody needs (see retention.ts). */
  private startRetention(): void {
    const { retentionIntervalMs, retentionMs } = this.opts;
    const { counters } = this;
    const trimmed = (n: number): void => void (counters.retentionTrimmedEntries += n);
    const group = this.consumerGroup;
    const observed = (groups: readonly GroupPosition[]): void => {
      const mine = groups.find((g) => g.name === group);
      if (mine !== undefined) this.sampled = { consumerLag: mine.lag ?? undefined, pendingRequests: mine.pending, sampledAt: Date.now() };
    };
    const retention = new StreamRetention({ cmd: this.cmd, stream: this.keys.stream, mode: group === undefined ? 'broadcast' : 'group', windowMs: retentionMs, trimmed, observed: group === undefined ? undefined : observed });
    if (retentionIntervalMs === undefined || !retention.active) return;
    this.tasks.every(retentionIntervalMs, async () => {
      if (await this.topology.whenReady()) await retention.run();
    });
  }
}
