/**
 * Debug logging with namespaces, as ioredis does: `DEBUG=redis-streams-rpc:*`
 * prints every one, `DEBUG=redis-streams-rpc:claim` one. Call sites on hot
 * paths check `.enabled` before formatting anything, so it costs a property
 * read when off.
 *
 * @module
 */
import createDebug from 'debug';

/** The namespaces, each a `debug` instance. */
export const debugLog = {
  /** Connections: ready, lost, errors, reconnects, inbox and group set-up. */
  connection: createDebug('redis-streams-rpc:connection'),
  /** Reads of the request stream and the inbox (entries per read). */
  read: createDebug('redis-streams-rpc:read'),
  /** Take-overs of pending requests (XCLAIM, XAUTOCLAIM). */
  claim: createDebug('redis-streams-rpc:claim'),
  /** Redelivered batches split into one entry per request. */
  split: createDebug('redis-streams-rpc:split'),
  /** Requests moved to the dead-letter stream. */
  deadLetter: createDebug('redis-streams-rpc:dead-letter'),
  /** Trims of the request stream and the inboxes, and pending entries trimmed away. */
  trim: createDebug('redis-streams-rpc:trim'),
  /** Control entries: serving-mode announcements, expired control entries ignored. */
  control: createDebug('redis-streams-rpc:control'),
  /** Calls made by a channel (start, settle). */
  call: createDebug('redis-streams-rpc:call'),
  /** Requests a channel handles (start, end). */
  handle: createDebug('redis-streams-rpc:handle'),
} as const;
