/**
 * Stream entry layout and reply parsing (the one place the entry layout is
 * documented; messages inside `d` are documented in protocol/envelope.ts). An
 * entry written by this library has the fields `f` (sender's session id) and
 * either one or more `d` (encoded messages, in order: writes coalesced in one
 * tick share an entry) or `x` (a control word). A request split out of a
 * redelivered batch entry also has `r`: the deliveries its batch had already
 * used. With signing, `k`, `t`, `s` end the entry (see signing.ts).
 *
 * Control entries, `f <session> x <word> [fields of the word] dl <epoch ms>`:
 *
 * - `open`: first entry of a new inbox (readers start after it, and skip it).
 * - `bye`: the sender went away (`signalDestroy()`, the `destroy()` of an IO
 *   that wrote requests), on the control stream `{stream}:control` and, from
 *   signalDestroy, on the request stream: its calls written before it are skipped.
 * - `serve` with `m` (`broadcast` or `group`) and, for `group`, `g` (the consumer
 *   group): the sender serves the request stream in that mode, on the control
 *   stream when it starts serving; `re 1` marks the answer of a peer of the
 *   other mode to it (see mode-watch.ts). Read by serving peers only.
 *
 * `dl` is the entry's deadline (the writer's clock, like a request's `dl`):
 * a reader ignores a control entry read after it (counted in
 * `expiredControlEntries`, logged on the `control` debug namespace), so an old
 * `bye` or `serve` read late never acts. Entries without it (writers before it
 * existed) are taken as they are; readers ignore fields and control words they
 * do not know, so these additions do not break older readers.
 *
 * @module
 */

import type { RPCSignatureError, RedisStreamsServeMode } from '../errors.js';
import type { StreamEntry } from './types.js';

/** Field names of an entry. `k`, `t`, `s` end a signed entry: see signing.ts. */
export const Field = {
  From: 'f',
  Data: 'd',
  Control: 'x',
  Redelivered: 'r',
  /** Deadline of a control entry, epoch ms. */
  Deadline: 'dl',
  /** Serving mode of a `serve` entry. */
  Mode: 'm',
  /** Consumer group of a `serve` entry in mode `group`. */
  Group: 'g',
  /** Marks a `serve` entry answering one of the other mode. */
  Reply: 're',
  KeyId: 'k',
  SignedAt: 't',
  Signature: 's',
} as const;

/**
 * Most messages one entry may carry. Writers coalesce at most this many; an
 * entry with more was not written by this library and is skipped as malformed,
 * which also bounds how far one entry can push a reader's queue past its size.
 */
export const MAX_MESSAGES_PER_ENTRY = 16;

/** Control words. */
export const Control = { Bye: 'bye', Open: 'open', Serve: 'serve' } as const;

/** How a peer serves the request stream (field `m` of a `serve` entry). */
export type ServeMode = RedisStreamsServeMode;

/** A parsed control entry. */
export interface ControlEntry {
  readonly type: 'control';
  readonly id: string;
  readonly from: string;
  readonly control: string;
  /** Field `dl`; absent from writers before it existed. */
  readonly deadline: number | undefined;
  /** `serve`: the mode (undefined when missing or unknown), the group, whether it answers another `serve`. */
  readonly mode?: ServeMode | undefined;
  readonly group?: string | undefined;
  readonly reply?: boolean;
}

/** One raw stream entry. */
export interface RawEntry {
  readonly id: string;
  readonly fields: readonly string[];
}

/** A parsed entry. */
export type ParsedEntry =
  | {
      readonly type: 'data';
      readonly id: string;
      readonly from: string;
      readonly data: readonly string[];
      /** Deliveries spent before a redelivered batch entry was split into this one (field `r`). */
      readonly spent: number;
    }
  | ControlEntry
  | { readonly type: 'malformed'; readonly id: string; readonly reason: string }
  /** Refused by signing before anything decoded it (see signing.ts). */
  | { readonly type: 'refused'; readonly id: string; readonly error: RPCSignatureError };

