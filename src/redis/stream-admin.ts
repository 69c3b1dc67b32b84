/**
 * On-demand administration of a request stream: its length, groups and
 * newest entry, a trim to a length, every entry (for inspection and tests).
 *
 * @module
 */
import { debugLog } from '../debug-log.js';
import { RPCInvalidArgumentError } from '../errors.js';
import type { RedisConnection } from './connection.js';
import { parseEntryList, toStreamEntry } from './entries.js';
import type { StreamEntry, StreamInfo } from './types.js';

/** The stream's length, number of groups and newest entry. */
export async function streamInfo(cmd: RedisConnection, key: string): Promise<StreamInfo> {
  const [length, groups, last] = await Promise.all([cmd.xlen(key), cmd.call('XINFO', 'GROUPS', key).catch(() => []), cmd.xrevrange(key, '+', '-', 'COUNT', 1)]);
  const entry = parseEntryList(last)[0];
  return { length, groups: Array.isArray(groups) ? groups.length : 0, lastEntry: entry === undefined ? null : toStreamEntry(entry.id, entry.fields) };
}

/**
 * Checks the `maxLen` of a trim.
 *
 * @throws {@link RPCInvalidArgumentError} naming `maxLen`.
 */
export function checkTrimLength(maxLen: unknown): number {
  if (typeof maxLen !== 'number' || !Number.isInteger(maxLen) || maxLen < 0) {
    throw new RPCInvalidArgumentError('maxLen', `expected a non-negative integer, got ${String(maxLen)}`);
  }
  return maxLen;
}

/** `XTRIM key MAXLEN ~ maxLen`; returns the number of entries removed. */
export async function trimToLength(cmd: RedisConnection, key: string, maxLen: number): Promise<number> {
  const removed = await cmd.xtrim(key, 'MAXLEN', '~', maxLen);
  debugLog.trim('%s trimmed %d entries (MAXLEN ~ %d)', key, removed, maxLen);
  return removed;
}

/** Every entry of the stream, oldest first (O(N)). */
export async function allEntries(cmd: RedisConnection, key: string): Promise<StreamEntry[]> {
  const list = await cmd.xrange(key, '-', '+');
  return parseEntryList(list).map((e) => toStreamEntry(e.id, e.fields));
}
