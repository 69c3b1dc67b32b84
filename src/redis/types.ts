import type { IoEvents } from '../io/io-interface.js';

/** Events of {@link RedisStreamsIO}, on top of {@link IoEvents}. */
export interface RedisStreamsIOEvents extends IoEvents {
  /** A connection came back after being lost. */
  reconnect: (info: { connection: 'command' | 'reader'; reconnects: number }) => void;
  /** Requests of a stopped worker were taken over. */
  reclaimed: (info: { ids: string[] }) => void;
  /**
   * A taken-over entry carrying several requests (written in one tick by one
   * caller) was replaced by one entry per request, so each is retried on its own.
   */
  split: (info: { id: string; requests: number }) => void;
  /** A request was moved to the dead-letter stream. */
  'dead-letter': (info: { id: string; from: string | undefined; deliveries: number; deadLetterId: string | null; reason: string }) => void;
  /** Pending requests were trimmed away before anyone handled them (their callers time out). */
  trimmed: (info: { ids: string[] }) => void;
}

/** What {@link RedisStreamsIO.getStreamInfo} resolves. */
export interface StreamInfo {
  /** Entries in the stream. */
  length: number;
  /** Consumer groups on the stream. */
  groups: number;
  /** The newest entry, or null when the stream is empty. */
  lastEntry: StreamEntry | null;
}

/** One stream entry with its fields. */
export interface StreamEntry {
  /** The entry id, `<ms>-<seq>`. */
  id: string;
  /** Field names to values. A repeated field keeps its last value: see {@link StreamEntry.messages}. */
  fields: Record<string, string>;
  /** Every message (`d` field) of the entry, in order: writes of one tick share an entry. */
  messages: string[];
}
