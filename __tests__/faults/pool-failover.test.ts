// Issue "A pool that works by default": a pool with DEFAULT options fails over before its callers
// time out. Real worker processes (fixtures/worker.ts), SIGKILL, caller with the default timeout.
import { expect } from 'chai';
import { waitFor } from '../support/env.js';
import { WorkerPool, usePoolFixture, makeCaller, parseCounts, tally, type CallOutcome } from './fixtures/pool.js';

/** RPCChannel's default call timeout (DEFAULT_CHANNEL_OPTIONS.timeout). */
const DEFAULT_CALL_TIMEOUT_MS = 30_000;

describe('faults: a pool with default options fails over', function () {
  this.timeout(90_000);
  const fx = usePoolFixture('faults-failover');

  it('kill -9 of the worker holding 6 slow calls: the other worker answers all 6 before the default call timeout', async () => {
    // No claimIdleMs, no timeout: the defaults.
    fx.pool = new WorkerPool({ url: fx.server.url, stream: fx.stream });
    await fx.pool.start(['w1', 'w2']);
    fx.caller = await makeCaller({ url: fx.server.url, stream: fx.stream }, DEFAULT_CALL_TIMEOUT_MS);
    const { api } = fx.caller;
    const started = Date.now();
    // One tick: one entry, held by whichever worker read it.
    const calls = Array.from({ length: 6 }, (_, i) =>
      api.counted(`f${i}`, 2000 + i * 200).then(
        (value): CallOutcome<string> => ({ ok: true, value, ms: Date.now() - started }),
        (error: unknown): CallOutcome<string> => ({ ok: false, error: error as Error, ms: Date.now() - started }),
      ),
    );
    let holder = '';
    await waitFor(async () => {
      const rows = (await fx.server.command('XPENDING', fx.stream, 'workers', '-', '+', '10')) as [string, string][];
      holder = rows[0]?.[1] ?? '';
      return holder !== '';
    });
    // Once the handlers run (each counts its execution first).
    await waitFor(async () => parseCounts(await fx.server.command('HGETALL', `${fx.stream}:exec`)).size === 6, { timeoutMs: 5000 });
    const killedAt = Date.now();
    await fx.pool.kill9(holder);
    const outcomes = await Promise.all(calls);
    const takeOverMs = Math.min(...outcomes.map((o) => o.ms)) - (killedAt - started);
    const survivor = holder === 'w1' ? 'w2' : 'w1';
    const [stats] = await fx.pool.stopAll();
    const { answered, byError } = tally(outcomes);
    console.log(
      `      [failover defaults] holder=${holder} answered=${answered}/6 first answer ${takeOverMs} ms after the kill,` +
        ` last call settled ${Math.max(...outcomes.map((o) => o.ms))} ms after sending; survivor reclaimed=${stats?.stats.reclaimed}`,
    );

    expect(byError, 'calls that failed').to.deep.equal({});
    expect(outcomes.map((o) => o.ok && o.value)).to.deep.equal(['f0', 'f1', 'f2', 'f3', 'f4', 'f5']);
    expect(stats?.consumer).to.equal(survivor);
    expect(stats?.stats.reclaimed, 'requests the survivor took over').to.be.greaterThan(0);
    expect(await fx.server.command('XPENDING', fx.stream, 'workers')).to.deep.equal([0, null, null, null]);
  });
});
