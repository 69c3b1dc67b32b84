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
 * Puts `make(index)` at each path of `paths` inside `args`. The caller left
 * `null` where each function was, so a path is used only when it leads through
 * own properties of plain containers to an own slot holding `null` (an array
 * slot by its index); any other path (a forbidden key, an array's `length`, a
 * missing or non-null slot) is ignored. Properties are defined, never
 * assigned, so no setter runs and no prototype can change. Never throws.
 */
export function injectCallbacks(args: unknown[], paths: readonly CallbackPath[], make: (index: number) => (...a: unknown[]) => void): void {
  paths.forEach((path, index) => {
    let container: unknown = args;
    for (let i = 0; i < path.length - 1; i++) {
      if (!isSlot(container, path[i])) return;
      container = container[path[i] as string | number];
    }
    const last = path[path.length - 1];
    if (!isSlot(container, last) || container[last as string | number] !== null) return;
    Object.defineProperty(container, last as string | number, { value: make(index), enumerable: true, writable: true, configurable: true });
  });
}

/** Whether `key` names an own data slot of a plain container: an array index, or an own data property of a plain object. */
function isSlot(container: unknown, key: string | number | undefined): container is Record<string | number, unknown> {
  if (key === undefined || !isPlainContainer(container)) return false;
  if (Array.isArray(container)) return typeof key === 'number' && Number.isInteger(key) && key >= 0 && key < container.length;
  if (typeof key === 'string' && FORBIDDEN.has(key)) return false;
  const descriptor = Object.getOwnPropertyDescriptor(container, key);
  return descriptor !== undefined && 'value' in descriptor;
}
