// Timeouts, destroy() and option validation of RPCChannel over the in-memory IO pair.
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import {
  RPCChannel,
  RPCChannelClosedError,
  RPCError,
  RPCInvalidArgumentError,
  RPCTimeoutError,
  createMemoryIoPair,
  type MemoryIO,
  type RPCChannelOptions,
} from '../../src/index.js';

chai.use(chaiAsPromised);

const open: { destroy(): Promise<void> }[] = [];
const unexpected: Error[] = [];

interface SlowApi {
  /** Resolves when the test releases it. */
  wait(label: string): Promise<string>;
  fast(): string;
}

/** A server whose `wait` calls hang until `release()`; the client uses `options`. */
function setup(options: RPCChannelOptions<Record<string, never>> = {}) {
  const [a, b] = createMemoryIoPair();
  const waiting: (() => void)[] = [];
  const started: string[] = [];
  const server = new RPCChannel<SlowApi, Record<string, never>>(a, {
    expose: {
      wait: (label) =>
        new Promise<string>((resolve) => {
          started.push(label);
          waiting.push(() => resolve(label));
        }),
      fast: () => 'fast',
    },
  });
  const client = new RPCChannel<Record<string, never>, SlowApi>(b, options);
  for (const channel of [server, client]) {
    channel.on('error', (e) => unexpected.push(e));
    open.push(channel);
  }
  const release = (): void => waiting.splice(0).forEach((fn) => fn());
  return { server, client, api: client.getAPI(), release, started };
}

function nextEvent<T>(subscribe: (listener: (value: T) => void) => void): Promise<T> {
  return new Promise((resolve) => subscribe(resolve));
}

/**
 * Records the timers created through the global setTimeout until `restore()`
 * (mocha keeps its own references, so only the library's and the test's show up).
 */
function trackTimers() {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const created: NodeJS.Timeout[] = [];
  const live = new Set<NodeJS.Timeout>();
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = realSet(() => {
      live.delete(timer);
      fn(...args);
    }, ms);
    created.push(timer);
    live.add(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer: NodeJS.Timeout | undefined) => {
    if (timer !== undefined) live.delete(timer);
    realClear(timer);
  }) as typeof clearTimeout;
  return {
    created,
    live,
    restore(): void {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    },
  };
}

/** Destroys what the test opened; shared by every describe of this file. */
async function cleanUp(): Promise<void> {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
  const errors = unexpected.splice(0);
  expect(errors, 'unexpected "error" events').to.deep.equal([]);
}

describe('RPCChannel timeouts (memory IO)', () => {
  afterEach(cleanUp);

  it('rejects with RPCTimeoutError after the channel timeout, with the awaiting caller in its stack', async () => {
    const { api, client } = setup({ timeout: 50 });
    // A named caller two async frames above the call: V8's async stack trace must show both.
    async function loadReportForTimeoutTest(): Promise<unknown> {
      return await api.wait('a');
    }
    async function outerHandlerForTimeoutTest(): Promise<unknown> {
      return await loadReportForTimeoutTest();
    }
    const p = outerHandlerForTimeoutTest();
    await expect(p).to.be.rejectedWith(RPCTimeoutError);
    const err = (await p.catch((e: unknown) => e)) as RPCTimeoutError;
    expect(err).to.be.instanceOf(RPCError);
    expect(err).to.be.instanceOf(Error);
    expect(err.name).to.equal('RPCTimeoutError');
    expect(err.code).to.equal('ERR_RPC_TIMEOUT');
    expect(err.timeoutMs).to.equal(50);
    expect(err.method).to.equal('wait');
    expect(err.cause).to.equal(undefined);
    expect(err.message).to.include('"wait"').and.include('50 ms').and.include('"timeout"');
    // The stack is the caller's: it names the awaiting functions in this file, not timer internals.
    expect(err.stack).to.match(/^RPCTimeoutError: RPC call "wait" timed out/);
    expect(err.stack).to.match(/at async loadReportForTimeoutTest \(.*channel-lifecycle\.test\.ts:\d+:\d+\)/);
    expect(err.stack).to.match(/at async outerHandlerForTimeoutTest \(.*channel-lifecycle\.test\.ts:\d+:\d+\)/);
    expect(err.stack).not.to.include('listOnTimeout');
    expect(client.stats()).to.include({ calls: 1, timeouts: 1, duplicates: 0 });
  });

  it('uses the per-proxy timeout of getAPI({ timeout }) over the channel timeout', async () => {
    const { client, started } = setup({ timeout: 600_000 });
    const quick = client.getAPI({ timeout: 30 });
    const p = quick.wait('quick');
    await expect(p).to.be.rejectedWith(RPCTimeoutError);
    const err = (await p.catch((e: unknown) => e)) as RPCTimeoutError;
    expect(err.timeoutMs).to.equal(30);
    expect(err.code).to.equal('ERR_RPC_TIMEOUT');
    expect(started).to.deep.equal(['quick']);
    // The channel default still applies to other proxies.
    expect(await client.getAPI().fast()).to.equal('fast');
  });

  it('times out only the calls that are late, each with its own method name', async () => {
    const { api, client } = setup({ timeout: 40 });
    const results = await Promise.allSettled([api.wait('x'), api.fast(), api.wait('y')]);
    expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'fulfilled', 'rejected']);
    expect(client.stats().timeouts).to.equal(2);
  });

  it('empties the pending table on timeout: a late answer is ignored and counted as a duplicate', async () => {
    const { api, client, release } = setup({ timeout: 30 });
    const p = api.wait('late');
    await expect(p).to.be.rejectedWith(RPCTimeoutError);
    expect(client.stats()).to.include({ timeouts: 1, duplicates: 0 });
    const duplicate = nextEvent<{ id: string }>((l) => client.once('duplicate', l));
    release();
    const info = await duplicate;
    expect(info.id).to.be.a('string').and.not.equal('');
    expect(client.stats()).to.include({ timeouts: 1, duplicates: 1 });
  });

  it('does not count a call answered in time as a timeout later', async () => {
    const { api, client } = setup({ timeout: 40 });
    expect(await api.fast()).to.equal('fast');
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(client.stats()).to.include({ timeouts: 0, duplicates: 0 });
  });

  it('arms one unref\'d timer per call and clears it when the answer arrives', async () => {
    const { api } = setup({ timeout: 600_000 });
    const timers = trackTimers();
    try {
      const p = api.fast();
      expect(timers.created).to.have.length(1);
      expect(timers.created[0]?.hasRef()).to.equal(false);
      expect(await p).to.equal('fast');
      expect(timers.live.size).to.equal(0);
    } finally {
      timers.restore();
    }
  });
});

