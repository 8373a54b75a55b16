import { describe, expect, it } from 'vitest';
import { ReplicaManager, type ReplicaManagerOptions } from '../../src/replication/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';

function manager(clock: ManualClock): ReplicaManager {
  // waitForAppend needs only the clock and the (here empty) partitions.
  return new ReplicaManager({ nodeId: 1, clock, logger: silentLogger() } as unknown as ReplicaManagerOptions);
}

describe('waiting for appends (fetch long-poll)', () => {
  it('returns at once when the fetch was aborted before it started waiting', async () => {
    const clock = new ManualClock();
    const abort = new AbortController();
    abort.abort();
    let resolved = false;
    const waiting = manager(clock).waitForAppend([], 30_000, abort.signal).then(() => (resolved = true));
    await Promise.resolve();
    await waiting;
    expect(resolved).toBe(true);
  });

  it('waits until its timeout on the clock, or an abort, whichever comes first', async () => {
    const clock = new ManualClock();
    let resolved = false;
    const waiting = manager(clock).waitForAppend([], 1_000, undefined).then(() => (resolved = true));
    clock.advance(999);
    await Promise.resolve();
    expect(resolved).toBe(false);
    clock.advance(1);
    await waiting;
    expect(resolved).toBe(true);

    const abort = new AbortController();
    let aborted = false;
    const abortable = manager(clock).waitForAppend([], 1_000, abort.signal).then(() => (aborted = true));
    abort.abort();
    await abortable;
    expect(aborted).toBe(true);
  });
});
