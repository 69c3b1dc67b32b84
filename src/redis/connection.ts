import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { RedisStreamsConnectionError } from '../errors.js';
import { backoffMs } from './async-utils.js';

/** An ioredis connection: a single node or a cluster. */
export type RedisConnection = Redis | Cluster;

/**
 * Connection defaults for connections this library creates. Writes fail
 * within a few retries (bounded time) instead of waiting in the offline queue
 * for ever; reconnects back off with jitter up to 2 s (no spin, no flood).
 */
const COMMAND_DEFAULTS: RedisOptions = {
  maxRetriesPerRequest: 3,
  enableAutoPipelining: true,
  retryStrategy: (times) => backoffMs(times, 50, 2000),
  lazyConnect: false,
  // ioredis otherwise keeps a 2 s timer alive after disconnecting a socket that never connected.
  disconnectTimeout: 200,
};

/**
 * Blocking reads wait through an outage (`maxRetriesPerRequest: null`): the
 * read is re-sent by ioredis after reconnecting, so the loop neither spins nor
 * errors while Redis is away.
 */
const BLOCKING_OVERRIDES: RedisOptions = {
  maxRetriesPerRequest: null,
  enableAutoPipelining: false,
  enableOfflineQueue: true,
};

/** Creates the command connection from a URL and user options. */
export function createCommandConnection(url: string, redisOptions: RedisOptions | undefined): Redis {
  return new Redis(url, { ...COMMAND_DEFAULTS, ...redisOptions });
}

/** A dedicated connection for one blocking read loop. */
export function createBlockingConnection(base: RedisConnection, url: string, redisOptions: RedisOptions | undefined, own: boolean): RedisConnection {
  if (base instanceof Cluster) {
    // Cluster takes per-node options under `redisOptions`; a blocking read goes to the node owning the stream's slot.
    return base.duplicate(undefined, { redisOptions: { ...base.options.redisOptions, ...BLOCKING_OVERRIDES }, enableAutoPipelining: false, maxRedirections: 16 });
  }
  if (!own) return base.duplicate(BLOCKING_OVERRIDES);
  return new Redis(url, { ...COMMAND_DEFAULTS, ...redisOptions, ...BLOCKING_OVERRIDES, connectionName: undefined });
}

/** Wraps an ioredis failure. */
export function connectionError(action: string, cause: unknown): RedisStreamsConnectionError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new RedisStreamsConnectionError(`${action} failed: ${detail}`, { cause });
}

/** Whether an ioredis error says the consumer group (or its stream) is gone. */
export function isNoGroupError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOGROUP');
}

/** Whether an ioredis error says the group already exists. */
export function isBusyGroupError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('BUSYGROUP');
}

/** Whether `err` is already one of this library's errors (code `ERR_*`), to be reported as it is. */
export function isLibraryError(err: unknown): err is Error {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_');
}
