// The leader's high watermark and ISR changes in flight (found by the Kavka issue 6 ENOSPC test: a
// replica rejoining the ISR was elected leader without records acknowledged while its
// AlterPartition was in flight; Kafka's answer is the maximal ISR of KIP-497).
import { describe, expect, it } from 'vitest';
import { PartitionState } from '../../src/replication/partition-state.js';
import type { PartitionImage } from '../../src/controller/index.js';
import type { PartitionLog } from '../../src/storage/index.js';

function leaderState(isr: number[]): { state: PartitionState; log: { logStartOffset: bigint; logEndOffset: bigint; durableEndOffset: bigint } } {
  const log = { logStartOffset: 0n, logEndOffset: 10n, durableEndOffset: 10n };
  const image = { partition: 0, leader: 1, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 2, 3], isr } as unknown as PartitionImage;
  const state = new PartitionState({ topic: 't', partition: 0 }, 'topic-id', log as unknown as PartitionLog, image, 2);
  state.becomeLeader(1, 0);
  return { state, log };
}

describe('the high watermark while an ISR expansion is in flight', () => {
  it('waits for the replica being added (maximal ISR), so once the change commits it holds everything acknowledged', () => {
    const { state, log } = leaderState([1, 2]);
    state.recordFollowerFetch(2, 10n, 0n, 1);
    state.recordFollowerFetch(3, 10n, 0n, 1);
    expect(state.maybeAdvanceHighWatermark(1)).toBe(true);
    expect(state.highWatermark).toBe(10n);
    // Broker 3 caught up: the leader asks to add it.
    state.pendingIsr = [1, 2, 3];
    log.logEndOffset = 12n;
    log.durableEndOffset = 12n;
    state.recordFollowerFetch(2, 12n, 0n, 2);
    // The committed ISR {1, 2} alone would allow 12; broker 3 has only 10.
    expect(state.maybeAdvanceHighWatermark(1)).toBe(false);
    expect(state.highWatermark).toBe(10n);
    state.recordFollowerFetch(3, 12n, 0n, 3);
    expect(state.maybeAdvanceHighWatermark(1)).toBe(true);
    expect(state.highWatermark).toBe(12n);
  });

  it('counts only the committed ISR when no change is in flight, and forgets a pending change on a role change', () => {
    const { state, log } = leaderState([1, 2]);
    state.recordFollowerFetch(2, 10n, 0n, 1);
    state.pendingIsr = [1, 2, 3];
    expect(state.maybeAdvanceHighWatermark(1)).toBe(false); // broker 3 has not fetched in this epoch
    state.becomeLeader(1, 5);
    expect(state.pendingIsr).toBeUndefined();
    log.durableEndOffset = 10n;
    state.recordFollowerFetch(2, 10n, 0n, 6);
    expect(state.maybeAdvanceHighWatermark(1)).toBe(true);
    expect(state.highWatermark).toBe(10n);
  });
});
