// The built-in serializers on their own: every binary class round-trips, and decoding any text
// costs time and memory linear in its length (payloads crafted to allocate or loop refuse fast).
import { expect } from 'chai';
import { RPCChannel, RPCSerializationError, createMemoryIoPair, jsonSerializer, superjsonSerializer, type Serializer } from '../../src/index.js';
import { decodeValue } from '../../src/protocol/serializer.js';

const float16 = (globalThis as { Float16Array?: new (buffer: ArrayBuffer, offset: number, length: number) => ArrayBufferView }).Float16Array;

/** Every TypedArray class this runtime has, with values that need all of its bits. */
const TYPED_ARRAYS: Array<[string, new (buffer: ArrayBuffer, offset: number, length: number) => ArrayBufferView]> = [
  ['Int8Array', Int8Array],
  ['Uint8Array', Uint8Array],
  ['Uint8ClampedArray', Uint8ClampedArray],
  ['Int16Array', Int16Array],
  ['Uint16Array', Uint16Array],
  ['Int32Array', Int32Array],
  ['Uint32Array', Uint32Array],
  ['Float32Array', Float32Array],
  ['Float64Array', Float64Array],
  ['BigInt64Array', BigInt64Array],
  ['BigUint64Array', BigUint64Array],
  ...(float16 === undefined ? [] : [['Float16Array', float16] as [string, typeof float16]]),
];

/** A buffer of 64 distinct bytes (with NaN, -0 and sign bits among them once viewed as numbers). */
function pattern(): ArrayBuffer {
  const bytes = new Uint8Array(64);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 255) & 0xff;
  return bytes.buffer;
}

function bytesOf(v: ArrayBufferView | ArrayBufferLike): number[] {
  return ArrayBuffer.isView(v) ? [...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)] : [...new Uint8Array(v)];
}

/** The decoded value must be of the right class, hold the same bytes and own its buffer. */
function expectSameBinary(back: unknown, sent: ArrayBufferView | ArrayBufferLike, className: string): void {
  expect(Object.prototype.toString.call(back)).to.equal(Object.prototype.toString.call(sent));
  expect((back as object).constructor.name).to.equal(className);
  expect(bytesOf(back as ArrayBufferView)).to.deep.equal(bytesOf(sent));
  if (ArrayBuffer.isView(back)) {
    expect(back.byteOffset, `${className} byteOffset`).to.equal(0);
    expect(back.buffer.byteLength, `${className} has its own buffer`).to.equal(back.byteLength);
    expect(back.buffer).to.not.equal((sent as ArrayBufferView).buffer);
  }
}

