/**
 * The typed proxy of a remote API: every property read is a nested proxy node,
 * every call of a node invokes the remote method of its path. Nothing about
 * the remote side is known locally, so writes to the proxy are refused.
 *
 * @module
 */
import { RPCInvalidArgumentError } from '../errors.js';
import { MAX_METHOD_DEPTH } from '../protocol/envelope.js';

/** A remote method as a proxy node knows it, worked out once per node, not per call. */
export interface MethodRef {
  readonly path: readonly string[];
  /** The dotted name, for messages. */
  readonly method: string;
  /** `JSON.stringify(path)`, as the request header carries it. */
  readonly json: string;
  /** Why this path cannot be called, if it cannot. */
  readonly error: RPCInvalidArgumentError | undefined;
}

/** Invokes the remote method of a proxy node. */
export type Invoke = (ref: MethodRef, args: unknown[]) => Promise<unknown>;

/** Proxy members answered locally (never sent): see `RPCChannel.getAPI`. */
const LOCAL_MEMBERS = new Set(['then', 'toString', 'valueOf', 'toJSON']);

function checkPath(path: readonly string[]): RPCInvalidArgumentError | undefined {
  if (path.length === 0) return new RPCInvalidArgumentError('method', 'the API proxy itself is not callable; call one of its methods');
  if (path.length > MAX_METHOD_DEPTH) return new RPCInvalidArgumentError('method', `"${path.join('.')}" is nested deeper than ${MAX_METHOD_DEPTH} levels`);
  return undefined;
}

function refuseWrite(path: readonly string[], prop: string | symbol, what: string): never {
  const where = path.length === 0 ? 'the API proxy' : `the API proxy "${path.join('.')}"`;
  throw new TypeError(`Cannot ${what} "${String(prop)}" on ${where}: a remote API proxy is read-only (its members are remote methods)`);
}

/** Builds the proxy node of `path`; children are built on first access and kept. */
export function createProxy(path: string[], invoke: Invoke): unknown {
  const children = new Map<string, unknown>();
  const target = function rpcProxy(): void {};
  const ref: MethodRef = { path, method: path.join('.'), json: JSON.stringify(path), error: checkPath(path) };
  return new Proxy(target, {
    get: (_t, prop) => {
      // `then` must stay undefined so that awaiting a namespace does not call the
      // remote; symbols and the conversion hooks stay local so that logging or
      // string-converting a proxy never sends a request.
      if (prop === 'toString' || prop === Symbol.toPrimitive) return () => `[RPC proxy ${path.length === 0 ? '(root)' : path.join('.')}]`;
      if (typeof prop !== 'string' || LOCAL_MEMBERS.has(prop)) return undefined;
      let child = children.get(prop);
      if (child === undefined) {
        child = createProxy([...path, prop], invoke);
        children.set(prop, child);
      }
      return child;
    },
    apply: (_t, _this, args: unknown[]) => invoke(ref, args),
    // A write would otherwise be a silent no-op that the user believes went somewhere.
    set: (_t, prop) => refuseWrite(path, prop, 'set'),
    defineProperty: (_t, prop) => refuseWrite(path, prop, 'define'),
    deleteProperty: (_t, prop) => refuseWrite(path, prop, 'delete'),
  });
}
