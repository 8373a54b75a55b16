import { describe, expect, it } from 'vitest';
import { alterPartition, electLeaders, electPreferredLeaders, type AlterPartitionRequest, type LeadershipOptions } from '../../src/controller/index.js';
import type { MetadataImage } from '../../src/controller/index.js';
import { cluster, fence, replayAll } from './cluster-fixture.js';

const SHRINK: LeadershipOptions = { shrinkIsrOnFence: true };
const KEEP: LeadershipOptions = { shrinkIsrOnFence: false };

function partitionAfter(image: MetadataImage, options: LeadershipOptions, topic = 't') {
  return replayAll(image, electLeaders(image, options)).topic(topic)?.partitions[0];
}

describe('leader election after fencing (KIP-631)', () => {
  const base = (configs: Record<string, string> = {}) => cluster([1, 2, 3], [{ name: 't', replicas: [[1, 2, 3]], configs }]);

  it.each<[string, number[], LeadershipOptions, { leader: number; isr: number[] }]>([
    ['elects the next ISR member in replica order when the leader is fenced', [1], KEEP, { leader: 2, isr: [1, 2, 3] }],
    ['removes the fenced leader from the ISR when asked, as KRaft does', [1], SHRINK, { leader: 2, isr: [2, 3] }],
    ['skips fenced ISR members when electing', [1, 2], SHRINK, { leader: 3, isr: [3] }],
    ['keeps the leader when only a follower is fenced, shrinking the ISR', [2], SHRINK, { leader: 1, isr: [1, 3] }],
    ['keeps the last ISR member, offline, when every member is fenced (KIP-966 reasoning)', [1, 2, 3], SHRINK, { leader: -1, isr: [1] }],
  ])('%s', (_what, fenced, options, expected) => {
    expect(partitionAfter(fence(base(), ...fenced), options)).toMatchObject(expected);
  });

  it('never elects outside the ISR when unclean election is off: the partition goes offline', () => {
    const image = replayAll(base(), [{ type: 'PartitionChange', topic: 't', partition: 0, isr: [1] }]);
    expect(partitionAfter(fence(image, 1), SHRINK)).toMatchObject({ leader: -1, isr: [1] });
  });

  it('elects an unfenced replica outside the ISR only with unclean.leader.election.enable=true, and makes it the whole ISR', () => {
    const image = replayAll(base({ 'unclean.leader.election.enable': 'true' }), [{ type: 'PartitionChange', topic: 't', partition: 0, isr: [1] }]);
    expect(partitionAfter(fence(image, 1), SHRINK)).toMatchObject({ leader: 2, isr: [2] });
  });

  it('brings an offline partition back when its last ISR member is unfenced', () => {
    const offline = replayAll(fence(base(), 1, 2, 3), electLeaders(fence(base(), 1, 2, 3), SHRINK));
    const back = offline.replay({ type: 'UnfenceBroker', nodeId: 1 });
    expect(partitionAfter(back, SHRINK)).toMatchObject({ leader: 1, isr: [1] });
  });

  it('does not bring it back through a replica that left the ISR', () => {
    const offline = replayAll(fence(base(), 1, 2, 3), electLeaders(fence(base(), 1, 2, 3), SHRINK));
    expect(partitionAfter(offline.replay({ type: 'UnfenceBroker', nodeId: 2 }), SHRINK)).toMatchObject({ leader: -1, isr: [1] });
  });

  it('returns no records once the image is settled', () => {
    const fenced = fence(base(), 1);
    const settled = replayAll(fenced, electLeaders(fenced, SHRINK));
    expect(electLeaders(settled, SHRINK)).toEqual([]);
    expect(electLeaders(base(), SHRINK)).toEqual([]);
  });

  it('bumps the leader epoch once per leader change', () => {
    expect(partitionAfter(fence(base(), 1), SHRINK)).toMatchObject({ leaderEpoch: 1, partitionEpoch: 1 });
  });
});

describe('preferred-replica election (auto.leader.rebalance.enable)', () => {
  const moved = () => {
    const image = cluster([1, 2, 3], [{ name: 't', replicas: [[1, 2, 3]] }]);
    return replayAll(image, [{ type: 'PartitionChange', topic: 't', partition: 0, leader: 2 }]);
  };

  it('moves leadership back to replicas[0] when it is unfenced and in the ISR', () => {
    const records = electPreferredLeaders(moved());
    expect(records).toEqual([{ type: 'PartitionChange', topic: 't', partition: 0, leader: 1 }]);
    expect(replayAll(moved(), records).topic('t')?.partitions[0]).toMatchObject({ leader: 1, leaderEpoch: 2 });
  });

  it('leaves leadership alone while replicas[0] is fenced or out of the ISR', () => {
    expect(electPreferredLeaders(fence(moved(), 1))).toEqual([]);
    expect(electPreferredLeaders(replayAll(moved(), [{ type: 'PartitionChange', topic: 't', partition: 0, isr: [2, 3] }]))).toEqual([]);
  });
});

