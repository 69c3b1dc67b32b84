/**
 * The dead-letter stream: listing, showing, redriving and purging. A dead
 * letter keeps the request's sender (`f`) and its encoded messages (`d`), so a
 * redriven request keeps its call id and its answer goes to the caller's
 * inbox: a caller still waiting gets it.
 *
 * @module
 */
import type { Redis } from 'ioredis';
import { RPCInvalidArgumentError, RedisStreamsNotFoundError } from '../../errors.js';
import type { RedisConnection } from '../connection.js';
import { Field, parseEntry, parseEntryList, type RawEntry } from '../entries.js';
import type { EntrySigner } from '../signing.js';
import { dataFields, decodeRequests, fieldRecord, idTime, isStreamId } from './replies.js';
import type { InspectHost } from './status.js';
import type { DeadLetter, DeadLetterDetail, RedriveResult } from './types.js';

/** Dead letters read per XRANGE page. */
const PAGE = 200;
/** Tries of one redrive when the dead-letter stream changes under it (WATCH). */
const REDRIVE_TRIES = 20;

/** Which dead letters an operation applies to: some ids, or every one. */
export type DeadLetterSelection = readonly string[] | 'all';

/** Checks ids given by a user. @throws {@link RPCInvalidArgumentError} naming `ids`. */
export function checkIds(ids: DeadLetterSelection): void {
  if (ids === 'all') return;
  if (!Array.isArray(ids) || ids.length === 0) throw new RPCInvalidArgumentError('ids', 'expected a non-empty array of dead-letter ids, or "all"');
  for (const id of ids) {
    if (!isStreamId(id)) throw new RPCInvalidArgumentError('ids', `${JSON.stringify(id)} is not a stream entry id (<ms>-<seq>, as "dead-letters list" shows)`);
  }
}

async function aliveSessions(host: InspectHost, callers: readonly (string | null)[]): Promise<Set<string>> {
  const distinct = [...new Set(callers.filter((c): c is string => c !== null))];
  const exists = await Promise.all(distinct.map((c) => host.cmd.exists(host.keys.inbox(c))));
  return new Set(distinct.filter((_, i) => exists[i] === 1));
}

function toDeadLetter(raw: RawEntry, alive: ReadonlySet<string>): DeadLetter {
  const f = fieldRecord(raw.fields);
  const decoded = decodeRequests(raw);
  const deliveries = f.deliveries === undefined ? NaN : Number(f.deliveries);
  return {
    id: raw.id,
    deadLetteredAt: idTime(raw.id),
    sourceId: f.source ?? null,
    group: f.group ?? null,
    deliveries: Number.isFinite(deliveries) ? deliveries : null,
    reason: f.reason ?? null,
    caller: decoded.caller,
    callerAlive: decoded.caller !== null && alive.has(decoded.caller),
    requests: decoded.requests,
    undecodable: decoded.undecodable,
  };
}

/** Decodes raw dead-letter entries, with their callers' liveness. */
export async function toDeadLetters(host: InspectHost, raws: readonly RawEntry[]): Promise<DeadLetter[]> {
  const alive = await aliveSessions(host, raws.map((r) => decodeRequests(r).caller));
  return raws.map((r) => toDeadLetter(r, alive));
}

/** Options of {@link StreamInspector.deadLetters}. */
export interface DeadLetterQuery {
  /** Most dead letters returned, oldest first. @defaultValue 100 */
  readonly count?: number;
}

/** The oldest dead letters. */
export async function listDeadLetters(host: InspectHost, query: DeadLetterQuery): Promise<DeadLetter[]> {
  const count = query.count ?? 100;
  if (!Number.isInteger(count) || count < 1) throw new RPCInvalidArgumentError('count', `expected a positive integer, got ${String(count)}`);
  const raws = parseEntryList(await host.cmd.xrange(host.keys.deadLetter, '-', '+', 'COUNT', count));
  return toDeadLetters(host, raws);
}

/**
 * One dead letter with its messages.
 * @throws {@link RedisStreamsNotFoundError} when it does not exist.
 */
