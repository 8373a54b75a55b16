import { describe, expect, it } from 'vitest';
import { MetadataImage } from '../../src/controller/index.js';
import {
  createTopics,
  deleteTopics,
  createPartitions,
  alterTopicConfigs,
  placeReplicas,
  placeReplicasRackAware,
  placementBrokers,
  rackAlternatingOrder,
  type PlacementContext,
} from '../../src/controller/topic-operations.js';
import type { MetadataRecord } from '../../src/controller/metadata-records.js';

function context(brokers = [1]): PlacementContext {
  let id = 0;
  return { defaultPartitions: 1, defaultReplicationFactor: 1, liveBrokers: brokers, startIndex: 0, newTopicId: () => `id-${++id}` };
}

function imageWith(brokers: number[], records: MetadataRecord[] = []): MetadataImage {
  let image = MetadataImage.EMPTY;
  for (const nodeId of brokers) image = image.replay({ type: 'RegisterBroker', nodeId, endpoints: [] });
  return records.reduce((img, r) => img.replay(r), image);
}

function create(name: string, image = imageWith([1]), extra: Partial<Parameters<typeof createTopics>[0][number]> = {}) {
  return createTopics([{ name, configs: {}, assignments: new Map(), ...extra }], image, context());
}

describe('topic creation rules', () => {
  it.each([
    ['illegal characters', 'bad topic!'],
    ['a name longer than 249 characters', 'x'.repeat(250)],
    ['"."', '.'],
    ['".."', '..'],
    ['an empty name', ''],
  ])('rejects %s with INVALID_TOPIC_EXCEPTION', (_what, name) => {
    const { records, results } = create(name);
    expect(results[0].errorCode).toBe('INVALID_TOPIC_EXCEPTION');
    expect(records).toEqual([]);
  });

  it('accepts a name of exactly 249 legal characters', () => {
    expect(create('a.b_c-D9'.padEnd(249, 'z')).results[0].errorCode).toBe('NONE');
  });

  it("rejects a topic whose name collides with an existing one on '.' versus '_'", () => {
    const first = create('orders.eu');
    const image = first.records.reduce((img, r) => img.replay(r), imageWith([1]));
    const { results } = create('orders_eu', image);
    expect(results[0].errorCode).toBe('INVALID_TOPIC_EXCEPTION');
    expect(results[0].errorMessage).toContain('orders.eu');
  });

  it('rejects an existing topic with TOPIC_ALREADY_EXISTS', () => {
    const image = create('t').records.reduce((img, r) => img.replay(r), imageWith([1]));
    expect(create('t', image).results[0].errorCode).toBe('TOPIC_ALREADY_EXISTS');
  });

  it.each([0, -1, -100])('rejects %i partitions with INVALID_PARTITIONS', (numPartitions) => {
    expect(create('t', undefined, { numPartitions }).results[0].errorCode).toBe('INVALID_PARTITIONS');
  });

  it('rejects a replication factor above the live brokers with INVALID_REPLICATION_FACTOR', () => {
    const { results } = create('t', undefined, { replicationFactor: 3 });
    expect(results[0].errorCode).toBe('INVALID_REPLICATION_FACTOR');
    expect(results[0].errorMessage).toContain('1 available broker');
  });

  it('rejects unknown and badly valued topic configs with INVALID_CONFIG', () => {
    expect(create('t', undefined, { configs: { 'retention.msx': '1' } }).results[0].errorCode).toBe('INVALID_CONFIG');
    expect(create('t', undefined, { configs: { 'retention.ms': 'soon' } }).results[0].errorCode).toBe('INVALID_CONFIG');
  });

  it('answers each topic of a request on its own', () => {
    const { results, records } = createTopics(
      [
        { name: 'good', configs: {}, assignments: new Map() },
        { name: 'bad/name', configs: {}, assignments: new Map() },
      ],
      imageWith([1]),
      context(),
    );
    expect(results.map((r) => r.errorCode)).toEqual(['NONE', 'INVALID_TOPIC_EXCEPTION']);
    expect(records.filter((r) => r.type === 'Topic')).toHaveLength(1);
  });

  it('places replicas round-robin across brokers', () => {
    expect(placeReplicas(4, 2, [1, 2, 3], 0)).toEqual([[1, 2], [2, 3], [3, 1], [1, 2]]);
  });

  it('checks a replica assignment: consecutive partitions, known brokers, no duplicates', () => {
    const image = imageWith([1, 2]);
    const run = (assignments: [number, number[]][]) => createTopics([{ name: 't', configs: {}, assignments: new Map(assignments) }], image, context([1, 2])).results[0];
    expect(run([[0, [1, 2]], [1, [2, 1]]]).errorCode).toBe('NONE');
    expect(run([[0, [1]], [2, [2]]]).errorCode).toBe('INVALID_REPLICA_ASSIGNMENT');
    expect(run([[0, [1, 1]]]).errorCode).toBe('INVALID_REPLICA_ASSIGNMENT');
    expect(run([[0, [7]]]).errorCode).toBe('INVALID_REPLICA_ASSIGNMENT');
  });
});

