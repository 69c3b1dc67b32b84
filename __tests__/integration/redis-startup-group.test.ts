// Requests written before any load-balanced worker exists (by a broadcast-mode caller, which never
// creates the group) are served once a worker starts; ones whose deadline passed are not run.
import { expect } from 'chai';
import { RPCChannel, RedisStreamsIO } from '../../src/index.js';
import { sleep, useRedisTest, waitFor } from '../support/env.js';

interface Api {
  echo(n: number): number;
}

describe('RedisStreamsIO: a new group starts at the retained history', function () {
  this.timeout(30_000);
  const t = useRedisTest('startup-group');

  it('5 calls written before the first worker starts are all answered; an expired one is not run', async () => {
    const callerIo = new RedisStreamsIO({ url: t.url, stream: t.name });
    const caller = new RPCChannel<Record<string, never>, Api>(callerIo, { timeout: 20_000 });
    t.track(caller);
    await callerIo.waitUntilReady();
    const shortCaller = new RPCChannel<Record<string, never>, Api>(new RedisStreamsIO({ url: t.url, stream: t.name }), { timeout: 100 });
    t.track(shortCaller);
    const expiredCall = shortCaller.getAPI().echo(-1).then(() => 'answered', (err: Error) => err.name);
    const calls = Promise.all([1, 2, 3, 4, 5].map((n) => caller.getAPI().echo(n)));
    await waitFor(async () => (await callerIo.getStreamInfo()).length >= 2);
    expect(await expiredCall).to.equal('RPCTimeoutError');
    await sleep(50);
    const ran: number[] = [];
    const workerIo = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true });
    const worker = new RPCChannel<Api, Record<string, never>>(workerIo, { expose: { echo: (n: number) => (ran.push(n), n) } });
    t.track(worker);
    expect(await calls).to.deep.equal([1, 2, 3, 4, 5]);
    await waitFor(() => worker.stats().expired === 1, { message: 'the expired request is counted as expired' });
    expect(ran.sort()).to.deep.equal([1, 2, 3, 4, 5]);
  });
});
