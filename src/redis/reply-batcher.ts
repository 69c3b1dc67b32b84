/**
 * Coalesces the answers and callback invocations written in one tick into a
 * single MULTI: every XADD to a caller's inbox, then one XACK for all the
 * requests being answered. An answer and its acknowledgement therefore commit
 * together, a burst costs one round trip, and writes keep their order (a
 * callback invocation always reaches the caller before the answer). A batch
 * that acknowledges nothing (broadcast mode, callbacks) is a plain pipeline.
 *
 * @module
 */
import type { RedisConnection } from './connection.js';
import { Field } from './entries.js';

interface QueuedReply {
  readonly inbox: string;
  readonly data: string;
  readonly ackId: string | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Where and as whom replies are written. */
export interface ReplyBatcherConfig {
  readonly stream: string;
  readonly group: string | undefined;
  readonly sessionId: string;
}

/** Batches inbox writes per tick. */
export class ReplyBatcher {
  private queue: QueuedReply[] = [];
  private scheduled = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly config: ReplyBatcherConfig,
    private readonly onAcked: (count: number) => void,
  ) {}

  /**
   * Queues one inbox write; with `ackId`, the request it answers is acknowledged
   * in the same transaction.
   */
  write(inbox: string, data: string, ackId?: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ inbox, data, ackId, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        process.nextTick(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const { sessionId, stream, group } = this.config;
    const ackIds = group === undefined ? [] : batch.flatMap((r) => (r.ackId === undefined ? [] : [r.ackId]));
    // MULTI only when an XACK must commit with the answers; otherwise a plain
    // pipeline keeps the order for a third of the Redis commands (no MULTI/EXEC).
    const tx = ackIds.length > 0 ? this.redis.multi() : this.redis.pipeline();
    // NOMKSTREAM: an answer to a caller whose inbox expired must not recreate it as a leak.
    for (const r of batch) tx.xadd(r.inbox, 'NOMKSTREAM', '*', Field.From, sessionId, Field.Data, r.data);
    if (ackIds.length > 0 && group !== undefined) tx.xack(stream, group, ...ackIds);
    tx.exec().then(
      (results) => this.settle(batch, results, ackIds.length),
      (err: unknown) => {
        for (const r of batch) r.reject(err);
      },
    );
  }

  private settle(batch: QueuedReply[], results: [Error | null, unknown][] | null, acks: number): void {
    if (results === null) {
      const aborted = new Error('MULTI aborted');
      for (const r of batch) r.reject(aborted);
      return;
    }
    const ackError = acks > 0 ? results[batch.length]?.[0] : null;
    if (acks > 0 && !ackError) this.onAcked(acks);
    batch.forEach((r, i) => {
      const err = results[i]?.[0] ?? (r.ackId !== undefined ? ackError : null);
      if (err) r.reject(err);
      else r.resolve();
    });
  }
}
