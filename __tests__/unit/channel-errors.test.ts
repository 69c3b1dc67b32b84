// Failures crossing the wire: remote errors rebuilt with name, message, code, own fields and
// cause; library errors keeping their class; method resolution refusing anything but the
// exposed functions; crafted requests unable to pollute Object.prototype.
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import {
  RPCChannel,
  RPCError,
  RPCInvalidArgumentError,
  RPCMethodNotFoundError,
  RPCProtocolError,
  RPCSerializationError,
  createMemoryIoPair,
  superjsonSerializer,
  type MemoryIO,
} from '../../src/index.js';
import { MessageKind, decodeMessage, encodeMessage, type Header } from '../../src/protocol/envelope.js';

chai.use(chaiAsPromised);

const open: { destroy(): Promise<void> }[] = [];
const unexpected: Error[] = [];

function setup<Api extends object>(api: Api) {
  const [a, b] = createMemoryIoPair();
  const server = new RPCChannel<Api, Record<string, never>>(a, { expose: api });
  const client = new RPCChannel<Record<string, never>, Api>(b, { timeout: 5_000 });
  for (const channel of [server, client]) {
    channel.on('error', (e) => unexpected.push(e));
    open.push(channel);
  }
  return { server, client, api: client.getAPI() };
}

/** A channel serving `api` on one end of a pair; the test drives the other end by hand. */
function rawPeer(api: object): { raw: MemoryIO; server: RPCChannel<object, Record<string, never>>; errors: Error[] } {
  const [raw, io] = createMemoryIoPair();
  const server = new RPCChannel<object, Record<string, never>>(io, { expose: api });
  const errors: Error[] = [];
  server.on('error', (e) => errors.push(e));
  open.push(server, raw);
  return { raw, server, errors };
}

const sj = superjsonSerializer();

/** Sends a request by hand and returns the decoded answer. */
async function rawCall(raw: MemoryIO, header: Partial<Header> & Record<string, unknown>, payload: string) {
  const full = { v: 1, k: MessageKind.Request, id: 'raw-1', dl: Date.now() + 60_000, ...header } as Header;
  await raw.write({ data: encodeMessage(full, payload) });
  const reply = await raw.read();
  if (reply === null) throw new Error('raw peer closed');
  const { header: h, payload: p } = decodeMessage(reply.data);
  return { kind: h.k, id: h.id, value: sj.parse(p) as Record<string, unknown> };
}

/** Destroys what the test opened; shared by every describe of this file. */
async function cleanUp(): Promise<void> {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
  const errors = unexpected.splice(0);
  expect(errors, 'unexpected "error" events').to.deep.equal([]);
}

class ValidationError extends Error {
  override name = 'ValidationError';
  readonly code = 'E_VALIDATION';
  readonly field = 'email';
  readonly attempts = 3;
  readonly at = new Date('2024-05-06T07:08:09.010Z');
  readonly details = { rule: { name: 'format', args: [1, 'two'] } };
}

