import { SuperJSON, type SuperJSONResult } from 'superjson';
import { RPCInvalidArgumentError, RPCSerializationError } from '../errors.js';
import { decodeBase64, decodeBinary, encodeBinary, isOtherBinary, isPlainUint8Array, type EncodedBinary } from './binary.js';
import { checkSuperjsonPayload } from './superjson-guard.js';

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

/** Names of the custom rules on the private SuperJSON instance; the guard accepts no other `custom` annotation. */
const BUFFER_RULE = 'rsrpc:Buffer';
const UINT8_RULE = 'rsrpc:Uint8Array';
const BINARY_RULE = 'rsrpc:Binary';
const CUSTOM_RULES: ReadonlySet<string> = new Set([BUFFER_RULE, UINT8_RULE, BINARY_RULE]);

function createSuperjson(): SuperJSON {
  // A private instance: registering our byte transformers must not change the
  // global superjson that the application may also use.
  const sj = new SuperJSON();
  // Buffer and Uint8Array keep their original rules (a base64 string) so the
  // wire stays compatible; every other binary class travels as [code, base64].
  // These come before superjson's own `typed-array` rule, which is lossy (NaN
  // and -0 become null and 0) and never written by this serializer.
  sj.registerCustom<Buffer, string>(
    {
      isApplicable: (v): v is Buffer => Buffer.isBuffer(v),
      serialize: (v) => v.toString('base64'),
      deserialize: (v) => decodeBase64(v),
    },
    BUFFER_RULE,
  );
  sj.registerCustom<Uint8Array, string>(
    {
      isApplicable: isPlainUint8Array,
      serialize: (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'),
      deserialize: (v) => decodeBinary('U', v) as Uint8Array,
    },
    UINT8_RULE,
  );
  sj.registerCustom<object, [string, string]>(
    {
      isApplicable: (v): v is object => isOtherBinary(v),
      serialize: (v) => {
        const encoded = encodeBinary(v) as EncodedBinary;
        return [encoded.code, encoded.base64];
      },
      deserialize: (v) => {
        if (!Array.isArray(v) || v.length !== 2) throw new TypeError('binary value: expected [code, base64]');
        return decodeBinary(v[0], v[1]) as object;
      },
    },
    BINARY_RULE,
  );
  return sj;
}

/**
 * superjson: Date, Map, Set, BigInt, RegExp, URL, Error, undefined,
 * NaN/Infinity/-0, nested, plus Buffer, ArrayBuffer, SharedArrayBuffer,
 * DataView and every TypedArray. The default.
 *
 * Decoding costs time and memory linear in the text: metadata that would make
 * superjson's path walks superlinear, annotations it would not write for
 * these types, and oversized BigInts are refused (see the README's "Wire
 * format and serialization").
 */
export function superjsonSerializer(): Serializer {
  const sj = createSuperjson();
  return {
    name: 'superjson',
    stringify: (value) => {
      // Fast path: plain data (see isPlainData) needs no superjson metadata,
      // and superjson would write exactly this for it, after a much dearer walk.
      if (isPlainData(value)) return JSON.stringify({ json: value });
      return sj.stringify(value);
    },
    parse: (text) => {
      // One JSON.parse: the guard reads the parsed object and superjson
      // applies it in place, as SuperJSON#parse does. Without meta (the common
      // case) there is nothing for superjson to do.
      const payload = checkSuperjsonPayload(JSON.parse(text), text.length, CUSTOM_RULES);
      return payload.meta === undefined ? payload.json : sj.deserialize(payload as unknown as SuperJSONResult, { inPlace: true });
    },
  };
}

/** Most values {@link isPlainData} looks at before leaving a value to superjson's own walk. */
const PLAIN_SCAN_LIMIT = 4096;
/** Deepest nesting {@link isPlainData} follows. */
const PLAIN_SCAN_DEPTH = 32;
/** Most objects and arrays {@link isPlainData} accepts in one value. */
const PLAIN_SCAN_OBJECTS = 64;

/**
 * Whether `value` is plain data that superjson would encode with no metadata:
 * strings, booleans, null, finite numbers other than -0, arrays (without
 * holes) and objects whose prototype is `Object.prototype` or null, each
 * object met once (superjson records shared references), no `__proto__` key,
 * and small enough to check cheaply. Anything else (undefined, a Date, a Map,
 * a class instance, a function, a shared or circular reference) answers
 * false and goes through superjson.
 */
function isPlainData(value: unknown): boolean {
  // A scalar needs no walk state.
  if (typeof value !== 'object' || value === null) return isPlainScalar(value);
  const scan: PlainScan = { budget: PLAIN_SCAN_LIMIT, seen: [] };
  return isPlainObjectTree(value, 0, scan);
}

/** State of one {@link isPlainData} walk. */
interface PlainScan {
  budget: number;
  /** Objects met so far: few in the common case, so a list beats a Set. */
  readonly seen: object[];
}

function isPlainScalar(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0);
    default:
      return v === null;
  }
}

function isPlainObjectTree(v: object, depth: number, scan: PlainScan): boolean {
  if (depth >= PLAIN_SCAN_DEPTH || scan.seen.includes(v)) return false;
  scan.seen.push(v);
  const proto: unknown = Object.getPrototypeOf(v);
  if (Array.isArray(v)) {
    if (proto !== Array.prototype) return false;
    for (let i = 0; i < v.length; i++) if (!isPlainMember(v[i], depth, scan)) return false;
    return true;
  }
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key of Object.keys(v)) {
    if (key === '__proto__' || !isPlainMember((v as Record<string, unknown>)[key], depth, scan)) return false;
  }
  return true;
}

function isPlainMember(v: unknown, depth: number, scan: PlainScan): boolean {
  if (--scan.budget < 0) return false;
  if (typeof v !== 'object' || v === null) return isPlainScalar(v);
  // Past a few dozen objects the linear `seen` search would cost more than superjson's walk.
  if (scan.seen.length >= PLAIN_SCAN_OBJECTS) return false;
  return isPlainObjectTree(v, depth + 1, scan);
}

const BYTES_TAG = '__rsrpc_bytes';

/**
 * Plain JSON, plus Buffer, ArrayBuffer, SharedArrayBuffer, DataView and every
 * TypedArray, each as `{"__rsrpc_bytes": base64, "t": code}` (`B` Buffer,
 * `U` Uint8Array, `AB`, `SAB`, `DV`, `I8`, `U8C`, `I16`, `U16`, `I32`, `U32`,
 * `F16`, `F32`, `F64`, `BI64`, `BU64`). Dates arrive as ISO strings, Maps
 * and Sets as `{}`, BigInt throws.
 */
export function jsonSerializer(): Serializer {
  function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
    // `this[key]` is the value before toJSON (a Buffer's toJSON is a list of numbers).
    const encoded = encodeBinary(this[key]);
    return encoded === undefined ? value : { [BYTES_TAG]: encoded.base64, t: encoded.code };
  }
  function reviver(_key: string, value: unknown): unknown {
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, BYTES_TAG)) {
      const tagged = value as Record<string, unknown>;
      return decodeBinary(tagged.t, tagged[BYTES_TAG]);
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
