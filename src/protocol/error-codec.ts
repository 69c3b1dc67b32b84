/**
 * Errors cross the wire as plain data ({@link SerializedError}) and are rebuilt
 * on arrival with the same name, message, code, own fields and cause.
 * (`JSON.stringify(new Error('x'))` is `{}`; this is why.)
 *
 * @module
 */
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
} from '../errors.js';

/** An error as plain data. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** Own enumerable properties other than name/message/stack/cause (code included). */
  props?: Record<string, unknown>;
  /** The cause: another error, or any value under `value`. */
  cause?: SerializedError | { value: unknown };
}

const MAX_CAUSE_DEPTH = 8;
const SKIPPED = new Set(['name', 'message', 'stack', 'cause']);

/** Converts a thrown value into plain data. */
export function serializeError(thrown: unknown, depth = 0): SerializedError {
  if (!(thrown instanceof Error)) {
    return { name: 'Error', message: typeof thrown === 'string' ? thrown : `Non-error thrown: ${safeString(thrown)}`, props: { thrownValue: thrown } };
  }
  const out: SerializedError = { name: thrown.name, message: thrown.message };
  if (thrown.stack !== undefined) out.stack = thrown.stack;
  const props: Record<string, unknown> = {};
  let any = false;
  for (const key of Object.keys(thrown)) {
    if (SKIPPED.has(key) || key === '__proto__') continue;
    props[key] = (thrown as unknown as Record<string, unknown>)[key];
    any = true;
  }
  if (any) out.props = props;
  if ('cause' in thrown && thrown.cause !== undefined) {
    const cause = thrown.cause;
    if (depth < MAX_CAUSE_DEPTH && cause instanceof Error) out.cause = serializeError(cause, depth + 1);
    else out.cause = { value: cause instanceof Error ? `${cause.name}: ${cause.message}` : cause };
  }
  return out;
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

type Prototype = object;

const BUILTIN: Record<string, Prototype> = {
  Error: Error.prototype,
  TypeError: TypeError.prototype,
  RangeError: RangeError.prototype,
  SyntaxError: SyntaxError.prototype,
  ReferenceError: ReferenceError.prototype,
  EvalError: EvalError.prototype,
  URIError: URIError.prototype,
};

const LIBRARY: Record<string, Prototype> = {
  RPCTimeoutError: RPCTimeoutError.prototype,
  RPCChannelClosedError: RPCChannelClosedError.prototype,
  RPCMethodNotFoundError: RPCMethodNotFoundError.prototype,
  RPCProtocolError: RPCProtocolError.prototype,
  RPCDeliveryError: RPCDeliveryError.prototype,
  RPCInvalidArgumentError: RPCInvalidArgumentError.prototype,
  RPCQueueOverflowError: RPCQueueOverflowError.prototype,
  RPCSerializationError: RPCSerializationError.prototype,
  RedisStreamsConnectionError: RedisStreamsConnectionError.prototype,
  RedisStreamsDestroyedError: RedisStreamsDestroyedError.prototype,
};

function isSerializedError(v: unknown): v is SerializedError {
  return typeof v === 'object' && v !== null && typeof (v as SerializedError).name === 'string' && typeof (v as SerializedError).message === 'string';
}

/**
 * Rebuilds an Error from {@link serializeError} output. Library errors and the
 * built-in error classes keep their prototype, so `instanceof` works; any other
 * name is kept as the `name` of a plain `Error`. Nothing here can set a prototype
 * from message content: keys are copied with defineProperty, `__proto__` skipped.
 */
export function deserializeError(data: unknown, depth = 0): Error {
  if (!isSerializedError(data)) return new Error(`Malformed remote error: ${safeString(data)}`);
  const proto = Object.hasOwn(LIBRARY, data.name) ? LIBRARY[data.name] : Object.hasOwn(BUILTIN, data.name) ? BUILTIN[data.name] : undefined;
  const err = new Error(data.message);
  if (proto !== undefined) Object.setPrototypeOf(err, proto);
  if (proto === undefined || proto instanceof RPCError) define(err, 'name', data.name, true);
  if (typeof data.stack === 'string') define(err, 'stack', data.stack, false);
  if (data.props !== undefined && typeof data.props === 'object' && data.props !== null) {
    for (const key of Object.keys(data.props)) {
      if (key === '__proto__' || SKIPPED.has(key)) continue;
      define(err, key, data.props[key], true);
    }
  }
  if (data.cause !== undefined && data.cause !== null) {
    const cause = 'value' in data.cause && !('message' in data.cause) ? data.cause.value : depth < MAX_CAUSE_DEPTH ? deserializeError(data.cause, depth + 1) : undefined;
    define(err, 'cause', cause, false);
  }
  return err;
}

function define(target: object, key: string, value: unknown, enumerable: boolean): void {
  Object.defineProperty(target, key, { value, enumerable, writable: true, configurable: true });
}