describe('AlterPartition (KIP-497)', () => {
  const image = cluster([1, 2, 3, 4], [{ name: 't', replicas: [[1, 2, 3]] }]);
  const request = (overrides: Partial<AlterPartitionRequest> = {}): AlterPartitionRequest => ({
    topic: 't', partition: 0, leaderId: 1, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1, 2], ...overrides,
  });

  it('shrinks the ISR and answers the new partition epoch', () => {
    const { records, response } = alterPartition(image, request());
    expect(response).toMatchObject({ errorCode: 'NONE', leader: 1, leaderEpoch: 0, isr: [1, 2], partitionEpoch: 1 });
    expect(replayAll(image, records).topic('t')?.partitions[0]).toMatchObject({ isr: [1, 2], partitionEpoch: 1, leaderEpoch: 0 });
  });

  it('expands the ISR with an unfenced replica', () => {
    const shrunk = replayAll(image, alterPartition(image, request()).records);
    expect(alterPartition(shrunk, request({ partitionEpoch: 1, newIsr: [1, 2, 3] })).response).toMatchObject({ errorCode: 'NONE', isr: [1, 2, 3], partitionEpoch: 2 });
  });

  it('accepts the request when it names the current topic id', () => {
    const topicId = image.topic('t')?.topicId;
    expect(alterPartition(image, request({ topicId })).response.errorCode).toBe('NONE');
  });

  it('writes nothing for an unchanged ISR', () => {
    expect(alterPartition(image, request({ newIsr: [1, 2, 3] }))).toMatchObject({ records: [], response: { errorCode: 'NONE', partitionEpoch: 0 } });
  });

  it.each<[string, Partial<AlterPartitionRequest>, string]>([
    ['an unknown topic', { topic: 'nope' }, 'UNKNOWN_TOPIC_OR_PARTITION'],
    ['an unknown partition', { partition: 7 }, 'UNKNOWN_TOPIC_OR_PARTITION'],
    ['a stale leader epoch', { leaderEpoch: -1 }, 'FENCED_LEADER_EPOCH'],
    ['a leader epoch from the future', { leaderEpoch: 3 }, 'FENCED_LEADER_EPOCH'],
    ['a broker that is not the leader', { leaderId: 2 }, 'NOT_LEADER_OR_FOLLOWER'],
    ['a stale partition epoch', { partitionEpoch: 5 }, 'INVALID_UPDATE_VERSION'],
    ['another incarnation of the topic (deleted and re-created)', { topicId: 'an-older-topic-id' }, 'UNKNOWN_TOPIC_ID'],
    ['an ISR member that is not a replica', { newIsr: [1, 4] }, 'INVALID_REQUEST'],
    ['an ISR naming a broker twice', { newIsr: [1, 2, 2] }, 'INVALID_REQUEST'],
    ['an ISR that leaves out the leader', { newIsr: [2, 3] }, 'INVALID_REQUEST'],
    ['an empty ISR', { newIsr: [] }, 'INVALID_REQUEST'],
  ])('rejects %s', (_what, overrides, errorCode) => {
    const { records, response } = alterPartition(image, request(overrides));
    expect(response.errorCode).toBe(errorCode);
    expect(records).toEqual([]);
  });

  it('gives the current leader as a hint to a broker that is not the leader, with the current state', () => {
    expect(alterPartition(image, request({ leaderId: 2 })).response).toMatchObject({ leader: 1, leaderEpoch: 0, isr: [1, 2, 3], partitionEpoch: 0 });
  });

  it('refuses to add a fenced broker to the ISR, but lets a fenced member stay', () => {
    const shrunk = replayAll(image, alterPartition(image, request()).records);
    expect(alterPartition(fence(shrunk, 3), request({ partitionEpoch: 1, newIsr: [1, 2, 3] })).response.errorCode).toBe('INVALID_REQUEST');
    expect(alterPartition(fence(image, 3), request({ newIsr: [1, 3] })).response.errorCode).toBe('NONE');
  });
});
