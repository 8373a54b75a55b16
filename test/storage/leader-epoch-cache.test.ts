// The leader epoch cache alone (Kafka's LeaderEpochFileCache, KIP-101 / KIP-279): its rules and
// the examples of Kafka's LeaderEpochFileCacheTest, and the checkpoint text format.
import { describe, expect, it } from 'vitest';
import { UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET } from '../../src/storage/api.js';
import { LeaderEpochCache, type EpochEntry } from '../../src/storage/leader-epoch-cache.js';
import { formatLeaderEpochCheckpoint, parseLeaderEpochCheckpoint } from '../../src/storage/leader-epoch-checkpoint.js';
import { AssertionError } from '../../src/util/assert.js';

function cacheOf(...entries: [number, number][]): LeaderEpochCache {
  const cache = new LeaderEpochCache();
  for (const [epoch, start] of entries) cache.assign(epoch, BigInt(start));
  return cache;
}

function entriesOf(cache: LeaderEpochCache): [number, number][] {
  return cache.entries().map((entry) => [entry.epoch, Number(entry.startOffset)]);
}

describe('LeaderEpochCache.endOffsetFor (OffsetsForLeaderEpoch)', () => {
  // [name, entries, log end offset, requested epoch, expected {epoch, endOffset}]
  const cases: [string, [number, number][], number, number, { epoch: number; endOffset: number }][] = [
    // The worked table in PartitionLog.endOffsetForEpoch's JSDoc: (1 @ 0), (2 @ 10), (4 @ 25), LEO 40.
    ['UNDEFINED_EPOCH asked', [[1, 0], [2, 10], [4, 25]], 40, UNDEFINED_EPOCH, { epoch: UNDEFINED_EPOCH, endOffset: Number(UNDEFINED_EPOCH_OFFSET) }],
    ['below the first entry: the requested epoch, ending where the first starts (KIP-279)', [[1, 0], [2, 10], [4, 25]], 40, 0, { epoch: 0, endOffset: 0 }],
    ['an earlier epoch ends where the next starts', [[1, 0], [2, 10], [4, 25]], 40, 1, { epoch: 1, endOffset: 10 }],
    ['the epoch before the latest ends where the latest starts', [[1, 0], [2, 10], [4, 25]], 40, 2, { epoch: 2, endOffset: 25 }],
    ['an epoch this log never saw: the largest epoch below it', [[1, 0], [2, 10], [4, 25]], 40, 3, { epoch: 2, endOffset: 25 }],
    ['the latest epoch ends at the log end', [[1, 0], [2, 10], [4, 25]], 40, 4, { epoch: 4, endOffset: 40 }],
    ['an epoch above every known one', [[1, 0], [2, 10], [4, 25]], 40, 5, { epoch: -1, endOffset: -1 }],
    // Kafka's LeaderEpochFileCacheTest, case by case.
    ['shouldAddEpochAndMessageOffsetToCache', [[2, 10]], 11, 2, { epoch: 2, endOffset: 11 }],
    ['shouldReturnUndefinedOffsetIfUndefinedEpochRequested', [[2, 11], [3, 12]], 0, -1, { epoch: -1, endOffset: -1 }],
    ['shouldReturnUnsupportedIfNoEpochRecorded', [], 0, 0, { epoch: -1, endOffset: -1 }],
    ['shouldReturnUnsupportedIfNoEpochRecordedAndUndefinedEpochRequested', [], 73, -1, { epoch: -1, endOffset: -1 }],
    ['shouldReturnFirstEpochIfRequestedEpochLessThanFirstEpoch', [[5, 11], [6, 12], [7, 13]], 0, 4, { epoch: 4, endOffset: 11 }],
    ['shouldGetFirstOffsetOfSubsequentEpochWhenOffsetRequestedForPreviousEpoch', [[1, 11], [2, 13], [3, 15]], 17, 2, { epoch: 2, endOffset: 15 }],
    ['shouldReturnNextAvailableEpochIfThereIsNoExactEpochForTheOneRequested (1)', [[0, 10], [2, 13], [4, 17]], 0, 1, { epoch: 0, endOffset: 13 }],
    ['shouldReturnNextAvailableEpochIfThereIsNoExactEpochForTheOneRequested (2)', [[0, 10], [2, 13], [4, 17]], 0, 2, { epoch: 2, endOffset: 17 }],
    ['shouldReturnNextAvailableEpochIfThereIsNoExactEpochForTheOneRequested (3)', [[0, 10], [2, 13], [4, 17]], 0, 3, { epoch: 2, endOffset: 17 }],
    ['shouldReturnInvalidOffsetIfEpochIsRequestedWhichIsNotCurrentlyTracked', [[2, 100]], 100, 3, { epoch: -1, endOffset: -1 }],
    ['shouldSupportEpochsThatDoNotStartFromZero', [[2, 6]], 7, 2, { epoch: 2, endOffset: 7 }],
    ['shouldFetchEndOffsetOfEmptyCache', [], 0, 7, { epoch: -1, endOffset: -1 }],
    ['shouldIncreaseAndTrackEpochsAsFollowerReceivesManyMessages (0)', [[0, 0], [1, 3], [2, 6]], 9, 0, { epoch: 0, endOffset: 3 }],
    ['shouldIncreaseAndTrackEpochsAsFollowerReceivesManyMessages (1)', [[0, 0], [1, 3], [2, 6]], 9, 1, { epoch: 1, endOffset: 6 }],
    ['shouldIncreaseAndTrackEpochsAsFollowerReceivesManyMessages (2)', [[0, 0], [1, 3], [2, 6]], 9, 2, { epoch: 2, endOffset: 9 }],
  ];

  it.each(cases)('%s', (_name, entries, logEndOffset, requested, expected) => {
    const cache = cacheOf(...entries);
    expect(cache.endOffsetFor(requested, BigInt(logEndOffset))).toEqual({ epoch: expected.epoch, endOffset: BigInt(expected.endOffset) });
  });

  it('tracks epochs as leaders change many times (shouldIncreaseAndTrackEpochsAsLeadersChangeManyTimes)', () => {
    const cache = cacheOf([0, 0]);
    cache.assign(1, 0n); // epoch 0 wrote nothing: epoch 1 replaces it
    expect(entriesOf(cache)).toEqual([[1, 0]]);
    expect(cache.endOffsetFor(1, 0n)).toEqual({ epoch: 1, endOffset: 0n });
    expect(cache.endOffsetFor(1, 5n)).toEqual({ epoch: 1, endOffset: 5n });
    cache.assign(2, 5n);
    expect(cache.endOffsetFor(2, 10n)).toEqual({ epoch: 2, endOffset: 10n });
    expect(cache.endOffsetFor(1, 10n)).toEqual({ epoch: 1, endOffset: 5n });
    // Epoch 0 was dropped, so it is below the first entry now: it ends where epoch 1 starts (Kafka gives the same).
    expect(cache.endOffsetFor(0, 10n)).toEqual({ epoch: 0, endOffset: 0n });
  });
});

