import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { nanoid } from 'nanoid';
import { RPCInvalidArgumentError } from '../errors.js';
import { loggerProblem, type Logger } from '../io/typed-emitter.js';
import { MAX_MESSAGES_PER_ENTRY } from './entries.js';
import { keyPrefix } from './keys.js';
import { resolveSigning, type ResolvedSigning, type SigningOptions } from './signing.js';

/** Options of {@link RedisStreamsIO}. */
export interface RedisStreamsIOOptions {
  /**
   * `redis://[[user]:[password]@]host[:port][/db]`, or `rediss://` for TLS.
   * Ignored when `client` is given.
   * @defaultValue 'redis://localhost:6379'
   */
  url?: string;
  /** Your own ioredis connection (`Redis` or `Cluster`). It is used for writes and duplicated for blocking reads; `destroy()` leaves it open. */
  client?: Redis | Cluster;
  /** ioredis options merged over the ones parsed from `url` (TLS, timeouts, retry strategy...). */
  redisOptions?: RedisOptions;
  /**
   * The stream carrying requests. Every other key of this IO shares its Redis Cluster hash tag.
   * @defaultValue 'rpc-stream'
   */
  stream?: string;
  /** @defaultValue 'rpc-group' */
  consumerGroup?: string;
  /** Name of this worker in the group. Give a restarted worker the same name to resume its own pending requests. @defaultValue `consumer-<sessionId>` */
  consumerName?: string;
  /**
   * Longest a blocking read waits before it re-arms, in milliseconds.
   * @defaultValue 5000
   */
  blockTimeout?: number;
  /**
   * Hard cap: approximate length (`MAXLEN ~`) applied on every request
   * written. Unlike retention it counts entries, not what is still needed, so
   * it can trim requests that are pending or not read yet: size it well above
   * the largest backlog, or leave it unset and rely on retention.
   * @defaultValue undefined (no cap; retention keeps the stream short)
   */
  maxLen?: number;
  /**
   * Retention: how often a serving peer (a load-balanced worker, a broadcast
   * server) trims the request stream of entries nobody needs, in
   * milliseconds (`XTRIM MINID ~`). A worker removes the entries every
   * consumer group has acknowledged; a broadcast server removes the entries
   * older than {@link RedisStreamsIOOptions.retentionMs}. Neither ever
   * removes a pending entry nor one a group has not read yet. Pure callers
   * never trim the request stream. `false` or `0`: this IO never trims it.
   * @defaultValue 5000
   */
  retentionIntervalMs?: number | false;
  /**
   * Retention window of a broadcast stream, in milliseconds: a broadcast
   * server trims entries written longer ago than this (by Redis' id times),
   * never past what a consumer group on the same stream still needs. Keep it
   * above the longest call timeout: a load-balanced group created later
   * starts at the retained history, so requests written before the first
   * worker existed are served if they are younger than this. `false` or `0`:
   * broadcast servers keep everything (load-balanced trimming is unaffected).
   * @defaultValue 120000
   */
  retentionMs?: number | false;
  /**
   * Approximate length cap (`MAXLEN ~`) applied on every answer and callback
   * entry this IO writes into another endpoint's inbox, so that a caller that
   * stops reading cannot grow Redis without bound. A caller that reads keeps
   * its inbox short itself (it trims what it has read); this bound is only
   * reached by one that does not. Answers trimmed away unread are lost: their
   * calls fail with `RPCTimeoutError`. `false` or `0`: no cap.
   * @defaultValue 10000
   */
  inboxMaxLen?: number | false;
  /** Id of this endpoint; replies are addressed to it. @defaultValue `sessionIdPrefix` followed by a nanoid */
  sessionId?: string;
  /**
   * Start of this endpoint's session id: the generated id is this prefix
   * followed by a nanoid (a given `sessionId` must start with it). The inbox
   * key is then `<prefix of the stream>:inbox:<sessionIdPrefix>...`, so a Redis
   * ACL can grant one service its own inboxes by a key pattern
   * (`%R~{orders}:inbox:billing-*`) and no one else's; see "ACL roles" in the
   * README. No whitespace and no glob characters (`*?[]\`), so the pattern
   * means what it says; end it with a separator (`billing-`) so that no
   * other service's prefix starts with it.
   * @defaultValue '' (no prefix)
   */
  sessionIdPrefix?: string;
  /**
   * Bound of each lane of the inbound queue: replies (answers and callback invocations for this endpoint's calls) and
   * requests. Replies are read first and never dropped to make room for requests. Beyond it the oldest queued message of
   * that lane is dropped and reported. Readers stop reading while their lane is full, so drops are a safety net.
   * @defaultValue 1000
   */
  maxQueueSize?: number;
  /**
   * Load-balanced: the most requests this worker holds at once (queued for its channel or running). It reads only as many
   * as it may take; an entry carrying more requests than its free credit (a burst one caller wrote in one tick) is
   * re-queued in parts that fit, so idle workers of the group take the rest at once. Set it to what one worker should
   * run at a time (slow or heavy handlers: low). At most `maxQueueSize`.
   * @defaultValue 256
   */
  concurrency?: number;
  /**
   * `false`: broadcast (XREAD, every peer sees every request). `true`: load-balanced (XREADGROUP, one worker of the group per request).
   * @defaultValue false
   */
  useConsumerGroup?: boolean;
  /**
   * Load-balanced: a request pending this long on a worker that stopped renewing its lease is taken over by another worker, in milliseconds.
   * Workers renew their leases every third of it and look for requests to take over every half of it, so the requests of a
   * crashed worker are taken over within about 1.5 x claimIdleMs: keep that well below the callers' timeout (30 s by default).
   * @defaultValue 10000
   */
  claimIdleMs?: number;
  /**
   * Load-balanced: deliveries after which a request goes to the dead-letter stream and its caller gets an `RPCDeliveryError`.
   * @defaultValue 5
   */
  maxDeliveries?: number;
  /** Load-balanced: where undeliverable requests go. @defaultValue `<stream>:dead` with the stream's hash tag */
  deadLetterStream?: string;
  /**
   * Time to live of this endpoint's reply inbox, in milliseconds. A live endpoint refreshes it every third of that; a dead one's inbox expires.
   * @defaultValue 60000
   */
  inboxTtlMs?: number;
  /**
   * Most messages written in one tick to the same stream that share one entry
   * (requests of this caller; answers to one caller). Sharing is what makes
   * this library cheaper per call than one XADD per message. `1` gives every
   * message an entry of its own: in load-balanced mode, a burst of slow jobs
   * from one caller is then spread over the workers one by one instead of up to
   * this many at a time. At most {@link MAX_WRITE_BATCH}.
   * @defaultValue 16
   */
  writeBatchSize?: number;
  /** Receives background errors when nobody listens to `'error'`. */
  logger?: Logger;
  /**
   * Signs every entry this IO writes (HMAC-SHA256) and refuses, before
   * decoding, every entry it reads that is not signed by a key of `keys`, is
   * altered, moved to another key, or replayed. Every peer of the stream must
   * have it, with a common key. See the README, "Security".
   * @defaultValue undefined (entries are neither signed nor verified; signed entries are refused)
   */
  signing?: SigningOptions;
}

