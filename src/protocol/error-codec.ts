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
  RPCPayloadTooLargeError,
  RPCProtocolError,
  RPCQueueOverflowError,
  RPCSerializationError,
  RPCTimeoutError,
  RedisStreamsConnectionError,
  RedisStreamsDestroyedError,
  RedisStreamsPermissionError,
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

/**
 * Converts a thrown value into plain data. Never throws: a thrown value whose
 * getters throw, or a Proxy, still becomes an error description.
 *
 * @param withStack - Whether stacks (this side's file paths) travel; see the channel's `remoteStacks`.
 */
export function serializeError(thrown: unknown, withStack = true, depth = 0): SerializedError {
  try {
    return describeThrown(thrown, withStack, depth);
  } catch {
    return { name: 'Error', message: 'The remote handler threw a value that could not be read' };
  }
}

function describeThrown(thrown: unknown, withStack: boolean, depth: number): SerializedError {
  if (!(thrown instanceof Error)) {
    return { name: 'Error', message: typeof thrown === 'string' ? thrown : `Non-error thrown: ${safeString(thrown)}`, props: { thrownValue: thrown } };
  }
  const out: SerializedError = { name: String(thrown.name), message: String(thrown.message) };
  if (withStack && typeof thrown.stack === 'string') out.stack = thrown.stack;
  const props: Record<string, unknown> = {};
  let any = false;
  for (const key of Object.keys(thrown)) {
    if (SKIPPED.has(key) || key === '__proto__') continue;
    // Own data properties only: an accessor is never run on the error path.
    const descriptor = Object.getOwnPropertyDescriptor(thrown, key);
    if (descriptor === undefined || !('value' in descriptor)) continue;
    props[key] = descriptor.value;
    any = true;
  }
  if (any) out.props = props;
  const causeDescriptor = Object.getOwnPropertyDescriptor(thrown, 'cause');
  const cause: unknown = causeDescriptor !== undefined && 'value' in causeDescriptor ? causeDescriptor.value : undefined;
  if (cause !== undefined) {
    if (depth < MAX_CAUSE_DEPTH && cause instanceof Error) out.cause = serializeError(cause, withStack, depth + 1);
    else out.cause = { value: cause instanceof Error ? `${String(cause.name)}: ${String(cause.message)}` : cause };
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
  RPCPayloadTooLargeError: RPCPayloadTooLargeError.prototype,
  RedisStreamsConnectionError: RedisStreamsConnectionError.prototype,
  RedisStreamsDestroyedError: RedisStreamsDestroyedError.prototype,
  RedisStreamsPermissionError: RedisStreamsPermissionError.prototype,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSerializedError(v: unknown): v is SerializedError {
  return isRecord(v) && typeof v.name === 'string' && typeof v.message === 'string';
}

/**
 * Rebuilds an Error from {@link serializeError} output. Library errors and the
 * built-in error classes keep their prototype, so `instanceof` works; any other
 * name is kept as the `name` of a plain `Error`. Nothing here can set a prototype
 * from message content: keys are copied with defineProperty, `__proto__` skipped.
 * Any shape is accepted (a hostile peer chooses it): what is not an error
 * description becomes a plain `Error` saying so, a cause that is not one is kept
 * as the value it is. Never throws.
 */
export function deserializeError(data: unknown, depth = 0): Error {
  if (!isSerializedError(data)) return new Error(`Malformed remote error: ${safeString(data)}`);
  const proto = Object.hasOwn(LIBRARY, data.name) ? LIBRARY[data.name] : Object.hasOwn(BUILTIN, data.name) ? BUILTIN[data.name] : undefined;
  const err = new Error(data.message);
  if (proto !== undefined) Object.setPrototypeOf(err, proto);
  if (proto === undefined || proto instanceof RPCError) define(err, 'name', data.name, true);
  if (typeof data.stack === 'string') define(err, 'stack', data.stack, false);
  const props: unknown = data.props;
  if (isRecord(props)) {
    for (const key of Object.keys(props)) {
      if (key === '__proto__' || SKIPPED.has(key)) continue;
      define(err, key, props[key], true);
    }
  }
  const cause: unknown = data.cause;
  if (cause !== undefined && cause !== null) define(err, 'cause', rebuildCause(cause, depth), false);
  return err;
}

function rebuildCause(cause: unknown, depth: number): unknown {
  if (!isRecord(cause)) return cause;
  if (Object.hasOwn(cause, 'value') && !Object.hasOwn(cause, 'message')) return cause.value;
  return depth < MAX_CAUSE_DEPTH ? deserializeError(cause, depth + 1) : undefined;
}

function define(target: object, key: string, value: unknown, enumerable: boolean): void {
  Object.defineProperty(target, key, { value, enumerable, writable: true, configurable: true });
}