describe('LeaderEpochCache.assign', () => {
  it('keeps epochs and start offsets strictly increasing, replacing an epoch that wrote nothing', () => {
    const cache = cacheOf([2, 6]);
    expect(cache.assign(3, 6n)).toEqual({ epoch: 2, startOffset: 6n }); // shouldEnforceMonotonicallyIncreasingStartOffsets
    expect(entriesOf(cache)).toEqual([[3, 6]]);
    expect(cache.assign(4, 9n)).toBeUndefined();
    expect(entriesOf(cache)).toEqual([[3, 6], [4, 9]]);
    expect(cache.latestEpoch()).toBe(4);
    expect(cache.latestEntry()).toEqual({ epoch: 4, startOffset: 9n });
  });

  it('asserts what callers must check first: a higher epoch, not starting below the latest, an int32 >= 0', () => {
    const cache = cacheOf([2, 6]);
    expect(() => cache.assign(2, 10n)).toThrow(AssertionError); // same epoch again
    expect(() => cache.assign(1, 10n)).toThrow(AssertionError); // epoch going back
    expect(() => cache.assign(3, 5n)).toThrow(AssertionError); // start offset going back
    expect(() => cache.assign(-1, 10n)).toThrow(AssertionError);
    expect(() => cache.assign(2 ** 31, 10n)).toThrow(AssertionError);
    expect(() => new LeaderEpochCache([{ epoch: 3, startOffset: 5n }, { epoch: 2, startOffset: 9n }])).toThrow(AssertionError);
    expect(entriesOf(cache)).toEqual([[2, 6]]);
  });
});

