/**
 * Load-balanced delivery guarantees that live in Redis' pending entries list:
 * taking over requests of stopped workers (XAUTOCLAIM), renewing the lease on
 * requests still being handled, and moving requests delivered too often to a
 * dead-letter stream.
 *
 * @module
 */
import type { RedisConnection } from './connection.js';
import { Field, parseEntryList, type ParsedEntry, type RawEntry } from './entries.js';
import type { SealEntry } from './signing.js';

/** A request taken from the pending entries list, with its delivery count after the claim. */
export interface ClaimedEntry {
  readonly entry: ParsedEntry;
  readonly deliveries: number;
}

/** What recovery needs to know. */
export interface GroupRecoveryConfig {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly claimIdleMs: number;
  readonly maxDeliveries: number;
  readonly deadLetterKey: string;
  /** Parses (and verifies) an entry of the request stream. */
  readonly parse: (raw: RawEntry) => ParsedEntry;
  /** Signs an entry this writes. */
  readonly seal: SealEntry;
}

/** Result of one reclaim pass. */
export interface ReclaimResult {
  readonly claimed: ClaimedEntry[];
  /** Ids that were pending but whose entries had been trimmed away (Redis removed them from the list). */
  readonly trimmed: string[];
}

type PendingRow = [id: string, consumer: string, idleMs: number, deliveries: number];

function parsePending(reply: unknown): PendingRow[] {
  if (!Array.isArray(reply)) return [];
  return reply
    .filter((r): r is unknown[] => Array.isArray(r) && typeof r[0] === 'string')
    .map((r) => [String(r[0]), String(r[1]), Number(r[2]), Number(r[3])] as PendingRow);
}

/** Pending-list operations of one worker. */
export class GroupRecovery {
  private cursor = '0-0';

  /** Whether the last {@link GroupRecovery.reclaimIdle} scan reached the end of the pending list. */
  get scanComplete(): boolean {
    return this.cursor === '0-0';
  }

  constructor(
    private readonly redis: RedisConnection,
    private readonly config: GroupRecoveryConfig,
  ) {}

  /**
   * Claims up to `limit` of this consumer's own pending requests (a worker
   * restarted under the same name serves these first), leaving out the ids in
   * `held` (requests it is handling now).
   */
  async claimOwn(limit: number, held: { has(id: string): boolean; readonly size: number } = new Set<string>()): Promise<ReclaimResult> {
    const { stream, group, consumer } = this.config;
    // Requests this worker is handling now are pending on it too: skip them.
    const listed = parsePending(await this.redis.call('XPENDING', stream, group, '-', '+', limit + held.size, consumer));
    const rows = listed.filter((r) => !held.has(r[0])).slice(0, limit);
    if (rows.length === 0) return { claimed: [], trimmed: [] };
    const ids = rows.map((r) => r[0]);
    const entries = parseEntryList(await this.redis.call('XCLAIM', stream, group, consumer, 0, ...ids));
    const found = new Set(entries.map((e) => e.id));
    const trimmed = await this.gone(ids.filter((id) => !found.has(id)));
    if (trimmed.length > 0) await this.redis.call('XACK', stream, group, ...trimmed);
    const counts = new Map(rows.map((r) => [r[0], r[3] + 1]));
    return { claimed: entries.map((e) => ({ entry: this.config.parse(e), deliveries: counts.get(e.id) ?? 1 })), trimmed };
  }

  /** Claims up to `limit` requests idle longer than `claimIdleMs` on any consumer. */
  async reclaimIdle(limit: number): Promise<ReclaimResult> {
    const { stream, group, consumer, claimIdleMs } = this.config;
    const reply = await this.redis.call('XAUTOCLAIM', stream, group, consumer, claimIdleMs, this.cursor, 'COUNT', limit);
    if (!Array.isArray(reply)) return { claimed: [], trimmed: [] };
    this.cursor = typeof reply[0] === 'string' ? reply[0] : '0-0';
    const entries: RawEntry[] = parseEntryList(reply[1]);
    const trimmed = Array.isArray(reply[2]) ? (reply[2] as unknown[]).map(String) : [];
    if (entries.length === 0) return { claimed: [], trimmed };
    const counts = await this.deliveryCounts(entries);
    return { claimed: entries.map((e) => ({ entry: this.config.parse(e), deliveries: counts.get(e.id) ?? 1 })), trimmed };
  }