describe('RPCChannel destroy() (memory IO)', () => {
  afterEach(cleanUp);

  it('rejects every pending call at once with RPCChannelClosedError', async () => {
    const { api, client, started } = setup({ timeout: 600_000 });
    const calls = [api.wait('1'), api.wait('2'), client.getAPI({ timeout: 500_000 }).wait('3')];
    // Let the server start all three, so they are really pending.
    await api.fast();
    expect(started).to.deep.equal(['1', '2', '3']);
    await client.destroy();
    const results = await Promise.allSettled(calls);
    for (const result of results) {
      expect(result.status).to.equal('rejected');
      const err = (result as PromiseRejectedResult).reason as RPCChannelClosedError;
      expect(err).to.be.instanceOf(RPCChannelClosedError);
      expect(err).to.be.instanceOf(RPCError);
      expect(err.name).to.equal('RPCChannelClosedError');
      expect(err.code).to.equal('ERR_RPC_CLOSED');
      expect(err.message).to.include('"wait"');
    }
    expect(client.stats().timeouts).to.equal(0);
  });

  it('settles pending calls before destroy() resolves', async () => {
    const { api, client } = setup({ timeout: 600_000 });
    let settled = false;
    const p = api.wait('w').finally(() => (settled = true));
    const destroyed = client.destroy();
    await destroyed;
    expect(settled).to.equal(true);
    await expect(p).to.be.rejectedWith(RPCChannelClosedError);
  });

  it('is idempotent: a second and a concurrent destroy() resolve too', async () => {
    const { client, server } = setup();
    const first = client.destroy();
    const concurrent = client.destroy();
    await Promise.all([first, concurrent]);
    await client.destroy();
    await server.destroy();
    await server.destroy();
  });

  it('rejects calls and notifications made after destroy() with RPCChannelClosedError', async () => {
    const { api, client } = setup();
    await client.destroy();
    const p = api.fast();
    await expect(p).to.be.rejectedWith(RPCChannelClosedError);
    const err = (await p.catch((e: unknown) => e)) as RPCChannelClosedError;
    expect(err.code).to.equal('ERR_RPC_CLOSED');
    await expect(client.getAPI().fast()).to.be.rejectedWith(RPCChannelClosedError);
    await expect(client.notify().fast()).to.be.rejectedWith(RPCChannelClosedError);
    await expect(client.signalDestroy()).to.be.rejectedWith(RPCChannelClosedError);
  });

  it('does not answer, nor report an error, for a request still running when the server is destroyed', async () => {
    const { api, server, client, release, started } = setup({ timeout: 600_000 });
    const p = api.wait('orphan');
    await api.fast();
    expect(started).to.deep.equal(['orphan']);
    await server.destroy();
    release();
    // The answer cannot be written: the channel stays quiet about it (afterEach checks 'error').
    await new Promise((resolve) => setImmediate(resolve));
    expect(server.stats().sent).to.equal(1); // the answer of fast() only
    // The caller's own destroy() is what ends its wait here.
    await client.destroy();
    await expect(p).to.be.rejectedWith(RPCChannelClosedError);
  });

  it('clears the timer of every pending call', async () => {
    const { api, client } = setup({ timeout: 600_000 });
    const timers = trackTimers();
    try {
      const calls = [api.wait('a'), api.wait('b')].map((p) => p.catch((e: unknown) => e));
      expect(timers.live.size).to.equal(2);
      await client.destroy();
      await Promise.all(calls);
      expect(timers.live.size).to.equal(0);
    } finally {
      timers.restore();
    }
  });
});

