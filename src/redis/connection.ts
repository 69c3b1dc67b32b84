import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { RPCError, RedisStreamsConnectionError, RedisStreamsPermissionError } from '../errors.js';
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

/**
 * The `NOPERM` reply inside `err`, if Redis refused a command for lack of ACL
 * permission: the error itself, or one of the queued commands of an aborted
 * MULTI (ioredis puts those in `previousErrors`).
 */
function permissionReply(err: unknown): Error | undefined {
  if (!(err instanceof Error)) return undefined;
  if (err.message.startsWith('NOPERM')) return err;
  const previous = (err as { previousErrors?: unknown }).previousErrors;
  if (!err.message.startsWith('EXECABORT') || !Array.isArray(previous)) return undefined;
  return previous.find((e: unknown): e is Error => e instanceof Error && e.message.startsWith('NOPERM'));
}

/** Whether Redis refused a command of `err` with `NOPERM` (see {@link permissionReply}). */
export function isPermissionError(err: unknown): boolean {
  return permissionReply(err) !== undefined;
}

/**
 * The library error for a failed Redis command: {@link RedisStreamsPermissionError}
 * for a `NOPERM` refusal (permanent until the ACL changes), else a
 * {@link RedisStreamsConnectionError}. Library errors pass through unchanged.
 */
export function redisError(action: string, cause: unknown): RPCError {
  if (cause instanceof RPCError) return cause;
  const denied = permissionReply(cause);
  if (denied === undefined) return connectionError(action, cause);
  // "NOPERM this user has no permissions to run the 'xadd' command"; a refused key names no command.
  const named = /'([^']+)' command/.exec(denied.message)?.[1];
  const fromIoredis = (denied as { command?: { name?: unknown } }).command?.name;
  const command = (named ?? (typeof fromIoredis === 'string' ? fromIoredis : 'unknown')).toUpperCase();
  return new RedisStreamsPermissionError(action, command, denied.message, { cause });
}

/**
 * Node's codes for a TLS peer that failed verification: the certificate does
 * not chain to a trusted CA, has expired, or names another host.
 */
const TLS_VERIFY_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
]);

/**
 * Whether a connection failure needs an operator, not a retry: the server's
 * TLS certificate failed verification, or Redis refused the credentials.
 */
export function isRefusedConnection(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && TLS_VERIFY_CODES.has(code)) return true;
  return /^(WRONGPASS|NOAUTH)/.test(err.message);
}

/** Whether an ioredis error says the consumer group (or its stream) is gone. */
export function isNoGroupError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOGROUP');
}

/** Whether an ioredis error says the key does not exist (XINFO on a stream never written). */
export function isNoSuchKeyError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('ERR no such key');
}

/** Whether an ioredis error says the group already exists. */
export function isBusyGroupError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('BUSYGROUP');
}

/** Whether `err` is already one of this library's errors (code `ERR_*`), to be reported as it is. */
export function isLibraryError(err: unknown): err is Error {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_');
}
