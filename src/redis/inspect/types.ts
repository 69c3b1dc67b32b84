/**
 * Plain data returned by {@link StreamInspector}: JSON-serializable objects
 * (numbers, strings, booleans, null, arrays), the same shapes the CLI prints
 * with `--json`.
 *
 * @module
 */

/** One request found in a stream entry, decoded from its envelope header. */
export interface InspectedRequest {
  /** The caller's call id (answers carry it back). */
  readonly callId: string;
  /** Dotted method path, e.g. `math.add`. */
  readonly method: string;
  /** When the caller stops waiting (epoch milliseconds). */
  readonly deadline: number;
  /** Whether it is a notification (no answer is expected). */
  readonly notification: boolean;
  /** Size of the encoded message (header and arguments), in UTF-8 bytes. */
  readonly bytes: number;
  /** Metadata names the caller attached (values are left out: they may carry credentials). */
  readonly metadataKeys: readonly string[];
}

/** A message of an entry that could not be decoded as a request. */
export interface UndecodableMessage {
  /** Why it was refused. */
  readonly error: string;
  /** Its size in UTF-8 bytes. */
  readonly bytes: number;
}

/** The request stream itself. */
export interface RequestStreamStatus {
  /** Its key. */
  readonly key: string;
  /** Entries in it (XLEN). One entry may carry several requests of one caller. */
  readonly length: number;
  /** `MEMORY USAGE`, in bytes, or null when Redis refused the command (ACL). */
  readonly memoryBytes: number | null;
  /** Id of the oldest entry, or null when empty. */
  readonly firstEntryId: string | null;
  /** Id of the newest entry, or null when empty. */
  readonly lastEntryId: string | null;
  /** Entries ever added (Redis 7+), or null. */
  readonly entriesAdded: number | null;
}

/** One consumer (worker) of a group. */
export interface ConsumerStatus {
  /** Its name in the group (`consumer-<sessionId>` unless the worker set `consumerName`). */
  readonly name: string;
  /** Requests delivered to it and not acknowledged yet. */
  readonly pending: number;
  /** Milliseconds since it last read or claimed (XINFO CONSUMERS `idle`). */
  readonly idleMs: number;
  /** Milliseconds since its last successful read (Redis 7.2+ `inactive`), or null. */
  readonly inactiveMs: number | null;
  /** The session id its name carries (`consumer-<id>`), or null for a custom name. */
  readonly sessionId: string | null;
  /**
   * Whether it looks alive: its session's inbox still exists (a live endpoint
   * refreshes its time to live) when its name carries a session id, else
   * whether `idleMs` is below `claimIdleMs`.
   */
  readonly alive: boolean;
  /** What {@link ConsumerStatus.alive} was derived from. */
  readonly aliveBy: 'inbox' | 'idle';
}

/** One consumer group of the request stream. */
export interface GroupStatus {
  /** Group name. */
  readonly name: string;
  /** Requests delivered and not acknowledged (entries). */
  readonly pending: number;
  /** Id of the last entry delivered to the group. */
  readonly lastDeliveredId: string;
  /** Entries the group has read (Redis 7+), or null when Redis does not know. */
  readonly entriesRead: number | null;
  /** Entries not yet delivered to the group (Redis 7+), or null when Redis cannot tell. */
  readonly lag: number | null;
  /** Id of the oldest pending entry, or null. */
  readonly oldestPendingId: string | null;
  /** Age of the oldest pending entry (since it was written), in milliseconds, or null. */
  readonly oldestPendingAgeMs: number | null;
  /** Its consumers. */
  readonly consumers: readonly ConsumerStatus[];
}

/** One reply inbox of the service (one per live endpoint). */
export interface InboxStatus {
  /** Its key. */
  readonly key: string;
  /** The endpoint's session id. */
  readonly sessionId: string;
  /** Entries in it. */
  readonly length: number;
  /** Milliseconds before it expires unless refreshed, or null without a time to live. */
  readonly ttlMs: number | null;
}

/** The dead-letter stream, in short. */
export interface DeadLetterSummary {
  /** Its key. */
  readonly key: string;
  /** Dead-lettered requests (entries). */
  readonly count: number;
  /** Id of the oldest dead letter, or null. */
  readonly oldestId: string | null;
}

/** Everything {@link StreamInspector.inspect} reports about one service stream. */
export interface StreamStatus {
  /** When it was taken (Redis' clock, epoch milliseconds). */
  readonly time: number;
  /** The request stream. */
  readonly stream: RequestStreamStatus;
  /** Its consumer groups (empty in broadcast mode). */
  readonly groups: readonly GroupStatus[];
  /** Reply inboxes of the endpoints using it. */
  readonly inboxes: readonly InboxStatus[];
  /** Dead letters. */
  readonly deadLetters: DeadLetterSummary;
  /** Age of the oldest pending entry over all groups, in milliseconds, or null. */
  readonly oldestPendingAgeMs: number | null;
}

