/**
 * Binary values (Buffer, ArrayBuffer, SharedArrayBuffer, DataView, every
 * TypedArray) as a short type code plus the bytes in base64, shared by both
 * built-in serializers.
 *
 * Decoding takes only a string and allocates exactly the bytes that string
 * holds (at most 3/4 of its length), so no length field or object from the
 * wire decides an allocation.
 *
 * @module
 */
import { endianness } from 'node:os';
import { types } from 'node:util';

/** A typed-array constructor (the ones this runtime has). */
interface TypedArrayClass {
  readonly BYTES_PER_ELEMENT: number;
  new (buffer: ArrayBuffer): ArrayBufferView;
}

/** `Float16Array` is recent (Node 24+); it is used only where the runtime has it. */
const float16: TypedArrayClass | undefined = (globalThis as { Float16Array?: TypedArrayClass }).Float16Array;

type Test = (v: object) => boolean;
/** Float16Array has no `util.types` check in every Node version that has the class. */
const isFloat16Array: Test = (v) => float16 !== undefined && v instanceof float16;

/**
 * Wire code of each typed-array class, with a check that also recognises a
 * subclass or an array from another realm (`util.types`). Multi-byte elements
 * travel little-endian.
 */
const TYPED_ARRAYS: ReadonlyArray<readonly [code: string, name: string, ctor: TypedArrayClass | undefined, test: Test]> = [
  ['U', 'Uint8Array', Uint8Array, types.isUint8Array],
  ['I8', 'Int8Array', Int8Array, types.isInt8Array],
  ['U8C', 'Uint8ClampedArray', Uint8ClampedArray, types.isUint8ClampedArray],
  ['I16', 'Int16Array', Int16Array, types.isInt16Array],
  ['U16', 'Uint16Array', Uint16Array, types.isUint16Array],
  ['I32', 'Int32Array', Int32Array, types.isInt32Array],
  ['U32', 'Uint32Array', Uint32Array, types.isUint32Array],
  ['F16', 'Float16Array', float16, isFloat16Array],
  ['F32', 'Float32Array', Float32Array, types.isFloat32Array],
  ['F64', 'Float64Array', Float64Array, types.isFloat64Array],
  ['BI64', 'BigInt64Array', BigInt64Array, types.isBigInt64Array],
  ['BU64', 'BigUint64Array', BigUint64Array, types.isBigUint64Array],
];

/** `B` and `U` are the two original codes (Buffer, Uint8Array); the rest came later. */
const BUFFER = 'B';
const ARRAY_BUFFER = 'AB';
const SHARED_ARRAY_BUFFER = 'SAB';
const DATA_VIEW = 'DV';

interface TypedArrayInfo {
  readonly name: string;
  readonly ctor: TypedArrayClass | undefined;
}
const typedByCode = new Map<string, TypedArrayInfo>(TYPED_ARRAYS.map(([code, name, ctor]) => [code, { name, ctor }]));

const BIG_ENDIAN = endianness() === 'BE';

/** A binary value as it travels: a type code and its bytes in base64. */
export interface EncodedBinary {
  readonly code: string;
  readonly base64: string;
}

/** The wire code of a binary value, or undefined when `v` is not one. */
export function codeOf(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  if (ArrayBuffer.isView(v)) {
    if (Buffer.isBuffer(v)) return BUFFER;
    if (types.isDataView(v)) return DATA_VIEW;
    // A subclass (other than Buffer) travels as its built-in class.
    for (const [code, , , test] of TYPED_ARRAYS) if (test(v)) return code;
    return undefined;
  }
  if (types.isArrayBuffer(v)) return ARRAY_BUFFER;
  if (types.isSharedArrayBuffer(v)) return SHARED_ARRAY_BUFFER;
  return undefined;
}

/** True for a Uint8Array (or subclass) of this realm that is not a Buffer: the `rsrpc:Uint8Array` rule. */
export function isPlainUint8Array(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && !Buffer.isBuffer(v);
}

/**
 * True for every binary value other than a Buffer and a {@link isPlainUint8Array}
 * (those two have their own superjson rules). Cheap for non-objects: superjson
 * asks it about every value it walks.
 */
export function isOtherBinary(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || isPlainUint8Array(v) || Buffer.isBuffer(v)) return false;
  return codeOf(v) !== undefined;
}

