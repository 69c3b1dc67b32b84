/**
 * The registry of built-in objects the method resolver never exposes: the
 * prototypes of JavaScript's, the web platform's and Node's classes (with
 * their whole chains), those classes themselves, and namespace objects such as
 * `Math` or `node:fs`'s exports. Recognised by identity, so JavaScript-written
 * built-ins (`Buffer#fill`, `Readable#push`, `EventEmitter#emit`) are caught as
 * surely as native ones.
 *
 * @module
 */

// Imported for their classes: default imports are each module's `module.exports`
// in both the ESM and the CJS build (deprecated and experimental modules left out:
// they print warnings).
import asyncHooks from 'node:async_hooks';
import buffer from 'node:buffer';
import childProcess from 'node:child_process';
import cluster from 'node:cluster';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import diagnosticsChannel from 'node:diagnostics_channel';
import dns from 'node:dns';
import events from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import nodeModule from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import perfHooks from 'node:perf_hooks';
import processModule from 'node:process';
import querystring from 'node:querystring';
import readline from 'node:readline';
import stream from 'node:stream';
import stringDecoder from 'node:string_decoder';
import timers from 'node:timers';
import tls from 'node:tls';
import tty from 'node:tty';
import url from 'node:url';
import util from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import workerThreads from 'node:worker_threads';
import zlib from 'node:zlib';

const CORE_MODULES: readonly unknown[] = [
  asyncHooks, buffer, childProcess, cluster, crypto, dgram, diagnosticsChannel, dns, events, fs, http, https,
  nodeModule, net, os, path, perfHooks, querystring, readline, stream, stringDecoder, timers, tls,
  tty, url, util, v8, vm, workerThreads, zlib,
];

/**
 * Built-in objects whose prototypes no global or export names: each entry
 * returns objects whose prototype chain is added (iterators, generators,
 * timers, key objects...). A sample that fails on this platform is skipped.
 */
const SAMPLES: readonly (() => readonly unknown[])[] = [
  () => [[][Symbol.iterator](), new Map().entries(), new Set().values(), ''[Symbol.iterator](), 'a'.matchAll(/a/g)],
  () => {
    const generatorFn = Object.getPrototypeOf(function* () {}) as { prototype: object };
    const asyncGeneratorFn = Object.getPrototypeOf(async function* () {}) as { prototype: object };
    return [async () => undefined, generatorFn, generatorFn.prototype, asyncGeneratorFn, asyncGeneratorFn.prototype];
  },
  () => {
    const timeout = setTimeout(() => undefined, 0);
    clearTimeout(timeout);
    const immediate = setImmediate(() => undefined);
    clearImmediate(immediate);
    return [timeout, immediate];
  },
  () => [crypto.createSecretKey(Buffer.alloc(16))],
  () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
    return [publicKey, privateKey];
  },
  () => [perfHooks.createHistogram()],
];

/**
 * Built-in base classes whose constructors store their state in own properties
 * of every instance, subclass instances included (EventEmitter's `_events`
 * holds the listeners; a stream's `_readableState`): a sample instance of each
 * tells which own names belong to the base class rather than to the user.
 */
const STATEFUL_BASES: readonly (new () => object)[] = [
  events.EventEmitter, stream.Readable, stream.Writable, stream.Duplex, stream.Transform, stream.PassThrough,
];

/** How deep the collection follows namespaces and static members (`stream` -> `Readable` -> `ReadableState`). */
const COLLECT_DEPTH = 2;

/** Built-in objects, collected once. */
export interface BuiltIns {
  /** Built-in prototypes (whole chains), classes and namespace objects. */
  readonly objects: WeakSet<object>;
  /** Every own name any {@link STATEFUL_BASES} constructor creates: the fast negative check. */
  readonly stateNames: ReadonlySet<string>;
  /** Own names a built-in base creates on instances, keyed by the base's prototype. */
  readonly stateNamesByPrototype: WeakMap<object, ReadonlySet<string>>;
}

let registry: BuiltIns | undefined;

/** The registry, built on first use (collection reads a few thousand properties once). */
export function builtIns(): BuiltIns {
  registry ??= collect();
  return registry;
}

