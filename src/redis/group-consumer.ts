/**
 * The load-balanced side of a worker: reading its share of requests with
 * XREADGROUP as far as its credit goes (`concurrency`, owned by a
 * {@link CreditLedger}), splitting entries that carry more requests than it
 * may take, renewing the lease of requests being handled, taking over the
 * requests of stopped workers one at a time, dead-lettering requests
 * delivered too often, and handing everything back on drain.
 *
 * @module
 */
import type { Redis } from 'ioredis';
import { debugLog } from '../debug-log.js';
import { RPCProtocolError, RPCSignatureError } from '../errors.js';
import { sleep } from './async-utils.js';
import { isPermissionError, redisError, type RedisConnection } from './connection.js';
import { Control, MAX_MESSAGES_PER_ENTRY, parseReadReply, type ParsedEntry } from './entries.js';
import { CreditLedger } from './credit-ledger.js';
import { GroupRecovery, type ReclaimResult } from './group-recovery.js';
import type { IoInboundMessage, IoReceipt } from '../io/io-interface.js';
import type { Inbound } from './inbound.js';
import type { StreamKeys } from './keys.js';
import type { ResolvedRedisStreamsOptions } from './options.js';
import type { PoolReplays } from './pool-replays.js';
import type { SealEntry } from './signing.js';

/** Most entries one read asks for. */
export const READ_BATCH = 128;

/** Most credit (in requests) one XREADGROUP reserves: up to 16 entries of 16 requests. */
const MAX_RESERVATION = 256;

/**
 * A read asks for at most room / {@link MAX_MESSAGES_PER_ENTRY} entries, so its
 * messages fit the room reserved, except that it always asks for at least one
 * entry: that one may overfill the queue by this much.
 */
const ENTRY_SLACK = MAX_MESSAGES_PER_ENTRY - 1;

/** What the consumer needs from its IO. */
export interface GroupConsumerHost {
  readonly cmd: RedisConnection;
  readonly opts: ResolvedRedisStreamsOptions;
  readonly keys: StreamKeys;
  readonly inbound: Inbound;
  /** Signs the entries recovery writes (split, dead letters). */
  readonly seal: SealEntry;
  /** Signing on: replay detection shared by the group. */
  readonly replays: PoolReplays | undefined;
  reportBackground(error: unknown): void;
}

/** One worker's membership in a consumer group. */
export class GroupConsumer {
  /** What happens here (read by the IO's stats()): take-overs, dead letters, splits, hand-backs, and the entries this acknowledges. */
  readonly counters = { reclaimed: 0, deadLettered: 0, splitEntries: 0, handedBack: 0, trimmedEntries: 0, ackedEntries: 0 };
  /** The requests this worker holds (queued or being handled), against `concurrency`. */
  private readonly ledger: CreditLedger;
  private readonly recovery: GroupRecovery;
  /** Set by {@link stopReading}: no read or take-over starts any more. */
  private stopped = false;
  /** Set at start and every claimIdleMs/2: look for pending requests to take over. */
  private recoveryDue = true;
  /**
   * The read or take-over in flight, settled when its reply is in (or it failed). What
   * it delivers after {@link stopReading} is not taken: it stays pending here, for
   * {@link handBack}, which waits for this first.
   */
  private inFlight: Promise<void> = Promise.resolve();

  constructor(private readonly host: GroupConsumerHost) {
    const { opts, keys, cmd, inbound, seal } = host;
    this.ledger = new CreditLedger(opts.concurrency);
    this.recovery = new GroupRecovery(cmd, {
      parse: (raw) => inbound.parse(keys.stream, raw),
      seal,
      stream: opts.stream,
      group: opts.consumerGroup,
      consumer: opts.consumerName,
      claimIdleMs: opts.claimIdleMs,
      maxDeliveries: opts.maxDeliveries,
      deadLetterKey: keys.deadLetter,
    });
  }

  /** How often recovery runs, in milliseconds. */
  get recoveryIntervalMs(): number {
    return Math.max(25, Math.floor(this.host.opts.claimIdleMs / 2));
  }

  /** Asks the read loop to look for requests to take over before its next read. */
  markRecoveryDue(): void {
    this.recoveryDue = true;
  }

  /**
   * A request was answered or acknowledged. Returns whether its entry is now
   * settled and should be acknowledged: an entry carrying several requests is,
   * once the last of them is.
   */
  release(receipt: IoReceipt): boolean {
    return this.ledger.settle(receipt.id, receipt.part);
  }

