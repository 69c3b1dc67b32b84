// Issue 9, "nothing stale runs": every message carries a deadline, control entries too. A control
// entry (bye, serve) read after its deadline is ignored and counted (expiredControlEntries), so an
// old `bye` read late cannot make workers skip, or stop the callbacks of, a caller restarted under
// the same session id; entries without a deadline (older writers) keep working; the deadline is
// signed with the rest. Notifications carry one too: an expired one is acknowledged, not run.
// Entries are written by hand with XADD from a plain ioredis client, against a real redis-server.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RPCSignatureError, RedisStreamsIO, getRequestContext, type RedisStreamsIOOptions, type SigningOptions } from '../../src/index.js';
import { EntrySigner, resolveSigning } from '../../src/redis/signing.js';
import { sleep, useRedisTest, waitFor } from '../support/env.js';

interface Jobs {
  work(n: number): Promise<number>;
  /** Waits for the test's gate, reports a step through the callback, returns whether its signal aborted. */
  progress(onStep: (step: string) => void): Promise<boolean | string>;
  log(n: number): void;
}

const SIGNING: SigningOptions = { keys: { k1: randomBytes(32) }, keyId: 'k1' };

/** A promise awaited later, that does not count as unhandled if the test fails first. */
function kept<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('RedisStreamsIO: control entries and notifications carry a deadline', function () {
  this.timeout(40_000);
  const t = useRedisTest('ctl-dl');
  let raw: Redis;

  beforeEach(() => {
    raw = new Redis(t.url);
  });
  afterEach(async () => {
    await raw.quit();
  });

  const controlKey = (): string => `{${t.name}}:control`;
  const sessionOf = (tag: string): string => `${tag}-${t.name.replace(/:/g, '-')}`;

  /** A worker running `work` one at a time (`ms` each); `progress` waits for `progressGate`. */
  function worker(options: Partial<RedisStreamsIOOptions>, ms = 20) {
    const progressGate = gate();
    const ran = { work: 0, logged: [] as number[] };
    let chain = Promise.resolve();
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, ...options });
    const channel = t.track(
      new RPCChannel<Jobs, Record<string, never>>(io, {
        expose: {
          work: (n) => {
            const done = chain.then(async () => {
              await sleep(ms);
              ran.work++;
              return n;
            });
            chain = done.then(() => undefined);
            return done;
          },
          progress: async (onStep) => {
            const context = getRequestContext();
            await progressGate.wait;
            onStep('halfway');
            return context?.signal.aborted ?? 'no context';
          },
          log: (n) => void ran.logged.push(n),
        },
      }),
    );
    const errors: Error[] = [];
    const gone: string[] = [];
    channel.on('error', (e) => errors.push(e));
    channel.on('peer-destroyed', (id) => gone.push(id));
    return { io, channel, ran, errors, gone, progressGate };
  }

  function caller(options: Partial<RedisStreamsIOOptions>, timeout = 15_000) {
    const io = new RedisStreamsIO({ url: t.url, stream: t.name, ...options });
    const channel = t.track(new RPCChannel<Record<string, never>, Jobs>(io, { timeout }));
    const errors: Error[] = [];
    channel.on('error', (e) => errors.push(e));
    return { io, channel, errors, api: channel.getAPI() };
  }

  /** The fields of a control entry for `key`, as an IO writes them (signed with `signing`). */
  function controlFields(key: string, from: string, word: string, deadline: number | undefined, signing: SigningOptions | undefined): string[] {
    const fields = ['f', from, 'x', word, ...(deadline === undefined ? [] : ['dl', String(deadline)])];
    return signing === undefined ? fields : new EntrySigner(resolveSigning(signing)!).signed(key, fields);
  }

  async function pendingCount(io: RedisStreamsIO): Promise<number> {
    return ((await raw.xpending(t.name, io.getConsumerGroup())) as [number])[0];
  }

  for (const lb of [true, false]) {
    for (const signing of [undefined, SIGNING]) {
      const mode = lb ? 'load-balanced' : 'broadcast';
      it(`${mode}: an old bye read after its deadline is ignored: a restarted caller's calls all run, its callbacks still work (signing ${signing === undefined ? 'off' : 'on'})`, async () => {
        // Small queue: the worker holds a few requests, the rest wait in the stream (load-balanced).
        const w = worker({ useConsumerGroup: lb, signing, maxQueueSize: 4 });
        await w.io.waitUntilReady();
        const c = caller({ useConsumerGroup: lb, signing, sessionId: sessionOf('restarted') });
        await c.io.waitUntilReady();
        const steps: string[] = [];
        const progress = kept(c.api.progress((s) => void steps.push(s)));
        const calls = Array.from({ length: 24 }, (_, i) => kept(c.api.work(i)));
        await waitFor(() => w.ran.work >= 1, { message: 'no call ran' });
        // The bye of this session's previous process, read only now (held through an outage, or
        // read back from history): its deadline has passed.
        await raw.xadd(controlKey(), '*', ...controlFields(controlKey(), c.io.getSessionId(), 'bye', Date.now() - 1000, signing));
        // Heard: ignored as expired (or, before deadlines existed, taken as the caller leaving).
        await waitFor(() => w.io.stats().expiredControlEntries === 1 || w.gone.length > 0, { message: 'the bye was not read' });
        expect(w.gone).to.deep.equal([]);
        w.progressGate.open();
        expect(await Promise.all(calls)).to.deep.equal(Array.from({ length: 24 }, (_, i) => i));
        expect(await progress).to.equal(false);
        expect(steps).to.deep.equal(['halfway']);
        expect(w.channel.stats().abandoned).to.equal(0);
        expect(w.gone).to.deep.equal([]);
        expect(w.errors).to.deep.equal([]);
      });
    }
  }

  it('load-balanced: a bye on the request stream read after its deadline is acknowledged and ignored', async () => {
    const w = worker({ useConsumerGroup: true, maxQueueSize: 4 });
    await w.io.waitUntilReady();
    const c = caller({ useConsumerGroup: true, sessionId: sessionOf('restarted') });
    await c.io.waitUntilReady();
    const calls = Array.from({ length: 24 }, (_, i) => kept(c.api.work(i)));
    await waitFor(() => w.ran.work >= 1, { message: 'no call ran' });
    // As signalDestroy() writes it on the request stream for peers of earlier versions.
    await raw.xadd(t.name, '*', ...controlFields(t.name, c.io.getSessionId(), 'bye', Date.now() - 1000, undefined));
    expect(await Promise.all(calls)).to.have.length(24);
    await waitFor(() => w.io.stats().expiredControlEntries === 1 || w.gone.length > 0, { message: 'the bye was not read' });
    expect(w.gone).to.deep.equal([]);
    await waitFor(async () => (await pendingCount(w.io)) === 0, { message: 'the bye was left pending' });
    expect(w.channel.stats().abandoned).to.equal(0);
  });

  it('a bye without a deadline (an older writer) still makes workers skip that caller\'s queued calls', async () => {
    const w = worker({ useConsumerGroup: true, maxQueueSize: 4 }, 50);
    await w.io.waitUntilReady();
    const c = caller({ useConsumerGroup: true, sessionId: sessionOf('old') }, 2000);
    await c.io.waitUntilReady();
    const calls = Array.from({ length: 24 }, (_, i) => c.api.work(i).catch(() => 'gone'));
    await waitFor(() => w.ran.work >= 1, { message: 'no call ran' });
    await raw.xadd(controlKey(), '*', ...controlFields(controlKey(), c.io.getSessionId(), 'bye', undefined, undefined));
    await waitFor(() => w.gone.length === 1, { message: 'the bye was not heard' });
    await Promise.all(calls);
    await waitFor(() => w.channel.stats().abandoned > 0 && w.channel.stats().abandoned + w.ran.work === 24, { message: `abandoned ${w.channel.stats().abandoned}, ran ${w.ran.work}` });
    expect(w.io.stats().expiredControlEntries).to.equal(0);
  });

  it('signing: the deadline is signed: a bye whose expired deadline was pushed forward is refused, nothing is skipped', async () => {
    const w = worker({ useConsumerGroup: true, signing: SIGNING, maxQueueSize: 4 });
    await w.io.waitUntilReady();
    const c = caller({ useConsumerGroup: true, signing: SIGNING, sessionId: sessionOf('restarted') });
    await c.io.waitUntilReady();
    const calls = Array.from({ length: 24 }, (_, i) => kept(c.api.work(i)));
    await waitFor(() => w.ran.work >= 1, { message: 'no call ran' });
    const fields = controlFields(controlKey(), c.io.getSessionId(), 'bye', Date.now() - 1000, SIGNING);
    fields[fields.indexOf('dl') + 1] = String(Date.now() + 600_000);
    await raw.xadd(controlKey(), '*', ...fields);
    expect(await Promise.all(calls)).to.have.length(24);
    await waitFor(() => w.io.stats().refusedEntries === 1, { message: 'the altered bye was not refused' });
    const refused = w.errors.filter((e): e is RPCSignatureError => e instanceof RPCSignatureError);
    expect(refused.map((e) => e.problem)).to.deep.equal(['bad-signature']);
    expect(w.channel.stats().abandoned).to.equal(0);
    expect(w.gone).to.deep.equal([]);
  });

  it('every control entry an IO writes carries a deadline (dl), signed with the rest', async () => {
    const w = worker({ useConsumerGroup: true, signing: SIGNING });
    await w.io.waitUntilReady();
    const c = caller({ signing: SIGNING });
    await c.io.waitUntilReady();
    await c.channel.signalDestroy();
    await waitFor(async () => (await raw.xlen(controlKey())) >= 2, { message: 'no serve and bye entries' });
    const inbox = `{${t.name}}:inbox:${c.io.getSessionId()}`;
    const entries = [...(await raw.xrange(controlKey(), '-', '+')), ...(await raw.xrange(inbox, '-', '+')), ...(await raw.xrange(t.name, '-', '+'))];
    const control = entries.filter(([, f]) => f[2] === 'x');
    expect(control.map(([, f]) => f[3]).sort()).to.deep.equal(['bye', 'bye', 'open', 'serve']);
    for (const [, f] of control) {
      const dl = Number(f[f.indexOf('dl') + 1]);
      expect(dl).to.be.greaterThan(Date.now()).and.lessThan(Date.now() + 11 * 60_000);
      // dl comes before the signature fields k, t, s: the MAC covers it.
      expect(f.indexOf('dl')).to.be.lessThan(f.indexOf('s'));
    }
  });

  for (const lb of [true, false]) {
    it(`${lb ? 'load-balanced' : 'broadcast'}: a notification read after its deadline is acknowledged as expired, not run; a live one runs`, async () => {
      const w = worker({ useConsumerGroup: lb });
      await w.io.waitUntilReady();
      const notification = (id: string, dl: number, n: number): string => `{"v":1,"k":"req","id":"${id}","m":["log"],"dl":${dl},"n":1}\n{"json":[${n}]}`;
      await raw.xadd(t.name, '*', 'f', 'someone', 'd', notification('n1', Date.now() - 1, 1));
      await raw.xadd(t.name, '*', 'f', 'someone', 'd', notification('n2', Date.now() + 60_000, 2));
      await waitFor(() => w.ran.logged.length === 1 && w.channel.stats().expired === 1, { message: `logged ${w.ran.logged.join()}, expired ${w.channel.stats().expired}` });
      expect(w.ran.logged).to.deep.equal([2]);
      if (lb) await waitFor(async () => (await pendingCount(w.io)) === 0, { message: 'the expired notification was left pending' });
      // A notification a channel sends carries its deadline too (send time + timeout).
      const c = caller({ useConsumerGroup: lb }, 5000);
      await c.channel.notify().log(3);
      await waitFor(() => w.ran.logged.length === 2);
      const sent = (await raw.xrange(t.name, '-', '+')).map(([, f]) => f[f.indexOf('d') + 1]!).filter((d) => d.includes('"n":1') && d.includes('[3]'));
      const header = JSON.parse(sent[0]!.slice(0, sent[0]!.indexOf('\n'))) as { dl: number };
      expect(header.dl).to.be.greaterThan(Date.now()).and.at.most(Date.now() + 5000);
      expect(w.errors).to.deep.equal([]);
    });
  }

  it('a new group reads the retained history: the old calls are acknowledged as expired, the old bye is ignored, the restarted caller is served', async () => {
    const session = sessionOf('restarted');
    const request = (id: string, dl: number): string => `{"v":1,"k":"req","id":"${id}","m":["work"],"dl":${dl}}\n{"json":[${id.length}]}`;
    // Written before any worker existed (a broadcast-mode caller creates no group), long ago.
    await raw.xadd(t.name, '*', 'f', session, 'd', request('old-1', Date.now() - 5000), 'd', request('old-2', Date.now() - 5000));
    await raw.xadd(t.name, '*', ...controlFields(t.name, session, 'bye', Date.now() - 1000, undefined));
    const w = worker({ useConsumerGroup: true });
    await w.io.waitUntilReady();
    const c = caller({ sessionId: session });
    await c.io.waitUntilReady();
    const steps: string[] = [];
    const progress = kept(c.api.progress((s) => void steps.push(s)));
    await waitFor(() => w.channel.stats().expired === 2 && w.io.stats().expiredControlEntries === 1, { message: `expired ${w.channel.stats().expired}, expired control ${w.io.stats().expiredControlEntries}` });
    w.progressGate.open();
    expect(await progress).to.equal(false);
    expect(steps).to.deep.equal(['halfway']);
    expect(await c.api.work(5)).to.equal(5);
    expect(w.ran.work).to.equal(1);
    expect(w.gone).to.deep.equal([]);
    await waitFor(async () => (await pendingCount(w.io)) === 0, { message: 'history left pending' });
  });
});
