/**
 * The calling half of a channel: encodes calls and notifications, keeps the
 * pending calls with their timers and callbacks, and settles them with the
 * answers and callback invocations that come back. Its counters (calls,
 * timeouts, duplicates) live here, where the events happen; the channel reads them.
 *
 * @module
 */
import { nanoid } from 'nanoid';
import { RPCChannelClosedError, RPCInvalidArgumentError, RPCPayloadTooLargeError, RPCSignatureError, RPCTimeoutError, toError } from '../errors.js';
import type { IoInterface } from '../io/io-interface.js';
import { bytesOverLimit, encodeRequest, metadataProblem, type CallbackHeader, type RequestHeader } from '../protocol/envelope.js';
import { deserializeError } from '../protocol/error-codec.js';
import { decodeValue, encodeValue, type Serializer } from '../protocol/serializer.js';
import { debugLog } from '../debug-log.js';
import { extractCallbacks } from './callbacks.js';
import { callsObserved, callWritten, settleCallEvent, startCallEvent, type RPCCallEvent, type RPCEndpointInfo } from './diagnostics.js';
import type { ResolvedCallOptions } from './options.js';
import { PendingCalls } from './pending-calls.js';
import type { MethodRef } from './proxy.js';

/** What the calling half needs from its channel. */
export interface CallerHost {
  readonly io: IoInterface;
  /** What instrumentation events say about the transport. */
  readonly where: RPCEndpointInfo;
  readonly serializer: Serializer;
  /** Largest message written, in bytes (`maxMessageBytes`). */
  readonly maxMessageBytes: number;
  /** Whether the channel is destroyed: calls fail at once. */
  destroyed(): boolean;
  reportError(error: Error): void;
  /** An answer arrived for a call already settled. */
  onDuplicate(id: string): void;
}

/** Calls made through proxies, and their answers. */
export class Caller {
  readonly counters = { calls: 0, timeouts: 0, duplicates: 0 };
  private readonly pending = new PendingCalls();
  /** Remote errors that arrived without a stack: they get the awaiting caller's (see {@link Caller.call}). */
  private readonly stackless = new WeakSet<Error>();
  private readonly idPrefix = `${nanoid(10)}.`;
  private nextId = 0;
  /** The IO's last refusal by signing, and when: a call timing out after it says so (a signing mismatch is not a silent hang). */
  private lastRefusal: { error: RPCSignatureError; at: number } | undefined;

  constructor(private readonly host: CallerHost) {}

  /** The IO refused an entry by signing: a call timing out from now on names it as the cause. */
  noteRefusal(error: RPCSignatureError): void {
    this.lastRefusal = { error, at: Date.now() };
  }

  /** Rejects every pending call with the error `reason` builds for it. */
  rejectAll(reason: (call: { method: string }) => Error): void {
    this.pending.rejectAll(reason);
  }

  /** Rejects the pending call `id`, if any (an answer to it could not be read). */
  reject(id: string, error: Error): void {
    this.pending.take(id)?.reject(error);
  }

  async call(ref: MethodRef, rawArgs: unknown[], o: ResolvedCallOptions): Promise<unknown> {
    const { host } = this;
    if (host.destroyed()) throw new RPCChannelClosedError('RPC channel is destroyed');
    if (ref.error !== undefined) throw ref.error;
    const { method } = ref;
    const { timeoutMs } = o;
    const id = this.newId();
    const started = Date.now();
    // Instrumentation seam: nothing is built unless someone subscribes (see diagnostics.ts).
    const event = callsObserved() ? startCallEvent(host.where, id, method, false, timeoutMs, o.metadata) : undefined;
    if (debugLog.call.enabled) debugLog.call('call %s %s on %s (timeout %d ms)', id, method, host.where.destination, timeoutMs);
    const extracted = extractCallbacks(rawArgs);
    const data = this.encodeRequest(id, ref, extracted?.args ?? rawArgs, Date.now() + timeoutMs, false, extracted?.paths, o, event);
    this.counters.calls++;
    try {
      const value = await new Promise<unknown>((resolve, reject) => {
        this.pending.add(id, { method, resolve, reject, callbacks: extracted?.functions, timer: undefined }, timeoutMs, () => void this.counters.timeouts++);
        const written = host.io.write({ data });
        (event === undefined ? written : written.then(() => callWritten(event))).catch((err: unknown) => this.pending.take(id)?.reject(toError(err)));
      });
      if (event !== undefined) settleCallEvent(event, undefined);
      if (debugLog.call.enabled) debugLog.call('settled %s %s: ok', id, method);
      return value;
    } catch (err) {
      // Built here, after the await, so that V8's async stack trace appends the
      // callers awaiting this call: the timeout points at the caller's code at no
      // cost per call (capturing a stack on every call cost a fifth of the
      // caller's CPU in the benchmark).
      const error = err instanceof RPCTimeoutError ? new RPCTimeoutError(method, timeoutMs, this.refusalSince(started)) : err;
      // Same for a remote error that came without its stack (remoteStacks 'omit').
      if (error instanceof Error && this.stackless.has(error)) Error.captureStackTrace(error);
      if (event !== undefined) settleCallEvent(event, toError(error));
      if (debugLog.call.enabled) debugLog.call('settled %s %s: %s', id, method, toError(error).name);
      throw error;
    }
  }