/** Largest {@link RedisStreamsIOOptions.writeBatchSize}: readers refuse entries carrying more messages. */
export const MAX_WRITE_BATCH = MAX_MESSAGES_PER_ENTRY;

/** Defaults of {@link RedisStreamsIOOptions}. */
export const DEFAULT_REDIS_STREAMS_OPTIONS = {
  /** Redis to connect to. */
  url: 'redis://localhost:6379',
  /** Request stream. */
  stream: 'rpc-stream',
  /** Consumer group of the workers. */
  consumerGroup: 'rpc-group',
  /** Longest blocking read, in milliseconds. */
  blockTimeout: 5000,
  /** Bound of each lane of the inbound queue. */
  maxQueueSize: 1000,
  /** Requests a worker holds at once: room for IO-bound handlers, and a read takes up to 16 entries (fewer, smaller reads cost 10% of throughput at 64). */
  concurrency: 256,
  /** Broadcast by default. */
  useConsumerGroup: false,
  /** Idle time before a request is taken over, in milliseconds: take-over within about 15 s, before the 30 s call timeout. */
  claimIdleMs: 10_000,
  /** Deliveries before dead-lettering. */
  maxDeliveries: 5,
  /** Reply inbox time to live, in milliseconds. */
  inboxTtlMs: 60_000,
  /** Messages of one tick sharing an entry. */
  writeBatchSize: 16,
  /** No session id prefix. */
  sessionIdPrefix: '',
  /** Serving peers trim the request stream every 5 s: a few commands per worker, XLEN stays near what is in flight. */
  retentionIntervalMs: 5000,
  /** Broadcast history kept, in milliseconds: 4 x the default call timeout (30 s), so nothing a caller still waits for is trimmed. */
  retentionMs: 120_000,
  /** Inbox entries kept for a caller that does not read: far above what a reading caller ever has unread. */
  inboxMaxLen: 10_000,
} as const;

