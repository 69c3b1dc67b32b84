// Issue #3, "Worker pools that lose nothing": deadlines, late answers, retention and reply inboxes,
// with worker and caller processes that start late or die.
import { expect } from 'chai';
import { RPCTimeoutError } from '../../src/index.js';
import { sleep, uniqueName, waitFor } from '../support/env.js';
import { RedisServer } from '../support/redis-server.js';
import { CallerProcess, WorkerPool, makeCaller, parseCounts, type Caller } from './fixtures/pool.js';

describe('faults: deadlines, late answers, retention and inboxes', function () {
  this.timeout(60_000);
  let server: RedisServer | undefined;
  let pool: WorkerPool | undefined;
  let caller: Caller | undefined;
  let child: CallerProcess | undefined;
  let stream: string;

  beforeEach(() => {
    stream = uniqueName('faults-life');
  });

  afterEach(async () => {
    await child?.kill9();
    await caller?.close();
    await pool?.killAll();
    await server?.stop();
    child = undefined;
    caller = undefined;
    pool = undefined;
    server = undefined;
  });

  it('requests sent while no worker runs: served when one starts before their deadline, skipped (stats().expired) after it', async () => {
    const s = await RedisServer.start();
    server = s;
    // The caller creates the group at start, so requests written before any worker exists are kept.
    caller = await makeCaller({ url: s.url, stream }, 20_000);
    const shortLived = caller.channel.getAPI({ timeout: 500 }).counted('expired');
    const longLived = caller.api.counted('served');
    await expect(shortLived).to.be.rejectedWith(RPCTimeoutError);
    await sleep(200);

    pool = new WorkerPool({ url: s.url, stream, claimIdleMs: 1000 });
    await pool.start(['w1']);
    const served = await longLived;
    const worker = pool.get('w1');
    await waitFor(() => worker.count('expired') === 1, { timeoutMs: 5000 }).catch(() => undefined);
    const [stats] = await pool.stopAll();
    const counts = parseCounts(await s.command('HGETALL', `${stream}:exec`));
    console.log(
      `      [deadlines] served=${served} executions=${JSON.stringify(Object.fromEntries(counts))} workerExpired=${stats?.stats.expired}` +
        ` expiredEvents=${worker.count('expired')} callerTimeouts=${caller.channel.stats().timeouts}`,
    );

    expect(served).to.equal('served');
    expect(Object.fromEntries(counts), 'executions').to.deep.equal({ served: 1 });
    expect(stats?.stats.expired, "worker's stats().expired").to.equal(1);
    expect(worker.count('expired'), "'expired' events").to.equal(1);
    expect(await s.command('XPENDING', stream, 'workers')).to.deep.equal([0, null, null, null]);
  });

  it('an answer arriving after its call timed out is ignored and counted in the caller stats().duplicates', async () => {
    const s = await RedisServer.start();
    server = s;
    pool = new WorkerPool({ url: s.url, stream, claimIdleMs: 1000 });
    await pool.start(['w1']);
    caller = await makeCaller({ url: s.url, stream }, 20_000);
    const hurried = caller.channel.getAPI({ timeout: 300 });

    const error = await hurried.slow(800, 'late').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    await waitFor(() => caller!.channel.stats().duplicates === 1, { timeoutMs: 5000 }).catch(() => undefined);
    const { duplicates, timeouts } = caller.channel.stats();
    const [stats] = await pool.stopAll();
    console.log(`      [late answer] callerTimeouts=${timeouts} duplicatesIgnored=${duplicates} workerHandled=${stats?.stats.handled}`);

    expect(error).to.be.instanceOf(RPCTimeoutError);
    expect((error as RPCTimeoutError).code).to.equal('ERR_RPC_TIMEOUT');
    expect(duplicates, "caller's stats().duplicates").to.equal(1);
    expect(timeouts).to.equal(1);
    expect(stats?.stats.handled).to.equal(1);
  });

  it('retention: pending requests trimmed away by maxLen are acknowledged and reported (trimmed event, stats().trimmedEntries)', async () => {
    // Small stream nodes so that MAXLEN ~ trims close to maxLen.
    const s = await RedisServer.start({ extraArgs: ['--stream-node-max-entries', '10'] });
    server = s;
    pool = new WorkerPool({ url: s.url, stream, claimIdleMs: 500 });
    await pool.start(['w1']);
    caller = await makeCaller({ url: s.url, stream, maxLen: 5 }, 20_000);
    // One tick apart, so that each request gets an entry of its own (writes of one tick share one).
    const held: Promise<Error | undefined>[] = [];
    for (let i = 0; i < 5; i++) {
      held.push(
        caller.channel
          .getAPI({ timeout: 4000 })
          .slow(30_000, `held${i}`)
          .then(
            () => undefined,
            (e: unknown) => e as Error,
          ),
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
    const pendingCount = async (): Promise<number> => ((await s.command('XPENDING', stream, 'workers')) as [number])[0];
    await waitFor(async () => (await pendingCount()) === 5, { timeoutMs: 10_000, message: 'w1 never held the 5 requests' });
    await pool.kill9('w1');
    // 100 more entries written with MAXLEN ~ 5 trim the 5 held ones away while they are pending.
    for (let i = 0; i < 100; i++) await caller.channel.notify().echo(i);
    const firstHeld = (await s.command('XPENDING', stream, 'workers', '-', '+', '10')) as [string][];
    const stillThere = (await s.command('XRANGE', stream, firstHeld[0]?.[0] ?? '-', firstHeld[0]?.[0] ?? '+')) as unknown[];

    const w2 = pool.spawn('w2');
    await w2.ready;
    await waitFor(() => w2.count('trimmed') >= 5, { timeoutMs: 10_000 }).catch(() => undefined);
    const after = await caller.api.echo('after');
    const heldErrors = await Promise.all(held);
    const [stats] = await pool.stopAll();
    const xlen = await s.command('XLEN', stream);
    console.log(
      `      [retention] held=5 heldEntryStillInStream=${stillThere.length} trimmedEvents=${w2.count('trimmed')} stats.trimmedEntries=${stats?.stats.trimmedEntries}` +
        ` protocolErrors=${stats?.errors.ERR_RPC_PROTOCOL ?? 0} xlen=${String(xlen)} pending=${await pendingCount()}` +
        ` heldCallers=${heldErrors.map((e) => e?.name ?? 'answered').join(',')}`,
    );

    expect(stillThere, 'the held entry was trimmed').to.have.length(0);
    expect(w2.count('trimmed'), "'trimmed' events").to.equal(5);
    expect(stats?.stats.trimmedEntries, 'stats().trimmedEntries').to.equal(5);
    expect(stats?.errors.ERR_RPC_PROTOCOL ?? 0, 'reported on error').to.be.greaterThan(0);
    expect(await pendingCount(), 'XPENDING count').to.equal(0);
    expect(after).to.equal('after');
    heldErrors.forEach((e) => expect(e).to.be.instanceOf(RPCTimeoutError));
  });

  it("reply inboxes: a killed caller's inbox expires after inboxTtlMs, a live caller's does not", async () => {
    const s = await RedisServer.start();
    server = s;
    const ttl = 1500;
    pool = new WorkerPool({ url: s.url, stream, claimIdleMs: 1000 });
    await pool.start(['w1']);
    child = new CallerProcess(s.url, stream, ttl);
    caller = await makeCaller({ url: s.url, stream, inboxTtlMs: ttl }, 5000);
    const liveInbox = `{${stream}}:inbox:${caller.io.getSessionId()}`;
    const { inbox: deadInbox } = await child.ready;
    const exists = async (key: string): Promise<boolean> => Number(await s.command('EXISTS', key)) === 1;
    expect(await exists(deadInbox), 'child inbox before the kill').to.equal(true);
    expect(await exists(liveInbox), 'live inbox at start').to.equal(true);

    await child.kill9();
    const killedAt = Date.now();
    let goneAfter = -1;
    let liveSamples = 0;
    let liveMissing = 0;
    let minPttl = Number.POSITIVE_INFINITY;
    // Watch both for 3 x inboxTtlMs.
    while (Date.now() - killedAt < 3 * ttl) {
      if (goneAfter < 0 && !(await exists(deadInbox))) goneAfter = Date.now() - killedAt;
      const pttl = Number(await s.command('PTTL', liveInbox));
      liveSamples++;
      if (pttl < 0) liveMissing++;
      else minPttl = Math.min(minPttl, pttl);
      await sleep(100);
    }
    const answer = await caller.api.echo('still here');
    console.log(
      `      [inboxes] killedCallerInboxGoneAfter=${goneAfter}ms (ttl ${ttl}ms) liveInboxPresent=${liveSamples - liveMissing}/${liveSamples}` +
        ` liveMinPttl=${minPttl}ms liveCallAnswered=${answer === 'still here'}`,
    );

    expect(goneAfter, 'ms until the killed caller inbox expired').to.be.within(0, 3 * ttl);
    expect(liveMissing, 'samples where the live inbox was missing').to.equal(0);
    expect(answer).to.equal('still here');
  });
});