describe('LeaderEpochCache truncation', () => {
  // [name, truncation offset, expected entries] on (2 @ 6), (3 @ 8), (4 @ 11), Kafka's fixtures.
  it.each([
    ['shouldDropEntriesOnEpochBoundaryWhenRemovingLatestEntries', 8, [[2, 6]]],
    ['shouldDropEntriesBetweenEpochBoundaryWhenRemovingNewest', 9, [[2, 6], [3, 8]]],
    ['keeps everything when the end is past the latest start', 12, [[2, 6], [3, 8], [4, 11]]],
    ['drops everything at the first start', 6, []],
  ] as [string, number, [number, number][]][])('from the end: %s', (_name, offset, expected) => {
    const cache = cacheOf([2, 6], [3, 8], [4, 11]);
    cache.truncateFromEnd(BigInt(offset));
    expect(entriesOf(cache)).toEqual(expected);
  });

  it.each([
    ['shouldPreserveResetOffsetOnClearEarliestIfOneExists', 8, [[3, 8], [4, 11]], true],
    ['shouldNotClearAnythingIfOffsetTooEarly', 1, [[2, 6], [3, 8], [4, 11]], false],
    ['shouldNotClearAnythingIfOffsetIsFirstOffset', 6, [[2, 6], [3, 8], [4, 11]], false],
    ['shouldRetainLatestEpochOnClearAllEarliest', 11, [[4, 11]], true],
    ['shouldUpdateOffsetBetweenEpochBoundariesOnClearEarliest', 9, [[3, 9], [4, 11]], true],
    ['shouldRetainLatestEpochOnClearAllEarliestAndUpdateItsOffset', 15, [[4, 15]], true],
  ] as [string, number, [number, number][], boolean][])('from the start: %s', (_name, offset, expected, changed) => {
    const cache = cacheOf([2, 6], [3, 8], [4, 11]);
    expect(cache.truncateFromStart(BigInt(offset))).toBe(changed);
    expect(entriesOf(cache)).toEqual(expected);
  });

  it('from the start between the first two boundaries (shouldUpdateOffsetBetweenFirstTwoEpochBoundariesOnClearEarliest)', () => {
    const cache = cacheOf([0, 0], [1, 7], [2, 10]);
    cache.truncateFromStart(5n);
    expect(entriesOf(cache)).toEqual([[0, 5], [1, 7], [2, 10]]);
  });

  it('on an empty cache changes nothing, and clear() empties it', () => {
    const empty = new LeaderEpochCache();
    expect(empty.truncateFromEnd(7n)).toEqual([]);
    expect(empty.truncateFromStart(7n)).toBe(false);
    const cache = cacheOf([2, 6], [3, 8]);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.latestEpoch()).toBeUndefined();
  });
});

describe('LeaderEpochCache.epochForOffset', () => {
  it('gives the epoch of the last entry starting at or below the offset', () => {
    const cache = cacheOf([2, 6], [3, 8], [4, 11]);
    expect([5, 6, 7, 8, 10, 11, 1000].map((offset) => cache.epochForOffset(BigInt(offset)))).toEqual([undefined, 2, 2, 3, 3, 4, 4]);
  });
});

describe('leader-epoch-checkpoint format', () => {
  const entries: EpochEntry[] = [
    { epoch: 0, startOffset: 0n },
    { epoch: 3, startOffset: 150n },
    { epoch: 7, startOffset: 9_007_199_254_740_993n },
  ];

  it('is Kafka’s text layout: version, count, then "epoch offset" lines, and round-trips', () => {
    const text = formatLeaderEpochCheckpoint(entries);
    expect(text).toBe('0\n3\n0 0\n3 150\n7 9007199254740993\n');
    expect(parseLeaderEpochCheckpoint(text)).toEqual({ kind: 'read', entries });
    expect(parseLeaderEpochCheckpoint(formatLeaderEpochCheckpoint([]))).toEqual({ kind: 'read', entries: [] });
  });

  it.each([
    ['an empty file', ''],
    ['another version', '1\n0\n'],
    ['a count that does not match', '0\n2\n0 0\n'],
    ['a line with three fields', '0\n1\n0 0 0\n'],
    ['a negative offset', '0\n1\n0 -5\n'],
    ['an epoch past int32', '0\n1\n2147483648 5\n'],
    ['epochs out of order', '0\n2\n3 10\n2 20\n'],
    ['start offsets out of order', '0\n2\n2 20\n3 10\n'],
  ])('reports %s as damaged', (_name, text) => {
    expect(parseLeaderEpochCheckpoint(text).kind).toBe('damaged');
  });
});
