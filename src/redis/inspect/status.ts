/**
 * Read-only views of one service stream: its status and its pending requests.
 * Only XINFO, XPENDING, XRANGE, XLEN, PTTL, MEMORY USAGE, TIME and SCAN are
 * sent: nothing here creates a group, a consumer or a key.
 *
 * @module
 */
import { Cluster } from 'ioredis';
import { RedisStreamsNotFoundError } from '../../errors.js';
import type { RedisConnection } from '../connection.js';
import { parseEntryList } from '../entries.js';
import { keyPrefix, type StreamKeys } from '../keys.js';
import { decodeRequests, escapeGlob, flatMap, idTime, num, pendingRows, str } from './replies.js';
import type { ConsumerStatus, GroupStatus, InboxStatus, PendingEntry, StreamStatus } from './types.js';

/** What the views need: a connection, the keys, the liveness threshold. */
export interface InspectHost {
  readonly cmd: RedisConnection;
  readonly keys: StreamKeys;
  readonly claimIdleMs: number;
}

const CONSUMER_PREFIX = 'consumer-';

/** Redis' clock, in epoch milliseconds: ages are measured against the ids it assigned. */
export async function redisTime(cmd: RedisConnection): Promise<number> {
  const [sec, usec] = (await cmd.call('TIME')) as [string, string];
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

/**
 * Checks that `key` is a stream, without creating it.
 * @throws {@link RedisStreamsNotFoundError} when it does not exist.
 */
export async function assertStream(cmd: RedisConnection, key: string): Promise<void> {
  const type = await cmd.type(key);
  if (type === 'none') throw new RedisStreamsNotFoundError('stream', key, '(no worker or caller has used it yet, or it was deleted)');
  if (type !== 'stream') throw new RedisStreamsNotFoundError('stream', key, `(the key holds a ${type}, not a stream)`);
}

/** Every key matching `pattern`, on every master of a cluster. */
export async function scanKeys(cmd: RedisConnection, pattern: string): Promise<string[]> {
  const nodes = cmd instanceof Cluster ? cmd.nodes('master') : [cmd];
  const found = new Set<string>();
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) found.add(k);
    } while (cursor !== '0');
  }
  return [...found].sort();
}

/** The inbox keys of the service. */
export async function inboxKeys(host: InspectHost): Promise<string[]> {
  return scanKeys(host.cmd, `${escapeGlob(keyPrefix(host.keys.stream))}:inbox:*`);
}

/** Session id of an inbox key. */
export function inboxSession(host: InspectHost, key: string): string {
  return key.slice(`${keyPrefix(host.keys.stream)}:inbox:`.length);
}

async function inboxes(host: InspectHost): Promise<InboxStatus[]> {
  const { cmd } = host;
  const keys = await inboxKeys(host);
  return Promise.all(
    keys.map(async (key) => {
      const [length, ttl] = await Promise.all([cmd.xlen(key), cmd.pttl(key)]);
      return { key, sessionId: inboxSession(host, key), length, ttlMs: ttl >= 0 ? ttl : null };
    }),
  );
}

async function memoryUsage(cmd: RedisConnection, key: string): Promise<number | null> {
  try {
    const bytes = await cmd.call('MEMORY', 'USAGE', key);
    return typeof bytes === 'number' ? bytes : null;
  } catch {
    // Refused by an ACL or a managed Redis: the rest of the status is still worth having.
    return null;
  }
}

function consumerStatus(reply: unknown, sessions: ReadonlySet<string>, claimIdleMs: number): ConsumerStatus {
  const c = flatMap(reply);
  const name = str(c, 'name') ?? '';
  const idleMs = num(c, 'idle') ?? 0;
  const sessionId = name.startsWith(CONSUMER_PREFIX) ? name.slice(CONSUMER_PREFIX.length) : null;
  const byInbox = sessionId !== null && sessionId.length > 0;
  return {
    name,
    pending: num(c, 'pending') ?? 0,
    idleMs,
    inactiveMs: num(c, 'inactive'),
    sessionId,
    alive: byInbox ? sessions.has(sessionId) : idleMs < claimIdleMs,
    aliveBy: byInbox ? 'inbox' : 'idle',
  };
}

async function groupStatus(host: InspectHost, reply: unknown, now: number, sessions: ReadonlySet<string>): Promise<GroupStatus> {
  const { cmd, keys } = host;
  const g = flatMap(reply);
  const name = str(g, 'name') ?? '';
  const [consumers, summary] = await Promise.all([cmd.call('XINFO', 'CONSUMERS', keys.stream, name), cmd.call('XPENDING', keys.stream, name)]);
  const oldest = Array.isArray(summary) && typeof summary[1] === 'string' ? summary[1] : null;
  return {
    name,
    pending: num(g, 'pending') ?? 0,
    lastDeliveredId: str(g, 'last-delivered-id') ?? '0-0',
    entriesRead: num(g, 'entries-read'),
    lag: num(g, 'lag'),
    oldestPendingId: oldest,
    oldestPendingAgeMs: oldest === null ? null : Math.max(0, now - idTime(oldest)),
    consumers: Array.isArray(consumers) ? consumers.map((c) => consumerStatus(c, sessions, host.claimIdleMs)) : [],
  };
}

