/**
 * Retention of the request stream, run by serving peers every
 * `retentionIntervalMs`: without it a stream keeps every request ever
 * answered. One rule per mode, each an `XTRIM MINID ~` that never removes an
 * entry still needed:
 *
 * - a load-balanced worker trims what every consumer group has acknowledged
 *   (the pending-safe id: no pending entry, none a group has yet to read);
 * - a broadcast server trims what is older than `retentionMs` (XREAD readers
 *   keep their positions to themselves, so time is all there is), and never
 *   past the pending-safe id when the stream has groups too.
 *
 * Pure callers never run it: their ACL need not let them read the stream.
 *
 * @module
 */
import { debugLog } from '../debug-log.js';
import { isNoSuchKeyError, redisError, type RedisConnection } from './connection.js';
import { compareIds } from './entries.js';
import { pendingSafeMinId, readGroupPositions, type GroupPosition } from './safe-trim.js';

/**
 * Most XTRIM calls of one run. Each removes at most what Redis' default
 * LIMIT allows (100 macro nodes, 10,000 entries with default settings), so
 * a large backlog goes in bounded steps that let other clients in between.
 */
const MAX_PASSES = 10;

/** What the retention of one IO needs. */
export interface RetentionConfig {
  readonly cmd: RedisConnection;
  /** The request stream's key. */
  readonly stream: string;
  /** `'group'`: a load-balanced worker; `'broadcast'`: a broadcast server. */
  readonly mode: 'group' | 'broadcast';
  /** Broadcast window in milliseconds; undefined keeps broadcast history. */
  readonly windowMs: number | undefined;
  /** Counts the entries removed. */
  readonly trimmed: (entries: number) => void;
  /** Told the groups' positions read by every run (the IO keeps its group's lag and pending as gauges). */
  readonly observed?: (groups: readonly GroupPosition[]) => void;
}

/**
 * The id below which `mode` may trim: the pending-safe id for a worker; for a
 * broadcast server, `now - windowMs`, or the pending-safe id if that is older.
 * Null when nothing may be trimmed.
 */
export function retentionMinId(mode: 'group' | 'broadcast', groups: readonly GroupPosition[], windowMs: number | undefined, now: number): string | null {
  const safe = pendingSafeMinId(groups);
  if (mode === 'group') return safe;
  if (windowMs === undefined) return null;
  const windowId = `${Math.max(0, now - windowMs)}-0`;
  return safe === null || compareIds(windowId, safe) < 0 ? windowId : safe;
}

/** Trims the request stream of what its mode says nobody needs. */
export class StreamRetention {
  constructor(private readonly config: RetentionConfig) {}

  /** Whether a run can trim anything (a broadcast server without a window cannot). */
  get active(): boolean {
    return this.config.mode === 'group' || this.config.windowMs !== undefined;
  }

  /**
   * One run: the groups' positions, then XTRIM MINID ~ in bounded passes.
   * @returns The number of entries removed.
   * @throws {@link RedisStreamsPermissionError} when the ACL refuses XINFO, XPENDING or XTRIM
   *   (see "ACL roles" in the README), else {@link RedisStreamsConnectionError}.
   */
  async run(): Promise<number> {
    if (!this.active) return 0;
    try {
      return await this.trim();
    } catch (err) {
      // Nothing written yet (a broadcast stream is created by its first request).
      if (isNoSuchKeyError(err)) return 0;
      throw redisError(`trim the request stream "${this.config.stream}" (retention)`, err);
    }
  }

  private async trim(): Promise<number> {
    const { cmd, stream, mode, windowMs } = this.config;
    const groups = await readGroupPositions(cmd, stream);
    this.config.observed?.(groups);
    const minId = retentionMinId(mode, groups, windowMs, Date.now());
    if (minId === null) return 0;
    let removed = 0;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const n = await cmd.xtrim(stream, 'MINID', '~', minId);
      if (n === 0) break;
      // Counted pass by pass: a reader of the stats who sees the stream shorter sees the count too.
      removed += n;
      this.config.trimmed(n);
    }
    if (removed > 0) {
      debugLog.trim('%s retention trimmed %d entries (MINID ~ %s, %s)', stream, removed, minId, mode === 'group' ? 'acknowledged by every group' : `older than ${windowMs ?? 0} ms`);
    }
    return removed;
  }
}
