// Issue #3, "Worker pools that lose nothing": floods and garbage. A 20,000-call burst into two
// worker processes with a small queue, and entries not written by the library mixed into real calls.
import { expect } from 'chai';
import { waitFor } from '../support/env.js';
import { WorkerPool, usePoolFixture, makeCaller, mb, runCalls, seconds, tally, type WorkerStatsLine } from './fixtures/pool.js';

function sum(lines: readonly WorkerStatsLine[], pick: (line: WorkerStatsLine) => number): number {
  return lines.reduce((total, line) => total + pick(line), 0);
}

describe('faults: bursts and garbage', function () {
  this.timeout(90_000);
  const fx = usePoolFixture('faults-load');

  /** 20,000 calls fired at once (no concurrency limit) into two workers holding at most `maxQueueSize` each. */
  async function burst(maxQueueSize: number): Promise<void> {
    const p = new WorkerPool({ url: fx.server.url, stream: fx.stream, maxQueueSize, claimIdleMs: 5000 });
    fx.pool = p;
    await p.start(['w1', 'w2']);
    const c = await makeCaller({ url: fx.server.url, stream: fx.stream }, 60_000);
    fx.caller = c;
    const { api } = c;
    const total = 20_000;
    // One call first, with a short timeout: a fx.pool that serves nothing fails here in 10 s, not in 60.
    await c.channel.getAPI({ timeout: 10_000 }).echo('warm-up');
    const callerRssStart = process.memoryUsage().rss;
    let callerRssPeak = callerRssStart;
    const sampler = setInterval(() => (callerRssPeak = Math.max(callerRssPeak, process.memoryUsage().rss)), 100);
    const started = Date.now();

    const outcomes = await runCalls(total, total, (i) => api.echo(i));
    const elapsed = Date.now() - started;
    clearInterval(sampler);
    const workers = await p.stopAll();
    const { answered, failed, byError } = tally(outcomes);
    const rssPeak = Math.max(...workers.map((w) => w.rssPeak));
    console.log(
      `      [burst maxQueueSize=${maxQueueSize}] calls=${total} answered=${answered} lost=${failed} ${JSON.stringify(byError)} in ${seconds(elapsed)}` +
        ` perWorker=${workers.map((w) => w.stats.handled).join('+')} dropped=${sum(workers, (w) => w.stats.dropped)}` +
        ` workerRssPeak=${workers.map((w) => mb(w.rssPeak)).join('/')} callerRss=${mb(callerRssStart)}->${mb(callerRssPeak)} duplicatesIgnored=${c.channel.stats().duplicates}`,
    );

    expect(byError, 'calls that failed').to.deep.equal({});
    outcomes.forEach((o, i) => {
      if (!o.ok || o.value !== i) expect.fail(`call ${i} answered ${o.ok ? String(o.value) : o.error.message}`);
    });
    expect(sum(workers, (w) => w.stats.dropped), 'requests dropped by a full queue').to.equal(0);
    expect(sum(workers, (w) => w.stats.handled)).to.be.at.least(total);
    expect(rssPeak, 'worker RSS peak').to.be.lessThan(400 * 1024 * 1024);
  }

  it('a 20,000-call burst into 2 workers with maxQueueSize 100: nothing lost, worker memory bounded', async () => {
    await burst(100);
  });

  it('a worker whose in-flight requests reach maxQueueSize keeps serving (250 slow calls, maxQueueSize 200)', async () => {
    fx.pool = new WorkerPool({ url: fx.server.url, stream: fx.stream, maxQueueSize: 200, claimIdleMs: 5000 });
    await fx.pool.start(['w1']);
    fx.caller = await makeCaller({ url: fx.server.url, stream: fx.stream }, 8000);
    const { api } = fx.caller;
    const started = Date.now();

    const outcomes = await runCalls(250, 250, () => api.slow(300));
    const { answered, failed, byError } = tally(outcomes);
    console.log(`      [in-flight = maxQueueSize] calls=250 answered=${answered} lost=${failed} ${JSON.stringify(byError)} in ${seconds(Date.now() - started)}`);

    // Regression: reserveForGroup() used to spin on microtasks here (limit 0, queue room free),
    // freezing the worker's event loop: no handler timer fired and SIGTERM was ignored.
    expect(byError, 'calls that failed').to.deep.equal({});
    expect(answered).to.equal(250);
    const [worker] = await fx.pool.stopAll();
    expect(worker?.stats.handled).to.equal(250);
  });

  it('1,000 garbage entries among 1,000 calls: every call answered, every garbage entry acknowledged and reported', async () => {
    fx.pool = new WorkerPool({ url: fx.server.url, stream: fx.stream, claimIdleMs: 1000, maxDeliveries: 3 });
    await fx.pool.start(['w1', 'w2']);
    fx.caller = await makeCaller({ url: fx.server.url, stream: fx.stream }, 30_000);
    const { api } = fx.caller;
    // Half raw entries without the library's fields, half with them but a body of the wrong shape.
    const garbage: string[][] = [];
    const wrongShapes = [
      'hello',
      '{"v":1,"k":"req"}\n[]',
      '{"v":3,"k":"req","id":"x","m":["echo"],"dl":9999999999999}\n[1]',
      '[1,2,3]\n[]',
      '{"v":1,"k":"nope","id":"x"}\n1',
      '{"v":1,"k":"req","id":"x","m":"echo","dl":1}\n[]',
      '{not json}\n[]',
      '',
    ];
    for (let i = 0; i < 1000; i++) {
      if (i % 2 === 0) garbage.push(i % 4 === 0 ? ['data', 'hello'] : ['d', `no sender ${i}`]);
      else garbage.push(['f', `garbage-${i}`, 'd', wrongShapes[i % wrongShapes.length] as string]);
    }
    // One garbage entry is written after each answered call, so they interleave in the fx.stream.
    let next = 0;
    const writes: Promise<unknown>[] = [];
    const outcomes = await runCalls(1000, 8, (i) => api.echo(`real${i}`), () => {
      const fields = garbage[next++];
      if (fields !== undefined) writes.push(fx.server.command('XADD', fx.stream, '*', ...fields));
    });
    await Promise.all(writes);
    // A last real call after the last garbage entry: once it is answered, everything before it was read.
    await api.echo('last');
    // Acknowledgements of skipped entries are fire-and-forget: give the last ones a moment.
    const pendingCount = async (): Promise<number> => ((await fx.server.command('XPENDING', fx.stream, 'workers')) as [number])[0];
    await waitFor(async () => (await pendingCount()) === 0, { timeoutMs: 5000 }).catch(() => undefined);
    const pendingBeforeStop = await pendingCount();
    const workers = await fx.pool.stopAll();
    const protocolErrors = sum(workers, (w) => w.errors.ERR_RPC_PROTOCOL ?? 0);
    // A refused request whose id is readable is answered with the error; its made-up sender has no
    // inbox, so each such answer is reported as undeliverable (RPCDeliveryError), one per entry.
    const answerable = garbage.filter((f) => f[0] === 'f' && /^\{"v":\d,"k":"req","id":"x"/.test(f[3] ?? '')).length;
    const undelivered = sum(workers, (w) => w.errors.ERR_RPC_DELIVERY ?? 0);
    const otherErrors = workers.flatMap((w) => Object.entries(w.errors).filter(([code]) => code !== 'ERR_RPC_PROTOCOL' && code !== 'ERR_RPC_DELIVERY'));
    const { answered, failed, byError } = tally(outcomes);
    const pending = (await fx.server.command('XPENDING', fx.stream, 'workers')) as [number, ...unknown[]];
    console.log(
      `      [garbage] calls=${outcomes.length} answered=${answered} lost=${failed} garbage=${next} protocolErrors=${protocolErrors}` +
        ` (${workers.map((w) => w.errors.ERR_RPC_PROTOCOL ?? 0).join('+')}) malformed=${sum(workers, (w) => w.stats.malformed)}` +
        ` acked=${sum(workers, (w) => w.stats.acked)} pending=${pending[0]} otherErrors=${JSON.stringify(otherErrors)}`,
    );

    expect(byError, 'calls that failed').to.deep.equal({});
    outcomes.forEach((o, i) => expect(o.ok && o.value, `call ${i}`).to.equal(`real${i}`));
    expect(next).to.equal(1000);
    expect(pendingBeforeStop, 'XPENDING count while the workers run').to.equal(0);
    expect(pending[0], 'XPENDING count').to.equal(0);
    expect(protocolErrors, "'error' events with code ERR_RPC_PROTOCOL").to.equal(1000);
    expect(otherErrors).to.deep.equal([]);
    expect(undelivered, 'answers to refused requests of made-up senders').to.equal(answerable);
  });

  it('answer-kind entries on the request stream (res/err/cb) are acknowledged and reported, and do not stall a worker', async () => {
    // 30 stray entries against maxQueueSize 20: a worker that kept them in flight would stop reading.
    fx.pool = new WorkerPool({ url: fx.server.url, stream: fx.stream, claimIdleMs: 500, maxQueueSize: 20 });
    await fx.pool.start(['w1']);
    fx.caller = await makeCaller({ url: fx.server.url, stream: fx.stream }, 5000);
    const { api } = fx.caller;
    const kinds = ['{"v":1,"k":"res","id":"stray"}\n1', '{"v":1,"k":"err","id":"stray"}\n{"name":"Error","message":"x"}', '{"v":1,"k":"cb","id":"stray","c":0}\n[]'];
    for (let i = 0; i < 30; i++) await fx.server.command('XADD', fx.stream, '*', 'f', 'stray-peer', 'd', kinds[i % kinds.length] as string);

    const outcomes = await runCalls(20, 20, (i) => api.echo(`after${i}`));
    const pending = (await fx.server.command('XPENDING', fx.stream, 'workers')) as [number, ...unknown[]];
    const [worker] = await fx.pool.stopAll();
    const { answered, byError } = tally(outcomes);
    console.log(
      `      [answer kinds] stray=30 callsAfter=${outcomes.length} answered=${answered} ${JSON.stringify(byError)} pending=${pending[0]}` +
        ` errors=${JSON.stringify(worker?.errors)} duplicates=${worker?.stats.duplicates} acked=${worker?.stats.acked}`,
    );

    // Regression: answers on the request fx.stream used to stay pending for ever, holding worker slots.
    expect(pending[0], 'XPENDING count').to.equal(0);
    expect(byError, 'calls after the stray entries that failed').to.deep.equal({});
    expect(worker?.errors.ERR_RPC_PROTOCOL, "'error' events with code ERR_RPC_PROTOCOL").to.equal(30);
  });
});