describe('RPCChannel remote errors (memory IO)', () => {
  afterEach(cleanUp);

  it('rebuilds a thrown Error subclass: name, message, code, enumerable own fields with superjson types', async () => {
    const { api } = setup({
      validate: (): never => {
        throw new ValidationError('email is not valid');
      },
    });
    const p = api.validate();
    await expect(p).to.be.rejectedWith(Error, 'email is not valid');
    const err = (await p.catch((e: unknown) => e)) as ValidationError;
    expect(err).to.be.instanceOf(Error);
    expect(err).not.to.be.instanceOf(RPCError);
    expect(err.name).to.equal('ValidationError');
    expect(err.message).to.equal('email is not valid');
    expect(err.code).to.equal('E_VALIDATION');
    expect(err.field).to.equal('email');
    expect(err.attempts).to.equal(3);
    expect(err.at).to.be.instanceOf(Date);
    expect(err.at.toISOString()).to.equal('2024-05-06T07:08:09.010Z');
    expect(err.details).to.deep.equal({ rule: { name: 'format', args: [1, 'two'] } });
    expect(String(err)).to.equal('ValidationError: email is not valid');
  });

  it('rebuilds the same error in a rejected async handler', async () => {
    const { api } = setup({
      validate: async (): Promise<void> => {
        await new Promise((resolve) => setImmediate(resolve));
        throw new ValidationError('late');
      },
    });
    const err = (await api.validate().catch((e: unknown) => e)) as ValidationError;
    expect(err.name).to.equal('ValidationError');
    expect(err.code).to.equal('E_VALIDATION');
    expect(err.at).to.be.instanceOf(Date);
  });

  it('rebuilds a cause chain of Errors and keeps a non-Error cause as its value', async () => {
    const { api } = setup({
      chain: (): never => {
        const root = new RangeError('root cause');
        const middle = new Error('middle', { cause: root });
        throw new Error('top', { cause: middle });
      },
      plainCause: (): never => {
        throw new Error('with a plain cause', { cause: { reason: 'disk full', free: 0 } });
      },
      stringCause: (): never => {
        throw new Error('with a string cause', { cause: 'just a string' });
      },
    });
    const top = (await api.chain().catch((e: unknown) => e)) as Error;
    expect(top.message).to.equal('top');
    const middle = top.cause as Error;
    expect(middle).to.be.instanceOf(Error);
    expect(middle.message).to.equal('middle');
    const root = middle.cause as Error;
    expect(root).to.be.instanceOf(RangeError);
    expect(root.message).to.equal('root cause');
    expect(root.cause).to.equal(undefined);

    const plain = (await api.plainCause().catch((e: unknown) => e)) as Error;
    expect(plain.cause).to.deep.equal({ reason: 'disk full', free: 0 });
    expect(plain.cause).not.to.be.instanceOf(Error);
    const str = (await api.stringCause().catch((e: unknown) => e)) as Error;
    expect(str.cause).to.equal('just a string');
  });

  it('keeps built-in error classes: a TypeError stays instanceof TypeError', async () => {
    const { api } = setup({
      typeError: (): never => {
        throw new TypeError('not a function');
      },
      nativeTypeError: (): unknown => (null as unknown as { x: number }).x,
    });
    const p = api.typeError();
    await expect(p).to.be.rejectedWith(TypeError, 'not a function');
    const err = (await p.catch((e: unknown) => e)) as TypeError;
    expect(err.name).to.equal('TypeError');
    const native = (await api.nativeTypeError().catch((e: unknown) => e)) as TypeError;
    expect(native).to.be.instanceOf(TypeError);
    expect(native.message).to.match(/null/);
  });

  it('turns a rejection with a string or another non-Error value into an Error', async () => {
    const { api } = setup({
      rejectString: () => Promise.reject('plain string'), // eslint-disable-line prefer-promise-reject-errors
      throwObject: (): never => {
        throw { status: 418 }; // eslint-disable-line no-throw-literal
      },
    });
    const p = api.rejectString();
    await expect(p).to.be.rejectedWith(Error, 'plain string');
    const err = (await p.catch((e: unknown) => e)) as Error & { thrownValue: unknown };
    expect(err.name).to.equal('Error');
    expect(err.thrownValue).to.equal('plain string');

    const objErr = (await api.throwObject().catch((e: unknown) => e)) as Error & { thrownValue: unknown };
    expect(objErr).to.be.instanceOf(Error);
    expect(objErr.message).to.include('{"status":418}');
    expect(objErr.thrownValue).to.deep.equal({ status: 418 });
  });

  it('keeps library error classes thrown by a handler (instanceof, name, code, own fields)', async () => {
    const { api } = setup({
      badArgument: (): never => {
        throw new RPCInvalidArgumentError('limit', 'expected a positive integer');
      },
    });
    const p = api.badArgument();
    await expect(p).to.be.rejectedWith(RPCInvalidArgumentError);
    const err = (await p.catch((e: unknown) => e)) as RPCInvalidArgumentError;
    expect(err).to.be.instanceOf(RPCError);
    expect(err.name).to.equal('RPCInvalidArgumentError');
    expect(err.code).to.equal('ERR_RPC_INVALID_ARGUMENT');
    expect(err.argument).to.equal('limit');
    expect(err.message).to.equal('Invalid "limit": expected a positive integer');
  });

  it('rejects with RPCSerializationError when the result cannot be serialized', async () => {
    class Unencodable {
      toJSON(): never {
        throw new Error('cannot encode');
      }
    }
    const { api } = setup({ bad: () => ({ v: new Unencodable() }) });
    const p = api.bad();
    await expect(p).to.be.rejectedWith(RPCSerializationError);
    const err = (await p.catch((e: unknown) => e)) as RPCSerializationError;
    expect(err.name).to.equal('RPCSerializationError');
    expect(err.code).to.equal('ERR_RPC_SERIALIZATION');
    expect(err.message).to.include('Cannot serialize the result');
    // The encoder's failure travels as the cause.
    expect((err.cause as Error).message).to.equal('cannot encode');
  });
});

