/**
 * The parent's own Redis connection: command counters, server version, and
 * deleting a case's keys afterwards.
 */
import { Redis } from 'ioredis';

const SCAN_BATCH = 1000;
/** Stops a runaway SCAN: no case writes anywhere near this many keys. */
const MAX_SCAN_ROUNDS = 100_000;

/** `calls=` of every `cmdstat_*` line, by command, except INFO itself (we issue it to measure). */
export function commandCallsByName(info: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const line of info.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match === null || match[1] === undefined || match[1] === 'info') continue;
    calls.set(match[1], Number(match[2]));
  }
  return calls;
}

/** Sum of `calls=` over every `cmdstat_*` line except INFO itself. */
export function sumCommandCalls(info: string): number {
  let total = 0;
  for (const n of commandCallsByName(info).values()) total += n;
  return total;
}

/** Calls per command between two {@link commandCallsByName} readings; commands not called are left out. */
export function commandCallsDelta(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [name, n] of after) {
    const d = n - (before.get(name) ?? 0);
    if (d > 0) delta.set(name, d);
  }
  return delta;
}

/** One `field:value` of an INFO section. */
export function infoField(info: string, name: string): string | undefined {
  for (const line of info.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith(`${name}:`)) return trimmed.slice(name.length + 1);
  }
  return undefined;
}

export class RedisAdmin {
  private readonly redis: Redis;

  constructor(url: string) {
    // Commands would otherwise queue forever while Redis is unreachable.
    this.redis = new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 5000 });
  }

  /** Calls so far, by command (INFO commandstats). */
  async commandCalls(): Promise<Map<string, number>> {
    return commandCallsByName(await this.redis.info('commandstats'));
  }

  /** CPU time the Redis server has used so far (user + system, main and background threads), in milliseconds. */
  async cpuMs(): Promise<number> {
    const info = await this.redis.info('cpu');
    const seconds = Number(infoField(info, 'used_cpu_user') ?? Number.NaN) + Number(infoField(info, 'used_cpu_sys') ?? Number.NaN);
    return seconds * 1000;
  }

  async serverVersion(): Promise<string> {
    return infoField(await this.redis.info('server'), 'redis_version') ?? 'unknown';
  }

  /** SCAN MATCH `prefix*` and UNLINK what it finds; returns the number of keys removed. */
  async deletePrefix(prefix: string): Promise<number> {
    let cursor = '0';
    let removed = 0;
    for (let round = 0; round < MAX_SCAN_ROUNDS; round++) {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', SCAN_BATCH);
      if (keys.length > 0) removed += await this.redis.unlink(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
    return removed;
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}
