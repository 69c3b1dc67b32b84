import { RPCChannelClosedError, RPCInvalidArgumentError, RPCPayloadTooLargeError, RPCProtocolError, RPCSignatureError, toError } from '../errors.js';
import { emptyIoStats, type IoEvents, type IoGauges, type IoInboundMessage, type IoInterface, type IoStats } from '../io/io-interface.js';
import { TypedEmitter } from '../io/typed-emitter.js';
import { MessageKind, bytesOverLimit, decodeMessage, salvageHeader, type RequestHeader } from '../protocol/envelope.js';
import type { Serializer } from '../protocol/serializer.js';
import { drainGraceMs, type DrainOptions } from '../io/drain.js';
import { builtIns } from './built-ins.js';
import { Caller } from './caller.js';
import { channelCloseChannel, channelOpenChannel, endpointInfo, type RPCChannelEvent, type RPCEndpointInfo } from './diagnostics.js';
import { resolveCallOptions, resolveChannelOptions, type RPCChannelOptions } from './options.js';
import { createProxy, type Invoke } from './proxy.js';
import { RequestHandler } from './request-handler.js';
import type { CallOptions, NotifyAPI, RemoteAPI } from './types.js';

export { DEFAULT_CHANNEL_OPTIONS } from './options.js';
export type { RPCChannelOptions, RemoteStacksOption } from './options.js';

/** Counters of a channel and of its IO. */
export interface RPCStats extends IoStats {
  /** Calls and notifications made through proxies. */
  calls: number;
  /** Requests this side ran to completion. */
  handled: number;
  /** Calls that timed out. */
  timeouts: number;
  /** Requests not started because their caller's deadline had passed. */
  expired: number;
  /** Late or repeated answers ignored because their call had already settled. */
  duplicates: number;
}

/** Events of {@link RPCChannel}. */
export interface RPCChannelEvents {
  /** A background problem: a malformed message, a failed write, a notification handler that threw. */
  error: (error: Error) => void;
  /** A request was skipped because its deadline had passed before it could start. */
  expired: (info: { id: string; method: string }) => void;
  /** An answer arrived for a call that had already settled; it was ignored. */
  duplicate: (info: { id: string }) => void;
  /** A peer announced with `signalDestroy()` that it is going away. */
  'peer-destroyed': (peerId: string) => void;
}

/**
 * Typed, bidirectional RPC over any {@link IoInterface}. It serves a local API
 * and hands out typed proxies of the remote one. The channel owns its IO:
 * {@link RPCChannel.destroy} destroys it.
 *
 * @typeParam Local - The API this side exposes.
 * @typeParam Remote - The API the peer exposes.
 *
 * @example
 * ```ts
 * const io = new RedisStreamsIO({ url: process.env.REDIS_URL, stream: 'math' });
 * const channel = new RPCChannel<{}, { add(a: number, b: number): number }>(io);
 * const api = channel.getAPI();
 * const sum = await api.add(1, 2); // 3
 * await channel.destroy();
 * ```
 */
export class RPCChannel<Local extends object = Record<string, never>, Remote extends object = Record<string, never>> {
  private readonly events: TypedEmitter<RPCChannelEvents>;
  private readonly serializer: Serializer;
  private readonly timeoutMs: number;
  private readonly maxMessageBytes: number;
  private readonly caller: Caller;
  private readonly handler: RequestHandler;
  private readonly counters = { handled: 0, expired: 0 };
  private malformed = 0;
  private local: Local | undefined;
  private destroyed = false;
  private destroying: Promise<void> | undefined;
  private draining: Promise<number> | undefined;
  private readonly loop: Promise<void>;
  /** What instrumentation events say about this channel's transport. */
  private readonly where: RPCEndpointInfo;
  /** Published on `channel:open` and `channel:close`, when someone listens. */
  private lifeEvent: RPCChannelEvent | undefined;
  private readonly onIoError = (error: Error): void => {
    if (error instanceof RPCSignatureError) this.caller.noteRefusal(error);
    this.reportError(error);
  };
  private readonly onAnswersUnreachable = (error: Error): void => this.caller.rejectAll(() => error);
  private readonly onPeerDestroyed = (peerId: string): void => {
    this.handler.forgetPeer(peerId);
    this.events.emit('peer-destroyed', peerId);
  };

