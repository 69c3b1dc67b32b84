/**
 * Entry signing (the `signing` option of {@link RedisStreamsIO}). Every entry
 * an IO with signing writes ends with three fields:
 *
 *     ... k <keyId> t <signedAtEpochMs> s <base64url HMAC-SHA256>
 *
 * The HMAC covers, in this canonical encoding (each string as its length in
 * UTF-16 units, `:`, then its UTF-8 bytes, so no two field lists encode alike):
 *
 *     "rsrpc-sig-v1" <key the entry is written to> <every field before `s`, names and values, in order>
 *
 * so it binds the destination key, the sender `f`, every message `d` (whose
 * header carries the call id, method path and deadline), a control word `x` and its deadline `dl`,
 * a redelivery count `r`, the key id and the signing time. A reader verifies
 * with the key named by `k` and refuses the entry before anything decodes it
 * when it is unsigned, names an unknown key, does not match (altered, or
 * moved to another key), was stamped by Redis (its id's time) more than
 * `replayWindowMs` away from its signing time, or repeats, under another id,
 * the signature of an entry this reader already accepted (a replay). A
 * load-balanced pool also shares what its workers were delivered: see
 * pool-replays.ts.
 *
 * @module
 */
import { createSecretKey, hash, type KeyObject } from 'node:crypto';
import { RPCInvalidArgumentError, type RPCSignatureProblem } from '../errors.js';
import { Field, type RawEntry } from './entries.js';
import { decrypt, encrypt, encryptionKey, isEncrypted } from './payload-cipher.js';

/** The `signing` option of {@link RedisStreamsIOOptions}. */
export interface SigningOptions {
  /**
   * Key id to secret, at least {@link MIN_SECRET_BYTES} bytes each (a string
   * counts its UTF-8 bytes). Entries are accepted when signed with any of them,
   * so a new key can be added everywhere before writers switch to it, and the
   * old one removed after.
   */
  keys: Readonly<Record<string, string | Uint8Array>>;
  /** The key entries are signed with; one of {@link SigningOptions.keys}. */
  keyId: string;
  /**
   * Largest difference between an entry's signing time (the writer's clock)
   * and the time Redis stamped into its id, in milliseconds: covers clock
   * differences between hosts and writes held through a short outage. A copy
   * of a signed entry can only be written within this window of the original,
   * and readers remember the signatures they accepted for that long (of
   * stream time), so a copy is refused.
   * @defaultValue 30000
   */
  replayWindowMs?: number;
  /**
   * Also encrypts every message this IO writes (AES-256-GCM, with a key
   * derived by HKDF-SHA256 from the signing key), so whoever reads Redis sees
   * no argument or result. Readers decrypt whatever is encrypted, whatever
   * their own setting: switch it on writer by writer.
   * @defaultValue false
   */
  encrypt?: boolean;
}

/** Defaults of {@link SigningOptions}. */
export const DEFAULT_SIGNING_OPTIONS = {
  /** Signing time to stream id time, in milliseconds. */
  replayWindowMs: 30_000,
  /** Messages are signed, not encrypted. */
  encrypt: false,
} as const;

/** Shortest secret accepted, in bytes (the HMAC-SHA256 output size). */
export const MIN_SECRET_BYTES = 32;

/**
 * Most signatures one IO remembers for replay detection (about 120 bytes
 * each). Beyond it the oldest are forgotten first: a reader accepting more
 * than this many entries per `replayWindowMs` detects copies of the most
 * recent ones only.
 */
export const MAX_REMEMBERED_SIGNATURES = 100_000;

