/**
 * The one owner of a load-balanced worker's credit: how many requests it
 * holds (queued for its channel or being handled) against its `concurrency`.
 * Every way a request ends releases its credit here and nowhere else:
 * answered or acknowledged ({@link CreditLedger.settle}), dropped from the
 * queue ({@link CreditLedger.drop}), handed back on drain
 * ({@link CreditLedger.handBack}), or the worker destroyed
 * ({@link CreditLedger.clear}). An expired request is acknowledged by the
 * channel, and a failed answer write has settled its credit when it was
 * issued (the request stays pending, unrenewed, for a take-over).
 *
 * @module
 */
import { Signal } from './async-utils.js';
import type { ParsedEntry } from './entries.js';

type DataEntry = ParsedEntry & { type: 'data' };

/** A request entry this worker holds. */
export interface HeldEntry {
  readonly entry: DataEntry;
  /** Deliveries of the entry, this one included. */
  readonly deliveries: number;
  /** Sequence number (see `Inbound.nextSeq`) of its first request: once the queue has let that go, the entry is being handled. */
  readonly firstSeq: number;
  /** Indexes (in `entry.data`) of its requests not settled yet. */
  readonly open: Set<number>;
  /** A request of it was dropped from the full queue: the entry is left pending, for a take-over. */
  dropped: boolean;
}

/** Credit of one worker, and the entries holding it. */
export class CreditLedger {
  private readonly held = new Map<string, HeldEntry>();
  private heldRequests = 0;
  private readonly released = new Signal();

  /** @param capacity - The most requests held at once (`concurrency`). */
  constructor(readonly capacity: number) {}

  /** Requests this worker may still take. */
  get free(): number {
    return Math.max(0, this.capacity - this.heldRequests);
  }

  /** Entries held. */
  get size(): number {
    return this.held.size;
  }

  has(entryId: string): boolean {
    return this.held.has(entryId);
  }

  /** Every entry held. */
  entries(): IterableIterator<HeldEntry> {
    return this.held.values();
  }

  /** Takes credit for every request of `entry` (the caller checked {@link free}). */
  hold(entry: DataEntry, deliveries: number, firstSeq: number): void {
    const open = new Set<number>();
    for (let i = 0; i < entry.data.length; i++) open.add(i);
    this.held.set(entry.id, { entry, deliveries, firstSeq, open, dropped: false });
    this.heldRequests += entry.data.length;
  }

  /**
   * A request was answered or acknowledged. Returns whether its entry is now
   * settled and should be acknowledged: an entry carrying several requests is,
   * once the last of them is; one that is not held here (already handed back,
   * or held before a restart) is acknowledged as it is.
   */
  settle(entryId: string, part: number | undefined): boolean {
    const held = this.held.get(entryId);
    if (held === undefined) return true;
    if (!this.letGo(entryId, held, part)) return false;
    // An entry with a dropped request must stay pending: acknowledging it would lose that request.
    return !held.dropped;
  }

  /**
   * A request was dropped from the full queue before anyone read it: its
   * credit is free, and its entry is neither renewed nor acknowledged, so it
   * is taken over after `claimIdleMs`. The other requests of the entry run
   * again then: at least once.
   */
  drop(entryId: string, part: number | undefined): void {
    const held = this.held.get(entryId);
    if (held === undefined) return;
    held.dropped = true;
    this.letGo(entryId, held, part);
  }

  /** An entry was handed back to the group (drain): every credit it held is free. */
  handBack(entryId: string): void {
    const held = this.held.get(entryId);
    if (held === undefined) return;
    this.held.delete(entryId);
    this.heldRequests -= held.open.size;
    this.released.notify();
  }

  /**
   * Ids of the entries being handled, whose lease must be renewed: those
   * whose first request the queue has let go (`left`, see `Inbound.left`).
   * Requests still waiting in the queue are not being handled, and if the
   * reader above has stopped (a wedged channel) they must go to another
   * worker after `claimIdleMs` rather than stay leased here for ever.
   */
  leased(left: number): string[] {
    const ids: string[] = [];
    for (const [id, held] of this.held) if (held.firstSeq < left && !held.dropped) ids.push(id);
    return ids;
  }

  /** Resolves once some credit was released (or {@link wake}). */
  whenReleased(): Promise<void> {
    return this.released.wait();
  }

  /** The signal notified on every release (for waits with a timeout). */
  get releases(): Signal {
    return this.released;
  }

  /** Wakes every wait (the IO is closing). */
  wake(): void {
    this.released.notify();
  }

  /** Forgets everything held (the IO is destroyed: the entries stay pending for a take-over). */
  clear(): void {
    this.held.clear();
    this.heldRequests = 0;
    this.released.notify();
  }

  /** Frees the credit of one request of `held`; returns whether that was its last one. */
  private letGo(entryId: string, held: HeldEntry, part: number | undefined): boolean {
    const index = part ?? held.open.values().next().value;
    if (index === undefined || !held.open.delete(index)) return held.open.size === 0;
    this.heldRequests--;
    this.released.notify();
    if (held.open.size > 0) return false;
    this.held.delete(entryId);
    return true;
  }
}
