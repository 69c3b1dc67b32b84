// Issue "Nothing a peer writes, and no API shape, can wedge a worker or a caller": a seeded fuzz of
// real stream entries. Real request entries (from the request stream) and real answer entries
// (from a caller's inbox) are mutated thousands of ways and written back with a raw ioredis client,
// interleaved with real calls, in both modes. Every real call must still be answered correctly;
// every mutated request whose caller can be identified is answered; every pending call whose
// answer is mutated settles (never by its timeout); no event-loop stall over 200 ms; bounded RSS;
// Object.prototype untouched; in load-balanced mode nothing is left pending. All channels run in
// this process, so a decoder whose cost is not linear in the bytes received shows up as a stall.
//
// FUZZ_SEED=<n> replays a run (the seed is printed); FUZZ_VERBOSE=1 prints samples of what failed.
// Entries whose cost explodes on a decoder that is not linear are capped (typed-array and byte
// annotations over {"length":1e7}, not 1e8: on such a decoder 1e8 costs 6 to 13 s of CPU per entry).
import { expect } from 'chai';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { RPCChannel, RPCError, RPCTimeoutError, RedisStreamsIO, type Logger, type RemoteAPI } from '../../src/index.js';
import { deleteKeys, redisUrl, sleep, uniqueName, waitFor } from '../support/env.js';
import {
  LENGTH_PAYLOADS,
  Rng,
  answerKind,
  idsOwedAnAnswer,
  mutate,
  readableHeader,
  setPathsPayload,
  settlesCall,
  splitMessage,
  substitute,
  type Fields,
  type Mutation,
} from './fixtures/fuzz-mutations.js';

interface Api {
  echo(x: unknown): unknown;
  add(a: number, b: number): number;
  withCb(n: number, cb: (n: number) => void): number;
  fail(): never;
  bytes(b: Uint8Array): Uint8Array;
}

interface VictimApi {
  echo(x: number, cb: (...args: unknown[]) => void): number;
}

const SEED = process.env.FUZZ_SEED === undefined ? 0x5eed_2024 : Number(process.env.FUZZ_SEED);
const ROUNDS = 40;
const REQUESTS_PER_ROUND = 25; // 1,000 request mutations
const INBOX_PER_ROUND = 25; // 1,000 answer mutations into the caller's inbox (stale ids: header-level)
const VICTIMS_PER_ROUND = 15; // 600 answer mutations settling pending calls (payloads decoded)
const REAL_CALLS_PER_ROUND = 5;
const CALL_TIMEOUT_MS = 5000;
const VICTIM_TIMEOUT_MS = 8000;
const FUZZ_DEADLINE_MS = 60_000; // stop starting rounds after this (a wedged loop must still end the test)
/** FUZZ_STALL_MS raises it on a machine busy with other work (GC and scheduling add a few hundred ms there). */
const STALL_LIMIT_MS = Number(process.env.FUZZ_STALL_MS ?? 200);
const RSS_LIMIT_MB = 300;
const REQUEST_ID = '@@RID@@';
const VICTIM_ID = '@@VID@@';
/** Expensive entries (capped), written at these rounds: request side, then as answers to pending calls. */
const EXPENSIVE_REQUEST_ROUNDS = [5, 12, 19, 26, 33];
const EXPENSIVE_ANSWER_ROUNDS = [8, 16, 23, 30, 37];

const api = {
  echo: (x: unknown) => x,
  add: (a: number, b: number) => a + b,
  withCb: (n: number, cb: (n: number) => void) => {
    cb(n);
    return n;
  },
  fail: (): never => {
    const e = new Error('boom');
    e.cause = 'primitive';
    throw e;
  },
  bytes: (b: Uint8Array) => b,
};

const mixed = (i: number): unknown[] => [
  new Date(i * 1000),
  new Map<unknown, unknown>([[i, 'a'], ['b', new Set([BigInt(i)])]]),
  new Set(['x', i]),
  12345678901234567890n + BigInt(i),
  Buffer.from(`buf${i}`),
  new Uint8Array([1, 2, i % 256]),
];

interface Outcome {
  readonly kind: string;
  readonly ok: boolean;
  readonly problem?: string;
  readonly timeout?: boolean;
  /** Never settled, not even by its timeout. */
  readonly hung?: boolean;
}