  /**
   * @param io - The transport; the channel starts reading it at once and owns it from now on.
   * @param options - See {@link RPCChannelOptions}.
   * @throws {@link RPCInvalidArgumentError} for an invalid option.
   */
  constructor(
    private readonly io: IoInterface<IoEvents>,
    options: RPCChannelOptions<Local> = {},
  ) {
    assertIo(io);
    const o = resolveChannelOptions(options);
    this.timeoutMs = o.timeoutMs;
    this.serializer = o.serializer;
    this.maxMessageBytes = o.maxMessageBytes;
    this.events = new TypedEmitter<RPCChannelEvents>(o.logger);
    this.where = endpointInfo(io);
    this.caller = new Caller({
      io,
      where: this.where,
      serializer: this.serializer,
      maxMessageBytes: o.maxMessageBytes,
      destroyed: () => this.destroyed,
      reportError: (e) => this.reportError(e),
      onDuplicate: (id) => this.events.emit('duplicate', { id }),
    });
    this.handler = new RequestHandler({
      io,
      where: this.where,
      serializer: this.serializer,
      maxMessageBytes: o.maxMessageBytes,
      withStacks: o.remoteStacks === 'keep',
      asyncContext: o.asyncContext,
      api: () => this.local,
      reportError: (e) => this.reportError(e),
      onExpired: (h) => this.countExpired(h),
      onHandled: () => void this.counters.handled++,
    });
    io.on('error', this.onIoError);
    io.on('peer-destroyed', this.onPeerDestroyed);
    io.on('answers-unreachable', this.onAnswersUnreachable);
    if (o.expose !== undefined) this.expose(o.expose);
    this.loop = this.readLoop().catch((err: unknown) => this.onLoopFailure(err));
    if (channelOpenChannel.hasSubscribers) {
      this.lifeEvent = { ...this.where, stats: () => this.stats(), gauges: () => this.gauges() };
      channelOpenChannel.publish(this.lifeEvent);
    }
  }

  /**
   * Serves `api` from now on, replacing any API exposed before. Only functions
   * reachable through own properties (or class methods) are callable; see the README.
   *
   * @param api - The local API object.
   * @throws {@link RPCInvalidArgumentError} when `api` is not an object.
   */
  expose(api: Local): void {
    if (typeof api !== 'object' || api === null) throw new RPCInvalidArgumentError('api', `expected an object, got ${String(api)}`);
    this.local = api;
    // Built once per process (tens of ms): here rather than on the first request served.
    builtIns();
    this.io.acceptRequests?.();
  }

  /**
   * A typed proxy of the remote API.
   *
   * @param options - Per-call options for calls made through this proxy: `timeout`, `metadata`.
   * @returns A proxy: `await api.math.add(1, 2)`.
   * @throws {@link RPCInvalidArgumentError} for an unknown or invalid option.
   */
  getAPI(options: CallOptions = {}): RemoteAPI<Remote> {
    const resolved = resolveCallOptions(options, this.timeoutMs);
    return this.proxy((ref, args) => this.caller.call(ref, args, resolved)) as RemoteAPI<Remote>;
  }

  /**
   * A proxy whose calls are notifications: no answer is expected, each call
   * resolves once written. The remote handler's failures stay on the remote side.
   *
   * @param options - `timeout`: how long the notification stays worth running
   *   (its deadline; a worker that gets it later skips it as expired); `metadata`: as for getAPI.
   * @returns A proxy: `await channel.notify().log('hi')`.
   * @throws {@link RPCInvalidArgumentError} for an unknown or invalid option.
   */
  notify(options: CallOptions = {}): NotifyAPI<Remote> {
    const resolved = resolveCallOptions(options, this.timeoutMs);
    return this.proxy((ref, args) => this.caller.send(ref, args, resolved)) as NotifyAPI<Remote>;
  }

  /** Counters of this channel and its IO. */
  stats(): RPCStats {
    const io = { ...emptyIoStats(), ...this.io.stats?.() };
    return { ...io, malformed: io.malformed + this.malformed, ...this.caller.counters, ...this.counters };
  }

  /**
   * The IO's gauges: load-balanced, the consumer group's lag (requests not
   * delivered to any worker yet) and pending count, as last sampled; empty
   * when the IO does not know them.
   */
  gauges(): IoGauges {
    return { ...this.io.gauges?.() };
  }

