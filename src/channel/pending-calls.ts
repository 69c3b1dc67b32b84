import { RPCTimeoutError } from '../errors.js';

/** One call waiting for its answer. */
export interface PendingCall {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  /** Functions the caller passed; invoked by callback messages until the call settles. */
  readonly callbacks: readonly ((...args: unknown[]) => unknown)[] | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A table of values by string id for constant churn (one add and one delete
 * per call), on a null-prototype object instead of a `Map`. A V8 `Map` that
 * keeps growing and shrinking replaces its hash table again and again, and
 * each replaced table keeps a link to its successor (for live iterators) and
 * its old entries. Once one of them reaches the old generation, that chain
 * keeps every later table, and the calls in it, alive through each scavenge
 * until the next full GC: in `npm run bench:channel` 1 MB survived each
 * scavenge with a `Map` here, 0.2 MB with this table. Keys are plain own
 * properties: `__proto__` and `constructor` are keys like any other.
 */
class IdTable<V> {
  private entries: Record<string, V> = Object.create(null) as Record<string, V>;
  size = 0;

  get(id: string): V | undefined {
    return this.entries[id];
  }

  set(id: string, value: V): void {
    if (this.entries[id] === undefined) this.size++;
    this.entries[id] = value;
  }

  delete(id: string): void {
    if (this.entries[id] === undefined) return;
    delete this.entries[id];
    this.size--;
  }

  values(): V[] {
    return Object.values(this.entries);
  }

  clear(): void {
    this.entries = Object.create(null) as Record<string, V>;
    this.size = 0;
  }
}

/**
 * Calls waiting for answers, each with its own unref'd timer. A call leaves
 * this table exactly once (answer, error, timeout or close), so late and
 * repeated answers find nothing and are counted as duplicates.
 */
export class PendingCalls {
  private readonly calls = new IdTable<PendingCall>();

  /** Number of calls waiting. */
  get size(): number {
    return this.calls.size;
  }

  /**
   * Registers a call and arms its timeout, which rejects it with {@link RPCTimeoutError}.
   */
  add(id: string, call: PendingCall, timeoutMs: number, onTimeout: () => void): void {
    this.calls.set(id, call);
    const timer = setTimeout(() => {
      if (this.calls.get(id) !== call) return;
      this.calls.delete(id);
      onTimeout();
      call.reject(new RPCTimeoutError(call.method, timeoutMs));
    }, timeoutMs);
    timer.unref();
    call.timer = timer;
  }

  /** The call with this id, still pending. */
  get(id: string): PendingCall | undefined {
    return this.calls.get(id);
  }

  /** Removes a call and clears its timer; `undefined` when it already settled. */
  take(id: string): PendingCall | undefined {
    const call = this.calls.get(id);
    if (call === undefined) return undefined;
    this.calls.delete(id);
    if (call.timer !== undefined) clearTimeout(call.timer);
    return call;
  }

  /** Rejects and removes every call. */
  rejectAll(makeError: (call: PendingCall) => Error): void {
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) {
      if (call.timer !== undefined) clearTimeout(call.timer);
      call.reject(makeError(call));
    }
  }
}
