// The pending-call table (a Map replaced now and then: see PendingCalls.forget in pending-calls.ts):
// any string is an id like any other, ids a caller never used find nothing, and the count and
// rejectAll() see exactly what is pending.
import { expect } from 'chai';
import { PendingCalls, type PendingCall } from '../../src/channel/pending-calls.js';

function call(method: string, log: string[]): PendingCall {
  return { method, resolve: (v) => log.push(`${method} resolved ${String(v)}`), reject: (e) => log.push(`${method} rejected ${e.message}`), callbacks: undefined, timer: undefined };
}

describe('PendingCalls', () => {
  it('takes prototype names as plain ids and finds nothing for ids never added', () => {
    const table = new PendingCalls();
    const log: string[] = [];
    for (const id of ['__proto__', 'constructor', 'a.1', 'hasOwnProperty']) table.add(id, call(id, log), 60_000, () => undefined);
    expect(table.size).to.equal(4);
    for (const stranger of ['toString', 'valueOf', '__defineGetter__', 'a.2', '']) {
      expect(table.get(stranger), stranger).to.equal(undefined);
      expect(table.take(stranger), stranger).to.equal(undefined);
    }
    expect(table.take('__proto__')?.method).to.equal('__proto__');
    expect(table.take('__proto__'), 'taken once').to.equal(undefined);
    expect(table.size).to.equal(3);
    table.rejectAll((c) => new Error(`closed ${c.method}`));
    expect(table.size).to.equal(0);
    expect(log.sort()).to.deep.equal(['a.1 rejected closed a.1', 'constructor rejected closed constructor', 'hasOwnProperty rejected closed hasOwnProperty']);
    expect(({} as Record<string, unknown>)['a.1'], 'Object.prototype untouched').to.equal(undefined);
  });

  it('keeps every pending call across the replacements of its table (3,000 removals, 50 left)', () => {
    const table = new PendingCalls();
    const log: string[] = [];
    for (let i = 0; i < 3050; i++) table.add(`c.${i}`, call(`c.${i}`, log), 60_000, () => undefined);
    for (let i = 0; i < 3000; i++) expect(table.take(`c.${i}`)?.method).to.equal(`c.${i}`);
    expect(table.size).to.equal(50);
    for (let i = 3000; i < 3050; i++) expect(table.get(`c.${i}`)?.method).to.equal(`c.${i}`);
    table.rejectAll(() => new Error('closed'));
    expect(log).to.have.length(50);
  });

  it('times a call out once, and a call taken before its timeout does not time out', async () => {
    const table = new PendingCalls();
    const log: string[] = [];
    let timeouts = 0;
    table.add('slow', call('slow', log), 20, () => timeouts++);
    table.add('fast', call('fast', log), 20, () => timeouts++);
    table.take('fast')?.resolve(1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(timeouts).to.equal(1);
    expect(table.size).to.equal(0);
    expect(log).to.deep.equal(['fast resolved 1', 'slow rejected RPC call "slow" timed out after 20 ms (change it with the "timeout" option)']);
  });
});