  /** Subscribes to an event. */
  on<E extends keyof RPCChannelEvents & string>(event: E, listener: RPCChannelEvents[E]): this {
    this.events.on(event, listener);
    return this;
  }

  /** Subscribes to the next occurrence of an event. */
  once<E extends keyof RPCChannelEvents & string>(event: E, listener: RPCChannelEvents[E]): this {
    this.events.once(event, listener);
    return this;
  }

  /** Unsubscribes a listener. */
  off<E extends keyof RPCChannelEvents & string>(event: E, listener: RPCChannelEvents[E]): this {
    this.events.off(event, listener);
    return this;
  }

  /**
   * Tells peers this endpoint is going away (see the IO's `signalDestroy`). It
   * does not destroy anything, here or there.
   */
  async signalDestroy(): Promise<void> {
    if (this.destroyed) throw new RPCChannelClosedError('RPC channel is destroyed');
    await this.io.signalDestroy?.();
  }

  /**
   * Graceful stop of a server or worker, for rolling deploys: stops taking
   * requests, lets the requests being handled finish and their answers be
   * written, for up to `graceMs`, then destroys the channel (see
   * {@link destroy}). A load-balanced {@link RedisStreamsIO} hands every
   * request it still holds back to its group at the end of the grace period,
   * so another worker runs it at once instead of after `claimIdleMs`.
   * Idempotent: a second call waits for the first.
   *
   * @param options.graceMs - Longest wait for running requests, in milliseconds. @defaultValue 10000
   * @returns The number of requests the IO handed back unfinished.
   * @throws {@link RPCInvalidArgumentError} for a bad `graceMs` (nothing is stopped).
   * @example
   * ```ts
   * process.once('SIGTERM', () => void worker.drain({ graceMs: 20_000 }));
   * ```
   */
  async drain(options?: DrainOptions): Promise<number> {
    const graceMs = drainGraceMs(options);
    this.draining ??= this.drainNow(graceMs);
    return this.draining;
  }

  private async drainNow(graceMs: number): Promise<number> {
    if (this.destroyed) return 0;
    let handedBack = 0;
    try {
      const io = this.io.drain?.({ graceMs }).then((n) => (handedBack = n));
      await Promise.all([io, this.handler.whenIdle(graceMs)]);
    } finally {
      await this.destroy();
    }
    return handedBack;
  }

  /**
   * Closes the channel: every pending call rejects at once with
   * {@link RPCChannelClosedError}, timers are cleared and the IO is destroyed.
   * Idempotent. Requests still being handled are not answered; a load-balanced
   * transport delivers them again to another worker.
   */
  destroy(): Promise<void> {
    this.destroying ??= this.close();
    return this.destroying;
  }

  private async close(): Promise<void> {
    this.destroyed = true;
    this.caller.rejectAll((call) => new RPCChannelClosedError(`RPC channel destroyed while "${call.method}" was pending`));
    this.handler.forgetAll();
    try {
      await this.io.destroy?.();
    } finally {
      await this.loop;
      this.io.off('error', this.onIoError);
      this.io.off('peer-destroyed', this.onPeerDestroyed);
      this.io.off('answers-unreachable', this.onAnswersUnreachable);
      if (this.lifeEvent !== undefined && channelCloseChannel.hasSubscribers) channelCloseChannel.publish(this.lifeEvent);
    }
  }

  private proxy(invoke: Invoke): unknown {
    return createProxy([], invoke);
  }

  private async readLoop(): Promise<void> {
    for (;;) {
      const message = await this.io.read();
      if (message === null) return;
      this.dispatch(message);
    }
  }

  /**
   * The read loop should never fail (each message is its own failure domain);
   * if the IO's read() does, this channel can no longer serve or be answered:
   * it is destroyed, so a load-balanced worker stops holding (and renewing the
   * leases of) requests it will never run, and its calls fail now rather than time out.
   */
  private onLoopFailure(err: unknown): void {
    if (this.destroyed) return;
    this.reportError(new RPCProtocolError('The read loop failed; the channel is destroyed', undefined, { cause: err }));
    this.destroy().catch((e: unknown) => this.reportError(toError(e)));
  }

  /** One inbound message, in its own failure domain: nothing it holds can stop the loop. */
  private dispatch(message: IoInboundMessage): void {
    try {
      this.route(message);
    } catch (err) {
      // A bug or a hostile shape got past every check: still answer or settle what can be.
      this.refuse(message, new RPCProtocolError('Handling an inbound message failed', message.id, { cause: err }));
    }
  }

