/**
 * Wire format, versions 1 and 2 (the one place it is documented). One encoded
 * message is a UTF-8 string:
 *
 *     <header JSON>\n<payload>
 *
 * The header is a small JSON object tagged by `k` (see {@link MessageKind});
 * `JSON.stringify` never emits a raw newline, so the first `\n` ends it. The
 * payload is produced by the channel's {@link Serializer} in a single pass and
 * is not re-escaped, so a 100 KB argument is encoded once. Headers:
 *
 * - request  `{"v":1,"k":"req","id","m":[path],"dl":deadlineEpochMs,"n"?:1,"cb"?:[[argIndex,...path]]}`,
 *   payload = the argument array; `n` marks a notification (no answer), `cb`
 *   lists where the caller's callbacks sat in the arguments (replaced by null).
 * - result   `{"v":1,"k":"res","id"}`, payload = the return value.
 * - error    `{"v":1,"k":"err","id"}`, payload = a {@link SerializedError}.
 * - callback `{"v":1,"k":"cb","id","c":index}`, payload = the argument array of
 *   callback number `c` of call `id` (server to caller).
 *
 * Version 2 adds one optional request field, `"md":{name: value}`: metadata
 * the caller attached (`getAPI({ metadata })`; trace context, authentication),
 * at most {@link MAX_METADATA_ENTRIES} string pairs. A header is written as
 * version 2 only when it uses a version 2 field, so messages without metadata
 * are byte for byte those of version 1 and older peers keep reading them.
 * Readers accept both versions and ignore header fields they do not know, so
 * later minor additions do not break them.
 *
 * Every request and notification carries its deadline `dl`; answers and
 * callback invocations need none (they go to one caller's inbox and act only
 * on a call still pending there). The stream entries around messages, control
 * entries and their deadlines included, are documented in redis/entries.ts.
 *
 * @module
 */
import { RPCProtocolError } from '../errors.js';

/** The newest protocol version this library reads and writes (see the module doc for what each adds). */
export const PROTOCOL_VERSION = 2;

/** Protocol versions a header may carry. */
export type ProtocolVersion = 1 | 2;

/** Most metadata entries one request may carry. */
export const MAX_METADATA_ENTRIES = 32;
/** Longest metadata name, in characters. */
export const MAX_METADATA_NAME = 128;
/** Longest metadata value, in characters (a W3C traceparent is 55, a JWT a few hundred). */
export const MAX_METADATA_VALUE = 4096;

/** Request metadata: string names to string values. */
export type Metadata = Readonly<Record<string, string>>;

/** Message tags. */
export const MessageKind = {
  /** A request or notification. */
  Request: 'req',
  /** A successful answer. */
  Result: 'res',
  /** A failed answer. */
  Error: 'err',
  /** A callback invocation, callee to caller. */
  Callback: 'cb',
} as const;

/** One of the {@link MessageKind} tags. */
export type MessageKindTag = (typeof MessageKind)[keyof typeof MessageKind];

/** Where a callback sat in the arguments: argument index, then property keys or array indexes. */
export type CallbackPath = readonly (string | number)[];

/** Header of a request or notification. */
export interface RequestHeader {
  readonly v: ProtocolVersion;
  readonly k: typeof MessageKind.Request;
  readonly id: string;
  readonly m: readonly string[];
  readonly dl: number;
  readonly n?: 1;
  readonly cb?: readonly CallbackPath[];
  /** Version 2: the caller's metadata. */
  readonly md?: Metadata;
}

/** Header of a successful answer. */
export interface ResultHeader {
  readonly v: ProtocolVersion;
  readonly k: typeof MessageKind.Result;
  readonly id: string;
}

/** Header of a failed answer. */
export interface ErrorHeader {
  readonly v: ProtocolVersion;
  readonly k: typeof MessageKind.Error;
  readonly id: string;
}

/** Header of a callback invocation. */
export interface CallbackHeader {
  readonly v: ProtocolVersion;
  readonly k: typeof MessageKind.Callback;
  readonly id: string;
  readonly c: number;
}

/** Any header, tagged by `k`. */
export type Header = RequestHeader | ResultHeader | ErrorHeader | CallbackHeader;