  /**
   * A message was dropped from the full queue before anyone read it: see
   * {@link CreditLedger.drop}. (With `concurrency` at most `maxQueueSize`, the
   * default, a worker's own requests never fill its queue.)
   */
  drop(message: IoInboundMessage): void {
    const receipt = message.receipt;
    if (receipt !== undefined) this.ledger.drop(receipt.id, receipt.part);
  }

  /** Remembers `command` as the read in flight (a settled one costs {@link handBack} nothing); returns it. */
  private track<T>(command: Promise<T>): Promise<T> {
    this.inFlight = command.then(
      () => undefined,
      () => undefined,
    );
    return command;
  }

  /** Wakes every wait (the IO is closing) and forgets what is held: it stays pending, for a take-over. */
  wake(): void {
    this.stopped = true;
    this.ledger.clear();
  }

  /**
   * Resets the idle time of the requests being handled, so nobody takes them
   * over. Only entries whose messages `read()` has handed out: requests still
   * waiting in the queue are not being handled, and if the reader above has
   * stopped (a wedged channel) they must go to another worker after
   * `claimIdleMs` rather than stay leased here for ever.
   */
  async renewLeases(): Promise<void> {
    if (this.ledger.size === 0) return;
    await this.recovery.renew(this.ledger.leased(this.host.inbound.left));
  }

  /** One step of the read loop: a recovery step when due, else one blocking XREADGROUP. */
  async readOnce(reader: RedisConnection): Promise<void> {
    // Only a worker whose reader keeps up takes over: one with requests still
    // waiting in its queue (a stopped or wedged reader above) must not claim
    // more, nor claim back its own unread ones (XAUTOCLAIM would count a
    // delivery each time and drag them towards the dead letters).
    if (this.recoveryDue && this.host.inbound.queue.sizeOf('request') === 0 && (await this.recoverOrReport())) return;
    const { inbound, opts, keys } = this.host;
    const granted = await this.reserve();
    try {
      if (inbound.closed || this.stopped) return;
      // Block no longer than the recovery interval, so take-overs are not delayed by a quiet stream.
      const block = Math.min(opts.blockTimeout, this.recoveryIntervalMs);
      // COUNT is in entries, each carrying up to MAX_MESSAGES_PER_ENTRY requests.
      const count = Math.min(READ_BATCH, Math.max(1, Math.floor(granted / MAX_MESSAGES_PER_ENTRY)));
      const reply = await this.track((reader as Redis).xreadgroup('GROUP', opts.consumerGroup, opts.consumerName, 'COUNT', count, 'BLOCK', block, 'STREAMS', keys.stream, '>'));
      // Drain began while the read was out: what it delivered is handed back by handBack, not run here.
      if (this.stopped) return;
      const raws = parseReadReply(reply).get(keys.stream) ?? [];
      if (debugLog.read.enabled && raws.length > 0) debugLog.read('%s XREADGROUP %s: %d entries', keys.stream, opts.consumerName, raws.length);
      const parsed = raws.map((raw) => inbound.parse(keys.stream, raw));
      // First deliveries: a copy of an entry another worker of the group was delivered is refused too.
      const copies = this.host.replays === undefined || raws.length === 0 ? undefined : await this.host.replays.copies(raws, parsed.map((p) => p.type === 'data' || p.type === 'control'));
      parsed.forEach((entry, i) => this.accept(copies?.has(i) === true ? replayed(entry, keys.stream) : entry, 1));
    } finally {
      inbound.queue.release(granted);
    }
  }

  /**
   * {@link recoverOne}, except that a recovery command the ACL refuses
   * (XPENDING, XCLAIM, XAUTOCLAIM) is reported and recovery waits for its next
   * turn (every {@link recoveryIntervalMs}, reported again each time): the
   * worker keeps reading new requests meanwhile.
   */
  private async recoverOrReport(): Promise<boolean> {
    try {
      return await this.recoverOne();
    } catch (err) {
      if (!isPermissionError(err)) throw err;
      this.recoveryDue = false;
      this.host.reportBackground(redisError(`take over pending requests of group "${this.host.opts.consumerGroup}"`, err));
      return false;
    }
  }

