// Each inbound message is its own failure domain: no request, answer or exposed object can stop a
// channel's read loop, and every call settles (answered, or a typed error) instead of hanging.
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import {
  RPCChannel,
  RPCChannelClosedError,
  RPCError,
  RPCInvalidArgumentError,
  RPCPayloadTooLargeError,
  RPCProtocolError,
  createMemoryIoPair,
  superjsonSerializer,
  type IoInboundMessage,
  type IoInterface,
  type MemoryIO,
} from '../../src/index.js';
import { MessageKind, decodeMessage, encodeMessage } from '../../src/protocol/envelope.js';

chai.use(chaiAsPromised);

const sj = superjsonSerializer();
const open: { destroy(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
});

interface Loose {
  (...args: unknown[]): Promise<unknown>;
  [member: string]: Loose;
}

/** A server on one end of a pair; the test plays the caller by hand on the other end. */
function rawCaller(expose: object, options: Record<string, unknown> = {}) {
  const [raw, io] = createMemoryIoPair();
  const server = new RPCChannel(io, { expose, ...options });
  const errors: Error[] = [];
  server.on('error', (e) => errors.push(e));
  open.push(server, raw);
  return { raw, server, errors };
}

/** A caller on one end of a pair; the test plays the server by hand on the other end. */
function rawServer(options: Record<string, unknown> = {}) {
  const [raw, io] = createMemoryIoPair();
  const client = new RPCChannel<Record<string, never>, Record<string, never>>(io, { timeout: 2000, ...options });
  const errors: Error[] = [];
  client.on('error', (e) => errors.push(e));
  open.push(client, raw);
  return { raw, client, errors, api: client.getAPI() as unknown as Loose };
}

/** A connected server and client. */
function pair(expose: object, serverOptions: Record<string, unknown> = {}, clientOptions: Record<string, unknown> = {}) {
  const [a, b] = createMemoryIoPair();
  const server = new RPCChannel(a, { expose, ...serverOptions });
  const client = new RPCChannel<Record<string, never>, Record<string, never>>(b, { timeout: 2000, ...clientOptions });
  const serverErrors: Error[] = [];
  const clientErrors: Error[] = [];
  server.on('error', (e) => serverErrors.push(e));
  client.on('error', (e) => clientErrors.push(e));
  open.push(server, client);
  return { server, client, serverErrors, clientErrors, api: client.getAPI() as unknown as Loose };
}

let seq = 0;

/** Writes a request by hand and resolves with the decoded answer to it. */
async function request(raw: MemoryIO, m: string[], args: unknown[], extra: Record<string, unknown> = {}): Promise<{ kind: string; value: unknown }> {
  const id = `t-${seq++}`;
  const header = { v: 1, k: MessageKind.Request, id, m, dl: Date.now() + 60_000, ...extra } as Parameters<typeof encodeMessage>[0];
  await raw.write({ data: encodeMessage(header, sj.stringify(args)) });
  for (;;) {
    const reply = await raw.read();
    const { header: h, payload } = decodeMessage(reply?.data ?? '');
    if (h.id === id && h.k !== MessageKind.Callback) return { kind: h.k, value: sj.parse(payload) };
  }
}

/** Answers the next request that reaches `raw` with `data(id)`. */
async function answerNext(raw: MemoryIO, data: (id: string) => string): Promise<string> {
  const message = (await raw.read()) as IoInboundMessage;
  const { header } = decodeMessage(message.data);
  await raw.write({ data: data(header.id) });
  return header.id;
}

