import type { Redis } from 'ioredis';
import { RPCInvalidArgumentError, RPCProtocolError, RedisStreamsDestroyedError } from '../errors.js';
import { InboundQueue } from '../io/inbound-queue.js';
import {
  emptyIoStats,
  type IoCapabilities,
  type IoEvents,
  type IoInboundMessage,
  type IoInterface,
  type IoOutboundMessage,
  type IoReceipt,
  type IoStats,
} from '../io/io-interface.js';
import { TypedEmitter } from '../io/typed-emitter.js';
import { Signal, backoffMs, sleep } from './async-utils.js';
import {
  connectionError,
  createBlockingConnection,
  createCommandConnection,
  isBusyGroupError,
  isNoGroupError,
  type RedisConnection,
} from './connection.js';
import { Control, Field, parseEntryList, parseReadReply, type ParsedEntry, type RawEntry, parseEntry } from './entries.js';
import { GroupRecovery, type ReclaimResult } from './group-recovery.js';
import { ReplyBatcher } from './reply-batcher.js';
import { streamKeys, type StreamKeys } from './keys.js';
import { resolveOptions, type RedisStreamsIOOptions, type ResolvedRedisStreamsOptions } from './options.js';

/** Events of {@link RedisStreamsIO}, on top of {@link IoEvents}. */
export interface RedisStreamsIOEvents extends IoEvents {
  /** A connection came back after being lost. */
  reconnect: (info: { connection: 'command' | 'reader'; reconnects: number }) => void;
  /** Requests of a stopped worker were taken over. */
  reclaimed: (info: { ids: string[] }) => void;
  /** A request was moved to the dead-letter stream. */
  'dead-letter': (info: { id: string; from: string | undefined; deliveries: number; deadLetterId: string | null; reason: string }) => void;
  /** Pending requests were trimmed away before anyone handled them (their callers time out). */
  trimmed: (info: { ids: string[] }) => void;
}

/** What {@link RedisStreamsIO.getStreamInfo} resolves. */
export interface StreamInfo {
  /** Entries in the stream. */
  length: number;
  /** Consumer groups on the stream. */
  groups: number;
  /** The newest entry, or null when the stream is empty. */
  lastEntry: StreamEntry | null;
}

