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
 * Calls waiting for answers, each with its own unref'd timer. A call leaves
 * this table exactly once (answer, error, timeout or close), so late and
 * repeated answers find nothing and are counted as duplicates.
 */
export class PendingCalls {
  private calls = new Map<string, PendingCall>();
  /** Calls removed since {@link calls} was last replaced. */
  private removed = 0;

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
      this.forget(id);
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
    this.forget(id);
    if (call.timer !== undefined) clearTimeout(call.timer);
    return call;
  }

  /**
   * Removes `id`, and now and then moves what is left to a new `Map`. A `Map`
   * with one add and one delete per call replaces its hash table again and
   * again, and each replaced table keeps a link to its successor and its old
   * entries; once one of them reached the old generation, that chain kept
   * every later table, and the calls in it, alive through each scavenge until
   * the next full GC (`npm run bench:channel`: 1 MB surviving each scavenge,
   * against 0.2 MB with the chain cut). A new `Map` every 1,024 removals
   * (when at least four times as many as are left) ends the chain; copying
   * the few live calls costs less than the scavenges did. A plain object as
   * the table avoids the chain too, but cost about 0.8 µs more per call.
   */
  private forget(id: string): void {
    this.calls.delete(id);
    if (++this.removed >= 1024 && this.removed >= 4 * this.calls.size) {
      this.calls = new Map(this.calls);
      this.removed = 0;
    }
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
