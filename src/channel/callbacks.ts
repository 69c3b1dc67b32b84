/**
 * Functions passed as arguments travel as paths: the caller replaces each by
 * `null` and lists where it was; the callee puts a stand-in function back there.
 *
 * @module
 */
import type { CallbackPath } from '../protocol/envelope.js';

const MAX_DEPTH = 16;
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** Arguments with their functions taken out. */
export interface ExtractedCallbacks {
  readonly args: unknown[];
  readonly paths: CallbackPath[];
  readonly functions: ((...args: unknown[]) => unknown)[];
}

function isPlainContainer(v: unknown): v is Record<string, unknown> | unknown[] {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return true;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function isPrimitive(v: unknown): boolean {
  return v === null || (typeof v !== 'object' && typeof v !== 'function');
}

/**
 * Replaces functions found in `args` (top level, or nested in plain objects and
 * arrays) by `null`. Containers on the way are copied; the caller's objects are
 * never modified. Returns `undefined` when there is no function at all.
 */
export function extractCallbacks(args: readonly unknown[]): ExtractedCallbacks | undefined {
  // Hot path: arguments that are all primitives hold no function; skip the walk and its allocations.
  if (args.every(isPrimitive)) return undefined;
  const paths: CallbackPath[] = [];
  const functions: ((...a: unknown[]) => unknown)[] = [];
  const seen = new Set<object>();
  const walk = (value: unknown, path: (string | number)[], depth: number): unknown => {
    if (typeof value === 'function') {
      paths.push([...path]);
      functions.push(value as (...a: unknown[]) => unknown);
      return null;
    }
    if (depth >= MAX_DEPTH || !isPlainContainer(value) || seen.has(value)) return value;
    seen.add(value);
    let copy: Record<string, unknown> | unknown[] | undefined;
    const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    for (const [key, child] of entries) {
      path.push(key);
      const replaced = walk(child, path, depth + 1);
      path.pop();
      if (replaced !== child) {
        copy ??= Array.isArray(value) ? [...value] : { ...value };
        (copy as Record<string | number, unknown>)[key] = replaced;
      }
    }
    seen.delete(value);
    return copy ?? value;
  };
  const out = args.map((arg, i) => walk(arg, [i], 0));
  return functions.length === 0 ? undefined : { args: out, paths, functions };
}

/**
 * Puts `make(index)` at each path of `paths` inside `args`. Paths that do not
 * lead through existing plain containers, or that use a forbidden key, are
 * ignored; properties are defined, never assigned, so no prototype can change.
 */
export function injectCallbacks(args: unknown[], paths: readonly CallbackPath[], make: (index: number) => (...a: unknown[]) => void): void {
  paths.forEach((path, index) => {
    let container: unknown = args;
    for (let i = 0; i < path.length - 1; i++) {
      const key = path[i] as string | number;
      if (typeof key === 'string' && FORBIDDEN.has(key)) return;
      if (!isPlainContainer(container) || !Object.hasOwn(container, key)) return;
      container = (container as Record<string | number, unknown>)[key];
    }
    const last = path[path.length - 1] as string | number;
    if ((typeof last === 'string' && FORBIDDEN.has(last)) || !isPlainContainer(container)) return;
    Object.defineProperty(container, last, { value: make(index), enumerable: true, writable: true, configurable: true });
  });
}
