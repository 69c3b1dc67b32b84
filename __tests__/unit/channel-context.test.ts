// The request context (getRequestContext) and request metadata (envelope v2).
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import {
  RPCChannel,
  RPCChannelClosedError,
  RPCInvalidArgumentError,
  RPCTimeoutError,
  createMemoryIoPair,
  getRequestContext,
  superjsonSerializer,
  type IoInboundMessage,
  type RequestContext,
} from '../../src/index.js';
import { MessageKind, decodeMessage, encodeMessage, type RequestHeader } from '../../src/protocol/envelope.js';

chai.use(chaiAsPromised);

const open: { destroy(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
});

function pair<Api extends object>(expose: Api, serverOptions: Record<string, unknown> = {}) {
  const [a, b] = createMemoryIoPair();
  const server = new RPCChannel(a, { expose, ...serverOptions });
  const client = new RPCChannel<Record<string, never>, Api>(b, { timeout: 2000 });
  open.push(server, client);
  return { server, client, io: b };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('request context', () => {
  it('gives a handler its call id, method, caller, deadline and metadata', async () => {
    let seen: RequestContext | undefined;
    const { client, io } = pair({ math: { add: (a: number, b: number) => ((seen = getRequestContext()), a + b) } });
    const before = Date.now();
    const api = client.getAPI({ timeout: 5000, metadata: { traceparent: '00-abc-def-01', tenant: 't1' } });
    expect(await api.math.add(1, 2)).to.equal(3);
    expect(seen).to.not.equal(undefined);
    expect(seen?.method).to.equal('math.add');
    expect(seen?.caller).to.equal(io.id);
    expect(seen?.notification).to.equal(false);
    expect(seen?.deadline).to.be.within(before + 5000, Date.now() + 5000);
    expect({ ...seen?.metadata }).to.deep.equal({ traceparent: '00-abc-def-01', tenant: 't1' });
    expect(Object.getPrototypeOf(seen?.metadata)).to.equal(null);
    expect(seen?.id).to.be.a('string');
  });

  it('is undefined outside a handler and after its first await (without asyncContext)', async () => {
    const seen: (RequestContext | undefined)[] = [];
    const { client } = pair({
      slow: async () => {
        seen.push(getRequestContext());
        await sleep(1);
        seen.push(getRequestContext());
      },
    });
    await client.getAPI().slow();
    expect(seen[0]).to.not.equal(undefined);
    expect(seen[1]).to.equal(undefined);
    expect(getRequestContext()).to.equal(undefined);
  });

  it('follows awaits with asyncContext: true', async () => {
    const seen: (string | undefined)[] = [];
    const { client } = pair(
      {
        slow: async () => {
          await sleep(1);
          seen.push(getRequestContext()?.metadata.user);
        },
      },
      { asyncContext: true },
    );
    await Promise.all([client.getAPI({ metadata: { user: 'a' } }).slow(), client.getAPI({ metadata: { user: 'b' } }).slow()]);
    expect(seen.sort()).to.deep.equal(['a', 'b']);
  });

  it('has empty metadata, and writes a version 1 header, when the caller attaches none', async () => {
    let metadata: unknown;
    const [raw, io] = createMemoryIoPair();
    const server = new RPCChannel(io, { expose: { f: () => ((metadata = getRequestContext()?.metadata), 1) } });
    const client = new RPCChannel<Record<string, never>, { f(): number }>(raw);
    open.push(server, client);
    expect(await client.getAPI().f()).to.equal(1);
    expect(metadata).to.deep.equal({});
    // Version 2 only when needed: peers of version 1 keep reading what we write.
    const [a, b] = createMemoryIoPair();
    const plain = new RPCChannel<Record<string, never>, { f(): number }>(a, { timeout: 50 });
    open.push(plain, b);
    void plain.getAPI().f().catch(() => undefined);
    void plain.getAPI({ metadata: { k: 'v' } }).f().catch(() => undefined);
    const first = decodeMessage(((await b.read()) as IoInboundMessage).data).header as RequestHeader;
    const second = decodeMessage(((await b.read()) as IoInboundMessage).data).header as RequestHeader;
    expect(first.v).to.equal(1);
    expect(first.md).to.equal(undefined);
    expect(second.v).to.equal(2);
    expect({ ...second.md }).to.deep.equal({ k: 'v' });
  });

  it('aborts the signal at the deadline with an RPCTimeoutError reason', async () => {
    let reason: unknown;
    const { client } = pair({
      wait: () =>
        new Promise<string>((resolve) => {
          const { signal } = getRequestContext() as RequestContext;
          signal.addEventListener('abort', () => {
            reason = signal.reason;
            // Answer well after the caller's own timer, which fires at the same deadline.
            setTimeout(() => resolve('aborted'), 300);
          });
        }),
    });
    await expect(client.getAPI({ timeout: 100 }).wait()).to.be.rejectedWith(RPCTimeoutError);
    await sleep(400);
    expect(reason).to.be.instanceOf(RPCTimeoutError);
  });

  it('aborts the signal of running handlers when the serving channel is destroyed', async () => {
    let signal: AbortSignal | undefined;
    const { client, server } = pair({ wait: () => ((signal = getRequestContext()?.signal), new Promise(() => undefined)) });
    const call = client.getAPI().wait().catch((e: unknown) => e);
    while (signal === undefined) await sleep(5);
    await server.destroy();
    expect(signal.aborted).to.equal(true);
    expect(signal.reason).to.be.instanceOf(RPCChannelClosedError);
    await client.destroy();
    expect(await call).to.be.instanceOf(RPCChannelClosedError);
  });

  it('refuses metadata that is not a small map of strings', () => {
    const [a, b] = createMemoryIoPair();
    const channel = new RPCChannel(a);
    open.push(channel, b);
    for (const bad of [{ n: 1 }, 'x', ['a'], { ['x'.repeat(129)]: 'v' }, { k: 'v'.repeat(4097) }, Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']))]) {
      expect(() => channel.getAPI({ metadata: bad as Record<string, string> }), JSON.stringify(bad).slice(0, 40)).to.throw(RPCInvalidArgumentError, '"metadata"');
    }
  });

  it('refuses metadata on the wire that is malformed or in a version 1 header, answering the caller', async () => {
    const sj = superjsonSerializer();
    const [raw, io] = createMemoryIoPair();
    const server = new RPCChannel(io, { expose: { f: () => 1 } });
    server.on('error', () => undefined);
    open.push(server, raw);
    for (const [v, md] of [[2, '{"n":1}'], [1, '{"k":"v"}'], [2, '{"__proto__":"x"}'], [2, '[]']] as const) {
      const header = `{"v":${v},"k":"req","id":"m-${v}","m":["f"],"dl":${Date.now() + 5000},"md":${md}}`;
      await raw.write({ data: `${header}\n${sj.stringify([])}` });
      const reply = decodeMessage(((await raw.read()) as IoInboundMessage).data);
      expect(reply.header.k).to.equal(MessageKind.Error);
      expect(sj.parse(reply.payload)).to.include({ name: 'RPCProtocolError' });
    }
    // A valid version 2 request is served.
    await raw.write({ data: encodeMessage({ v: 2, k: MessageKind.Request, id: 'ok', m: ['f'], dl: Date.now() + 5000, md: { a: 'b' } }, sj.stringify([])) });
    expect(decodeMessage(((await raw.read()) as IoInboundMessage).data).header.k).to.equal(MessageKind.Result);
  });
});
