import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { RPCInvalidArgumentError } from '../../errors.js';
import { keyPrefix } from '../keys.js';
import { DEFAULT_REDIS_STREAMS_OPTIONS, redisUrl } from '../options.js';
import { resolveSigning, type ResolvedSigning, type SigningOptions } from '../signing.js';

/** Options of {@link StreamInspector}. */
export interface StreamInspectorOptions {
  /**
   * Redis to inspect. Ignored when `client` is given.
   * @defaultValue 'redis://localhost:6379'
   */
  url?: string;
  /** Your own ioredis connection; `close()` leaves it open. */
  client?: Redis | Cluster;
  /** ioredis options merged over the inspector's (which fail fast: 3 reconnect attempts, 1 retry per command). */
  redisOptions?: RedisOptions;
  /**
   * The service's request stream (`stream` of its {@link RedisStreamsIO}s).
   * @defaultValue 'rpc-stream'
   */
  stream?: string;
  /** The dead-letter stream, when the workers set `deadLetterStream`. @defaultValue `<stream>:dead` with the stream's hash tag */
  deadLetterStream?: string;
  /**
   * The workers' `claimIdleMs`: a consumer whose liveness cannot be read from
   * its inbox counts as alive while its idle time is below this.
   * @defaultValue 10000
   */
  claimIdleMs?: number;
  /**
   * The workers' `signing` option, when they sign entries. Needed to redrive:
   * a dead letter is put back only if its signature verifies, and is signed
   * again for the request stream (without it, signing workers would refuse
   * the redriven request, and an entry forged into the dead letters would be
   * laundered into a signed request).
   */
  signing?: SigningOptions;
}

/** Defaults of {@link StreamInspectorOptions}. */
export const DEFAULT_INSPECTOR_OPTIONS = {
  /** Redis to inspect. */
  url: DEFAULT_REDIS_STREAMS_OPTIONS.url,
  /** Request stream. */
  stream: DEFAULT_REDIS_STREAMS_OPTIONS.stream,
  /** The workers' default take-over time, in milliseconds. */
  claimIdleMs: DEFAULT_REDIS_STREAMS_OPTIONS.claimIdleMs,
} as const;

/** Options after defaults and validation. */
export interface ResolvedInspectorOptions {
  readonly url: string;
  readonly client: Redis | Cluster | undefined;
  readonly redisOptions: RedisOptions | undefined;
  readonly stream: string;
  readonly deadLetterStream: string | undefined;
  readonly claimIdleMs: number;
  readonly signing: ResolvedSigning | undefined;
}

const KNOWN = new Set(['url', 'client', 'redisOptions', 'stream', 'deadLetterStream', 'claimIdleMs', 'signing']);

function key(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512 || /\s/.test(value)) {
    throw new RPCInvalidArgumentError(option, `expected a non-empty string without whitespace, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/**
 * Merges defaults into a new object and validates every option.
 *
 * @throws {@link RPCInvalidArgumentError} naming the first invalid option.
 */
export function resolveInspectorOptions(options: StreamInspectorOptions): ResolvedInspectorOptions {
  if (typeof options !== 'object' || options === null) throw new RPCInvalidArgumentError('options', 'expected an object');
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw new RPCInvalidArgumentError(name, `unknown option; known options are ${[...KNOWN].join(', ')}`);
  }
  const stream = key('stream', options.stream ?? DEFAULT_INSPECTOR_OPTIONS.stream);
  keyPrefix(stream);
  const claimIdleMs = options.claimIdleMs ?? DEFAULT_INSPECTOR_OPTIONS.claimIdleMs;
  if (!Number.isInteger(claimIdleMs) || claimIdleMs < 1) throw new RPCInvalidArgumentError('claimIdleMs', `expected a positive integer, got ${String(claimIdleMs)}`);
  if (options.client !== undefined && (typeof options.client !== 'object' || typeof (options.client as Redis).duplicate !== 'function')) {
    throw new RPCInvalidArgumentError('client', 'expected an ioredis Redis or Cluster instance');
  }
  return {
    url: redisUrl(options.url ?? DEFAULT_INSPECTOR_OPTIONS.url),
    client: options.client,
    redisOptions: options.redisOptions,
    stream,
    deadLetterStream: options.deadLetterStream === undefined ? undefined : key('deadLetterStream', options.deadLetterStream),
    claimIdleMs,
    signing: resolveSigning(options.signing),
  };
}
