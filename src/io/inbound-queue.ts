import { RPCQueueOverflowError } from '../errors.js';

/**
 * The bounded in-memory queue between a transport and its reader. When full,
 * the oldest item is dropped and handed to `onDrop`, so a drop is always
 * counted and reported. `reserve()` lets a poller ask for no more than there
 * is room for, which keeps drops to a safety net rather than a habit.
 */
export class InboundQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private waiter: ((value: T | null) => void) | undefined;
  private reserved = 0;
  private closed = false;
  private roomWaiters: (() => void)[] = [];
  /** Total items dropped. */
  dropped = 0;

  /**
   * @param maxSize - Largest number of queued items.
   * @param onDrop - Called with each dropped item and the overflow error.
   */
  constructor(
    readonly maxSize: number,
    private readonly onDrop: (item: T, error: RPCQueueOverflowError) => void,
  ) {}

  /** Queued items. */
  get size(): number {
    return this.items.length - this.head;
  }

  /** Free slots not yet reserved by a poller. */
  get room(): number {
    return Math.max(0, this.maxSize - this.size - this.reserved);
  }

  /** Reserves up to `wanted` slots and returns how many were granted. */
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

  /** Resolves once there is room for at least one item (or the queue is closed). */
  waitForRoom(): Promise<void> {
    if (this.room > 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /**
   * Adds an item, dropping the oldest when full.
   *
   * @param slack - How far past `maxSize` this push may fill the queue before
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
    if (this.size >= this.maxSize + slack) {
      const oldest = this.shift();
      this.dropped++;
      if (oldest !== undefined) this.onDrop(oldest, new RPCQueueOverflowError(this.maxSize, this.dropped));
    }
    this.items.push(item);
  }

  /** Resolves with the next item, or `null` once closed. */
  next(): Promise<T | null> {
    const item = this.shift();
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
    const kept: T[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      if (item === undefined) continue;
      if (match(item)) removed.push(item);
      else kept.push(item);
    }
    if (removed.length === 0) return removed;
    this.items = kept;
    this.head = 0;
    this.wakeRoomWaiters();
    return removed;
  }

  /** Closes the queue: queued items are discarded and readers get `null`. */
  close(): T[] {
    this.closed = true;
    const rest = this.items.slice(this.head).filter((i): i is T => i !== undefined);
    this.items = [];
    this.head = 0;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(null);
    this.wakeRoomWaiters(true);
    return rest;
  }

  private shift(): T | undefined {
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

  private wakeRoomWaiters(force = false): void {
    if (this.roomWaiters.length === 0 || (!force && this.room === 0)) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }
}