/** Each built-in binary class as a view on a larger buffer (at an aligned offset), or the buffer itself. */
function binaryValues(): Array<[string, ArrayBufferView | ArrayBufferLike]> {
  const values: Array<[string, ArrayBufferView | ArrayBufferLike]> = [];
  for (const [name, ctor] of TYPED_ARRAYS) values.push([name, new ctor(pattern(), 8, 32 / (ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT)]);
  values.push(['Buffer', Buffer.from(pattern(), 3, 20)]);
  values.push(['DataView', new DataView(pattern(), 5, 11)]);
  values.push(['ArrayBuffer', pattern()]);
  const shared = new SharedArrayBuffer(16);
  new Uint8Array(shared).set([1, 2, 3, 250]);
  values.push(['SharedArrayBuffer', shared]);
  values.push(['empty ArrayBuffer', new ArrayBuffer(0)]);
  values.push(['empty Float64Array', new Float64Array(0)]);
  return values;
}

/** Decodes through decodeValue as the channel does: every failure is an RPCSerializationError. */
function refusal(serializer: Serializer, text: string): RPCSerializationError {
  let caught: unknown;
  try {
    decodeValue(serializer, text, 'the bomb');
  } catch (err) {
    caught = err;
  }
  expect(caught).to.be.instanceOf(RPCSerializationError);
  const err = caught as RPCSerializationError;
  expect(err.code).to.equal('ERR_RPC_SERIALIZATION');
  expect(err.cause).to.be.instanceOf(Error);
  return err;
}

function superjsonText(json: unknown, meta: Record<string, unknown>): string {
  return JSON.stringify({ json, meta: { ...meta, v: 1 } });
}

/** Payloads that made the decoder allocate or loop far beyond their size. */
function bombs(): Array<[string, string]> {
  const setPaths: Record<string, unknown> = { s: ['set'] };
  const n = 50_000;
  for (let i = 0; i < n; i++) setPaths[`s.${i}`] = ['number'];
  const manyReads: string[] = [];
  for (let i = 0; i < 20_000; i++) manyReads.push(`s.${n - 1}`);
  let deepJson: unknown = [];
  let deepTree: unknown = ['set'];
  for (let i = 0; i < 300; i++) {
    deepJson = [deepJson];
    deepTree = ['set', { 0: deepTree }];
  }
  const numbers = Array.from({ length: n }, (_, i) => i);
  return [
    ['a Buffer whose base64 is {"length":1e8}', superjsonText({ length: 1e8 }, { values: [['custom', 'rsrpc:Buffer']] })],
    ['a Uint8Array whose base64 is {"length":1e8}', superjsonText({ length: 1e8 }, { values: [['custom', 'rsrpc:Uint8Array']] })],
    ['a nested Buffer whose base64 is {"length":1e8}', superjsonText({ a: [{ length: 1e8 }] }, { values: { 'a.0': [['custom', 'rsrpc:Buffer']] } })],
    ["superjson's own typed-array rule on {length: 1e8}", superjsonText({ length: 1e8 }, { values: [['typed-array', 'Float64Array']] })],
    ['50,000 value paths into one Set', superjsonText({ s: numbers }, { values: setPaths })],
    ['20,000 referentialEqualities reads at the end of a Set', superjsonText({ s: numbers, x: 0 }, { values: { s: ['set'] }, referentialEqualities: { 's.49999': ['x'], x: manyReads } })],
    ['Sets nested 300 deep', superjsonText(deepJson, { values: deepTree })],
    ['a BigInt of a million digits', superjsonText('9'.repeat(1_000_000), { values: ['bigint'] })],
  ];
}

describe('serializers: bounded decoding', () => {
  for (const [label, text] of bombs()) {
    it(`superjson refuses ${label} (${text.length} characters) fast and without allocating`, () => {
      const serializer = superjsonSerializer();
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      const started = performance.now();
      refusal(serializer, text);
      const elapsedMs = performance.now() - started;
      const grewMb = (process.memoryUsage().rss - rssBefore) / 1e6;
      // Generous bounds: before the guard these took 1 to 12 s and up to 100 MB.
      expect(elapsedMs, 'decode time (ms)').to.be.below(500);
      expect(grewMb, 'RSS growth (MB)').to.be.below(50);
    });
  }

  it('superjson throws RPCSerializationError itself, naming the limit, when the metadata costs too much', () => {
    const [, text] = bombs().find(([label]) => label.startsWith('20,000')) ?? [];
    expect(() => superjsonSerializer().parse(text ?? '')).to.throw(RPCSerializationError, /SUPERJSON_WORK_PER_CHAR/);
    const deep = bombs().find(([label]) => label.startsWith('Sets nested'))?.[1] ?? '';
    expect(() => superjsonSerializer().parse(deep)).to.throw(RPCSerializationError, /SUPERJSON_MAX_DEPTH/);
  });

  it('superjson refuses annotations it never writes for these types: class, symbol, unknown custom, unknown names', () => {
    const serializer = superjsonSerializer();
    for (const values of [
      [['class', 'Thing']],
      [['symbol', 'sym']],
      [['custom', 'someone-else:Rule']],
      [['typed-array', 'Float16Array']],
      ['Timestamp'],
      [['custom', 'rsrpc:Buffer'], { 0: ['Date'] }],
    ]) {
      expect(refusal(serializer, superjsonText('AA==', { values })).cause).to.be.instanceOf(RPCSerializationError);
    }
    // A missing meta.v means legacy superjson 1 paths, which this library never wrote.
    refusal(serializer, JSON.stringify({ json: 1, meta: { values: ['bigint'] } }));
  });

  it("superjson refuses JSON that superjson's own rules would build something else from", () => {
    const serializer = superjsonSerializer();
    for (const [json, values] of [
      [{ length: 3 }, ['set']],
      ['abc', ['map']],
      [[1, 2], ['bigint']],
      ['1 ', ['bigint']],
      ['42', ['number']],
      [{ toISOString: 1 }, ['Date']],
      [['1', { length: 2 }], [['typed-array', 'Int16Array']]],
      ['x', ['Error']],
      [[], { 1000000000: ['undefined'] }],
    ] as const) {
      refusal(serializer, superjsonText(json, { values }));
    }
    // A shared object written past the end of an array would stretch it to that length.
    refusal(serializer, superjsonText({ a: {}, list: [] }, { referentialEqualities: { a: ['list.100000000'] } }));
  });

  it('both serializers refuse binary values that are not base64 strings of whole elements', () => {
    const sj = superjsonSerializer();
    for (const [json, rule] of [
      [{ length: 8 }, 'rsrpc:Buffer'],
      [12, 'rsrpc:Uint8Array'],
      ['not base64!', 'rsrpc:Buffer'],
      [['F64', 'AAAA'], 'rsrpc:Binary'],
      [['Nope', 'AAAA'], 'rsrpc:Binary'],
      [['AB', { length: 1e8 }], 'rsrpc:Binary'],
      ['AAAA', 'rsrpc:Binary'],
    ] as const) {
      refusal(sj, superjsonText(json, { values: [['custom', rule]] }));
    }
    const json = jsonSerializer();
    for (const tagged of [
      { __rsrpc_bytes: { length: 1e8 }, t: 'B' },
      { __rsrpc_bytes: 'AAAA', t: 'F64' },
      { __rsrpc_bytes: 'AAAA', t: 'nope' },
      { __rsrpc_bytes: 'A', t: 'U' },
    ]) {
      refusal(json, JSON.stringify({ data: tagged }));
    }
  });

  it('superjson still decodes honest metadata: big Sets and Maps, nesting, shared objects, cycles', () => {
    const serializer = superjsonSerializer();
    const set = new Set(Array.from({ length: 20_000 }, (_, i) => BigInt(i)));
    const map = new Map(Array.from({ length: 5_000 }, (_, i) => [new Date(i), { at: new Date(i), n: i }]));
    const shared = { label: 'shared' };
    const value = { set, map, nested: new Map([['k', new Set([new Map([[1n, shared]])])]]), a: shared, b: [shared] };
    const back = serializer.parse(serializer.stringify(value)) as typeof value;
    expect(back.set.size).to.equal(20_000);
    expect([...back.set][19_999]).to.equal(19_999n);
    expect(back.map.size).to.equal(5_000);
    expect([...back.map][4_999]?.[1].at.getTime()).to.equal(4_999);
    expect(back.a).to.equal(back.b[0]);
    const inner = [...(back.nested.get('k') ?? [])][0]?.get(1n);
    expect(inner).to.deep.equal(shared);
    const cyclic: { self?: unknown; list: unknown[] } = { list: [] };
    cyclic.self = cyclic;
    cyclic.list.push(cyclic);
    const backCyclic = serializer.parse(serializer.stringify(cyclic)) as typeof cyclic;
    expect(backCyclic.self).to.equal(backCyclic);
    expect(backCyclic.list[0]).to.equal(backCyclic);
  });

  it('superjson decodes a payload with no meta straight from JSON, and a dropped value as undefined', () => {
    const serializer = superjsonSerializer();
    expect(serializer.parse('{"json":["x",1,null]}')).to.deep.equal(['x', 1, null]);
    expect(serializer.parse('{}')).to.equal(undefined);
    refusal(serializer, '[1]');
    refusal(serializer, '"json"');
  });
});

describe('serializers: binary values', () => {
  for (const serializer of [superjsonSerializer(), jsonSerializer()]) {
    it(`${serializer.name} round-trips every binary class with its class, bytes and own buffer`, () => {
      for (const [name, value] of binaryValues()) {
        const back = serializer.parse(serializer.stringify(value));
        expectSameBinary(back, value, name.replace(/^empty /, ''));
        const nested = serializer.parse(serializer.stringify({ list: [value], deep: { value } })) as { list: unknown[]; deep: { value: unknown } };
        expectSameBinary(nested.list[0], value, name.replace(/^empty /, ''));
        expectSameBinary(nested.deep.value, value, name.replace(/^empty /, ''));
      }
    });

    it(`${serializer.name} keeps every bit of floats (NaN payloads, -0, Infinity) and 64-bit integers`, () => {
      const floats = new Float64Array([Number.NaN, -0, Number.POSITIVE_INFINITY, -1.5e-308, Number.MAX_VALUE]);
      const back = serializer.parse(serializer.stringify(floats)) as Float64Array;
      expect(bytesOf(back)).to.deep.equal(bytesOf(floats));
      expect(Object.is(back[1], -0)).to.equal(true);
      const ints = new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, -1n]);
      expect([...(serializer.parse(serializer.stringify(ints)) as BigInt64Array)]).to.deep.equal([...ints]);
    });
  }

  it('superjson never writes its own lossy typed-array rule, and still reads it from older peers', () => {
    const serializer = superjsonSerializer();
    for (const [, value] of binaryValues()) expect(serializer.stringify(value)).to.not.include('typed-array');
    const legacy = serializer.parse(superjsonText([1, -2, null], { values: [['typed-array', 'Int16Array']] }));
    expect(legacy).to.be.instanceOf(Int16Array);
    expect([...(legacy as Int16Array)]).to.deep.equal([1, -2, 0]);
  });

  it('reads Buffer and Uint8Array as earlier versions wrote them', () => {
    const sj = superjsonSerializer();
    const buf = sj.parse('{"json":"AQID","meta":{"values":[["custom","rsrpc:Buffer"]],"v":1}}');
    expect(Buffer.isBuffer(buf)).to.equal(true);
    expect([...(buf as Buffer)]).to.deep.equal([1, 2, 3]);
    const bytes = sj.parse('{"json":{"b":"BAU="},"meta":{"values":{"b":[["custom","rsrpc:Uint8Array"]]},"v":1}}') as { b: Uint8Array };
    expect(bytes.b.constructor).to.equal(Uint8Array);
    expect([...bytes.b]).to.deep.equal([4, 5]);
    const json = jsonSerializer();
    expect(Buffer.isBuffer(json.parse('{"__rsrpc_bytes":"AQID","t":"B"}'))).to.equal(true);
    expect((json.parse('{"__rsrpc_bytes":"AQID","t":"U"}') as object).constructor).to.equal(Uint8Array);
  });
});

