import { describe, expect, it } from 'vitest';
import { MetadataImage } from '../../src/controller/index.js';
import type { MetadataRecord } from '../../src/controller/metadata-records.js';
import { cluster, replayAll } from './cluster-fixture.js';

describe('broker records (KIP-631 registration and fencing)', () => {
  it('starts a newly registered broker fenced, with its incarnation id', () => {
    const image = MetadataImage.EMPTY.replay({ type: 'RegisterBroker', nodeId: 1, endpoints: [], incarnationId: 'a' });
    expect(image.brokers.get(1)).toMatchObject({ fenced: true, incarnationId: 'a' });
    expect(image.unfencedBrokerIds()).toEqual([]);
  });

  it('unfences and fences a broker, and counts only unfenced brokers as live', () => {
    const image = cluster([3, 1, 2]);
    expect(image.unfencedBrokerIds()).toEqual([1, 2, 3]);
    const fenced = image.replay({ type: 'FenceBroker', nodeId: 2 });
    expect(fenced.unfencedBrokerIds()).toEqual([1, 3]);
    expect(fenced.isUnfenced(2)).toBe(false);
    expect(fenced.replay({ type: 'UnfenceBroker', nodeId: 2 }).isUnfenced(2)).toBe(true);
  });

  it('fences a broker again when a restarted process registers a new incarnation', () => {
    const image = cluster([1]).replay({ type: 'RegisterBroker', nodeId: 1, endpoints: [], incarnationId: 'b' });
    expect(image.brokers.get(1)).toMatchObject({ fenced: true, incarnationId: 'b' });
  });

  it('removes an unregistered broker', () => {
    expect(cluster([1, 2]).replay({ type: 'UnregisterBroker', nodeId: 2 }).brokers.has(2)).toBe(false);
  });

  it.each<[string, MetadataRecord]>([
    ['fencing an unregistered broker', { type: 'FenceBroker', nodeId: 9 }],
    ['unfencing an unregistered broker', { type: 'UnfenceBroker', nodeId: 9 }],
    ['unregistering an unknown broker', { type: 'UnregisterBroker', nodeId: 9 }],
  ])('asserts against %s', (_what, record) => {
    expect(() => cluster([1]).replay(record)).toThrow(/broker 9/);
  });

  it('keeps producer id blocks growing', () => {
    const image = MetadataImage.EMPTY.replay({ type: 'ProducerIds', brokerId: 1, nextProducerId: 1000 });
    expect(image.nextProducerId).toBe(1000);
    expect(() => image.replay({ type: 'ProducerIds', brokerId: 1, nextProducerId: 1000 })).toThrow(/backward/);
  });
});

describe('PartitionChange replay', () => {
  const base = () => cluster([1, 2, 3], [{ name: 't', replicas: [[1, 2, 3]] }]);
  const partition = (image: MetadataImage) => image.topic('t')?.partitions[0];

  it.each<[string, Partial<MetadataRecord & { type: 'PartitionChange' }>, { leader: number; leaderEpoch: number; partitionEpoch: number; isr: number[] }]>([
    ['bumps both epochs when the leader changes', { leader: 2 }, { leader: 2, leaderEpoch: 1, partitionEpoch: 1, isr: [1, 2, 3] }],
    ['bumps only the partition epoch when only the ISR changes', { isr: [1, 2] }, { leader: 1, leaderEpoch: 0, partitionEpoch: 1, isr: [1, 2] }],
    ['takes the partition offline with leader -1', { leader: -1, isr: [1] }, { leader: -1, leaderEpoch: 1, partitionEpoch: 1, isr: [1] }],
  ])('%s', (_what, change, expected) => {
    expect(partition(base().replay({ type: 'PartitionChange', topic: 't', partition: 0, ...change }))).toMatchObject(expected);
  });

  it.each<[string, Partial<MetadataRecord & { type: 'PartitionChange' }>, RegExp]>([
    ['a leader outside the ISR', { leader: 2, isr: [1, 3] }, /leader 2 is not in isr/],
    ['an ISR member that is not a replica', { isr: [1, 4] }, /not a replica/],
    ['an ISR that leaves out the current leader', { isr: [2, 3] }, /leader 1 is not in isr/],
    ['a change that changes nothing', {}, /changes nothing/],
    ['an unknown partition', { partition: 5, leader: 2 }, /unknown partition/],
  ])('asserts against %s', (_what, change, message) => {
    expect(() => base().replay({ type: 'PartitionChange', topic: 't', partition: 0, ...change })).toThrow(message);
  });

  it('asserts that a Partition record never moves epochs backward', () => {
    const image = replayAll(base(), [{ type: 'PartitionChange', topic: 't', partition: 0, leader: 2 }]);
    expect(() => image.replay({ type: 'Partition', topic: 't', partition: 0, replicas: [1, 2, 3], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 })).toThrow(/backward/);
  });
});