/** Signing options after validation. */
export interface ResolvedSigning {
  readonly keyId: string;
  readonly keys: ReadonlyMap<string, KeyObject>;
  /** The HMAC of each key, its pads hashed once. */
  readonly macKeys: ReadonlyMap<string, HmacSha256>;
  readonly replayWindowMs: number;
  readonly encrypt: boolean;
  /** AES-256 key of each signing key. */
  readonly cipherKeys: ReadonlyMap<string, Buffer>;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const DOMAIN = 'rsrpc-sig-v1';

/**
 * Validates the `signing` option.
 *
 * @throws {@link RPCInvalidArgumentError} naming the bad member.
 */
export function resolveSigning(value: unknown): ResolvedSigning | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) throw new RPCInvalidArgumentError('signing', 'expected { keys: { <keyId>: secret }, keyId }');
  for (const name of Object.keys(value)) {
    if (!['keys', 'keyId', 'replayWindowMs', 'encrypt'].includes(name)) throw new RPCInvalidArgumentError(`signing.${name}`, 'unknown option; known options are keys, keyId, replayWindowMs, encrypt');
  }
  const o = value as Partial<SigningOptions>;
  if (typeof o.keys !== 'object' || o.keys === null || Array.isArray(o.keys)) throw new RPCInvalidArgumentError('signing.keys', 'expected an object of key id to secret');
  const keys = new Map<string, KeyObject>();
  const macKeys = new Map<string, HmacSha256>();
  for (const [id, secret] of Object.entries(o.keys)) {
    if (!KEY_ID.test(id)) throw new RPCInvalidArgumentError('signing.keys', `key id ${JSON.stringify(id)} must be 1 to 64 characters of A-Z a-z 0-9 . _ -`);
    const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret instanceof Uint8Array ? Buffer.from(secret) : undefined;
    if (bytes === undefined) throw new RPCInvalidArgumentError(`signing.keys.${id}`, 'expected a string or a Buffer/Uint8Array');
    if (bytes.length < MIN_SECRET_BYTES) throw new RPCInvalidArgumentError(`signing.keys.${id}`, `a secret must have at least ${MIN_SECRET_BYTES} bytes, got ${bytes.length} (e.g. crypto.randomBytes(32))`);
    keys.set(id, createSecretKey(bytes));
    macKeys.set(id, new HmacSha256(bytes));
  }
  if (keys.size === 0) throw new RPCInvalidArgumentError('signing.keys', 'expected at least one key');
  if (typeof o.keyId !== 'string' || !keys.has(o.keyId)) {
    throw new RPCInvalidArgumentError('signing.keyId', `expected one of the ids in signing.keys (${[...keys.keys()].join(', ')}), got ${JSON.stringify(o.keyId) ?? String(o.keyId)}`);
  }
  const window = o.replayWindowMs ?? DEFAULT_SIGNING_OPTIONS.replayWindowMs;
  if (typeof window !== 'number' || !Number.isInteger(window) || window < 1000 || window > 86_400_000) {
    throw new RPCInvalidArgumentError('signing.replayWindowMs', `expected an integer in [1000, 86400000], got ${String(window)}`);
  }
  const encrypt = o.encrypt ?? DEFAULT_SIGNING_OPTIONS.encrypt;
  if (typeof encrypt !== 'boolean') throw new RPCInvalidArgumentError('signing.encrypt', `expected a boolean, got ${String(encrypt)}`);
  const cipherKeys = new Map([...keys].map(([id, key]) => [id, encryptionKey(key)] as const));
  return { keyId: o.keyId, keys, macKeys, replayWindowMs: window, encrypt, cipherKeys };
}

/** SHA-256's block size in bytes. */
const SHA256_BLOCK_BYTES = 64;
/** SHA-256's output size in bytes. */
const SHA256_BYTES = 32;
/** Largest message kept in the reusable input buffer; a larger one gets a buffer of its own. */
const SCRATCH_MAX_BYTES = 64 * 1024;

/**
 * HMAC-SHA256 (RFC 2104) of one secret, computed with two one-shot
 * `crypto.hash` calls over reused buffers: `H(outer pad | H(inner pad | text))`.
 * The same bytes as `createHmac('sha256', secret)`, without its stream
 * objects: in a loop over 700-byte entries, `createHmac` or copied `Hash`
 * states spent 4.4 µs per MAC in their constructors, `update` and `digest`
 * and left as much again to the garbage collector, where hashing itself
 * takes under 1 µs.
 */
export class HmacSha256 {
  /** The inner pad, then the text of the MAC being computed. */
  private scratch: Buffer;
  /** The outer pad, then the inner digest. */
  private readonly outer: Buffer;

