/**
 * The serving half of a channel: runs requests against the exposed API and
 * writes answers, settling the transport's receipt together with the answer.
 *
 * @module
 */
import { RPCDeliveryError, RPCMethodNotFoundError, RPCPayloadTooLargeError, RPCProtocolError, toError } from '../errors.js';
import type { IoInboundMessage, IoInterface, IoOutboundMessage } from '../io/io-interface.js';
import { MessageKind, bytesOverLimit, encodeAnswer, encodeMessage, type RequestHeader } from '../protocol/envelope.js';
import { serializeError } from '../protocol/error-codec.js';
import { decodeValue, encodeValue, type Serializer } from '../protocol/serializer.js';
import { debugLog } from '../debug-log.js';
import { injectCallbacks } from './callbacks.js';
import { endHandleEvent, handlingObserved, startHandleEvent, type RPCEndpointInfo, type RPCHandleEvent } from './diagnostics.js';
import { ActiveContext, runInContext } from './request-context.js';
import { resolveMethod } from './method-resolver.js';

/** What the handler needs from its channel. */
export interface RequestHandlerHost {
  readonly io: IoInterface;
  /** What instrumentation events say about the transport. */
  readonly where: RPCEndpointInfo;
  readonly serializer: Serializer;
  /** Largest message written, in bytes (`maxMessageBytes`). */
  readonly maxMessageBytes: number;
  /** Whether handler stacks travel to callers (`remoteStacks: 'keep'`). */
  readonly withStacks: boolean;
  /** Whether the request context follows handlers' awaits (`asyncContext`). */
  readonly asyncContext: boolean;
  /** The exposed API, or undefined when this channel serves nothing. */
  api(): object | undefined;
  reportError(error: Error): void;
  onExpired(header: RequestHeader): void;
  onHandled(): void;
}

/** A request being served; its callbacks stop working once it settles. */
interface ActiveRequest {
  /** Set once answered, or when its caller went away: callbacks stop. */
  settled: boolean;
  /** Set once the handler's outcome was taken: a thenable settling twice answers once. */
  finished: boolean;
  readonly from: string | undefined;
  readonly context: ActiveContext;
  /** The instrumentation event of this run, when someone subscribes. */
  readonly event: RPCHandleEvent | undefined;
  /** Neighbours in {@link ActiveList}. */
  prev: ActiveRequest | undefined;
  next: ActiveRequest | undefined;
  linked: boolean;
}

/**
 * The requests being served, as an intrusive doubly-linked list: adding and
 * removing one costs two pointer writes, where a Set would hash every request
 * object on this hot path (measured: the largest cost of the serving half).
 */
class ActiveList {
  size = 0;
  private head: ActiveRequest | undefined;

  add(request: ActiveRequest): void {
    request.prev = undefined;
    request.next = this.head;
    if (this.head !== undefined) this.head.prev = request;
    this.head = request;
    request.linked = true;
    this.size++;
  }

  delete(request: ActiveRequest): void {
    if (!request.linked) return;
    if (request.prev !== undefined) request.prev.next = request.next;
    else this.head = request.next;
    if (request.next !== undefined) request.next.prev = request.prev;
    request.prev = request.next = undefined;
    request.linked = false;
    this.size--;
  }

  /** Every request, in a snapshot (so the callback may remove them). */
  snapshot(): ActiveRequest[] {
    const all: ActiveRequest[] = [];
    for (let r = this.head; r !== undefined; r = r.next) all.push(r);
    return all;
  }

  clear(): void {
    for (const request of this.snapshot()) this.delete(request);
  }
}

const NO_METADATA = Object.freeze({});

