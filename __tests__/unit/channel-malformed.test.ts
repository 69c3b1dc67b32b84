// Messages not written by this library: each becomes one RPCProtocolError on 'error' (or the
// logger), and the channel goes on serving and calling.
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import { RPCChannel, RPCError, RPCProtocolError, createMemoryIoPair, superjsonSerializer, type Logger, type MemoryIO } from '../../src/index.js';
import { MessageKind, decodeMessage, encodeMessage } from '../../src/protocol/envelope.js';

chai.use(chaiAsPromised);

const open: { destroy(): Promise<void> }[] = [];

/** Destroys what the test opened; shared by every describe of this file. */
async function cleanUp(): Promise<void> {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
}

const sj = superjsonSerializer();

/** A serving channel on one end of a pair; the test writes to the other end by hand. */
function rawPeer(logger?: Logger) {
  const [raw, io] = createMemoryIoPair();
  const server = new RPCChannel(io, logger === undefined ? { expose: { ping: (n: number) => n + 1 } } : { expose: { ping: (n: number) => n + 1 }, logger });
  open.push(server, raw);
  return { raw, server };
}

let requestCount = 0;

/** Error answers to garbage requests whose id could still be read (id to decoded error), per raw peer. */
const refusals = new WeakMap<MemoryIO, Map<string, unknown>>();

/**
 * A valid request written by hand; resolves with the decoded answer. Error
 * answers that arrive before it (the server refusing a garbage request whose
 * id it could read) are kept in {@link refusals}.
 */
async function ping(raw: MemoryIO, n: number): Promise<unknown> {
  const id = `ok-${requestCount++}`;
  await raw.write({ data: encodeMessage({ v: 1, k: MessageKind.Request, id, m: ['ping'], dl: Date.now() + 60_000 }, sj.stringify([n])) });
  for (;;) {
    const reply = await raw.read();
    const { header, payload } = decodeMessage(reply?.data ?? '');
    if (header.id !== id && header.k === MessageKind.Error) {
      if (!refusals.has(raw)) refusals.set(raw, new Map());
      refusals.get(raw)?.set(header.id, sj.parse(payload));
      continue;
    }
    expect(header).to.deep.equal({ v: 1, k: MessageKind.Result, id });
    return sj.parse(payload);
  }
}

/** Whether the server can still read the id of this garbage request, and so answers it with the error. */
function answerable(data: string): boolean {
  return data.includes('"k":"req"') && data.includes('"id":"a"');
}

const garbage: [label: string, data: string, detail: string][] = [
  ['a plain word', 'hello', 'Not a redis-streams-rpc message'],
  ['an empty string', '', 'Not a redis-streams-rpc message'],
  ['an empty header', '{}\n', 'unsupported version undefined'],
  ['JSON without the newline', '{"v":1,"k":"res","id":"a"}', 'Not a redis-streams-rpc message'],
  ['a JSON array header', '[1,2]\n[]', 'Not a redis-streams-rpc message'],
  ['a JSON string header', '"req"\n', 'Not a redis-streams-rpc message'],
  ['a broken JSON header', '{"v":1,\n[]', 'not valid JSON'],
  ['a header without id', '{"v":1,"k":"res"}\n{}', 'bad "id"'],
  ['a header with an empty id', '{"v":1,"k":"res","id":""}\n{}', 'bad "id"'],
  ['a header with an oversized id', `{"v":1,"k":"res","id":"${'x'.repeat(129)}"}\n{}`, 'bad "id"'],
  ['an unknown kind', '{"v":1,"k":"zzz","id":"a"}\n{}', 'unknown kind "zzz"'],
  ['a missing kind', '{"v":1,"id":"a"}\n{}', 'unknown kind'],
  ['a wrong version', '{"v":3,"k":"res","id":"a"}\n{}', 'unsupported version 3'],
  ['a string version', '{"v":"1","k":"res","id":"a"}\n{}', 'unsupported version "1"'],
  ['a request without method', '{"v":1,"k":"req","id":"a","dl":1}\n[]', 'bad method path "m"'],
  ['a request with an empty method', '{"v":1,"k":"req","id":"a","m":[],"dl":1}\n[]', 'bad method path "m"'],
  ['a request with a non-string segment', '{"v":1,"k":"req","id":"a","m":["ping",1],"dl":1}\n[]', 'bad method path "m"'],
  ['a request 33 segments deep', `{"v":1,"k":"req","id":"a","m":${JSON.stringify(Array(33).fill('x'))},"dl":1}\n[]`, 'bad method path "m"'],
  ['a request with a string deadline', '{"v":1,"k":"req","id":"a","m":["ping"],"dl":"soon"}\n[]', 'bad deadline "dl"'],
  ['a request with a bad notification flag', '{"v":1,"k":"req","id":"a","m":["ping"],"dl":1,"n":true}\n[]', 'bad notification flag "n"'],
  ['a request with bad callback paths', '{"v":1,"k":"req","id":"a","m":["ping"],"dl":1,"cb":[["x"]]}\n[]', 'bad callback paths "cb"'],
  ['a request with a negative callback key', '{"v":1,"k":"req","id":"a","m":["ping"],"dl":1,"cb":[[0,-1]]}\n[]', 'bad callback paths "cb"'],
  ['a callback with a negative index', '{"v":1,"k":"cb","id":"a","c":-1}\n[]', 'bad callback index "c"'],
];

