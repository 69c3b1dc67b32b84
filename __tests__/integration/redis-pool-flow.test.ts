// Issue "A pool that works by default": load-balanced workers keep reading new requests while
// recovery is due, and bursts are spread over the pool. Real redis-server, in-process endpoints.
import { expect } from 'chai';
import { RPCChannel, RedisStreamsIO } from '../../src/index.js';
import { sleep, useRedisTest, waitFor } from '../support/env.js';

interface Api {
  slow(ms: number): Promise<string>;
  fast(): string;
}

describe('RedisStreamsIO load-balanced pool flow', function () {
  this.timeout(30_000);
  const t = useRedisTest('pool-flow');

  function worker(label: string, options: { claimIdleMs?: number } = {}) {
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true, consumerName: label, ...options });
    let running = 0;
    const ran: string[] = [];
    const channel = new RPCChannel<Api, Record<string, never>>(io, {
      expose: {
        slow: async (ms: number) => {
          running++;
          ran.push(label);
          await sleep(ms);
          running--;
          return label;
        },
        fast: () => label,
      },
    });
    t.track(channel);
    return { io, channel, ran, get running() { return running; } };
  }

  async function caller(timeout = 20_000) {
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true });
    const channel = new RPCChannel<Record<string, never>, Api>(io, { timeout });
    t.track(channel);
    await io.waitUntilReady();
    return channel.getAPI();
  }

  it('recovery due with nothing to take over does not hold new requests behind a slow one in flight', async () => {
    // claimIdleMs 2000: recovery is due every second, and used to wait for every request in flight to finish.
    const w = worker('w1', { claimIdleMs: 2000 });
    await w.io.waitUntilReady();
    const api = await caller();
    const slow = api.slow(9000);
    slow.catch(() => undefined);
    await waitFor(() => w.running === 1, { timeoutMs: 5000, message: 'the slow call did not start' });
    // Past at least one recovery interval, so recovery is due while the slow call runs.
    await sleep(1200);
    const started = Date.now();
    const answer = await api.fast();
    const fastMs = Date.now() - started;
    console.log(`      [recovery head-of-line] fast call answered in ${fastMs} ms beside a 9 s call`);
    expect(answer).to.equal('w1');
    expect(w.running, 'the slow call still runs').to.equal(1);
    expect(fastMs).to.be.lessThan(3000);
    expect(await slow).to.equal('w1');
  });
});
