// RPCChannel over the in-memory IO pair: the shape of calls (namespaces, `this`, arguments,
// return values), both directions at once, and a large burst.
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import { RPCChannel, createMemoryIoPair, type MemoryIOOptions } from '../../src/index.js';

chai.use(chaiAsPromised);

const open: { destroy(): Promise<void> }[] = [];
const unexpected: Error[] = [];

/** A server exposing `api` and a client typed by it, both destroyed after the test. */
function setup<Api extends object>(api: Api, ioOptions: MemoryIOOptions = {}) {
  const [a, b] = createMemoryIoPair(ioOptions);
  const server = new RPCChannel<Api, Record<string, never>>(a, { expose: api });
  const client = new RPCChannel<Record<string, never>, Api>(b, { timeout: 5_000 });
  for (const channel of [server, client]) {
    channel.on('error', (e) => unexpected.push(e));
    open.push(channel);
  }
  return { server, client, api: client.getAPI() };
}

/** Destroys what the test opened; shared by every describe of this file. */
async function cleanUp(): Promise<void> {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
  const errors = unexpected.splice(0);
  expect(errors, 'unexpected "error" events').to.deep.equal([]);
}

class Counter {
  private count = 0;
  constructor(private readonly step: number) {}
  increment(): number {
    this.count += this.step;
    return this.count;
  }
  async incrementLater(times: number): Promise<number> {
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < times; i++) this.increment();
    return this.count;
  }
}

class LoudCounter extends Counter {
  shout(): string {
    return `count is ${this.increment()}`;
  }
}

describe('RPCChannel calls (memory IO)', () => {
  afterEach(cleanUp);

  it('calls methods in nested namespaces at depth 1 to 4', async () => {
    const { api } = setup({
      top: () => 'depth 1',
      a: {
        two: () => 'depth 2',
        b: {
          three: (x: number) => x * 3,
          c: { four: async (s: string) => `${s}!`.repeat(2) },
        },
      },
    });
    expect(await api.top()).to.equal('depth 1');
    expect(await api.a.two()).to.equal('depth 2');
    expect(await api.a.b.three(7)).to.equal(21);
    expect(await api.a.b.c.four('hi')).to.equal('hi!hi!');
  });

  it('runs sync and async handlers, and handlers returning a non-Promise thenable', async () => {
    const { api } = setup({
      sync: (n: number) => n + 1,
      async: async (n: number) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return n + 2;
      },
      thenable: (n: number) => ({ then: (resolve: (v: number) => void) => resolve(n + 3) }) as unknown as Promise<number>,
    });
    expect(await api.sync(1)).to.equal(2);
    expect(await api.async(1)).to.equal(3);
    expect(await api.thenable(1)).to.equal(4);
  });

  it('binds `this` to the class instance for prototype methods, including inherited ones', async () => {
    const counter = new Counter(2);
    const { api } = setup({ counter, loud: new LoudCounter(10) });
    expect(await api.counter.increment()).to.equal(2);
    expect(await api.counter.increment()).to.equal(4);
    expect(await api.counter.incrementLater(3)).to.equal(10);
    expect(counter.increment()).to.equal(12); // the same instance, really mutated
    expect(await api.loud.shout()).to.equal('count is 10');
    expect(await api.loud.increment()).to.equal(20);
  });

  it('serves a class instance exposed as the root API', async () => {
    const { api } = setup(new LoudCounter(1));
    expect(await api.increment()).to.equal(1);
    expect(await api.shout()).to.equal('count is 2');
  });

  it('binds `this` to the enclosing object for object-literal methods', async () => {
    const { api } = setup({
      store: {
        items: [] as string[],
        add(item: string): number {
          return this.items.push(item);
        },
        list(): string[] {
          return this.items;
        },
      },
    });
    expect(await api.store.add('a')).to.equal(1);
    expect(await api.store.add('b')).to.equal(2);
    expect(await api.store.list()).to.deep.equal(['a', 'b']);
  });

  it('passes many arguments of different types, in order', async () => {
    const { api } = setup({
      describe: (s: string, n: number, b: boolean, list: number[], obj: { x: { y: string } }, nil: null) => ({ s, n, b, list, obj, nil }),
    });
    expect(await api.describe('text', -1.5, false, [1, 2, 3], { x: { y: 'deep' } }, null)).to.deep.equal({
      s: 'text',
      n: -1.5,
      b: false,
      list: [1, 2, 3],
      obj: { x: { y: 'deep' } },
      nil: null,
    });
  });

  it('calls methods without arguments and sees exactly the arguments given', async () => {
    const { api } = setup({
      none: (...args: unknown[]) => args.length,
      optional: (a?: number, b?: number) => [a, b],
    });
    expect(await api.none()).to.equal(0);
    expect(await api.optional()).to.deep.equal([undefined, undefined]);
    expect(await api.optional(1)).to.deep.equal([1, undefined]);
  });

  it('resolves with undefined for void and undefined results, and keeps null', async () => {
    const { api } = setup({
      nothing: (): void => undefined,
      nothingAsync: async (): Promise<void> => undefined,
      nil: () => null,
    });
    expect(await api.nothing()).to.equal(undefined);
    expect(await api.nothingAsync()).to.equal(undefined);
    expect(await api.nil()).to.equal(null);
  });

  it('returns the same proxy for a namespace every time, and awaiting a namespace does not call the remote', async () => {
    const { api, server } = setup({ math: { add: (a: number, b: number) => a + b } });
    expect(api.math === api.math).to.equal(true);
    const awaited: unknown = await api.math;
    expect(awaited === api.math).to.equal(true);
    expect(server.stats().handled).to.equal(0);
    expect(await api.math.add(2, 3)).to.equal(5);
  });

  it('runs calls concurrently: a slow call does not hold back a fast one', async () => {
    let releaseSlow!: () => void;
    const gate = new Promise<void>((resolve) => (releaseSlow = resolve));
    const { api } = setup({
      slow: async () => {
        await gate;
        return 'slow';
      },
      fast: () => 'fast',
    });
    const slow = api.slow();
    expect(await api.fast()).to.equal('fast');
    releaseSlow();
    expect(await slow).to.equal('slow');
  });

  it('counts calls and handled requests in stats()', async () => {
    const { api, server, client } = setup({ ping: () => 'pong' });
    await api.ping();
    await api.ping();
    expect(client.stats()).to.include({ calls: 2, timeouts: 0, duplicates: 0 });
    expect(server.stats()).to.include({ handled: 2, calls: 0 });
  });

  it('resolves a burst of 5,000 concurrent calls, each with its own result', async function () {
    this.timeout(60_000);
    // Every request is written synchronously, before the server reads any: the
    // inbound queue must hold the whole burst (the default bound is 1,000).
    const { api, server, client } = setup({ square: async (n: number) => n * n, echo: (s: string) => s }, { maxQueueSize: 5_000 });
    const calls = Array.from({ length: 5_000 }, (_, i) => (i % 2 === 0 ? api.square(i) : api.echo(`#${i}`)));
    const results = await Promise.all(calls);
    results.forEach((result, i) => expect(result).to.equal(i % 2 === 0 ? i * i : `#${i}`));
    expect(client.stats()).to.include({ calls: 5_000, timeouts: 0, duplicates: 0, dropped: 0 });
    expect(server.stats()).to.include({ handled: 5_000, dropped: 0 });
  });
});