describe('RPCChannel isolation: nothing a peer sends stops the serving loop', () => {
  it('ignores a callback path naming the length of an array argument, answers, and goes on serving', async () => {
    const { raw } = rawCaller({ count: (list: unknown[]) => list.length, ping: () => 'pong' });
    const answer = await request(raw, ['count'], [[1, 2, 3]], { cb: [[0, 'length']] });
    expect(answer).to.deep.equal({ kind: MessageKind.Result, value: 3 });
    expect(await request(raw, ['ping'], [])).to.deep.equal({ kind: MessageKind.Result, value: 'pong' });
  });

  it('puts callbacks only where the caller left null, never over values', async () => {
    const seen: unknown[] = [];
    const { raw } = rawCaller({
      inspect: (a: unknown, b: unknown) => {
        seen.push(typeof a, typeof b);
        return 'ok';
      },
    });
    const answer = await request(raw, ['inspect'], ['value', { x: 1 }], { cb: [[0], [1, 'x']] });
    expect(answer.kind).to.equal(MessageKind.Result);
    expect(seen).to.deep.equal(['string', 'object']);
  });

  it('answers an error thrown with a throwing enumerable getter, and goes on serving', async () => {
    const { api } = pair({
      bad: () => {
        const err = new Error('outer');
        Object.defineProperty(err, 'detail', { enumerable: true, get: () => { throw new Error('getter'); } });
        throw err;
      },
      ping: () => 'pong',
    });
    const err = (await api.bad!().catch((e: unknown) => e)) as Error;
    expect(err).to.be.instanceOf(Error);
    expect(err.message).to.equal('outer');
    expect(await api.ping!()).to.equal('pong');
  });

  it('answers a result whose "then" getter throws with an error, and goes on serving', async () => {
    const { api } = pair({
      trap: () => ({ get then(): never { throw new Error('then getter'); } }),
      ping: () => 'pong',
    });
    const err = (await api.trap!().catch((e: unknown) => e)) as Error;
    expect(err).to.be.instanceOf(Error);
    expect(err.message).to.equal('then getter');
    expect(await api.ping!()).to.equal('pong');
  });

  it('answers once when a thenable result settles twice', async () => {
    const { api, server } = pair({
      twice: () => ({ then: (ok: (v: unknown) => void, fail: (e: unknown) => void) => { ok(1); ok(2); fail(new Error('late')); } }),
      ping: () => 'pong',
    });
    expect(await api.twice!()).to.equal(1);
    expect(await api.ping!()).to.equal('pong');
    expect(server.stats().handled).to.equal(2);
  });

  it('answers a request whose header is refused but whose id is readable with RPCProtocolError', async () => {
    const { raw, errors } = rawCaller({ ping: () => 'pong' });
    await raw.write({ data: '{"v":1,"k":"req","id":"bad-path","m":"ping","dl":1}\n[]' });
    const reply = (await raw.read()) as IoInboundMessage;
    const { header, payload } = decodeMessage(reply.data);
    expect(header).to.include({ k: MessageKind.Error, id: 'bad-path' });
    expect(sj.parse(payload)).to.include({ name: 'RPCProtocolError' });
    expect(errors[0]).to.be.instanceOf(RPCProtocolError);
    expect(await request(raw, ['ping'], [])).to.deep.equal({ kind: MessageKind.Result, value: 'pong' });
  });

  it('refuses a message whose data is not a string (a custom IO), and goes on serving', async () => {
    const inbox: (IoInboundMessage | null)[] = [{ data: { not: 'a string' } as unknown as string, from: 'peer' }];
    const written: string[] = [];
    let wake: () => void = () => undefined;
    const io: IoInterface = {
      name: 'custom',
      id: 'custom-1',
      capabilities: { addressing: true, acknowledgements: false, loadBalanced: false, broadcast: false },
      read: async () => {
        while (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        return inbox.shift() ?? null;
      },
      write: async (m) => void written.push(m.data),
      on() {
        return this;
      },
      off() {
        return this;
      },
      destroy: async () => {
        inbox.push(null);
        wake();
      },
    };
    const server = new RPCChannel(io, { expose: { ping: () => 'pong' } });
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    open.push(server);
    inbox.push({ data: encodeMessage({ v: 1, k: MessageKind.Request, id: 'p', m: ['ping'], dl: Date.now() + 5000 }, sj.stringify([])), from: 'peer' });
    wake();
    while (written.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(decodeMessage(written[0] as string).header).to.include({ k: MessageKind.Result, id: 'p' });
    expect(errors[0]).to.be.instanceOf(RPCProtocolError);
  });
});

describe('RPCChannel isolation: nothing a peer answers stops the calling loop', () => {
  it('rejects a call whose error answer has a primitive cause, and later calls still work', async () => {
    const { raw, api } = rawServer();
    const first = api.ping!();
    await answerNext(raw, (id) => encodeMessage({ v: 1, k: MessageKind.Error, id }, sj.stringify({ name: 'Error', message: 'x', cause: 'boom' })));
    const err = (await first.catch((e: unknown) => e)) as Error;
    expect(err).to.be.instanceOf(Error);
    expect(err.message).to.equal('x');
    expect(err.cause).to.equal('boom');
    const second = api.ping!();
    await answerNext(raw, (id) => encodeMessage({ v: 1, k: MessageKind.Result, id }, sj.stringify('pong')));
    expect(await second).to.equal('pong');
  });

  for (const [label, body] of [
    ['props that are a string', { name: 'Error', message: 'm', props: 'junk' }],
    ['a cause that is an array', { name: 'Error', message: 'm', cause: [1, 2] }],
    ['a cause with a value and junk', { name: 'Error', message: 'm', cause: { value: { deep: [null] } } }],
    ['a name that is not a string', { name: 42, message: 'm' }],
    ['a bare number', 7],
  ] as const) {
    it(`rejects with an Error for an error answer with ${label}`, async () => {
      const { raw, api } = rawServer();
      const call = api.ping!();
      await answerNext(raw, (id) => encodeMessage({ v: 1, k: MessageKind.Error, id }, sj.stringify(body)));
      await expect(call).to.be.rejectedWith(Error);
      const next = api.ping!();
      await answerNext(raw, (id) => encodeMessage({ v: 1, k: MessageKind.Result, id }, sj.stringify('pong')));
      expect(await next).to.equal('pong');
    });
  }

  it('rejects a call at once with RPCProtocolError when its answer has a refused header (unknown version)', async () => {
    const { raw, api, errors } = rawServer({ timeout: 20_000 });
    const call = api.ping!();
    await answerNext(raw, (id) => `{"v":9,"k":"res","id":${JSON.stringify(id)}}\n{"json":1}`);
    const err = (await call.catch((e: unknown) => e)) as RPCProtocolError;
    expect(err).to.be.instanceOf(RPCProtocolError);
    expect(err.code).to.equal('ERR_RPC_PROTOCOL');
    expect(err.message).to.include('unsupported version 9');
    expect(errors).to.have.length(1);
  });
});

describe('RPCChannel maxMessageBytes', () => {
  it('rejects a call whose request is too large at once, without writing it', async () => {
    const { api, client } = pair({ echo: (s: string) => s }, {}, { maxMessageBytes: 4096 });
    const err = (await api.echo!('x'.repeat(5000)).catch((e: unknown) => e)) as RPCPayloadTooLargeError;
    expect(err).to.be.instanceOf(RPCPayloadTooLargeError).and.instanceOf(RPCError);
    expect(err.code).to.equal('ERR_RPC_PAYLOAD_TOO_LARGE');
    expect(err.limit).to.equal(4096);
    expect(err.bytes).to.be.greaterThan(5000);
    expect(err.message).to.include('maxMessageBytes');
    expect(client.stats().sent).to.equal(0);
    expect(await api.echo!('small')).to.equal('small');
  });

  it('counts UTF-8 bytes, not characters', async () => {
    const { api } = pair({ echo: (s: string) => s }, {}, { maxMessageBytes: 4096 });
    // 1,500 characters of 3 bytes each: 4,500 bytes.
    await expect(api.echo!('€'.repeat(1500))).to.be.rejectedWith(RPCPayloadTooLargeError);
    expect(await api.echo!('€'.repeat(1000))).to.have.length(1000);
  });

  it('answers a request larger than the server accepts with RPCPayloadTooLargeError, before parsing it', async () => {
    let ran = false;
    const { api, serverErrors } = pair({ echo: (s: string) => ((ran = true), s) }, { maxMessageBytes: 4096 }, { maxMessageBytes: 1_000_000 });
    const err = (await api.echo!('y'.repeat(10_000)).catch((e: unknown) => e)) as RPCPayloadTooLargeError;
    expect(err).to.be.instanceOf(RPCPayloadTooLargeError);
    expect(err.limit).to.equal(4096);
    expect(ran).to.equal(false);
    expect(serverErrors[0]).to.be.instanceOf(RPCPayloadTooLargeError);
    expect(await api.echo!('ok')).to.equal('ok');
  });

  it('answers a result larger than maxMessageBytes with RPCPayloadTooLargeError', async () => {
    const { api } = pair({ big: () => 'z'.repeat(10_000) }, { maxMessageBytes: 4096 });
    const err = (await api.big!().catch((e: unknown) => e)) as RPCPayloadTooLargeError;
    expect(err).to.be.instanceOf(RPCPayloadTooLargeError);
    expect(err.message).to.include('the result of "big"');
  });

  it('rejects a call whose answer arrives larger than the caller accepts', async () => {
    const { api } = pair({ big: () => 'z'.repeat(10_000) }, {}, { maxMessageBytes: 4096 });
    await expect(api.big!()).to.be.rejectedWith(RPCPayloadTooLargeError);
  });

  for (const value of [0, 10, 1.5, '1000000', null]) {
    it(`refuses maxMessageBytes: ${String(value)}`, () => {
      const [a] = createMemoryIoPair();
      open.push(a);
      expect(() => new RPCChannel(a, { maxMessageBytes: value as number })).to.throw(RPCInvalidArgumentError, 'maxMessageBytes');
    });
  }
});

describe('RPCChannel strict options', () => {
  function io(): MemoryIO {
    const [a, b] = createMemoryIoPair();
    open.push(a, b);
    return a;
  }

  it('throws RPCInvalidArgumentError naming an unknown channel option', () => {
    const options = { timout: 5000 } as unknown as Record<string, never>;
    const thrown = (() => {
      try {
        new RPCChannel(io(), options);
      } catch (err) {
        return err;
      }
      return undefined;
    })() as RPCInvalidArgumentError;
    expect(thrown).to.be.instanceOf(RPCInvalidArgumentError);
    expect(thrown.argument).to.equal('timout');
    expect(thrown.message).to.include('"timout"').and.include('unknown option').and.include('timeout');
  });

  it('says that writeBatchSize belongs to RedisStreamsIO', () => {
    expect(() => new RPCChannel(io(), { writeBatchSize: 1 } as unknown as Record<string, never>)).to.throw(RPCInvalidArgumentError, /"writeBatchSize".*RedisStreamsIO/);
  });

  it('throws RPCInvalidArgumentError naming an unknown getAPI() option', () => {
    const channel = new RPCChannel(io());
    open.push(channel);
    expect(() => channel.getAPI({ timout: 5 } as unknown as { timeout: number })).to.throw(RPCInvalidArgumentError, '"timout"');
    expect(() => channel.getAPI(null as unknown as { timeout: number })).to.throw(RPCInvalidArgumentError);
  });

  it('words the error for an argument as well as for an option', async () => {
    const { client } = pair({ f: () => 1 });
    const notify = client.notify() as unknown as Loose;
    const err = (await (notify.f as Loose)(() => 1).catch((e: unknown) => e)) as RPCInvalidArgumentError;
    expect(err).to.be.instanceOf(RPCInvalidArgumentError);
    expect(err.argument).to.equal('args');
    expect(err.message).to.match(/^Invalid "args": /);
    expect(err.message).not.to.include('option');
  });

  it('refuses remoteStacks values other than "keep" and "omit"', () => {
    expect(() => new RPCChannel(io(), { remoteStacks: 'yes' as 'keep' })).to.throw(RPCInvalidArgumentError, 'remoteStacks');
  });
});

describe('RPCChannel proxies are read-only', () => {
  it('throws a TypeError on assignment, definition and deletion through a proxy', () => {
    const { client } = pair({});
    const api = client.getAPI() as unknown as Record<string, unknown>;
    expect(() => {
      api.counter = 1;
    }).to.throw(TypeError, /read-only/);
    expect(() => {
      (api.math as Record<string, unknown>).add = () => 1;
    }).to.throw(TypeError, /"add".*"math"/);
    expect(() => Object.defineProperty(api, 'x', { value: 1 })).to.throw(TypeError);
    expect(() => delete api.counter).to.throw(TypeError);
  });
});

describe('RPCChannel remoteStacks', () => {
  function workerSideFrameForStackTest(): never {
    throw new Error('with a stack');
  }

  async function callerSideFrameForStackTest(api: Loose): Promise<Error> {
    return (await (api.fail as Loose)().catch((e: unknown) => e)) as Error;
  }

  it("omits the handler's stack by default: the caller's error shows the caller's awaiting code", async () => {
    const { api } = pair({ fail: () => workerSideFrameForStackTest() });
    const err = await callerSideFrameForStackTest(api);
    expect(err.message).to.equal('with a stack');
    expect(err.stack).to.be.a('string').and.not.include('workerSideFrameForStackTest');
    expect(err.stack).to.include('callerSideFrameForStackTest');
  });

  it("sends the handler's stack with remoteStacks: 'keep'", async () => {
    const { api } = pair({ fail: () => workerSideFrameForStackTest() }, { remoteStacks: 'keep' });
    const err = await callerSideFrameForStackTest(api);
    expect(err.stack).to.include('workerSideFrameForStackTest');
  });
});

describe('RPCChannel read loop failure', () => {
  it('reports and destroys the channel (and its IO) when the IO read() fails, rejecting pending calls', async () => {
    let destroyed = false;
    let failRead: (err: Error) => void = () => undefined;
    const io: IoInterface = {
      name: 'failing',
      id: 'failing-1',
      capabilities: { addressing: true, acknowledgements: false, loadBalanced: false, broadcast: false },
      read: () => new Promise<IoInboundMessage | null>((_resolve, reject) => (failRead = reject)),
      write: () => Promise.resolve(),
      on() {
        return this;
      },
      off() {
        return this;
      },
      destroy: async () => {
        destroyed = true;
      },
    };
    const channel = new RPCChannel<Record<string, never>, { ping(): string }>(io, { timeout: 20_000 });
    const errors: Error[] = [];
    channel.on('error', (e) => errors.push(e));
    const call = channel.getAPI().ping();
    failRead(new Error('read broke'));
    await expect(call).to.be.rejectedWith(RPCChannelClosedError);
    expect(destroyed).to.equal(true);
    expect(errors[0]).to.be.instanceOf(RPCProtocolError);
    expect((errors[0]?.cause as Error).message).to.equal('read broke');
  });
});