/** A message split into its validated header and its still-encoded payload. */
export interface DecodedMessage<H extends Header = Header> {
  readonly header: H;
  readonly payload: string;
}

const MAX_ID_LENGTH = 128;
/**
 * Longest header, in characters. A real header is well under 1 KB (an id, a
 * method path of at most {@link MAX_METHOD_DEPTH} names, callback paths); the
 * bound keeps a hostile one from costing more than its payload would.
 */
export const MAX_HEADER_CHARS = 64 * 1024;
/** Deepest method path a request may name. */
export const MAX_METHOD_DEPTH = 32;
const MAX_PATH_DEPTH = MAX_METHOD_DEPTH;

/** Joins a header and an encoded payload. */
export function encodeMessage(header: Header, payload: string): string {
  return `${JSON.stringify(header)}\n${payload}`;
}

/**
 * The same bytes as {@link encodeMessage} for an answer, without building and
 * walking a header object (this runs once per call on each side).
 */
export function encodeAnswer(kind: typeof MessageKind.Result | typeof MessageKind.Error, id: string, payload: string): string {
  return `{"v":1,"k":"${kind}","id":${JSON.stringify(id)}}\n${payload}`;
}

/**
 * The same bytes as {@link encodeMessage} for a request. `methodJson` is
 * `JSON.stringify(path)`, which the caller computes once per method.
 */
export function encodeRequest(id: string, methodJson: string, deadline: number, notify: boolean, cb: RequestHeader['cb'], payload: string, metadataJson?: string): string {
  const extra = (notify ? ',"n":1' : '') + (cb === undefined ? '' : `,"cb":${JSON.stringify(cb)}`) + (metadataJson === undefined ? '' : `,"md":${metadataJson}`);
  return `{"v":${metadataJson === undefined ? 1 : 2},"k":"req","id":${JSON.stringify(id)},"m":${methodJson},"dl":${deadline}${extra}}\n${payload}`;
}

/**
 * Why `md` is not valid request metadata (at most {@link MAX_METADATA_ENTRIES}
 * string pairs of bounded size), or `undefined` when it is.
 */
export function metadataProblem(md: unknown): string | undefined {
  if (typeof md !== 'object' || md === null || Array.isArray(md)) return 'expected an object of string values';
  const names = Object.keys(md);
  if (names.length > MAX_METADATA_ENTRIES) return `at most ${MAX_METADATA_ENTRIES} entries, got ${names.length}`;
  for (const name of names) {
    const value = (md as Record<string, unknown>)[name];
    if (name.length === 0 || name.length > MAX_METADATA_NAME || name === '__proto__') return `bad name ${JSON.stringify(name.slice(0, 40))} (1 to ${MAX_METADATA_NAME} characters)`;
    if (typeof value !== 'string' || value.length > MAX_METADATA_VALUE) return `value of "${name}" must be a string of at most ${MAX_METADATA_VALUE} characters`;
  }
  return undefined;
}

/**
 * Splits and validates a message. The payload is left encoded so that, for
 * example, a late duplicate answer is dropped without parsing its body.
 *
 * @throws {@link RPCProtocolError} when the message was not written by this library.
 */
export function decodeMessage(data: string, entryId?: string): DecodedMessage {
  const nl = data.indexOf('\n', 0);
  if (nl <= 0 || data.charCodeAt(0) !== 123 /* { */) {
    throw new RPCProtocolError('Not a redis-streams-rpc message', entryId);
  }
  if (nl > MAX_HEADER_CHARS) throw new RPCProtocolError(`Message header is longer than ${MAX_HEADER_CHARS} characters`, entryId);
  let raw: unknown;
  try {
    raw = JSON.parse(data.slice(0, nl));
  } catch (cause) {
    throw new RPCProtocolError('Message header is not valid JSON', entryId, { cause });
  }
  return { header: validateHeader(raw, entryId), payload: data.slice(nl + 1) };
}

/** What can still be read from a message whose header did not validate: enough to answer or settle it. */
export interface SalvagedHeader {
  /** The message's kind, when it names one. */
  readonly kind: MessageKindTag | undefined;
  /** Its call id, when well-formed. */
  readonly id: string;
  /** Whether a request says it is a notification (it wants no answer). */
  readonly notification: boolean;
}

