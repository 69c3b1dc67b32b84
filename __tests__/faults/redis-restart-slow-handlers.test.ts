// Redis SIGKILLed and restarted with AOF (appendfsync always) while slow handlers run: answers
// written during the outage must be retried (or their requests handed back), so every call in
// flight when Redis went down is answered.
import { expect } from 'chai';
import { RPCChannel, RedisStreamsConnectionError, RPCTimeoutError, RedisStreamsIO } from '../../src/index.js';
import { sleep, uniqueName } from '../support/env.js';
import { RedisServer } from '../support/redis-server.js';

interface SlowAPI {
  slow(i: number, ms: number): Promise<number>;
}

const CALLS = 40;
const TIMEOUT_MS = 25_000;

describe('faults: Redis restarted with AOF while slow handlers run', function () {
  this.timeout(90_000);
  let server: RedisServer | undefined;
  const channels: RPCChannel<object, object>[] = [];

  afterEach(async () => {
    await Promise.allSettled(channels.map((c) => c.destroy()));
    channels.length = 0;
    await server?.stop();
    server = undefined;
  });

  async function run(mode: 'broadcast' | 'load-balanced'): Promise<void> {
    const s = await RedisServer.start({ appendOnly: true });
    server = s;
    const stream = uniqueName('faults-aof-slow');
    const workerErrors: Error[] = [];
    for (const name of ['w1', 'w2']) {
      const io = new RedisStreamsIO({ url: s.url, stream, useConsumerGroup: true, consumerGroup: 'workers', consumerName: name, claimIdleMs: 1000, blockTimeout: 1000 });
      const worker = new RPCChannel<SlowAPI, object>(io, {
        expose: { slow: async (i: number, ms: number) => (await sleep(ms), i) },
      });
      worker.on('error', (e) => workerErrors.push(e));
      channels.push(worker as unknown as RPCChannel<object, object>);
      await io.waitUntilReady();
    }
    const callerIo = new RedisStreamsIO({ url: s.url, stream, useConsumerGroup: mode === 'load-balanced', consumerGroup: 'workers', blockTimeout: 1000 });
    const caller = new RPCChannel<object, SlowAPI>(callerIo, { timeout: TIMEOUT_MS });
    channels.push(caller as unknown as RPCChannel<object, object>);
    await callerIo.waitUntilReady();
    const api = caller.getAPI();

    // All 40 written and handed out before Redis goes down: the measure is requests in flight.
    const calls = Array.from({ length: CALLS }, (_, i) => api.slow(i, 400 + Math.floor(Math.random() * 600)));
    const settled = Promise.allSettled(calls);
    await sleep(300);
    await s.restart({ downMs: 1000 });
    const outcomes = await settled;

    const answered = outcomes.filter((o, i) => o.status === 'fulfilled' && o.value === i).length;
    const errors = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as Error] : []));
    const timeouts = errors.filter((e) => e instanceof RPCTimeoutError).length;
    const other = errors.filter((e) => !(e instanceof RPCTimeoutError)).map((e) => `${e.name}: ${e.message}`);
    const connectionErrors = workerErrors.filter((e) => e instanceof RedisStreamsConnectionError).length;
    console.log(
      `      [aof slow handlers] mode=${mode} calls=${CALLS} answered=${answered} timeouts=${timeouts} other=${JSON.stringify(other)}` +
        ` workerErrors=${workerErrors.length} (connection=${connectionErrors})`,
    );

    expect(timeouts, 'calls lost (RPCTimeoutError)').to.equal(0);
    expect(other, 'calls that failed otherwise').to.deep.equal([]);
    expect(answered).to.equal(CALLS);
    // Each worker has a command connection and readers; an outage is reported once per connection, not once per retry.
    expect(workerErrors.length, "worker 'error' events").to.be.at.most(8);

    // Service goes on after the restart.
    const after = await Promise.all(Array.from({ length: 5 }, (_, i) => api.slow(i, 10)));
    expect(after).to.deep.equal([0, 1, 2, 3, 4]);
  }

  it('broadcast caller: every call in flight is answered', async () => {
    await run('broadcast');
  });

  it('load-balanced caller: every call in flight is answered', async () => {
    await run('load-balanced');
  });
});