describe('other topic operations', () => {
  const base = () => create('t', undefined, { numPartitions: 2 }).records.reduce((img, r) => img.replay(r), imageWith([1]));

  it('deletes a topic, and answers UNKNOWN_TOPIC_OR_PARTITION for one that does not exist', () => {
    const { results, records } = deleteTopics(['t', 'missing'], base(), true);
    expect(results.map((r) => r.errorCode)).toEqual(['NONE', 'UNKNOWN_TOPIC_OR_PARTITION']);
    const after = records.reduce((img, r) => img.replay(r), base());
    expect(after.topic('t')).toBeUndefined();
  });

  it('refuses deletion when delete.topic.enable is false', () => {
    expect(deleteTopics(['t'], base(), false).results[0].errorCode).toBe('TOPIC_DELETION_DISABLED');
  });

  it('only grows the partition count', () => {
    const image = base();
    expect(createPartitions([{ name: 't', count: 2, assignments: new Map() }], image, context()).results[0].errorCode).toBe('INVALID_PARTITIONS');
    const grown = createPartitions([{ name: 't', count: 5, assignments: new Map() }], image, context());
    expect(grown.results[0].errorCode).toBe('NONE');
    expect(grown.records.reduce((img, r) => img.replay(r), image).topic('t')?.partitions).toHaveLength(5);
  });

  it('sets and deletes topic configs, validating values', () => {
    const image = base();
    const set = alterTopicConfigs([{ name: 't', changes: [{ key: 'retention.ms', value: '1000' }] }], image);
    const withConfig = set.records.reduce((img, r) => img.replay(r), image);
    expect(withConfig.topic('t')?.configs.get('retention.ms')).toBe('1000');
    const removed = alterTopicConfigs([{ name: 't', changes: [{ key: 'retention.ms', value: null }] }], withConfig);
    expect(removed.records.reduce((img, r) => img.replay(r), withConfig).topic('t')?.configs.has('retention.ms')).toBe(false);
    expect(alterTopicConfigs([{ name: 't', changes: [{ key: 'retention.ms', value: 'x' }] }], image).results[0].errorCode).toBe('INVALID_CONFIG');
  });
});

describe('placement over unfenced brokers and racks', () => {
  it('counts only registered, unfenced brokers as live, with their racks', () => {
    let image = MetadataImage.EMPTY;
    for (const nodeId of [1, 2, 3]) image = image.replay({ type: 'RegisterBroker', nodeId, endpoints: [], rack: `r${nodeId}` });
    image = image.replay({ type: 'UnfenceBroker', nodeId: 1 }).replay({ type: 'UnfenceBroker', nodeId: 3 });
    expect(placementBrokers(image)).toEqual({ liveBrokers: [1, 3], brokerRacks: new Map([[1, 'r1'], [3, 'r3']]) });
  });

  it('rejects a replication factor above the unfenced brokers with INVALID_REPLICATION_FACTOR (KIP-631 fencing)', () => {
    let image = MetadataImage.EMPTY;
    for (const nodeId of [1, 2, 3]) image = image.replay({ type: 'RegisterBroker', nodeId, endpoints: [] });
    image = image.replay({ type: 'UnfenceBroker', nodeId: 1 });
    const result = createTopics([{ name: 't', replicationFactor: 2, configs: {}, assignments: new Map() }], image, { ...context(), ...placementBrokers(image) }).results[0];
    expect(result.errorCode).toBe('INVALID_REPLICATION_FACTOR');
  });

  it("orders brokers rack-alternating, as Kafka's placement does", () => {
    const racks = new Map([[1, 'a'], [2, 'a'], [3, 'b'], [4, 'b'], [5, 'c'], [6, 'c']]);
    expect(rackAlternatingOrder([1, 2, 3, 4, 5, 6], racks)).toEqual([1, 3, 5, 2, 4, 6]);
    expect(rackAlternatingOrder([1, 2, 3, 4], new Map([[1, 'a'], [2, 'a'], [3, 'a'], [4, 'b']]))).toEqual([1, 4, 2, 3]);
  });

  it.each([
    ['three racks, factor 3', [1, 2, 3, 4, 5, 6], { 1: 'a', 2: 'a', 3: 'b', 4: 'b', 5: 'c', 6: 'c' }, 3, 3],
    ['two racks, factor 3', [1, 2, 3, 4], { 1: 'a', 2: 'a', 3: 'b', 4: 'b' }, 3, 2],
    ['uneven racks, factor 2', [1, 2, 3, 4], { 1: 'a', 2: 'a', 3: 'a', 4: 'b' }, 2, 2],
  ])('spreads every partition over as many racks as it can: %s', (_what, brokers, rackOf, factor, racksPerPartition) => {
    const racks = new Map(Object.entries(rackOf).map(([id, rack]) => [Number(id), rack]));
    for (let start = 0; start < brokers.length; start++) {
      for (const replicas of placeReplicasRackAware(12, factor, brokers, racks, start)) {
        expect(new Set(replicas).size).toBe(factor);
        expect(new Set(replicas.map((b) => racks.get(b))).size).toBe(racksPerPartition);
      }
    }
  });

  it('spreads leadership over every broker', () => {
    const racks = new Map([[1, 'a'], [2, 'a'], [3, 'b'], [4, 'b']]);
    expect(new Set(placeReplicasRackAware(4, 2, [1, 2, 3, 4], racks, 0).map((r) => r[0]))).toEqual(new Set([1, 2, 3, 4]));
  });

  it('createTopics uses rack-aware placement when every live broker has a rack, round-robin otherwise', () => {
    const brokerRacks = new Map([[1, 'a'], [2, 'a'], [3, 'b']]);
    const run = (racks: Map<number, string | undefined>) =>
      createTopics([{ name: 't', numPartitions: 3, replicationFactor: 2, configs: {}, assignments: new Map() }], imageWith([1, 2, 3]), { ...context([1, 2, 3]), brokerRacks: racks }).records
        .flatMap((r) => (r.type === 'Partition' ? [r.replicas] : []));
    for (const replicas of run(brokerRacks)) expect(new Set(replicas.map((b) => brokerRacks.get(b))).size).toBe(2);
    expect(run(new Map([[1, 'a'], [2, undefined], [3, 'b']]))).toEqual(placeReplicas(3, 2, [1, 2, 3], 0));
  });
});