const describeError = (e: unknown): string => (e instanceof Error ? `${e.name}${e instanceof RPCError ? `(${e.code})` : ''}: ${e.message.slice(0, 120)}` : `non-error ${String(e).slice(0, 80)}`);

function sameValue(actual: unknown, expected: unknown): boolean {
  try {
    expect(actual).to.deep.equal(expected);
    return true;
  } catch {
    return false;
  }
}

/** Thrown by {@link within} when a promise outlives its own timeout by far: the library wedged it. */
class HungError extends Error {
  override readonly name = 'HungError';
}

/**
 * `p`, or a {@link HungError} after `ms`: every call has the library's timeout, but a call whose
 * timer a hostile entry disarmed must still end this test instead of hanging mocha.
 */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HungError(`${what} never settled (${ms} ms, past its own timeout)`)), ms);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

const HUNG_AFTER_MS = CALL_TIMEOUT_MS + 3000;

const KINDS = ['echo', 'add', 'withCb', 'fail', 'bytes'] as const;

/** One real call of kind `i % 5`, checked; never rejects. */
function realCall(remote: RemoteAPI<Api>, i: number): Promise<Outcome> {
  const kind = KINDS[i % KINDS.length] as string;
  return within(checkedCall(remote, i), HUNG_AFTER_MS + 1000, `real call ${kind}`).catch((err: unknown) => ({ kind, ok: false, problem: describeError(err), timeout: true, hung: true }));
}

async function checkedCall(remote: RemoteAPI<Api>, i: number): Promise<Outcome> {
  const kind = KINDS[i % KINDS.length] as (typeof KINDS)[number];
  const bad = (problem: string): Outcome => ({ kind, ok: false, problem });
  try {
    switch (kind) {
      case 'echo': {
        const got = await within(remote.echo(mixed(i)), HUNG_AFTER_MS, 'echo');
        return sameValue(got, mixed(i)) ? { kind, ok: true } : bad(`echo returned ${String(got).slice(0, 80)}`);
      }
      case 'add': {
        const got = await within(remote.add(i, 2), HUNG_AFTER_MS, 'add');
        return got === i + 2 ? { kind, ok: true } : bad(`add returned ${String(got)}`);
      }
      case 'withCb': {
        let seen: unknown;
        const got = await within(remote.withCb(i, (n) => void (seen = n)), HUNG_AFTER_MS, 'withCb');
        if (got !== i) return bad(`withCb returned ${String(got)}`);
        for (let t = 0; t < 25 && seen === undefined; t++) await sleep(20);
        return seen === i ? { kind, ok: true } : bad(`withCb's callback got ${String(seen)}`);
      }
      case 'fail': {
        const err = await within(remote.fail(), HUNG_AFTER_MS, 'fail').then(
          () => undefined,
          (e: unknown) => e,
        );
        if (err instanceof RPCTimeoutError || err instanceof HungError) return { kind, ok: false, problem: describeError(err), timeout: true, hung: err instanceof HungError };
        const ok = err instanceof Error && err.name === 'Error' && err.message === 'boom' && err.cause === 'primitive';
        return ok ? { kind, ok: true } : bad(`fail settled with ${describeError(err)} (cause ${String((err as Error | undefined)?.cause)})`);
      }
      case 'bytes': {
        const input = i % 2 === 0 ? Buffer.from([i % 256, 1, 2]) : new Uint8Array([i % 256, 3]);
        const got = await within(remote.bytes(input), HUNG_AFTER_MS, 'bytes');
        return sameValue(got, input) ? { kind, ok: true } : bad(`bytes returned ${String(got)}`);
      }
    }
  } catch (err) {
    return { kind, ok: false, problem: describeError(err), timeout: err instanceof RPCTimeoutError || err instanceof HungError, hung: err instanceof HungError };
  }
}

interface RawEntry {
  readonly id: string;
  readonly fields: string[];
}

function toEntries(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply)) return [];
  return reply.flatMap((item: unknown) => {
    if (!Array.isArray(item) || typeof item[0] !== 'string' || !Array.isArray(item[1])) return [];
    return [{ id: item[0], fields: (item[1] as unknown[]).map(String) }];
  });
}

