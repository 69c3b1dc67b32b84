/**
 * The contract between {@link RPCChannel} and a transport. Plain data only: no
 * transport (Redis, ioredis) type appears here, so the channel can be driven by
 * the in-memory pair in unit tests and by {@link RedisStreamsIO} in production.
 *
 * @module
 */

/**
 * Opaque handle of an inbound message that the transport wants settled
 * (acknowledged) once it has been handled. Pass it back unchanged.
 */
export interface IoReceipt {
  /** Transport id of the message, e.g. a Redis stream entry id. */
  readonly id: string;
  /** Where the message was read (Redis: the stream key), so one reader can serve several streams. */
  readonly stream?: string;
  /** Position of the message in its transport unit, when one carries several (Redis: the `d` field of the entry, from 0). */
  readonly part?: number;
}

/** Why a transport refused to deliver a message for handling. */
export interface IoUndeliverable {
  /** How many times the message was delivered before the transport gave up. */
  readonly deliveries: number;
  /** Human-readable reason, e.g. "exceeded maxDeliveries (5)". */
  readonly reason: string;
}

/** One inbound message as the channel sees it. */
export interface IoInboundMessage {
  /** The encoded payload, exactly as the sender wrote it. */
  readonly data: string;
  /** Endpoint id of the sender, when the transport knows it. Replies are addressed to it. */
  readonly from?: string;
  /** Transport id (e.g. a stream entry id), for error reports. */
  readonly id?: string;
  /**
   * Present when the transport needs the message settled: pass it as
   * {@link IoOutboundMessage.settles} with the reply, or to {@link IoInterface.ack}.
   */
  readonly receipt?: IoReceipt;
  /**
   * Set when the transport has given up on this message (for example it was
   * dead-lettered after too many deliveries). It must not be handled; the
   * channel tells the sender instead. The transport has already settled it.
   */
  readonly undeliverable?: IoUndeliverable;
  /**
   * Which way it came, for a transport that keeps requests and replies apart:
   * `'request'` from the request lane (Redis: the request stream), `'reply'`
   * from this endpoint's own address (Redis: its inbox), where only answers and
   * callback invocations for its calls belong. The channel refuses a request
   * that came as a reply (it does not run it, nor answer it) and anything but a
   * request that came on the request lane. Absent: the transport does not say.
   */
  readonly lane?: IoLane;
}

/** See {@link IoInboundMessage.lane}. */
export type IoLane = 'request' | 'reply';

/** One outbound message. */
export interface IoOutboundMessage {
  /** The encoded payload. */
  readonly data: string;
  /**
   * Endpoint id of the only peer that should receive this message (a reply or
   * a callback invocation). Absent: a request, delivered per the transport's
   * mode (to every peer, or to one worker of a pool).
   */
  readonly target?: string;
  /**
   * The inbound message this one answers. The transport settles it together
   * with this write (Redis: XADD of the reply and XACK in one transaction).
   */
  readonly settles?: IoReceipt;
}

/** What a transport can do; the channel adapts to it. */
export interface IoCapabilities {
  /** Inbound messages carry `from`, and `target` on writes is honoured. */
  readonly addressing: boolean;
  /** Inbound requests carry receipts that must be settled. */
  readonly acknowledgements: boolean;
  /** Each request reaches exactly one of several serving peers. */
  readonly loadBalanced: boolean;
  /**
   * Each request reaches every peer, so peers that serve nothing stay silent
   * rather than answering "method not found".
   */
  readonly broadcast: boolean;
}

/**
 * Counters kept by a transport. All are totals since creation, and all count
 * messages (one request, answer, notification or callback invocation each),
 * whatever carried them: a Redis stream entry carries the writes of one tick,
 * up to 16 messages. The two counters of entries say so in their names.
 */
export interface IoStats {
  /** Messages written. */
  sent: number;
  /** Messages handed to the inbound queue. */
  received: number;
  /** Requests (messages) settled: answered (the answer written) or acknowledged. */
  acked: number;
  /**
   * Entries acknowledged in the transport (Redis: XACK), for whatever reason:
   * an entry is acknowledged once the last request it carries is settled, or
   * when it is dead-lettered, split, trimmed or not a request.
   */
  ackedEntries: number;
  /** Messages taken over from a consumer that stopped. */
  reclaimed: number;
  /** Messages moved to a dead-letter store. */
  deadLettered: number;
  /** Messages dropped because the inbound queue was full. */
  dropped: number;
  /**
   * Pending entries that were trimmed away before being handled. Entries, not
   * messages: the requests they carried are gone with them.
   */
  trimmedEntries: number;
  /**
   * Request-stream entries removed by this IO's retention (Redis: the
   * `retentionIntervalMs` trims): acknowledged by every group, or older than
   * the broadcast window. Entries, not messages; nothing still needed is in them.
   */
  retentionTrimmedEntries: number;
  /** Successful reconnections after a lost connection. */
  reconnects: number;
  /** Inbound messages skipped because they were not valid (an entry not written by this library counts as one). */
  malformed: number;
  /**
   * Entries refused before decoding by signing (Redis: the `signing` option):
   * unsigned, signed with an unknown key, altered, moved to another key,
   * stamped outside the replay window, or replayed. Entries, not messages:
   * nothing they carry is trusted, not even how many messages that is.
   */
  refusedEntries: number;
  /**
   * Requests skipped, not run, because their caller had announced it went away
   * (`signalDestroy()`, or the `destroy()` of an endpoint that made calls)
   * after writing them. Acknowledged like answered ones; nobody is answered.
   */
  abandoned: number;
  /**
   * Entries a worker re-queued in smaller entries because they carried more
   * requests than its free `concurrency` (Redis: XADD of the parts and XACK
   * of the entry in one MULTI), so that idle workers take the rest. Entries, not messages.
   */
  splitEntries: number;
  /** Requests a draining worker handed back to its group unfinished, so that another worker runs them at once. */
  handedBack: number;
  /**
   * Control entries (Redis: `bye`, `serve`) ignored because they were read
   * after their deadline: an old announcement does not act. Entries, not messages.
   */
  expiredControlEntries: number;
}

