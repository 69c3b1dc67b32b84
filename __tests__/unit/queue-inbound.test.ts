// The bounded inbound queue, alone and inside the in-memory IO pair: drop-oldest when full,
// every drop counted and reported.
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import { RPCChannel, RPCError, RPCQueueOverflowError, RPCTimeoutError, createMemoryIoPair, type IoInboundMessage } from '../../src/index.js';
import { InboundQueue } from '../../src/io/inbound-queue.js';

chai.use(chaiAsPromised);

function queue<T>(maxSize: number) {
  const drops: [T, RPCQueueOverflowError][] = [];
  const q = new InboundQueue<T>(maxSize, (item, error) => drops.push([item, error]));
  return { q, drops };
}

/** Whether `p` has settled after the microtasks and immediates queued so far. */
async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('InboundQueue', () => {
  it('hands items out first in, first out, falsy ones included', async () => {
    const { q } = queue<number | string>(10);
    for (const item of [1, 0, '', 'x']) q.push(item);
    expect(q.size).to.equal(4);
    const out = [await q.next(), await q.next(), await q.next(), await q.next()];
    expect(out).to.deep.equal([1, 0, '', 'x']);
    expect(q.size).to.equal(0);
  });

  it('resolves a waiting next() with the next push, without queueing it', async () => {
    const { q } = queue<string>(1);
    const waiting = q.next();
    expect(await isSettled(waiting)).to.equal(false);
    q.push('a');
    expect(await waiting).to.equal('a');
    expect(q.size).to.equal(0);
  });

  it('drops the oldest item when full, and counts and reports each drop', () => {
    const { q, drops } = queue<string>(3);
    for (const item of ['a', 'b', 'c', 'd', 'e']) q.push(item);
    expect(q.size).to.equal(3);
    expect(q.dropped).to.equal(2);
    expect(drops.map(([item]) => item)).to.deep.equal(['a', 'b']);
    drops.forEach(([, error], i) => {
      expect(error).to.be.instanceOf(RPCQueueOverflowError);
      expect(error).to.be.instanceOf(RPCError);
      expect(error.name).to.equal('RPCQueueOverflowError');
      expect(error.code).to.equal('ERR_RPC_QUEUE_OVERFLOW');
      expect(error.dropped).to.equal(i + 1);
      expect(error.message).to.include('maxQueueSize 3');
    });
  });

  it('push(item, slack) fills past maxSize by at most slack before dropping (an entry taken whole)', async () => {
    const { q, drops } = queue<number>(3);
    for (let i = 0; i < 3; i++) q.push(i);
    expect(q.room).to.equal(0);
    for (let i = 3; i < 5; i++) q.push(i, 2);
    expect(q.size).to.equal(5);
    expect(drops).to.have.length(0);
    q.push(5, 2);
    expect(drops.map(([item]) => item)).to.deep.equal([0]);
    expect(q.dropped).to.equal(1);
    const out: (number | null)[] = [];
    for (let i = 0; i < 5; i++) out.push(await q.next());
    expect(out).to.deep.equal([1, 2, 3, 4, 5]);
  });

  it('keeps the newest items after drops', async () => {
    const { q } = queue<number>(2);
    for (let i = 0; i < 10; i++) q.push(i);
    expect([await q.next(), await q.next()]).to.deep.equal([8, 9]);
    expect(q.dropped).to.equal(8);
  });

  it('keeps order across the internal compaction of a long run', async () => {
    const { q, drops } = queue<number>(5_000);
    const out: number[] = [];
    for (let i = 0; i < 3_000; i++) {
      q.push(i);
      if (i % 3 === 2) out.push((await q.next()) as number, (await q.next()) as number);
    }
    while (q.size > 0) out.push((await q.next()) as number);
    expect(out).to.deep.equal(Array.from({ length: 3_000 }, (_, i) => i));
    expect(drops).to.deep.equal([]);
  });

  it('reserves only free room, and release() gives it back', () => {
    const { q } = queue<string>(5);
    q.push('a');
    expect(q.room).to.equal(4);
    expect(q.reserve(3)).to.equal(3);
    expect(q.room).to.equal(1);
    expect(q.reserve(10)).to.equal(1);
    expect(q.room).to.equal(0);
    expect(q.reserve(1)).to.equal(0);
    q.release(2);
    expect(q.room).to.equal(2);
    q.release(100); // more than reserved: clamped, never negative
    expect(q.room).to.equal(4);
    expect(q.reserve(4)).to.equal(4);
  });

  it('counts queued items against the room', async () => {
    const { q } = queue<number>(3);
    q.push(1);
    q.push(2);
    expect(q.room).to.equal(1);
    await q.next();
    expect(q.room).to.equal(2);
  });

  it('waitForRoom() resolves at once with room, else once an item is taken or slots released', async () => {
    const { q } = queue<number>(2);
    await q.waitForRoom();
    q.push(1);
    q.push(2);
    const afterNext = q.waitForRoom();
    expect(await isSettled(afterNext)).to.equal(false);
    await q.next();
    expect(await isSettled(afterNext)).to.equal(true);

    expect(q.reserve(1)).to.equal(1);
    const afterRelease = q.waitForRoom();
    expect(await isSettled(afterRelease)).to.equal(false);
    q.release(1);
    expect(await isSettled(afterRelease)).to.equal(true);
  });

  it('close() resolves a waiting next() with null, returns what was queued, and ignores later pushes', async () => {
    const { q, drops } = queue<string>(4);
    const waiting = q.next();
    q.close();
    expect(await waiting).to.equal(null);
    expect(await q.next()).to.equal(null);
    q.push('late');
    expect(q.size).to.equal(0);
    expect(drops).to.deep.equal([]);

    const { q: other } = queue<string>(4);
    other.push('x');
    other.push('y');
    expect(other.close()).to.deep.equal(['x', 'y']);
    expect(await other.next()).to.equal(null);
  });

  it('close() wakes waitForRoom()', async () => {
    const { q } = queue<number>(1);
    q.push(1);
    const waiting = q.waitForRoom();
    q.close();
    expect(await isSettled(waiting)).to.equal(true);
    await q.waitForRoom(); // and resolves at once from then on
  });

  it('refuses a second outstanding next()', async () => {
    const { q } = queue<number>(2);
    const first = q.next();
    await expect(q.next()).to.be.rejectedWith(Error, 'only one read may be outstanding');
    q.push(7);
    expect(await first).to.equal(7);
  });
});

