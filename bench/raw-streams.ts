/**
 * Raw ioredis baseline, shared pieces: stream reply parsing, a blocking read
 * loop that owns its connection, and the client-side caller.
 */
import { Redis } from 'ioredis';

/** One stream entry: id and the flat `[field, value, ...]` list. */
export interface StreamEntry {
  readonly id: string;
  readonly fields: readonly string[];
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** Flattens an XREAD / XREADGROUP reply (`[[key, [[id, fields], ...]], ...]` or null). */
export function toEntries(reply: unknown): StreamEntry[] {
  const entries: StreamEntry[] = [];
  if (!Array.isArray(reply)) return entries;
  for (const stream of reply) {
    const items: unknown = Array.isArray(stream) ? stream[1] : undefined;
    if (!Array.isArray(items)) continue;
    for (const item of items) {
      // XREADGROUP gives null fields for entries deleted while pending.
      if (Array.isArray(item) && typeof item[0] === 'string' && isStringArray(item[1])) entries.push({ id: item[0], fields: item[1] });
    }
  }
  return entries;
}

export function field(entry: StreamEntry, name: string): string | undefined {
  for (let i = 0; i + 1 < entry.fields.length; i += 2) {
    if (entry.fields[i] === name) return entry.fields[i + 1];
  }
  return undefined;
}

/**
 * Runs `read` then `handle` until closed or `deadline`. The loop owns
 * `connection`; `close()` disconnects it, which rejects the pending blocking
 * read at once instead of waiting for BLOCK 0 to end.
 */
export class ReadLoop {
  private closed = false;
  private readonly done: Promise<void>;

  constructor(
    readonly connection: Redis,
    private readonly read: (connection: Redis) => Promise<unknown>,
    private readonly handle: (entries: StreamEntry[]) => void | Promise<void>,
    deadline: number,
  ) {
    this.done = this.loop(deadline);
  }

  private async loop(deadline: number): Promise<void> {
    while (!this.closed && Date.now() < deadline) {
      let reply: unknown;
      try {
        reply = await this.read(this.connection);
      } catch (err) {
        if (this.closed) return;
        throw err;
      }
      const entries = toEntries(reply);
      if (entries.length > 0) await this.handle(entries);
    }
  }

  /** Resolves when the loop has ended; rejects with the error that ended it. */
  finished(): Promise<void> {
    return this.done;
  }

  /** Idempotent. An error that ended the loop earlier was already seen through {@link finished}. */
  async close(): Promise<void> {
    this.closed = true;
    this.connection.disconnect();
    await this.done.catch(() => undefined);
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** Raised for calls still pending when the caller is closed. */
class CallerClosedError extends Error {
  override readonly name = 'CallerClosedError';
}

/**
 * Client half of the raw ping-pong: requests are XADDed to the request
 * stream through one writer connection (auto-pipelining or not, see
 * `autoPipelining`), replies are read from the client's own stream with
 * XREAD BLOCK 0 on a dedicated connection.
 */
export class RawCaller {
  private readonly writer: Redis;
  private readonly replies: ReadLoop;
  private readonly pending = new Map<string, Pending>();
  private nextId = 0;
  private lastReplyId = '0-0';

  constructor(
    url: string,
    private readonly requestStream: string,
    replyStream: string,
    deadline: number,
    autoPipelining: boolean,
  ) {
    this.writer = new Redis(url, { enableAutoPipelining: autoPipelining });
    const reader = new Redis(url);
    this.replies = new ReadLoop(
      reader,
      (c) => c.xread('COUNT', 1000, 'BLOCK', 0, 'STREAMS', replyStream, this.lastReplyId),
      (entries) => this.settle(entries),
      deadline,
    );
    // A broken reply loop must fail the pending calls, not hang them.
    this.replies.finished().catch((err: unknown) => this.rejectAll(err instanceof Error ? err : new Error(String(err))));
  }

  private settle(entries: StreamEntry[]): void {
    for (const entry of entries) {
      this.lastReplyId = entry.id;
      const id = field(entry, 'id');
      const payload = field(entry, 'payload');
      const pending = id === undefined ? undefined : this.pending.get(id);
      if (pending === undefined || id === undefined || payload === undefined) continue;
      this.pending.delete(id);
      pending.resolve(JSON.parse(payload));
    }
  }

  private rejectAll(err: Error): void {
    for (const pending of this.pending.values()) pending.reject(err);
    this.pending.clear();
  }

  /** XADD a request and wait for its reply. */
  async call(payload: string): Promise<unknown> {
    const id = String(this.nextId++);
    const reply = new Promise<unknown>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    try {
      await this.writer.xadd(this.requestStream, '*', 'id', id, 'payload', JSON.stringify(payload));
    } catch (err) {
      this.pending.delete(id);
      throw err;
    }
    return reply;
  }

  /** XADD a notification; resolves once written. */
  async notify(n: number): Promise<void> {
    await this.writer.xadd(this.requestStream, '*', 'id', String(this.nextId++), 'payload', JSON.stringify(n));
  }

  async close(): Promise<void> {
    await this.replies.close();
    this.rejectAll(new CallerClosedError('raw caller closed with calls pending'));
    await this.writer.quit();
  }
}
