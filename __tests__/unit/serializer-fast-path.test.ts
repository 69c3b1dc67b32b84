// The superjson serializer skips superjson's walk for plain data. What it writes must be what
// superjson itself writes, for plain data and for every value just outside it (so the skip never
// loses a type, an undefined, a shared reference or a cycle).
import { expect } from 'chai';
import { SuperJSON } from 'superjson';
import { superjsonSerializer } from '../../src/index.js';

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function plainValue(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 3 ? 5 : 7));
  switch (k) {
    case 0:
      return Math.floor(r() * 2000) - 1000;
    case 1:
      return r() * 1e6;
    case 2:
      return ['', 'a', 'héllo', '\u2028', '"q"', 'x'.repeat(40)][Math.floor(r() * 6)];
    case 3:
      return r() < 0.5;
    case 4:
      return null;
    case 5:
      return Array.from({ length: Math.floor(r() * 5) }, () => plainValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 5); i > 0; i--) o[`k${Math.floor(r() * 10)}`] = plainValue(r, depth + 1);
      return o;
    }
  }
}

describe('superjson serializer: plain-data fast path', () => {
  const ours = superjsonSerializer();
  const reference = new SuperJSON();

  it('writes what superjson writes for 2,000 random plain values, and they round-trip', () => {
    const r = rng(20261203);
    for (let i = 0; i < 2000; i++) {
      const v = plainValue(r, 0);
      const text = ours.stringify(v);
      expect(text, JSON.stringify(v)).to.equal(reference.stringify(v));
      expect(ours.parse(text)).to.deep.equal(v);
    }
  });

  it('leaves every near-plain value to superjson: types, undefined, -0, NaN, holes, shared and circular references, class instances, null prototypes', () => {
    const shared = { s: 1 };
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    // eslint-disable-next-line no-sparse-arrays
    const holes = [1, , 3];
    const deep: unknown[] = [];
    let cur = deep;
    for (let i = 0; i < 40; i++) {
      const next: unknown[] = [];
      cur.push(next);
      cur = next;
    }
    const cases: Record<string, unknown> = {
      undefined: undefined,
      'undefined member': { a: undefined },
      'negative zero': [-0],
      NaN: { n: Number.NaN },
      Infinity: [Number.POSITIVE_INFINITY],
      Date: { d: new Date(0) },
      Map: [new Map([[1, 2]])],
      Set: new Set([1]),
      BigInt: { b: 10n },
      RegExp: /x/g,
      Error: new Error('e'),
      'shared reference': { a: shared, b: shared },
      circular,
      'class instance': new Point(1, 2),
      'null prototype': nullProto,
      holes,
      'deep nesting': deep,
      Buffer: { b: Buffer.from('hi') },
      'big array': Array.from({ length: 5000 }, (_, i) => i),
    };
    for (const [name, v] of Object.entries(cases)) {
      const text = ours.stringify(v);
      const decoded = ours.parse(text);
      if (name === 'Buffer') {
        expect(Buffer.isBuffer((decoded as { b: unknown }).b), name).to.equal(true);
        continue;
      }
      expect(text, name).to.equal(reference.stringify(v));
      if (name === 'circular') {
        const c = decoded as Record<string, unknown>;
        expect(c.self, name).to.equal(c);
      } else if (name === 'shared reference') {
        const d = decoded as { a: unknown; b: unknown };
        expect(d.a, name).to.equal(d.b);
      } else if (name === 'holes') {
        // superjson's own decoding of a hole; only the text matters here.
        expect((decoded as unknown[]).length, name).to.equal(3);
      } else if (name === 'class instance') {
        expect(decoded, name).to.deep.equal({ x: 1, y: 2 });
      } else {
        expect(decoded, name).to.deep.equal(v);
      }
    }
  });
});
