/**
 * Checks a parsed superjson payload (`{ json, meta }`) before superjson's own
 * `deserialize` sees it, so that decoding costs time and memory linear in the
 * text received.
 *
 * superjson applies `meta` by walking paths: `meta.values` annotates positions
 * with a type to rebuild, `meta.referentialEqualities` makes positions share
 * one object. Its path walk steps into a Set or a Map by iterating it from the
 * start (`getNthKey`), so paths into large Sets cost the product of their
 * count and the index; and a type rule such as `typed-array` allocates
 * whatever the wire's `json` asks for (`new Float64Array({ length: 1e8 })`).
 *
 * The guard accepts only what superjson 2.x writes for the types this library
 * registers (`meta.v` 1, the annotation names superjson produces, no `class`
 * or `symbol`), checks the JSON under every built-in annotation has the shape
 * that annotation produces, and adds up the steps superjson's walks will take.
 * It refuses, with an {@link RPCSerializationError}, a payload whose steps pass
 * {@link SUPERJSON_WORK_PER_CHAR} per character of text (plus
 * {@link SUPERJSON_WORK_FLOOR}), whose annotation tree nests deeper than
 * {@link SUPERJSON_MAX_DEPTH}, or that holds a BigInt longer than
 * {@link SUPERJSON_MAX_BIGINT_CHARS}.
 *
 * @module
 */
import { RPCSerializationError } from '../errors.js';

/**
 * Work allowed per character of the payload text: one unit is one path
 * segment superjson steps through, or one element it skips while iterating a
 * Set or a Map. Honest payloads need about 1 per character (each annotated
 * value's path is written out in the text); only nesting Sets and Maps many
 * levels deep with many annotated values inside, or shared objects at large
 * indices in a Set, come near 16.
 */
export const SUPERJSON_WORK_PER_CHAR = 4;

/** Work allowed for any payload, however short, so that small values never trip the per-character rule. */
export const SUPERJSON_WORK_FLOOR = 100_000;

/**
 * Deepest nesting of the annotation tree: a Set in a Map in an Error ..., each
 * level one. superjson walks the tree recursively, as does this guard.
 */
export const SUPERJSON_MAX_DEPTH = 256;

/**
 * Longest BigInt accepted, in characters (sign included): V8 parses decimal
 * BigInt text in more than linear time (a million digits take about 0.2 s).
 * 10,000 digits is a 33,000-bit integer.
 */
export const SUPERJSON_MAX_BIGINT_CHARS = 10_001;

/** A superjson payload after the guard: what `SuperJSON#deserialize` takes. */
export interface SuperjsonPayload {
  /** Missing when the value was one JSON drops (a function). */
  json?: unknown;
  meta?: unknown;
}

/**
 * A position superjson's referentialEqualities walks may reach, for the cost
 * model. `json` is the parsed JSON there before any annotation is applied.
 */
interface Position {
  /** `set` and `map` mark positions superjson steps into by iterating. */
  kind: 'plain' | 'set' | 'map';
  json: unknown;
  children: Map<Key, Position> | undefined;
}

/** A path segment as superjson resolves it: a number into a JSON array (it indexes with `+segment`), the text otherwise. */
type Key = string | number;

/** For the overlap check of one object of child annotations. */
interface PathNode {
  end: boolean;
  next: Map<Key, PathNode> | undefined;
}

const BUILTIN_ANNOTATIONS = new Set(['undefined', 'bigint', 'Date', 'Error', 'regexp', 'set', 'map', 'number', 'URL']);
/** Annotations whose value superjson walks into, so they may carry child annotations. */
const CONTAINERS = new Set(['set', 'map', 'Error']);
const SPECIAL_NUMBERS = new Set(['NaN', 'Infinity', '-Infinity', '-0']);
/** The typed arrays superjson's own `typed-array` rule knows; accepted from older peers when the JSON is an array of numbers. */
const LEGACY_TYPED_ARRAYS = new Set([
  'Int8Array',
  'Uint8Array',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'Uint8ClampedArray',
]);
const BIGINT_TEXT = /^-?\d+$/;