/** Options after defaults and validation. */
export interface ResolvedRedisStreamsOptions {
  readonly url: string;
  readonly client: Redis | Cluster | undefined;
  readonly redisOptions: RedisOptions | undefined;
  readonly stream: string;
  readonly consumerGroup: string;
  readonly consumerName: string;
  readonly blockTimeout: number;
  readonly maxLen: number | undefined;
  /** Undefined: retention off. */
  readonly retentionIntervalMs: number | undefined;
  /** Undefined: broadcast servers keep everything. */
  readonly retentionMs: number | undefined;
  /** Undefined: inbox entries are written without a cap. */
  readonly inboxMaxLen: number | undefined;
  readonly sessionId: string;
  readonly sessionIdPrefix: string;
  readonly maxQueueSize: number;
  readonly concurrency: number;
  readonly useConsumerGroup: boolean;
  readonly claimIdleMs: number;
  readonly maxDeliveries: number;
  readonly deadLetterStream: string | undefined;
  readonly inboxTtlMs: number;
  readonly writeBatchSize: number;
  readonly logger: Logger | undefined;
  readonly signing: ResolvedSigning | undefined;
}

const KNOWN = new Set<string>([
  'url', 'client', 'redisOptions', 'stream', 'consumerGroup', 'consumerName', 'blockTimeout', 'maxLen', 'retentionIntervalMs', 'retentionMs', 'inboxMaxLen', 'sessionId', 'sessionIdPrefix',
  'maxQueueSize', 'concurrency', 'useConsumerGroup', 'claimIdleMs', 'maxDeliveries', 'deadLetterStream', 'inboxTtlMs', 'writeBatchSize', 'logger', 'signing',
]);
const MAX_MS = 2_147_483_647;

