/**
 * The drain option shared by the channel and the transports.
 *
 * @module
 */
import { RPCInvalidArgumentError } from '../errors.js';

/** Options of `drain()`. */
export interface DrainOptions {
  /**
   * Longest wait for the requests being handled, in milliseconds; what is
   * still running then is handed back (load-balanced).
   * @defaultValue 10000
   */
  graceMs?: number;
}

/** How long `drain()` lets running requests finish, by default: below the 30 s most orchestrators wait after SIGTERM. */
export const DEFAULT_DRAIN_GRACE_MS = 10_000;

/**
 * The grace period of a `drain()` call.
 *
 * @throws {@link RPCInvalidArgumentError} naming `graceMs` when it is not a non-negative number.
 */
export function drainGraceMs(options: DrainOptions | undefined): number {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new RPCInvalidArgumentError('options', 'expected an object such as { graceMs: 10000 }');
  const graceMs = options?.graceMs ?? DEFAULT_DRAIN_GRACE_MS;
  if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0 || graceMs > 2_147_483_647) {
    throw new RPCInvalidArgumentError('graceMs', `expected a non-negative number of milliseconds, got ${String(graceMs)}`);
  }
  return graceMs;
}