/**
 * Encodes a binary value: the bytes it covers (a view's own window on its
 * buffer, not the whole buffer), base64.
 *
 * @returns The code and bytes, or undefined when `v` is not a binary value.
 */
export function encodeBinary(v: unknown): EncodedBinary | undefined {
  const code = codeOf(v);
  if (code === undefined) return undefined;
  let bytes: Buffer;
  if (code === ARRAY_BUFFER || code === SHARED_ARRAY_BUFFER) {
    bytes = Buffer.from(v as ArrayBuffer);
  } else {
    const view = v as ArrayBufferView;
    bytes = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
    const size = typedByCode.get(code)?.ctor?.BYTES_PER_ELEMENT ?? 1;
    if (BIG_ENDIAN && size > 1) bytes = toLittleEndian(Buffer.from(bytes), size);
  }
  return { code, base64: bytes.toString('base64') };
}

/**
 * Decodes what {@link encodeBinary} produced into a new value of the right
 * class with its own buffer of exactly its size.
 *
 * @param code - The type code from the wire.
 * @param base64 - The bytes from the wire; anything but a canonical base64 string is refused.
 * @throws TypeError or RangeError naming the problem: not a string, not base64,
 *   an unknown code, a class this runtime lacks, a length that is not a
 *   multiple of the element size.
 */
export function decodeBinary(code: unknown, base64: unknown): unknown {
  if (typeof code !== 'string') throw new TypeError(`binary value: expected a type code string, got ${typeof code}`);
  const typed = typedByCode.get(code);
  if (typed === undefined && code !== BUFFER && code !== ARRAY_BUFFER && code !== SHARED_ARRAY_BUFFER && code !== DATA_VIEW) {
    throw new TypeError(`binary value: unknown type code ${JSON.stringify(code.slice(0, 20))}`);
  }
  if (typed !== undefined && typed.ctor === undefined) throw new TypeError(`binary value: ${typed.name} is not available in this runtime`);
  const bytes = decodeBase64(base64);
  switch (code) {
    case BUFFER:
      return bytes;
    case ARRAY_BUFFER:
      return bytes.buffer;
    case SHARED_ARRAY_BUFFER: {
      const shared = new SharedArrayBuffer(bytes.length);
      new Uint8Array(shared).set(bytes);
      return shared;
    }
    case DATA_VIEW:
      return new DataView(bytes.buffer, 0, bytes.length);
  }
  const ctor = typed?.ctor as TypedArrayClass;
  const size = ctor.BYTES_PER_ELEMENT;
  if (bytes.length % size !== 0) {
    throw new RangeError(`binary value: ${bytes.length} bytes is not a whole number of ${typed?.name} elements (${size} bytes each)`);
  }
  if (BIG_ENDIAN && size > 1) toLittleEndian(bytes, size);
  return new ctor(bytes.buffer as ArrayBuffer);
}

/**
 * Decodes base64 into a Buffer that owns an ArrayBuffer of exactly its length
 * (not a slice of Node's shared pool), so a typed array can be laid over it
 * at offset 0. The size comes from the text's length (3 bytes per 4
 * characters), never from anything else on the wire.
 *
 * @throws TypeError when `text` is not a string or not padded base64: Node's
 *   decoder skips characters outside the alphabet, so the bytes written then
 *   fall short of the size (checking the count costs nothing, a regular
 *   expression over the text costs more than decoding it).
 */
export function decodeBase64(text: unknown): Buffer {
  if (typeof text !== 'string') throw new TypeError(`binary value: expected a base64 string, got ${text === null ? 'null' : typeof text}`);
  if (text.length % 4 !== 0) throw new TypeError(`binary value: not padded base64 (${text.length} characters)`);
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const size = (text.length / 4) * 3 - padding;
  const out = Buffer.allocUnsafeSlow(size);
  if (out.write(text, 'base64') !== size) throw new TypeError(`binary value: not base64 (${text.length} characters)`);
  return out;
}

/** The wire is little-endian; on a big-endian host swap each element in place. */
function toLittleEndian(bytes: Buffer, size: number): Buffer {
  if (size === 2) bytes.swap16();
  else if (size === 4) bytes.swap32();
  else if (size === 8) bytes.swap64();
  return bytes;
}