  /**
   * Removes this worker from its group when it holds no pending request, so
   * groups do not collect dead consumer names. With pending requests it stays,
   * and those are reclaimed by other workers (DELCONSUMER would drop them).
   */
  async leaveGroup(): Promise<void> {
    const { cmd, keys, opts } = this.host;
    const pending = await cmd.call('XPENDING', keys.stream, opts.consumerGroup, '-', '+', 1, opts.consumerName);
    if (Array.isArray(pending) && pending.length === 0) await cmd.call('XGROUP', 'DELCONSUMER', keys.stream, opts.consumerGroup, opts.consumerName);
  }

  /**
   * Reserves credit and queue room (in requests), waiting while there is
   * none: XREADGROUP hands entries over for good, so it may never fetch more
   * than this worker may take.
   */
  private async reserve(): Promise<number> {
    const { inbound } = this.host;
    for (;;) {
      if (inbound.closed || this.stopped) return 0;
      const limit = Math.min(MAX_RESERVATION, this.ledger.free);
      const granted = inbound.queue.reserve(limit);
      if (granted > 0) return granted;
      // Wait for what is actually missing: credit or queue room. Waiting on room that is already there would spin.
      if (limit <= 0) await this.ledger.whenReleased();
      else await inbound.queue.waitForRoom('request');
    }
  }

  /**
   * Stops reading and taking over (drain): the read loop's next step returns
   * at once. What is held keeps running; see {@link handBack}.
   */
  stopReading(): void {
    this.stopped = true;
    this.ledger.wake();
  }

  /**
   * Drain: waits up to `graceMs` for the requests being handled to settle,
   * then hands every request still held back to the group, at once, so
   * another worker runs it now rather than after `claimIdleMs`. `unqueued`
   * are the requests taken out of the queue before they ran: handed back
   * without counting a delivery. A request still running when the grace
   * period ends is handed back too (it may then run twice: at least once),
   * and counts the delivery, so one that never ends still reaches the dead
   * letters. Last, whatever is pending on this consumer and not held (an
   * entry delivered while the read was being cut off) is handed back.
   *
   * @returns how many requests were handed back.
   */
  async handBack(unqueued: readonly IoInboundMessage[], graceMs: number): Promise<number> {
    // A read cut off by the drain may still deliver: wait for its reply, whose entries stay pending
    // here (see readOnce) and are handed back by the sweep below rather than run.
    await Promise.race([this.inFlight, sleep(Math.max(1000, graceMs))]);
    const notRun = new Map<string, Set<number>>();
    for (const m of unqueued) {
      const r = m.receipt;
      if (r?.part === undefined) continue;
      const parts = notRun.get(r.id) ?? new Set<number>();
      parts.add(r.part);
      notRun.set(r.id, parts);
    }
    const running = (): boolean => [...this.ledger.entries()].some((h) => [...h.open].some((p) => notRun.get(h.entry.id)?.has(p) !== true));
    const deadline = Date.now() + graceMs;
    while (running() && Date.now() < deadline && !this.host.inbound.closed) await sleep(deadline - Date.now(), this.ledger.releases);
    let handed = 0;
    for (const held of [...this.ledger.entries()]) {
      const parts = [...held.open].sort((x, y) => x - y);
      const ran = parts.some((p) => notRun.get(held.entry.id)?.has(p) !== true);
      const spent = held.entry.spent + held.deliveries - (ran ? 0 : 1);
      await this.recovery.requeue(held.entry.id, held.entry.from, parts.map((p) => held.entry.data[p] as string), spent, MAX_MESSAGES_PER_ENTRY);
      this.ledger.handBack(held.entry.id);
      handed += parts.length;
    }
    // Delivered to this consumer but never seen (the read cut off by the drain), or left from an earlier life.
    for (;;) {
      const { claimed } = await this.recovery.claimOwn(16);
      if (claimed.length === 0) break;
      for (const { entry, deliveries } of claimed) {
        if (entry.type !== 'data') {
          this.ackQuietly(entry.id);
          continue;
        }
        await this.recovery.requeue(entry.id, entry.from, entry.data, entry.spent + Math.max(0, deliveries - 2), MAX_MESSAGES_PER_ENTRY);
        handed += entry.data.length;
      }
    }
    if (handed > 0) debugLog.claim('%s handed back %d requests on drain', this.host.opts.consumerName, handed);
    this.counters.handedBack += handed;
    return handed;
  }

