/**
 * A live, decoded view of a service's traffic: requests on the request
 * stream, answers and callback invocations in the callers' inboxes, and dead
 * letters. Read with plain XREAD from the current end of each stream, which
 * consumes nothing and creates nothing: no group, no consumer, no key.
 *
 * @module
 */
import type { Redis } from 'ioredis';
import { decodeMessage, MessageKind } from '../../protocol/envelope.js';
import type { RedisConnection } from '../connection.js';
import { parseEntry, parseEntryList, parseReadReply, type RawEntry } from '../entries.js';
import { decodeRequests, idTime } from './replies.js';
import { toDeadLetters } from './dead-letters.js';
import { inboxKeys, inboxSession, type InspectHost } from './status.js';
import type { TailEvent } from './types.js';

/** Options of {@link StreamInspector.tail}. */
export interface TailOptions {
  /** Stops the tail (the generator returns). */
  readonly signal?: AbortSignal;
  /**
   * Only requests whose method is one of these, or below one (`math` matches
   * `math.add`), and the answers to them.
   */
  readonly methods?: readonly string[];
  /** How often new inboxes are looked for (SCAN), in milliseconds. @defaultValue 2000 */
  readonly rescanMs?: number;
  /** Longest one blocking read waits, in milliseconds. @defaultValue 1000 */
  readonly blockMs?: number;
}

/** Calls remembered to match answers with their requests. */
const MAX_CALLS = 10_000;
/** Entries asked for per read. */
const READ_COUNT = 200;

interface SeenCall {
  readonly method: string;
  readonly time: number;
}

/** The follower's state: positions per key, calls seen. */
class TailState {
  readonly positions = new Map<string, string>();
  readonly calls = new Map<string, SeenCall>();

  constructor(
    private readonly host: InspectHost,
    private readonly methods: readonly string[] | undefined,
  ) {}

  wanted(method: string): boolean {
    return this.methods === undefined || this.methods.some((m) => method === m || method.startsWith(`${m}.`));
  }

  remember(callId: string, call: SeenCall): void {
    this.calls.delete(callId);
    this.calls.set(callId, call);
    if (this.calls.size > MAX_CALLS) this.calls.delete(this.calls.keys().next().value as string);
  }

  requests(raw: RawEntry): TailEvent[] {
    const decoded = decodeRequests(raw);
    if (decoded.caller === null) return [];
    const time = idTime(raw.id);
    const out: TailEvent[] = [];
    for (const request of decoded.requests) {
      if (!this.wanted(request.method)) continue;
      this.remember(request.callId, { method: request.method, time });
      out.push({ type: 'request', entryId: raw.id, time, caller: decoded.caller, request });
    }
    return out;
  }

  answers(key: string, raw: RawEntry): TailEvent[] {
    const parsed = parseEntry(raw);
    if (parsed.type !== 'data') return [];
    const time = idTime(raw.id);
    const to = inboxSession(this.host, key);
    const out: TailEvent[] = [];
    for (const data of parsed.data) {
      let header;
      try {
        header = decodeMessage(data, raw.id).header;
      } catch {
        continue;
      }
      const type = header.k === MessageKind.Result ? 'result' : header.k === MessageKind.Error ? 'error' : header.k === MessageKind.Callback ? 'callback' : undefined;
      if (type === undefined) continue;
      const call = this.calls.get(header.id);
      if (this.methods !== undefined && call === undefined) continue;
      out.push({
        type,
        entryId: raw.id,
        time,
        from: parsed.from,
        to,
        callId: header.id,
        method: call?.method ?? null,
        bytes: Buffer.byteLength(data, 'utf8'),
        durationMs: call === undefined ? null : Math.max(0, time - call.time),
      });
    }
    return out;
  }
}

async function lastId(cmd: RedisConnection, key: string): Promise<string> {
  return parseEntryList(await cmd.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.id ?? '0-0';
}

/** Adds inboxes that appeared since the last scan and forgets those that are gone. */
async function rescan(host: InspectHost, state: TailState, fixed: readonly string[], first: boolean): Promise<void> {
  const found = await inboxKeys(host);
  const present = new Set([...fixed, ...found]);
  for (const key of [...state.positions.keys()]) if (!present.has(key)) state.positions.delete(key);
  for (const key of found) {
    // Inboxes found later were created after the tail started: all their entries are new.
    if (!state.positions.has(key)) state.positions.set(key, first ? await lastId(host.cmd, key) : '0-0');
  }
}

/** A function, so the compiler does not narrow `aborted` across awaits. */
function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** Follows the service's streams on `reader` (a connection of its own: XREAD blocks) until `signal` aborts. */
export async function* follow(host: InspectHost, reader: Redis, options: TailOptions): AsyncGenerator<TailEvent, void, undefined> {
  const { signal, rescanMs = 2000, blockMs = 1000 } = options;
  const { stream, deadLetter } = host.keys;
  const state = new TailState(host, options.methods);
  const fixed = [stream, deadLetter];
  for (const key of fixed) state.positions.set(key, await lastId(host.cmd, key));
  await rescan(host, state, fixed, true);
  let scannedAt = Date.now();
  while (!aborted(signal)) {
    if (Date.now() - scannedAt >= rescanMs) {
      await rescan(host, state, fixed, false);
      scannedAt = Date.now();
    }
    const keys = [...state.positions.keys()];
    let reply: unknown;
    try {
      reply = await reader.xread('COUNT', READ_COUNT, 'BLOCK', blockMs, 'STREAMS', ...keys, ...keys.map((k) => state.positions.get(k) ?? '0-0'));
    } catch (err) {
      if (aborted(signal)) return;
      throw err;
    }
    for (const [key, entries] of parseReadReply(reply)) {
      const last = entries[entries.length - 1];
      if (last !== undefined) state.positions.set(key, last.id);
      if (key === stream) for (const e of entries) yield* state.requests(e);
      else if (key === deadLetter) {
        for (const letter of await toDeadLetters(host, entries)) {
          if (letter.requests.some((r) => state.wanted(r.method))) yield { type: 'dead-letter', entryId: letter.id, time: letter.deadLetteredAt, deadLetter: letter };
        }
      } else for (const e of entries) yield* state.answers(key, e);
    }
  }
}
