// Issue 9, item 5: broadcast servers (useConsumerGroup: false) and load-balanced workers
// (useConsumerGroup: true) serving one request stream run every request twice, silently. Every
// serving peer involved reports RedisStreamsModeMismatchError on 'error' (the channel forwards it),
// at start and whenever a serving peer of the other mode appears. Two groups on one stream and pure
// callers of either mode are no mismatch. Against a real redis-server; announcements and old-version
// workers are also made by hand (XADD, XREADGROUP from a plain ioredis client).
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RPCError, RedisStreamsIO, RedisStreamsModeMismatchError, type RedisStreamsIOOptions, type SigningOptions } from '../../src/index.js';
import { sleep, useRedisTest, waitFor } from '../support/env.js';

interface Api {
  add(a: number, b: number): number;
}

const SIGNING: SigningOptions = { keys: { k1: randomBytes(32) }, keyId: 'k1' };

describe('RedisStreamsIO: a stream served in both modes', function () {
  this.timeout(30_000);
  const t = useRedisTest('modes');
  let raw: Redis;

  beforeEach(() => {
    raw = new Redis(t.url);
  });
  afterEach(async () => {
    await raw.quit();
  });

  const control = (): string => `{${t.name}}:control`;

  /** A serving peer; its channel's errors are collected (the IO's reach the channel). */
  function server(options: Partial<RedisStreamsIOOptions> = {}) {
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, ...options });
    const channel = t.track(new RPCChannel<Api, Record<string, never>>(io, { expose: { add: (a, b) => a + b } }));
    const errors: Error[] = [];
    channel.on('error', (e) => errors.push(e));
    const mismatches = (): RedisStreamsModeMismatchError[] => errors.filter((e): e is RedisStreamsModeMismatchError => e instanceof RedisStreamsModeMismatchError);
    return { io, channel, errors, mismatches };
  }

  /** A pure caller (exposes nothing). */
  function caller(options: Partial<RedisStreamsIOOptions> = {}) {
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, ...options });
    const channel = t.track(new RPCChannel<Record<string, never>, Api>(io, { timeout: 10_000 }));
    const errors: Error[] = [];
    channel.on('error', (e) => errors.push(e));
    return { io, channel, errors, api: channel.getAPI() };
  }

  for (const signing of [undefined, SIGNING]) {
    it(`a worker joining a stream a broadcast server serves: both report it, naming the stream, modes and group (signing ${signing === undefined ? 'off' : 'on'})`, async () => {
      const b = server({ signing });
      await b.io.waitUntilReady();
      const w = server({ signing, useConsumerGroup: true, consumerGroup: 'workers' });
      await w.io.waitUntilReady();
      await waitFor(() => b.mismatches().length === 1 && w.mismatches().length === 1, { message: `mismatches: broadcast ${b.mismatches().length}, worker ${w.mismatches().length}` });

      const [onServer] = b.mismatches();
      expect(onServer).to.be.instanceOf(RPCError);
      expect(onServer!.code).to.equal('ERR_REDIS_MODE_MISMATCH');
      expect(onServer!).to.include({ stream: t.name, localMode: 'broadcast', remoteMode: 'group', group: 'workers', peer: w.io.getSessionId() });
      expect(onServer!.message).to.include(t.name).and.include('useConsumerGroup').and.include('"workers"');
      const [onWorker] = w.mismatches();
      expect(onWorker!).to.include({ stream: t.name, localMode: 'group', remoteMode: 'broadcast', group: 'workers', peer: b.io.getSessionId() });
      expect(onWorker!.message).to.include('useConsumerGroup');
      // Reported, nothing stopped: both still serve (which is the double execution being reported).
      const c = caller({ signing });
      expect(await c.api.add(1, 2)).to.equal(3);
      expect([...b.errors, ...w.errors].filter((e) => !(e instanceof RedisStreamsModeMismatchError))).to.deep.equal([]);
    });
  }

  it('a broadcast server joining a running pool: it reports the group once, and every worker reports it', async () => {
    const workers = [server({ useConsumerGroup: true }), server({ useConsumerGroup: true })];
    await Promise.all(workers.map((w) => w.io.waitUntilReady()));
    // Reading requests, so both are consumers of the group (the broadcast server's XINFO check sees them too).
    const c = caller({ useConsumerGroup: true });
    expect(await c.api.add(2, 2)).to.equal(4);
    const b = server();
    await b.io.waitUntilReady();
    await waitFor(() => workers.every((w) => w.mismatches().length === 1), { message: `workers: ${workers.map((w) => w.mismatches().length).join(', ')}` });
    await waitFor(() => b.mismatches().length === 1, { message: 'the broadcast server did not report' });
    for (const w of workers) expect(w.mismatches()[0]).to.include({ localMode: 'group', peer: b.io.getSessionId(), group: workers[0]!.io.getConsumerGroup() });
    expect(b.mismatches()[0]).to.include({ localMode: 'broadcast', remoteMode: 'group', group: workers[0]!.io.getConsumerGroup() });
    // A third worker appearing later: it reports, the broadcast server has reported that group already.
    const late = server({ useConsumerGroup: true });
    await late.io.waitUntilReady();
    await waitFor(() => late.mismatches().length === 1, { message: 'the late worker did not report' });
    expect(late.mismatches()[0]).to.include({ peer: b.io.getSessionId() });
    expect(b.mismatches()).to.have.length(1);
    expect(c.errors).to.deep.equal([]);
  });

  it('no mismatch: two groups on one stream, broadcast servers together, callers of both modes; a later broadcast server is reported by each group', async () => {
    const a = server({ useConsumerGroup: true, consumerGroup: 'billing' });
    const b = server({ useConsumerGroup: true, consumerGroup: 'audit' });
    const callers = [caller(), caller({ useConsumerGroup: true, consumerGroup: 'billing' })];
    await Promise.all([a, b, ...callers].map((p) => p.io.waitUntilReady()));
    for (const c of callers) expect(await c.api.add(1, 1)).to.equal(2);
    // The sentinel: the control stream is read in order, so once both workers report it they have
    // read every announcement before it, and none of those was a mismatch.
    const sentinel = server();
    await sentinel.io.waitUntilReady();
    await waitFor(() => a.mismatches().length === 1 && b.mismatches().length === 1, { message: `billing ${a.mismatches().length}, audit ${b.mismatches().length}` });
    await waitFor(() => sentinel.mismatches().length === 2, { message: `sentinel ${sentinel.mismatches().length}` });
    expect(sentinel.mismatches().map((e) => e.group).sort()).to.deep.equal(['audit', 'billing']);
    expect(a.mismatches()[0]!.peer).to.equal(sentinel.io.getSessionId());
    expect(b.mismatches()[0]!.peer).to.equal(sentinel.io.getSessionId());
    for (const c of callers) expect(c.errors).to.deep.equal([]);

    // Broadcast servers together: the second one reports nothing about the first (only the workers).
    const second = server();
    await second.io.waitUntilReady();
    await waitFor(() => second.mismatches().length === 2, { message: `second ${second.mismatches().length}` });
    expect(second.mismatches().map((e) => e.remoteMode)).to.deep.equal(['group', 'group']);
    expect(sentinel.mismatches()).to.have.length(2);
    await sleep(100);
    for (const c of callers) expect(c.errors).to.deep.equal([]);
  });

  it('announcements written before a peer started are history (their writers may be gone); a live one is reported', async () => {
    // A broadcast server that announced itself a minute ago and was SIGKILLed since: it cannot answer.
    await raw.xadd(control(), `${Date.now() - 60_000}-0`, 'f', 'dead-server', 'x', 'serve', 'm', 'broadcast', 'dl', String(Date.now() + 600_000));
    const w = server({ useConsumerGroup: true });
    await w.io.waitUntilReady();
    await waitFor(async () => (await raw.xlen(control())) >= 2, { message: 'the worker did not announce itself' });
    // An announcement after the worker's own, as a live broadcast server writes it when it starts.
    await raw.xadd(control(), '*', 'f', 'live-server', 'x', 'serve', 'm', 'broadcast', 'dl', String(Date.now() + 600_000));
    await waitFor(() => w.mismatches().length === 1, { message: 'the live broadcast server was not reported' });
    expect(w.mismatches()[0]!.peer).to.equal('live-server');
    // ... and the worker answered it (re 1), so that server, which took the worker's entry for history, hears of it.
    const answersOf = async (): Promise<[string, string[]][]> => (await raw.xrange(control(), '-', '+')).filter(([, f]) => f[1] === w.io.getSessionId() && f.includes('re'));
    await waitFor(async () => (await answersOf()).length === 1, { message: 'the worker did not answer' });
    const answers = await answersOf();
    expect(answers[0]![1].slice(0, 8)).to.deep.equal(['f', w.io.getSessionId(), 'x', 'serve', 'm', 'group', 'g', w.io.getConsumerGroup()]);
    // An expired announcement is ignored and counted; an answer is never answered again.
    await raw.xadd(control(), '*', 'f', 'stale-server', 'x', 'serve', 'm', 'broadcast', 'dl', String(Date.now() - 1));
    await raw.xadd(control(), '*', 'f', 'answering-server', 'x', 'serve', 'm', 'broadcast', 're', '1', 'dl', String(Date.now() + 600_000));
    await waitFor(() => w.mismatches().length === 2, { message: 'the answering server was not reported' });
    expect(w.mismatches().map((e) => e.peer)).to.deep.equal(['live-server', 'answering-server']);
    expect(w.io.stats().expiredControlEntries).to.equal(1);
    expect((await raw.xrange(control(), '-', '+')).filter(([, f]) => f[1] === w.io.getSessionId())).to.have.length(2);
  });

  it('a broadcast server starting beside workers that do not announce themselves (older versions) reports their group from XINFO CONSUMERS', async () => {
    await raw.xgroup('CREATE', t.name, 'legacy', '0', 'MKSTREAM');
    // An older worker: a consumer of the group reading requests, with no serve entry anywhere
    // (Redis 7.0 lists a consumer once it has read an entry).
    await raw.xadd(t.name, '*', 'f', 'legacy-caller', 'x', 'open');
    await raw.xreadgroup('GROUP', 'legacy', 'legacy-worker-1', 'COUNT', 1, 'STREAMS', t.name, '>');
    const b = server();
    await b.io.waitUntilReady();
    await waitFor(() => b.mismatches().length === 1, { message: 'the broadcast server did not report the legacy group' });
    expect(b.mismatches()[0]).to.include({ localMode: 'broadcast', remoteMode: 'group', group: 'legacy', peer: 'legacy-worker-1' });
  });
});