  /**
   * Takes over ONE pending request (this consumer's own from an earlier life
   * first, then any idle on a stopped worker). It claims first and waits for
   * nothing before that: with nothing to take over, recovery costs one
   * XPENDING + one XAUTOCLAIM and the loop reads new requests at once, however
   * long the requests in flight run (a handler that never settles cannot stall
   * its worker).
   *
   * Isolation, as far as it stays cheap: a redelivered request may be the one
   * that crashed its worker, so once one is claimed, no NEW request is read
   * beside it until it settles, or for at most {@link recoveryIntervalMs}
   * (a slow taken-over request must not stop the worker either). Requests
   * already in flight keep running beside it. A claimed entry carrying several
   * requests is not run as a batch but split (see {@link GroupRecovery.split}),
   * and the loop comes back for the next one only after that, so a poison
   * request cannot push the delivery count of innocent neighbours up with each
   * crash and drag them into the dead letters.
   *
   * @returns whether the loop should come back here before reading new requests.
   */
  private async recoverOne(): Promise<boolean> {
    const { inbound } = this.host;
    await inbound.waitForRoom('request');
    while (this.ledger.free === 0 && !inbound.closed && !this.stopped) await this.ledger.whenReleased();
    if (inbound.closed || this.stopped) return true;
    const granted = inbound.queue.reserve(1);
    let result: ReclaimResult;
    try {
      result = await this.track(this.recovery.claimOwn(1, this.ledger));
      if (result.claimed.length === 0 && result.trimmed.length === 0 && !this.stopped) result = await this.track(this.recovery.reclaimIdle(1));
      // Claimed while drain began: left pending here for handBack.
      if (this.stopped) return true;
      this.acceptClaimed(result);
    } finally {
      inbound.queue.release(granted);
    }
    const more = result.claimed.length > 0 || result.trimmed.length > 0 || !this.recovery.scanComplete;
    if (!more) this.recoveryDue = false;
    for (const { entry } of result.claimed) await this.settledOrTimeout(entry.id, this.recoveryIntervalMs);
    return more;
  }