function isObjectLike(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || proto === Object.prototype;
}

function collect(): BuiltIns {
  const objects = new WeakSet<object>();
  const collector = new Collector(objects);
  collector.addGlobals();
  for (const exports of CORE_MODULES) collector.addValue(exports, COLLECT_DEPTH);
  // `process` and its chain, not its members: user code hangs its own objects there.
  collector.addValue(processModule, 0);
  for (const sample of SAMPLES) {
    try {
      for (const value of sample()) if (isObjectLike(value)) collector.addChain(Object.getPrototypeOf(value) as object | null);
    } catch {
      // Not available here (a crypto build without ed25519): nothing to refuse.
    }
  }
  const stateNames = new Set<string>();
  const stateNamesByPrototype = new WeakMap<object, ReadonlySet<string>>();
  for (const Base of STATEFUL_BASES) {
    const names = Object.getOwnPropertyNames(new Base());
    for (const name of names) stateNames.add(name);
    stateNamesByPrototype.set(Base.prototype as object, new Set(names));
  }
  return { objects, stateNames, stateNamesByPrototype };
}

/** Walks globals and module exports, adding what it finds to `objects`. */
class Collector {
  /** The depth each value was explored at: one met again with more depth left is explored again. */
  private readonly explored = new Map<object, number>();

  constructor(private readonly objects: WeakSet<object>) {}

  /**
   * Non-enumerable own properties of `globalThis` only: the language and Node
   * define their globals non-enumerable, while `globalThis.MyService = ...`
   * in user code is enumerable and must not turn a user class into a built-in.
   */
  addGlobals(): void {
    this.addChain(globalThis);
    // Its other names (`globalThis.globalThis`, `global`) must not lead back into
    // its members, enumerable ones included.
    this.explored.set(globalThis, Infinity);
    for (const name of Object.getOwnPropertyNames(globalThis)) {
      const descriptor = Object.getOwnPropertyDescriptor(globalThis, name);
      if (descriptor === undefined || descriptor.enumerable === true) continue;
      this.addValue(readOwn(globalThis, name, descriptor), COLLECT_DEPTH);
    }
  }

  addValue(value: unknown, depth: number): void {
    if (!isObjectLike(value) || (this.explored.get(value) ?? -1) >= depth) return;
    this.explored.set(value, depth);
    if (typeof value === 'function') {
      this.objects.add(value);
      const prototype = Object.getOwnPropertyDescriptor(value, 'prototype')?.value as unknown;
      if (isObjectLike(prototype)) this.addChain(prototype);
      this.addChain(Object.getPrototypeOf(value) as object | null);
    } else {
      this.addChain(value);
    }
    if (depth > 0) this.addMembers(value, depth - 1);
  }

  /** Adds `start` and every prototype above it. */
  addChain(start: object | null): void {
    for (let p = start; p !== null && !this.objects.has(p); p = Object.getPrototypeOf(p) as object | null) this.objects.add(p);
  }

  private addMembers(owner: object, depth: number): void {
    for (const name of Object.getOwnPropertyNames(owner)) {
      if (name === 'prototype' || name === 'constructor') continue;
      const descriptor = Object.getOwnPropertyDescriptor(owner, name);
      if (descriptor === undefined) continue;
      const value = readOwn(owner, name, descriptor);
      // Classes and plain sub-namespaces (`Intl.Collator`, `util.types`); never an
      // instance hung on a namespace (`process.mainModule`), whose chain may hold
      // a user's class: built-in instances are covered by their classes.
      if (typeof value === 'function' || (isObjectLike(value) && isPlain(value))) this.addValue(value, depth);
    }
  }
}

/**
 * A property's value. Getters are run only for capitalised names: Node defines
 * many classes as lazy getters (`globalThis.Buffer`, `fs.ReadStream`), while
 * some lowercase getters warn or load heavy code when read (`localStorage`).
 */
function readOwn(owner: object, name: string, descriptor: PropertyDescriptor): unknown {
  if ('value' in descriptor) return descriptor.value;
  if (descriptor.get === undefined || !/^[A-Z]/.test(name)) return undefined;
  try {
    return descriptor.get.call(owner);
  } catch {
    return undefined;
  }
}