  async send(ref: MethodRef, rawArgs: unknown[], o: ResolvedCallOptions): Promise<void> {
    const { host } = this;
    if (host.destroyed()) throw new RPCChannelClosedError('RPC channel is destroyed');
    if (ref.error !== undefined) throw ref.error;
    if (extractCallbacks(rawArgs) !== undefined) {
      throw new RPCInvalidArgumentError('args', 'a notification cannot take callbacks (there is no call for them to belong to)');
    }
    const id = this.newId();
    const event = callsObserved() ? startCallEvent(host.where, id, ref.method, true, o.timeoutMs, o.metadata) : undefined;
    const data = this.encodeRequest(id, ref, rawArgs, Date.now() + o.timeoutMs, true, undefined, o, event);
    this.counters.calls++;
    if (event === undefined) {
      await host.io.write({ data });
      return;
    }
    try {
      await host.io.write({ data });
    } catch (err) {
      settleCallEvent(event, toError(err));
      throw err;
    }
    callWritten(event);
    settleCallEvent(event, undefined);
  }

  /** An answer (result or error) for call `id`. */
  settle(id: string, payload: string, ok: boolean): void {
    const call = this.pending.take(id);
    if (call === undefined) {
      this.counters.duplicates++;
      this.host.onDuplicate(id);
      return;
    }
    let value: unknown;
    try {
      value = decodeValue(this.host.serializer, payload, () => `${ok ? 'result' : 'error'} of "${call.method}"`);
    } catch (err) {
      call.reject(toError(err));
      return;
    }
    if (ok) return call.resolve(value);
    const error = deserializeError(value);
    if (!hasOwnStack(value)) this.stackless.add(error);
    call.reject(error);
  }

  /** A callback invocation for a pending call. */
  runCallback(header: CallbackHeader, payload: string): void {
    const fn = this.pending.get(header.id)?.callbacks?.[header.c];
    if (fn === undefined) return;
    try {
      const args = decodeValue(this.host.serializer, payload, 'callback arguments');
      const result = fn(...(Array.isArray(args) ? (args as unknown[]) : [args]));
      if (result instanceof Promise) result.catch((err: unknown) => this.host.reportError(toError(err)));
    } catch (err) {
      this.host.reportError(toError(err));
    }
  }

  private newId(): string {
    return this.idPrefix + (this.nextId++).toString(36);
  }

  /** The refusal by signing reported since `since`, as the cause of a timeout. */
  private refusalSince(since: number): { cause: RPCSignatureError } | undefined {
    const last = this.lastRefusal;
    return last !== undefined && last.at >= since ? { cause: last.error } : undefined;
  }

  /**
   * Encodes a request; with an instrumentation `event`, its carrier entries
   * join the metadata and its size is recorded (a failure settles the event).
   *
   * @throws {@link RPCPayloadTooLargeError} beyond `maxMessageBytes`: nothing is written.
   */
  private encodeRequest(id: string, ref: MethodRef, args: unknown[], dl: number, notify: boolean, cb: RequestHeader['cb'], o: ResolvedCallOptions, event: RPCCallEvent | undefined): string {
    if (event === undefined) return this.encodeRequestData(id, ref, args, dl, notify, cb, o.metadataJson);
    try {
      const data = this.encodeRequestData(id, ref, args, dl, notify, cb, this.carriedMetadata(event, o));
      (event as { bytes: number | undefined }).bytes = Buffer.byteLength(data, 'utf8');
      return data;
    } catch (err) {
      settleCallEvent(event, toError(err));
      throw err;
    }
  }

  private encodeRequestData(id: string, ref: MethodRef, args: unknown[], dl: number, notify: boolean, cb: RequestHeader['cb'], metadataJson: string | undefined): string {
    const data = encodeRequest(id, ref.json, dl, notify, cb, encodeValue(this.host.serializer, args, () => `arguments of "${ref.method}"`), metadataJson);
    const bytes = bytesOverLimit(data, this.host.maxMessageBytes);
    if (bytes !== undefined) throw new RPCPayloadTooLargeError(`the request "${ref.method}"`, bytes, this.host.maxMessageBytes);
    return data;
  }

  /** The proxy's metadata with what instrumentation put in the carrier (trace context). */
  private carriedMetadata(event: RPCCallEvent, o: ResolvedCallOptions): string | undefined {
    const carried = Object.keys(event.carrier);
    if (carried.length === 0) return o.metadataJson;
    const merged: Record<string, string> = { ...o.metadata };
    for (const name of carried) merged[name] = event.carrier[name] as string;
    const problem = metadataProblem(merged);
    if (problem === undefined) return JSON.stringify(merged);
    this.host.reportError(new RPCInvalidArgumentError('metadata', `entries added by instrumentation were left out: ${problem}`));
    return o.metadataJson;
  }
}

function hasOwnStack(serialized: unknown): boolean {
  return typeof serialized === 'object' && serialized !== null && typeof (serialized as { stack?: unknown }).stack === 'string';
}