function refuse(why: string): never {
  throw new RPCSerializationError(`superjson payload refused: ${why}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Checks `parsed` (the `JSON.parse` of the text) and returns it as a payload
 * for `SuperJSON#deserialize`.
 *
 * @param parsed - The parsed text.
 * @param textLength - Length of the text, in characters: the work budget scales with it.
 * @param customNames - Names of the custom rules registered on the SuperJSON instance.
 * @throws {@link RPCSerializationError} naming what was refused.
 */
export function checkSuperjsonPayload(parsed: unknown, textLength: number, customNames: ReadonlySet<string>): SuperjsonPayload {
  if (!isPlainObject(parsed)) refuse('expected an object with "json" and "meta" fields');
  const meta = parsed.meta;
  if (meta === undefined) return parsed;
  if (!isPlainObject(meta)) refuse('"meta" is not an object');
  if (meta.v !== 1) refuse(`"meta.v" is ${JSON.stringify(meta.v) ?? 'missing'}, expected 1 (superjson 2)`);
  new Guard(parsed.json, textLength, customNames, meta.referentialEqualities !== undefined).check(meta.values, meta.referentialEqualities);
  return parsed;
}

class Guard {
  private work = 0;
  private readonly budget: number;
  /** Positions are recorded only when referentialEqualities will walk them. */
  private readonly root: Position | undefined;

  constructor(
    private readonly json: unknown,
    textLength: number,
    private readonly customNames: ReadonlySet<string>,
    track: boolean,
  ) {
    this.budget = SUPERJSON_WORK_PER_CHAR * textLength + SUPERJSON_WORK_FLOOR;
    this.root = track ? { kind: 'plain', json, children: undefined } : undefined;
  }

  check(values: unknown, equalities: unknown): void {
    if (values !== undefined) {
      if (Array.isArray(values)) {
        this.node(values, this.json, this.root, 0, 0);
      } else if (isPlainObject(values)) {
        this.children(values, this.json, this.root, 0, 0);
      } else {
        refuse('"meta.values" is neither an annotation nor an object of annotations');
      }
    }
    if (equalities !== undefined) this.equalities(equalities);
  }

  private spend(units: number): void {
    this.work += units;
    if (this.work > this.budget) {
      refuse(`decoding its metadata would take more than ${SUPERJSON_WORK_PER_CHAR} steps per character (SUPERJSON_WORK_PER_CHAR)`);
    }
  }

  /**
   * One annotated position: `tree` is `[annotation]` or `[annotation, children]`.
   * superjson rebuilds the path from the root for each one and walks it, so
   * each costs its whole path length.
   */
  private node(tree: unknown, json: unknown, at: Position | undefined, depth: number, pathLength: number): void {
    if (!Array.isArray(tree) || tree.length < 1 || tree.length > 2) refuse('an annotation is not [type] or [type, children]');
    if (depth > SUPERJSON_MAX_DEPTH) refuse(`annotations nest deeper than ${SUPERJSON_MAX_DEPTH} levels (SUPERJSON_MAX_DEPTH)`);
    this.spend(pathLength + 1);
    const type = this.annotation(tree[0]);
    if (at !== undefined && (type === 'set' || type === 'map')) at.kind = type;
    const children: unknown = tree[1];
    if (children !== undefined) {
      if (!CONTAINERS.has(type)) refuse(`a "${type}" annotation has child annotations`);
      if (!isPlainObject(children)) refuse('child annotations are not an object');
      this.children(children, json, at, depth + 1, pathLength);
    }
    this.checkJson(type, tree[0], json);
  }

  /** The children of one annotated position (or the top-level object of annotations). */
  private children(children: Record<string, unknown>, json: unknown, at: Position | undefined, depth: number, pathLength: number): void {
    const keys = Object.keys(children);
    const inArray = Array.isArray(json);
    // Segments of the keys that are not a single segment; one segment each
    // (the common case) cannot overlap: object keys are distinct, and so are
    // canonical array indices.
    let paths: (string[] | undefined)[] | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (isOneSegment(key) && (!inArray || isIndex(key))) continue;
      (paths ??= new Array<string[] | undefined>(keys.length))[i] = parsePath(key);
    }
    if (paths !== undefined) checkOverlap(keys, paths, json);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      const segments = paths?.[i];
      let childJson = json;
      let childAt = at;
      for (const segment of segments ?? [key]) {
        childJson = jsonChild(childJson, segment);
        if (childAt !== undefined) childAt = child(childAt, segment);
      }
      this.node(children[key], childJson, childAt, depth, pathLength + (segments?.length ?? 1));
    }
  }

  /** Returns the annotation's name; refuses what superjson would not write for this library's types. */
  private annotation(type: unknown): string {
    if (typeof type === 'string') {
      if (BUILTIN_ANNOTATIONS.has(type)) return type;
      refuse(`unknown annotation ${JSON.stringify(type.slice(0, 40))}`);
    }
    if (Array.isArray(type) && type.length === 2 && typeof type[1] === 'string') {
      if (type[0] === 'custom' && this.customNames.has(type[1])) return 'custom';
      if (type[0] === 'typed-array' && LEGACY_TYPED_ARRAYS.has(type[1])) return 'typed-array';
    }
    refuse(`annotation ${JSON.stringify(type)?.slice(0, 80) ?? typeof type} is not one this serializer writes (no class or symbol is registered)`);
  }

  /**
   * The JSON an annotation rebuilds from must be what superjson writes for
   * it: superjson's rules build from whatever they get (`new Float64Array(x)`,
   * `BigInt(x)`, `new Set(x)`). The custom rules check their own input.
   */
  private checkJson(type: string, annotation: unknown, json: unknown): void {
    switch (type) {
      case 'undefined':
        // superjson writes null there; anything else (a missing array index
        // included, which would stretch the array to that length) is not its output.
        if (json !== null) refuse('an "undefined" annotation is not on null');
        return;
      case 'bigint':
        if (typeof json !== 'string' || json.length > SUPERJSON_MAX_BIGINT_CHARS || !BIGINT_TEXT.test(json)) {
          refuse(`a BigInt is not a decimal string of at most ${SUPERJSON_MAX_BIGINT_CHARS} characters (SUPERJSON_MAX_BIGINT_CHARS)`);
        }
        return;
      case 'number':
        if (typeof json !== 'string' || !SPECIAL_NUMBERS.has(json)) refuse('a "number" annotation is not on NaN, Infinity, -Infinity or -0');
        return;
      case 'Date':
      case 'regexp':
      case 'URL':
        if (typeof json !== 'string') refuse(`a "${type}" annotation is not on a string`);
        return;
      case 'set':
      case 'map':
        if (!Array.isArray(json)) refuse(`a "${type}" annotation is not on an array`);
        return;
      case 'Error':
        if (!isPlainObject(json)) refuse('an "Error" annotation is not on an object');
        return;
      case 'typed-array':
        if (!Array.isArray(json) || !json.every((n) => typeof n === 'number' || n === null)) {
          refuse(`a ${JSON.stringify(annotation)} annotation is not on an array of numbers`);
        }
        return;
      default:
        return;
    }
  }

  /**
   * `referentialEqualities`: `{ path: [samePaths] }`, or `[rootPaths]` /
   * `[rootPaths, { path: [samePaths] }]` when the root itself recurs.
   * superjson reads each `path` and writes its object to each of `samePaths`,
   * after every value annotation is applied, so these walks may step into
   * Sets and Maps.
   */
  private equalities(equalities: unknown): void {
    if (Array.isArray(equalities)) {
      if (equalities.length < 1 || equalities.length > 2) refuse('"referentialEqualities" is not [rootPaths] or [rootPaths, paths]');
      for (const path of stringList(equalities[0])) this.write(path, this.root);
      if (equalities[1] !== undefined) this.equalityMap(equalities[1]);
    } else {
      this.equalityMap(equalities);
    }
  }

  private equalityMap(map: unknown): void {
    if (!isPlainObject(map)) refuse('"referentialEqualities" is not an object of paths');
    for (const [path, same] of Object.entries(map)) {
      const source = this.read(parsePath(path));
      for (const target of stringList(same)) this.write(target, source);
    }
  }

  /**
   * Walks `segments` from the root as superjson's getDeep/setDeep do, paying
   * for each step. Inside a Set or a Map every step is paid as if it iterated
   * `index` elements: superjson's writes there also reorder the Set, so what
   * sits at an index is no longer known.
   *
   * @returns The position reached, or undefined once inside a Set or Map.
   */
  private read(segments: readonly string[]): Position | undefined {
    let at = this.root;
    for (const segment of segments) {
      if (at === undefined || at.kind !== 'plain') {
        this.spend(iterationCost(segment));
        at = undefined;
      } else {
        this.spend(1);
        at = child(at, segment);
      }
    }
    return at;
  }

  /** One write of a shared object (`source`, undefined when unknown) to `path`. */
  private write(path: unknown, source: Position | undefined): void {
    if (typeof path !== 'string') refuse('a "referentialEqualities" path is not a string');
    const segments = parsePath(path);
    const last = segments.pop() ?? '';
    const parent = this.read(segments);
    if (parent === undefined || parent.kind !== 'plain') {
      this.spend(iterationCost(last));
      return;
    }
    this.spend(1);
    if (!holds(parent.json, last)) refuse(`a "referentialEqualities" path "${path.slice(0, 100)}" leads nowhere in "json"`);
    // The position now holds the shared object: later walks through it go
    // where walks through the source go (Sets and Maps included). An unknown
    // source (one inside a Set or a Map) is costed as a Set.
    const replacement: Position = source ?? { kind: 'set', json: undefined, children: undefined };
    (parent.children ??= new Map<Key, Position>()).set(keyAt(parent.json, last), replacement);
  }
}

