/**
 * Parsing of the Redis replies the inspector reads (XINFO's flat key/value
 * arrays, XPENDING rows) and decoding of request entries into plain data.
 *
 * @module
 */
import { decodeMessage, MessageKind } from '../../protocol/envelope.js';
import { Field, parseEntry, type RawEntry } from '../entries.js';
import type { InspectedRequest, UndecodableMessage } from './types.js';

/** XINFO replies are flat `[name, value, name, value, ...]` arrays. */
export function flatMap(reply: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out.set(String(reply[i]), reply[i + 1]);
  return out;
}

/** A numeric field, or null when missing or not a number (`lag` is nil when Redis cannot tell). */
export function num(map: Map<string, unknown>, name: string): number | null {
  const value = map.get(name);
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/** A string field, or null. */
export function str(map: Map<string, unknown>, name: string): string | null {
  const value = map.get(name);
  return typeof value === 'string' ? value : null;
}

/** The millisecond part of a stream id. */
export function idTime(id: string): number {
  const ms = Number(id.slice(0, id.indexOf('-') < 0 ? undefined : id.indexOf('-')));
  return Number.isFinite(ms) ? ms : 0;
}

/** Whether `id` is a complete stream id (`<ms>-<seq>`). */
export function isStreamId(id: unknown): id is string {
  return typeof id === 'string' && /^\d{1,20}-\d{1,20}$/.test(id);
}

/** One row of the extended XPENDING form. */
export interface PendingRow {
  readonly id: string;
  readonly consumer: string;
  readonly idleMs: number;
  readonly deliveries: number;
}

/** Parses `XPENDING key group - + count` rows. */
export function pendingRows(reply: unknown): PendingRow[] {
  if (!Array.isArray(reply)) return [];
  const rows: PendingRow[] = [];
  for (const r of reply) {
    if (!Array.isArray(r) || typeof r[0] !== 'string') continue;
    rows.push({ id: r[0], consumer: String(r[1]), idleMs: Number(r[2]), deliveries: Number(r[3]) });
  }
  return rows;
}

/** What the requests of one entry decode to. */
export interface DecodedEntry {
  readonly caller: string | null;
  /** Deliveries spent before a batch entry was split into this one (field `r`). */
  readonly spent: number;
  readonly requests: InspectedRequest[];
  readonly undecodable: UndecodableMessage[];
}

/** Decodes the request headers of an entry; payloads are measured, never parsed. */
export function decodeRequests(entry: RawEntry): DecodedEntry {
  const parsed = parseEntry(entry);
  if (parsed.type !== 'data') {
    const reason = parsed.type === 'malformed' ? parsed.reason : parsed.type === 'control' ? `control entry "${parsed.control}"` : parsed.error.message;
    return { caller: parsed.type === 'control' ? parsed.from : null, spent: 0, requests: [], undecodable: [{ error: reason, bytes: 0 }] };
  }
  const requests: InspectedRequest[] = [];
  const undecodable: UndecodableMessage[] = [];
  for (const data of parsed.data) {
    const bytes = Buffer.byteLength(data, 'utf8');
    try {
      const { header } = decodeMessage(data, entry.id);
      if (header.k !== MessageKind.Request) {
        undecodable.push({ error: `a "${header.k}" message, not a request`, bytes });
        continue;
      }
      requests.push({
        callId: header.id,
        method: header.m.join('.'),
        deadline: header.dl,
        notification: header.n === 1,
        bytes,
        metadataKeys: header.md === undefined ? [] : Object.keys(header.md),
      });
    } catch (err) {
      undecodable.push({ error: err instanceof Error ? err.message : String(err), bytes });
    }
  }
  return { caller: parsed.from, spent: parsed.spent, requests, undecodable };
}

/** Field names to values of an entry (a repeated field keeps its last value). */
export function fieldRecord(fields: readonly string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i] as string] = fields[i + 1] as string;
  return { ...out };
}

/** The `d` fields of an entry, in order. */
export function dataFields(fields: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === Field.Data) out.push(fields[i + 1] as string);
  return out;
}

/** Escapes the glob characters of `text` for SCAN MATCH. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