  private route(message: IoInboundMessage): void {
    const { data } = message;
    if (typeof data !== 'string') return this.refuse(message, new RPCProtocolError('Message data is not a string', message.id));
    const bytes = bytesOverLimit(data, this.maxMessageBytes);
    if (bytes !== undefined) return this.refuse(message, new RPCPayloadTooLargeError(message.id === undefined ? 'an inbound message' : `inbound entry ${message.id}`, bytes, this.maxMessageBytes));
    let decoded;
    try {
      decoded = decodeMessage(data, message.id);
    } catch (err) {
      return this.refuse(message, toError(err));
    }
    const { header, payload } = decoded;
    if (header.k !== MessageKind.Request && (message.receipt !== undefined || message.lane === 'request')) {
      // Only requests travel on the request stream: an answer there is not ours
      // to settle anything with. Acknowledge it so it cannot hold a worker slot.
      this.malformed++;
      this.reportError(new RPCProtocolError(`A "${header.k}" message arrived on the request stream`, message.id));
      this.ackQuietly(message);
      return;
    }
    if (header.k === MessageKind.Request && message.lane === 'reply') {
      // Written straight into this endpoint's inbox, past the request stream (and the pool's
      // group): not run, and not answered, so a forged request cannot make this side write.
      this.malformed++;
      this.reportError(new RPCProtocolError(`A request ("${header.m.join('.')}") arrived in this endpoint's inbox, where only answers and callback invocations belong; it was not run`, message.id));
      return;
    }
    switch (header.k) {
      case MessageKind.Request:
        return this.handler.handle(header, payload, message);
      case MessageKind.Result:
        return this.caller.settle(header.id, payload, true);
      case MessageKind.Error:
        return this.caller.settle(header.id, payload, false);
      case MessageKind.Callback:
        return this.caller.runCallback(header, payload);
      default:
        return assertNever(header);
    }
  }

  /**
   * A message that will not be handled: counted and reported; a request whose
   * id can still be read is answered with `error` (unless it is a
   * notification), an answer whose call is pending rejects that call with it,
   * and whatever else holds a receipt is acknowledged. Never throws.
   */
  private refuse(message: IoInboundMessage, error: Error): void {
    this.malformed++;
    this.reportError(error);
    const salvaged = typeof message.data === 'string' ? salvageHeader(message.data) : undefined;
    if (salvaged?.kind === MessageKind.Request) {
      // Not from an inbox: a request there is answered by nobody (see route).
      if (!salvaged.notification && message.from !== undefined && message.lane !== 'reply') return this.handler.refuse(salvaged.id, message, error);
    } else if (salvaged !== undefined && message.receipt === undefined && message.lane !== 'request' && (salvaged.kind === MessageKind.Result || salvaged.kind === MessageKind.Error)) {
      this.caller.reject(salvaged.id, error);
    }
    this.ackQuietly(message);
  }

  private ackQuietly(message: IoInboundMessage): void {
    if (message.receipt === undefined || this.io.ack === undefined) return;
    this.io.ack(message.receipt).catch((e: unknown) => this.reportError(toError(e)));
  }

  private countExpired(header: RequestHeader): void {
    this.counters.expired++;
    this.events.emit('expired', { id: header.id, method: header.m.join('.') });
  }

  private reportError(error: Error): void {
    // After destroy(), writes of answers and callbacks still in flight fail on the closed IO
    // (RPCChannelClosedError from MemoryIO, RedisStreamsDestroyedError from Redis): expected, not news.
    if (this.destroyed && (error instanceof RPCChannelClosedError || error.name === 'RedisStreamsDestroyedError')) return;
    this.events.emit('error', error);
  }
}

function assertIo(io: unknown): asserts io is IoInterface<IoEvents> {
  const candidate = io as Partial<IoInterface<IoEvents>> | null | undefined;
  const ok = typeof candidate === 'object' && candidate !== null && ['read', 'write', 'on', 'off'].every((m) => typeof candidate[m as keyof IoInterface] === 'function');
  if (!ok) throw new RPCInvalidArgumentError('io', 'expected an IoInterface (an object with read, write, on and off), such as a RedisStreamsIO');
}

function assertNever(value: never): never {
  throw new Error(`Unhandled message kind: ${JSON.stringify(value)}`);
}