describe('serializers: through RPCChannel', () => {
  const open: RPCChannel<object, object>[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.destroy()));
  });

  interface EchoApi {
    echo(value: unknown): unknown;
  }

  function setup(server: Serializer, client: Serializer) {
    const [a, b] = createMemoryIoPair();
    const errors: Error[] = [];
    const serving = new RPCChannel<EchoApi, Record<string, never>>(a, { expose: { echo: (v) => v }, serialization: server });
    const calling = new RPCChannel<Record<string, never>, EchoApi>(b, { serialization: client, timeout: 5_000 });
    for (const channel of [serving, calling]) {
      channel.on('error', (e) => errors.push(e));
      open.push(channel as RPCChannel<object, object>);
    }
    return { api: calling.getAPI(), errors };
  }

  for (const make of [superjsonSerializer, jsonSerializer]) {
    it(`echo returns every binary class intact with ${make().name} (ArrayBuffer no longer arrives as {})`, async () => {
      const { api, errors } = setup(make(), make());
      const bytes = new Uint8Array([1, 2, 3]);
      expectSameBinary(await api.echo(bytes.buffer), bytes.buffer, 'ArrayBuffer');
      for (const [name, value] of binaryValues()) expectSameBinary(await api.echo(value), value, name.replace(/^empty /, ''));
      expect(errors).to.deep.equal([]);
    });
  }

  it('a request carrying a decoder bomb is answered with ERR_RPC_SERIALIZATION at once', async () => {
    const [, bomb] = bombs()[0] ?? [];
    const honest = superjsonSerializer();
    // The caller's serializer writes the bomb as the arguments; the server decodes with superjson.
    const sender: Serializer = { name: 'bomb', stringify: () => bomb ?? '', parse: (text) => honest.parse(text) };
    const { api } = setup(superjsonSerializer(), sender);
    const started = performance.now();
    const err = (await Promise.resolve(api.echo('x')).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: string } | undefined;
    expect(err).to.be.instanceOf(Error);
    expect(err?.code).to.equal('ERR_RPC_SERIALIZATION');
    expect(performance.now() - started).to.be.below(1_000);
  });
});