describe('MemoryIO bounded queue', () => {
  const ios: { destroy(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(ios.splice(0).map((io) => io.destroy()));
  });

  it('with maxQueueSize 5 and no reader, counts every drop in stats().dropped and on "error"', async () => {
    const [a, b] = createMemoryIoPair({ maxQueueSize: 5 });
    ios.push(a, b);
    const errors: Error[] = [];
    b.on('error', (e) => errors.push(e));
    for (let i = 0; i < 12; i++) await a.write({ data: `m${i}` });
    expect(b.stats()).to.include({ received: 12, dropped: 7 });
    expect(a.stats()).to.include({ sent: 12, dropped: 0 });
    expect(b.queued).to.equal(5);
    expect(errors).to.have.length(7);
    errors.forEach((err, i) => {
      expect(err).to.be.instanceOf(RPCQueueOverflowError);
      expect((err as RPCQueueOverflowError).dropped).to.equal(i + 1);
      expect((err as RPCQueueOverflowError).code).to.equal('ERR_RPC_QUEUE_OVERFLOW');
    });
    const kept: (IoInboundMessage | null)[] = [];
    for (let i = 0; i < 5; i++) kept.push(await b.read());
    expect(kept.map((m) => m?.data)).to.deep.equal(['m7', 'm8', 'm9', 'm10', 'm11']);
    expect(kept[0]?.from).to.equal(a.id);
  });

  it('resolves a pending read with null on destroy(), and write() after destroy() rejects', async () => {
    const [a, b] = createMemoryIoPair();
    ios.push(a, b);
    const reading = b.read();
    await b.destroy();
    expect(await reading).to.equal(null);
    await b.destroy(); // idempotent
    await expect(b.write({ data: 'x' })).to.be.rejectedWith(Error, 'destroyed');
    await a.write({ data: 'to a closed peer' }); // dropped silently: the peer is gone
    expect(b.stats().received).to.equal(0);
  });

  it('through a channel: each dropped request is reported once and its call times out', async () => {
    const [serverIo, clientIo] = createMemoryIoPair({ maxQueueSize: 5 });
    const server = new RPCChannel(serverIo, { expose: { echo: (n: number) => n } });
    const client = new RPCChannel<Record<string, never>, { echo(n: number): number }>(clientIo, { timeout: 200 });
    ios.push(server, client);
    const serverErrors: Error[] = [];
    server.on('error', (e) => serverErrors.push(e));
    // Written synchronously, before the server's read loop runs: more than the queue holds.
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => client.getAPI().echo(i)));
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    const rejected = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    const { dropped } = server.stats();
    expect(dropped).to.be.greaterThan(0);
    expect(serverErrors).to.have.length(dropped);
    serverErrors.forEach((e) => expect(e).to.be.instanceOf(RPCQueueOverflowError));
    expect(rejected).to.have.length(dropped);
    rejected.forEach((e) => expect(e).to.be.instanceOf(RPCTimeoutError));
    expect(fulfilled.length + dropped).to.equal(12);
    expect(server.stats().handled).to.equal(fulfilled.length);
    expect(client.stats().timeouts).to.equal(dropped);
  });
});