/** Runs inbound requests. */
export class RequestHandler {
  private readonly active = new ActiveList();
  /** Answers handed to the IO and not written yet. */
  private writing = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly host: RequestHandlerHost) {}

  /** Stops every callback of requests from `peerId` (it announced it is going away). */
  forgetPeer(peerId: string): void {
    for (const request of this.active.snapshot()) {
      if (request.from !== peerId) continue;
      request.settled = true;
      request.context.abort(`the caller ${peerId} announced it is going away`);
    }
  }

  /** Stops every callback (the channel is closing). */
  forgetAll(): void {
    for (const request of this.active.snapshot()) {
      request.settled = true;
      request.context.abort('the serving channel was destroyed');
    }
    this.active.clear();
  }

  /** Resolves once no request is being handled and every answer is written, or after `ms`. */
  whenIdle(ms: number): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private idle(): boolean {
    return this.active.size === 0 && this.writing === 0;
  }

  private wakeIfIdle(): void {
    if (this.idleWaiters.length === 0 || !this.idle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Handles one decoded request. */
  handle(header: RequestHeader, payload: string, message: IoInboundMessage): void {
    const { host } = this;
    const isNotification = header.n === 1;
    if (message.undeliverable !== undefined) {
      const { deliveries, reason } = message.undeliverable;
      const error = new RPCDeliveryError(`Request "${header.m.join('.')}" was not delivered: ${reason}`, deliveries);
      if (!isNotification) this.answer(header, message, MessageKind.Error, serializeError(error, this.host.withStacks), false);
      host.reportError(error);
      return;
    }
    const api = host.api();
    if (api === undefined) {
      // Not serving: in broadcast mode the serving peers answer, so stay silent;
      // point-to-point, fail fast instead of letting the caller time out.
      if (host.io.capabilities.broadcast) this.settleQuietly(message);
      else this.fail(header, message, new RPCMethodNotFoundError(header.m.join('.')));
      return;
    }
    if (Date.now() > header.dl) {
      host.onExpired(header);
      this.settleQuietly(message);
      return;
    }
    let method;
    try {
      method = resolveMethod(api, header.m);
    } catch {
      // The resolver reads descriptors only; a Proxy in the exposed tree can still throw.
      method = undefined;
    }
    if (method === undefined) {
      this.fail(header, message, new RPCMethodNotFoundError(header.m.join('.')));
      return;
    }
    let args: unknown;
    try {
      args = decodeValue(host.serializer, payload, 'request arguments');
    } catch (err) {
      this.fail(header, message, toError(err));
      return;
    }
    if (!Array.isArray(args)) {
      this.fail(header, message, new RPCProtocolError('Request arguments are not an array', message.id));
      return;
    }
    this.run(header, message, method.fn, method.self, args);
  }

  /**
   * Refuses a request that could not be decoded (only its id could be read)
   * by answering `error` to its sender, with the receipt settled.
   */
  refuse(id: string, message: IoInboundMessage, error: Error): void {
    this.write(id, message, MessageKind.Error, this.encodeError(error, 'the error'));
  }

  private run(header: RequestHeader, message: IoInboundMessage, fn: (...a: unknown[]) => unknown, self: unknown, args: unknown[]): void {
    const context = new ActiveContext(header.id, header.m, message.from, header.dl, header.n === 1, header.md);
    // Instrumentation seam: nothing is built unless someone subscribes (see diagnostics.ts).
    const event = handlingObserved() ? this.startEvent(header, message) : undefined;
    const request: ActiveRequest = { settled: false, finished: false, from: message.from, context, event, prev: undefined, next: undefined, linked: false };
    if (debugLog.handle.enabled) debugLog.handle('handle %s %s from %s (entry %s)', header.id, header.m.join('.'), message.from, message.id);
    if (header.cb !== undefined) injectCallbacks(args, header.cb, (index) => this.callbackStub(header.id, index, request, message.from));
    this.active.add(request);
    const { asyncContext } = this.host;
    try {
      const result =
        event?.scope === undefined ? runInContext(context, asyncContext, fn, self, args) : event.scope(() => runInContext(context, asyncContext, fn, self, args));
      // Reading `then` may run a getter of the result: it is the handler's outcome too.
      if (isThenable(result)) {
        result.then(
          (value) => this.finish(request, header, message, true, value),
          (err: unknown) => this.finish(request, header, message, false, err),
        );
      } else this.finish(request, header, message, true, result);
    } catch (err) {
      this.finish(request, header, message, false, err);
    }
  }

  private finish(request: ActiveRequest, header: RequestHeader, message: IoInboundMessage, ok: boolean, value: unknown): void {
    if (request.finished) return;
    request.finished = true;
    request.settled = true;
    request.context.stop();
    this.active.delete(request);
    this.host.onHandled();
    if (request.event !== undefined) endHandleEvent(request.event, ok ? undefined : toError(value));
    if (debugLog.handle.enabled) debugLog.handle('handled %s: %s', header.id, ok ? 'ok' : toError(value).name);
    if (header.n === 1) {
      if (!ok) this.host.reportError(toError(value));
      this.settleQuietly(message);
      return;
    }
    if (ok) this.answer(header, message, MessageKind.Result, value, true);
    else this.answer(header, message, MessageKind.Error, serializeError(value, this.host.withStacks), false);
  }

  private fail(header: RequestHeader, message: IoInboundMessage, error: Error): void {
    if (handlingObserved()) endHandleEvent(this.startEvent(header, message), error);
    if (header.n === 1) {
      this.host.reportError(error);
      this.settleQuietly(message);
      return;
    }
    this.answer(header, message, MessageKind.Error, serializeError(error, this.host.withStacks), false);
  }

  /**
   * Encodes and writes an answer. A result that cannot be encoded, or is
   * larger than `maxMessageBytes`, becomes an error answer saying so: the
   * caller always hears back.
   */
  private answer(header: RequestHeader, message: IoInboundMessage, kind: typeof MessageKind.Result | typeof MessageKind.Error, body: unknown, isResult: boolean): void {
    // Built only on failure: the hot path joins no strings.
    const what = (): string => `the ${isResult ? 'result' : 'error'} of "${header.m.join('.')}"`;
    let payload: string;
    try {
      payload = encodeValue(this.host.serializer, body, what);
    } catch (err) {
      this.write(header.id, message, MessageKind.Error, this.encodeError(err, what()));
      return;
    }
    const bytes = bytesOverLimit(payload, this.host.maxMessageBytes);
    if (bytes !== undefined) {
      this.write(header.id, message, MessageKind.Error, this.encodeError(new RPCPayloadTooLargeError(what(), bytes, this.host.maxMessageBytes), what()));
      return;
    }
    this.write(header.id, message, kind, payload);
  }

  /**
   * An error answer's payload. Falls back to an error made of strings only,
   * which every serializer can encode; a custom serializer that cannot encode
   * even that gets `undefined` (reported, the caller's call times out).
   */
  private encodeError(error: unknown, what: string): string | undefined {
    try {
      return encodeValue(this.host.serializer, serializeError(error, this.host.withStacks), what);
    } catch (err) {
      const plain = { name: 'RPCSerializationError', message: `The remote side could not encode ${what}`, props: { code: 'ERR_RPC_SERIALIZATION' } };
      try {
        return encodeValue(this.host.serializer, plain, what);
      } catch {
        this.host.reportError(toError(err));
        return undefined;
      }
    }
  }

  private write(id: string, message: IoInboundMessage, kind: typeof MessageKind.Result | typeof MessageKind.Error, payload: string | undefined): void {
    if (payload === undefined) {
      this.settleQuietly(message);
      return;
    }
    const out: IoOutboundMessage = { data: encodeAnswer(kind, id, payload), target: message.from, settles: message.receipt };
    this.track(this.host.io.write(out));
  }

  /** Counts a write until it settles (see {@link whenIdle}); a failure is reported. */
  private track(write: Promise<void>): void {
    this.writing++;
    write.then(
      () => this.written(),
      (err: unknown) => {
        this.written();
        this.host.reportError(toError(err));
      },
    );
  }

  private written(): void {
    this.writing--;
    this.wakeIfIdle();
  }

  private settleQuietly(message: IoInboundMessage): void {
    const { receipt } = message;
    if (receipt === undefined || this.host.io.ack === undefined) {
      this.wakeIfIdle();
      return;
    }
    this.track(this.host.io.ack(receipt));
  }

  private startEvent(header: RequestHeader, message: IoInboundMessage): RPCHandleEvent {
    return startHandleEvent(this.host.where, {
      id: header.id,
      method: header.m.join('.'),
      notification: header.n === 1,
      caller: message.from,
      messageId: message.id,
      deadline: header.dl,
      metadata: header.md ?? NO_METADATA,
      data: message.data,
    });
  }

  private callbackStub(callId: string, index: number, request: ActiveRequest, target: string | undefined): (...a: unknown[]) => void {
    return (...cbArgs: unknown[]): void => {
      // Fire-and-forget by design: a callback never rejects into user code that
      // did not await it; failures go to the 'error' event.
      if (request.settled) return;
      let payload: string;
      try {
        payload = encodeValue(this.host.serializer, cbArgs, 'callback arguments');
      } catch (err) {
        this.host.reportError(toError(err));
        return;
      }
      const data = encodeMessage({ v: 1, k: MessageKind.Callback, id: callId, c: index }, payload);
      const bytes = bytesOverLimit(data, this.host.maxMessageBytes);
      if (bytes !== undefined) {
        this.host.reportError(new RPCPayloadTooLargeError(`arguments of callback ${index} of call ${callId}`, bytes, this.host.maxMessageBytes));
        return;
      }
      this.host.io.write({ data, target }).catch((err: unknown) => this.host.reportError(toError(err)));
    };
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}