function integer(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RPCInvalidArgumentError(name, `expected an integer in [${min}, ${max}], got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/** An option that `false` or `0` turns off (undefined), else an integer in [min, max]. */
function optional(name: string, value: unknown, min: number, max: number): number | undefined {
  if (value === false || value === 0) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RPCInvalidArgumentError(name, `expected false, 0 (off) or an integer in [${min}, ${max}], got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

function name(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512 || /\s/.test(value)) {
    throw new RPCInvalidArgumentError(option, `expected a non-empty string without whitespace, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/** A {@link RedisStreamsIOOptions.sessionIdPrefix}: ACL key patterns must be able to name it literally. */
function idPrefix(value: unknown): string {
  if (value === '') return value;
  const prefix = name('sessionIdPrefix', value);
  if (/[*?[\]\\]/.test(prefix) || prefix.length > 256) {
    throw new RPCInvalidArgumentError('sessionIdPrefix', `"${prefix}" has glob characters (*?[]\\) or is longer than 256; an ACL key pattern could not name it literally`);
  }
  return prefix;
}

/** Validates a `redis://` or `rediss://` URL. @throws {@link RPCInvalidArgumentError} naming `url`. */
export function redisUrl(value: unknown): string {
  if (typeof value !== 'string') throw new RPCInvalidArgumentError('url', `expected a string, got ${String(value)}`);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch (cause) {
    throw new RPCInvalidArgumentError('url', `"${value}" is not a URL; expected redis://[[user]:[password]@]host[:port][/db] or rediss://...`, { cause });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new RPCInvalidArgumentError('url', `protocol "${parsed.protocol}" is not supported; use redis:// or rediss://`);
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new RPCInvalidArgumentError('url', `database "${db}" must be a number`);
  return value;
}

/**
 * Merges defaults into a new object and validates every option.
 *
 * @throws {@link RPCInvalidArgumentError} naming the first invalid option.
 */
export function resolveOptions(options: RedisStreamsIOOptions): ResolvedRedisStreamsOptions {
  if (typeof options !== 'object' || options === null) throw new RPCInvalidArgumentError('options', 'expected an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new RPCInvalidArgumentError(key, `unknown option; known options are ${[...KNOWN].join(', ')}`);
  }
  const o = { ...DEFAULT_REDIS_STREAMS_OPTIONS, ...stripUndefined(options) };
  const sessionIdPrefix = idPrefix(o.sessionIdPrefix);
  const sessionId = o.sessionId === undefined ? sessionIdPrefix + nanoid(12) : name('sessionId', o.sessionId);
  if (!sessionId.startsWith(sessionIdPrefix)) {
    throw new RPCInvalidArgumentError('sessionId', `"${sessionId}" does not start with sessionIdPrefix "${sessionIdPrefix}"; give one that does, or leave sessionId out`);
  }
  const stream = name('stream', o.stream);
  keyPrefix(stream);
  if (typeof o.useConsumerGroup !== 'boolean') throw new RPCInvalidArgumentError('useConsumerGroup', `expected a boolean, got ${String(o.useConsumerGroup)}`);
  if (o.client !== undefined && (typeof o.client !== 'object' || typeof (o.client as Redis).duplicate !== 'function')) {
    throw new RPCInvalidArgumentError('client', 'expected an ioredis Redis or Cluster instance');
  }
  if (o.redisOptions !== undefined && (typeof o.redisOptions !== 'object' || o.redisOptions === null)) {
    throw new RPCInvalidArgumentError('redisOptions', 'expected an ioredis options object');
  }
  if (options.concurrency !== undefined && !o.useConsumerGroup) {
    throw new RPCInvalidArgumentError('concurrency', 'applies to load-balanced workers only; set useConsumerGroup: true, or leave concurrency out');
  }
  const maxQueueSize = integer('maxQueueSize', o.maxQueueSize, 1, 1_000_000);
  // The default follows a smaller queue; a given one must fit in it.
  const concurrency = options.concurrency === undefined ? Math.min(o.concurrency, maxQueueSize) : integer('concurrency', o.concurrency, 1, maxQueueSize);
  const badLogger = o.logger === undefined ? undefined : loggerProblem(o.logger);
  if (badLogger !== undefined) throw new RPCInvalidArgumentError('logger', badLogger);
  const resolved: ResolvedRedisStreamsOptions = {
    url: redisUrl(o.url),
    client: o.client,
    redisOptions: o.redisOptions,
    stream,
    consumerGroup: name('consumerGroup', o.consumerGroup),
    consumerName: o.consumerName === undefined ? `consumer-${sessionId}` : name('consumerName', o.consumerName),
    blockTimeout: integer('blockTimeout', o.blockTimeout, 1, MAX_MS),
    maxLen: o.maxLen === undefined ? undefined : integer('maxLen', o.maxLen, 1),
    retentionIntervalMs: optional('retentionIntervalMs', o.retentionIntervalMs, 10, MAX_MS),
    retentionMs: optional('retentionMs', o.retentionMs, 1, Number.MAX_SAFE_INTEGER),
    inboxMaxLen: optional('inboxMaxLen', o.inboxMaxLen, 1, Number.MAX_SAFE_INTEGER),
    sessionId,
    sessionIdPrefix,
    maxQueueSize,
    concurrency,
    useConsumerGroup: o.useConsumerGroup,
    claimIdleMs: integer('claimIdleMs', o.claimIdleMs, 50, MAX_MS),
    maxDeliveries: integer('maxDeliveries', o.maxDeliveries, 1, 1_000_000),
    deadLetterStream: o.deadLetterStream === undefined ? undefined : name('deadLetterStream', o.deadLetterStream),
    inboxTtlMs: integer('inboxTtlMs', o.inboxTtlMs, 1000, MAX_MS),
    writeBatchSize: integer('writeBatchSize', o.writeBatchSize, 1, MAX_WRITE_BATCH),
    logger: o.logger,
    signing: resolveSigning(o.signing),
  };
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