  constructor(secret: Uint8Array) {
    const block = Buffer.alloc(SHA256_BLOCK_BYTES);
    (secret.length > SHA256_BLOCK_BYTES ? hash('sha256', secret, 'buffer') : Buffer.from(secret)).copy(block);
    this.scratch = Buffer.alloc(4096);
    this.outer = Buffer.alloc(SHA256_BLOCK_BYTES + SHA256_BYTES);
    for (let i = 0; i < SHA256_BLOCK_BYTES; i++) {
      this.scratch[i] = (block[i] as number) ^ 0x36;
      this.outer[i] = (block[i] as number) ^ 0x5c;
    }
  }

  /** The MAC of `text` (its UTF-8 bytes), in base64url. */
  digest(text: string): string {
    const byteLength = Buffer.byteLength(text, 'utf8');
    // Of an all-ASCII string (its UTF-8 length is its length) latin1 gives the same bytes, and
    // Node writes it faster (1.6 µs less for a 1.2 KB entry).
    const encoding = byteLength === text.length ? 'latin1' : 'utf8';
    const size = SHA256_BLOCK_BYTES + byteLength;
    let input = this.scratch;
    if (size > input.length) {
      input = Buffer.allocUnsafe(size);
      this.scratch.copy(input, 0, 0, SHA256_BLOCK_BYTES);
      if (size <= SCRATCH_MAX_BYTES) this.scratch = input;
    }
    const written = input.write(text, SHA256_BLOCK_BYTES, encoding);
    // The inner digest as a one-byte string ('binary' is latin1), written back as its bytes: no Buffer to allocate.
    this.outer.write(hash('sha256', input.subarray(0, SHA256_BLOCK_BYTES + written), 'binary'), SHA256_BLOCK_BYTES, 'latin1');
    return hash('sha256', this.outer, 'base64url');
  }
}

/** Characters of a signature: 32 bytes in base64url, unpadded. */
const SIGNATURE_CHARS = 43;

/**
 * Whether `given` is exactly the signature `expected`, compared in time that
 * does not depend on where they differ. Exactly: base64url decoding ignores
 * padding, characters outside its alphabet and the unused low bits of the
 * last character, so several strings decode to one MAC, and a check of the
 * decoded bytes would accept a copy spelled another way as a new entry
 * (replay detection remembers the string).
 */
