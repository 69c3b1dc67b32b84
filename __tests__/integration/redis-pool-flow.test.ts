// Issue "A pool that works by default": load-balanced workers keep reading new requests while
// recovery is due, and bursts are spread over the pool. Real redis-server, in-process endpoints.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RPCInvalidArgumentError, RedisStreamsIO } from '../../src/index.js';
import { sleep, useRedisTest, waitFor } from '../support/env.js';

interface Api {
  slow(ms: number): Promise<string>;
  fast(): string;
}

describe('RedisStreamsIO load-balanced pool flow', function () {
  this.timeout(30_000);
  const t = useRedisTest('pool-flow');

  function worker(label: string, options: { claimIdleMs?: number; concurrency?: number; maxDeliveries?: number } = {}) {
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true, consumerName: label, ...options });
    let running = 0;
    let maxRunning = 0;
    const ran: string[] = [];
    const channel = new RPCChannel<Api, Record<string, never>>(io, {
      expose: {
        slow: async (ms: number) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          ran.push(label);
          await sleep(ms);
          running--;
          return label;
        },
        fast: () => label,
      },
    });
    t.track(channel);
    return { io, channel, ran, get running() { return running; }, get maxRunning() { return maxRunning; } };
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

  it('12 slow calls fired in one tick by one caller over 3 workers with concurrency 4 run 4/4/4', async () => {
    const workers = ['w1', 'w2', 'w3'].map((label) => worker(label, { concurrency: 4 }));
    await Promise.all(workers.map((w) => w.io.waitUntilReady()));
    // Every worker is blocked in XREADGROUP before the burst is written.
    await sleep(300);
    const api = await caller();
    // One tick: the caller writes the 12 requests as one entry.
    const answers = await Promise.all(Array.from({ length: 12 }, () => api.slow(1500)));
    const share = Object.fromEntries(workers.map((w) => [w.io.getConsumerName(), w.ran.length]));
    const split = workers.reduce((n, w) => n + w.io.stats().splitEntries, 0);
    console.log(`      [burst spread] shares ${JSON.stringify(share)}, entries split ${split}`);
    expect(answers).to.have.length(12);
    expect(Object.values(share)).to.deep.equal([4, 4, 4]);
    for (const w of workers) expect(w.maxRunning, `${w.io.getConsumerName()} ran more than its concurrency`).to.be.at.most(4);
    expect(split).to.be.greaterThan(0);
  });

  it('a worker never holds more than its concurrency: 40 slow calls, 2 workers of concurrency 3, all answered', async () => {
    const workers = ['w1', 'w2'].map((label) => worker(label, { concurrency: 3 }));
    await Promise.all(workers.map((w) => w.io.waitUntilReady()));
    const api = await caller(60_000);
    const answers = await Promise.all(Array.from({ length: 40 }, () => api.slow(100)));
    expect(answers).to.have.length(40);
    for (const w of workers) expect(w.maxRunning).to.be.at.most(3);
    expect(workers[0]!.ran.length + workers[1]!.ran.length).to.equal(40);
    expect(workers[0]!.ran.length, 'both workers served').to.be.greaterThan(0);
    expect(workers[1]!.ran.length, 'both workers served').to.be.greaterThan(0);
  });

  it('a split keeps the deliveries already spent: every part of a batch that had 2 deliveries spent carries 2', async () => {
    const admin = new Redis(t.url);
    try {
      // Requests written before any worker: 6 calls in one tick, one entry.
      const api = await caller(30_000);
      const calls = Array.from({ length: 6 }, () => api.slow(10));
      await waitFor(async () => (await admin.xlen(t.name)) === 1);
      const [id, fields] = ((await admin.xrange(t.name, '-', '+')) as [string, string[]][])[0]!;
      // The same entry as if 2 deliveries had been spent already (field r), the original removed.
      const from = fields[1]!;
      const data: string[] = [];
      for (let i = 2; i < fields.length; i += 2) data.push(fields[i + 1]!);
      await admin.xadd(t.name, '*', 'f', from, 'r', '2', ...data.flatMap((d) => ['d', d]));
      await admin.xdel(t.name, id);
      const w = worker('w1', { concurrency: 2, maxDeliveries: 5 });
      const answers = await Promise.all(calls);
      expect(answers).to.deep.equal(Array(6).fill('w1'));
      expect(w.io.stats().splitEntries).to.be.greaterThan(0);
      // Every part written by the split says 2 deliveries were spent.
      const parts = ((await admin.xrange(t.name, '-', '+')) as [string, string[]][]).filter(([, f]) => f.includes('d') && f[0] === 'f');
      const spent = parts.slice(1).map(([, f]) => f[f.indexOf('r') + 1]);
      expect(spent.length).to.be.greaterThan(0);
      expect(new Set(spent)).to.deep.equal(new Set(['2']));
    } finally {
      admin.disconnect();
    }
  });

  it('an expired request gives its credit back: a worker of concurrency 1 that finds 3 expired requests still answers the next call', async () => {
    const api = await caller();
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true });
    const hasty = t.track(new RPCChannel<Record<string, never>, Api>(io, { timeout: 50 })).getAPI();
    await io.waitUntilReady();
    // Written before any worker exists; their 50 ms deadlines pass before one starts.
    const expired = [hasty.fast(), hasty.fast(), hasty.fast()].map((p) => p.catch((err: unknown) => err));
    await Promise.all(expired);
    const w = worker('w1', { concurrency: 1 });
    // One entry of 3, more than the credit: re-queued in parts of 1, which may come after this call.
    expect(await api.fast()).to.equal('w1');
    await waitFor(() => w.channel.stats().expired === 3, { message: `expired ${w.channel.stats().expired} of 3` });
    expect(await api.fast(), 'credit is back after all three').to.equal('w1');
  });

  it('concurrency is checked: not an integer in [1, maxQueueSize], or given in broadcast mode, is a typed error naming it', () => {
    const make = (o: object) => () => new RedisStreamsIO({ url: t.url, stream: t.name, ...o });
    for (const bad of [{ useConsumerGroup: true, concurrency: 0 }, { useConsumerGroup: true, concurrency: 1.5 }, { useConsumerGroup: true, concurrency: 11, maxQueueSize: 10 }, { concurrency: 4 }]) {
      expect(make(bad), JSON.stringify(bad)).to.throw(RPCInvalidArgumentError).with.property('message').that.includes('concurrency');
    }
  });
});
