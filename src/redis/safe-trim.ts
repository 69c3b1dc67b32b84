/**
 * The pending-safe trim point of a request stream: the oldest entry any
 * consumer group still needs. Kept in one small function so that on-demand
 * trimming (the inspector's `trim`) and any automatic retention share it.
 *
 * @module
 */
import { compareIds } from './entries.js';

/** What a group still needs, from XINFO GROUPS and the XPENDING summary. */
export interface GroupPosition {
  /** Last entry delivered to the group: later entries are not read yet. */
  readonly lastDeliveredId: string;
  /** Oldest entry delivered and not acknowledged, or null when none is pending. */
  readonly oldestPendingId: string | null;
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
