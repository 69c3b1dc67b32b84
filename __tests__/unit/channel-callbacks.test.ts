// Functions passed as arguments: they stay on the caller's side and the callee gets stand-ins
// that send callback messages until the call settles.
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import {
  RPCChannel,
  RPCChannelClosedError,
  RPCInvalidArgumentError,
  RPCTimeoutError,
  createMemoryIoPair,
  superjsonSerializer,
  type MemoryIO,
  type SerializationOption,
} from '../../src/index.js';
import { MessageKind, decodeMessage, encodeMessage } from '../../src/protocol/envelope.js';

chai.use(chaiAsPromised);

const open: { destroy(): Promise<void> }[] = [];
const unexpected: Error[] = [];

type Progress = (done: number, at: Date, meta: Map<string, number>) => void;

interface Api {
  download(url: string, onProgress: Progress): Promise<string>;
  withOptions(options: { label: string; onStart: () => void; hooks: [(n: number) => void, { deep: (s: string) => void }] }): string;
  keep(cb: (msg: string) => void): string;
  callKept(msg: string): string;
  twoCallbacks(a: (x: string) => void, b: (x: string) => void): void;
  neverAnswers(cb: (n: number) => void): Promise<void>;
  ping(): string;
}

function setup(serialization: SerializationOption = 'superjson', clientTimeout = 5_000) {
  const [serverIo, clientIo] = createMemoryIoPair();
  let kept: ((msg: string) => void) | undefined;
  const serverApi: Api = {
    download: async (url, onProgress) => {
      for (let i = 1; i <= 3; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        onProgress(i * 33, new Date(Date.UTC(2024, 0, i)), new Map([[url, i]]));
      }
      return `downloaded ${url}`;
    },
    withOptions: (options) => {
      options.onStart();
      options.hooks[0](1);
      options.hooks[0](2);
      options.hooks[1].deep('deep');
      return options.label;
    },
    keep: (cb) => {
      kept = cb;
      cb('while pending');
      return 'kept';
    },
    callKept: (msg) => {
      const result = kept?.(msg);
      return `stub returned ${String(result)}`;
    },
    twoCallbacks: (a, b) => {
      b('to b');
      a('to a');
      b('to b again');
    },
    neverAnswers: (cb) =>
      new Promise<void>(() => {
        kept = (msg) => cb(msg.length);
      }),
    ping: () => 'pong',
  };
  const server = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: serverApi, serialization });
  const client = new RPCChannel<Record<string, never>, Api>(clientIo, { serialization, timeout: clientTimeout });
  for (const channel of [server, client]) {
    channel.on('error', (e) => unexpected.push(e));
    open.push(channel);
  }
  return { server, client, serverIo, api: client.getAPI() };
}

/** Collects the ids of the requests the server receives. */
function requestIds(serverIo: MemoryIO): string[] {
  const ids: string[] = [];
  serverIo.on('message', (m) => {
    const { header } = decodeMessage(m.data);
    if (header.k === MessageKind.Request) ids.push(header.id);
  });
  return ids;
}

/** Destroys what the test opened; shared by every describe of this file. */
async function cleanUp(): Promise<void> {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
  const errors = unexpected.splice(0);
  expect(errors, 'unexpected "error" events').to.deep.equal([]);
}

