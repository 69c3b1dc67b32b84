/**
 * The shape check every IO runs on {@link IoInterface.write}'s argument, so a
 * bad message is a typed rejection on every transport instead of a raw
 * TypeError thrown from inside one of them.
 *
 * @module
 */
import { RPCInvalidArgumentError } from '../errors.js';
import type { IoOutboundMessage } from './io-interface.js';

function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)})`;
    case 'object':
      return value === null ? 'null' : 'an object';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return `${typeof value} ${String(value)}`;
  }
}

/**
 * Why `message` is not an {@link IoOutboundMessage}, or `undefined` when it is.
 * A few `typeof` checks on the hot path; the description is built only on failure.
 * Reading the fields may throw (a hostile getter): callers run it inside their
 * own try, so that too ends up as a rejection.
 */
export function invalidOutbound(message: unknown): RPCInvalidArgumentError | undefined {
  if (typeof message !== 'object' || message === null) {
    return new RPCInvalidArgumentError('message', `expected an object { data, target?, settles? }, got ${describe(message)}`);
  }
  const { data, target, settles } = message as Partial<Record<keyof IoOutboundMessage, unknown>>;
  if (typeof data !== 'string') return new RPCInvalidArgumentError('message.data', `expected a string (the encoded message), got ${describe(data)}`);
  if (target !== undefined && (typeof target !== 'string' || target === '')) {
    return new RPCInvalidArgumentError('message.target', `expected a non-empty endpoint id or undefined, got ${describe(target)}`);
  }
  if (settles !== undefined && (typeof settles !== 'object' || settles === null || typeof (settles as { id?: unknown }).id !== 'string')) {
    return new RPCInvalidArgumentError('message.settles', `expected a receipt { id: string } from an inbound message, or undefined, got ${describe(settles)}`);
  }
  return undefined;
}
