/**
 * The parent's own Redis connection: command counters, server version, and
 * deleting a case's keys afterwards.
 */
import { Redis } from 'ioredis';

const SCAN_BATCH = 1000;
/** Stops a runaway SCAN: no case writes anywhere near this many keys. */
const MAX_SCAN_ROUNDS = 100_000;

/** Sum of `calls=` over every `cmdstat_*` line except INFO itself (we issue it to measure). */
export function sumCommandCalls(info: string): number {
  let total = 0;
  for (const line of info.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match === null || match[1] === 'info') continue;
    total += Number(match[2]);
  }
  return total;
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

  async commandCalls(): Promise<number> {
    return sumCommandCalls(await this.redis.info('commandstats'));
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
