/**
 * Options of {@link RPCChannel} and of its proxies: defaults in one place,
 * merged into a new object and checked strictly (an unknown name is an error,
 * not a silent no-op).
 *
 * @module
 */
import { RPCInvalidArgumentError } from '../errors.js';
import { defaultLogger, loggerProblem, type Logger } from '../io/typed-emitter.js';
import { metadataProblem, type Metadata } from '../protocol/envelope.js';
import { resolveSerializer, type SerializationOption, type Serializer } from '../protocol/serializer.js';
import type { CallOptions } from './types.js';

/** Whether errors thrown by this side's handlers carry their stack to the caller. */
export type RemoteStacksOption = 'keep' | 'omit';

/** Options of {@link RPCChannel}. */
export interface RPCChannelOptions<Local extends object> {
  /** The API this side serves. Can also be set later with {@link RPCChannel.expose}. */
  expose?: Local;
  /**
   * Default timeout of every call, in milliseconds; override per proxy with `getAPI({ timeout })`.
   * @defaultValue 30000
   */
  timeout?: number;
  /**
   * How arguments, results and errors are encoded.
   * @defaultValue 'superjson'
   */
  serialization?: SerializationOption;
  /**
   * Largest message, in UTF-8 bytes, this channel writes or parses (header and
   * encoded payload). A call whose arguments exceed it rejects at once with
   * `RPCPayloadTooLargeError`, without writing; a request or answer that
   * arrives larger is refused before it is parsed: a request is answered with
   * that error, an answer rejects its call with it. Give both sides the same value.
   * @defaultValue 1048576 (1 MiB)
   */
  maxMessageBytes?: number;
  /**
   * `'omit'`: errors thrown by this side's handlers reach callers without their
   * stack, so file paths and code layout of this service stay here; the caller's
   * error gets a stack of the caller's own awaiting code instead. `'keep'`: the
   * handler's stack travels (handy when both sides are yours and you debug).
   * @defaultValue 'omit'
   */
  remoteStacks?: RemoteStacksOption;
  /**
   * `true`: handlers can call `getRequestContext()` after their awaits too
   * (AsyncLocalStorage). `false`: only before their first await (keep the
   * object). Off by default because, on Node 20, an active AsyncLocalStorage
   * makes every promise of the process slower (about 2x in a promise-heavy loop).
   * @defaultValue false
   */
  asyncContext?: boolean;
  /** Receives background errors when nobody listens to `'error'`. @defaultValue a `process.emitWarning` logger */
  logger?: Logger;
}

/** Defaults of {@link RPCChannelOptions}. */
export const DEFAULT_CHANNEL_OPTIONS = {
  /** Default call timeout, in milliseconds. */
  timeout: 30_000,
  /** Default serializer. */
  serialization: 'superjson',
  /** Largest message written or parsed, in bytes (1 MiB, as NATS' default payload limit). */
  maxMessageBytes: 1024 * 1024,
  /** Handler stacks stay on the serving side. */
  remoteStacks: 'omit',
  /** The request context is read before the handler's first await. */
  asyncContext: false,
} as const satisfies RPCChannelOptions<object>;

/** Channel options after defaults and validation. */
export interface ResolvedChannelOptions<Local extends object> {
  readonly expose: Local | undefined;
  readonly timeoutMs: number;
  readonly serializer: Serializer;
  readonly maxMessageBytes: number;
  readonly remoteStacks: RemoteStacksOption;
  readonly asyncContext: boolean;
  readonly logger: Logger;
}

/** Largest timeout a Node timer supports. */
const MAX_TIMEOUT_MS = 2_147_483_647;
/** Smallest `maxMessageBytes`: room for a header and a small payload. */
const MIN_MESSAGE_BYTES = 1024;

const CHANNEL_OPTIONS = new Set(['expose', 'timeout', 'serialization', 'maxMessageBytes', 'remoteStacks', 'asyncContext', 'logger']);
const CALL_OPTIONS = new Set(['timeout', 'metadata']);
/** Options of the Redis adapter that users put on the channel by mistake (the README once listed one there). */
const IO_OPTIONS = new Set(['writeBatchSize', 'maxLen', 'retentionIntervalMs', 'retentionMs', 'inboxMaxLen', 'maxQueueSize', 'useConsumerGroup', 'claimIdleMs', 'maxDeliveries', 'stream', 'url', 'blockTimeout', 'consumerGroup']);

