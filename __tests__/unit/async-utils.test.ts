import { expect } from 'chai';
import { Signal, sleep } from '../../src/redis/async-utils.js';

describe('redis async utils', () => {
  it('sleep() that ends by itself leaves no waiter on its signal', async () => {
    const signal = new Signal();
    let woken = 0;
    for (let i = 0; i < 50; i++) await sleep(1, signal);
    signal.subscribe(() => woken++);
    signal.notify();
    // Only the one live subscription is woken: the 50 finished sleeps unsubscribed.
    expect(woken).to.equal(1);
    expect((signal as unknown as { waiters: Set<unknown> }).waiters.size).to.equal(0);
  });

  it('sleep() ends early when its signal fires', async () => {
    const signal = new Signal();
    const started = Date.now();
    const slept = sleep(10_000, signal);
    signal.notify();
    await slept;
    expect(Date.now() - started).to.be.below(5_000);
  });
});