/**
 * Values that go up and down, sampled by the transport; absent when it does
 * not know them. Redis: a serving load-balanced IO samples its group at every
 * retention run (`retentionIntervalMs`, 5 s by default).
 */
export interface IoGauges {
  /** Load-balanced: requests in the stream not delivered to this worker's group yet (Redis 7 `lag` of XINFO GROUPS). */
  consumerLag?: number;
  /** Load-balanced: requests delivered to this worker's group and not acknowledged yet, all workers together. */
  pendingRequests?: number;
  /** When they were sampled (ms since the epoch). */
  sampledAt?: number;
}

/** Events every transport emits. */
export interface IoEvents {
  /** A message was queued for {@link IoInterface.read}. */
  message: (message: IoInboundMessage) => void;
  /** A background problem (connection loss, a malformed entry, a dropped message). */
  error: (error: Error) => void;
  /** A peer announced that it is going away (`signalDestroy()`, or Redis: the `destroy()` of a caller). Once per peer. */
  'peer-destroyed': (peerId: string) => void;
  /**
   * Answers cannot reach this endpoint (Redis refuses to let it read its
   * inbox): no call pending now can succeed, and the channel rejects them with
   * `error` instead of letting them time out. Emitted again each time it recurs.
   */
  'answers-unreachable': (error: Error) => void;
}

/** A listener map: event name to listener signature. */
export type EventMap<T> = { [K in keyof T]: (...args: never[]) => void };

/**
 * A generic, transport-agnostic read/write IO driven by {@link RPCChannel}.
 *
 * @typeParam Events - The transport's event map; it extends {@link IoEvents}.
 */
export interface IoInterface<Events extends IoEvents = IoEvents> {
  /** A human-readable name, e.g. the stream name. */
  readonly name: string;
  /** This endpoint's id; peers address replies to it. */
  readonly id: string;
  /** What the transport can do. */
  readonly capabilities: IoCapabilities;
  /** The consumer group this endpoint serves in, when load-balanced (for instrumentation). */
  readonly consumerGroup?: string | undefined;
  /**
   * Resolves with the next inbound message, or `null` once the IO is closed.
   * Only one read may be outstanding at a time.
   */
  read(): Promise<IoInboundMessage | null>;
  /**
   * Writes one message.
   *
   * @throws When the IO is destroyed or the transport fails; the error is typed.
   */
  write(message: IoOutboundMessage): Promise<void>;
  /** Settles an inbound message that was handled without a reply (a notification). */
  ack?(receipt: IoReceipt): Promise<void>;
  /**
   * Called by the channel once it serves an API: a transport may then start
   * taking requests (a load-balanced IO must not join a worker pool before).
   */
  acceptRequests?(): void;
  /** Subscribes to an event. */
  on<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  /** Unsubscribes a listener added with {@link IoInterface.on}. */
  off<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  /**
   * Graceful stop of a serving transport: stops taking requests, waits up to
   * `graceMs` for the ones taken to settle, and gives what is left back to
   * the transport (a load-balanced one hands it to another worker at once).
   * It keeps writing until destroyed. Resolves with the number of requests
   * handed back.
   */
  drain?(options?: { graceMs?: number }): Promise<number>;
  /** Releases every resource. Idempotent. Pending and later reads resolve `null`. */
  destroy?(): Promise<void>;
  /** Tells peers that this endpoint is going away (they emit `'peer-destroyed'`). */
  signalDestroy?(): Promise<void>;
  /** Current counters. */
  stats?(): IoStats;
  /** Current gauges (lag, pending), as last sampled. */
  gauges?(): IoGauges;
}

/** A fresh zeroed {@link IoStats}. */
export function emptyIoStats(): IoStats {
  return { sent: 0, received: 0, acked: 0, ackedEntries: 0, reclaimed: 0, deadLettered: 0, dropped: 0, trimmedEntries: 0, retentionTrimmedEntries: 0, reconnects: 0, malformed: 0, refusedEntries: 0, abandoned: 0, splitEntries: 0, handedBack: 0, expiredControlEntries: 0 };
}
