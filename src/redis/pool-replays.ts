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
 * of its signing time, so no copy of them can still be delivered.
 *
 * Two ways to read, one cost each:
 * - {@link PoolReplays.read}: while requests keep coming (the worker's last
 *   read returned some), one script does the XREADGROUP (without BLOCK) and
 *   the ZADD NX of every entry it delivers, in one step on the server: no
 *   round trip more than a plain read. It registers the signature an entry
 *   carries before the worker verified it; an entry is only registered when
 *   its signing time is within the window of its id's time (a forged far
 *   future score could never be pruned).
 * - {@link PoolReplays.copies}: after a blocking XREADGROUP (the stream was
 *   quiet), the verified entries are registered with one ZADD NX each,
 *   auto-pipelined: one round trip more, paid when the worker was idle.
 *
 * A ZREMRANGEBYSCORE runs every {@link PRUNE_EVERY} reads. A user whose ACL
 * refuses EVAL/EVALSHA gets the second way for every read (see "ACL roles"
 * in the README).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { debugLog } from '../debug-log.js';
import { isPermissionError, type RedisConnection } from './connection.js';
import { parseReadReply, type RawEntry } from './entries.js';
import { streamTime } from './inbound.js';

/** Reads between two prunings of the set. */
const PRUNE_EVERY = 64;

/** The set expires this long after its last pruning (a pool gone for good leaves nothing behind). */
const SET_TTL_MS = 24 * 3_600_000;

/**
 * KEYS: the request stream, the group's set. ARGV: group, consumer, COUNT,
 * replay window (ms). Returns false when nothing was delivered, else
 * `{ XREADGROUP reply, 0-based indexes of the entries whose signature was
 * already registered }`. Entries end with `k <keyId> t <signedAt> s <mac>`
 * (signing.ts); a deleted entry (nil fields) is skipped.
 */
const READ_SCRIPT = `
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if not reply then return false end
local window = tonumber(ARGV[4])
local copies = {}
for i, entry in ipairs(reply[1][2]) do
  local f = entry[2]
  if type(f) == 'table' then
    local n = #f
    if n >= 8 and f[n - 1] == 's' and f[n - 3] == 't' then
      local signed = tonumber(f[n - 2])
      local stamped = tonumber(string.match(entry[1], '^(%d+)'))
      if signed and stamped and math.abs(stamped - signed) <= window then
        if redis.call('ZADD', KEYS[2], 'NX', signed, f[n]) == 0 then copies[#copies + 1] = i - 1 end
      end
    end
  end
end
return { reply, copies }
`;
const READ_SCRIPT_SHA = createHash('sha1').update(READ_SCRIPT).digest('hex');

/** What {@link PoolReplays.read} delivered. */
export interface RegisteredRead {
  readonly entries: RawEntry[];
  /** Indexes into `entries` of copies: a worker of the group was delivered an entry with the same signature. */
  readonly copies: Set<number>;
}

/** Pool-wide replay detection for one group. */
export class PoolReplays {
  private reads = 0;
  /** Newest stream time this worker read. */
  private position = 0;
  /** False once the ACL refused the read script: every read blocks and registers after. */
  private scriptAllowed = true;

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
    await this.counted();
    return copies;
  }

  /** Whether {@link read} may be tried (the ACL has not refused the script). */
  get canRead(): boolean {
    return this.scriptAllowed;
  }

  /**
   * One XREADGROUP without BLOCK of up to `count` new entries of `stream`,
   * whose signatures are registered in the same step (the read script).
   * Null when nothing was delivered; undefined when the ACL refuses the
   * script (from then on {@link canRead} is false).
   */
  async read(reader: RedisConnection, stream: string, group: string, consumer: string, count: number): Promise<RegisteredRead | null | undefined> {
    const args = [2, stream, this.key, group, consumer, count, this.replayWindowMs] as const;
    let reply: unknown;
    try {
      reply = await (reader as Redis).evalsha(READ_SCRIPT_SHA, ...args).catch((err: unknown) => {
        if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return (reader as Redis).eval(READ_SCRIPT, ...args);
        throw err;
      });
    } catch (err) {
      if (!isPermissionError(err)) throw err;
      this.scriptAllowed = false;
      debugLog.read('%s: the read script is refused (%s); registering signatures after each read instead', stream, err instanceof Error ? err.message : String(err));
      return undefined;
    }
    if (!Array.isArray(reply)) return null;
    const entries = parseReadReply(reply[0]).get(stream) ?? [];
    const copies = new Set<number>(Array.isArray(reply[1]) ? (reply[1] as unknown[]).filter((i): i is number => typeof i === 'number') : []);
    for (const raw of entries) this.position = Math.max(this.position, streamTime(raw.id));
    await this.counted();
    return { entries, copies };
  }

  /** Counts a read; every {@link PRUNE_EVERY} reads, prunes the set and renews its expiry. */
  private async counted(): Promise<void> {
    if (++this.reads % PRUNE_EVERY !== 0) return;
    await Promise.all([this.redis.zremrangebyscore(this.key, '-inf', `(${this.position - 2 * this.replayWindowMs}`), this.redis.pexpire(this.key, SET_TTL_MS)]);
  }
}
