import { RPCQueueOverflowError } from '../errors.js';
import type { IoLane } from './io-interface.js';

/** First in, first out, O(1) amortised at both ends. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    // Compact once the consumed prefix dominates, keeping shift O(1) amortised.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes the items `match` selects, keeping the order of the rest. O(size). */
  removeWhere(match: (item: T) => boolean, removed: T[]): void {
    const kept: T[] = [];
    const before = removed.length;
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i] as T;
      if (match(item)) removed.push(item);
      else kept.push(item);
    }
    if (removed.length === before) return;
    this.items = kept;
    this.head = 0;
  }

  clear(): T[] {
    const rest = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}

/**
 * The bounded in-memory queue between a transport and its reader, in two
 * lanes of `maxSize` each: replies (answers and callback invocations for this
 * endpoint's own calls) and requests. `next()` hands out replies first, so an
 * answer never waits behind requests, and a full lane drops its own oldest
 * item, so requests never push an answer out (nor the reverse). Every drop is
 * handed to `onDrop`: counted and reported. `reserve()` lets a poller of the
 * request lane ask for no more than there is room for, which keeps drops to a
 * safety net rather than a habit.
 */
export class InboundQueue<T> {
  private readonly lanes: Record<IoLane, Fifo<T>> = { reply: new Fifo<T>(), request: new Fifo<T>() };
  private waiter: ((value: T | null) => void) | undefined;
  private reserved = 0;
  private closed = false;
  private roomWaiters: { lane: IoLane; wake: () => void }[] = [];
  /** Total items dropped. */
  dropped = 0;

  /**
   * @param maxSize - Largest number of queued items in each lane.
   * @param onDrop - Called with each dropped item and the overflow error.
   * @param laneOf - Which lane an item goes to; everything is a request without it.
   */
  constructor(
    readonly maxSize: number,
    private readonly onDrop: (item: T, error: RPCQueueOverflowError) => void,
    private readonly laneOf: (item: T) => IoLane = () => 'request',
  ) {}

  /** Queued items, both lanes. */
  get size(): number {
    return this.lanes.reply.size + this.lanes.request.size;
  }

  /** Queued items of one lane. */
  sizeOf(lane: IoLane): number {
    return this.lanes[lane].size;
  }

  /** Free slots of the request lane not yet reserved by a poller. */
  get room(): number {
    return this.roomOf('request');
  }

  /** Free slots of a lane (for requests: not yet reserved by a poller). */
  roomOf(lane: IoLane): number {
    const taken = this.lanes[lane].size + (lane === 'request' ? this.reserved : 0);
    return Math.max(0, this.maxSize - taken);
  }

  /** Reserves up to `wanted` slots of the request lane and returns how many were granted. */
  reserve(wanted: number): number {
    const granted = Math.min(wanted, this.room);
    this.reserved += granted;
    return granted;
  }

  /** Returns slots granted by {@link reserve} (call once the poll has pushed its items). */
  release(count: number): void {
    this.reserved = Math.max(0, this.reserved - count);
    this.wakeRoomWaiters();
  }

  /** Resolves once a lane has room for at least one item (or the queue is closed). */
  waitForRoom(lane: IoLane = 'request'): Promise<void> {
    if (this.roomOf(lane) > 0 || this.closed) return Promise.resolve();
    return new Promise((wake) => this.roomWaiters.push({ lane, wake }));
  }

  /**
   * Adds an item to its lane, dropping that lane's oldest when full.
   *
   * @param slack - How far past `maxSize` this push may fill the lane before
   *   dropping: a reader that checked for room before taking a batch that must
   *   be taken whole (one stream entry) passes the batch's size.
   */
  push(item: T, slack = 0): void {
    if (this.closed) return;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter(item);
      return;
    }
    const lane = this.lanes[this.laneOf(item)];
    if (lane.size >= this.maxSize + slack) {
      const oldest = lane.shift();
      this.dropped++;
      if (oldest !== undefined) this.onDrop(oldest, new RPCQueueOverflowError(this.maxSize, this.dropped));
    }
    lane.push(item);
  }

  /** Resolves with the next item, replies first, or `null` once closed. */
  next(): Promise<T | null> {
    const item = this.lanes.reply.size > 0 ? this.lanes.reply.shift() : this.lanes.request.shift();
    if (item !== undefined) {
      this.wakeRoomWaiters();
      return Promise.resolve(item);
    }
    if (this.closed) return Promise.resolve(null);
    if (this.waiter !== undefined) {
      return Promise.reject(new Error('InboundQueue: only one read may be outstanding at a time'));
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.wakeRoomWaiters();
    });
  }

  /** Removes (and returns) the queued items `match` selects, keeping the order of the rest. O(size). */
  removeWhere(match: (item: T) => boolean): T[] {
    const removed: T[] = [];
    this.lanes.reply.removeWhere(match, removed);
    this.lanes.request.removeWhere(match, removed);
    if (removed.length > 0) this.wakeRoomWaiters();
    return removed;
  }

  /** Closes the queue: queued items are discarded (and returned) and readers get `null`. */
  close(): T[] {
    this.closed = true;
    const rest = [...this.lanes.reply.clear(), ...this.lanes.request.clear()];
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(null);
    this.wakeRoomWaiters(true);
    return rest;
  }

  private wakeRoomWaiters(force = false): void {
    if (this.roomWaiters.length === 0) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) {
      if (force || this.roomOf(w.lane) > 0) w.wake();
      else this.roomWaiters.push(w);
    }
  }
}