/** Parses the fields of an entry; anything this library did not write is `malformed`. */
export function parseEntry(entry: RawEntry): ParsedEntry {
  let from: string | undefined;
  let data: string[] | undefined;
  let control: string | undefined;
  let deadline: string | undefined;
  let mode: string | undefined;
  let group: string | undefined;
  let reply = false;
  let spent = 0;
  const { fields, id } = entry;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const key = fields[i];
    const value = fields[i + 1] as string;
    if (key === Field.From) from = value;
    else if (key === Field.Data) (data ??= []).push(value);
    else if (key === Field.Control) control = value;
    else if (key === Field.Redelivered) spent = Number(value);
    else if (key === Field.Deadline) deadline = value;
    else if (key === Field.Mode) mode = value;
    else if (key === Field.Group) group = value;
    else if (key === Field.Reply) reply = value === '1';
  }
  if (from === undefined || from.length === 0) return { type: 'malformed', id, reason: 'entry has no sender field "f"' };
  if (data !== undefined) {
    if (data.length > MAX_MESSAGES_PER_ENTRY) return { type: 'malformed', id, reason: `entry carries ${data.length} messages, more than ${MAX_MESSAGES_PER_ENTRY}` };
    if (!Number.isSafeInteger(spent) || spent < 0) return { type: 'malformed', id, reason: `bad redelivery count "r"` };
    return { type: 'data', id, from, data, spent };
  }
  if (control !== undefined) {
    const dl = deadline === undefined ? undefined : Number(deadline);
    if (dl !== undefined && !Number.isSafeInteger(dl)) return { type: 'malformed', id, reason: 'bad control entry deadline "dl"' };
    if (control !== Control.Serve) return { type: 'control', id, from, control, deadline: dl };
    return { type: 'control', id, from, control, deadline: dl, mode: mode === 'broadcast' || mode === 'group' ? mode : undefined, group, reply };
  }
  return { type: 'malformed', id, reason: 'entry has neither a data field "d" nor a control field "x"' };
}

/** The control word `x` of an entry not parsed (nor verified) yet, if any. */
export function controlWordOf(entry: RawEntry): string | undefined {
  const { fields } = entry;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === Field.Control) return fields[i + 1];
  return undefined;
}

/** Turns an XREAD/XREADGROUP reply into per-key entry lists, tolerating odd shapes. */
export function parseReadReply(reply: unknown): Map<string, RawEntry[]> {
  const out = new Map<string, RawEntry[]>();
  if (!Array.isArray(reply)) return out;
  for (const streamReply of reply) {
    if (!Array.isArray(streamReply) || typeof streamReply[0] !== 'string' || !Array.isArray(streamReply[1])) continue;
    out.set(streamReply[0], parseEntryList(streamReply[1]));
  }
  return out;
}

/** Turns an XRANGE/XAUTOCLAIM/XCLAIM entry list into entries. Deleted entries (nil fields) are skipped. */
export function parseEntryList(list: unknown): RawEntry[] {
  const entries: RawEntry[] = [];
  if (!Array.isArray(list)) return entries;
  for (const item of list) {
    if (!Array.isArray(item) || typeof item[0] !== 'string') continue;
    const fields = Array.isArray(item[1]) ? toStrings(item[1] as unknown[]) : [];
    entries.push({ id: item[0], fields });
  }
  return entries;
}

/** The array itself when every value is a string (ioredis replies), else a converted copy. */
function toStrings(values: unknown[]): string[] {
  for (const v of values) if (typeof v !== 'string') return values.map((x) => String(x));
  return values as string[];
}

/** An entry as `RedisStreamsIO.getAllEntries()` returns it. */
export function toStreamEntry(id: string, fields: readonly string[]): StreamEntry {
  const out: Record<string, string> = {};
  const messages: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    out[fields[i] as string] = fields[i + 1] as string;
    if (fields[i] === Field.Data) messages.push(fields[i + 1] as string);
  }
  return { id, fields: out, messages };
}

/** Compares two stream ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}
