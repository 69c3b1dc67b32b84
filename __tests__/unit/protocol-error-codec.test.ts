// Errors as plain data and back, without a channel; and the serializers' own contract.
import { expect } from 'chai';
import {
  RPCChannelClosedError,
  RPCDeliveryError,
  RPCError,
  RPCInvalidArgumentError,
  RPCMethodNotFoundError,
  RPCProtocolError,
  RPCQueueOverflowError,
  RPCSerializationError,
  RPCTimeoutError,
  RedisStreamsConnectionError,
  RedisStreamsDestroyedError,
  jsonSerializer,
  superjsonSerializer,
} from '../../src/index.js';
import { deserializeError, serializeError } from '../../src/protocol/error-codec.js';
import { decodeValue, encodeValue, resolveSerializer } from '../../src/protocol/serializer.js';

/** Through JSON text, as on the wire with the json serializer. */
function roundTrip(thrown: unknown): Error {
  return deserializeError(JSON.parse(JSON.stringify(serializeError(thrown))) as unknown);
}

describe('protocol error codec', () => {
  it('shows why it exists: JSON.stringify(new Error()) loses everything', () => {
    expect(JSON.stringify(new Error('x'))).to.equal('{}');
    const back = roundTrip(new Error('x'));
    expect(back).to.be.instanceOf(Error);
    expect(back.message).to.equal('x');
    expect(back.name).to.equal('Error');
  });

  const libraryErrors: [RPCError, Record<string, unknown>][] = [
    [new RPCTimeoutError('a.b', 10), { method: 'a.b', timeoutMs: 10 }],
    [new RPCChannelClosedError('closed'), {}],
    [new RPCMethodNotFoundError('m'), { method: 'm' }],
    [new RPCProtocolError('bad', '1-0'), { entryId: '1-0' }],
    [new RPCDeliveryError('dead', 5), { deliveries: 5 }],
    [new RPCInvalidArgumentError('opt', 'bad'), { argument: 'opt' }],
    [new RPCQueueOverflowError(3, 9), { dropped: 9 }],
    [new RPCSerializationError('ser'), {}],
    [new RedisStreamsConnectionError('down'), {}],
    [new RedisStreamsDestroyedError('write'), {}],
  ];
  for (const [error, fields] of libraryErrors) {
    it(`rebuilds ${error.name} with its class, code and fields`, () => {
      const back = roundTrip(error) as RPCError;
      expect(back).to.be.instanceOf(error.constructor as new () => RPCError);
      expect(back).to.be.instanceOf(RPCError);
      expect(back.name).to.equal(error.name);
      expect(back.code).to.equal(error.code);
      expect(back.message).to.equal(error.message);
      expect(back).to.include(fields);
      expect(back.stack).to.equal(error.stack);
    });
  }

  for (const Ctor of [TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) {
    it(`keeps ${Ctor.name} a ${Ctor.name}`, () => {
      const back = roundTrip(new Ctor('builtin'));
      expect(back).to.be.instanceOf(Ctor);
      expect(back.name).to.equal(Ctor.name);
      expect(Object.keys(back)).to.deep.equal([]);
    });
  }

  it('keeps a custom name on a plain Error, never a prototype chosen by the peer', () => {
    for (const name of ['MyError', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'Object']) {
      const back = deserializeError({ name, message: 'm' });
      expect(Object.getPrototypeOf(back)).to.equal(Error.prototype);
      expect(back.name).to.equal(name);
    }
  });

  it('stops a cause chain at its depth limit, even a cyclic one', () => {
    const cyclic = new Error('loop');
    (cyclic as { cause?: unknown }).cause = cyclic;
    let back: unknown = roundTrip(cyclic);
    let depth = 0;
    while (back instanceof Error) {
      back = back.cause;
      depth++;
    }
    expect(depth).to.be.within(2, 10);
    expect(back).to.equal('Error: loop');
  });

  it('turns malformed error data into a plain Error naming it', () => {
    expect(deserializeError(null).message).to.equal('Malformed remote error: null');
    expect(deserializeError({ name: 1, message: 'x' }).message).to.include('Malformed remote error');
    expect(deserializeError('str').message).to.equal('Malformed remote error: "str"');
  });
});

describe('protocol serializers', () => {
  it('resolves built-in names and custom objects, and names the option when it cannot', () => {
    expect(resolveSerializer(undefined).name).to.equal('superjson');
    expect(resolveSerializer('superjson').name).to.equal('superjson');
    expect(resolveSerializer('json').name).to.equal('json');
    const custom = { name: 'c', stringify: String, parse: (t: string) => t };
    expect(resolveSerializer(custom)).to.equal(custom);
    expect(() => resolveSerializer('yaml' as 'json')).to.throw(RPCInvalidArgumentError, '"serialization"');
  });

  it('wraps encode and decode failures in RPCSerializationError with the cause', () => {
    const json = jsonSerializer();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => encodeValue(json, circular, 'the thing')).to.throw(RPCSerializationError, 'Cannot serialize the thing with json');
    try {
      decodeValue(superjsonSerializer(), '{', 'the other thing');
      expect.fail('decodeValue should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(RPCSerializationError);
      expect((err as RPCSerializationError).message).to.equal('Cannot deserialize the other thing with superjson');
      expect((err as RPCSerializationError).cause).to.be.instanceOf(SyntaxError);
    }
  });

  it('keeps newlines inside values (the envelope does not need one-line payloads)', () => {
    for (const s of [superjsonSerializer(), jsonSerializer()]) {
      expect(s.parse(s.stringify({ text: 'a\nb' }))).to.deep.equal({ text: 'a\nb' });
    }
  });
});
