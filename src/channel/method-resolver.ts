/**
 * Finds the function a request names, refusing every path that could reach
 * beyond the exposed object's own methods.
 *
 * @module
 */

import { EventEmitter } from 'node:events';

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** A resolved method and the object it is called on. */
export interface ResolvedMethod {
  readonly fn: (...args: unknown[]) => unknown;
  readonly self: unknown;
}

/**
 * Whether `key` is an own property of `obj` or of a prototype below
 * `Object.prototype`/`Function.prototype` (so methods of class instances work,
 * while `toString`, `hasOwnProperty`, `__defineGetter__`... never do).
 */
function hasExposedProperty(obj: object, key: string): boolean {
  if (Object.hasOwn(obj, key)) return true;
  let proto = Object.getPrototypeOf(obj) as object | null;
  while (proto !== null && !isBuiltInPrototype(proto)) {
    if (Object.hasOwn(proto, key)) return true;
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  return false;
}

const builtInCache = new WeakMap<object, boolean>();

/**
 * Whether `proto` belongs to a built-in class (Object, Function, Array, Map,
 * Date, Promise, EventEmitter's natives...): their methods (`push`, `clear`,
 * `toString`) are never callable remotely, only methods of the user's classes.
 */
function isBuiltInPrototype(proto: object): boolean {
  const cached = builtInCache.get(proto);
  if (cached !== undefined) return cached;
  const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as unknown;
  const builtIn =
    proto === Object.prototype ||
    proto === Function.prototype ||
    proto === EventEmitter.prototype ||
    typeof ctor !== 'function' ||
    /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(ctor));
  builtInCache.set(proto, builtIn);
  return builtIn;
}

/** Resolves `path` in `root`, or returns `undefined` if it does not name an exposed function. */
export function resolveMethod(root: unknown, path: readonly string[]): ResolvedMethod | undefined {
  let current: unknown = root;
  let parent: unknown = undefined;
  for (const segment of path) {
    if (FORBIDDEN.has(segment)) return undefined;
    if (current === null || (typeof current !== 'object' && typeof current !== 'function')) return undefined;
    if (!hasExposedProperty(current, segment)) return undefined;
    parent = current;
    current = (current as Record<string, unknown>)[segment];
  }
  if (typeof current !== 'function') return undefined;
  return { fn: current as (...args: unknown[]) => unknown, self: parent };
}