describe('RPCChannel method resolution (memory IO)', () => {
  afterEach(cleanUp);

  class Service {
    secret = 'hidden';
    hello(): string {
      return `hello, ${this.secret}`;
    }
  }
  const exposed = () => ({
    ok: () => 'ok',
    version: '1.0.0',
    count: 42,
    nested: { inner: () => 'inner', flag: true, nothing: null },
    fn: Object.assign(() => 'fn', { sub: () => 'sub' }),
    service: new Service(),
  });
  type Exposed = ReturnType<typeof exposed>;

  async function expectNotFound(p: Promise<unknown>, method: string): Promise<void> {
    await expect(p).to.be.rejectedWith(RPCMethodNotFoundError);
    const err = (await p.catch((e: unknown) => e)) as RPCMethodNotFoundError;
    expect(err.name).to.equal('RPCMethodNotFoundError');
    expect(err.code).to.equal('ERR_RPC_METHOD_NOT_FOUND');
    expect(err.method).to.equal(method);
    expect(err.message).to.include(`"${method}"`);
  }

  /** The untyped view of the proxy, to call paths the types forbid. */
  type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

  it('fails fast with RPCMethodNotFoundError for an unknown method (not a timeout)', async () => {
    const [a, b] = createMemoryIoPair();
    const server = new RPCChannel(a, { expose: exposed() });
    // A timeout far beyond mocha's: a wait for it would fail the test instead.
    const client = new RPCChannel<Record<string, never>, Exposed>(b, { timeout: 600_000 });
    open.push(server, client);
    const api = client.getAPI() as unknown as Loose;
    await expectNotFound(api.missing(), 'missing');
    await expectNotFound(api.nested.missing(), 'nested.missing');
    await expectNotFound(api.missing.deeper.still(), 'missing.deeper.still');
    expect(client.stats().timeouts).to.equal(0);
  });

  it('fails fast with RPCMethodNotFoundError when the peer exposes nothing', async () => {
    const [a, b] = createMemoryIoPair();
    const silent = new RPCChannel(a);
    const client = new RPCChannel<Record<string, never>, { any(): void }>(b, { timeout: 600_000 });
    open.push(silent, client);
    await expectNotFound(client.getAPI().any(), 'any');
  });

  it('refuses Object.prototype and Function.prototype members and the prototype-walking keys', async () => {
    const { api: typed } = setup(exposed());
    const api = typed as unknown as Loose;
    const refused = [
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'valueOf',
      'hasOwnProperty',
      'isPrototypeOf',
      'propertyIsEnumerable',
      '__defineGetter__',
      '__defineSetter__',
      '__lookupGetter__',
      'constructor.constructor',
      '__proto__.constructor',
      'ok.constructor',
      'ok.call',
      'ok.apply',
      'ok.bind',
      'ok.toString',
      'fn.prototype',
      'fn.__proto__',
      'nested.__proto__.toString',
      'service.constructor',
      'service.__proto__.hello',
      'service.toString',
      'service.hasOwnProperty',
    ];
    for (const path of refused) {
      // toString/valueOf/toJSON/then are answered by the proxy itself (never sent):
      // converting or logging a proxy must not issue a request.
      if (path.split('.').some((k) => ['toString', 'valueOf', 'toJSON', 'then'].includes(k))) {
        const parent = path.split('.').slice(0, -1).reduce((proxy: Loose, key) => proxy[key] as Loose, api);
        const member = parent[path.split('.').at(-1) as string] as unknown;
        expect(member === undefined || (typeof member === 'function' && String((member as () => string)()).startsWith('[RPC proxy')), path).to.equal(true);
        continue;
      }
      const fn = path.split('.').reduce((proxy: Loose, key) => proxy[key] as Loose, api) as unknown as () => Promise<unknown>;
      await expectNotFound(fn(), path);
    }
    // The exposed functions next to them still work.
    expect(await typed.ok()).to.equal('ok');
    expect(await typed.fn()).to.equal('fn');
    expect(await (api.fn as Loose).sub()).to.equal('sub'); // members of a function are not in the proxy type
    expect(await typed.service.hello()).to.equal('hello, hidden');
  });

  it('refuses paths that name or go through a non-function value', async () => {
    const { api: typed } = setup(exposed());
    const api = typed as unknown as Loose;
    for (const path of ['version', 'count', 'nested', 'nested.flag', 'service.secret', 'version.toString', 'version.at', 'count.toFixed', 'nested.flag.valueOf', 'nested.nothing.x', 'nested.inner.missing']) {
      // toString/valueOf/toJSON/then are answered by the proxy itself (never sent):
      // converting or logging a proxy must not issue a request.
      if (path.split('.').some((k) => ['toString', 'valueOf', 'toJSON', 'then'].includes(k))) {
        const parent = path.split('.').slice(0, -1).reduce((proxy: Loose, key) => proxy[key] as Loose, api);
        const member = parent[path.split('.').at(-1) as string] as unknown;
        expect(member === undefined || (typeof member === 'function' && String((member as () => string)()).startsWith('[RPC proxy')), path).to.equal(true);
        continue;
      }
      const fn = path.split('.').reduce((proxy: Loose, key) => proxy[key] as Loose, api) as unknown as () => Promise<unknown>;
      await expectNotFound(fn(), path);
    }
  });

  it('refuses a crafted request for constructor.constructor (no Function constructor reachable)', async () => {
    const { raw } = rawPeer(exposed());
    const answer = await rawCall(raw, { m: ['constructor', 'constructor'] }, sj.stringify(['return process']));
    expect(answer.kind).to.equal(MessageKind.Error);
    expect(answer.id).to.equal('raw-1');
    expect(answer.value.name).to.equal('RPCMethodNotFoundError');
    const viaProto = await rawCall(raw, { id: 'raw-2', m: ['ok', '__proto__', 'constructor'] }, sj.stringify([]));
    expect(viaProto.value.name).to.equal('RPCMethodNotFoundError');
  });
});