describe('RPCChannel callbacks (memory IO)', () => {
  afterEach(cleanUp);

  it('invokes a top-level callback several times with superjson values, before the call resolves', async () => {
    const { api } = setup();
    const seen: [number, Date, Map<string, number>][] = [];
    const result = await api.download('u1', (done, at, meta) => seen.push([done, at, meta]));
    expect(result).to.equal('downloaded u1');
    expect(seen).to.have.length(3);
    seen.forEach(([done, at, meta], i) => {
      expect(done).to.equal((i + 1) * 33);
      expect(at).to.be.instanceOf(Date);
      expect(at.toISOString()).to.equal(new Date(Date.UTC(2024, 0, i + 1)).toISOString());
      expect(meta).to.be.instanceOf(Map);
      expect([...meta]).to.deep.equal([['u1', i + 1]]);
    });
  });

  it('invokes callbacks nested in objects and arrays, each the right one', async () => {
    const { api } = setup();
    const calls: string[] = [];
    const result = await api.withOptions({
      label: 'opts',
      onStart: () => calls.push('start'),
      hooks: [(n) => calls.push(`hook ${n}`), { deep: (s) => calls.push(`deep ${s}`) }],
    });
    expect(result).to.equal('opts');
    expect(calls).to.deep.equal(['start', 'hook 1', 'hook 2', 'deep deep']);
  });

  it('keeps several top-level callbacks apart', async () => {
    const { api } = setup();
    const a: string[] = [];
    const b: string[] = [];
    await api.twoCallbacks(
      (x) => a.push(x),
      (x) => b.push(x),
    );
    expect(a).to.deep.equal(['to a']);
    expect(b).to.deep.equal(['to b', 'to b again']);
  });

  it('works with serialization: "json" too', async () => {
    const { api } = setup('json');
    const calls: unknown[] = [];
    const result = await api.withOptions({
      label: 'json',
      onStart: () => calls.push('start'),
      hooks: [(n) => calls.push(n), { deep: (s) => calls.push(s) }],
    });
    expect(result).to.equal('json');
    expect(calls).to.deep.equal(['start', 1, 2, 'deep']);
  });

  it('does not modify the caller\'s argument objects (frozen ones included)', async () => {
    const { api } = setup();
    const onStart = (): void => undefined;
    const hook = (_n: number): void => undefined;
    const deep = { deep: (_s: string): void => undefined };
    const hooks = Object.freeze([hook, deep] as const);
    const options = Object.freeze({ label: 'frozen', onStart, hooks });
    const result = await api.withOptions(options as unknown as Parameters<Api['withOptions']>[0]);
    expect(result).to.equal('frozen');
    expect(options.onStart).to.equal(onStart);
    expect(options.hooks).to.equal(hooks);
    expect(hooks[0]).to.equal(hook);
    expect(hooks[1]).to.equal(deep);
    expect(Object.keys(options)).to.deep.equal(['label', 'onStart', 'hooks']);
  });

  it('makes a callback kept past the call a no-op on the callee side', async () => {
    const { api, client } = setup();
    const received: string[] = [];
    expect(await api.keep((msg) => received.push(msg))).to.equal('kept');
    expect(received).to.deep.equal(['while pending']);
    // The stand-in still exists on the server but sends nothing now.
    expect(await api.callKept('after settle')).to.equal('stub returned undefined');
    expect(await api.ping()).to.equal('pong'); // anything sent before this answer has arrived
    expect(received).to.deep.equal(['while pending']);
    expect(client.stats().received).to.equal(4); // 1 callback + 3 results
  });

  it('ignores a callback message for a call that already settled on the caller side', async () => {
    const { api, serverIo } = setup();
    const ids = requestIds(serverIo);
    const received: string[] = [];
    expect(await api.keep((msg) => received.push(msg))).to.equal('kept');
    const [id] = ids;
    expect(id).to.be.a('string');
    // Forge what a misbehaving peer could send: callback 0, and an index out of range.
    const payload = superjsonSerializer().stringify(['forged']);
    await serverIo.write({ data: encodeMessage({ v: 1, k: MessageKind.Callback, id: id ?? '', c: 0 }, payload) });
    await serverIo.write({ data: encodeMessage({ v: 1, k: MessageKind.Callback, id: id ?? '', c: 7 }, payload) });
    expect(await api.ping()).to.equal('pong');
    expect(received).to.deep.equal(['while pending']);
  });

  it('ignores a callback index out of range while the call is pending', async () => {
    const { api, client, serverIo } = setup('superjson', 600_000);
    const ids = requestIds(serverIo);
    const received: number[] = [];
    const pending = api.neverAnswers((n) => received.push(n));
    await api.ping();
    const payload = superjsonSerializer().stringify([99]);
    await serverIo.write({ data: encodeMessage({ v: 1, k: MessageKind.Callback, id: ids[0] ?? '', c: 1 }, payload) });
    await serverIo.write({ data: encodeMessage({ v: 1, k: MessageKind.Callback, id: ids[0] ?? '', c: 0 }, payload) });
    await api.ping();
    expect(received).to.deep.equal([99]);
    await client.destroy();
    await expect(pending).to.be.rejectedWith(RPCChannelClosedError);
  });

  it('stops delivering callbacks once the call timed out', async () => {
    const { api, client } = setup('superjson', 30);
    const received: number[] = [];
    const p = api.neverAnswers((n) => received.push(n));
    await expect(p).to.be.rejectedWith(RPCTimeoutError);
    // The callee still holds a live stand-in (its request never settled): the callback message
    // is sent, and dropped by the caller, which no longer knows the call.
    const patient = client.getAPI({ timeout: 5_000 });
    expect(await patient.callKept('late')).to.equal('stub returned undefined');
    expect(await patient.ping()).to.equal('pong');
    expect(received).to.deep.equal([]);
    expect(client.stats()).to.include({ timeouts: 1, duplicates: 0 });
  });

  it('reports a callback that throws or rejects on the caller\'s "error" event, and the call still resolves', async () => {
    const { api } = setup();
    const result = await api.twoCallbacks(
      () => {
        throw new Error('sync callback failure');
      },
      async () => {
        await Promise.resolve();
        throw new RangeError('async callback failure');
      },
    );
    expect(result).to.equal(undefined);
    await new Promise((resolve) => setImmediate(resolve));
    // Taken out of the shared collector: these three are expected.
    const messages = unexpected.splice(0).map((e) => `${e.name}: ${e.message}`).sort();
    expect(messages).to.deep.equal([
      'Error: sync callback failure',
      'RangeError: async callback failure',
      'RangeError: async callback failure',
    ]);
  });

  it('rejects a notification with a callback argument with RPCInvalidArgumentError', async () => {
    const { client } = setup();
    const p = client.notify().download('u', () => undefined);
    await expect(p).to.be.rejectedWith(RPCInvalidArgumentError);
    const err = (await p.catch((e: unknown) => e)) as RPCInvalidArgumentError;
    expect(err.code).to.equal('ERR_RPC_INVALID_ARGUMENT');
    expect(err.argument).to.equal('args');
    expect(client.stats().calls).to.equal(0);
  });
});
