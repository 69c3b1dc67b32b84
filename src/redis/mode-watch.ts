/**
 * Detection of a request stream served in both modes (see
 * {@link RedisStreamsModeMismatchError}): broadcast servers and load-balanced
 * workers on one stream run every request twice, silently.
 *
 * A peer that starts serving writes a `serve` entry on the control stream
 * (mode, group; see entries.ts). Every endpoint reads the control stream
 * beside its inbox, so serving peers hear of a newcomer at once: one of the
 * other mode reports the mismatch and answers with its own `serve` (`re 1`),
 * from which the newcomer learns of it and reports too. Announcements written
 * before this peer's own are history and count for nothing: their writers may
 * be long gone (a SIGKILLed peer writes no goodbye), so only a peer alive to
 * answer does. A broadcast server also looks at the groups of the stream
 * (`XINFO GROUPS`, `XINFO CONSUMERS`) when it starts, for workers of versions
 * that do not announce themselves.
 *
 * @module
 */
import { debugLog } from '../debug-log.js';
import { RedisStreamsModeMismatchError } from '../errors.js';
import type { RedisConnection } from './connection.js';
import { compareIds, Control, Field, type ControlEntry, type ServeMode } from './entries.js';
import { flatMap, num, str } from './inspect/replies.js';
import { CONTROL_MAXLEN } from './stream-readers.js';

/**
 * A consumer of a group counts as a running worker when it touched the
 * stream this recently (`idle` of `XINFO CONSUMERS`): a worker blocks in
 * `XREADGROUP` for `blockTimeout` (5 s by default) at a time, while a consumer
 * that stopped without leaving its group stays listed for good.
 */
export const ACTIVE_CONSUMER_IDLE_MS = 60_000;

/** Most mismatches remembered as reported (one `'error'` each); the oldest are forgotten first. */
const MAX_REPORTED = 10_000;

/** What the watch needs from its IO. */
export interface ModeWatchHost {
  readonly cmd: RedisConnection;
  /** The request stream's key. */
  readonly stream: string;
  readonly controlKey: string;
  readonly sessionId: string;
  readonly mode: ServeMode;
  /** The consumer group, in mode `group`. */
  readonly group: string | undefined;
  /** The complete fields of a control entry for `key`: sender, `word`, `extra`, deadline, signature. */
  controlEntry(key: string, word: string, extra: readonly string[]): readonly string[];
  /** Reports a mismatch on `'error'`. */
  report(error: RedisStreamsModeMismatchError): void;
  reportBackground(err: unknown): void;
}

/** Announces this serving peer and reports serving peers of the other mode. */
export class ModeWatch {
  /** Id of this peer's own `serve` entry: later announcements are live, earlier ones history. */
  private boundary: string | undefined;
  private started = false;
  /** Keys of the mismatches reported: a group (broadcast side) or a broadcast server (worker side). */
  private readonly reported = new Set<string>();

  constructor(private readonly host: ModeWatchHost) {}

  /** Once this peer serves (set up, reading requests): announces it; a broadcast server also checks the groups. */
  async start(): Promise<void> {
    if (this.started) return;
    this.boundary = await this.announce(false);
    this.started = true;
    if (this.host.mode === 'broadcast') await this.checkGroups();
  }

  /** A live `serve` entry of the control stream (deadline checked by the reader). */
  onServe(entry: ControlEntry): void {
    const { host } = this;
    if (this.boundary === undefined || entry.from === host.sessionId || compareIds(entry.id, this.boundary) <= 0) return;
    if (entry.mode === undefined || entry.mode === host.mode) return;
    if (debugLog.control.enabled) debugLog.control('%s: %s serves "%s" in mode %s%s', host.sessionId, entry.from, host.stream, entry.mode, entry.reply === true ? ' (answer)' : '');
    if (host.mode === 'broadcast') this.mismatch(`group:${entry.group ?? ''}`, entry.from, entry.group);
    else this.mismatch(`peer:${entry.from}`, entry.from, host.group);
    // The newcomer started after this peer's announcement, which it takes for history: answer it.
    if (entry.reply !== true) this.announce(true).catch((err: unknown) => host.reportBackground(err));
  }

  private async announce(reply: boolean): Promise<string | undefined> {
    const { host } = this;
    const extra: string[] = [Field.Mode, host.mode];
    if (host.group !== undefined) extra.push(Field.Group, host.group);
    if (reply) extra.push(Field.Reply, '1');
    const id = await host.cmd.xadd(host.controlKey, 'MAXLEN', '~', CONTROL_MAXLEN, '*', ...host.controlEntry(host.controlKey, Control.Serve, extra));
    return id ?? undefined;
  }

  /** Broadcast: groups of the stream with a running worker (which may not announce itself). */
  private async checkGroups(): Promise<void> {
    const { cmd, stream } = this.host;
    try {
      const groups = await cmd.call('XINFO', 'GROUPS', stream);
      for (const row of Array.isArray(groups) ? (groups as unknown[]) : []) {
        const g = flatMap(row);
        const name = str(g, 'name');
        if (name === null || !((num(g, 'consumers') ?? 0) > 0)) continue;
        const consumers = await cmd.call('XINFO', 'CONSUMERS', stream, name);
        const active = (Array.isArray(consumers) ? (consumers as unknown[]) : []).map(flatMap).find((c) => (num(c, 'idle') ?? Infinity) < ACTIVE_CONSUMER_IDLE_MS);
        if (active !== undefined) this.mismatch(`group:${name}`, str(active, 'name') ?? '?', name);
      }
    } catch (err) {
      // Optional (a stream not created yet, an ACL without XINFO): announcements still find current workers.
      debugLog.control('%s: no group check of "%s": %s', this.host.sessionId, stream, err instanceof Error ? err.message : String(err));
    }
  }

  private mismatch(key: string, peer: string, group: string | undefined): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    if (this.reported.size > MAX_REPORTED) this.reported.delete(this.reported.values().next().value as string);
    this.host.report(new RedisStreamsModeMismatchError(this.host.stream, this.host.mode, peer, group));
  }
}