/** One stream entry with its fields. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

const READ_BATCH = 128;

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
  private readonly opts: ResolvedRedisStreamsOptions;
  private readonly keys: StreamKeys;
  private readonly inboxKey: string;
  private readonly cmd: RedisConnection;
  private readonly ownsCmd: boolean;
  private readonly events: TypedEmitter<RedisStreamsIOEvents>;
  private readonly queue: InboundQueue<IoInboundMessage>;
  private readonly counters: IoStats = emptyIoStats();
  private readonly inflight = new Set<string>();
  private readonly capacity = new Signal();
  private readonly stopSignal = new Signal();
  private readonly readers: RedisConnection[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly recovery: GroupRecovery | undefined;
  private readonly ready: Promise<boolean>;
  private resolveStopped: (value: false) => void = () => undefined;
  /** Resolves `false` on destroy, so nothing waits on `ready` past it (Redis may be down). */
  private readonly stopped = new Promise<false>((resolve) => (this.resolveStopped = resolve));
  private readonly replies: ReplyBatcher;
  private lastStreamId = '0-0';
  private lastInboxId = '0-0';
  private inboxReadSinceTrim = 0;
  private serving = false;
  /** Set at start and every claimIdleMs/2: look for pending requests to take over. */
  private recoveryDue = true;
  private destroyed = false;
  private destroying: Promise<void> | undefined;
  private commandDown = false;

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
    this.capabilities = { addressing: true, acknowledgements: o.useConsumerGroup, loadBalanced: o.useConsumerGroup, broadcast: !o.useConsumerGroup };
    this.events = new TypedEmitter<RedisStreamsIOEvents>(o.logger);
    this.queue = new InboundQueue<IoInboundMessage>(o.maxQueueSize, (_dropped, error) => {
      this.counters.dropped++;
      this.events.emit('error', error);
    });
    this.ownsCmd = o.client === undefined;
    this.cmd = o.client ?? createCommandConnection(o.url, o.redisOptions);
    this.watchConnection(this.cmd, 'command');
    this.recovery = o.useConsumerGroup
      ? new GroupRecovery(this.cmd, {
          stream: o.stream,
          group: o.consumerGroup,
          consumer: o.consumerName,
          claimIdleMs: o.claimIdleMs,
          maxDeliveries: o.maxDeliveries,
          deadLetterKey: this.keys.deadLetter,
        })
      : undefined;
    this.replies = new ReplyBatcher(this.cmd, { stream: o.stream, group: o.useConsumerGroup ? o.consumerGroup : undefined, sessionId: o.sessionId }, (n) => {
      this.counters.acked += n;
    });
    // Issued now, before any write the caller makes on the same connection, so
    // the inbox and the group exist before the first request can be answered.
    this.ready = this.setUp();
    this.loops.push(this.readLoop(this.newReader(), (reader) => this.readInboxOnce(reader)));
    this.every(Math.floor(o.inboxTtlMs / 3), () => this.heartbeat());
  }

  /**
   * Resolves once this IO has created its inbox (and group) and fixed its read
   * position. In broadcast mode a request written before a peer is ready is not
   * seen by that peer, like any subscription; await this on servers before
   * announcing them. Writes need not wait for it.
   *
   * @throws {@link RedisStreamsDestroyedError} if destroyed before becoming ready.
   */
  async waitUntilReady(): Promise<void> {
    if (!(await this.whenReady())) throw new RedisStreamsDestroyedError('become ready');
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
    return this.command('XTRIM', () => this.cmd.xtrim(this.keys.stream, 'MAXLEN', '~', maxLen));
  }

  /** Every entry of the stream, oldest first (for inspection and tests; O(N)). */
  async getAllEntries(): Promise<StreamEntry[]> {
    this.assertUsable('getAllEntries');
    const list = await this.command('XRANGE', () => this.cmd.xrange(this.keys.stream, '-', '+'));
    return parseEntryList(list).map((e) => toStreamEntry(e.id, e.fields));
  }

  read(): Promise<IoInboundMessage | null> {
    return this.queue.next();
  }

  async write(message: IoOutboundMessage): Promise<void> {
    this.assertUsable('write');
    const { data, target, settles } = message;
    if (target === undefined) {
      const { stream } = this.keys;
      const me = this.id;
      const maxLen = this.opts.maxLen;
      await this.command(`XADD to "${stream}"`, () =>
        maxLen === undefined ? this.cmd.xadd(stream, '*', Field.From, me, Field.Data, data) : this.cmd.xadd(stream, 'MAXLEN', '~', maxLen, '*', Field.From, me, Field.Data, data),
      );
    } else {
      const ackId = this.recovery === undefined ? undefined : settles?.id;
      if (ackId !== undefined) this.release(ackId);
      await this.command(ackId === undefined ? 'XADD reply' : 'XADD reply + XACK', () => this.replies.write(this.keys.inbox(target), data, ackId));
    }
    this.counters.sent++;
  }

  async ack(receipt: IoReceipt): Promise<void> {
    if (this.recovery === undefined) return;
    this.release(receipt.id);
    this.assertUsable('ack');
    await this.command('XACK', () => this.cmd.xack(this.keys.stream, this.opts.consumerGroup, receipt.id));
    this.counters.acked++;
  }

  acceptRequests(): void {
    if (this.serving || this.destroyed) return;
    this.serving = true;
    // Requests get a reader of their own, so that serving can start at any time
    // without interrupting the inbox reader's blocking XREAD.
    if (this.recovery === undefined) {
      this.loops.push(this.readLoop(this.newReader(), (reader) => this.readBroadcastOnce(reader)));
      return;
    }
    this.loops.push(this.readLoop(this.newReader(), (reader) => this.readGroupOnce(reader)));
    this.every(Math.max(20, Math.floor(this.opts.claimIdleMs / 3)), () => this.renewLeases());
    this.every(this.recoveryIntervalMs(), () => {
      this.recoveryDue = true;
      return Promise.resolve();
    });
  }

  on<E extends keyof RedisStreamsIOEvents & string>(event: E, listener: RedisStreamsIOEvents[E]): this {
    this.events.on(event, listener);
    return this;
  }

  off<E extends keyof RedisStreamsIOEvents & string>(event: E, listener: RedisStreamsIOEvents[E]): this {
    this.events.off(event, listener);
    return this;
  }

  stats(): IoStats {
    return { ...this.counters, dropped: this.queue.dropped };
  }

  /**
   * Tells peers this endpoint is going away: a `bye` entry on the stream. Peers
   * emit `'peer-destroyed'` with this session id and stop invoking callbacks of
   * its calls; they are not destroyed. In load-balanced mode one worker of each
   * group receives it.
   */
  async signalDestroy(): Promise<void> {
    this.assertUsable('signalDestroy');
    await this.command('XADD bye', () => this.cmd.xadd(this.keys.stream, '*', Field.From, this.id, Field.Control, Control.Bye));
    this.counters.sent++;
  }

  /**
   * Stops reading, closes every connection it opened and deletes its reply
   * inbox. Idempotent; returns without waiting for `blockTimeout`. Requests
   * being handled are not acknowledged, so another worker takes them over.
   */
  destroy(): Promise<void> {
    this.destroying ??= this.close();
    return this.destroying;
  }

  private async close(): Promise<void> {
    this.destroyed = true;
    this.resolveStopped(false);
    this.stopSignal.notify();
    this.capacity.notify();
    for (const timer of this.timers) clearInterval(timer);
    this.queue.close();
    // Disconnecting breaks a pending blocking read at once.
    for (const reader of this.readers) reader.disconnect();
    await Promise.allSettled(this.loops);
    if (this.cmd.status === 'ready') {
      await withTimeout(Promise.all([this.cmd.del(this.inboxKey), this.leaveGroup()]), 1000).catch(() => undefined);
    }
    if (this.ownsCmd) {
      if (this.cmd.status === 'ready') await withTimeout(this.cmd.quit(), 1000).catch(() => undefined);
      this.cmd.disconnect();
    }
    this.events.removeAllListeners();
  }

  /**
   * Removes this worker from its group when it holds no pending request, so
   * groups do not collect dead consumer names. With pending requests it stays,
   * and those are reclaimed by other workers (DELCONSUMER would drop them).
   */
  private async leaveGroup(): Promise<void> {
    if (this.recovery === undefined || !this.serving) return;
    const { stream } = this.keys;
    const { consumerGroup, consumerName } = this.opts;
    const pending = await this.cmd.call('XPENDING', stream, consumerGroup, '-', '+', 1, consumerName);
    if (Array.isArray(pending) && pending.length === 0) await this.cmd.call('XGROUP', 'DELCONSUMER', stream, consumerGroup, consumerName);
  }

  private assertUsable(operation: string): void {
    if (this.destroyed) throw new RedisStreamsDestroyedError(operation);
  }

  private async command<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (this.destroyed) throw new RedisStreamsDestroyedError(action, { cause: err });
      throw connectionError(action, err);
    }
  }

  private release(entryId: string): void {
    if (this.inflight.delete(entryId)) this.capacity.notify();
  }

  private every(ms: number, task: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(() => {
      if (running || this.destroyed) return;
      running = true;
      task()
        .catch((err: unknown) => this.reportBackground(err))
        .finally(() => (running = false));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private reportBackground(err: unknown): void {
    if (this.destroyed) return;
    const error = err instanceof Error && 'code' in err ? err : connectionError('background task', err);
    if (error.name === 'RedisStreamsConnectionError' && this.commandDown) return; // one report per outage
    this.events.emit('error', error);
  }

  private watchConnection(conn: RedisConnection, role: 'command' | 'reader'): void {
    let wasReady = false;
    let down = false;
    conn.on('ready', () => {
      if (wasReady && down && !this.destroyed) {
        down = false;
        if (role === 'command') this.commandDown = false;
        this.counters.reconnects++;
        this.events.emit('reconnect', { connection: role, reconnects: this.counters.reconnects });
        if (role === 'command') this.ensureTopology().catch((err: unknown) => this.reportBackground(err));
      }
      wasReady = true;
    });
    conn.on('error', (err: Error) => {
      // ioredis reports every failed reconnect attempt; report only the first of an outage.
      if (down || this.destroyed) return;
      down = true;
      if (role === 'command') this.commandDown = true;
      this.events.emit('error', connectionError(`${role} connection`, err));
    });
    conn.on('close', () => {
      if (wasReady && !this.destroyed) down = true;
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

  private async setUp(): Promise<boolean> {
    for (let attempt = 0; !this.destroyed; attempt++) {
      try {
        await this.ensureTopology(true);
        return true;
      } catch (err) {
        this.reportBackground(err);
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
        this.cmd.xadd(this.inboxKey, '*', Field.From, this.id, Field.Control, Control.Open).then((id) => {
          if (first && typeof id === 'string') this.lastInboxId = id;
        }),
        this.cmd.pexpire(this.inboxKey, o.inboxTtlMs),
      );
    }
    if (o.useConsumerGroup) {
      // `$` on first creation: a new group never replays stale history. After a
      // restart without persistence, `0` picks up what callers wrote since.
      pending.push(this.createGroup(first ? '$' : '0'));
    } else if (first) {
      pending.push(
        this.cmd.xrevrange(this.keys.stream, '+', '-', 'COUNT', 1).then((last) => {
          this.lastStreamId = parseEntryList(last)[0]?.id ?? '0-0';
        }),
      );
    }
    await Promise.all(pending);
  }

  private async createGroup(from: '$' | '0'): Promise<void> {
    try {
      await this.cmd.xgroup('CREATE', this.keys.stream, this.opts.consumerGroup, from, 'MKSTREAM');
    } catch (err) {
      if (!isBusyGroupError(err)) throw err;
    }
  }

  private async heartbeat(): Promise<void> {
    if (!(await this.whenReady())) return;
    const alive = await this.cmd.pexpire(this.inboxKey, this.opts.inboxTtlMs);
    if (alive === 0) await this.ensureTopology();
    await this.trimInbox();
  }

  private async trimInbox(): Promise<void> {
    this.inboxReadSinceTrim = 0;
    // Entries below the last one read are consumed; MINID keeps the inbox short for long-lived callers.
    await this.cmd.xtrim(this.inboxKey, 'MINID', '~', this.lastInboxId);
  }

  /**
   * Runs `step` until destroyed. Failures back off with jitter, and one report
   * is made per failure streak, so an outage neither spins nor floods logs.
   */
  private async readLoop(reader: RedisConnection, step: (reader: RedisConnection) => Promise<void>, prepare?: () => Promise<void>): Promise<void> {
    if (!(await this.whenReady())) return;
    let failures = 0;
    let prepared = prepare === undefined;
    while (!this.destroyed) {
      try {
        if (!prepared) {
          await prepare?.();
          prepared = true;
        }
        await step(reader);
        failures = 0;
      } catch (err) {
        if (this.destroyed) return;
        if (isNoGroupError(err)) await this.createGroup('0').catch(() => undefined);
        else if (failures === 0) this.events.emit('error', err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_') ? err : connectionError('read', err));
        failures++;
        await sleep(backoffMs(failures, 50, 2000), this.stopSignal);
      }
    }
  }

  /**
   * Reserves queue room and in-flight slots for a group read, waiting while
   * there are none: XREADGROUP hands entries over for good, so it may never
   * fetch more than the queue can take.
   */
  private async reserveForGroup(): Promise<number> {
    for (;;) {
      if (this.destroyed) return 0;
      const limit = Math.min(READ_BATCH, this.opts.maxQueueSize - this.inflight.size);
      const granted = this.queue.reserve(Math.max(0, limit));
      if (granted > 0) return granted;
      // Wait for what is actually missing: an in-flight slot (released on
      // answer/ack) or queue room. Waiting on room that is already there would spin.
      if (limit <= 0) await this.capacity.wait();
      else await this.queue.waitForRoom();
    }
  }

  /**
   * One blocking XREAD of this endpoint's inbox. XREAD consumes nothing, so no
   * queue room is held while it blocks: entries beyond the room left are
   * simply read again next time.
   */
  private async readInboxOnce(reader: RedisConnection): Promise<void> {
    await this.waitForRoom();
    if (this.destroyed) return;
    const reply = await (reader as Redis).xread('COUNT', READ_BATCH, 'BLOCK', this.opts.blockTimeout, 'STREAMS', this.inboxKey, this.lastInboxId);
    const entries = parseReadReply(reply).get(this.inboxKey);
    const last = this.acceptWhileRoom(entries, (e) => this.acceptReply(e));
    if (last === undefined) return;
    this.lastInboxId = last;
    this.inboxReadSinceTrim += entries?.length ?? 0;
    if (this.inboxReadSinceTrim >= 1000) this.trimInbox().catch((err: unknown) => this.reportBackground(err));
  }

  /** One blocking XREAD of the request stream, for a serving broadcast peer. */
  private async readBroadcastOnce(reader: RedisConnection): Promise<void> {
    await this.waitForRoom();
    if (this.destroyed) return;
    const { stream } = this.keys;
    const reply = await (reader as Redis).xread('COUNT', READ_BATCH, 'BLOCK', this.opts.blockTimeout, 'STREAMS', stream, this.lastStreamId);
    this.lastStreamId = this.acceptWhileRoom(parseReadReply(reply).get(stream), (e) => this.acceptBroadcast(e)) ?? this.lastStreamId;
  }

  /** Accepts entries while the queue has room; returns the id of the last one taken. */
  private acceptWhileRoom(entries: readonly RawEntry[] | undefined, accept: (entry: ParsedEntry) => void): string | undefined {
    let last: string | undefined;
    for (const raw of entries ?? []) {
      if (this.queue.room === 0) break;
      accept(parseEntry(raw));
      last = raw.id;
    }
    return last;
  }

  private async waitForRoom(): Promise<void> {
    while (!this.destroyed && this.queue.room === 0) await this.queue.waitForRoom();
  }

  private async readGroupOnce(reader: RedisConnection): Promise<void> {
    if (this.recoveryDue && (await this.recoverOne())) return;
    const granted = await this.reserveForGroup();
    try {
      if (this.destroyed) return;
      const o = this.opts;
      // Block no longer than the recovery interval, so take-overs are not delayed by a quiet stream.
      const block = Math.min(o.blockTimeout, this.recoveryIntervalMs());
      const reply = await (reader as Redis).xreadgroup('GROUP', o.consumerGroup, o.consumerName, 'COUNT', granted, 'BLOCK', block, 'STREAMS', this.keys.stream, '>');
      const entries = parseReadReply(reply).get(this.keys.stream) ?? [];
      for (const raw of entries) this.acceptRequest(parseEntry(raw), 1);
    } finally {
      this.queue.release(granted);
    }
  }

  private acceptBroadcast(entry: ParsedEntry): void {
    if (entry.type === 'malformed') return this.reportMalformed(entry);
    if (entry.from === this.id) return;
    if (entry.type === 'control') {
      if (entry.control === Control.Bye) this.events.emit('peer-destroyed', entry.from);
      return;
    }
    this.push({ data: entry.data, from: entry.from, id: entry.id });
  }

  private acceptReply(entry: ParsedEntry): void {
    if (entry.type === 'malformed') return this.reportMalformed(entry);
    if (entry.type === 'control') return;
    this.push({ data: entry.data, from: entry.from, id: entry.id });
  }

  /** A request from the group: tracked as in flight until answered or acknowledged. */
  private acceptRequest(entry: ParsedEntry, deliveries: number): void {
    if (entry.type !== 'data') {
      this.ackQuietly(entry.id);
      if (entry.type === 'malformed') this.reportMalformed(entry);
      else if (entry.control === Control.Bye) this.events.emit('peer-destroyed', entry.from);
      return;
    }
    if (deliveries > this.opts.maxDeliveries) {
      this.deadLetter(entry, deliveries);
      return;
    }
    this.inflight.add(entry.id);
    this.push({ data: entry.data, from: entry.from, id: entry.id, receipt: { id: entry.id } });
  }

  private deadLetter(entry: ParsedEntry & { type: 'data' }, deliveries: number): void {
    const reason = `delivered ${deliveries - 1} times without an answer (maxDeliveries ${this.opts.maxDeliveries})`;
    (this.recovery as GroupRecovery)
      .deadLetter(entry, deliveries - 1, reason)
      .then((deadLetterId) => {
        this.counters.deadLettered++;
        this.events.emit('dead-letter', { id: entry.id, from: entry.from, deliveries: deliveries - 1, deadLetterId, reason });
        // The channel answers the caller with an RPCDeliveryError instead of letting it time out.
        this.push({ data: entry.data, from: entry.from, id: entry.id, undeliverable: { deliveries: deliveries - 1, reason } });
      })
      .catch((err: unknown) => this.reportBackground(err));
  }

  private push(message: IoInboundMessage): void {
    this.counters.received++;
    this.queue.push(message);
    this.events.emit('message', message);
  }

  private reportMalformed(entry: ParsedEntry & { type: 'malformed' }): void {
    this.counters.malformed++;
    this.events.emit('error', new RPCProtocolError(`Skipped an entry not written by redis-streams-rpc: ${entry.reason}`, entry.id));
  }

  private ackQuietly(id: string): void {
    this.cmd
      .xack(this.keys.stream, this.opts.consumerGroup, id)
      .then(() => void this.counters.acked++)
      .catch((err: unknown) => this.reportBackground(err));
  }

  private recoveryIntervalMs(): number {
    return Math.max(25, Math.floor(this.opts.claimIdleMs / 2));
  }

  /**
   * Takes over ONE pending request (this consumer's own from an earlier life
   * first, then any idle on a stopped worker) and runs it with nothing else in
   * flight. A redelivered request may be the one that crashed its worker:
   * running it alone means a poison request cannot push the delivery count of
   * innocent neighbours up with each crash and drag them into the dead letters.
   *
   * @returns whether the loop should come back here before reading new requests.
   */
  private async recoverOne(): Promise<boolean> {
    while (!this.destroyed && this.inflight.size > 0) await this.capacity.wait();
    await this.waitForRoom();
    if (this.destroyed) return true;
    const recovery = this.recovery as GroupRecovery;
    const granted = this.queue.reserve(1);
    try {
      let result = await recovery.claimOwn(1);
      if (result.claimed.length === 0 && result.trimmed.length === 0) result = await recovery.reclaimIdle(1);
      this.acceptClaimed(result);
      const more = result.claimed.length > 0 || result.trimmed.length > 0 || !recovery.scanComplete;
      if (!more) this.recoveryDue = false;
      return more;
    } finally {
      this.queue.release(granted);
    }
  }

  private acceptClaimed(result: ReclaimResult): void {
    if (result.trimmed.length > 0) {
      this.counters.trimmed += result.trimmed.length;
      this.counters.acked += result.trimmed.length;
      this.events.emit('trimmed', { ids: result.trimmed });
      this.events.emit('error', new RPCProtocolError(`${result.trimmed.length} pending request(s) were trimmed from the stream before being handled (maxLen too small?)`, result.trimmed[0]));
    }
    if (result.claimed.length === 0) return;
    this.counters.reclaimed += result.claimed.length;
    this.events.emit('reclaimed', { ids: result.claimed.map((c) => c.entry.id) });
    for (const { entry, deliveries } of result.claimed) this.acceptRequest(entry, deliveries);
  }

  private async renewLeases(): Promise<void> {
    if (this.inflight.size === 0) return;
    await (this.recovery as GroupRecovery).renew([...this.inflight]);
  }
}

function toStreamEntry(id: string, fields: readonly string[]): StreamEntry {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i] as string] = fields[i + 1] as string;
  return { id, fields: out };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