async function xrangeAll(raw: Redis, key: string, after = '-'): Promise<RawEntry[]> {
  const out: RawEntry[] = [];
  let start = after === '-' ? '-' : `(${after}`;
  for (;;) {
    const page = toEntries(await raw.xrange(key, start, '+', 'COUNT', 200));
    out.push(...page);
    if (page.length < 200) return out;
    start = `(${(page[page.length - 1] as RawEntry).id}`;
  }
}

function dataOf(fields: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'd') out.push(fields[i + 1] as string);
  return out;
}

/** A message with its header's `id` set to `id` (and, for requests, a far deadline). */
function retarget(message: string, id: string, deadline?: number): string {
  const nl = message.indexOf('\n');
  const header = JSON.parse(message.slice(0, nl)) as Record<string, unknown>;
  header.id = id;
  if (deadline !== undefined && 'dl' in header) header.dl = deadline;
  return `${JSON.stringify(header)}\n${message.slice(nl + 1)}`;
}

/** Own keys of the prototypes a hostile entry might reach. */
function prototypeKeys(): Record<string, string[]> {
  const keys = (o: object) => Reflect.ownKeys(o).map(String).sort();
  return { object: keys(Object.prototype), array: keys(Array.prototype), function: keys(Function.prototype) };
}

function restorePrototypes(before: Record<string, string[]>): string[] {
  const added: string[] = [];
  for (const [name, proto] of [['object', Object.prototype], ['array', Array.prototype], ['function', Function.prototype]] as const) {
    for (const key of Reflect.ownKeys(proto)) {
      if (!before[name]?.includes(String(key))) {
        added.push(`${name}.${String(key)}`);
        Reflect.deleteProperty(proto, key);
      }
    }
  }
  return added;
}

const MB = 1024 * 1024;