/**
 * The kind and call id of a message that {@link decodeMessage} refused, when
 * its header is a JSON object with a well-formed `id`: a request refused this
 * way can still be answered with the error, and an answer still settles its
 * call, instead of leaving the caller to time out. Costs no more than the header.
 */
export function salvageHeader(data: string): SalvagedHeader | undefined {
  const nl = data.indexOf('\n');
  if (nl <= 0 || nl > MAX_HEADER_CHARS || data.charCodeAt(0) !== 123) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(data.slice(0, nl));
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const h = raw as Record<string, unknown>;
  if (typeof h.id !== 'string' || h.id.length === 0 || h.id.length > MAX_ID_LENGTH) return undefined;
  const kind = KINDS.has(h.k) ? (h.k as MessageKindTag) : undefined;
  return { kind, id: h.id, notification: h.n === 1 };
}

const KINDS = new Set<unknown>(Object.values(MessageKind));

function fail(what: string, entryId: string | undefined): never {
  throw new RPCProtocolError(`Invalid message header: ${what}`, entryId);
}

function validateHeader(raw: unknown, entryId: string | undefined): Header {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('not an object', entryId);
  const h = raw as Record<string, unknown>;
  if (h.v !== 1 && h.v !== 2) fail(`unsupported version ${JSON.stringify(h.v)}`, entryId);
  if (typeof h.id !== 'string' || h.id.length === 0 || h.id.length > MAX_ID_LENGTH) fail('bad "id"', entryId);
  const kind = h.k as MessageKindTag;
  switch (kind) {
    case MessageKind.Request:
      validateRequest(h, entryId);
      return h as unknown as RequestHeader;
    case MessageKind.Result:
    case MessageKind.Error:
      return h as unknown as ResultHeader | ErrorHeader;
    case MessageKind.Callback:
      if (!Number.isInteger(h.c) || (h.c as number) < 0) fail('bad callback index "c"', entryId);
      return h as unknown as CallbackHeader;
    default:
      return assertUnknownKind(kind, entryId);
  }
}

function assertUnknownKind(kind: never, entryId: string | undefined): never {
  return fail(`unknown kind ${JSON.stringify(kind)}`, entryId);
}

function validateRequest(h: Record<string, unknown>, entryId: string | undefined): void {
  const m = h.m;
  if (!Array.isArray(m) || m.length === 0 || m.length > MAX_PATH_DEPTH || !m.every((s) => typeof s === 'string')) {
    fail('bad method path "m"', entryId);
  }
  if (typeof h.dl !== 'number' || !Number.isFinite(h.dl)) fail('bad deadline "dl"', entryId);
  if (h.n !== undefined && h.n !== 1) fail('bad notification flag "n"', entryId);
  if (h.md !== undefined) {
    const problem = h.v === 2 ? metadataProblem(h.md) : 'version 1 has none';
    if (problem !== undefined) fail(`bad metadata "md": ${problem}`, entryId);
    // A map of its own: no inherited member can be mistaken for a caller's entry.
    h.md = Object.freeze(Object.assign(Object.create(null) as Record<string, string>, h.md));
  }
  if (h.cb !== undefined) {
    const ok =
      Array.isArray(h.cb) &&
      h.cb.every(
        (p) =>
          Array.isArray(p) &&
          p.length > 0 &&
          p.length <= MAX_PATH_DEPTH &&
          Number.isInteger(p[0]) &&
          p.every((s) => typeof s === 'string' || (typeof s === 'number' && Number.isInteger(s) && s >= 0)),
      );
    if (!ok) fail('bad callback paths "cb"', entryId);
  }
}

/**
 * The UTF-8 size of `data` when it is more than `limit` bytes, else
 * `undefined`. Cheap for the common case: a string of n UTF-16 units takes
 * between n and 3n bytes, so it is measured only when the bounds disagree.
 */
export function bytesOverLimit(data: string, limit: number): number | undefined {
  if (data.length * 3 <= limit) return undefined;
  if (data.length > limit) return Buffer.byteLength(data, 'utf8');
  const bytes = Buffer.byteLength(data, 'utf8');
  return bytes > limit ? bytes : undefined;
}
