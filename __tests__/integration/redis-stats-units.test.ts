// IoStats counts messages, whatever entries carried them: writes of one tick share a stream entry
// (up to 16 messages), so a counter of entries beside counters of messages would not add up.
// `acked` is requests settled; entries acknowledged (XACK) have their own counter, `ackedEntries`.
import { expect } from 'chai';
import { RPCChannel, RedisStreamsIO } from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName, waitFor } from '../support/env.js';

interface Api {
  job(n: number): Promise<number>;
  tick(n: number): void;
}

describe('RedisStreamsIO stats count messages', function () {
  this.timeout(20_000);
  let url = '';
  let name = '';
  const channels: RPCChannel<object, object>[] = [];
  const unexpected: Error[] = [];
  let openGate: () => void = () => undefined;

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('stats-units');
    unexpected.length = 0;
  });

  afterEach(async () => {
    openGate();
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await deleteKeys(url, `*${name}*`);
    expect(unexpected.map((e) => `${e.name}: ${e.message}`)).to.deep.equal([]);
  });

  async function setup(): Promise<{ workerIo: RedisStreamsIO; callerIo: RedisStreamsIO; caller: RPCChannel<Record<string, never>, Api>; ticks: () => number }> {
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let ticks = 0;
    const api: Api = {
      job: async (n) => {
        if (n === 11) await gate;
        return n;
      },
      tick: () => void ticks++,
    };
    const workerIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup: true });
    const callerIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup: true });
    const worker = new RPCChannel<Api, Record<string, never>>(workerIo, { expose: api });
    const caller = new RPCChannel<Record<string, never>, Api>(callerIo, { timeout: 10_000 });
    for (const c of [worker, caller] as RPCChannel<object, object>[]) {
      c.on('error', (e) => unexpected.push(e));
      channels.push(c);
    }
    await Promise.all([workerIo.waitUntilReady(), callerIo.waitUntilReady()]);
    return { workerIo, callerIo, caller, ticks: () => ticks };
  }

  it('12 calls in one tick (one entry), 11 answered: the worker reports received 12, acked 11; the entry is acknowledged with the 12th', async () => {
    const { workerIo, callerIo, caller } = await setup();
    const api = caller.getAPI();
    const calls = Array.from({ length: 12 }, (_, i) => api.job(i));
    // If an assertion fails first, the 12th call is rejected by destroy() in afterEach.
    calls[11]?.catch(() => undefined);
    expect(await Promise.all(calls.slice(0, 11))).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await waitFor(() => workerIo.stats().acked >= 11, { timeoutMs: 3000 }).catch(() => undefined);

    expect(workerIo.stats(), 'worker stats with 11 of 12 answered').to.include({ received: 12, acked: 11, sent: 11, ackedEntries: 0 });
    expect(callerIo.stats()).to.include({ sent: 12, received: 11 });

    openGate();
    expect(await calls[11]).to.equal(11);
    await waitFor(() => workerIo.stats().ackedEntries === 1, { timeoutMs: 3000 }).catch(() => undefined);
    expect(workerIo.stats(), 'worker stats once all 12 are answered').to.include({ received: 12, acked: 12, sent: 12, ackedEntries: 1 });
    expect(caller.stats()).to.include({ sent: 12, received: 12, acked: 0 });
  });

  it('a call and 3 notifications sharing one entry: acked counts the 4 requests, ackedEntries the one entry', async () => {
    const { workerIo, caller, ticks } = await setup();
    const notify = caller.notify();
    const call = caller.getAPI().job(1);
    await Promise.all([notify.tick(1), notify.tick(2), notify.tick(3)]);
    expect(await call).to.equal(1);
    await waitFor(() => ticks() === 3 && workerIo.stats().ackedEntries >= 1, { timeoutMs: 3000 }).catch(() => undefined);
    expect(workerIo.stats()).to.include({ received: 4, acked: 4, ackedEntries: 1 });
  });
});
