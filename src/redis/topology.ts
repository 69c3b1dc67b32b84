/**
 * The keys one {@link RedisStreamsIO} needs in Redis and their set-up: its
 * reply inbox (with its time to live), the consumer group (load-balanced),
 * the read position in the request stream (a serving broadcast peer), and
 * the control entries it writes (`open`, `bye`). Set-up retries with backoff
 * until it succeeds; after a reconnect everything is created again, as Redis
 * may have restarted empty.
 *
 * @module
 */
import { debugLog } from '../debug-log.js';
import { RedisStreamsDestroyedError, type RPCError } from '../errors.js';
import { Signal, backoffMs, sleep } from './async-utils.js';
import { connectionError, isBusyGroupError, isPermissionError, redisError, type RedisConnection } from './connection.js';
import { Control, Field, parseEntryList } from './entries.js';
import type { StreamKeys } from './keys.js';
import type { ResolvedRedisStreamsOptions } from './options.js';
import type { SealEntry } from './signing.js';
import { CONTROL_LOOKBACK_MS, CONTROL_MAXLEN, type StreamReaders } from './stream-readers.js';

/** What set-up needs from its IO. */
export interface TopologyHost {
  readonly cmd: RedisConnection;
  readonly opts: ResolvedRedisStreamsOptions;
  readonly keys: StreamKeys;
  readonly inboxKey: string;
  /** Signs the control entries written. */
  readonly seal: SealEntry;
  /** Read positions: set-up fixes the inbox's and (broadcast, serving) the request stream's. */
  readonly streams: StreamReaders;
  /** Notified at destroy: a set-up retry's sleep ends with it. */
  readonly stopping: Signal;
  /** Whether the IO serves requests (set-up then fixes its broadcast read position). */
  serving(): boolean;
  closed(): boolean;
  /** Set-up succeeded: held writes may go. */
  onReady(): void;
  /** Set-up failed with `error`: writes held fail with it. */
  onFailure(error: unknown): void;
  report(err: unknown): void;
  /** Why the command connection was refused, if it was. */
  connectionRefusal(): RPCError | undefined;
}

/** Set-up and upkeep of the keys of one IO. */
export class Topology {
  /** Resolves true once set up, false if destroyed first. */
  readonly ready: Promise<boolean>;
  /** Notified when set-up fails or the connection is refused: wakes waitUntilReady(). */
  readonly setUpFailed = new Signal();
  /** Why the last set-up attempt failed, while the IO is not set up. */
  private setUpFailure: unknown = undefined;
  private setUpDone = false;
  /** Whether set-up found this IO serving (broadcast: it then fixed the read position in the request stream). */
  private servedAtSetUp = false;
  private resolveStopped: (value: false) => void = () => undefined;
  /** Resolves `false` on destroy, so nothing waits on `ready` past it (Redis may be down). */
  private readonly stopped = new Promise<false>((resolve) => (this.resolveStopped = resolve));

  constructor(private readonly host: TopologyHost) {
    this.ready = this.setUp();
  }

  /** Whether set-up found this IO serving already (its broadcast read position is fixed). */
  get positionedAtSetUp(): boolean {
    return this.servedAtSetUp;
  }

  /** The last set-up failure, while set-up keeps failing: writes fail with it. */
  get failure(): unknown {
    return this.setUpFailure;
  }

  /** Resolves true once set up, false once destroyed. */
  whenReady(): Promise<boolean> {
    return Promise.race([this.ready, this.stopped]);
  }

  /** The IO is destroyed: nothing waits for set-up any more. */
  stop(): void {
    this.resolveStopped(false);
  }

  /** See RedisStreamsIO.waitUntilReady. */
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

  /**
   * Why set-up cannot succeed without an operator, while it has not: the ACL
   * refused one of its commands, or the command connection was refused.
   */
  refusal(): RPCError | undefined {
    if (this.setUpDone) return undefined;
    if (isPermissionError(this.setUpFailure)) return redisError('set up (create the inbox and the group)', this.setUpFailure);
    return this.host.connectionRefusal();
  }

  /** Broadcast: a serving peer reads requests written from now on. */
  async fixStreamPosition(): Promise<void> {
    const { cmd, keys, streams } = this.host;
    const last = await cmd.xrevrange(keys.stream, '+', '-', 'COUNT', 1);
    streams.streamPosition = parseEntryList(last)[0]?.id ?? '0-0';
  }

