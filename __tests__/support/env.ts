// Small helpers shared by the integration tests: where Redis is, unique key names, cleanup, polling.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/**
 * The Redis under test. `npm test` sets it through scripts/with-redis.mjs, which starts a throwaway
 * redis-server on a free loopback port.
 * @throws Error when REDIS_URL is not set.
 */
export function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) {
    throw new Error(
      'REDIS_URL is not set. Run the tests with `npm test` (it starts a throwaway redis-server via ' +
        'scripts/with-redis.mjs), wrap the command yourself (`node scripts/with-redis.mjs npx mocha ...`), ' +
        'or set REDIS_URL=redis://host:port.',
    );
  }
  return url;
}

/** `prefix:<time base36>:<random hex>`, unique per call; no braces, so no hash-tag surprises. */
export function uniqueName(prefix: string): string {
  return `${prefix}:${Date.now().toString(36)}:${randomBytes(6).toString('hex')}`;
}

/** UNLINKs every key matching the glob `pattern` (SCAN, not KEYS), then closes its client. */
export async function deleteKeys(url: string, pattern: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined); // connect() and commands reject on their own
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
    else client.disconnect();
  }
}

/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long. Default 10 000. */
  timeoutMs?: number;
  /** Pause between checks. Default 20. */
  intervalMs?: number;
  /** Message of the Error thrown on timeout. */
  message?: string;
}

/**
 * Polls `cond` until it returns true. A throwing `cond` fails immediately.
 * @throws Error with `message` (or a default) after `timeoutMs`.
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  opts: WaitForOptions = {},
): Promise<void> {
  const { timeoutMs = 10_000, intervalMs = 20 } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() >= deadline) {
      throw new Error(opts.message ?? `waitFor: condition not met within ${timeoutMs} ms`);
    }
    await sleep(intervalMs);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What {@link useRedisTest} gives each test: the Redis URL, a unique name, and cleanup. */
export interface RedisTestScope {
  /** The Redis under test ({@link redisUrl}). */
  readonly url: string;
  /** A name of this test alone (`prefix:...`): use it as the stream name. */
  readonly name: string;
  /** Destroys `x` after the test (channels, IOs); returns it. */
  track<T extends { destroy(): Promise<void> }>(x: T): T;
}

/**
 * Registers the beforeEach/afterEach most integration suites share: a unique
 * name per test; after it, everything tracked destroyed and every key
 * containing the name deleted. Call it inside the `describe`.
 */
export function useRedisTest(prefix: string): RedisTestScope {
  let url = '';
  let name = '';
  const tracked: { destroy(): Promise<void> }[] = [];
  beforeEach(() => {
    url = redisUrl();
    name = uniqueName(prefix);
  });
  afterEach(async () => {
    await Promise.all(tracked.splice(0).map((x) => x.destroy()));
    await deleteKeys(url, `*${name}*`);
  });
  return {
    get url() {
      return url;
    },
    get name() {
      return name;
    },
    track(x) {
      tracked.push(x);
      return x;
    },
  };
}