  /** Waits until entry `id` is no longer held here (or was never taken), at most `ms`. */
  private async settledOrTimeout(id: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (this.host.inbound.closed || this.stopped || !this.ledger.has(id) || left <= 0) return;
      await sleep(left, this.ledger.releases);
    }
  }

  private acceptClaimed(result: ReclaimResult): void {
    const { counters } = this;
    const { events } = this.host.inbound;
    if (result.trimmed.length > 0) {
      debugLog.trim('%d pending entries trimmed before being handled: %s', result.trimmed.length, result.trimmed.join(' '));
      // Entries: what they carried is gone. They are no longer pending either (XACK, or XAUTOCLAIM removed them).
      counters.trimmedEntries += result.trimmed.length;
      counters.ackedEntries += result.trimmed.length;
      events.emit('trimmed', { ids: result.trimmed });
      events.emit('error', new RPCProtocolError(`${result.trimmed.length} pending entr${result.trimmed.length === 1 ? 'y was' : 'ies were'} trimmed from the stream before being handled (maxLen too small?)`, result.trimmed[0]));
    }
    if (result.claimed.length === 0) return;
    this.host.opts.logger?.info?.('redis-streams-rpc took over requests of a stopped worker', { ids: result.claimed.map((c) => c.entry.id), consumer: this.host.opts.consumerName });
    debugLog.claim('%s took over %s', this.host.opts.consumerName, result.claimed.map((c) => `${c.entry.id} (delivery ${c.deliveries})`).join(', '));
    for (const { entry } of result.claimed) counters.reclaimed += entry.type === 'data' ? entry.data.length : 0;
    events.emit('reclaimed', { ids: result.claimed.map((c) => c.entry.id) });
    for (const { entry, deliveries } of result.claimed) this.accept(entry, deliveries);
  }

  /**
   * A request entry from the group: tracked as in flight until every request
   * it carries is answered or acknowledged (the entry is acknowledged with the
   * last answer). `deliveries` counts this one.
   */
  private accept(parsed: ParsedEntry, deliveries: number): void {
    const { inbound, opts } = this.host;
    if (parsed.type !== 'data') {
      const entry = parsed;
      this.ackQuietly(entry.id);
      if (entry.type === 'malformed') inbound.reportMalformed(entry);
      else if (entry.type === 'refused') inbound.reportRefused(entry);
      else if (entry.control === Control.Bye) inbound.control(entry);
      return;
    }
    // Already held here (XAUTOCLAIM took back one of ours still waiting in the queue): it runs once.
    if (this.ledger.has(parsed.id)) return;
    const entry = inbound.withoutAbandoned(parsed);
    if (entry === undefined) {
      this.ackQuietly(parsed.id);
      return;
    }
    const spent = entry.spent + deliveries - 1;
    if (entry.data.length > 1 && deliveries > 1) {
      this.split(entry, spent);
      return;
    }
    if (spent >= opts.maxDeliveries) {
      this.deadLetter(entry, spent);
      return;
    }
    if (entry.data.length > this.ledger.free) {
      this.spread(entry, spent);
      return;
    }
    this.ledger.hold(entry, deliveries, inbound.nextSeq);
    const { stream } = this.host.keys;
    entry.data.forEach((data, part) => inbound.push({ data, from: entry.from, id: entry.id, receipt: { id: entry.id, stream, part }, lane: 'request' }, ENTRY_SLACK));
  }

  /**
   * An entry carrying more requests than this worker's free credit (a burst
   * one caller wrote in one tick): re-queued in parts of that size, so idle
   * workers take the rest now, instead of this worker running them all or
   * holding them unread. All of it goes back, none is kept: a kept part would
   * leave the entry pending here, and a take-over of it would run the
   * re-queued parts twice. Deliveries already spent are preserved.
   */
  private spread(entry: ParsedEntry & { type: 'data' }, spent: number): void {
    const perEntry = Math.max(1, this.ledger.free);
    this.recovery
      .requeue(entry.id, entry.from, entry.data, spent, perEntry)
      .then(() => {
        debugLog.split('%s (%d requests) re-queued in parts of %d: concurrency %d', entry.id, entry.data.length, perEntry, this.host.opts.concurrency);
        this.counters.ackedEntries++;
        this.counters.splitEntries++;
        this.host.inbound.events.emit('split', { id: entry.id, requests: entry.data.length });
      })
      .catch((err: unknown) => this.host.reportBackground(err));
  }

  /** A redelivered batch is not run again as a batch: see {@link GroupRecovery.split}. */
  private split(entry: ParsedEntry & { type: 'data' }, spent: number): void {
    this.recovery
      .split(entry, spent)
      .then(() => {
        debugLog.split('%s split into %d entries (%d deliveries spent)', entry.id, entry.data.length, spent);
        this.counters.ackedEntries++;
        this.host.inbound.events.emit('split', { id: entry.id, requests: entry.data.length });
      })
      .catch((err: unknown) => this.host.reportBackground(err));
  }

  private deadLetter(entry: ParsedEntry & { type: 'data' }, deliveries: number): void {
    const { inbound, opts } = this.host;
    const reason = `delivered ${deliveries} times without an answer (maxDeliveries ${opts.maxDeliveries})`;
    this.recovery
      .deadLetter(entry, deliveries, reason)
      .then((deadLetterId) => {
        debugLog.deadLetter('%s dead-lettered as %s: %s', entry.id, deadLetterId, reason);
        this.counters.deadLettered += entry.data.length;
        this.counters.ackedEntries++;
        inbound.events.emit('dead-letter', { id: entry.id, from: entry.from, deliveries, deadLetterId, reason });
        opts.logger?.info?.('redis-streams-rpc dead-lettered a request', { id: entry.id, from: entry.from, deliveries, deadLetterId, reason });
        // The channel answers the caller with an RPCDeliveryError instead of letting it time out.
        for (const data of entry.data) inbound.push({ data, from: entry.from, id: entry.id, undeliverable: { deliveries, reason }, lane: 'request' });
      })
      .catch((err: unknown) => this.host.reportBackground(err));
  }

  private ackQuietly(id: string): void {
    const { cmd, keys, opts } = this.host;
    cmd
      .xack(keys.stream, opts.consumerGroup, id)
      .then(() => void this.counters.ackedEntries++)
      .catch((err: unknown) => this.host.reportBackground(err));
  }
}

/** An entry another worker of the group was delivered already, under another id: refused. */
function replayed(entry: ParsedEntry, key: string): ParsedEntry {
  const from = entry.type === 'data' || entry.type === 'control' ? entry.from : undefined;
  return { type: 'refused', id: entry.id, error: new RPCSignatureError('replayed', key, entry.id, from) };
}
