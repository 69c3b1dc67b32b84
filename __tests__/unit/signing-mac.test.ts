// The MAC of a signed entry is the documented one (signing.ts): HMAC-SHA256 over "rsrpc-sig-v1",
// the key written to and every field before `s`, each as its length in UTF-16 units, ':', then its
// UTF-8 bytes. Computed here independently, for ASCII and for text the writer must not encode as
// latin1 (accents, astral characters, a lone surrogate), so a faster encoding path cannot change it.
import { createHmac, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { EntrySigner, HmacSha256, resolveSigning } from '../../src/redis/signing.js';

const SECRET = randomBytes(32);

function documentedMac(key: string, fields: readonly string[]): string {
  const hmac = createHmac('sha256', SECRET);
  for (const part of ['rsrpc-sig-v1', key, ...fields]) hmac.update(Buffer.concat([Buffer.from(`${part.length}:`, 'utf8'), Buffer.from(part, 'utf8')]));
  return hmac.digest('base64url');
}

describe('entry signing: the MAC is the documented encoding', () => {
  const signer = new EntrySigner(resolveSigning({ keys: { k1: SECRET }, keyId: 'k1' })!);
  const cases: Record<string, string> = {
    ascii: '{"json":["plain ascii"]}',
    latin1: '{"json":["café, naïve"]}',
    astral: '{"json":["rocket 🚀 and 𝄞"]}',
    'lone surrogate': `{"json":["${'\ud800'}x"]}`,
    'latin1 range only': '{"json":["\u00ff\u0080"]}',
    'long (a length past the prefix table)': `{"json":["${'y'.repeat(5000)}"]}`,
    'exactly 1023 characters (the last in the prefix table)': `{"json":"${'z'.repeat(1023 - 11)}"}`,
    'exactly 1024 characters (the first past it)': `{"json":"${'z'.repeat(1024 - 11)}"}`,
  };
  for (const [name, payload] of Object.entries(cases)) {
    it(`${name}: signed() writes the documented MAC, and verify() accepts it`, () => {
      const key = '{orders}:inbox:abc';
      const out = signer.signed(key, ['f', 'sender-1', 'd', payload]);
      expect(out.slice(-6, -1)).to.deep.equal(['k', 'k1', 't', out[out.length - 3], 's']);
      expect(out[out.length - 1]).to.equal(documentedMac(key, out.slice(0, -2)));
      const stamped = `${out[out.length - 3]}-0`;
      expect(new EntrySigner(resolveSigning({ keys: { k1: SECRET }, keyId: 'k1' })!).verify(key, { id: stamped, fields: out })).to.equal(undefined);
      // One altered character of the payload, or another key: refused.
      const altered = out.slice();
      altered[3] = payload.replace('json', 'jsoN');
      expect(new EntrySigner(resolveSigning({ keys: { k1: SECRET }, keyId: 'k1' })!).verify(key, { id: stamped, fields: altered })).to.equal('bad-signature');
      expect(new EntrySigner(resolveSigning({ keys: { k1: SECRET }, keyId: 'k1' })!).verify('{orders}:inbox:abd', { id: stamped, fields: out })).to.equal('bad-signature');
    });
  }
});

describe('entry signing: HmacSha256 is HMAC-SHA256', () => {
  for (const length of [32, 63, 64, 65, 100, 200]) {
    it(`a ${length}-byte secret: the same MAC as createHmac, MAC after MAC`, () => {
      const secret = randomBytes(length);
      const hmac = new HmacSha256(secret);
      // ASCII (hashed through latin1) and not (through UTF-8), the Latin-1 range included.
      for (const text of ['', 'a', 'x'.repeat(55), 'y'.repeat(64), 'z'.repeat(1000), 'café 🚀', '\u00ff\u0080', `${'\ud800'}x`]) {
        expect(hmac.digest(text), JSON.stringify(text)).to.equal(createHmac('sha256', secret).update(text, 'utf8').digest('base64url'));
      }
    });
  }
  it('texts longer than the reused input buffer, one after another and between short ones', () => {
    const secret = randomBytes(32);
    const hmac = new HmacSha256(secret);
    for (const length of [10, 5000, 20, 70_000, 30, 200_000, 4096 - 64, 4096 - 63]) {
      const text = 'é'.repeat(length >> 1) + 'a'.repeat(length - (length >> 1));
      expect(hmac.digest(text), `length ${length}`).to.equal(createHmac('sha256', secret).update(text, 'utf8').digest('base64url'));
    }
  });
  it('RFC 4231 test case 2 (key "Jefe")', () => {
    // A secret shorter than the 32 bytes signing accepts; the construction does not depend on it.
    const expected = Buffer.from('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843', 'hex').toString('base64url');
    expect(new HmacSha256(Buffer.from('Jefe')).digest('what do ya want for nothing?')).to.equal(expected);
  });
});

describe('entry signing: the payloads above have the lengths their names say', () => {
  it('1023 and 1024 characters', () => {
    expect(`{"json":"${'z'.repeat(1023 - 11)}"}`).to.have.length(1023);
    expect(`{"json":"${'z'.repeat(1024 - 11)}"}`).to.have.length(1024);
  });
});