  /** Resets the idle time of requests this worker is still handling (no delivery is counted). */
  async renew(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const { stream, group, consumer } = this.config;
    await this.redis.call('XCLAIM', stream, group, consumer, 0, ...ids, 'JUSTID');
  }

  /**
   * Replaces a redelivered entry carrying several requests by one entry per
   * request (each recording the deliveries already spent) and acknowledges
   * it, atomically. From then on each request is retried and dead-lettered on
   * its own, so a poison request cannot take the requests batched with it
   * into the dead letters.
   */
  async split(entry: ParsedEntry & { type: 'data' }, spent: number): Promise<void> {
    await this.requeue(entry.id, entry.from, entry.data, spent, 1);
  }

  /**
   * Replaces entry `id` by new entries carrying `data` (at most `perEntry`
   * requests each, each recording the deliveries already spent in field `r`)
   * and acknowledges it, in one MULTI: either the parts are in the stream for
   * any worker of the group and the entry is settled, or nothing happened and
   * the entry is still pending here. Workers blocked in XREADGROUP get the
   * parts at once.
   */
  async requeue(id: string, from: string, data: readonly string[], spent: number, perEntry: number): Promise<void> {
    const { stream, group, seal } = this.config;
    const tx = this.redis.multi();
    for (let i = 0; i < data.length; i += perEntry) {
      const fields = [Field.From, from, Field.Redelivered, String(spent)];
      for (const d of data.slice(i, i + perEntry)) fields.push(Field.Data, d);
      tx.xadd(stream, '*', ...seal(stream, fields));
    }
    tx.xack(stream, group, id);
    const result = await tx.exec();
    if (result === null) throw new Error('MULTI aborted');
    const failed = result.find((r) => r[0] !== null)?.[0];
    if (failed) throw failed;
  }

  /** Moves a request to the dead-letter stream and acknowledges it, atomically. */
  async deadLetter(raw: ParsedEntry, deliveries: number, reason: string): Promise<string | null> {
    const { stream, group, deadLetterKey, seal } = this.config;
    const fields: string[] = ['source', raw.id, 'group', group, 'deliveries', String(deliveries), 'reason', reason];
    if (raw.type === 'data') {
      fields.push(Field.From, raw.from);
      for (const data of raw.data) fields.push(Field.Data, data);
    }
    const result = await this.redis.multi().xadd(deadLetterKey, '*', ...seal(deadLetterKey, fields)).xack(stream, group, raw.id).exec();
    const first = result?.[0];
    if (first?.[0]) throw first[0];
    return typeof first?.[1] === 'string' ? first[1] : null;
  }

  /**
   * Of ids XCLAIM did not return, those whose entries are really gone. The
   * others are no longer pending here: between XPENDING and XCLAIM another
   * worker took one over and answered it (a restarted worker resuming its own
   * requests races the take-over of the same requests). Those are not news.
   */
  private async gone(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const { stream } = this.config;
    const found = await Promise.all(ids.map((id) => this.redis.xrange(stream, id, id)));
    return ids.filter((_, i) => (found[i] ?? []).length === 0);
  }

  private async deliveryCounts(entries: readonly RawEntry[]): Promise<Map<string, number>> {
    const { stream, group, consumer } = this.config;
    const first = entries[0]?.id ?? '-';
    const last = entries[entries.length - 1]?.id ?? '+';
    const rows = parsePending(await this.redis.call('XPENDING', stream, group, first, last, entries.length + 10, consumer));
    return new Map(rows.map((r) => [r[0], r[3]]));
  }
}
