import { describe, expect, it } from 'vitest';
import { PartitionState } from '../../src/replication/partition-state.js';
import type { PartitionLog } from '../../src/storage/index.js';
import type { PartitionImage } from '../../src/controller/index.js';

// The leader's high watermark while an ISR expansion is in flight: the controller may commit the
// larger ISR (and elect the new member leader) before this leader sees it, so the HW must not pass
// the new member's log end meanwhile.
function leaderOf(isr: number[], partitionEpoch: number, logEnd: bigint): PartitionState {
  const log = { logStartOffset: 0n, logEndOffset: logEnd, durableEndOffset: logEnd } as unknown as PartitionLog;
  const image = { leader: 1, leaderEpoch: 1, partitionEpoch, isr, replicas: [1, 2, 3] } as unknown as PartitionImage;
  const state = new PartitionState({ topic: 't', partition: 0 }, 'id', log, image, 2);
  state.becomeLeader(1, 0);
  return state;
}

describe('high watermark over the maximal ISR', () => {
  it('counts a member the leader asked to add until the metadata shows the change', () => {
    const state = leaderOf([1, 2], 5, 110n);
    state.recordFollowerFetch(2, 110n, 0n, 1);
    state.recordFollowerFetch(3, 99n, 0n, 1);
    state.setPendingIsr([1, 2, 3]);
    expect(state.maximalIsr).toEqual([1, 2, 3]);
    state.maybeAdvanceHighWatermark(1);
    // Without the pending member the HW would be 110; node 3 holds only up to 99.
    expect(state.highWatermark).toBe(99n);
    state.recordFollowerFetch(3, 107n, 0n, 2);
    state.maybeAdvanceHighWatermark(1);
    expect(state.highWatermark).toBe(107n);

    // The change committed: the image carries a new partition epoch with node 3 in the ISR.
    state.setImage({ ...state.image, partitionEpoch: 6, isr: [1, 2, 3] });
    expect(state.pendingIsr).toBeUndefined();
    state.recordFollowerFetch(3, 110n, 0n, 3);
    state.maybeAdvanceHighWatermark(1);
    expect(state.highWatermark).toBe(110n);
  });

  it('stops counting a proposal that another change overtook, or that the leader withdrew', () => {
    const state = leaderOf([1, 2], 5, 50n);
    state.recordFollowerFetch(2, 50n, 0n, 1);
    state.recordFollowerFetch(3, 10n, 0n, 1);
    state.setPendingIsr([1, 2, 3]);
    state.maybeAdvanceHighWatermark(1);
    expect(state.highWatermark).toBe(10n);
    state.clearPendingIsr();
    state.maybeAdvanceHighWatermark(1);
    expect(state.highWatermark).toBe(50n);

    const other = leaderOf([1, 2], 5, 50n);
    other.recordFollowerFetch(2, 50n, 0n, 1);
    other.recordFollowerFetch(3, 10n, 0n, 1);
    other.setPendingIsr([1, 2, 3]);
    other.setImage({ ...other.image, partitionEpoch: 7, isr: [1, 2] });
    other.maybeAdvanceHighWatermark(1);
    expect(other.highWatermark).toBe(50n);
  });
});
