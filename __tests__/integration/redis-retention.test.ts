// Issue "A pool that works by default", retention: serving peers trim the request stream of what
// nobody needs (acknowledged by every group; broadcast: older than retentionMs), never a pending
// entry nor one a group has not read; inboxes are capped (inboxMaxLen); maxLen stays the hard cap.
// Real redis-server, in-process endpoints; faults are entries and groups made by hand.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { DEFAULT_REDIS_STREAMS_OPTIONS, RPCChannel, RPCInvalidArgumentError, RedisStreamsIO, type RedisStreamsIOOptions, type RemoteAPI } from '../../src/index.js';
import { encodeRequest } from '../../src/protocol/envelope.js';
import { streamKeys } from '../../src/redis/keys.js';
import { sleep, useRedisTest, waitFor } from '../support/env.js';

interface Api {
  echo(n: number): number;
  slow(): Promise<string>;
}

/** A promise to release by hand: a handler that runs until the test says so. */
function gate(): { wait: Promise<void>; open(): void } {
  let open: () => void = () => undefined;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('RedisStreamsIO retention: the request stream and the inboxes stay bounded by default', function () {
  this.timeout(60_000);
  const t = useRedisTest('retention');
  let redis: Redis;

  beforeEach(() => {
    redis = new Redis(t.url);
  });

  afterEach(async () => {
    await redis.quit();
  });

  function worker(options: RedisStreamsIOOptions = {}, slow: () => Promise<string> = () => Promise.resolve('slow')) {
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup: true, ...options });
    const channel = t.track(new RPCChannel<Api, Record<string, never>>(io, { expose: { echo: (n: number) => n, slow } }));
    return { io, channel };
  }

  async function caller(options: RedisStreamsIOOptions = {}) {
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, ...options });
    const channel = t.track(new RPCChannel<Record<string, never>, Api>(io, { timeout: 20_000 }));
    await io.waitUntilReady();
    return { io, api: channel.getAPI() };
  }

  /** `n` calls one after the other: one request entry each. */
  async function sequential(api: RemoteAPI<Api>, n: number, from = 0): Promise<void> {
    for (let i = from; i < from + n; i++) expect(await api.echo(i)).to.equal(i);
  }

  const xlen = (): Promise<number> => redis.xlen(t.name);

  describe('options', () => {
    it('defaults are on, documented in DEFAULT_REDIS_STREAMS_OPTIONS; false and 0 turn each off; bad values name the option', async () => {
      expect(DEFAULT_REDIS_STREAMS_OPTIONS.retentionIntervalMs).to.equal(5000);
      expect(DEFAULT_REDIS_STREAMS_OPTIONS.retentionMs).to.equal(120_000);
      expect(DEFAULT_REDIS_STREAMS_OPTIONS.inboxMaxLen).to.equal(10_000);
      for (const option of ['retentionIntervalMs', 'retentionMs', 'inboxMaxLen'] as const) {
        for (const bad of [-1, 1.5, '5000', true, Number.NaN]) {
          expect(() => new RedisStreamsIO({ url: t.url, stream: t.name, [option]: bad } as RedisStreamsIOOptions), `${option}: ${String(bad)}`)
            .to.throw(RPCInvalidArgumentError)
            .with.property('argument', option);
        }
        for (const off of [false, 0] as const) await t.track(new RedisStreamsIO({ url: t.url, stream: t.name, [option]: off })).waitUntilReady();
      }
      expect(() => new RedisStreamsIO({ url: t.url, stream: t.name, retentionIntervalMs: 5 }))
        .to.throw(RPCInvalidArgumentError)
        .with.property('argument', 'retentionIntervalMs');
    });
  });

  describe('load-balanced: what every group acknowledged', () => {
    it('with default options, 3,000 answered calls leave the request stream near empty within a few retention intervals', async () => {
      const w = worker();
      await w.io.waitUntilReady();
      const c = await caller({ useConsumerGroup: true });
      await sequential(c.api, 3000);
      const written = c.io.stats().sent;
      expect(written).to.equal(3000);
      // Default retentionIntervalMs is 5 s: generous bound of 4 intervals.
      await waitFor(async () => (await xlen()) <= 200, { timeoutMs: 20_000, intervalMs: 200, message: 'XLEN did not fall to 200' });
      const left = await xlen();
      console.log(`      [retention defaults] 3000 answered calls, XLEN ${left}, trimmed by the worker ${w.io.stats().retentionTrimmedEntries}`);
      expect(w.io.stats().retentionTrimmedEntries).to.equal(3000 - left);
      expect(c.io.stats().retentionTrimmedEntries, 'a pure caller never trims the request stream').to.equal(0);
    });

    it('a request pending on a slow handler is never trimmed while retention runs around it, and is answered', async () => {
      const release = gate();
      let running = 0;
      const w = worker({ retentionIntervalMs: 50, claimIdleMs: 60_000 }, async () => {
        running++;
        await release.wait;
        return 'slow done';
      });
      await w.io.waitUntilReady();
      const c = await caller({ useConsumerGroup: true });
      await sequential(c.api, 300);
      const slow = c.api.slow();
      slow.catch(() => undefined); // awaited below; a failed test must not leave it unhandled
      await waitFor(() => running === 1, { message: 'the slow call did not start' });
      const pending = (await redis.xpending(t.name, 'rpc-group', '-', '+', 10)) as [string, string, number, number][];
      expect(pending).to.have.length(1);
      const slowId = pending[0]![0];
      await sequential(c.api, 200, 300);
      // Entries older than the pending one go; the pending one and everything after it stay.
      await waitFor(() => w.io.stats().retentionTrimmedEntries >= 200, { message: `trimmed ${w.io.stats().retentionTrimmedEntries} of the 300 entries before the pending one` });
      await sleep(500); // 10 more retention runs
      expect(await redis.xrange(t.name, slowId, slowId)).to.have.length(1);
      expect(await redis.xrange(t.name, `(${slowId}`, '+')).to.have.length(200);
      expect(await redis.xpending(t.name, 'rpc-group')).to.have.property('0', 1);
      release.open();
      expect(await slow).to.equal('slow done');
      await waitFor(async () => (await xlen()) <= 150, { message: 'once answered, the rest is trimmed' });
    });

    it('entries a group has not read yet are kept (a second group made by hand), and trimmed once it acknowledged them', async () => {
      const w = worker({ retentionIntervalMs: 50 });
      await w.io.waitUntilReady();
      await redis.xgroup('CREATE', t.name, 'audit', '$');
      const c = await caller({ useConsumerGroup: true });
      await sequential(c.api, 300);
      await sleep(500); // 10 retention runs
      expect(await xlen(), 'the audit group has read none of them').to.be.at.least(300);
      const read = (await redis.xreadgroup('GROUP', 'audit', 'a1', 'COUNT', 1000, 'STREAMS', t.name, '>')) as [string, [string, string[]][]][];
      const ids = read[0]![1].map(([id]) => id);
      expect(ids).to.have.length(300);
      await sleep(300);
      expect(await xlen(), 'read but pending in the audit group').to.be.at.least(300);
      await redis.xack(t.name, 'audit', ...ids);
      await waitFor(async () => (await xlen()) <= 150, { message: 'acknowledged by both groups, they go' });
    });

    it('a new group serves the requests written before any worker existed, while its retention runs; then trims them', async () => {
      // A broadcast-mode caller (the default) never creates the group.
      const c = await caller({ writeBatchSize: 1 });
      const calls = Promise.all(Array.from({ length: 300 }, (_, i) => c.api.echo(i)));
      calls.catch(() => undefined); // awaited below
      await waitFor(async () => (await xlen()) === 300, { message: 'the 300 requests were not written' });
      // A worker that holds few at a time: many retention runs happen while it works through them.
      const w = worker({ retentionIntervalMs: 20, maxQueueSize: 4 });
      expect(await calls).to.deep.equal(Array.from({ length: 300 }, (_, i) => i));
      await waitFor(async () => (await xlen()) <= 150, { message: 'answered requests were not trimmed' });
      expect(w.io.stats().retentionTrimmedEntries).to.be.at.least(150);
    });

    it('retentionIntervalMs: false keeps every entry', async () => {
      const w = worker({ retentionIntervalMs: false });
      await w.io.waitUntilReady();
      const c = await caller({ useConsumerGroup: true });
      await sequential(c.api, 200);
      await sleep(300);
      expect(await xlen()).to.equal(200);
      expect(w.io.stats().retentionTrimmedEntries).to.equal(0);
    });
  });

  describe('broadcast: older than retentionMs', () => {
    it('a server trims entries older than the window, never past what a group on the stream has not read', async () => {
      const serverIo = new RedisStreamsIO({ url: t.url, stream: t.name, retentionMs: 1000, retentionIntervalMs: 50 });
      t.track(new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { echo: (n: number) => n, slow: () => Promise.resolve('') } }));
      await serverIo.waitUntilReady();
      const c = await caller();
      await sequential(c.api, 300);
      await waitFor(async () => (await xlen()) <= 150, { message: 'entries older than the window were not trimmed' });
      expect(serverIo.stats().retentionTrimmedEntries).to.be.at.least(150);
      // A group on the same stream that reads nothing: nothing after its position goes, however old.
      await redis.xgroup('CREATE', t.name, 'audit', '$');
      const before = await xlen();
      await sequential(c.api, 300, 300);
      await sleep(1500); // past the window, 30 retention runs
      expect(await xlen(), 'unread by the audit group').to.be.at.least(300);
      expect(await xlen()).to.be.at.most(before + 300);
      await redis.xgroup('DESTROY', t.name, 'audit');
      await waitFor(async () => (await xlen()) <= 150, { message: 'without the group, the window applies again' });
    });
  });

  describe('inboxes: inboxMaxLen', () => {
    it('answers into the inbox of a caller that does not read stay under inboxMaxLen', async () => {
      // The caller is written by hand: an inbox that exists (so answers are written) and that nobody reads.
      const inbox = streamKeys(t.name).inbox('deaf');
      await redis.xadd(inbox, '*', 'f', 'deaf', 'x', 'open');
      const w = worker({ writeBatchSize: 1, inboxMaxLen: 100 });
      await w.io.waitUntilReady();
      const tx = redis.pipeline();
      for (let i = 0; i < 3000; i++) tx.xadd(t.name, '*', 'f', 'deaf', 'd', encodeRequest(`r${i}`, '["echo"]', Date.now() + 60_000, false, undefined, `{"json":[${i}]}`));
      await tx.exec();
      await waitFor(() => w.channel.stats().handled === 3000, { timeoutMs: 30_000, message: `handled ${w.channel.stats().handled} of 3000` });
      await waitFor(() => w.io.stats().sent === 3000, { message: `answers written ${w.io.stats().sent}` });
      const length = await redis.xlen(inbox);
      console.log(`      [inboxMaxLen 100] 3000 answers written, unread inbox XLEN ${length}`);
      expect(length).to.be.at.least(100).and.at.most(300);
    });
  });

  describe('maxLen: the hard cap', () => {
    it('caps the stream where retention may not trim (a pending request holds it back), trimming that pending request too', async () => {
      const release = gate();
      let running = 0;
      const w = worker({ retentionIntervalMs: 50, claimIdleMs: 60_000 }, async () => {
        running++;
        await release.wait;
        return 'slow done';
      });
      await w.io.waitUntilReady();
      const c = await caller({ useConsumerGroup: true, maxLen: 50 });
      const slow = c.api.slow().catch((err: unknown) => err);
      await waitFor(() => running === 1, { message: 'the slow call did not start' });
      const pending = (await redis.xpending(t.name, 'rpc-group', '-', '+', 10)) as [string, string, number, number][];
      const slowId = pending[0]![0];
      await sequential(c.api, 500);
      expect(await xlen()).to.be.at.most(200);
      expect(await redis.xrange(t.name, slowId, slowId), 'maxLen trims a pending request').to.have.length(0);
      release.open();
      await slow;
    });
  });
});
