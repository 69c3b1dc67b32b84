// A load-balanced worker renews the lease only on requests its consumer took with read(), not on
// requests still waiting in its queue: a worker whose reader stopped (a wedged channel) must not
// hold requests for ever; another worker takes them over after claimIdleMs and answers them.
import { expect } from 'chai';
import { RPCChannel, RedisStreamsIO } from '../../src/index.js';
import { useRedisTest, waitFor } from '../support/env.js';

interface Api {
  echo(n: number): number;
}

describe('RedisStreamsIO renews leases only on requests handed out by read()', function () {
  this.timeout(30_000);
  const t = useRedisTest('lease-unread');

  it('a worker IO that accepts requests but is never read: a second worker takes them over after claimIdleMs and every call succeeds', async () => {
    const claimIdleMs = 300;
    // The stuck worker: joins the group, fetches requests into its queue, and nobody ever reads them.
    const stuck = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true, claimIdleMs, blockTimeout: 200 });
    t.track(stuck);
    await stuck.waitUntilReady();
    stuck.acceptRequests();

    const callerIo = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true });
    const caller = new RPCChannel<Record<string, never>, Api>(callerIo, { timeout: 10_000 });
    t.track(caller);
    await callerIo.waitUntilReady();
    const api = caller.getAPI();
    // Two entries: 8 calls written in one tick, then 4 more.
    const first = Array.from({ length: 8 }, (_, i) => api.echo(i));
    await new Promise((resolve) => setImmediate(resolve));
    const second = Array.from({ length: 4 }, (_, i) => api.echo(8 + i));
    const calls = [...first, ...second];
    for (const c of calls) c.catch(() => undefined);
    await waitFor(() => stuck.stats().received === 12, { timeoutMs: 5000, message: `the stuck worker did not fetch the requests: ${JSON.stringify(stuck.stats())}` });

    // The healthy worker starts only now, so every request went to the stuck one first.
    const healthyIo = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true, claimIdleMs, blockTimeout: 200 });
    let handled = 0;
    const healthy = new RPCChannel<Api, Record<string, never>>(healthyIo, {
      expose: {
        echo: (n: number) => {
          handled++;
          return n;
        },
      },
    });
    t.track(healthy);

    const results = await Promise.all(calls);
    expect(results).to.deep.equal(Array.from({ length: 12 }, (_, i) => i));
    expect(handled, 'requests the healthy worker ran').to.be.at.least(12);
    expect(healthyIo.stats().reclaimed, 'messages the healthy worker took over').to.be.at.least(1);
  });
});