export async function getDeadLetter(host: InspectHost, id: string): Promise<DeadLetterDetail> {
  checkIds([id]);
  const raw = parseEntryList(await host.cmd.xrange(host.keys.deadLetter, id, id))[0];
  if (raw === undefined) throw new RedisStreamsNotFoundError('dead-letter', id, `in "${host.keys.deadLetter}"`);
  const [letter] = await toDeadLetters(host, [raw]);
  return { ...(letter as DeadLetter), messages: dataFields(raw.fields), fields: fieldRecord(raw.fields) };
}

/** Every id in the dead-letter stream now (later arrivals are left alone). */
async function allIds(cmd: RedisConnection, key: string): Promise<string[]> {
  const ids: string[] = [];
  let start = '-';
  for (;;) {
    const page = parseEntryList(await cmd.xrange(key, start, '+', 'COUNT', PAGE));
    for (const e of page) ids.push(e.id);
    const last = page[page.length - 1];
    if (page.length < PAGE || last === undefined) return ids;
    start = `(${last.id}`;
  }
}

/**
 * Moves one dead letter back to the request stream: XADD of its sender and
 * messages (no `r`: it starts again with a full `maxDeliveries`) and XDEL of
 * the dead letter, in one MULTI under WATCH, so two redrives of the same id
 * (two operators, a double click) put it back once.
 */
async function redriveOne(conn: Redis, host: InspectHost, id: string, signer: EntrySigner | undefined): Promise<string | 'not-found' | 'skipped'> {
  const { deadLetter, stream } = host.keys;
  for (let attempt = 0; attempt < REDRIVE_TRIES; attempt++) {
    await conn.watch(deadLetter);
    const raw = parseEntryList(await conn.xrange(deadLetter, id, id))[0];
    const parsed = raw === undefined ? undefined : parseEntry(raw);
    // With signing, only a dead letter a worker signed is put back (and signed anew for the request stream).
    const forged = raw !== undefined && signer !== undefined && signer.verify(deadLetter, raw) !== undefined;
    if (parsed === undefined || parsed.type !== 'data' || forged) {
      await conn.unwatch();
      return parsed === undefined ? 'not-found' : 'skipped';
    }
    const plain = [Field.From, parsed.from, ...parsed.data.flatMap((d) => [Field.Data, d])];
    const fields = signer === undefined ? plain : signer.signed(stream, plain);
    const result = await conn.multi().xadd(stream, '*', ...fields).xdel(deadLetter, id).exec();
    // null: the dead-letter stream changed between WATCH and EXEC (another dead letter, another redrive): look again.
    if (result === null) continue;
    const failed = result.find((r) => r[0] !== null)?.[0];
    if (failed) throw failed;
    return String(result[0]?.[1]);
  }
  throw new Error(`the dead-letter stream kept changing during ${REDRIVE_TRIES} tries to redrive ${id}`);
}

/** Redrives dead letters one by one on `conn` (a connection of its own: WATCH is per connection). */
export async function redrive(conn: Redis, host: InspectHost, ids: DeadLetterSelection, signer: EntrySigner | undefined): Promise<RedriveResult> {
  checkIds(ids);
  const targets = ids === 'all' ? await allIds(host.cmd, host.keys.deadLetter) : [...new Set(ids)];
  const redriven: { deadLetterId: string; entryId: string }[] = [];
  const notFound: string[] = [];
  const skipped: string[] = [];
  for (const id of targets) {
    const outcome = await redriveOne(conn, host, id, signer);
    if (outcome === 'not-found') notFound.push(id);
    else if (outcome === 'skipped') skipped.push(id);
    else redriven.push({ deadLetterId: id, entryId: outcome });
  }
  return { redriven, notFound, skipped };
}

/** Deletes dead letters. @returns how many were deleted. */
export async function purge(host: InspectHost, ids: DeadLetterSelection): Promise<number> {
  checkIds(ids);
  const { cmd, keys } = host;
  if (ids !== 'all') return cmd.xdel(keys.deadLetter, ...ids);
  const result = await cmd.multi().xlen(keys.deadLetter).del(keys.deadLetter).exec();
  const failed = result?.find((r) => r[0] !== null)?.[0];
  if (failed) throw failed;
  return Number(result?.[0]?.[1] ?? 0);
}