function assertKnown(options: object, known: ReadonlySet<string>, where: string): void {
  for (const key of Object.keys(options)) {
    if (known.has(key)) continue;
    const hint = IO_OPTIONS.has(key) && where === 'RPCChannel' ? `; "${key}" is an option of RedisStreamsIO, give it there` : '';
    throw new RPCInvalidArgumentError(key, `unknown option of ${where}${hint}; known options are ${[...known].join(', ')}`);
  }
}

function assertObject(value: unknown, argument: string): asserts value is object {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RPCInvalidArgumentError(argument, `expected an options object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
}

/** Checks a timeout in milliseconds. */
export function validateTimeout(value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMEOUT_MS) {
    throw new RPCInvalidArgumentError(option, `expected a number of milliseconds in (0, ${MAX_TIMEOUT_MS}], got ${String(value)}`);
  }
  return value;
}

/**
 * Merges defaults into a new object and validates every option; `undefined`
 * means the default.
 *
 * @throws {@link RPCInvalidArgumentError} naming the first unknown or invalid option.
 */
export function resolveChannelOptions<Local extends object>(options: RPCChannelOptions<Local>): ResolvedChannelOptions<Local> {
  assertObject(options, 'options');
  assertKnown(options, CHANNEL_OPTIONS, 'RPCChannel');
  const { expose, timeout, serialization, maxMessageBytes, remoteStacks, asyncContext, logger } = options;
  if (expose !== undefined && (typeof expose !== 'object' || expose === null)) {
    throw new RPCInvalidArgumentError('expose', `expected an object, got ${String(expose)}`);
  }
  const bytes = maxMessageBytes === undefined ? DEFAULT_CHANNEL_OPTIONS.maxMessageBytes : maxMessageBytes;
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < MIN_MESSAGE_BYTES) {
    throw new RPCInvalidArgumentError('maxMessageBytes', `expected an integer number of bytes >= ${MIN_MESSAGE_BYTES}, got ${String(bytes)}`);
  }
  const stacks = remoteStacks === undefined ? DEFAULT_CHANNEL_OPTIONS.remoteStacks : remoteStacks;
  if (stacks !== 'keep' && stacks !== 'omit') {
    throw new RPCInvalidArgumentError('remoteStacks', `expected "keep" or "omit", got ${JSON.stringify(stacks) ?? typeof stacks}`);
  }
  if (asyncContext !== undefined && typeof asyncContext !== 'boolean') throw new RPCInvalidArgumentError('asyncContext', `expected a boolean, got ${String(asyncContext)}`);
  const badLogger = logger === undefined ? undefined : loggerProblem(logger);
  if (badLogger !== undefined) throw new RPCInvalidArgumentError('logger', badLogger);
  return {
    expose,
    timeoutMs: validateTimeout(timeout === undefined ? DEFAULT_CHANNEL_OPTIONS.timeout : timeout, 'timeout'),
    serializer: resolveSerializer(serialization === undefined ? DEFAULT_CHANNEL_OPTIONS.serialization : serialization),
    maxMessageBytes: bytes,
    remoteStacks: stacks,
    asyncContext: asyncContext ?? DEFAULT_CHANNEL_OPTIONS.asyncContext,
    logger: logger === undefined ? defaultLogger : logger,
  };
}

/** `getAPI()` options after validation. */
export interface ResolvedCallOptions {
  readonly timeoutMs: number;
  /** The metadata (a frozen copy; empty when none): what instrumentation sees. */
  readonly metadata: Metadata;
  /** The metadata as the request header carries it, encoded once per proxy. */
  readonly metadataJson: string | undefined;
}

const NO_METADATA: Metadata = Object.freeze({});

/**
 * Validates the options of `getAPI()`.
 *
 * @throws {@link RPCInvalidArgumentError} naming the first unknown or invalid option.
 */
export function resolveCallOptions(options: CallOptions, channelTimeoutMs: number): ResolvedCallOptions {
  assertObject(options, 'options');
  assertKnown(options, CALL_OPTIONS, 'getAPI()');
  const timeoutMs = options.timeout === undefined ? channelTimeoutMs : validateTimeout(options.timeout, 'timeout');
  const { metadata } = options;
  if (metadata === undefined) return { timeoutMs, metadata: NO_METADATA, metadataJson: undefined };
  const problem = metadataProblem(metadata);
  if (problem !== undefined) throw new RPCInvalidArgumentError('metadata', problem);
  const empty = Object.keys(metadata).length === 0;
  return { timeoutMs, metadata: empty ? NO_METADATA : Object.freeze({ ...metadata }), metadataJson: empty ? undefined : JSON.stringify(metadata) };
}