/** The XINFO GROUPS rows of the request stream. */
export async function groupReplies(host: InspectHost): Promise<unknown[]> {
  const reply = await host.cmd.call('XINFO', 'GROUPS', host.keys.stream);
  return Array.isArray(reply) ? (reply as unknown[]) : [];
}

/** The group names, checked against `only` when given. */
async function groupNames(host: InspectHost, only: string | undefined): Promise<string[]> {
  const names = (await groupReplies(host)).map((g) => str(flatMap(g), 'name') ?? '');
  if (only === undefined) return names;
  if (!names.includes(only)) throw new RedisStreamsNotFoundError('group', only, `on stream "${host.keys.stream}"`);
  return [only];
}

/**
 * Status of the service stream.
 * @throws {@link RedisStreamsNotFoundError} when the request stream does not exist.
 */
export async function readStatus(host: InspectHost): Promise<StreamStatus> {
  const { cmd, keys } = host;
  await assertStream(cmd, keys.stream);
  const [now, info, memoryBytes, groups, inboxList, deadCount, deadFirst] = await Promise.all([
    redisTime(cmd),
    cmd.call('XINFO', 'STREAM', keys.stream),
    memoryUsage(cmd, keys.stream),
    groupReplies(host),
    inboxes(host),
    cmd.xlen(keys.deadLetter),
    cmd.xrange(keys.deadLetter, '-', '+', 'COUNT', 1),
  ]);
  const s = flatMap(info);
  const firstEntry = s.get('first-entry');
  const lastEntry = s.get('last-entry');
  const sessions = new Set(inboxList.map((i) => i.sessionId));
  const groupList = await Promise.all(groups.map((g) => groupStatus(host, g, now, sessions)));
  const ages = groupList.map((g) => g.oldestPendingAgeMs).filter((a): a is number => a !== null);
  return {
    time: now,
    stream: {
      key: keys.stream,
      length: num(s, 'length') ?? 0,
      memoryBytes,
      firstEntryId: Array.isArray(firstEntry) && typeof firstEntry[0] === 'string' ? firstEntry[0] : null,
      lastEntryId: Array.isArray(lastEntry) && typeof lastEntry[0] === 'string' ? lastEntry[0] : null,
      entriesAdded: num(s, 'entries-added'),
    },
    groups: groupList,
    inboxes: inboxList,
    deadLetters: { key: keys.deadLetter, count: deadCount, oldestId: deadFirst[0]?.[0] ?? null },
    oldestPendingAgeMs: ages.length === 0 ? null : Math.max(...ages),
  };
}

/** Options of {@link StreamInspector.pending}. */
export interface PendingQuery {
  /** Only this group. @defaultValue every group */
  readonly group?: string;
  /** Only entries held by this consumer. */
  readonly consumer?: string;
  /** Most entries per group, oldest first. @defaultValue 100 */
  readonly count?: number;
}

/**
 * The pending entries of the stream's groups, oldest first, with the requests they carry.
 * @throws {@link RedisStreamsNotFoundError} when the stream or the group does not exist.
 */
export async function readPending(host: InspectHost, query: PendingQuery): Promise<PendingEntry[]> {
  const { cmd, keys } = host;
  await assertStream(cmd, keys.stream);
  const count = query.count ?? 100;
  const [now, groups] = await Promise.all([redisTime(cmd), groupNames(host, query.group)]);
  const out: PendingEntry[] = [];
  for (const group of groups) {
    const args: (string | number)[] = [keys.stream, group, '-', '+', count];
    if (query.consumer !== undefined) args.push(query.consumer);
    const rows = pendingRows(await cmd.call('XPENDING', ...args));
    const entries = await Promise.all(rows.map((r) => cmd.xrange(keys.stream, r.id, r.id)));
    rows.forEach((row, i) => {
      const raw = parseEntryList(entries[i])[0];
      const decoded = raw === undefined ? undefined : decodeRequests(raw);
      out.push({
        entryId: row.id,
        group,
        consumer: row.consumer,
        idleMs: row.idleMs,
        deliveries: row.deliveries + (decoded?.spent ?? 0),
        ageMs: Math.max(0, now - idTime(row.id)),
        caller: decoded?.caller ?? null,
        missing: raw === undefined,
        requests: decoded?.requests ?? [],
        undecodable: decoded?.undecodable ?? [],
      });
    });
  }
  return out;
}