  /**
   * Creates the consumer group at `0`: a new group starts at the retained
   * history, so requests written before any worker existed (by broadcast-mode
   * callers, which never create the group) are served. Stale ones do not run:
   * every request carries its deadline and the channel acknowledges expired
   * ones as expired.
   */
  async createGroup(): Promise<void> {
    try {
      await this.host.cmd.xgroup('CREATE', this.host.keys.stream, this.host.opts.consumerGroup, '0', 'MKSTREAM');
    } catch (err) {
      if (!isBusyGroupError(err)) throw err;
    }
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
  recreate(): void {
    const { cmd, opts, keys, inboxKey } = this.host;
    const tx = cmd.pipeline();
    tx.xadd(inboxKey, '*', ...this.controlEntry(inboxKey, Control.Open));
    tx.pexpire(inboxKey, opts.inboxTtlMs);
    if (opts.useConsumerGroup) tx.xgroup('CREATE', keys.stream, opts.consumerGroup, '0', 'MKSTREAM');
    tx.exec().then(
      (results) => {
        const failed = results?.find(([err]) => err !== null && !isBusyGroupError(err))?.[0];
        if (failed) this.host.report(connectionError('recreate the inbox after a reconnect', failed));
      },
      (err: unknown) => this.host.report(connectionError('recreate the inbox after a reconnect', err)),
    );
  }

  /** Refreshes the inbox's time to live (creating it again if it expired) and trims what was read of it. */
  async heartbeat(): Promise<void> {
    if (!(await this.whenReady())) return;
    const { cmd, opts, inboxKey, streams } = this.host;
    const alive = await cmd.pexpire(inboxKey, opts.inboxTtlMs);
    if (alive === 0) await this.ensure();
    await streams.trimInbox();
  }

  /**
   * The fields of a control entry for `key`, signed with the `signing` option.
   * Its deadline: a control entry is news for as long as a new endpoint reads
   * the control stream back (CONTROL_LOOKBACK_MS); read later, it is ignored.
   */
  controlEntry(key: string, control: string, extra: readonly string[] = []): readonly string[] {
    return this.host.seal(key, [Field.From, this.host.opts.sessionId, Field.Control, control, ...extra, Field.Deadline, String(Date.now() + CONTROL_LOOKBACK_MS)]);
  }

  /** A `bye` on the control stream: workers skip this endpoint's requests written before it. */
  writeBye(): Promise<unknown> {
    const key = this.host.keys.control;
    return this.host.cmd.xadd(key, 'MAXLEN', '~', CONTROL_MAXLEN, '*', ...this.controlEntry(key, Control.Bye));
  }

  /** A `bye` on the request stream, in order after this endpoint's requests, for peers of earlier versions. */
  writeByeOnStream(): Promise<unknown> {
    const key = this.host.keys.stream;
    return this.host.cmd.xadd(key, '*', ...this.controlEntry(key, Control.Bye));
  }

  /**
   * Creates the inbox (and group), retrying with backoff. Writes are held
   * until it succeeds; while it fails they fail at once with the connection
   * error, as commands on a down connection do.
   */
  private async setUp(): Promise<boolean> {
    const { host } = this;
    // One microtask: a channel built on this IO in the same turn has called
    // acceptRequests() by then, so set-up knows whether this IO serves.
    await Promise.resolve();
    for (let attempt = 0; !host.closed(); attempt++) {
      try {
        await this.ensure(true);
        debugLog.connection('%s set up: inbox %s%s', host.opts.sessionId, host.inboxKey, host.opts.useConsumerGroup ? `, group ${host.opts.consumerGroup}` : '');
        this.setUpFailure = undefined;
        this.setUpDone = true;
        host.onReady();
        return true;
      } catch (err) {
        this.setUpFailure = err;
        // A refused connection fails the commands with "max retries": the refusal says why.
        host.onFailure(this.refusal() ?? err);
        host.report(err);
        this.setUpFailed.notify();
        await sleep(backoffMs(attempt, 100, 2000), host.stopping);
      }
    }
    return false;
  }

  /** Creates the inbox (and group) when missing: at start, and when the inbox expired. */
  private async ensure(first = false): Promise<void> {
    const { cmd, opts, inboxKey, streams } = this.host;
    const exists = first ? 0 : await cmd.exists(inboxKey);
    const pending: Promise<unknown>[] = [];
    if (exists === 0) {
      pending.push(
        cmd.xadd(inboxKey, '*', ...this.controlEntry(inboxKey, Control.Open)).then((id) => {
          if (first && typeof id === 'string') streams.inboxPosition = id;
        }),
        cmd.pexpire(inboxKey, opts.inboxTtlMs),
      );
    }
    if (first) this.servedAtSetUp = this.host.serving();
    if (opts.useConsumerGroup) pending.push(this.createGroup());
    // Only a serving peer reads the request stream: a pure caller's ACL need not allow it (README "ACL roles").
    else if (first && this.servedAtSetUp) pending.push(this.fixStreamPosition());
    await Promise.all(pending);
  }
}
