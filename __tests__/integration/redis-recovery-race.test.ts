// A restarted worker resuming its own pending requests (XPENDING, then XCLAIM) races another
// worker taking the same request over and answering it. XCLAIM then returns nothing for it: the
// request is not pending any more, not trimmed. Found by `npm run soak` (workers SIGKILLed every
// second reported "pending entry was trimmed" without any trimming). Real redis-server; the race
// is made certain by running the other worker's take-over and XACK just before the XCLAIM.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { parseEntry } from '../../src/redis/entries.js';
import { GroupRecovery } from '../../src/redis/group-recovery.js';
import { sealWith } from '../../src/redis/signing.js';
import type { RedisConnection } from '../../src/redis/connection.js';
import { useRedisTest } from '../support/env.js';

describe('GroupRecovery.claimOwn', function () {
  const t = useRedisTest('recovery-race');
  let redis: Redis;
  let other: Redis;
  beforeEach(() => {
    redis = new Redis(t.url);
    other = new Redis(t.url);
  });
  afterEach(() => {
    redis.disconnect();
    other.disconnect();
  });

  /** A request pending on consumer w1, and a recovery for w1 whose XCLAIM runs after `beforeClaim`. */
  async function pendingOnW1(beforeClaim: (id: string) => Promise<unknown>) {
    await redis.xgroup('CREATE', t.name, 'g', '0', 'MKSTREAM');
    const id = (await redis.xadd(t.name, '*', 'f', 'caller', 'd', 'request')) as string;
    await redis.xreadgroup('GROUP', 'g', 'w1', 'COUNT', 1, 'STREAMS', t.name, '>');
    const racing = new Proxy(redis, {
      get(target, prop, receiver) {
        if (prop !== 'call') return Reflect.get(target, prop, receiver) as unknown;
        return async (command: string, ...args: (string | number)[]) => {
          if (command === 'XCLAIM') await beforeClaim(id);
          return target.call(command, ...args);
        };
      },
    });
    const recovery = new GroupRecovery(racing as unknown as RedisConnection, {
      stream: t.name, group: 'g', consumer: 'w1', claimIdleMs: 1000, maxDeliveries: 5, deadLetterKey: `${t.name}:dead`, parse: parseEntry, seal: sealWith(undefined),
    });
    return { id, recovery };
  }

  it('a request another worker took over and answered meanwhile is neither claimed nor reported as trimmed', async () => {
    const { recovery } = await pendingOnW1(async (id) => {
      await other.xclaim(t.name, 'g', 'w2', 0, id);
      await other.xack(t.name, 'g', id);
    });
    const result = await recovery.claimOwn(1);
    expect(result).to.deep.equal({ claimed: [], trimmed: [] });
  });

  it('a pending request whose entry was deleted is reported as trimmed, and no longer pending', async () => {
    const { id, recovery } = await pendingOnW1((id) => other.xdel(t.name, id));
    const result = await recovery.claimOwn(1);
    expect(result.trimmed).to.deep.equal([id]);
    expect(((await redis.xpending(t.name, 'g')) as [number])[0]).to.equal(0);
  });
});