/** One pending (delivered, not yet acknowledged) request entry. */
export interface PendingEntry {
  /** Stream entry id. */
  readonly entryId: string;
  /** The group it is pending in. */
  readonly group: string;
  /** The consumer holding it. */
  readonly consumer: string;
  /** Milliseconds since it was last delivered (or its lease renewed). */
  readonly idleMs: number;
  /** Delivery attempts, including those spent before a batch entry was split into this one. */
  readonly deliveries: number;
  /** Milliseconds since it was written. */
  readonly ageMs: number;
  /** The caller's session id (answers go to its inbox), or null when the entry is gone or malformed. */
  readonly caller: string | null;
  /** Whether the entry no longer exists in the stream (trimmed or deleted while pending). */
  readonly missing: boolean;
  /** The requests it carries. */
  readonly requests: readonly InspectedRequest[];
  /** Messages that could not be decoded. */
  readonly undecodable: readonly UndecodableMessage[];
}

/** One dead-lettered request entry. */
export interface DeadLetter {
  /** Its id in the dead-letter stream. */
  readonly id: string;
  /** When it was dead-lettered (epoch milliseconds, from the id). */
  readonly deadLetteredAt: number;
  /** Id the entry had in the request stream. */
  readonly sourceId: string | null;
  /** Group it was pending in. */
  readonly group: string | null;
  /** Deliveries it had. */
  readonly deliveries: number | null;
  /** Why it was dead-lettered. */
  readonly reason: string | null;
  /** The caller's session id, or null. */
  readonly caller: string | null;
  /** Whether the caller's inbox still exists, so a redriven request's answer can reach it. */
  readonly callerAlive: boolean;
  /** The requests it carries. */
  readonly requests: readonly InspectedRequest[];
  /** Messages that could not be decoded. */
  readonly undecodable: readonly UndecodableMessage[];
}

/** A dead letter with its encoded messages, as {@link StreamInspector.deadLetter} returns it. */
export interface DeadLetterDetail extends DeadLetter {
  /** The encoded messages (header line, then the serialized arguments). */
  readonly messages: readonly string[];
  /** Every field of the entry, as stored. */
  readonly fields: Readonly<Record<string, string>>;
}

/** One dead letter put back on the request stream. */
export interface RedrivenRequest {
  /** Its id in the dead-letter stream (now deleted). */
  readonly deadLetterId: string;
  /** Its new id in the request stream. */
  readonly entryId: string;
}

/** What {@link StreamInspector.redriveDeadLetters} did. */
export interface RedriveResult {
  /** Requests put back: dead-letter id and the new id in the request stream. */
  readonly redriven: readonly RedrivenRequest[];
  /** Ids asked for that were not in the dead-letter stream (already redriven or purged). */
  readonly notFound: readonly string[];
  /** Ids left where they were: they hold no request (malformed), or, with `signing`, their signature does not verify. */
  readonly skipped: readonly string[];
}

/** What {@link StreamInspector.trim} did. */
export interface TrimResult {
  /** Entries removed. */
  readonly removed: number;
  /**
   * Entries older than this id were removed (`XTRIM MINID`), or null when
   * nothing could be trimmed safely (no consumer group).
   */
  readonly minId: string | null;
  /** Entries left. */
  readonly length: number;
}

/** One event seen by {@link StreamInspector.tail}. */
export type TailEvent =
  | {
      /** A request or notification written to the request stream. */
      readonly type: 'request';
      /** Stream entry id. */
      readonly entryId: string;
      /** When it was written (epoch milliseconds, from the id). */
      readonly time: number;
      /** The caller's session id. */
      readonly caller: string;
      /** The decoded request. */
      readonly request: InspectedRequest;
    }
  | {
      /** An answer or callback invocation written to a caller's inbox. */
      readonly type: 'result' | 'error' | 'callback';
      /** Inbox entry id. */
      readonly entryId: string;
      /** When it was written (epoch milliseconds, from the id). */
      readonly time: number;
      /** The answering endpoint's session id. */
      readonly from: string;
      /** The caller's session id (the inbox's owner). */
      readonly to: string;
      /** The call id it answers. */
      readonly callId: string;
      /** Its method, when this tail saw the request. */
      readonly method: string | null;
      /** Size of the encoded message, in UTF-8 bytes. */
      readonly bytes: number;
      /** Time from the request's entry to this one, when this tail saw the request. */
      readonly durationMs: number | null;
    }
  | {
      /** A request moved to the dead-letter stream. */
      readonly type: 'dead-letter';
      /** Dead-letter entry id. */
      readonly entryId: string;
      /** When it was written (epoch milliseconds, from the id). */
      readonly time: number;
      /** The dead letter. */
      readonly deadLetter: DeadLetter;
    };
