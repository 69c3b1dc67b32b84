// Issue #3, "Worker pools that lose nothing": worker processes that die. Real worker processes
// (fixtures/worker.ts) on a redis-server of the test's own; SIGKILL, never a polite shutdown.
import { expect } from 'chai';
import { RPCDeliveryError } from '../../src/index.js';
import { sleep, waitFor } from '../support/env.js';
import { WorkerPool, usePoolFixture, makeCaller, parseCounts, runCalls, tally, type WorkerStatsLine } from './fixtures/pool.js';

function sum(lines: readonly WorkerStatsLine[], key: keyof WorkerStatsLine['stats']): number {
  return lines.reduce((total, line) => total + line.stats[key], 0);
}

describe('faults: worker processes that die', function () {
  this.timeout(60_000);
  const fx = usePoolFixture('faults-crash');

  it('kill -9 of a worker in the middle of 400 calls: none lost, each answered once, the survivors reclaimed its requests', async () => {
    fx.pool = new WorkerPool({ url: fx.server.url, stream: fx.stream, claimIdleMs: 500 });
    await fx.pool.start(['w1', 'w2', 'w3']);
    fx.caller = await makeCaller({ url: fx.server.url, stream: fx.stream }, 30_000);
    const { api } = fx.caller;
    const victim = fx.pool.get('w1');
    let killed: Promise<void> | undefined;
    const total = 400;

    // Mid-way, and at a moment the victim holds requests (bounded wait for one to be pending on it).
    const killWhenHolding = async (): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        if (((await fx.server.command('XPENDING', fx.stream, 'workers', '-', '+', '1', 'w1')) as unknown[]).length > 0) break;
        await sleep(10);
      }
      await victim.kill9();
    };
    const outcomes = await runCalls(total, 16, (i) => api.counted(`c${i}`, 20), (_i, _o, done) => {
      if (done === 120) killed = killWhenHolding();
    });
    await killed;
    const survivors = await fx.pool.stopAll();
    const counts = parseCounts(await fx.server.command('HGETALL', `${fx.stream}:exec`));
    const { answered, failed, byError } = tally(outcomes);
    const executedTwice = [...counts.values()].filter((n) => n > 1).length;
    const duplicates = fx.caller.channel.stats().duplicates;
    console.log(
      `      [kill-9] calls=${total} answered=${answered} lost=${failed} executedTwice=${executedTwice} duplicatesIgnored=${duplicates}` +
        ` reclaimed=${sum(survivors, 'reclaimed')}`,
    );

    expect(byError, 'calls that failed').to.deep.equal({});
    outcomes.forEach((o, i) => expect(o.ok && o.value, `call ${i}`).to.equal(`c${i}`));
    expect(counts.size, 'requests executed at least once').to.equal(total);
    expect(survivors).to.have.length(2);
    expect(sum(survivors, 'reclaimed'), 'requests the survivors took over').to.be.greaterThan(0);
    expect(await fx.server.command('XPENDING', fx.stream, 'workers')).to.deep.equal([0, null, null, null]);
  });

  it('a handler running 3 x claimIdleMs runs exactly once (lease renewal)', async () => {
    fx.pool = new WorkerPool({ url: fx.server.url, stream: fx.stream, claimIdleMs: 500 });
    await fx.pool.start(['w1', 'w2']);
    fx.caller = await makeCaller({ url: fx.server.url, stream: fx.stream }, 20_000);
    const { api } = fx.caller;
    const total = 6;

    const outcomes = await runCalls(total, total, (i) => api.slow(1500, `long${i}`));
    const workers = await fx.pool.stopAll();
    const counts = parseCounts(await fx.server.command('HGETALL', `${fx.stream}:exec`));
    const executions = [...counts.values()].reduce((a, b) => a + b, 0);
    const duplicates = fx.caller.channel.stats().duplicates;
    console.log(
      `      [lease] calls=${total} answered=${tally(outcomes).answered} executions=${executions} reclaimed=${sum(workers, 'reclaimed')} duplicatesIgnored=${duplicates}`,
    );

    expect(tally(outcomes).byError).to.deep.equal({});
    expect(Object.fromEntries(counts)).to.deep.equal(Object.fromEntries(Array.from({ length: total }, (_, i) => [`long${i}`, 1])));
    expect(sum(workers, 'reclaimed'), 'requests taken over from a live worker').to.equal(0);
    expect(duplicates).to.equal(0);
  });

  /**
   * A supervisor restarts crashed workers under the same name; `others` calls run `concurrency`
   * at a time around the poison. With `isolated`, the poison is sent while no other call is in
   * flight and the others start only once it settled; otherwise it goes out in their midst.
   */
  async function poisonScenario(concurrency: number, isolated: boolean) {
    const p = new WorkerPool({ url: fx.server.url, stream: fx.stream, claimIdleMs: 500, maxDeliveries: 3 }, { restartCrashed: true, maxRestarts: 12 });
    fx.pool = p;
    await p.start(['w1', 'w2']);
    fx.caller = await makeCaller({ url: fx.server.url, stream: fx.stream }, 30_000);
    const { api } = fx.caller;
    let poison: Promise<{ error: Error | undefined; ms: number }> | undefined;
    let poisonSettled = false;
    const sendPoison = (): void => {
      const started = Date.now();
      poison = api.crash('poison').then(
        () => ({ error: undefined, ms: Date.now() - started }),
        (error: unknown) => ({ error: error as Error, ms: Date.now() - started }),
      );
      void poison.then(() => (poisonSettled = true));
    };
    if (isolated) sendPoison();
    const others = await runCalls(
      isolated ? 300 : 20_000,
      concurrency,
      async (i) => {
        if (isolated && i === 0) await poison;
        await api.slow(5);
        return `ok${i}`;
      },
      (_i, _o, done) => !isolated && done === 50 && sendPoison(),
      // In the midst: keep calls flowing through the whole crash/restart episode.
      () => !isolated && poisonSettled,
    );
    const { error, ms } = await (poison as NonNullable<typeof poison>);
    // Every crash is followed by a restart; wait for the last one before counting.
    await waitFor(() => p.restarts === p.crashes, { timeoutMs: 20_000, message: 'a crashed worker was not restarted' });
    await p.settled();
    const workers = await p.stopAll();
    const dead = ((await fx.server.command('XRANGE', `{${fx.stream}}:dead`, '-', '+')) as [string, string[]][]).map(([id, list]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < list.length; i += 2) fields[list[i] as string] = list[i + 1] as string;
      return { id, fields };
    });
    const poisonDead = dead.filter((d) => d.fields.d?.includes('"poison"'));
    const { answered, failed, byError } = tally(others);
    console.log(
      `      [poison${isolated ? '' : ' amid calls'}] crashes=${p.crashes} restarts=${p.restarts} poisonRejectedAfter=${ms}ms` +
        ` deadLetters=${dead.length} (poison ${poisonDead.length}) deadLettered=${sum(workers, 'deadLettered')}` +
        ` others=${others.length} answered=${answered} failed=${failed} ${JSON.stringify(byError)}`,
    );
    return { p, error, ms, workers, dead, poisonDead, others, answered, byError };
  }

  it('a poison request that kills its worker every time is dead-lettered after maxDeliveries, its caller gets RPCDeliveryError', async () => {
    const { p, error, ms, workers, dead, poisonDead, others, answered, byError } = await poisonScenario(8, true);

    expect(error).to.be.instanceOf(RPCDeliveryError);
    expect((error as RPCDeliveryError).code).to.equal('ERR_RPC_DELIVERY');
    expect((error as RPCDeliveryError).deliveries).to.equal(3);
    expect(ms, 'rejected well before the 30 s timeout').to.be.lessThan(20_000);
    expect(p.crashes, 'one crash per delivery').to.equal(3);
    expect(dead).to.have.length(1);
    expect(poisonDead).to.have.length(1);
    const { fields } = poisonDead[0] as (typeof poisonDead)[number];
    expect(fields).to.include.keys('reason', 'deliveries', 'source', 'group', 'f', 'd');
    expect(fields.deliveries).to.equal('3');
    expect(fields.group).to.equal('workers');
    expect(fields.source).to.match(/^\d+-\d+$/);
    expect(fields.reason).to.contain('maxDeliveries 3');
    expect(sum(workers, 'deadLettered'), "surviving workers' stats().deadLettered").to.equal(1);
    expect(byError, 'calls after the poison that failed').to.deep.equal({});
    expect(answered).to.equal(others.length);
    expect(await fx.server.command('XPENDING', fx.stream, 'workers')).to.deep.equal([0, null, null, null]);
  });

  it('requests in flight beside a poison request are not dead-lettered with it (other calls keep flowing)', async () => {
    const { error, poisonDead, dead, others, answered, byError } = await poisonScenario(16, false);

    expect(error).to.be.instanceOf(RPCDeliveryError);
    expect(poisonDead).to.have.length(1);
    // Regression: redelivered requests used to come back in one batch with the poison, so each crash
    // counted a delivery against innocent neighbours until they were dead-lettered too. Redeliveries
    // now run one at a time with nothing else in flight.
    expect(byError, 'innocent calls that failed').to.deep.equal({});
    expect(dead, 'dead letters').to.have.length(1);
    expect(answered).to.equal(others.length);
  });

  describe('requests written in one tick share an entry', () => {
    /** Request entries of the stream: their `r` field (deliveries spent before a split) and message count. */
    async function requestEntries(): Promise<{ r: string | undefined; messages: number }[]> {
      const entries = (await fx.server.command('XRANGE', fx.stream, '-', '+')) as [string, string[]][];
      return entries.map(([, list]) => {
        let r: string | undefined;
        let messages = 0;
        for (let i = 0; i + 1 < list.length; i += 2) {
          if (list[i] === 'r') r = list[i + 1];
          if (list[i] === 'd') messages++;
        }
        return { r, messages };
      });
    }

    it('kill -9 of the worker holding a batch entry: a survivor splits it into one entry per request and answers each', async () => {
      fx.pool = new WorkerPool({ url: fx.server.url, stream: fx.stream, claimIdleMs: 500 });
      await fx.pool.start(['w1', 'w2']);
      fx.caller = await makeCaller({ url: fx.server.url, stream: fx.stream }, 20_000);
      const { api } = fx.caller;
      // Five calls in one tick: one entry, held by whichever worker read it.
      const calls = Array.from({ length: 5 }, (_, i) => api.counted(`b${i}`, 1000));
      let holder = '';
      await waitFor(async () => {
        const rows = (await fx.server.command('XPENDING', fx.stream, 'workers', '-', '+', '10')) as [string, string][];
        holder = rows[0]?.[1] ?? '';
        return holder !== '';
      });
      await fx.pool.kill9(holder);
      const results = await Promise.all(calls);
      const survivors = await fx.pool.stopAll();
      const entries = await requestEntries();
      const splits = fx.pool.get(holder === 'w1' ? 'w2' : 'w1').count('split');
      console.log(`      [batch kill-9] holder=${holder} entries=${JSON.stringify(entries)} splitEvents=${splits}`);

      expect(results).to.deep.equal(['b0', 'b1', 'b2', 'b3', 'b4']);
      expect(entries[0], 'the batch entry').to.deep.equal({ r: undefined, messages: 5 });
      expect(entries.slice(1), 'one entry per request, each recording the delivery spent').to.deep.equal(Array.from({ length: 5 }, () => ({ r: '1', messages: 1 })));
      expect(splits, "'split' events (requests)").to.equal(5);
      expect(sum(survivors, 'reclaimed')).to.be.greaterThan(0);
      expect(await fx.server.command('XPENDING', fx.stream, 'workers')).to.deep.equal([0, null, null, null]);
    });

    it('a poison request batched with 4 others: the others are answered, the poison is dead-lettered alone after maxDeliveries crashes', async () => {
      const p = new WorkerPool({ url: fx.server.url, stream: fx.stream, claimIdleMs: 500, maxDeliveries: 3 }, { restartCrashed: true, maxRestarts: 12 });
      fx.pool = p;
      await p.start(['w1', 'w2']);
      fx.caller = await makeCaller({ url: fx.server.url, stream: fx.stream }, 30_000);
      const { api } = fx.caller;
      const settle = (promise: Promise<string>) =>
        promise.then(
          (value) => ({ value, error: undefined }),
          (error: unknown) => ({ value: undefined, error: error as Error }),
        );
      // One tick: the poison sits in the middle of one entry.
      const outcomes = await Promise.all([api.counted('a', 5), api.counted('b', 5), api.crash('poison'), api.counted('c', 5), api.counted('d', 5)].map(settle));
      await waitFor(() => p.restarts === p.crashes, { timeoutMs: 20_000, message: 'a crashed worker was not restarted' });
      await p.settled();
      await p.stopAll();
      const dead = (await fx.server.command('XRANGE', `{${fx.stream}}:dead`, '-', '+')) as [string, string[]][];
      console.log(`      [batch poison] crashes=${p.crashes} outcomes=${JSON.stringify(outcomes.map((o) => o.value ?? o.error?.name))} deadLetters=${dead.length}`);

      expect(outcomes.map((o) => o.value)).to.deep.equal(['a', 'b', undefined, 'c', 'd']);
      const poison = outcomes[2]?.error;
      expect(poison).to.be.instanceOf(RPCDeliveryError);
      expect((poison as RPCDeliveryError).deliveries, 'deliveries of the batch count for the request split out of it').to.equal(3);
      expect(p.crashes, 'one crash per delivery, the batch run included').to.equal(3);
      expect(dead, 'only the poison is dead-lettered').to.have.length(1);
      expect(dead[0]?.[1]).to.include('d');
      expect(await fx.server.command('XPENDING', fx.stream, 'workers')).to.deep.equal([0, null, null, null]);
    });
  });
});