for (const mode of ['broadcast', 'load-balanced'] as const) {
  const useConsumerGroup = mode === 'load-balanced';

  describe(`faults: fuzzed stream entries (${mode})`, function () {
    this.timeout(120_000);
    let url = '';
    let name = '';
    let raw: Redis | undefined;
    let protoBefore: Record<string, string[]> = {};
    const channels: RPCChannel<object, object>[] = [];

    beforeEach(() => {
      url = redisUrl();
      name = uniqueName(`fuzz-${mode}`);
      protoBefore = prototypeKeys();
    });

    afterEach(async function () {
      this.timeout(30_000);
      // Bounded: a wedged channel must not hang the suite.
      await Promise.race([Promise.allSettled(channels.splice(0).map((c) => c.destroy())), sleep(15_000)]);
      await raw?.quit().catch(() => raw?.disconnect());
      raw = undefined;
      restorePrototypes(protoBefore);
      await deleteKeys(url, `*${name}*`);
    });

    // One scenario in phases that share its channels, templates and counters, hence one long body.
    it('every real call answered, every identifiable request answered, no wedge, no stall, no pollution', async () => {
      const rng = new Rng(SEED);
      const errors = new Map<string, number>();
      const errorSamples = new Map<string, string>();
      const logged: string[] = [];
      const logger: Logger = { warn: (message, error) => void logged.push(`${message}: ${describeError(error)}`) };
      const collect = (side: string) => (e: Error) => {
        const key = `${side}/${e.name}:${e instanceof RPCError ? e.code : '-'}`;
        errors.set(key, (errors.get(key) ?? 0) + 1);
        if (!errorSamples.has(key)) errorSamples.set(key, e.message.slice(0, 160));
      };

      const serverIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup, logger });
      const callerIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup, logger });
      const victimStream = `${name}:victim`;
      const victimIo = new RedisStreamsIO({ url, stream: victimStream, useConsumerGroup, logger });
      const server = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: api, logger });
      const caller = new RPCChannel<Record<string, never>, Api>(callerIo, { timeout: CALL_TIMEOUT_MS, logger });
      const victim = new RPCChannel<Record<string, never>, VictimApi>(victimIo, { timeout: VICTIM_TIMEOUT_MS, logger });
      server.on('error', collect('server'));
      caller.on('error', collect('caller'));
      victim.on('error', collect('victim'));
      channels.push(server as RPCChannel<object, object>, caller as RPCChannel<object, object>, victim as RPCChannel<object, object>);
      const r = new Redis(url);
      raw = r;
      await within(Promise.all([serverIo.waitUntilReady(), callerIo.waitUntilReady(), victimIo.waitUntilReady()]), 10_000, 'waitUntilReady');
      const remote = caller.getAPI();
      const victimApi = victim.getAPI();
      const callerSession = callerIo.getSessionId();
      const serverSession = serverIo.getSessionId();
      const inbox = `{${name}}:inbox:${callerSession}`;
      // Mutated requests name this sender: an inbox the test made and nobody reads or trims (the
      // caller trims its own inbox as it reads), so every answer the server writes stays there to count.
      const observer = `fuzz-observer-${Date.now().toString(36)}`;
      const observerInbox = `{${name}}:inbox:${observer}`;
      const victimInbox = `{${victimStream}}:inbox:${victimIo.getSessionId()}`;

      // 1. Real calls of every kind, then their entries as templates.
      const warmup = await Promise.all(Array.from({ length: 10 }, (_, i) => realCall(remote, i)));
      expect(warmup.filter((o) => !o.ok), 'warm-up calls').to.deep.equal([]);
      await within(caller.notify().echo('a notification'), 10_000, 'a notification');
      await sleep(100);
      const farDeadline = Date.now() + 10 * 60_000;
      const requestTemplates: Fields[] = (await xrangeAll(r, name)).flatMap((e) =>
        dataOf(e.fields).map((m) => ['f', observer, 'd', retarget(m, REQUEST_ID, farDeadline)]),
      );
      const inboxEntries = await xrangeAll(r, inbox);
      const inboxTemplates: Fields[] = inboxEntries.map((e) => e.fields);
      const answerMessages = inboxEntries.flatMap((e) => dataOf(e.fields)).filter((m) => {
        const k = readableHeader(m)?.k;
        return k === 'res' || k === 'err' || k === 'cb';
      });
      const victimTemplates: Fields[] = answerMessages.map((m) => ['f', serverSession, 'd', retarget(m, VICTIM_ID)]);
      expect(requestTemplates.length, 'request templates').to.be.greaterThan(5);
      expect(answerMessages.map((m) => readableHeader(m)?.k)).to.include.members(['res', 'err', 'cb']);

      // 2. Mutations, generated before the clocks start (their cost is not the library's).
      const ops = new Map<string, number>();
      const count = (m: Mutation): Mutation => {
        for (const op of m.ops) ops.set(op, (ops.get(op) ?? 0) + 1);
        return m;
      };
      let fake = 0;
      const requestMutations = Array.from({ length: ROUNDS * REQUESTS_PER_ROUND }, (_, n) => {
        const m = count(mutate(rng, rng.pick(requestTemplates), 'request', `fuzz-peer-${fake++}`));
        return { ...m, fields: substitute(m.fields, REQUEST_ID, `fz.${n}`) };
      });
      const inboxMutations = Array.from({ length: ROUNDS * INBOX_PER_ROUND }, () => count(mutate(rng, rng.pick(inboxTemplates), 'answer', `fuzz-peer-${fake++}`)));
      const victimMutations = Array.from({ length: ROUNDS * VICTIMS_PER_ROUND }, () => count(mutate(rng, rng.pick(victimTemplates), 'answer', `fuzz-peer-${fake++}`)));
      const echoRequest = requestTemplates.find((t) => splitMessage(String(t[3]))?.header !== undefined && String(t[3]).includes('"m":["echo"]')) ?? (requestTemplates[0] as Fields);
      const resultAnswer = victimTemplates.find((t) => String(t[3]).includes('"k":"res"')) ?? (victimTemplates[0] as Fields);
      const withPayload = (t: Fields, payload: string): Fields => {
        const message = String(t[3]);
        return [t[0] as string, t[1] as string, 'd', `${message.slice(0, message.indexOf('\n'))}\n${payload}`];
      };
      const expensive = [...LENGTH_PAYLOADS, setPathsPayload()];
      const uncount = (m: Mutation | undefined) => m?.ops.forEach((op) => ops.set(op, (ops.get(op) ?? 1) - 1));
      expensive.forEach((_, i) => {
        const round = EXPENSIVE_REQUEST_ROUNDS[i] as number;
        const at = round * REQUESTS_PER_ROUND;
        uncount(requestMutations[at]);
        uncount(victimMutations[(EXPENSIVE_ANSWER_ROUNDS[i] as number) * VICTIMS_PER_ROUND]);
        requestMutations[at] = { ops: ['expensive'], fields: substitute(withPayload(echoRequest, expensive[i] as string), REQUEST_ID, `fz.${at}`) };
        victimMutations[(EXPENSIVE_ANSWER_ROUNDS[i] as number) * VICTIMS_PER_ROUND] = { ops: ['expensive'], fields: withPayload(resultAnswer, expensive[i] as string) };
      });
      ops.set('expensive', expensive.length * 2);
      const owed = new Set<string>();
      const now = Date.now();
      for (const m of requestMutations) for (const id of idsOwedAnAnswer(m.fields, observer, now)) owed.add(id);
      await r.xadd(observerInbox, '*', 'f', observer, 'x', 'open');

      // 3. The fuzz: each round writes its mutations and makes real calls.
      const loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
      let driftMax = 0;
      let stalls = 0;
      let round = 0;
      const stallRounds: string[] = [];
      let lastTick = performance.now();
      const drift = setInterval(() => {
        const t = performance.now();
        const late = t - lastTick - 10;
        lastTick = t;
        driftMax = Math.max(driftMax, late);
        if (late > STALL_LIMIT_MS) {
          stalls++;
          stallRounds.push(`${round}:${Math.round(late)}ms`);
        }
      }, 10);
      const rssStart = process.memoryUsage().rss;
      let rssPeak = rssStart;
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);
      const outcomes: Outcome[] = [];
      const victims: { id: string; round: number; mutation: Mutation; outcome: Promise<{ ok: boolean; error?: unknown; ms: number }> }[] = [];
      const written = { request: 0, inbox: 0, victim: 0, writeErrors: 0 };
      let victimSeen = '-';
      let victimIndex = 0;
      let rounds = 0;
      let wedgedRounds = 0;
      const started = Date.now();
      let callIndex = 0;

      const writeAll = async (key: string, list: readonly Fields[]): Promise<number> => {
        const pipeline = r.pipeline();
        for (const fields of list) pipeline.xadd(key, '*', ...(fields as string[]));
        const results = (await pipeline.exec()) ?? [];
        const failed = results.filter(([err]) => err !== null).length;
        written.writeErrors += failed;
        return list.length - failed;
      };

      try {
        for (round = 0; round < ROUNDS && Date.now() - started < FUZZ_DEADLINE_MS && wedgedRounds < 3; round++) {
          // Pending calls whose answers this round forges.
          const pending = Array.from({ length: VICTIMS_PER_ROUND }, () => {
            const i = victimIndex++;
            const t0 = Date.now();
            return {
              i,
              outcome: within(victimApi.echo(i, () => undefined), VICTIM_TIMEOUT_MS + 3000, 'victim call').then(
                () => ({ ok: true, ms: Date.now() - t0 }),
                (error: unknown) => ({ ok: false, error, ms: Date.now() - t0 }),
              ),
            };
          });
          written.request += await writeAll(name, requestMutations.slice(round * REQUESTS_PER_ROUND, (round + 1) * REQUESTS_PER_ROUND).map((m) => m.fields));
          written.inbox += await writeAll(inbox, inboxMutations.slice(round * INBOX_PER_ROUND, (round + 1) * INBOX_PER_ROUND).map((m) => m.fields));
          // The victims' request ids, read back from their stream (nobody serves it).
          const ids = new Map<number, string>();
          for (let t = 0; t < 150 && ids.size < pending.length; t++) {
            const entries = await xrangeAll(r, victimStream, victimSeen);
            for (const e of entries) {
              victimSeen = e.id;
              for (const m of dataOf(e.fields)) {
                const parts = splitMessage(m);
                const h = readableHeader(m);
                const arg = (parts?.payload as { json?: unknown[] } | null)?.json?.[0];
                if (typeof h?.id === 'string' && typeof arg === 'number') ids.set(arg, h.id);
              }
            }
            if (ids.size < pending.length) await sleep(20);
          }
          const forged: Fields[] = [];
          pending.forEach((p, j) => {
            const id = ids.get(p.i);
            if (id === undefined) return;
            const mutation = victimMutations[round * VICTIMS_PER_ROUND + j] as Mutation;
            const fields = substitute(mutation.fields, VICTIM_ID, id);
            forged.push(fields);
            victims.push({ id, round, mutation: { ops: mutation.ops, fields }, outcome: p.outcome });
          });
          written.victim += await writeAll(victimInbox, forged);
          const results = await Promise.all(Array.from({ length: REAL_CALLS_PER_ROUND }, () => realCall(remote, callIndex++)));
          outcomes.push(...results);
          wedgedRounds = results.some((o) => o.ok) ? 0 : wedgedRounds + 1;
          rounds++;
        }
        round = -1; // stalls from here on: liveness calls and settling victims

        // 4. The loops are alive: 20 more real calls on the same channels.
        const liveness = await Promise.all(Array.from({ length: 20 }, () => realCall(remote, callIndex++)));
        const victimOutcomes = await Promise.all(victims.map(async (v) => ({ ...v, result: await v.outcome })));
        loopDelay.disable();
        clearInterval(drift);
        clearInterval(sampler);
        const stallMaxMs = Math.round(loopDelay.max / 1e6);
        const rssDeltaMb = Math.round((rssPeak - rssStart) / MB);

        // Every identifiable mutated request was answered (result or error) in the caller's inbox.
        const answered = new Set<string>();
        const readAnswers = async (): Promise<boolean> => {
          for (const e of await xrangeAll(r, observerInbox)) {
            for (const m of dataOf(e.fields)) {
              const h = readableHeader(m);
              if ((h?.k === 'res' || h?.k === 'err') && typeof h.id === 'string') answered.add(h.id);
            }
          }
          return [...owed].every((id) => answered.has(id));
        };
        await waitFor(readAnswers, { timeoutMs: 8000, intervalMs: 500 }).catch(() => undefined);
        const unanswered = [...owed].filter((id) => !answered.has(id));
        const unansweredOps = new Map<string, number>();
        for (const m of requestMutations) {
          if (idsOwedAnAnswer(m.fields, observer, now).some((id) => unanswered.includes(id))) {
            const key = m.ops.join('+');
            unansweredOps.set(key, (unansweredOps.get(key) ?? 0) + 1);
          }
        }

        // Load-balanced: every entry, hostile or not, acknowledged.
        let pendingLeft = 0;
        if (useConsumerGroup) {
          const pendingCount = async () => ((await r.xpending(name, serverIo.getConsumerGroup())) as [number])[0];
          await waitFor(async () => (pendingLeft = await pendingCount()) === 0, { timeoutMs: 8000, intervalMs: 250 }).catch(() => undefined);
        }

        // Pending calls whose forged answer could be identified settled by it, never by their timeout;
        // a result that could not be decoded rejected with a typed error.
        const owedSettle = victimOutcomes.filter((v) => settlesCall(v.mutation.fields, v.id));
        // By its timer, not by a forged error named RPCTimeoutError (that one arrives within the round).
        const timedOut = (v: (typeof victimOutcomes)[number]) =>
          v.result.error instanceof HungError || (v.result.error instanceof RPCTimeoutError && v.result.ms >= VICTIM_TIMEOUT_MS - 500);
        const victimTimeouts = owedSettle.filter(timedOut);
        const victimUntyped = owedSettle.filter(
          (v) => !v.result.ok && !timedOut(v) && (!(v.result.error instanceof Error) || (answerKind(v.mutation.fields, v.id) === 'res' && !(v.result.error instanceof RPCError))),
        );
        // The last round in which a forged answer still settled a pending call (a stopped inbox loop shows here).
        const victimLastSettledRound = Math.max(-1, ...victimOutcomes.filter((v) => !timedOut(v)).map((v) => v.round));
        const victimByOutcome = new Map<string, number>();
        for (const v of victimOutcomes) {
          const key = v.result.ok ? 'resolved' : timedOut(v) ? 'timeout' : v.result.error instanceof Error ? v.result.error.name : 'non-error';
          victimByOutcome.set(key, (victimByOutcome.get(key) ?? 0) + 1);
        }

        const failedCalls = outcomes.filter((o) => !o.ok);
        const failedLiveness = liveness.filter((o) => !o.ok);
        const pollutedValue = ({} as { polluted?: unknown }).polluted;
        const polluted = restorePrototypes(protoBefore);
        if (pollutedValue !== undefined) polluted.push(`({}).polluted=${String(pollutedValue)}`);
        console.log(
          `      [fuzz ${mode}] seed=${SEED} rounds=${rounds}/${ROUNDS} written=${JSON.stringify(written)} ops=${JSON.stringify(Object.fromEntries([...ops].sort()))}` +
            ` realCalls=${outcomes.length} failed=${failedCalls.length} timeouts=${failedCalls.filter((o) => o.timeout).length} hung=${failedCalls.filter((o) => o.hung).length} liveness=${liveness.length - failedLiveness.length}/20` +
            ` owedAnswers=${owed.size} unanswered=${unanswered.length} ${JSON.stringify(Object.fromEntries(unansweredOps))}` +
            ` victims=${victimOutcomes.length} owedSettle=${owedSettle.length} victimTimeouts=${victimTimeouts.length} victimUntyped=${victimUntyped.length} victimsHung=${victimOutcomes.filter((v) => v.result.error instanceof HungError).length} victimLastSettledRound=${victimLastSettledRound} ${JSON.stringify(Object.fromEntries(victimByOutcome))}` +
            ` pendingLeft=${pendingLeft} errors=${JSON.stringify(Object.fromEntries([...errors].sort()))} logged=${logged.length}` +
            ` stallMax=${stallMaxMs}ms driftMax=${Math.round(driftMax)}ms stalls>${STALL_LIMIT_MS}ms=${stalls} [round:ms ${stallRounds.join(' ')}] rssDelta=${rssDeltaMb}MB polluted=${JSON.stringify(polluted)}` +
            ` elapsed=${Date.now() - started}ms`,
        );
        if (process.env.FUZZ_VERBOSE !== undefined) {
          console.log('      [fuzz samples]', JSON.stringify({ failedCalls: failedCalls.slice(0, 5), errors: Object.fromEntries(errorSamples), logged: logged.slice(0, 5), unanswered: requestMutations.filter((m) => idsOwedAnAnswer(m.fields, observer, now).some((id) => unanswered.includes(id))).slice(0, 4).map((m) => ({ ops: m.ops, fields: m.fields.map((f) => String(f).slice(0, 300)) })), answeredSample: [...answered].slice(0, 10), victimTimeouts: victimTimeouts.slice(0, 3).map((v) => ({ ops: v.mutation.ops, fields: v.mutation.fields.map((f) => String(f).slice(0, 300)) })) }, null, 1));
        }

        const violations: string[] = [];
        if (rounds < ROUNDS) violations.push(`fuzz stopped after ${rounds}/${ROUNDS} rounds (${wedgedRounds >= 3 ? 'three rounds without one correct call' : 'deadline'})`);
        if (failedCalls.length > 0) violations.push(`${failedCalls.length}/${outcomes.length} real calls failed, ${failedCalls.filter((o) => o.timeout).length} by timeout; first: ${failedCalls[0]?.kind} ${failedCalls[0]?.problem}`);
        if (failedLiveness.length > 0) violations.push(`${failedLiveness.length}/20 calls after the fuzz failed; first: ${failedLiveness[0]?.problem}`);
        if (unanswered.length > 0) violations.push(`${unanswered.length}/${owed.size} identifiable requests never answered; by ops ${JSON.stringify(Object.fromEntries(unansweredOps))}`);
        if (victimTimeouts.length > 0) violations.push(`${victimTimeouts.length}/${owedSettle.length} pending calls timed out despite an identifiable answer; ops of the first: ${victimTimeouts[0]?.mutation.ops.join('+')}`);
        if (victimUntyped.length > 0) violations.push(`${victimUntyped.length} pending calls rejected with an untyped error; first: ${describeError(victimUntyped[0]?.result.error)}`);
        if (pendingLeft > 0) violations.push(`${pendingLeft} request-stream entries left pending (not acknowledged)`);
        if (stallMaxMs > STALL_LIMIT_MS) violations.push(`event loop stalled ${stallMaxMs} ms (${stalls} stalls over ${STALL_LIMIT_MS} ms)`);
        if (rssDeltaMb >= RSS_LIMIT_MB) violations.push(`RSS grew ${rssDeltaMb} MB`);
        if (polluted.length > 0) violations.push(`prototypes gained keys ${polluted.join(', ')}`);
        expect(violations, 'contract violations').to.deep.equal([]);
      } finally {
        loopDelay.disable();
        clearInterval(drift);
        clearInterval(sampler);
      }
    });
  });
}