describe('RPCChannel malformed messages (memory IO)', () => {
  afterEach(cleanUp);

  for (const [label, data, detail] of garbage) {
    it(`reports ${label} as one RPCProtocolError and keeps serving`, async () => {
      const { raw, server } = rawPeer();
      const errors: Error[] = [];
      server.on('error', (e) => errors.push(e));
      expect(await ping(raw, 1)).to.equal(2);
      await raw.write({ data });
      expect(await ping(raw, 41)).to.equal(42);
      expect(errors).to.have.length(1);
      const err = errors[0] as RPCProtocolError;
      expect(err).to.be.instanceOf(RPCProtocolError);
      expect(err).to.be.instanceOf(RPCError);
      expect(err.name).to.equal('RPCProtocolError');
      expect(err.code).to.equal('ERR_RPC_PROTOCOL');
      expect(err.message).to.include(detail);
      expect(server.stats().handled).to.equal(2);
      // A request whose id is readable is answered with the same error instead of leaving its caller to time out.
      const refusal = refusals.get(raw)?.get('a') as { name?: string; message?: string } | undefined;
      if (answerable(data)) expect(refusal).to.include({ name: 'RPCProtocolError' }).and.have.property('message').that.includes(detail);
      else expect(refusal).to.equal(undefined);
    });
  }

  it('keeps the JSON parse failure as the cause', async () => {
    const { raw, server } = rawPeer();
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    await raw.write({ data: '{oops\n' });
    expect(await ping(raw, 0)).to.equal(1);
    expect(errors[0]?.cause).to.be.instanceOf(SyntaxError);
  });

  it('goes on after a long run of garbage, one error per message, in order', async () => {
    const { raw, server } = rawPeer();
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    for (const [, data] of garbage) await raw.write({ data });
    expect(await ping(raw, 9)).to.equal(10);
    expect(errors).to.have.length(garbage.length);
    errors.forEach((err, i) => {
      expect(err).to.be.instanceOf(RPCProtocolError);
      expect(err.message).to.include(garbage[i]?.[2]);
    });
  });

  it('sends the logger what nobody listens to on "error"', async () => {
    const warned: [string, unknown][] = [];
    const { raw } = rawPeer({ warn: (message, error) => warned.push([message, error]) });
    await raw.write({ data: 'hello' });
    expect(await ping(raw, 1)).to.equal(2);
    expect(warned).to.have.length(1);
    expect(warned[0]?.[1]).to.be.instanceOf(RPCProtocolError);
  });

  it('keeps a caller working when garbage arrives between its calls and their answers', async () => {
    const [serverIo, clientIo] = createMemoryIoPair();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = new RPCChannel(serverIo, {
      expose: {
        later: async () => {
          await gate;
          return 'later';
        },
        now: () => 'now',
      },
    });
    const client = new RPCChannel<Record<string, never>, { later(): Promise<string>; now(): string }>(clientIo, { timeout: 5_000 });
    open.push(server, client);
    const clientErrors: Error[] = [];
    client.on('error', (e) => clientErrors.push(e));
    const api = client.getAPI();
    const later = api.later();
    expect(await api.now()).to.equal('now');
    // Written from the server's end, so it reaches the client's queue.
    await serverIo.write({ data: 'not for you' });
    await serverIo.write({ data: '{"v":1,"k":"res","id":"unknown-call"}\n{"json":1}' });
    release();
    expect(await later).to.equal('later');
    expect(await api.now()).to.equal('now');
    expect(clientErrors).to.have.length(1);
    expect(clientErrors[0]).to.be.instanceOf(RPCProtocolError);
    // An answer to an unknown call is not malformed: it is a duplicate.
    expect(client.stats().duplicates).to.equal(1);
  });

  it('does not run, nor answer, a request addressed to it like an answer (lane "reply")', async () => {
    const { raw, server } = rawPeer();
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    const request = encodeMessage({ v: 1, k: MessageKind.Request, id: 'addressed', m: ['ping'], dl: Date.now() + 60_000 }, sj.stringify([1]));
    await raw.write({ data: request, target: 'anyone' });
    expect(await ping(raw, 2)).to.equal(3);
    expect(server.stats().handled).to.equal(1);
    expect(server.stats().malformed).to.equal(1);
    expect(errors).to.have.length(1);
    expect(errors[0]).to.be.instanceOf(RPCProtocolError);
    expect(errors[0]?.message).to.match(/arrived in this endpoint's inbox/);
    expect(refusals.get(raw)?.has('addressed') ?? false, 'no answer to it').to.equal(false);
  });

  it('rejects the call when its answer payload cannot be decoded, with RPCSerializationError', async () => {
    const [clientIo, raw] = createMemoryIoPair();
    const client = new RPCChannel<Record<string, never>, { go(): string }>(clientIo, { timeout: 5_000 });
    open.push(client, raw);
    const p = client.getAPI().go();
    const request = await raw.read();
    const { header } = decodeMessage(request?.data ?? '');
    await raw.write({ data: encodeMessage({ v: 1, k: MessageKind.Result, id: header.id }, 'not superjson') });
    await expect(p).to.be.rejectedWith(RPCError, 'Cannot deserialize result of "go"');
    const err = (await p.catch((e: unknown) => e)) as RPCError;
    expect(err.code).to.equal('ERR_RPC_SERIALIZATION');
    expect(err.cause).to.be.instanceOf(SyntaxError);
  });

  it('rejects the call with a plain Error when an error answer is not a serialized error', async () => {
    const [clientIo, raw] = createMemoryIoPair();
    const client = new RPCChannel<Record<string, never>, { go(): string }>(clientIo, { timeout: 5_000 });
    open.push(client, raw);
    const p = client.getAPI().go();
    const request = await raw.read();
    const { header } = decodeMessage(request?.data ?? '');
    await raw.write({ data: encodeMessage({ v: 1, k: MessageKind.Error, id: header.id }, sj.stringify(42)) });
    await expect(p).to.be.rejectedWith(Error, 'Malformed remote error: 42');
  });
});
