/**
 * The pending-safe trim point of a request stream: the oldest entry any
 * consumer group still needs. Kept in one small function so that on-demand
 * trimming (the inspector's `trim`) and any automatic retention share it.
 *
 * @module
 */
import { compareIds } from './entries.js';
import { flatMap, num, str } from './inspect/replies.js';

/** What a group still needs, from XINFO GROUPS and the XPENDING summary. */
export interface GroupPosition {
  /** Last entry delivered to the group: later entries are not read yet. */
  readonly lastDeliveredId: string;
  /** Oldest entry delivered and not acknowledged, or null when none is pending. */
  readonly oldestPendingId: string | null;
  /** The group's name (absent where only positions matter). */
  readonly name?: string;
  /** Entries delivered to the group and not acknowledged (XPENDING). */
  readonly pending?: number;
  /** Entries of the stream not delivered to the group yet (XINFO GROUPS `lag`, Redis 7); null when Redis cannot tell. */
  readonly lag?: number | null;
}

/**
 * The id below which no group needs any entry: the smallest of every group's
 * oldest pending id and last-delivered id. `XTRIM key MINID <id>` removes
 * entries strictly older, so it never removes a pending entry nor one a group
 * has yet to read (the last-delivered entry itself is kept: one entry of slack).
 * Null without groups: broadcast readers keep their positions to themselves,
 * so nothing is known to be safe.
 */
export function pendingSafeMinId(groups: readonly GroupPosition[]): string | null {
  let min: string | null = null;
  for (const g of groups) {
    for (const id of [g.lastDeliveredId, g.oldestPendingId]) {
      if (id !== null && (min === null || compareIds(id, min) < 0)) min = id;
    }
  }
  return min;
}

/** XINFO GROUPS replies are flat `[name, value, ...]` arrays: one field of one. */
/** What {@link readGroupPositions} needs of a connection: `call` of ioredis. */
export interface PositionReader {
  call(command: string, ...args: string[]): Promise<unknown>;
}

/**
 * Every group's position on `stream`: XINFO GROUPS, then the XPENDING summary
 * of each group (its oldest pending id). Reading them one after the other is
 * safe for trimming: meanwhile last-delivered ids only grow and pending lists
 * only lose what was acknowledged, so the minimum can only have moved forward.
 * A group created meanwhile starts at what is left (the retained history).
 *
 * @throws the ioredis error when the stream does not exist (`ERR no such key`).
 */
export async function readGroupPositions(cmd: PositionReader, stream: string): Promise<GroupPosition[]> {
  const groups = await cmd.call('XINFO', 'GROUPS', stream);
  if (!Array.isArray(groups)) return [];
  return Promise.all(
    groups.map(async (row: unknown) => {
      const g = flatMap(row);
      const name = str(g, 'name') ?? '';
      const summary = await cmd.call('XPENDING', stream, name);
      const oldest = Array.isArray(summary) && typeof summary[1] === 'string' ? summary[1] : null;
      const pending = Array.isArray(summary) ? Number(summary[0]) : 0;
      return { lastDeliveredId: str(g, 'last-delivered-id') ?? '0-0', oldestPendingId: oldest, name, pending, lag: num(g, 'lag') };
    }),
  );
}
