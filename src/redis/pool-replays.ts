/**
 * Replay detection shared by the workers of one consumer group (signing on,
 * load-balanced). Each IO remembers the signatures it accepted (see
 * {@link EntrySigner}), but in a pool a copy of a signed request usually
 * reaches another worker than the original did. So a request entry delivered
 * for the first time (XREADGROUP `>`) is also registered in a sorted set of
 * the group, `<prefix>:seen:<group>` (member: the signature, score: its
 * signing time), with `ZADD NX`: when the signature is already there, the
 * entry is a copy. Redeliveries (take-overs) are not registered again: their
 * first delivery was.
 *
 * Members are pruned once the group has read `2 x replayWindowMs` past them:
 * the group delivers in id order, and a copy must be stamped within the window
 * of its signing time, so no copy of them can still be delivered. Cost: one
 * ZADD per request entry (auto-pipelined with the others of the read), one
 * round trip per read, and a ZREMRANGEBYSCORE every {@link PRUNE_EVERY} reads.
 *
 * @module
 */
import type { RedisConnection } from './connection.js';
import type { RawEntry } from './entries.js';
import { streamTime } from './inbound.js';

/** Reads between two prunings of the set. */
const PRUNE_EVERY = 64;

/** The set expires this long after its last pruning (a pool gone for good leaves nothing behind). */
const SET_TTL_MS = 24 * 3_600_000;

/** Pool-wide replay detection for one group. */
export class PoolReplays {
  private reads = 0;
  /** Newest stream time this worker read. */
  private position = 0;

  constructor(
    private readonly redis: RedisConnection,
    /** The group's set. */
    private readonly key: string,
    private readonly replayWindowMs: number,
  ) {}

  /**
   * Registers the signatures of entries read for the first time (only those
   * `verified`, in the same order as `entries`) and returns the indexes of the
   * ones already registered by any worker of the group: copies.
   */
  async copies(entries: readonly RawEntry[], verified: readonly boolean[]): Promise<Set<number>> {
    const adds: Promise<number | null>[] = [];
    const indexes: number[] = [];
    entries.forEach((raw, i) => {
      if (!verified[i]) return;
      const n = raw.fields.length;
      indexes.push(i);
      this.position = Math.max(this.position, streamTime(raw.id));
      // Verified entries end with k, t, s: see signing.ts.
      adds.push(this.redis.zadd(this.key, 'NX', Number(raw.fields[n - 3]), raw.fields[n - 1] as string));
    });
    const copies = new Set<number>();
    if (adds.length === 0) return copies;
    const results = await Promise.all(adds);
    results.forEach((added, j) => {
      if (added === 0) copies.add(indexes[j] as number);
    });
    if (++this.reads % PRUNE_EVERY === 0) {
      await Promise.all([this.redis.zremrangebyscore(this.key, '-inf', `(${this.position - 2 * this.replayWindowMs}`), this.redis.pexpire(this.key, SET_TTL_MS)]);
    }
    return copies;
  }
}
