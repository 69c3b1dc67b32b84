/**
 * Every error this library throws or rejects with. Callers branch on
 * `instanceof` or on the stable {@link RPCErrorCode} in `code`, never on message text.
 *
 * @module
 */

/** Stable machine-readable codes carried by every {@link RPCError}. */
export type RPCErrorCode =
  | 'ERR_RPC_TIMEOUT'
  | 'ERR_RPC_CLOSED'
  | 'ERR_RPC_METHOD_NOT_FOUND'
  | 'ERR_RPC_PROTOCOL'
  | 'ERR_RPC_DELIVERY'
  | 'ERR_RPC_INVALID_ARGUMENT'
  | 'ERR_RPC_QUEUE_OVERFLOW'
  | 'ERR_RPC_SERIALIZATION'
  | 'ERR_RPC_PAYLOAD_TOO_LARGE'
  | 'ERR_RPC_SIGNATURE'
  | 'ERR_REDIS_CONNECTION'
  | 'ERR_REDIS_PERMISSION'
  | 'ERR_REDIS_DESTROYED'
  | 'ERR_REDIS_NOT_FOUND'
  | 'ERR_REDIS_MODE_MISMATCH';

/** Options accepted by every {@link RPCError} constructor. */
export interface RPCErrorOptions {
  /** The underlying error, if any (an ioredis failure, a decode error, ...). */
  cause?: unknown;
}

/**
 * Base class of every error raised by redis-streams-rpc.
 *
 * @example
 * ```ts
 * try { await api.slow(); } catch (err) {
 *   if (err instanceof RPCError && err.code === 'ERR_RPC_TIMEOUT') retry();
 * }
 * ```
 */
export abstract class RPCError extends Error {
  /** Stable code, safe to branch on. */
  abstract readonly code: RPCErrorCode;