describe('RPCChannel bidirectional calls (memory IO)', () => {
  afterEach(cleanUp);

  interface SideA {
    name(): string;
    /** Calls back into B while handling. */
    askB(n: number): Promise<number>;
  }
  interface SideB {
    name(): string;
    double(n: number): number;
    askA(): Promise<string>;
  }

  function bidirectional() {
    const [ioA, ioB] = createMemoryIoPair();
    const a: RPCChannel<SideA, SideB> = new RPCChannel<SideA, SideB>(ioA, { timeout: 5_000 });
    const b: RPCChannel<SideB, SideA> = new RPCChannel<SideB, SideA>(ioB, { timeout: 5_000 });
    for (const channel of [a, b]) {
      channel.on('error', (e) => unexpected.push(e));
      open.push(channel);
    }
    const toB = a.getAPI();
    const toA = b.getAPI();
    a.expose({ name: () => 'A', askB: async (n) => (await toB.double(n)) + 1 });
    b.expose({ name: () => 'B', double: (n) => n * 2, askA: async () => `B asked ${await toA.name()}` });
    return { a, b, toA, toB };
  }

  it('lets both sides expose an API and call each other at the same time', async () => {
    const { toA, toB, a, b } = bidirectional();
    const [fromA, fromB] = await Promise.all([toA.name(), toB.name()]);
    expect(fromA).to.equal('A');
    expect(fromB).to.equal('B');
    expect(a.stats()).to.include({ calls: 1, handled: 1 });
    expect(b.stats()).to.include({ calls: 1, handled: 1 });
  });

  it('handles calls that call back the other side while being handled, interleaved', async () => {
    const { toA, toB } = bidirectional();
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      work.push(toA.askB(i), toB.askA(), toB.double(i));
    }
    const results = await Promise.all(work);
    for (let i = 0; i < 200; i++) {
      expect(results.slice(3 * i, 3 * i + 3)).to.deep.equal([2 * i + 1, 'B asked A', 2 * i]);
    }
  });
});
