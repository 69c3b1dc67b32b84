// Issue #3, "Worker pools that lose nothing": Redis itself misbehaves under a pool of worker
// processes: restarted with and without persistence, every connection killed, clients paused.
import { expect } from 'chai';
import { RPCTimeoutError, RedisStreamsConnectionError } from '../../src/index.js';
import { sleep, uniqueName } from '../support/env.js';
import { RedisServer } from '../support/redis-server.js';
import { WorkerPool, makeCaller, parseCounts, runCalls, tally, type Caller, type CallOutcome } from './fixtures/pool.js';

/** Errors a call may end with while Redis is away: typed, never a hang or a raw ioredis error. */
const TYPED_OUTAGE_ERRORS = new Set([RedisStreamsConnectionError.name, RPCTimeoutError.name]);

function untypedErrors(outcomes: readonly CallOutcome<unknown>[]): string[] {
  return outcomes.flatMap((o) => (o.ok || TYPED_OUTAGE_ERRORS.has(o.error.name) ? [] : [`${o.error.name}: ${o.error.message}`]));
}

describe('faults: Redis restarts, CLIENT KILL and CLIENT PAUSE', function () {
  this.timeout(60_000);
  let server: RedisServer | undefined;
  let pool: WorkerPool | undefined;
  let caller: Caller | undefined;
  let stream: string;

  beforeEach(() => {
    stream = uniqueName('faults-redis');
  });

  afterEach(async () => {
    await caller?.close();
    await pool?.killAll();
    await server?.stop();
    caller = undefined;
    pool = undefined;
    server = undefined;
  });

  it('Redis restarted with AOF during a stream of calls: every call settles (answered or a typed error), new calls succeed', async () => {
    const s = await RedisServer.start({ appendOnly: true });
    server = s;
    pool = new WorkerPool({ url: s.url, stream, claimIdleMs: 1000, blockTimeout: 1000 });
    await pool.start(['w1', 'w2']);
    const timeout = 10_000;
    caller = await makeCaller({ url: s.url, stream, blockTimeout: 1000 }, timeout);
    const { api } = caller;
    let restarted: Promise<void> | undefined;

    const outcomes = await runCalls(600, 16, (i) => api.counted(`a${i}`, 5), (_i, _o, done) => {
      if (done === 150) restarted = s.restart({ downMs: 500 });
    });
    await restarted;
    const after = await runCalls(50, 8, (i) => api.echo(`after${i}`));
    const { answered, failed, byError } = tally(outcomes);
    const counts = parseCounts(await s.command('HGETALL', `${stream}:exec`));
    const executedTwice = [...counts.values()].filter((n) => n > 1).length;
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    console.log(
      `      [restart aof] calls=${outcomes.length} answered=${answered} typedErrors=${failed} ${JSON.stringify(byError)}` +
        ` executedTwice=${executedTwice} duplicatesIgnored=${caller.channel.stats().duplicates} slowestCall=${slowest}ms afterRestart=${tally(after).answered}/${after.length}`,
    );

    expect(outcomes).to.have.length(600);
    expect(untypedErrors(outcomes), 'errors that are neither RedisStreamsConnectionError nor RPCTimeoutError').to.deep.equal([]);
    expect(slowest, 'slowest call (a hang would exceed its timeout)').to.be.lessThan(timeout + 2000);
    expect(tally(after).byError, 'calls after the restart that failed').to.deep.equal({});
  });

  it('Redis restarted without persistence: service back soon after Redis returns, no call hangs', async () => {
    const s = await RedisServer.start();
    server = s;
    pool = new WorkerPool({ url: s.url, stream, claimIdleMs: 1000, blockTimeout: 1000 });
    await pool.start(['w1', 'w2']);
    const timeout = 3000;
    caller = await makeCaller({ url: s.url, stream, blockTimeout: 1000 }, timeout);
    const { api } = caller;
    let restartedAt = 0;
    let firstSuccessAt = 0;
    let stop = false;
    let restarted: Promise<void> | undefined;
    let settled = 0;

    // Background load: 8 lanes of calls, on until well after the probe below saw the service come back.
    const load = runCalls(
      20_000,
      8,
      (i) => api.echo(`n${i}`),
      (_i, _o, done) => {
        settled = done;
        if (done === 150) restarted = s.restart({ downMs: 500 }).then(() => void (restartedAt = Date.now()));
      },
      () => stop,
    );
    for (let i = 0; i < 500 && restarted === undefined; i++) await sleep(20);
    await restarted;
    // Probe: a fresh call every 50 ms (each with its own 1 s timeout) until one is answered.
    for (let i = 0; i < 200 && firstSuccessAt === 0; i++) {
      void api.echo('probe').then(
        () => void (firstSuccessAt ||= Date.now()),
        () => undefined,
      );
      await sleep(50);
    }
    // Let the load run on until 200 more calls settled after the service came back.
    const target = settled + 200;
    for (let i = 0; i < 500 && settled < target; i++) await sleep(20);
    stop = true;
    const outcomes = await load;
    const after = await runCalls(50, 8, (i) => api.echo(`after${i}`));
    const { answered, failed, byError } = tally(outcomes);
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    const recoveryMs = firstSuccessAt - restartedAt;
    console.log(
      `      [restart no persistence] calls=${outcomes.length} answered=${answered} typedErrors=${failed} ${JSON.stringify(byError)}` +
        ` serviceBackAfter=${recoveryMs}ms slowestCall=${slowest}ms afterRestart=${tally(after).answered}/${after.length}`,
    );

    expect(firstSuccessAt, 'a call answered after the restart').to.be.greaterThan(0);
    expect(recoveryMs, 'ms from Redis back to the first answered call').to.be.lessThan(2000);
    expect(untypedErrors(outcomes), 'errors that are neither RedisStreamsConnectionError nor RPCTimeoutError').to.deep.equal([]);
    expect(slowest, 'slowest call (a hang would exceed its timeout)').to.be.lessThan(timeout + 2000);
    expect(tally(after).byError, 'calls after the restart that failed').to.deep.equal({});
  });

  it('CLIENT KILL of every connection, twice, during calls: service resumes, nothing lost', async () => {
    const s = await RedisServer.start();
    server = s;
    pool = new WorkerPool({ url: s.url, stream, claimIdleMs: 1000, blockTimeout: 500 });
    await pool.start(['w1', 'w2']);
    caller = await makeCaller({ url: s.url, stream, blockTimeout: 500 }, 20_000);
    const { api } = caller;
    const kills: Promise<number>[] = [];

    const outcomes = await runCalls(600, 16, (i) => api.counted(`k${i}`, 5), (_i, _o, done) => {
      if (done === 150 || done === 350) kills.push(s.clientKillAll());
    });
    const killed = await Promise.all(kills);
    const counts = parseCounts(await s.command('HGETALL', `${stream}:exec`));
    const { answered, failed, byError } = tally(outcomes);
    const executedTwice = [...counts.values()].filter((n) => n > 1).length;
    console.log(
      `      [client kill] calls=${outcomes.length} answered=${answered} lost=${failed} ${JSON.stringify(byError)} connectionsKilled=${killed.join('+')}` +
        ` executedTwice=${executedTwice} duplicatesIgnored=${caller.channel.stats().duplicates} callerReconnects=${caller.channel.stats().reconnects}`,
    );

    expect(byError, 'calls that failed').to.deep.equal({});
    outcomes.forEach((o, i) => expect(o.ok && o.value, `call ${i}`).to.equal(`k${i}`));
    expect(killed.every((n) => n > 0), 'each CLIENT KILL killed connections').to.equal(true);
  });

  it('CLIENT PAUSE longer than blockTimeout (1500 ms vs 500 ms) during calls: service resumes, nothing lost', async () => {
    const s = await RedisServer.start();
    server = s;
    pool = new WorkerPool({ url: s.url, stream, claimIdleMs: 1000, blockTimeout: 500 });
    await pool.start(['w1', 'w2']);
    caller = await makeCaller({ url: s.url, stream, blockTimeout: 500 }, 20_000);
    const { api } = caller;
    let paused: Promise<void> | undefined;
    let pausedAt = 0;

    const outcomes = await runCalls(600, 16, (i) => api.counted(`p${i}`, 5), (_i, _o, done) => {
      if (done === 200) {
        pausedAt = Date.now();
        paused = s.pause(1500);
      }
    });
    await paused;
    const counts = parseCounts(await s.command('HGETALL', `${stream}:exec`));
    const { answered, failed, byError } = tally(outcomes);
    const executedTwice = [...counts.values()].filter((n) => n > 1).length;
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    console.log(
      `      [client pause] calls=${outcomes.length} answered=${answered} lost=${failed} ${JSON.stringify(byError)}` +
        ` executedTwice=${executedTwice} duplicatesIgnored=${caller.channel.stats().duplicates} slowestCall=${slowest}ms pausedAt=${pausedAt > 0}`,
    );

    expect(byError, 'calls that failed').to.deep.equal({});
    outcomes.forEach((o, i) => expect(o.ok && o.value, `call ${i}`).to.equal(`p${i}`));
    expect(slowest, 'some call waited through the pause').to.be.greaterThan(1000);
  });
});
