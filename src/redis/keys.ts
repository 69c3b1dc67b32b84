/**
 * Key layout of one logical stream. Every key shares the stream's Redis
 * Cluster hash tag, so multi-key commands (XREAD over the stream and an inbox,
 * MULTI with a reply and its XACK) stay in one slot.
 *
 * - stream `rpc-stream` (no tag): derived keys are `{rpc-stream}:inbox:<id>`
 *   and `{rpc-stream}:dead`. A key without a tag hashes as a whole, so
 *   `rpc-stream` and `{rpc-stream}:...` land in the same slot.
 * - stream `app:{orders}:rpc` (has a tag): derived keys are `app:{orders}:rpc:inbox:<id>`...
 *
 * @module
 */
import { RPCInvalidArgumentError } from '../errors.js';

/** Whether `key` contains a Redis Cluster hash tag (`{...}` with at least one character inside). */
export function hasHashTag(key: string): boolean {
  const open = key.indexOf('{');
  if (open < 0) return false;
  const close = key.indexOf('}', open + 1);
  return close > open + 1;
}

/** The prefix that derived keys start with. */
export function keyPrefix(stream: string): string {
  if (hasHashTag(stream)) return stream;
  if (stream.includes('{') || stream.includes('}')) {
    throw new RPCInvalidArgumentError(
      'stream',
      `"${stream}" has braces but no Redis Cluster hash tag; use a name without braces or with a non-empty {tag}`,
    );
  }
  return `{${stream}}`;
}

/** The keys of one logical stream. */
export interface StreamKeys {
  readonly stream: string;
  readonly deadLetter: string;
  /** Announcements every endpoint reads beside its inbox: `bye` of callers that went away. */
  readonly control: string;
  inbox(sessionId: string): string;
  /** Signatures of the requests a consumer group was delivered (signing on): see pool-replays.ts. */
  seen(group: string): string;
}

/** Derives every key of `stream`. */
export function streamKeys(stream: string, deadLetterStream?: string): StreamKeys {
  const prefix = keyPrefix(stream);
  return {
    stream,
    deadLetter: deadLetterStream ?? `${prefix}:dead`,
    control: `${prefix}:control`,
    inbox: (sessionId) => `${prefix}:inbox:${sessionId}`,
    seen: (group) => `${prefix}:seen:${group}`,
  };
}
