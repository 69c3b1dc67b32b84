/**
 * Optional payload encryption (`signing.encrypt`): each message (`d` field)
 * an IO writes is replaced by
 *
 *     ~1:<base64url(iv 12 bytes | GCM tag 16 bytes | AES-256-GCM ciphertext)>
 *
 * with a key derived (HKDF-SHA256, info `rsrpc-enc-v1`) from the signing key
 * the entry names in `k`, so the keyring and its rotation serve both. The
 * entry is signed after encryption (the MAC covers the ciphertext), and a
 * reader verifies first, then decrypts. A message never starts with `~` (it
 * starts with its JSON header), so readers decrypt what is encrypted and take
 * the rest as it is: encryption can be switched on writer by writer.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

const PREFIX = '~1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The AES-256 key of a signing key. */
export function encryptionKey(signingKey: KeyObject): Buffer {
  return Buffer.from(hkdfSync('sha256', signingKey.export(), Buffer.alloc(0), 'rsrpc-enc-v1', 32));
}

/** Whether a `d` value is encrypted. */
export function isEncrypted(value: string): boolean {
  return value.startsWith(PREFIX);
}

/** Encrypts one message. */
export function encrypt(key: Buffer, plain: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** Decrypts one message, or `undefined` when it does not decrypt with `key`. */
export function decrypt(key: Buffer, value: string): string | undefined {
  const bytes = Buffer.from(value.slice(PREFIX.length), 'base64url');
  if (bytes.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