describe('RPCChannel options validation', () => {
  afterEach(cleanUp);

  /** Builds a channel on a fresh pair with untyped options; the IOs are destroyed afterwards. */
  function construct(options: Record<string, unknown>): () => RPCChannel<object, object> {
    return () => {
      const [a, b] = createMemoryIoPair();
      open.push(a, b);
      const channel = new RPCChannel<object, object>(a, options as RPCChannelOptions<object>);
      open.push(channel);
      return channel;
    };
  }

  function expectInvalid(fn: () => unknown, argument: string, mentions: string): void {
    expect(fn).to.throw(RPCInvalidArgumentError);
    try {
      fn();
    } catch (thrown) {
      const err = thrown as RPCInvalidArgumentError;
      expect(err.name).to.equal('RPCInvalidArgumentError');
      expect(err.code).to.equal('ERR_RPC_INVALID_ARGUMENT');
      expect(err.argument).to.equal(argument);
      expect(err.message).to.include(`"${argument}"`).and.include(mentions);
    }
  }

  for (const [value, shown] of [
    [-1, '-1'],
    ['x', 'x'],
    [0, '0'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    [2 ** 31, String(2 ** 31)],
    [null, 'null'],
  ] as const) {
    it(`throws RPCInvalidArgumentError naming "timeout" for timeout: ${shown}`, () => {
      expectInvalid(construct({ timeout: value }), 'timeout', shown);
    });
  }

  it('treats options given as undefined as the defaults, like getAPI({ timeout: undefined })', async () => {
    const [a, b] = createMemoryIoPair();
    const server = new RPCChannel(a, { expose: { ok: () => 'ok' }, timeout: undefined, serialization: undefined, logger: undefined });
    const client = new RPCChannel<Record<string, never>, { ok(): string }>(b, { timeout: undefined, expose: undefined });
    open.push(server, client);
    expect(await client.getAPI({ timeout: undefined }).ok()).to.equal('ok');
  });

  it('throws RPCInvalidArgumentError naming "serialization" for serialization: "xml" or a bad object', () => {
    expectInvalid(construct({ serialization: 'xml' }), 'serialization', 'xml');
    expectInvalid(construct({ serialization: { stringify: 'no' } }), 'serialization', 'Serializer');
  });

  it('throws RPCInvalidArgumentError naming "expose" for expose: 42 or a string', () => {
    expectInvalid(construct({ expose: 42 }), 'expose', '42');
    expectInvalid(construct({ expose: 'api' }), 'expose', 'api');
    expectInvalid(construct({ expose: null }), 'expose', 'null');
  });

  it('throws RPCInvalidArgumentError naming "timeout" for getAPI({ timeout }) and "api" for expose()', () => {
    const channel = construct({})();
    expectInvalid(() => channel.getAPI({ timeout: -5 }), 'timeout', '-5');
    expectInvalid(() => channel.getAPI({ timeout: 'soon' as unknown as number }), 'timeout', 'soon');
    expectInvalid(() => channel.expose(7 as unknown as object), 'api', '7');
  });

  it('accepts the defaults and does not modify the options object it was given', () => {
    const options = Object.freeze({ timeout: 1_000 });
    const channel = construct(options)();
    expect(options).to.deep.equal({ timeout: 1_000 });
    expect(channel.stats()).to.include({ calls: 0, timeouts: 0 });
  });

  it('throws RPCInvalidArgumentError naming "maxQueueSize" for a bad memory pair option', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expectInvalid(() => createMemoryIoPair({ maxQueueSize: bad }), 'maxQueueSize', String(bad));
    }
  });

  it('leaves the IO untouched when the options are invalid (no listener registered)', async () => {
    const [a, b]: [MemoryIO, MemoryIO] = createMemoryIoPair();
    open.push(a, b);
    const onError: string[] = [];
    expect(() => new RPCChannel(a, { timeout: -1 })).to.throw(RPCInvalidArgumentError);
    // The IO can still serve a valid channel.
    const server = new RPCChannel(a, { expose: { ok: () => 'ok' } });
    const client = new RPCChannel<Record<string, never>, { ok(): string }>(b);
    open.push(server, client);
    server.on('error', (e) => onError.push(e.name));
    expect(await client.getAPI().ok()).to.equal('ok');
    expect(onError).to.deep.equal([]);
  });
});
