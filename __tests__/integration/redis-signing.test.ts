// The attacks of issue 10, each written by hand with XADD from a plain ioredis client (someone with
// write access to Redis), against RedisStreamsIO with the `signing` option on, and (where it
// documents today's behaviour) off. Both modes, against a real redis-server.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import {
  RPCChannel,
  RPCInvalidArgumentError,
  RPCProtocolError,
  RPCSignatureError,
  RPCTimeoutError,
  RedisStreamsIO,
  type RedisStreamsIOOptions,
  type RPCSignatureProblem,
  type SigningOptions,
} from '../../src/index.js';
import { EntrySigner, resolveSigning } from '../../src/redis/signing.js';
import { deleteKeys, redisUrl, sleep, uniqueName, waitFor } from '../support/env.js';

interface Bank {
  transfer(to: string, amount: number): string;
  pay(amount: number): number;
  refund(amount: number): number;
  isAdmin(user: string): Promise<boolean>;
  slow(): Promise<string>;
  progress(onStep: (step: string) => void): Promise<string>;
}

/** A controllable gate: handlers wait on it, the test opens it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

const OLD = randomBytes(32);
const NEW = randomBytes(32);
const SIGNING: SigningOptions = { keys: { k1: OLD }, keyId: 'k1' };

/** Fields of an entry as XRANGE returns them, as pairs. */
function fieldsOf(entry: [string, string[]]): string[] {
  return entry[1];
}

/** The headers of the `d` messages of an entry. */
function headersOf(fields: string[]): Record<string, unknown>[] {
  return fields.filter((_, i) => i % 2 === 1 && fields[i - 1] === 'd').map((d) => JSON.parse(d.slice(0, d.indexOf('\n'))) as Record<string, unknown>);
}

/** The header of the first `d` message of an entry. */
function headerOf(fields: string[]): Record<string, unknown> {
  return headersOf(fields)[0] ?? {};
}

/** A promise kept for a later await, that does not count as unhandled if the test fails first. */
function kept<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

