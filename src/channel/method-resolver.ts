/**
 * Finds the function a request names. An allow-list: a path resolves only
 * through own data properties of the exposed object, of nested plain objects,
 * of user class instances and of functions, ending at an own data property or
 * a method on a prototype of the user's own classes. Accessors are never
 * invoked, and built-in prototypes (see `built-ins.ts`) end every prototype walk.
 *
 * @module
 */

import { builtIns, type BuiltIns } from './built-ins.js';

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Prototype hops looked at per segment. Real class hierarchies are a few levels
 * deep; the bound stops a Proxy whose `getPrototypeOf` trap returns a cycle.
 */
const MAX_CHAIN = 64;

/** A resolved method and the object it is called on. */
export interface ResolvedMethod {
  readonly fn: (...args: unknown[]) => unknown;
  readonly self: unknown;
}

/**
 * Resolves `path` in `root`, or returns `undefined` if it does not name an
 * exposed function. Never throws: a Proxy trap that throws means not found.
 *
 * @param root - The exposed API.
 * @param path - Method path segments from the request.
 * @returns The function and its `this`, or `undefined`.
 */
export function resolveMethod(root: unknown, path: readonly string[]): ResolvedMethod | undefined {
  if (path.length === 0) return undefined;
  try {
    const known = builtIns();
    let current: unknown = root;
    const last = path.length - 1;
    for (let i = 0; i < last; i++) {
      current = lookup(current, path[i], known, false);
      if (current === undefined) return undefined;
    }
    const fn = lookup(current, path[last], known, true);
    if (typeof fn !== 'function') return undefined;
    return { fn: fn as (...args: unknown[]) => unknown, self: current };
  } catch {
    return undefined;
  }
}

/**
 * The value `key` names on `target` under the allow-list, or `undefined`.
 * Own data properties count on plain objects, functions and user class
 * instances; the prototype chain is searched only for the final segment, and
 * only on user class instances.
 */
function lookup(target: unknown, key: unknown, known: BuiltIns, final: boolean): unknown {
  if (typeof key !== 'string' || FORBIDDEN.has(key)) return undefined;
  if (typeof target !== 'function' && (typeof target !== 'object' || target === null)) return undefined;
  if (known.objects.has(target)) return undefined;
  // Functions: own statics only (an inherited static belongs to the parent class,
  // and Function.prototype's call/apply/bind are never exposed).
  const proto = typeof target === 'function' ? null : (Object.getPrototypeOf(target) as object | null);
  const plain = proto === null || proto === Object.prototype;
  // An instance of a built-in class (Buffer, Map, Readable...): nothing is exposed.
  if (!plain && known.objects.has(proto)) return undefined;
  const own = Object.getOwnPropertyDescriptor(target, key);
  if (own !== undefined) {
    if (!('value' in own)) return undefined;
    if (!plain && isBaseClassState(proto, key, known)) return undefined;
    return own.value;
  }
  return plain || !final ? undefined : inheritedMethod(proto, key, known);
}

/**
 * The data property `key` on the user prototypes of a chain, stopping at the
 * first built-in prototype. The first property found decides: an accessor
 * shadows any method further up.
 */
function inheritedMethod(start: object | null, key: string, known: BuiltIns): unknown {
  let p = start;
  for (let hops = 0; p !== null && hops < MAX_CHAIN && !known.objects.has(p); hops++) {
    const descriptor = Object.getOwnPropertyDescriptor(p, key);
    if (descriptor !== undefined) return 'value' in descriptor ? descriptor.value : undefined;
    p = Object.getPrototypeOf(p) as object | null;
  }
  return undefined;
}

const baseStateCache = new WeakMap<object, ReadonlySet<string>>();

/**
 * Whether `key` is state a built-in base class keeps on the instance (a user
 * class extending EventEmitter has its listeners in an own `_events`).
 */
function isBaseClassState(proto: object | null, key: string, known: BuiltIns): boolean {
  if (!known.stateNames.has(key)) return false;
  let p = proto;
  for (let hops = 0; p !== null && hops < MAX_CHAIN; hops++) {
    if (known.objects.has(p)) return stateNamesOf(p, known).has(key);
    p = Object.getPrototypeOf(p) as object | null;
  }
  return false;
}

/** The state names of built-in prototype `base` and its ancestors, cached per prototype. */
function stateNamesOf(base: object, known: BuiltIns): ReadonlySet<string> {
  let names = baseStateCache.get(base);
  if (names === undefined) {
    const union = new Set<string>();
    for (let p: object | null = base; p !== null; p = Object.getPrototypeOf(p) as object | null) {
      for (const name of known.stateNamesByPrototype.get(p) ?? []) union.add(name);
    }
    names = union;
    baseStateCache.set(base, names);
  }
  return names;
}
