/**
 * What a handler knows about the request it is running: who called, until
 * when the caller waits, the caller's metadata, and a signal that fires at the
 * deadline. Plain functions stay exposable: the context is read with
 * {@link getRequestContext}, not passed as an argument.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { RPCChannelClosedError, RPCTimeoutError } from '../errors.js';
import type { Metadata } from '../protocol/envelope.js';

/** The request a handler is running. */
export interface RequestContext {
  /** The call id (unique per caller). */
  readonly id: string;
  /** The dotted method path, e.g. `math.add`. */
  readonly method: string;
  /** The caller's endpoint id (its session id on Redis), when the transport knows it. */
  readonly caller: string | undefined;
  /** When the caller stops waiting, in epoch milliseconds (the caller's clock). */
  readonly deadline: number;
  /** Whether the caller expects no answer (a notification). */
  readonly notification: boolean;
  /** The metadata the caller attached with `getAPI({ metadata })`; empty when none. */
  readonly metadata: Metadata;
  /**
   * Aborts when the deadline passes (reason: an `RPCTimeoutError`), when the
   * caller announces it is going away, or when this channel is destroyed
   * (reason: an `RPCChannelClosedError`). Pass it to `fetch`, database drivers,
   * timers... Created on first read: a handler that never reads it costs nothing.
   */
  readonly signal: AbortSignal;
}

const EMPTY: Metadata = Object.freeze(Object.create(null) as Record<string, string>);

/** The context of one running request; owned by the request handler. */
export class ActiveContext implements RequestContext {
  readonly metadata: Metadata;
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    /** The method path as it arrived; joined on first read of {@link ActiveContext.method}. */
    private readonly path: readonly string[],
    readonly caller: string | undefined,
    readonly deadline: number,
    readonly notification: boolean,
    metadata: Metadata | undefined,
  ) {
    this.metadata = metadata ?? EMPTY;
  }

  get method(): string {
    return this.path.join('.');
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      const left = this.deadline - Date.now();
      if (left <= 0) this.expire();
      else {
        this.timer = setTimeout(() => this.expire(), Math.min(left, 2_147_483_647));
        this.timer.unref();
      }
    }
    return this.controller.signal;
  }

  /** Whether anything listens: only then must the handler tell it about the end. */
  get observed(): boolean {
    return this.controller !== undefined;
  }

  /** Aborts the signal (caller gone, channel closing). */
  abort(reason: string): void {
    this.stop();
    this.controller?.abort(new RPCChannelClosedError(reason));
  }

  /** The request ended: the deadline timer goes, the signal stays as it is. */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private expire(): void {
    this.timer = undefined;
    this.controller?.abort(new RPCTimeoutError(this.method, Math.max(0, this.deadline - Date.now())));
  }
}

let current: ActiveContext | undefined;
let storage: AsyncLocalStorage<ActiveContext> | undefined;

/**
 * Runs `fn` (on `self`, with `args`) with `context` as the current request. The context is current
 * while `fn` runs synchronously; with `asyncContext` it also follows `fn`'s
 * awaits (AsyncLocalStorage).
 */
export function runInContext(context: ActiveContext, asyncContext: boolean, fn: (...args: unknown[]) => unknown, self: unknown, args: unknown[]): unknown {
  const previous = current;
  current = context;
  try {
    // Applied here, not through a closure: this runs once per request served.
    if (!asyncContext) return fn.apply(self, args);
    storage ??= new AsyncLocalStorage<ActiveContext>();
    return storage.run(context, () => fn.apply(self, args));
  } finally {
    current = previous;
  }
}

/**
 * The request the calling handler is running, or `undefined` outside a
 * handler. Read it at the start of the handler, before its first `await`
 * (keep the object: it stays valid for the whole request). Channels created
 * with `asyncContext: true` make it available after awaits too.
 *
 * @example
 * ```ts
 * const api = {
 *   async report(id: string) {
 *     const { signal, metadata, caller } = getRequestContext()!;
 *     return fetchReport(id, { signal, user: metadata.user, caller });
 *   },
 * };
 * ```
 */
export function getRequestContext(): RequestContext | undefined {
  return current ?? storage?.getStore();
}