describe('RedisStreamsIO signing (issue 10 attacks)', function () {
  this.timeout(30_000);
  let url = '';
  let name = '';
  let raw: Redis;
  const channels: RPCChannel<object, object>[] = [];
  const extraStreams: string[] = [];

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('sign');
    raw = new Redis(url);
  });

  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await raw.quit();
    await deleteKeys(url, `*${name}*`);
    for (const s of extraStreams.splice(0)) await deleteKeys(url, `*${s}*`);
  });

  /** Counters of what the bank ran. */
  function newLedger() {
    return { transfers: [] as string[], paid: 0, refunded: 0, steps: [] as string[], gates: { slow: gate(), admin: gate(), progress: gate() } };
  }
  type Ledger = ReturnType<typeof newLedger>;

  function bank(ledger: Ledger): Bank {
    return {
      transfer: (to, amount) => {
        ledger.transfers.push(`${to}:${amount}`);
        return 'ok';
      },
      pay: (amount) => (ledger.paid += amount),
      refund: (amount) => (ledger.refunded += amount),
      isAdmin: async (user) => {
        if (user === 'mallory') await ledger.gates.admin.wait;
        return user === 'alice';
      },
      slow: async () => {
        await ledger.gates.slow.wait;
        return 'real';
      },
      progress: async (onStep) => {
        onStep('real step');
        await ledger.gates.progress.wait;
        return 'done';
      },
    };
  }

  function worker(useConsumerGroup: boolean, ledger: Ledger, options: Partial<RedisStreamsIOOptions> = {}, stream = name) {
    const io = new RedisStreamsIO({ url, stream, useConsumerGroup, claimIdleMs: 60_000, ...options });
    const channel = new RPCChannel<Bank, Record<string, never>>(io, { expose: bank(ledger) });
    const errors: Error[] = [];
    channel.on('error', (e) => errors.push(e));
    channels.push(channel as RPCChannel<object, object>);
    return { io, channel, errors };
  }

  function caller(useConsumerGroup: boolean, options: Partial<RedisStreamsIOOptions> = {}, timeout = 10_000) {
    const io = new RedisStreamsIO({ url, stream: name, useConsumerGroup, ...options });
    const channel = new RPCChannel<Record<string, never>, Bank>(io, { timeout });
    const errors: Error[] = [];
    channel.on('error', (e) => errors.push(e));
    channels.push(channel as RPCChannel<object, object>);
    return { io, channel, api: channel.getAPI(), errors, inbox: `{${name}}:inbox:${io.getSessionId()}` };
  }

  const refusals = (errors: Error[], problem?: RPCSignatureProblem): RPCSignatureError[] =>
    errors.filter((e): e is RPCSignatureError => e instanceof RPCSignatureError && (problem === undefined || e.problem === problem));

  /** A request as a caller would write it. */
  function forgedRequest(method: string, args: unknown[], id = `forged-${Math.random()}`): string {
    return `{"v":1,"k":"req","id":"${id}","m":["${method}"],"dl":${Date.now() + 60_000}}\n${JSON.stringify({ json: args })}`;
  }

  /** The call id of the newest request for `method` in the stream. */
  async function callId(method: string): Promise<string> {
    const entries = (await raw.xrange(name, '-', '+')) as [string, string[]][];
    const ids = entries.flatMap((e) => headersOf(e[1])).filter((h) => JSON.stringify(h.m) === JSON.stringify([method]));
    const id = ids.pop()?.id;
    if (typeof id !== 'string') throw new Error(`no ${method} request in ${name}`);
    return id;
  }

  /** The newest request entry of the stream whose method is `method`. */
  async function requestEntry(method: string, stream = name): Promise<[string, string[]]> {
    const entries = (await raw.xrange(stream, '-', '+')) as [string, string[]][];
    const found = entries.filter((e) => e[1].includes('d') && JSON.stringify(headerOf(e[1]).m) === JSON.stringify([method])).pop();
    if (found === undefined) throw new Error(`no ${method} request in ${stream}`);
    return found;
  }

  async function pendingCount(io: RedisStreamsIO): Promise<number> {
    return ((await raw.xpending(name, io.getConsumerGroup())) as [number])[0];
  }

  describe('options', () => {
    it('refuses an unknown keyId, a short secret, an empty keyring and unknown members', () => {
      const bad: unknown[] = [
        { keys: { k1: OLD }, keyId: 'k2' },
        { keys: { k1: 'too short a secret' }, keyId: 'k1' },
        { keys: { k1: randomBytes(31) }, keyId: 'k1' },
        { keys: {}, keyId: 'k1' },
        { keys: { 'bad id': OLD }, keyId: 'bad id' },
        { keys: { k1: 42 }, keyId: 'k1' },
        { keys: { k1: OLD }, keyId: 'k1', replayWindowMs: 10 },
        { keys: { k1: OLD }, keyId: 'k1', windowMs: 1000 },
        'secret',
      ];
      for (const signing of bad) {
        expect(() => new RedisStreamsIO({ url, stream: name, signing: signing as SigningOptions }), JSON.stringify(signing)).to.throw(RPCInvalidArgumentError, /signing/);
      }
    });
  });

  for (const mode of ['broadcast', 'load-balanced'] as const) {
    const lb = mode === 'load-balanced';

    it(`${mode}: a forged request (transfer) runs without signing: the documented behaviour when it is off`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger);
      await w.io.waitUntilReady();
      await raw.xadd(name, '*', 'f', 'mallory', 'd', forgedRequest('transfer', ['mallory', 1e6]));
      await waitFor(() => ledger.transfers.length === 1, { message: 'the forged transfer did not run' });
      expect(ledger.transfers).to.deep.equal(['mallory:1000000']);
    });

    it(`${mode}: a forged request (transfer) is refused with signing on, acknowledged, counted, and calls keep working`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger, { signing: SIGNING });
      const c = caller(lb, { signing: SIGNING });
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady()]);
      const id = (await raw.xadd(name, '*', 'f', 'mallory', 'd', forgedRequest('transfer', ['mallory', 1e6]))) as string;
      // Also forged with made-up signature fields (an unknown key, and a known key with a wrong MAC).
      const id2 = (await raw.xadd(name, '*', 'f', 'mallory', 'd', forgedRequest('transfer', ['mallory', 2e6]), 'k', 'k9', 't', String(Date.now()), 's', 'A'.repeat(43))) as string;
      const id3 = (await raw.xadd(name, '*', 'f', 'mallory', 'd', forgedRequest('transfer', ['mallory', 3e6]), 'k', 'k1', 't', String(Date.now()), 's', 'A'.repeat(43))) as string;
      await waitFor(() => w.io.stats().refusedEntries === 3, { message: `refusedEntries ${w.io.stats().refusedEntries}` });
      expect(ledger.transfers).to.deep.equal([]);
      const refused = refusals(w.errors);
      expect(refused.map((e) => [e.entryId, e.problem, e.code])).to.deep.equal([
        [id, 'unsigned', 'ERR_RPC_SIGNATURE'],
        [id2, 'unknown-key', 'ERR_RPC_SIGNATURE'],
        [id3, 'bad-signature', 'ERR_RPC_SIGNATURE'],
      ]);
      expect(refused[0]?.claimedSender).to.equal('mallory');
      expect(refused[0]?.key).to.equal(name);
      expect(w.channel.stats().handled).to.equal(0);
      if (lb) await waitFor(async () => (await pendingCount(w.io)) === 0, { message: 'refused entries left pending' });
      expect(await c.api.pay(5)).to.equal(5);
      expect(w.channel.stats().handled).to.equal(1);
      expect(c.errors).to.deep.equal([]);
    });

    it(`${mode}: every entry written with signing on carries k, t, s last (requests, answers, callbacks, control)`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger, { signing: SIGNING });
      const c = caller(lb, { signing: SIGNING });
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady()]);
      ledger.gates.progress.open();
      const steps: string[] = [];
      expect(await c.api.progress((s) => steps.push(s))).to.equal('done');
      await c.channel.signalDestroy();
      await c.channel.notify().pay(1);
      await waitFor(() => ledger.paid === 1);
      expect(steps).to.deep.equal(['real step']);
      const all = [...((await raw.xrange(name, '-', '+')) as [string, string[]][]), ...((await raw.xrange(c.inbox, '-', '+')) as [string, string[]][])];
      expect(all.length).to.be.greaterThan(4);
      for (const [, fields] of all) {
        expect(fields.slice(-6).filter((_, i) => i % 2 === 0)).to.deep.equal(['k', 't', 's']);
        expect(fields[fields.length - 5]).to.equal('k1');
      }
      expect(w.errors).to.deep.equal([]);
    });

    it(`${mode}: a forged answer, error answer and callback invocation in a caller's inbox are refused; the real ones settle the call`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger, { signing: SIGNING });
      const c = caller(lb, { signing: SIGNING });
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady()]);
      const steps: string[] = [];
      const slow = kept(c.api.slow());
      const progress = kept(c.api.progress((s) => steps.push(s)));
      await waitFor(() => steps.length === 1);
      const slowId = await callId('slow');
      const progressId = await callId('progress');
      await raw.xadd(c.inbox, '*', 'f', w.io.getSessionId(), 'd', `{"v":1,"k":"res","id":"${slowId}"}\n{"json":999999999}`);
      await raw.xadd(c.inbox, '*', 'f', w.io.getSessionId(), 'd', `{"v":1,"k":"err","id":"${progressId}"}\n{"json":{"name":"RPCDeliveryError","message":"forged","props":{"code":"ERR_RPC_DELIVERY"}}}`);
      await raw.xadd(c.inbox, '*', 'f', w.io.getSessionId(), 'd', `{"v":1,"k":"cb","id":"${progressId}","c":0}\n{"json":["forged step"]}`);
      await waitFor(() => c.io.stats().refusedEntries === 3, { message: `refusedEntries ${c.io.stats().refusedEntries}` });
      expect(refusals(c.errors, 'unsigned')).to.have.length(3);
      ledger.gates.slow.open();
      ledger.gates.progress.open();
      expect(await slow).to.equal('real');
      expect(await progress).to.equal('done');
      expect(steps).to.deep.equal(['real step']);
      expect(c.channel.stats().duplicates).to.equal(0);
    });

    it(`${mode}: a forged answer settles the call without signing: the documented behaviour when it is off`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger);
      const c = caller(lb);
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady()]);
      const slow = kept(c.api.slow());
      await waitFor(() => callId('slow').then(() => true, () => false));
      const slowId = await callId('slow');
      await raw.xadd(c.inbox, '*', 'f', 'mallory', 'd', `{"v":1,"k":"res","id":"${slowId}"}\n{"json":999999999}`);
      expect(await slow).to.equal(999999999);
      ledger.gates.slow.open();
    });

    for (const signing of [undefined, SIGNING]) {
      it(`${mode}: a request written straight into a worker's inbox is not run, nor answered (signing ${signing === undefined ? 'off' : 'on'})`, async () => {
        const ledger = newLedger();
        const w = worker(lb, ledger, { signing });
        const c = caller(lb, { signing });
        await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady()]);
        const workerInbox = `{${name}}:inbox:${w.io.getSessionId()}`;
        // As mallory, and as the real caller (so an answer would have an inbox to go to).
        await raw.xadd(workerInbox, '*', 'f', 'mallory', 'd', forgedRequest('transfer', ['mallory', 1e6]));
        await raw.xadd(workerInbox, '*', 'f', c.io.getSessionId(), 'd', forgedRequest('transfer', ['mallory', 2e6]));
        // Signing on: refused before decoding; off: decoded and refused by the channel as misplaced.
        const refused = (): number => (signing === undefined ? w.channel.stats().malformed : w.io.stats().refusedEntries);
        await waitFor(() => refused() === 2, { message: `refused ${refused()}` });
        if (signing === undefined) {
          const misplaced = w.errors.filter((e) => e instanceof RPCProtocolError && /arrived in this endpoint's inbox/.test(e.message));
          expect(misplaced).to.have.length(2);
        } else {
          expect(refusals(w.errors, 'unsigned')).to.have.length(2);
        }
        await sleep(100);
        expect(ledger.transfers).to.deep.equal([]);
        expect(w.channel.stats().handled).to.equal(0);
        expect(w.io.stats().sent, 'no answer written').to.equal(0);
        expect(await c.api.pay(1)).to.equal(1);
        expect(c.errors).to.deep.equal([]);
      });
    }

    it(`${mode}: an answer written to the request stream settles nothing (signing off)`, async () => {
      const ledger = newLedger();
      // A peer that serves and calls: in broadcast mode it reads the request stream itself.
      const io = new RedisStreamsIO({ url, stream: name, useConsumerGroup: lb });
      const both = new RPCChannel<Bank, Bank>(io, { expose: bank(ledger), timeout: 10_000 });
      const errors: Error[] = [];
      both.on('error', (e) => errors.push(e));
      channels.push(both as RPCChannel<object, object>);
      const w = worker(lb, ledger);
      await Promise.all([io.waitUntilReady(), w.io.waitUntilReady()]);
      const slow = kept(both.getAPI().slow());
      await waitFor(() => callId('slow').then(() => true, () => false));
      const id = await callId('slow');
      await raw.xadd(name, '*', 'f', 'mallory', 'd', `{"v":1,"k":"res","id":"${id}"}\n{"json":999999999}`);
      await waitFor(() => [...errors, ...w.errors].some((e) => e instanceof RPCProtocolError && /"res" message arrived on the request stream/.test(e.message)));
      ledger.gates.slow.open();
      expect(await slow).to.equal('real');
    });

    it(`${mode}: a signed request replayed under a new id runs once`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger, { signing: SIGNING });
      const c = caller(lb, { signing: SIGNING });
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady()]);
      expect(await c.api.pay(10)).to.equal(10);
      const [originalId, fields] = await requestEntry('pay');
      const copy = (await raw.xadd(name, '*', ...fields)) as string;
      await waitFor(() => w.io.stats().refusedEntries === 1, { message: 'the copy was not refused' });
      expect(ledger.paid).to.equal(10);
      expect(refusals(w.errors).map((e) => [e.entryId, e.problem])).to.deep.equal([[copy, 'replayed']]);
      expect(copy).to.not.equal(originalId);
      if (lb) await waitFor(async () => (await pendingCount(w.io)) === 0, { message: 'the copy was left pending' });
      expect(await c.api.pay(1)).to.equal(11);
    });

    it(`${mode}: a copy whose signature is spelled another way (padding, unused low bits, a character base64url ignores) is refused, not run`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger, { signing: SIGNING });
      const c = caller(lb, { signing: SIGNING });
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady()]);
      expect(await c.api.pay(10)).to.equal(10);
      const [, fields] = await requestEntry('pay');
      const signature = fields[fields.length - 1] as string;
      // The last of 43 characters carries 6 bits of which the MAC uses 4: flipping the lowest bit
      // decodes to the same 32 bytes. Padding and characters outside the alphabet are skipped by
      // Node's decoder. Each spelling is a different string, so a check keyed by the string alone
      // would take it for a new entry.
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const last = alphabet[alphabet.indexOf(signature[42] as string) ^ 1] as string;
      const spellings = [`${signature.slice(0, 42)}${last}`, `${signature}=`, `${signature.slice(0, 20)}.${signature.slice(20)}`];
      for (const spelling of spellings) expect(Buffer.from(spelling, 'base64url').equals(Buffer.from(signature, 'base64url'))).to.equal(true);
      for (const spelling of spellings) await raw.xadd(name, '*', ...fields.slice(0, -1), spelling);
      await waitFor(() => w.io.stats().refusedEntries === spellings.length, { message: `refused ${w.io.stats().refusedEntries} of ${spellings.length}` });
      expect(ledger.paid).to.equal(10);
      expect(refusals(w.errors, 'bad-signature')).to.have.length(spellings.length);
      if (lb) await waitFor(async () => (await pendingCount(w.io)) === 0, { message: 'a copy was left pending' });
      expect(await c.api.pay(1)).to.equal(11);
    });

    it(`${mode}: a signed request altered to another method, or moved to another stream or into an inbox, is refused`, async () => {
      const ledger = newLedger();
      const other = newLedger();
      const otherStream = `${name}-other`;
      const w = worker(lb, ledger, { signing: SIGNING });
      const w2 = worker(lb, other, { signing: SIGNING }, otherStream);
      const c = caller(lb, { signing: SIGNING });
      await Promise.all([w.io.waitUntilReady(), w2.io.waitUntilReady(), c.io.waitUntilReady()]);
      expect(await c.api.pay(10)).to.equal(10);
      const [, fields] = await requestEntry('pay');
      const altered = fields.map((f) => f.replace('"m":["pay"]', '"m":["refund"]'));
      expect(altered).to.not.deep.equal(fields);
      await raw.xadd(name, '*', ...altered);
      await raw.xadd(otherStream, '*', ...fields);
      await raw.xadd(`{${name}}:inbox:${w.io.getSessionId()}`, '*', ...fields);
      await waitFor(() => w.io.stats().refusedEntries === 2 && w2.io.stats().refusedEntries === 1, {
        message: `refused ${w.io.stats().refusedEntries} / ${w2.io.stats().refusedEntries}`,
      });
      expect(refusals(w.errors, 'bad-signature')).to.have.length(2);
      expect(refusals(w2.errors, 'bad-signature')).to.have.length(1);
      expect([ledger.refunded, ledger.paid, other.paid, other.refunded]).to.deep.equal([0, 10, 0, 0]);
    });

    it(`${mode}: a signed "true" answer copied to another call, or to another caller's inbox, is refused`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger, { signing: SIGNING });
      const c = caller(lb, { signing: SIGNING });
      const c2 = caller(lb, { signing: SIGNING });
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady(), c2.io.waitUntilReady()]);
      expect(await c.api.isAdmin('alice')).to.equal(true);
      const trueId = await callId('isAdmin');
      const answer = ((await raw.xrange(c.inbox, '-', '+')) as [string, string[]][]).find((e) => e[1].includes('d'));
      if (answer === undefined) throw new Error('no answer in the inbox');
      expect(headerOf(answer[1]).id).to.equal(trueId);
      const mine = kept(c.api.isAdmin('mallory'));
      await waitFor(async () => (await callId('isAdmin')) !== trueId);
      const myId = await callId('isAdmin');
      const theirs = kept(c2.api.isAdmin('mallory'));
      await waitFor(async () => (await callId('isAdmin')) !== myId);
      const theirId = await callId('isAdmin');
      // The signed "true" re-addressed to the pending call (the id in the message changed)...
      await raw.xadd(c.inbox, '*', ...answer[1].map((f) => f.replace(`"id":"${trueId}"`, `"id":"${myId}"`)));
      // ... and the same entry, untouched, copied into the other caller's inbox (whose call ids differ: re-addressed too).
      await raw.xadd(c2.inbox, '*', ...answer[1]);
      await raw.xadd(c2.inbox, '*', ...answer[1].map((f) => f.replace(`"id":"${trueId}"`, `"id":"${theirId}"`)));
      await waitFor(() => c.io.stats().refusedEntries === 1 && c2.io.stats().refusedEntries === 2, {
        message: `refused ${c.io.stats().refusedEntries} / ${c2.io.stats().refusedEntries}`,
      });
      expect(refusals(c.errors, 'bad-signature')).to.have.length(1);
      expect(refusals(c2.errors, 'bad-signature')).to.have.length(2);
      ledger.gates.admin.open();
      expect(await mine).to.equal(false);
      expect(await theirs).to.equal(false);
    });

    it(`${mode}: key rotation: peers with old, both and new keys, signing with either, without a failure`, async () => {
      const ledger = newLedger();
      ledger.gates.progress.open();
      const both = (keyId: 'old' | 'new'): SigningOptions => ({ keys: { old: OLD, new: NEW }, keyId });
      // Step 1: everybody on "old"; step 2: "new" added everywhere, some peers already sign with it.
      const w1 = worker(lb, ledger, { signing: { keys: { old: OLD }, keyId: 'old' } });
      const c1 = caller(lb, { signing: both('old') });
      await Promise.all([w1.io.waitUntilReady(), c1.io.waitUntilReady()]);
      expect(await c1.api.pay(1)).to.equal(1);
      await w1.channel.destroy();
      const w2 = worker(lb, ledger, { signing: both('old') });
      // Broadcast: both workers run every request, each with its own ledger.
      const ledger3 = lb ? ledger : newLedger();
      ledger3.gates.progress.open();
      const w3 = worker(lb, ledger3, { signing: both('new') });
      const c2 = caller(lb, { signing: both('new') });
      await Promise.all([w2.io.waitUntilReady(), w3.io.waitUntilReady(), c2.io.waitUntilReady()]);
      const steps: string[] = [];
      const results = await Promise.all([
        ...Array.from({ length: 20 }, () => c1.api.pay(1)),
        ...Array.from({ length: 20 }, () => c2.api.pay(1)),
        c1.api.progress((s) => steps.push(s)),
        c2.api.progress((s) => steps.push(s)),
      ]);
      expect(results).to.have.length(42);
      expect(lb ? ledger.paid : [ledger.paid, ledger3.paid]).to.deep.equal(lb ? 41 : [41, 40]);
      // Broadcast: the second worker's callback may come after the first answer settled the call (then dropped).
      expect(steps.length).to.be.within(2, lb ? 2 : 4);
      // Step 3: "old" removed once nobody signs with it.
      await Promise.all([w2.channel.destroy(), c1.channel.destroy()]);
      const c3 = caller(lb, { signing: { keys: { new: NEW }, keyId: 'new' } });
      await c3.io.waitUntilReady();
      expect(await c3.api.pay(1)).to.equal(lb ? 42 : 41);
      for (const side of [w2, w3, c1, c2, c3]) expect(side.errors).to.deep.equal([]);
    });

    it(`${mode}: a caller with signing and a worker without: the call times out saying the answer was refused as unsigned`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger);
      const c = caller(lb, { signing: SIGNING }, 1500);
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady()]);
      const err = (await c.api.pay(1).then(() => undefined, (e: unknown) => e)) as RPCTimeoutError;
      expect(err).to.be.instanceOf(RPCTimeoutError);
      expect(err.cause).to.be.instanceOf(RPCSignatureError);
      expect((err.cause as RPCSignatureError).problem).to.equal('unsigned');
      expect(err.message).to.match(/refused an entry by signing/);
      expect(refusals(c.errors, 'unsigned')).to.have.length(1);
      // The worker ran it (it verifies nothing) and said once that a peer signs.
      expect(refusals(w.errors, 'unexpected-signature')).to.have.length(1);
      await c.api.pay(1).catch(() => undefined);
      expect(refusals(w.errors, 'unexpected-signature')).to.have.length(1);
    });

    it(`${mode}: a caller without signing and a worker with it: the worker refuses and reports each request; the call times out`, async () => {
      const ledger = newLedger();
      const w = worker(lb, ledger, { signing: SIGNING });
      const c = caller(lb, {}, 1500);
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady()]);
      await expect(c.api.pay(1)).to.be.rejectedWith(RPCTimeoutError);
      expect(ledger.paid).to.equal(0);
      const refused = refusals(w.errors, 'unsigned');
      expect(refused).to.have.length(1);
      expect(refused[0]?.claimedSender).to.equal(c.io.getSessionId());
      expect(refused[0]?.message).to.match(/signing/);
      if (lb) await waitFor(async () => (await pendingCount(w.io)) === 0, { message: 'refused request left pending' });
    });
  }

  for (const lb of [false, true]) {
    const mode = lb ? 'load-balanced' : 'broadcast';
    it(`${mode}: signing.encrypt: no argument, result or callback argument is readable in Redis, and calls work`, async () => {
      const ledger = newLedger();
      ledger.gates.progress.open();
      const encrypted: SigningOptions = { ...SIGNING, encrypt: true };
      const w = worker(lb, ledger, { signing: encrypted });
      const c = caller(lb, { signing: encrypted });
      // A caller that signs and does not encrypt: readers decrypt whatever is encrypted, and take the rest.
      const plain = caller(lb, { signing: SIGNING });
      await Promise.all([w.io.waitUntilReady(), c.io.waitUntilReady(), plain.io.waitUntilReady()]);
      const secret = `secret-${randomBytes(8).toString('hex')}`;
      const steps: string[] = [];
      expect(await c.api.transfer(secret, 1)).to.equal('ok');
      expect(await c.api.progress((step) => steps.push(step))).to.equal('done');
      expect(await plain.api.pay(3)).to.equal(3);
      expect(ledger.transfers).to.deep.equal([`${secret}:1`]);
      expect(steps).to.deep.equal(['real step']);
      const dump = JSON.stringify([await raw.xrange(name, '-', '+'), await raw.xrange(c.inbox, '-', '+')]);
      expect(dump).to.not.include(secret);
      expect(dump).to.not.include('real step');
      expect(dump).to.not.include('"transfer"');
      expect(dump).to.include('~1:');
      for (const side of [w, c, plain]) expect(side.errors).to.deep.equal([]);
    });
  }

  it('signing.encrypt: a correctly signed entry whose message does not decrypt is refused as undecryptable', async () => {
    const ledger = newLedger();
    const w = worker(true, ledger, { signing: { ...SIGNING, encrypt: true } });
    await w.io.waitUntilReady();
    // Only a key holder can sign: the check behind the MAC, for a writer with a broken cipher.
    const signer = new EntrySigner(resolveSigning(SIGNING) as NonNullable<ReturnType<typeof resolveSigning>>);
    const id = (await raw.xadd(name, '*', ...signer.signed(name, ['f', 'someone', 'd', `~1:${'A'.repeat(60)}`]))) as string;
    await waitFor(() => w.io.stats().refusedEntries === 1);
    expect(refusals(w.errors).map((e) => [e.entryId, e.problem])).to.deep.equal([[id, 'undecryptable']]);
    expect(() => new RedisStreamsIO({ url, stream: name, signing: { ...SIGNING, encrypt: 'yes' as unknown as boolean } })).to.throw(RPCInvalidArgumentError, /signing.encrypt/);
  });

  it('load-balanced: copies of a signed request run nowhere in a pool, whichever worker they reach', async () => {
    const ledger = newLedger();
    const workers = [worker(true, ledger, { signing: SIGNING }), worker(true, ledger, { signing: SIGNING }), worker(true, ledger, { signing: SIGNING })];
    const c = caller(true, { signing: SIGNING });
    await Promise.all([...workers.map((w) => w.io.waitUntilReady()), c.io.waitUntilReady()]);
    expect(await c.api.pay(10)).to.equal(10);
    const [, fields] = await requestEntry('pay');
    // One at a time: each copy goes to whichever worker reads next, mostly not the one that ran it.
    for (let i = 0; i < 12; i++) {
      await raw.xadd(name, '*', ...fields);
      await sleep(10);
    }
    const refused = (): number => workers.reduce((n, w) => n + w.io.stats().refusedEntries, 0);
    await waitFor(() => refused() === 12, { message: `refused ${refused()} of 12` });
    expect(ledger.paid).to.equal(10);
    const replays = workers.flatMap((w) => refusals(w.errors, 'replayed'));
    expect(replays).to.have.length(12);
    process.stdout.write(`      [pool replays] refused per worker: ${workers.map((w) => w.io.stats().refusedEntries).join(', ')}\n`);
    await waitFor(async () => (await pendingCount(workers[0]!.io)) === 0, { message: 'copies left pending' });
    expect(await c.api.pay(1)).to.equal(11);
  });

  it('load-balanced under load: copies of a request written in the middle of a flood run nowhere', async () => {
    const ledger = newLedger();
    const workers = [worker(true, ledger, { signing: SIGNING }), worker(true, ledger, { signing: SIGNING })];
    const c = caller(true, { signing: SIGNING }, 30_000);
    await Promise.all([...workers.map((w) => w.io.waitUntilReady()), c.io.waitUntilReady()]);
    expect(await c.api.pay(1)).to.equal(1);
    const [, fields] = await requestEntry('pay');
    // 3,000 calls in flight keep both workers busy; 40 copies of the pay(1) entry arrive among them.
    const flood = kept(Promise.all(Array.from({ length: 3000 }, () => c.api.refund(1))));
    await waitFor(() => ledger.refunded >= 300, { message: `refunded ${ledger.refunded}` });
    const tx = raw.multi();
    for (let i = 0; i < 40; i++) tx.xadd(name, '*', ...fields);
    await tx.exec();
    expect(await flood).to.have.length(3000);
    const refused = (): number => workers.reduce((n, w) => n + refusals(w.errors, 'replayed').length, 0);
    await waitFor(() => refused() === 40, { message: `refused ${refused()} of 40` });
    expect(ledger.paid, 'a copy ran').to.equal(1);
    expect(ledger.refunded).to.equal(3000);
    process.stdout.write(`      [pool replays under load] copies refused per worker: ${workers.map((w) => refusals(w.errors, 'replayed').length).join(', ')}\n`);
    for (const w of workers) expect(w.errors.filter((e) => !(e instanceof RPCSignatureError))).to.deep.equal([]);
  });

  it('load-balanced: a taken-over batch is split into signed entries that the pool verifies and runs', async () => {
    const ledger = newLedger();
    // A first worker holds a batch of 4 requests and never answers; it is destroyed without
    // acknowledging, so the second worker takes the batch over and splits it.
    const stuck = new RedisStreamsIO({ url, stream: name, useConsumerGroup: true, signing: SIGNING, claimIdleMs: 200 });
    const stuckChannel = new RPCChannel<Bank, Record<string, never>>(stuck, {
      expose: { ...bank(newLedger()), pay: (() => new Promise<number>(() => undefined)) as unknown as Bank['pay'] },
    });
    channels.push(stuckChannel as RPCChannel<object, object>);
    const c = caller(true, { signing: SIGNING });
    await Promise.all([stuck.waitUntilReady(), c.io.waitUntilReady()]);
    const calls = kept(Promise.all([1, 2, 3, 4].map((n) => c.api.pay(n))));
    await waitFor(() => stuckChannel.stats().received === 4);
    await stuckChannel.destroy();
    const w = worker(true, ledger, { signing: SIGNING, claimIdleMs: 200 });
    const splits: number[] = [];
    w.io.on('split', (info) => splits.push(info.requests));
    const results = await calls;
    expect(results.sort((a, b) => a - b)).to.have.length(4);
    expect(ledger.paid).to.equal(10);
    expect(splits).to.deep.equal([4]);
    expect(w.io.stats().refusedEntries).to.equal(0);
    expect(w.errors).to.deep.equal([]);
    await sleep(50);
  });
});
