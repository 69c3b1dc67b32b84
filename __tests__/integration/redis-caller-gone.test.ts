// A caller that goes away (destroy(), or signalDestroy()) tells every endpoint through the control
// stream, so its calls still queued are skipped, counted in `abandoned` and acknowledged, instead of
// being run for nobody (issue 10 measured about 90,000 of them). Against a real redis-server.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RPCDeliveryError, RedisStreamsIO, type RedisStreamsIOOptions, type SigningOptions } from '../../src/index.js';
import { sleep, useRedisTest, waitFor } from '../support/env.js';

interface Jobs {
  work(n: number): Promise<number>;
  log(n: number): void;
}

const SIGNING: SigningOptions = { keys: { k1: randomBytes(32) }, keyId: 'k1' };

describe('RedisStreamsIO: a caller that goes away', function () {
  this.timeout(60_000);
  const t = useRedisTest('gone');

  /** A worker running one job at a time, each taking `ms`. */
  function worker(options: Partial<RedisStreamsIOOptions>, ms: number, ran: { work: number; log: number }) {
    let chain = Promise.resolve();
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true, ...options });
    const channel = t.track(
      new RPCChannel<Jobs, Record<string, never>>(io, {
        expose: {
          work: (n) => {
            const done = chain.then(async () => {
              await sleep(ms);
              ran.work++;
              return n;
            });
            chain = done.then(() => undefined);
            return done;
          },
          log: () => void ran.log++,
        },
      }),
    );
    const errors: Error[] = [];
    channel.on('error', (e) => errors.push(e));
    return { io, channel, errors };
  }

  function caller(options: Partial<RedisStreamsIOOptions> = {}) {
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true, writeBatchSize: 4, ...options });
    const channel = new RPCChannel<Record<string, never>, Jobs>(io, { timeout: 60_000 });
    return { io, channel, api: channel.getAPI() };
  }

  async function pending(io: RedisStreamsIO): Promise<number> {
    const raw = new Redis(t.url);
    try {
      return ((await raw.xpending(t.name, io.getConsumerGroup())) as [number])[0];
    } finally {
      await raw.quit();
    }
  }

  for (const signing of [undefined, SIGNING]) {
    it(`load-balanced: the calls a destroyed caller left in the stream are skipped by the running workers (signing ${signing === undefined ? 'off' : 'on'})`, async () => {
      const ran = { work: 0, log: 0 };
      // Small queues: workers hold a few requests at a time, the rest wait in the stream.
      const workers = [worker({ signing, maxQueueSize: 8 }, 10, ran), worker({ signing, maxQueueSize: 8 }, 10, ran)];
      await Promise.all(workers.map((w) => w.io.waitUntilReady()));
      const c = caller({ signing });
      const total = 400;
      const calls = Array.from({ length: total }, (_, i) => c.api.work(i).catch(() => 'gone'));
      await waitFor(() => ran.work >= 10, { message: 'no call ran' });
      await c.channel.destroy();
      expect(new Set(await Promise.all(calls)).has('gone')).to.equal(true);
      const handled = (): number => workers.reduce((n, w) => n + w.channel.stats().handled, 0);
      const abandoned = (): number => workers.reduce((n, w) => n + w.channel.stats().abandoned, 0);
      await waitFor(() => handled() + abandoned() === total, { timeoutMs: 30_000, message: `handled ${handled()} + abandoned ${abandoned()} of ${total}` });
      process.stdout.write(`      [gone] ${total} calls: handled ${handled()}, abandoned ${abandoned()}\n`);
      expect(abandoned()).to.be.greaterThan(total / 2);
      await waitFor(async () => (await pending(workers[0]!.io)) === 0, { message: 'abandoned requests left pending' });
      // The calls running when the caller left are answered into its deleted inbox: reported as undeliverable.
      for (const w of workers) expect(w.errors.filter((e) => !(e instanceof RPCDeliveryError))).to.deep.equal([]);
    });
  }

  it('load-balanced: a worker started after the caller went away skips its calls, still runs its notifications, and serves a new caller with the same session id', async () => {
    const ran = { work: 0, log: 0 };
    const c = caller({ sessionId: `fixed-${t.name.replace(/:/g, '-')}` });
    await c.io.waitUntilReady();
    const calls = Array.from({ length: 20 }, (_, i) => c.api.work(i).catch(() => 'gone'));
    const notify = c.channel.notify();
    for (let i = 0; i < 5; i++) await notify.log(i);
    await sleep(20);
    await c.channel.destroy();
    await Promise.all(calls);
    const w = worker({}, 1, ran);
    await w.io.waitUntilReady();
    await waitFor(() => w.channel.stats().abandoned === 20 && ran.log === 5, { message: `abandoned ${w.channel.stats().abandoned}, notifications ${ran.log}` });
    expect(ran.work).to.equal(0);
    // The same session id again (a restarted caller): written after the bye, served.
    await sleep(5);
    const again = caller({ sessionId: c.io.getSessionId() });
    t.track(again.channel);
    expect(await again.api.work(7)).to.equal(7);
    expect(w.errors).to.deep.equal([]);
  });

  it('broadcast and load-balanced: every endpoint hears a bye at once, reported once per peer', async () => {
    const seen: string[] = [];
    const peers = [
      new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true }),
      new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true }),
      new RedisStreamsIO({ url: t.url, stream: t.name }),
    ].map((io) => t.track(new RPCChannel<Jobs, Record<string, never>>(io, { expose: { work: async (n) => n, log: () => undefined } })));
    for (const p of peers) p.on('peer-destroyed', (id) => seen.push(id));
    const c = caller();
    await c.io.waitUntilReady();
    await sleep(50);
    await c.channel.signalDestroy();
    await waitFor(() => seen.length === 3, { message: `peer-destroyed ${seen.length} of 3` });
    await c.channel.destroy();
    await sleep(300);
    expect(seen).to.deep.equal([c.io.getSessionId(), c.io.getSessionId(), c.io.getSessionId()]);
  });
});
