/**
 * The serving half of a channel: runs requests against the exposed API and
 * writes answers, settling the transport's receipt together with the answer.
 *
 * @module
 */
import { RPCDeliveryError, RPCMethodNotFoundError, RPCProtocolError } from '../errors.js';
import type { IoInboundMessage, IoInterface, IoOutboundMessage } from '../io/io-interface.js';
import { MessageKind, encodeAnswer, encodeMessage, type RequestHeader } from '../protocol/envelope.js';
import { serializeError } from '../protocol/error-codec.js';
import { decodeValue, encodeValue, type Serializer } from '../protocol/serializer.js';
import { injectCallbacks } from './callbacks.js';
import { resolveMethod } from './method-resolver.js';

/** What the handler needs from its channel. */
export interface RequestHandlerHost {
  readonly io: IoInterface;
  readonly serializer: Serializer;
  /** The exposed API, or undefined when this channel serves nothing. */
  api(): object | undefined;
  reportError(error: Error): void;
  onExpired(header: RequestHeader): void;
  onHandled(): void;
}

/** A request being served; its callbacks stop working once it settles. */
interface ActiveRequest {
  settled: boolean;
  readonly from: string | undefined;
}

/** Runs inbound requests. */
export class RequestHandler {
  private readonly active = new Set<ActiveRequest>();

  constructor(private readonly host: RequestHandlerHost) {}

  /** Stops every callback of requests from `peerId` (it announced it is going away). */
  forgetPeer(peerId: string): void {
    for (const request of this.active) if (request.from === peerId) request.settled = true;
  }

  /** Stops every callback (the channel is closing). */
  forgetAll(): void {
    for (const request of this.active) request.settled = true;
    this.active.clear();
  }

  /** Handles one decoded request. */
  handle(header: RequestHeader, payload: string, message: IoInboundMessage): void {
    const { host } = this;
    const isNotification = header.n === 1;
    if (message.undeliverable !== undefined) {
      const { deliveries, reason } = message.undeliverable;
      const error = new RPCDeliveryError(`Request "${header.m.join('.')}" was not delivered: ${reason}`, deliveries);
      if (!isNotification) this.answer(header, message, MessageKind.Error, serializeError(error), false);
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
    const method = resolveMethod(api, header.m);
    if (method === undefined) {
      this.fail(header, message, new RPCMethodNotFoundError(header.m.join('.')));
      return;
    }
    let args: unknown;
    try {
      args = decodeValue(host.serializer, payload, 'request arguments');
    } catch (err) {
      this.fail(header, message, err as Error);
      return;
    }
    if (!Array.isArray(args)) {
      this.fail(header, message, new RPCProtocolError('Request arguments are not an array', message.id));
      return;
    }
    this.run(header, message, method.fn, method.self, args);
  }

  private run(header: RequestHeader, message: IoInboundMessage, fn: (...a: unknown[]) => unknown, self: unknown, args: unknown[]): void {
    const request: ActiveRequest = { settled: false, from: message.from };
    if (header.cb !== undefined) {
      injectCallbacks(args, header.cb, (index) => this.callbackStub(header.id, index, request, message.from));
      this.active.add(request);
    }
    let result: unknown;
    try {
      result = fn.apply(self, args);
    } catch (err) {
      this.finish(request, header, message, false, err);
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.finish(request, header, message, true, value),
        (err: unknown) => this.finish(request, header, message, false, err),
      );
    } else {
      this.finish(request, header, message, true, result);
    }
  }

  private finish(request: ActiveRequest, header: RequestHeader, message: IoInboundMessage, ok: boolean, value: unknown): void {
    request.settled = true;
    this.active.delete(request);
    this.host.onHandled();
    if (header.n === 1) {
      if (!ok) this.host.reportError(value instanceof Error ? value : new Error(String(value)));
      this.settleQuietly(message);
      return;
    }
    if (ok) this.answer(header, message, MessageKind.Result, value, true);
    else this.answer(header, message, MessageKind.Error, serializeError(value), false);
  }

  private fail(header: RequestHeader, message: IoInboundMessage, error: Error): void {
    if (header.n === 1) {
      this.host.reportError(error);
      this.settleQuietly(message);
      return;
    }
    this.answer(header, message, MessageKind.Error, serializeError(error), false);
  }

  private answer(header: RequestHeader, message: IoInboundMessage, kind: typeof MessageKind.Result | typeof MessageKind.Error, body: unknown, mayRetry: boolean): void {
    let payload: string;
    let k: typeof MessageKind.Result | typeof MessageKind.Error = kind;
    try {
      payload = encodeValue(this.host.serializer, body, kind === MessageKind.Result ? 'the result' : 'the error');
    } catch (err) {
      if (!mayRetry) {
        this.host.reportError(err as Error);
        this.settleQuietly(message);
        return;
      }
      k = MessageKind.Error;
      payload = encodeValue(this.host.serializer, serializeError(err), 'the error');
    }
    const out: IoOutboundMessage = {
      data: encodeAnswer(k, header.id, payload),
      target: message.from,
      settles: message.receipt,
    };
    this.host.io.write(out).catch((err: unknown) => this.host.reportError(err as Error));
  }

  private settleQuietly(message: IoInboundMessage): void {
    const { receipt } = message;
    if (receipt === undefined || this.host.io.ack === undefined) return;
    this.host.io.ack(receipt).catch((err: unknown) => this.host.reportError(err as Error));
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
        this.host.reportError(err as Error);
        return;
      }
      const data = encodeMessage({ v: 1, k: MessageKind.Callback, id: callId, c: index }, payload);
      this.host.io.write({ data, target }).catch((err: unknown) => this.host.reportError(err as Error));
    };
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}