function sameSignature(given: string, expected: string): boolean {
  if (given.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < given.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}

/** `"<n>:"` for the field lengths met most, built once: one string less to allocate per field. */
const LENGTH_PREFIXES: readonly string[] = Array.from({ length: 1024 }, (_, n) => `${n}:`);

/** The MAC of the first `count` fields of an entry written to `key`. */
function mac(hmac: HmacSha256, key: string, fields: readonly string[], count: number): string {
  // One flat string, one write: a write per field costs more, and so does a string built by
  // `+=` (a rope, whose UTF-8 encoding for the hash was the largest cost of signing: measured
  // 10.3 µs per 16-message entry with `+=`, 6.3 µs with join). Sized up front, with the length
  // prefixes from LENGTH_PREFIXES: 1.1 instead of 1.4 µs for a 7-message entry in a loop.
  const parts = new Array<string>(1 + 2 * count);
  parts[0] = `${DOMAIN.length}:${DOMAIN}${key.length}:${key}`;
  for (let i = 0, j = 1; i < count; i++) {
    const f = fields[i] as string;
    const n = f.length;
    parts[j++] = n < LENGTH_PREFIXES.length ? (LENGTH_PREFIXES[n] as string) : `${n}:`;
    parts[j++] = f;
  }
  return hmac.digest(parts.join(''));
}

/** Milliseconds part of a stream id, or NaN. */
function idTime(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/** A signature remembered for replay detection. */
interface Seen {
  readonly mac: string;
  readonly key: string;
  readonly id: string;
  /** Forgotten once the reader of `key` has read past this stream time. */
  readonly until: number;
}

/** Signs the entries an IO writes and verifies the ones it reads. */
export class EntrySigner {
  private readonly signingKey: HmacSha256;
  /** Accepted signatures: entry id by MAC. */
  private readonly seen = new Map<string, string>();
  /** The same, oldest first, for pruning. */
  private order: Seen[] = [];
  private head = 0;
  /** Newest stream time read per key. */
  private readonly positions = new Map<string, number>();

  constructor(private readonly config: ResolvedSigning) {
    this.signingKey = config.macKeys.get(config.keyId) as HmacSha256;
  }

  /** `fields` (an entry for `key`) with the signature fields `k`, `t`, `s` appended. */
  signed(key: string, fields: readonly string[]): string[] {
    const out = this.config.encrypt ? this.encrypted(fields) : fields.slice();
    out.push(Field.KeyId, this.config.keyId, Field.SignedAt, String(Date.now()));
    out.push(Field.Signature, mac(this.signingKey, key, out, out.length));
    return out;
  }

  /**
   * Why the entry read from `key` must be refused, or `undefined` to accept
   * it (then its signature is remembered: a later copy is a replay).
   */
  verify(key: string, entry: RawEntry): RPCSignatureProblem | undefined {
    const { fields, id } = entry;
    const n = fields.length;
    if (n < 8 || n % 2 !== 0 || fields[n - 2] !== Field.Signature || fields[n - 4] !== Field.SignedAt || fields[n - 6] !== Field.KeyId) return 'unsigned';
    const secret = this.config.macKeys.get(fields[n - 5] as string);
    if (secret === undefined) return 'unknown-key';
    const given = fields[n - 1] as string;
    if (given.length !== SIGNATURE_CHARS || !sameSignature(given, mac(secret, key, fields, n - 2))) return 'bad-signature';
    const signedAt = Number(fields[n - 3]);
    const stamped = idTime(id);
    const window = this.config.replayWindowMs;
    if (!Number.isSafeInteger(signedAt) || !(Math.abs(stamped - signedAt) <= window)) return 'outside-window';
    const signature = fields[n - 1] as string;
    const earlier = this.seen.get(signature);
    // The same entry again (a redelivery, a take-over) is not a replay.
    if (earlier !== undefined) return earlier === id ? undefined : 'replayed';
    this.remember({ mac: signature, key, id, until: signedAt + window }, stamped);
    return undefined;
  }

  /**
   * A verified entry with its messages decrypted (those that are encrypted),
   * or `undefined` when one does not decrypt.
   */
  open(entry: RawEntry): RawEntry | undefined {
    const { fields } = entry;
    let out: string[] | undefined;
    for (let i = 1; i < fields.length; i += 2) {
      const value = fields[i] as string;
      if (fields[i - 1] !== Field.Data || !isEncrypted(value)) continue;
      const key = this.config.cipherKeys.get(fields[fields.length - 5] as string);
      const plain = key === undefined ? undefined : decrypt(key, value);
      if (plain === undefined) return undefined;
      (out ??= fields.slice())[i] = plain;
    }
    return out === undefined ? entry : { id: entry.id, fields: out };
  }

  private encrypted(fields: readonly string[]): string[] {
    const key = this.config.cipherKeys.get(this.config.keyId) as Buffer;
    return fields.map((value, i) => (i % 2 === 1 && fields[i - 1] === Field.Data ? encrypt(key, value) : value));
  }

  private remember(seen: Seen, stamped: number): void {
    this.seen.set(seen.mac, seen.id);
    this.order.push(seen);
    if (stamped > (this.positions.get(seen.key) ?? 0)) this.positions.set(seen.key, stamped);
    // A copy must be stamped within the window of its signing time, and readers read a stream in
    // id order: once this reader has read past `until` on that key, no copy can still be accepted.
    while (this.head < this.order.length) {
      const oldest = this.order[this.head] as Seen;
      if (this.seen.size <= MAX_REMEMBERED_SIGNATURES && (this.positions.get(oldest.key) ?? 0) <= oldest.until) break;
      this.seen.delete(oldest.mac);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  /** Signatures remembered now (for tests and stats). */
  get remembered(): number {
    return this.seen.size;
  }
}

/** The complete fields of an entry for `key`: signed, or as they are without signing. */
export type SealEntry = (key: string, fields: readonly string[]) => readonly string[];

/** The {@link SealEntry} of an IO: signs with `signer`, or leaves entries as they are. */
export function sealWith(signer: EntrySigner | undefined): SealEntry {
  return signer === undefined ? (_key, fields) => fields : (key, fields) => signer.signed(key, fields);
}

/** Whether an entry carries signature fields (an IO without signing refuses it: both sides must agree). */
export function looksSigned(entry: RawEntry): boolean {
  const { fields } = entry;
  return fields.length >= 2 && fields[fields.length - 2] === Field.Signature;
}
