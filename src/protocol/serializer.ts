import { SuperJSON } from 'superjson';
import { RPCInvalidArgumentError, RPCSerializationError } from '../errors.js';

/**
 * Turns values into strings and back. The channel encodes each payload with
 * one `stringify` call and decodes it with one `parse` call.
 */
export interface Serializer {
  /** Name shown in errors. */
  readonly name: string;
  /** Encodes a value. May throw on values it cannot represent. */
  stringify(value: unknown): string;
  /** Decodes what {@link Serializer.stringify} produced. */
  parse(text: string): unknown;
}

/** Built-in serializers by name, or your own {@link Serializer}. */
export type SerializationOption = 'superjson' | 'json' | Serializer;

function createSuperjson(): SuperJSON {
  // A private instance: registering our byte transformers must not change the
  // global superjson that the application may also use.
  const sj = new SuperJSON();
  sj.registerCustom<Buffer, string>(
    {
      isApplicable: (v): v is Buffer => Buffer.isBuffer(v),
      serialize: (v) => v.toString('base64'),
      deserialize: (v) => Buffer.from(v, 'base64'),
    },
    'rsrpc:Buffer',
  );
  sj.registerCustom<Uint8Array, string>(
    {
      isApplicable: (v): v is Uint8Array => v instanceof Uint8Array && !Buffer.isBuffer(v),
      serialize: (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'),
      deserialize: (v) => new Uint8Array(Buffer.from(v, 'base64')),
    },
    'rsrpc:Uint8Array',
  );
  return sj;
}

/**
 * superjson: Date, Map, Set, BigInt, RegExp, undefined, NaN/Infinity, nested,
 * plus Buffer and Uint8Array. The default.
 */
export function superjsonSerializer(): Serializer {
  const sj = createSuperjson();
  return {
    name: 'superjson',
    stringify: (value) => {
      // Fast path: values made only of strings, finite numbers, booleans and
      // null need no superjson metadata, so skip its walk.
      if (isJsonScalar(value) || (Array.isArray(value) && value.length <= 16 && value.every(isJsonScalar))) {
        return JSON.stringify({ json: value });
      }
      return sj.stringify(value);
    },
    parse: (text) => sj.parse(text),
  };
}

function isJsonScalar(v: unknown): boolean {
  const t = typeof v;
  return t === 'string' || t === 'boolean' || v === null || (t === 'number' && Number.isFinite(v) && !Object.is(v, -0));
}

const BYTES_TAG = '__rsrpc_bytes';

/**
 * Plain JSON, plus Buffer and Uint8Array (as `{"__rsrpc_bytes": base64, "t": "B"|"U"}`).
 * Dates arrive as ISO strings, Maps and Sets as `{}`, BigInt throws.
 */
export function jsonSerializer(): Serializer {
  function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
    const original = this[key];
    if (original instanceof Uint8Array) {
      const buf = Buffer.isBuffer(original) ? original : Buffer.from(original.buffer, original.byteOffset, original.byteLength);
      return { [BYTES_TAG]: buf.toString('base64'), t: Buffer.isBuffer(original) ? 'B' : 'U' };
    }
    return value;
  }
  function reviver(_key: string, value: unknown): unknown {
    if (typeof value === 'object' && value !== null && BYTES_TAG in value) {
      const tagged = value as Record<string, unknown>;
      const b64 = tagged[BYTES_TAG];
      if (typeof b64 === 'string') {
        const buf = Buffer.from(b64, 'base64');
        return tagged.t === 'B' ? buf : new Uint8Array(buf);
      }
    }
    return value;
  }
  return {
    name: 'json',
    stringify: (value) => {
      const text = JSON.stringify(value === undefined ? null : value, replacer);
      return text;
    },
    parse: (text) => JSON.parse(text, reviver) as unknown,
  };
}

/** Resolves the `serialization` option. */
export function resolveSerializer(option: SerializationOption | undefined): Serializer {
  if (option === undefined || option === 'superjson') return superjsonSerializer();
  if (option === 'json') return jsonSerializer();
  if (typeof option === 'object' && option !== null && typeof option.stringify === 'function' && typeof option.parse === 'function') {
    return option;
  }
  throw new RPCInvalidArgumentError('serialization', `expected "superjson", "json" or a Serializer object, got ${JSON.stringify(option) ?? typeof option}`);
}

/** What a value is, for an error message; a function when building the text costs something (built only on failure). */
export type ValueDescription = string | (() => string);

function describe(what: ValueDescription): string {
  return typeof what === 'string' ? what : what();
}

/** Encodes with `serializer`, wrapping failures in {@link RPCSerializationError}. */
export function encodeValue(serializer: Serializer, value: unknown, what: ValueDescription): string {
  try {
    return serializer.stringify(value);
  } catch (cause) {
    throw new RPCSerializationError(`Cannot serialize ${describe(what)} with ${serializer.name}`, { cause });
  }
}

/** Decodes with `serializer`, wrapping failures in {@link RPCSerializationError}. */
export function decodeValue(serializer: Serializer, text: string, what: ValueDescription): unknown {
  try {
    return serializer.parse(text);
  } catch (cause) {
    throw new RPCSerializationError(`Cannot deserialize ${describe(what)} with ${serializer.name}`, { cause });
  }
}