/**
 * superjson applies the child annotations of one object before their parent
 * and one after another, so no key may reach a position another key of the
 * same object reaches or passes through. Then every walk superjson makes for
 * a value annotation crosses only plain JSON arrays and objects (no Set or
 * Map it built a moment before).
 */
function checkOverlap(keys: readonly string[], paths: ReadonlyArray<string[] | undefined>, json: unknown): void {
  const root: PathNode = { end: false, next: undefined };
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    let node = root;
    let at = json;
    for (const segment of paths[i] ?? [key]) {
      if (node.end) break;
      const k = keyAt(at, segment);
      at = jsonChild(at, segment);
      const next = (node.next ??= new Map<Key, PathNode>());
      let n = next.get(k);
      if (n === undefined) next.set(k, (n = { end: false, next: undefined }));
      node = n;
    }
    if (node.end || node.next !== undefined) refuse(`annotation path "${key.slice(0, 100)}" overlaps another one of the same object`);
    node.end = true;
  }
}

function isOneSegment(key: string): boolean {
  return !key.includes('.') && !key.includes('\\');
}

/** A canonical array index, as superjson writes it (`String(index)`), below 2^53. */
function isIndex(segment: string): boolean {
  const length = segment.length;
  if (length === 0 || length > 15 || (length > 1 && segment.charCodeAt(0) === 48)) return false;
  for (let i = 0; i < length; i++) {
    const c = segment.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function stringList(v: unknown): string[] {
  if (!Array.isArray(v) || !v.every((p) => typeof p === 'string')) refuse('"referentialEqualities" holds something other than a list of path strings');
  return v;
}

/**
 * Steps for superjson to reach element `segment` of a Set or a Map: it
 * iterates from the first (an index past the end throws after `size` steps,
 * which this bound also covers).
 */
function iterationCost(segment: string): number {
  const n = +segment;
  return 1 + (Number.isFinite(n) && n > 0 ? Math.ceil(n) : 0);
}

/**
 * The key of a child position. superjson indexes arrays with `+segment`, so
 * `"01"` and `"1"` are one element of an array but two keys of an object.
 */
function keyAt(json: unknown, segment: string): Key {
  if (!Array.isArray(json)) return segment;
  const n = +segment;
  return Number.isInteger(n) && n >= 0 ? n : segment;
}

function child(parent: Position, segment: string): Position {
  const key = keyAt(parent.json, segment);
  const children = (parent.children ??= new Map<Key, Position>());
  let next = children.get(key);
  if (next === undefined) {
    next = { kind: 'plain', json: jsonChild(parent.json, segment), children: undefined };
    children.set(key, next);
  }
  return next;
}

/**
 * True when `segment` names an element or own property of the JSON array or
 * object `json`, or `json` is neither (superjson's setDeep then writes
 * nothing). A write past the end of an array would stretch it to that length.
 */
function holds(json: unknown, segment: string): boolean {
  if (Array.isArray(json)) {
    const n = +segment;
    return Number.isInteger(n) && n >= 0 && n < json.length;
  }
  return !isPlainObject(json) || Object.hasOwn(json, segment);
}

/** The JSON superjson's setDeep reaches from `json` with `segment`. */
function jsonChild(json: unknown, segment: string): unknown {
  if (Array.isArray(json)) return json[+segment] as unknown;
  if (isPlainObject(json)) return Object.hasOwn(json, segment) ? json[segment] : undefined;
  return undefined;
}

/**
 * superjson's path syntax (version 1): segments joined by `.`, with `\.` for
 * a dot and `\\` for a backslash inside a segment; any other escape is an
 * error there too.
 */
function parsePath(path: string): string[] {
  if (!path.includes('\\')) return path.split('.');
  const segments: string[] = [];
  let segment = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '\\') {
      const next = path[i + 1];
      if (next !== '\\' && next !== '.') refuse('a path holds an invalid escape');
      segment += next;
      i++;
    } else if (c === '.') {
      segments.push(segment);
      segment = '';
    } else {
      segment += c;
    }
  }
  segments.push(segment);
  return segments;
}