describe('RPCChannel prototype pollution (crafted messages)', () => {
  afterEach(cleanUp);

  afterEach(() => {
    // A failing test must not leave the pollution behind for the others.
    for (const key of ['polluted', 'viaCallback', 'viaMeta', 'viaError']) delete (Object.prototype as Record<string, unknown>)[key];
  });

  function expectClean(): void {
    const probe: Record<string, unknown> = {};
    for (const key of ['polluted', 'viaCallback', 'viaMeta', 'viaError']) {
      expect(probe[key], `Object.prototype.${key}`).to.equal(undefined);
      expect(Object.hasOwn(Object.prototype, key)).to.equal(false);
    }
  }

  it('does not pollute Object.prototype through __proto__ keys in the arguments (superjson and json)', async () => {
    const received: unknown[] = [];
    const { raw } = rawPeer({
      take: (arg: Record<string, unknown>) => {
        received.push(arg);
        const merged: Record<string, unknown> = { ...arg };
        return Object.keys(merged);
      },
    });
    const answer = await rawCall(raw, { m: ['take'] }, '{"json":[{"__proto__":{"polluted":"yes"},"a":1}]}');
    expect(answer.kind).to.equal(MessageKind.Result);
    expectClean();

    // The same through a JSON-serialized channel.
    const [rawJson, io] = createMemoryIoPair();
    const server = new RPCChannel(io, { serialization: 'json', expose: { take: (arg: unknown) => typeof arg } });
    open.push(server, rawJson);
    await rawJson.write({ data: encodeMessage({ v: 1, k: MessageKind.Request, id: 'j', m: ['take'], dl: Date.now() + 60_000 }, '[{"__proto__":{"polluted":"yes"}}]') });
    const reply = await rawJson.read();
    expect(reply).not.to.equal(null);
    expect(decodeMessage(reply?.data ?? '').header.k).to.equal(MessageKind.Result);
    expectClean();
  });

  it('rejects superjson metadata whose paths go through __proto__', async () => {
    const { raw } = rawPeer({ take: () => 'taken' });
    const answer = await rawCall(raw, { m: ['take'] }, '{"json":[{"a":1}],"meta":{"values":{"0.__proto__.viaMeta":["undefined"]}}}');
    expect(answer.kind).to.equal(MessageKind.Error);
    expect(answer.value.name).to.equal('RPCSerializationError');
    expectClean();
  });

  it('ignores callback paths through __proto__, constructor or prototype', async () => {
    let got: unknown;
    const { raw } = rawPeer({
      take: (arg: unknown) => {
        got = arg;
        return 'taken';
      },
    });
    const cb = [
      [0, '__proto__', 'viaCallback'],
      [0, 'constructor', 'prototype', 'viaCallback'],
      [0, 'inner', '__proto__', 'viaCallback'],
      [0, '__proto__'],
      [0, 'prototype'],
    ];
    const answer = await rawCall(raw, { m: ['take'], cb }, '{"json":[{"__proto__":{},"inner":{"__proto__":{}}}]}');
    expect(answer.kind).to.equal(MessageKind.Result);
    expect(answer.value).to.equal('taken');
    expectClean();
    const arg = got as Record<string, unknown>;
    expect(Object.getPrototypeOf(arg)).to.equal(Object.prototype);
    expect(typeof arg.prototype).to.equal('undefined');
  });

  it('does not pollute Object.prototype through __proto__ keys of a remote error', async () => {
    const [io, raw] = createMemoryIoPair();
    const client = new RPCChannel<Record<string, never>, { go(): void }>(io, { timeout: 5_000 });
    open.push(client, raw);
    const p = client.getAPI().go();
    const request = await raw.read();
    const { header } = decodeMessage(request?.data ?? '');
    const body = '{"json":{"name":"__proto__","message":"evil","props":{"__proto__":{"viaError":1},"code":"E_EVIL"},"cause":{"name":"constructor","message":"c","props":{"__proto__":{"viaError":2}}}}}';
    await raw.write({ data: encodeMessage({ v: 1, k: MessageKind.Error, id: header.id }, body) });
    await expect(p).to.be.rejectedWith(Error, 'evil');
    const err = (await p.catch((e: unknown) => e)) as Error & { code: string };
    expect(Object.getPrototypeOf(err)).to.equal(Error.prototype);
    expect(err.code).to.equal('E_EVIL');
    expect((err.cause as Error).message).to.equal('c');
    expectClean();
  });

  it('reports a request whose arguments are not an array as a protocol error to the caller', async () => {
    const { raw } = rawPeer({ take: () => 'taken' });
    const answer = await rawCall(raw, { m: ['take'] }, sj.stringify({ not: 'an array' }));
    expect(answer.kind).to.equal(MessageKind.Error);
    expect(answer.value.name).to.equal(new RPCProtocolError('x').name);
  });
});
