import { nanoid } from 'nanoid';
import { RPCChannelClosedError, RPCInvalidArgumentError } from '../errors.js';
import { InboundQueue } from '../io/inbound-queue.js';
import {
  emptyIoStats,
  type IoCapabilities,
  type IoEvents,
  type IoInboundMessage,
  type IoInterface,
  type IoOutboundMessage,
  type IoStats,
} from '../io/io-interface.js';
import { TypedEmitter, type Logger } from '../io/typed-emitter.js';
import { invalidOutbound } from '../io/validate-outbound.js';

/** Options of {@link createMemoryIoPair}. */
export interface MemoryIOOptions {
  /**
   * Bound of each side's inbound queue; the oldest message is dropped (and reported) beyond it.
   * @defaultValue 1000
   */
  maxQueueSize?: number;
  /** Receives errors when nobody listens to `'error'`. */
  logger?: Logger;
}

/** Defaults of {@link MemoryIOOptions}. */
export const DEFAULT_MEMORY_IO_OPTIONS = {
  /** Bound of each inbound queue. */
  maxQueueSize: 1000,
} as const;

/**
 * One end of an in-process, point-to-point IO pair. Useful for tests and for
 * running two channels in one process; created by {@link createMemoryIoPair}.
 */
export class MemoryIO implements IoInterface {
  readonly capabilities: IoCapabilities = { addressing: true, acknowledgements: false, loadBalanced: false, broadcast: false };
  readonly id: string;
  private readonly events: TypedEmitter<IoEvents>;
  private readonly queue: InboundQueue<IoInboundMessage>;
  private readonly counters: IoStats = emptyIoStats();
  private peer: MemoryIO | undefined;
  private destroyed = false;

  /** @internal Use {@link createMemoryIoPair}. */
  constructor(
    readonly name: string,
    options: MemoryIOOptions,
  ) {
    const maxQueueSize = options.maxQueueSize ?? DEFAULT_MEMORY_IO_OPTIONS.maxQueueSize;
    if (!Number.isInteger(maxQueueSize) || maxQueueSize < 1) {
      throw new RPCInvalidArgumentError('maxQueueSize', `expected a positive integer, got ${String(maxQueueSize)}`);
    }
    this.id = `${name}-${nanoid(8)}`;
    this.events = new TypedEmitter<IoEvents>(options.logger);
    this.queue = new InboundQueue<IoInboundMessage>(
      maxQueueSize,
      (_dropped, error) => {
        this.counters.dropped++;
        this.events.emit('error', error);
      },
      (message) => (message.lane === 'reply' ? 'reply' : 'request'),
    );
  }

  /** @internal */
  connect(peer: MemoryIO): void {
    this.peer = peer;
  }

  /** Messages waiting to be read. */
  get queued(): number {
    return this.queue.size;
  }

  read(): Promise<IoInboundMessage | null> {
    return this.queue.next();
  }

  async write(message: IoOutboundMessage): Promise<void> {
    // async: anything thrown here, a malformed message included, rejects the promise.
    const invalid = invalidOutbound(message);
    if (invalid !== undefined) throw invalid;
    if (this.destroyed) throw new RPCChannelClosedError(`MemoryIO "${this.name}" is destroyed`);
    this.counters.sent++;
    // Addressed messages are answers and callback invocations (lane 'reply': a request among them
    // is refused). One pipe carries both ways, so an unaddressed one says nothing about its lane.
    if (message.target === undefined) this.peer?.deliver({ data: message.data, from: this.id });
    else this.peer?.deliver({ data: message.data, from: this.id, lane: 'reply' });
  }

  async signalDestroy(): Promise<void> {
    if (this.destroyed) throw new RPCChannelClosedError(`MemoryIO "${this.name}" is destroyed`);
    this.peer?.events.emit('peer-destroyed', this.id);
  }

  on<E extends keyof IoEvents & string>(event: E, listener: IoEvents[E]): this {
    this.events.on(event, listener);
    return this;
  }

  off<E extends keyof IoEvents & string>(event: E, listener: IoEvents[E]): this {
    this.events.off(event, listener);
    return this;
  }

  stats(): IoStats {
    return { ...this.counters, dropped: this.queue.dropped };
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.queue.close();
  }

  private deliver(message: IoInboundMessage): void {
    if (this.destroyed) return;
    this.counters.received++;
    this.queue.push(message);
    this.events.emit('message', message);
  }
}

/**
 * Two connected in-memory IOs: what one writes, the other reads. Each has its
 * own bounded inbound queue.
 *
 * @param options - Applied to both ends.
 * @returns `[a, b]`.
 * @example
 * ```ts
 * const [a, b] = createMemoryIoPair();
 * const server = new RPCChannel(a, { expose: { ping: () => 'pong' } });
 * const client = new RPCChannel<{}, { ping(): string }>(b);
 * await client.getAPI().ping(); // 'pong'
 * ```
 */
export function createMemoryIoPair(options: MemoryIOOptions = {}): [MemoryIO, MemoryIO] {
  const a = new MemoryIO('memory-a', options);
  const b = new MemoryIO('memory-b', options);
  a.connect(b);
  b.connect(a);
  return [a, b];
}
