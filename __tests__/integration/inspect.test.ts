// StreamInspector against a real redis-server and a live pool: status, pending, dead letters,
// redrive answering a caller that is still waiting, purge, the pending-safe trim and tail. Looking
// creates nothing: the keys, groups and consumers are compared before and after.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import {
  RPCInvalidArgumentError,
  RedisStreamsConnectionError,
  RedisStreamsNotFoundError,
  StreamInspector,
  inspect,
  redriveDeadLetters,
  type TailEvent,
} from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName, waitFor } from '../support/env.js';
import { Pool, keysOf, pendingCount, topology } from './fixtures/inspect-pool.js';

describe('StreamInspector', function () {
  this.timeout(60_000);
  let url = '';
  let name = '';
  let raw: Redis;
  let pool: Pool;
  let inspector: StreamInspector;

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('inspect');
    raw = new Redis(url);
    pool = new Pool(url, name);
    inspector = new StreamInspector({ url, stream: name });
  });

  afterEach(async () => {
    await pool.destroy();
    await inspector.close();
    await raw.quit();
    await deleteKeys(url, `*${name}*`);
  });

  it('reports a live pool: stream, group, consumers alive, inboxes, one request pending, and creates nothing', async () => {
    await pool.worker();
    await pool.worker();
    await pool.startCaller();
    const api = pool.caller.getAPI();
    for (let i = 0; i < 5; i++) expect(await api.math.add(i, 1)).to.equal(i + 1);
    const held = api.hold('h1');
    held.catch(() => undefined);
    await waitFor(async () => (await pendingCount(raw, name, pool.group)) === 1);

    const keysBefore = await keysOf(raw, name);
    const topologyBefore = await topology(raw, name);
    const status = await inspector.inspect();
    await inspector.pending();
    await inspector.deadLetters();
    expect(await keysOf(raw, name)).to.deep.equal(keysBefore);
    expect(await topology(raw, name)).to.deep.equal(topologyBefore);

    expect(status.stream.key).to.equal(name);
    expect(status.stream.length).to.be.at.least(6);
    expect(status.stream.memoryBytes).to.be.a('number').above(0);
    expect(status.groups).to.have.length(1);
    const group = status.groups[0]!;
    expect(group.name).to.equal('workers');
    expect(group.pending).to.equal(1);
    expect(group.lag).to.equal(0);
    expect(group.oldestPendingAgeMs).to.be.a('number').at.least(0);
    const workerNames = pool.ios.map((io) => io.getConsumerName()).sort();
    expect(group.consumers.map((c) => c.name).sort()).to.deep.equal(workerNames);
    for (const c of group.consumers) expect(c).to.include({ alive: true, aliveBy: 'inbox' });
    expect(group.consumers.reduce((n, c) => n + c.pending, 0)).to.equal(1);
    const sessions = [pool.callerIo, ...pool.ios].map((io) => io.getSessionId()).sort();
    expect(status.inboxes.map((i) => i.sessionId).sort()).to.deep.equal(sessions);
    for (const inbox of status.inboxes) expect(inbox.ttlMs).to.be.a('number').above(0);
    expect(status.deadLetters).to.deep.equal({ key: `{${name}}:dead`, count: 0, oldestId: null });
    expect(status.oldestPendingAgeMs).to.equal(group.oldestPendingAgeMs);

    pool.openGate();
    expect(await held).to.equal('h1');
  });

  it('shows a stopped worker as not alive once its inbox is gone', async () => {
    // maxQueueSize 1: while it holds one request it reads no other.
    const stopped = await pool.worker({ maxQueueSize: 1 });
    await pool.startCaller();
    // A request pending on it keeps it in the group after it stops.
    const held = pool.caller.getAPI().hold('a');
    held.catch(() => undefined);
    await waitFor(async () => (await pendingCount(raw, name, pool.group)) === 1);
    const live = await pool.worker();
    // Redis 7.0 lists a consumer once it has been given an entry: let it serve one call.
    expect(await pool.caller.getAPI().math.add(1, 1)).to.equal(2);
    // A worker joins the group (XINFO CONSUMERS lists it) at its first read.
    await waitFor(async () => (await topology(raw, name))[0]!.includes(live.getConsumerName()));
    await stopped.destroy();
    const status = await inspector.inspect();
    const byName = new Map(status.groups[0]!.consumers.map((c) => [c.name, c]));
    expect(byName.get(stopped.getConsumerName())).to.include({ alive: false, aliveBy: 'inbox', pending: 1 });
    expect(byName.get(live.getConsumerName())).to.include({ alive: true, pending: 0 });
    // The custom-named consumer is judged by its idle time.
    const custom = await pool.worker({ consumerName: 'custom-worker' });
    await live.destroy();
    expect(await pool.caller.getAPI().math.add(2, 2)).to.equal(4);
    const again = await inspector.inspect();
    expect(again.groups[0]!.consumers.find((c) => c.name === custom.getConsumerName())).to.include({ alive: true, aliveBy: 'idle', sessionId: null });
    // `held` is left pending on the stopped worker (taken over only after claimIdleMs); destroy() rejects it.
  });

  it('lists pending requests with method, caller, holder, deliveries and age', async () => {
    const worker = await pool.worker();
    await pool.startCaller();
    const held = pool.caller.getAPI().hold('p1');
    held.catch(() => undefined);
    await waitFor(async () => (await pendingCount(raw, name, pool.group)) === 1);
    const pending = await inspector.pending();
    expect(pending).to.have.length(1);
    const [entry] = pending;
    expect(entry).to.include({ group: 'workers', consumer: worker.getConsumerName(), deliveries: 1, caller: pool.callerIo.getSessionId(), missing: false });
    expect(entry!.ageMs).to.be.at.least(0);
    expect(entry!.requests).to.have.length(1);
    expect(entry!.requests[0]).to.include({ method: 'hold', notification: false });
    expect(entry!.requests[0]!.bytes).to.be.above(10);
    expect(await inspector.pending({ consumer: 'nobody' })).to.deep.equal([]);
    await expect(inspector.pending({ group: 'missing' })).to.be.rejectedWith(RedisStreamsNotFoundError, /Consumer group "missing"/);
    pool.openGate();
    await held;
    expect(await inspector.pending()).to.deep.equal([]);
  });

  it('redrives a request dead-lettered for real, and its waiting caller gets the answer', async () => {
    await pool.startCaller(60_000);
    const { call } = await pool.deadLetteredCall(raw, 'again');
    const letters = await inspector.deadLetters();
    expect(letters).to.have.length(1);
    const letter = letters[0]!;
    expect(letter).to.include({ group: 'workers', caller: pool.callerIo.getSessionId(), callerAlive: true, deliveries: 1 });
    expect(letter.requests[0]).to.include({ method: 'echo' });
    expect(letter.reason).to.match(/maxDeliveries 1/);
    const detail = await inspector.deadLetter(letter.id);
    expect(detail.messages).to.have.length(1);
    expect(detail.messages[0]).to.include('"again"');
    expect((await inspector.inspect()).deadLetters.count).to.equal(1);

    // The caller is still waiting: nothing answered it.
    let settled = false;
    void call.then(() => (settled = true), () => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(settled).to.equal(false);

    await pool.worker();
    const result = await redriveDeadLetters({ url, stream: name }, [letter.id]);
    expect(result.redriven).to.have.length(1);
    expect(result.redriven[0]!.deadLetterId).to.equal(letter.id);
    expect(result.notFound).to.deep.equal([]);
    expect(await call).to.equal('again');
    expect(await raw.xlen(`{${name}}:dead`)).to.equal(0);
    // A second redrive of the same id finds nothing: the request is put back once.
    expect(await inspector.redriveDeadLetters([letter.id])).to.deep.include({ redriven: [], notFound: [letter.id] });
  });

  it('redrives every dead letter with "all", concurrently without duplicates', async () => {
    await pool.startCaller(60_000);
    const calls = [(await pool.deadLetteredCall(raw, 'one')).call, (await pool.deadLetteredCall(raw, 'two')).call];
    expect(await raw.xlen(`{${name}}:dead`)).to.equal(2);
    const before = await raw.xlen(name);
    const other = new StreamInspector({ url, stream: name });
    try {
      const [a, b] = await Promise.all([inspector.redriveDeadLetters('all'), other.redriveDeadLetters('all')]);
      expect(a.redriven.length + b.redriven.length).to.equal(2);
      // Both saw the same two dead letters; each was put back by one of them.
      expect(a.notFound.length + b.notFound.length).to.equal(2);
    } finally {
      await other.close();
    }
    expect(await raw.xlen(name)).to.equal(before + 2);
    await pool.worker();
    expect(await Promise.all(calls)).to.deep.equal(['one', 'two']);
  });

  it('with signing: redrives a signed dead letter signed anew, and skips a forged one', async () => {
    const signing = { keys: { k1: 'a-secret-of-at-least-32-bytes-for-the-test' }, keyId: 'k1' };
    await pool.destroy();
    pool = new Pool(url, name, 'workers', { signing });
    await pool.startCaller(60_000);
    const { call } = await pool.deadLetteredCall(raw, 'signed');
    const header = JSON.stringify({ v: 1, k: 'req', id: 'forged', m: ['echo'], dl: Date.now() + 60_000 });
    const forged = (await raw.xadd(`{${name}}:dead`, '*', 'f', pool.callerIo.getSessionId(), 'd', `${header}\n["evil"]`))!;
    const signed = new StreamInspector({ url, stream: name, signing });
    try {
      await pool.worker();
      const result = await signed.redriveDeadLetters('all');
      expect(result.redriven).to.have.length(1);
      expect(result.skipped).to.deep.equal([forged]);
      expect(await call).to.equal('signed');
    } finally {
      await signed.close();
    }
  });

  it('purges dead letters by id and all at once', async () => {
    const dead = `{${name}}:dead`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const header = JSON.stringify({ v: 1, k: 'req', id: `c${i}`, m: ['echo'], dl: Date.now() + 60_000 });
      ids.push((await raw.xadd(dead, '*', 'source', `1-${i}`, 'group', 'workers', 'deliveries', '5', 'reason', 'test', 'f', 'caller-x', 'd', `${header}\n["x"]`))!);
    }
    expect((await inspector.deadLetters()).map((l) => l.id)).to.deep.equal(ids);
    expect((await inspector.deadLetters())[0]).to.include({ caller: 'caller-x', callerAlive: false, deliveries: 5, sourceId: '1-0' });
    expect(await inspector.purgeDeadLetters([ids[0]!])).to.equal(1);
    expect(await inspector.purgeDeadLetters('all')).to.equal(2);
    expect(await raw.exists(dead)).to.equal(0);
    expect(await inspector.deadLetters()).to.deep.equal([]);
  });

  it('trims what no group needs and never a pending request', async () => {
    await pool.worker({ writeBatchSize: 1 });
    await pool.startCaller();
    const api = pool.caller.getAPI();
    for (let i = 0; i < 5; i++) await api.math.add(i, i);
    const held = api.hold('keep');
    held.catch(() => undefined);
    await waitFor(async () => (await pendingCount(raw, name, pool.group)) === 1);
    for (let i = 0; i < 3; i++) await api.echo(`after ${i}`);
    const [pendingEntry] = await inspector.pending();
    const lengthBefore = await raw.xlen(name);
    const result = await inspector.trim();
    expect(result.minId).to.equal(pendingEntry!.entryId);
    expect(result.removed).to.be.at.least(5);
    expect(result.length).to.equal(lengthBefore - result.removed);
    expect(await raw.xrange(name, pendingEntry!.entryId, pendingEntry!.entryId)).to.have.length(1);
    expect(await inspector.trim()).to.deep.include({ removed: 0 });
    pool.openGate();
    expect(await held).to.equal('keep');
  });

  it('trims nothing on a stream without groups (broadcast)', async () => {
    await raw.xadd(name, '*', 'f', 'someone', 'x', 'bye');
    expect(await inspector.trim()).to.deep.equal({ removed: 0, minId: null, length: 1 });
  });

  it('tails requests and answers with durations, filtered by method, creating nothing', async () => {
    await pool.worker();
    await pool.startCaller();
    const keysBefore = await keysOf(raw, name);
    const stop = new AbortController();
    const events: TailEvent[] = [];
    const tailing = (async () => {
      for await (const event of inspector.tail({ signal: stop.signal, methods: ['math'], blockMs: 200 })) events.push(event);
    })();
    // The tail starts at the end: give it time to arm its first read.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const api = pool.caller.getAPI();
    expect(await api.math.add(2, 3)).to.equal(5);
    expect(await api.echo('not shown')).to.equal('not shown');
    await waitFor(() => events.some((e) => e.type === 'result'));
    stop.abort();
    await tailing;
    const request = events.find((e) => e.type === 'request');
    const answer = events.find((e) => e.type === 'result');
    expect(request?.type === 'request' && request.request.method).to.equal('math.add');
    expect(request?.type === 'request' && request.caller).to.equal(pool.callerIo.getSessionId());
    if (answer?.type !== 'result') throw new Error('no result event');
    expect(answer).to.include({ method: 'math.add', to: pool.callerIo.getSessionId(), from: pool.ios[0]!.getSessionId() });
    expect(answer.durationMs).to.be.a('number').at.least(0);
    expect(events.filter((e) => e.type === 'request')).to.have.length(1);
    expect(await keysOf(raw, name)).to.deep.equal(keysBefore);
  });

  it('reports a missing stream as not found without creating it, and bad ids as invalid', async () => {
    await expect(inspector.inspect()).to.be.rejectedWith(RedisStreamsNotFoundError).and.eventually.include({ code: 'ERR_REDIS_NOT_FOUND', what: 'stream', target: name });
    await expect(inspector.pending()).to.be.rejectedWith(RedisStreamsNotFoundError);
    await expect(inspector.trim()).to.be.rejectedWith(RedisStreamsNotFoundError);
    await expect(inspect({ url, stream: name })).to.be.rejectedWith(RedisStreamsNotFoundError);
    expect(await inspector.deadLetters()).to.deep.equal([]);
    expect(await keysOf(raw, name)).to.deep.equal([]);
    await expect(inspector.deadLetter('nope')).to.be.rejectedWith(RPCInvalidArgumentError, /not a stream entry id/);
    await expect(inspector.redriveDeadLetters([])).to.be.rejectedWith(RPCInvalidArgumentError);
    await expect(inspector.deadLetter('1-1')).to.be.rejectedWith(RedisStreamsNotFoundError).and.eventually.include({ what: 'dead-letter' });
    expect(() => new StreamInspector({ url, stream: name, colour: true } as never)).to.throw(RPCInvalidArgumentError, /colour/);
  });

  it('fails with a connection error naming the cause when Redis cannot be reached', async () => {
    const nowhere = new StreamInspector({ url: 'redis://127.0.0.1:1', stream: name });
    try {
      await expect(nowhere.inspect()).to.be.rejectedWith(RedisStreamsConnectionError, /max retries|ECONNREFUSED/);
    } finally {
      await nowhere.close();
    }
  });
});