  /**
   * @param message - Human readable description naming the bad value or option.
   * @param options - `cause` of the failure, if any.
   */
  constructor(message: string, options?: RPCErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/**
 * A call got no answer within its timeout. Its stack shows the functions
 * awaiting the call (V8 async stack trace). When the IO refused entries by
 * signing while the call was pending, the last {@link RPCSignatureError} is
 * its `cause` and the message says so (usually a signing mismatch between peers).
 */
export class RPCTimeoutError extends RPCError {
  readonly code = 'ERR_RPC_TIMEOUT' as const;
  /** The method path that timed out, e.g. `math.add`. */
  readonly method: string;
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * @param method - Dotted path of the remote method.
   * @param timeoutMs - The timeout that expired.
   */
  constructor(method: string, timeoutMs: number, options?: RPCErrorOptions) {
    const refused = options?.cause instanceof RPCSignatureError ? `; meanwhile this side refused an entry by signing: ${options.cause.message}` : '';
    super(`RPC call "${method}" timed out after ${timeoutMs} ms (change it with the "timeout" option)${refused}`, options);
    this.method = method;
    this.timeoutMs = timeoutMs;
  }
}

/** The channel (or its IO) was destroyed while the call was pending or before it started. */
export class RPCChannelClosedError extends RPCError {
  readonly code = 'ERR_RPC_CLOSED' as const;
}

/** The peer does not expose the method that was called. */
export class RPCMethodNotFoundError extends RPCError {
  readonly code = 'ERR_RPC_METHOD_NOT_FOUND' as const;
  /** The method path that was not found. */
  readonly method: string;

  /** @param method - Dotted path of the method that does not exist. */
  constructor(method: string, options?: RPCErrorOptions) {
    super(`Remote method "${method}" is not exposed by the peer`, options);
    this.method = method;
  }
}

/** An inbound message was not written by this library or has the wrong shape. It was skipped. */
export class RPCProtocolError extends RPCError {
  readonly code = 'ERR_RPC_PROTOCOL' as const;
  /** Transport id of the offending entry (a Redis stream entry id), when known. */
  readonly entryId: string | undefined;

  /**
   * @param message - What was wrong with the entry.
   * @param entryId - Id of the entry, when known.
   */
  constructor(message: string, entryId?: string, options?: RPCErrorOptions) {
    super(entryId === undefined ? message : `${message} (entry ${entryId})`, options);
    this.entryId = entryId;
  }
}

/** A request could not be delivered: it was dead-lettered after too many delivery attempts. */
export class RPCDeliveryError extends RPCError {
  readonly code = 'ERR_RPC_DELIVERY' as const;
  /** How many times the request was delivered before giving up. */
  readonly deliveries: number;

  /**
   * @param message - Why delivery failed.
   * @param deliveries - Number of delivery attempts.
   */
  constructor(message: string, deliveries: number, options?: RPCErrorOptions) {
    super(message, options);
    this.deliveries = deliveries;
  }
}

/** An option or argument is invalid (or an option is unknown). The message names it and says what is accepted. */
export class RPCInvalidArgumentError extends RPCError {
  readonly code = 'ERR_RPC_INVALID_ARGUMENT' as const;
  /** Name of the offending option or argument. */
  readonly argument: string;

  /**
   * @param argument - Name of the option or argument.
   * @param message - What is wrong and what is accepted.
   */
  constructor(argument: string, message: string, options?: RPCErrorOptions) {
    super(`Invalid "${argument}": ${message}`, options);
    this.argument = argument;
  }
}

/** The bounded inbound queue was full; the oldest message was dropped. */
export class RPCQueueOverflowError extends RPCError {
  readonly code = 'ERR_RPC_QUEUE_OVERFLOW' as const;
  /** Total messages dropped by this IO so far. */
  readonly dropped: number;

  /**
   * @param maxQueueSize - The configured bound.
   * @param dropped - Total number dropped so far.
   */
  constructor(maxQueueSize: number, dropped: number, options?: RPCErrorOptions) {
    super(`Inbound queue full (maxQueueSize ${maxQueueSize}): dropped the oldest message, ${dropped} dropped so far`, options);
    this.dropped = dropped;
  }
}

/** A value could not be serialized or deserialized. */
export class RPCSerializationError extends RPCError {
  readonly code = 'ERR_RPC_SERIALIZATION' as const;
}

/**
 * A message was larger than `maxMessageBytes`: refused before it was written,
 * or, on arrival, before it was parsed.
 */
export class RPCPayloadTooLargeError extends RPCError {
  readonly code = 'ERR_RPC_PAYLOAD_TOO_LARGE' as const;
  /** Size of the message in UTF-8 bytes. */
  readonly bytes: number;
  /** The `maxMessageBytes` limit that was exceeded. */
  readonly limit: number;

  /**
   * @param what - What was too large, e.g. `arguments of "math.add"`.
   * @param bytes - Its size in bytes.
   * @param limit - The limit in force.
   */
  constructor(what: string, bytes: number, limit: number, options?: RPCErrorOptions) {
    super(`Message too large: ${what} is ${bytes} bytes, more than maxMessageBytes (${limit}); send less, or raise "maxMessageBytes" on both sides`, options);
    this.bytes = bytes;
    this.limit = limit;
  }
}

/**
 * Why a {@link RPCSignatureError} refused an entry:
 * - `unsigned`: it carries no signature, and this IO has signing on;
 * - `unexpected-signature`: it is signed, and this IO has no `signing` option: accepted without verification, reported once per IO (both sides must agree);
 * - `unknown-key`: signed with a key id not in this IO's `signing.keys`;
 * - `bad-signature`: its signature does not match: altered, moved to another key, or signed with another secret under the same id;
 * - `outside-window`: Redis stamped it (its id) further from its signing time than `signing.replayWindowMs` (a late copy, or clocks apart);
 * - `replayed`: a copy, under a new id, of an entry this IO already accepted;
 * - `undecryptable`: correctly signed, but an encrypted message (`signing.encrypt`) does not decrypt.
 */
export type RPCSignatureProblem = 'unsigned' | 'unexpected-signature' | 'unknown-key' | 'bad-signature' | 'outside-window' | 'replayed' | 'undecryptable';

/**
 * An entry was refused by signing (the `signing` option of `RedisStreamsIO`)
 * before it was decoded: nothing it carries ran or settled anything. Reported
 * on `'error'`, counted in `refusedEntries`, acknowledged in load-balanced mode.
 */
export class RPCSignatureError extends RPCError {
  readonly code = 'ERR_RPC_SIGNATURE' as const;
  /** Why it was refused. */
  readonly problem: RPCSignatureProblem;
  /** The stream key it was read from. */
  readonly key: string;
  /** Its entry id. */
  readonly entryId: string;
  /** The sender it claims (field `f`), when present: not authenticated. */
  readonly claimedSender: string | undefined;

  /**
   * @param problem - Why it was refused.
   * @param key - The stream key it was read from.
   * @param entryId - Its id.
   * @param claimedSender - Its unauthenticated sender field.
   */
  constructor(problem: RPCSignatureProblem, key: string, entryId: string, claimedSender: string | undefined, options?: RPCErrorOptions) {
    super(`${problem === 'unexpected-signature' ? 'Signed entry' : 'Refused entry'} ${entryId} of "${key}"${claimedSender === undefined ? '' : ` (claimed sender ${JSON.stringify(claimedSender.slice(0, 64))})`}: ${SIGNATURE_PROBLEMS[problem]}`, options);
    this.problem = problem;
    this.key = key;
    this.entryId = entryId;
    this.claimedSender = claimedSender;
  }
}

const SIGNATURE_PROBLEMS: Record<RPCSignatureProblem, string> = {
  unsigned: 'it is not signed, and this IO has the "signing" option on (give every peer of the stream the same signing keys)',
  'unexpected-signature': 'it is signed, and this IO has no "signing" option; accepted unverified, and reported once (give every peer of the stream the same signing keys)',
  'unknown-key': 'it is signed with a key id missing from "signing.keys"',
  'bad-signature': 'its signature does not match (altered, moved to another key, or a different secret under the same key id)',
  'outside-window': 'Redis stamped it further from its signing time than "signing.replayWindowMs" (a late copy, or host clocks apart)',
  replayed: 'it is a copy, under a new id, of an entry already accepted (a replay)',
  undecryptable: 'it is signed, but an encrypted message in it does not decrypt',
};

/** Redis could not be reached, or a Redis command failed. The ioredis error is the `cause`. */
export class RedisStreamsConnectionError extends RPCError {
  readonly code = 'ERR_REDIS_CONNECTION' as const;

  /** @param detail - What failed. */
  constructor(detail: string, options?: RPCErrorOptions) {
    super(`Redis Streams connection error: ${detail}`, options);
  }
}

/**
 * Redis refused a command with `NOPERM`: the ACL user this IO connects as may
 * not run it, or not on that key. Retrying does not help until an operator
 * changes the ACL (see the README's "ACL roles"). The ioredis `ReplyError` is
 * the `cause`.
 *
 * Raised by the call or write that needed the command, by `waitUntilReady()`
 * when the IO cannot set itself up, and on `'error'` each time a background
 * task (a read loop, recovery, a heartbeat, `destroy()`) is refused again.
 * Calls pending on an IO that may not read its own inbox reject with it.
 */
export class RedisStreamsPermissionError extends RPCError {
  readonly code = 'ERR_REDIS_PERMISSION' as const;
  /** The command Redis refused, upper case (`XREADGROUP`), or `'unknown'` when the reply did not name it. */
  readonly command: string;

  /**
   * @param action - What this library was doing, e.g. `read the inbox "{s}:inbox:a"`.
   * @param command - The refused command.
   * @param detail - Redis' reply text.
   */
  constructor(action: string, command: string, detail: string, options?: RPCErrorOptions) {
    super(`Redis refused ${command} (${action}): ${detail}. Grant it to this Redis user; see "ACL roles" in the README`, options);
    this.command = command;
  }
}

/** The Redis Streams adapter was used after `destroy()`. */
export class RedisStreamsDestroyedError extends RPCError {
  readonly code = 'ERR_REDIS_DESTROYED' as const;

  /** @param operation - The operation that was attempted. */
  constructor(operation: string, options?: RPCErrorOptions) {
    super(`Redis Streams adapter has been destroyed (cannot ${operation})`, options);
  }
}

/**
 * What an inspection or an operation needed does not exist: the request
 * stream, a consumer group, or a dead letter. Looking creates nothing, so a
 * stream no worker or caller has used yet is reported this way.
 */
export class RedisStreamsNotFoundError extends RPCError {
  readonly code = 'ERR_REDIS_NOT_FOUND' as const;
  /** What is missing. */
  readonly what: 'stream' | 'group' | 'dead-letter';
  /** Its key, group name or entry id. */
  readonly target: string;

  /**
   * @param what - What is missing.
   * @param target - Its key, group name or entry id.
   * @param detail - Where it was looked for, e.g. `in stream "jobs"`.
   */
  constructor(what: 'stream' | 'group' | 'dead-letter', target: string, detail = '', options?: RPCErrorOptions) {
    super(`${what === 'stream' ? 'Stream' : what === 'group' ? 'Consumer group' : 'Dead letter'} "${target}" does not exist${detail === '' ? '' : ` ${detail}`}`, options);
    this.what = what;
    this.target = target;
  }
}

/** How a peer serves a request stream: `useConsumerGroup: false` (broadcast) or `true` (load-balanced, in a group). */
export type RedisStreamsServeMode = 'broadcast' | 'group';

/**
 * The request stream is served in both modes at once: broadcast servers
 * (`useConsumerGroup: false`) and load-balanced workers (`useConsumerGroup:
 * true`). Every request then runs on every broadcast server and once more on
 * a worker of each group: handlers run twice, silently. Reported on `'error'`
 * (the channel forwards it) by every serving peer involved, when it starts and
 * whenever a serving peer of the other mode appears, once per group (for a
 * broadcast server) or per broadcast server (for a worker). Nothing is
 * stopped: fix the deployment. Callers are never involved: a caller of either
 * mode may call either kind of server (broadcast-mode callers of a worker pool
 * are the usual set-up), and two groups on one stream are a legitimate fan-out.
 */
export class RedisStreamsModeMismatchError extends RPCError {
  readonly code = 'ERR_REDIS_MODE_MISMATCH' as const;
  /** The request stream. */
  readonly stream: string;
  /** How this peer serves it. */
  readonly localMode: RedisStreamsServeMode;
  /** How the other peer serves it. */
  readonly remoteMode: RedisStreamsServeMode;
  /** The consumer group involved (this peer's, or the other's). */
  readonly group: string | undefined;
  /** The other peer: its session id (from its announcement), or its consumer name (seen in `XINFO CONSUMERS`). */
  readonly peer: string;

  /**
   * @param stream - The request stream.
   * @param localMode - How this peer serves it.
   * @param peer - The other peer's session id or consumer name.
   * @param group - The consumer group involved.
   */
  constructor(stream: string, localMode: RedisStreamsServeMode, peer: string, group: string | undefined, options?: RPCErrorOptions) {
    const remoteMode: RedisStreamsServeMode = localMode === 'broadcast' ? 'group' : 'broadcast';
    const where = group === undefined ? 'a consumer group' : `consumer group "${group}"`;
    const workerSide = localMode === 'group' ? `this worker (${where}, useConsumerGroup: true)` : `worker ${JSON.stringify(peer)} (${where}, useConsumerGroup: true)`;
    const serverSide = localMode === 'broadcast' ? 'this broadcast server (useConsumerGroup: false)' : `broadcast server ${JSON.stringify(peer)} (useConsumerGroup: false)`;
    super(
      `Stream "${stream}" is served in both modes: ${localMode === 'broadcast' ? `${serverSide} and ${workerSide}` : `${workerSide} and ${serverSide}`}, ` +
        'so every request runs on every broadcast server and once more in the group. ' +
        'Give every serving peer of the stream the same "useConsumerGroup" (callers may use either), or serve on another "stream"',
      options,
    );
    this.stream = stream;
    this.localMode = localMode;
    this.remoteMode = remoteMode;
    this.group = group;
    this.peer = peer;
  }
}

/**
 * `value` when it is an Error, else an Error describing it: one place instead
 * of `err as Error` casts (JavaScript can throw anything). Never throws.
 */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = `a value of type ${typeof value}`;
  }
  return new Error(`Non-error value thrown: ${text}`, { cause: value });
}
