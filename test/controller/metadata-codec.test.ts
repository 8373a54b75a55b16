// The metadata log's bytes: record batches round-trip, a snapshot (imageToRecords) rebuilds the
// image it was taken from, and damaged or foreign bytes stop with CORRUPT_MESSAGE.
import { describe, expect, it } from 'vitest';
import {
  MetadataImage,
  decodeMetadataBatch,
  decodeMetadataSnapshot,
  encodeMetadataBatch,
  encodeMetadataSnapshot,
  imageToRecords,
} from '../../src/controller/index.js';
import type { MetadataRecord } from '../../src/controller/metadata-records.js';
import { KavkaError } from '../../src/util/errors.js';
import { replayAll } from './cluster-fixture.js';
import { imageView } from './quorum-fixture.js';

const encoder = new TextEncoder();

function corrupt(fn: () => unknown): KavkaError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(KavkaError);
    return error as KavkaError;
  }
  throw new Error('expected CORRUPT_MESSAGE');
}

/** One of every record type, in an order replay accepts. */
const EVERY_RECORD: MetadataRecord[] = [
  { type: 'RegisterBroker', nodeId: 1, endpoints: [{ name: 'INTERNAL', host: '127.0.0.1', port: 9192 }], rack: 'r1', incarnationId: 'inc-1' },
  { type: 'RegisterBroker', nodeId: 2, endpoints: [], incarnationId: 'inc-2' },
  { type: 'RegisterBroker', nodeId: 3, endpoints: [] },
  { type: 'UnfenceBroker', nodeId: 1 },
  { type: 'UnfenceBroker', nodeId: 2 },
  { type: 'FenceBroker', nodeId: 2 },
  { type: 'UnregisterBroker', nodeId: 3 },
  { type: 'Topic', name: 'orders', topicId: 'id-orders', configs: { 'retention.ms': '1000' } },
  { type: 'Partition', topic: 'orders', partition: 0, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
  { type: 'PartitionChange', topic: 'orders', partition: 0, isr: [1] },
  { type: 'Config', topic: 'orders', changes: { 'retention.ms': null, 'cleanup.policy': 'delete' } },
  { type: 'RemoveTopic', name: 'orders' },
  { type: 'ProducerIds', brokerId: 1, nextProducerId: 2000 },
];

/**
 * A non-trivial image: brokers fenced and unfenced (with and without rack and incarnation),
 * topics with configs, partitions whose epochs were bumped (leader moves, ISR changes, one
 * offline partition), and producer ids handed out.
 */
function busyImage(): MetadataImage {
  return replayAll(MetadataImage.EMPTY, [
    { type: 'RegisterBroker', nodeId: 3, endpoints: [{ name: 'INTERNAL', host: 'kavka-3', port: 9194 }, { name: 'CLIENT', host: 'kavka-3', port: 9094 }], rack: 'b', incarnationId: 'inc-3' },
    { type: 'RegisterBroker', nodeId: 1, endpoints: [{ name: 'INTERNAL', host: 'kavka-1', port: 9192 }], rack: 'a', incarnationId: 'inc-1' },
    { type: 'RegisterBroker', nodeId: 2, endpoints: [], incarnationId: 'inc-2' },
    { type: 'RegisterBroker', nodeId: 4, endpoints: [] },
    { type: 'UnfenceBroker', nodeId: 1 },
    { type: 'UnfenceBroker', nodeId: 2 },
    { type: 'UnfenceBroker', nodeId: 3 },
    { type: 'Topic', name: 'zeta', topicId: 'id-zeta', configs: { 'cleanup.policy': 'delete', 'retention.ms': '60000' } },
    { type: 'Partition', topic: 'zeta', partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
    { type: 'Partition', topic: 'zeta', partition: 1, replicas: [2, 3, 1], isr: [2, 3, 1], leader: 2, leaderEpoch: 0, partitionEpoch: 0 },
    { type: 'Partition', topic: 'zeta', partition: 2, replicas: [3, 1, 2], isr: [3, 1, 2], leader: 3, leaderEpoch: 0, partitionEpoch: 0 },
    { type: 'Topic', name: 'alpha', topicId: 'id-alpha', configs: {} },
    { type: 'Partition', topic: 'alpha', partition: 0, replicas: [2], isr: [2], leader: 2, leaderEpoch: 0, partitionEpoch: 0 },
    { type: 'Topic', name: 'gone', topicId: 'id-gone', configs: {} },
    { type: 'Partition', topic: 'gone', partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
    // Broker 2 is fenced: its partitions move, alpha-0 goes offline with its ISR kept.
    { type: 'FenceBroker', nodeId: 2 },
    { type: 'PartitionChange', topic: 'zeta', partition: 1, leader: 3, isr: [3, 1] },
    { type: 'PartitionChange', topic: 'zeta', partition: 0, isr: [1, 3] },
    { type: 'PartitionChange', topic: 'alpha', partition: 0, leader: -1 },
    // Leadership moves around on zeta-2 (leaderEpoch 2, partitionEpoch 3).
    { type: 'PartitionChange', topic: 'zeta', partition: 2, leader: 1 },
    { type: 'PartitionChange', topic: 'zeta', partition: 2, leader: 3 },
    { type: 'PartitionChange', topic: 'zeta', partition: 2, isr: [3, 1] },
    { type: 'Config', topic: 'zeta', changes: { 'retention.ms': '120000', 'cleanup.policy': null, 'min.insync.replicas': '2' } },
    { type: 'RemoveTopic', name: 'gone' },
    { type: 'ProducerIds', brokerId: 1, nextProducerId: 1000 },
    { type: 'ProducerIds', brokerId: 3, nextProducerId: 2000 },
  ]);
}

describe('metadata record batches', () => {
  it('round-trips every record type through encode and decode', () => {
    expect(decodeMetadataBatch(encodeMetadataBatch(EVERY_RECORD))).toEqual(EVERY_RECORD);
  });

  it('round-trips an empty batch (the new leader\'s first entry)', () => {
    expect(decodeMetadataBatch(encodeMetadataBatch([]))).toEqual([]);
  });

  it('decodes to records that replay to the same image as the originals', () => {
    const decoded = decodeMetadataBatch(encodeMetadataBatch(EVERY_RECORD));
    expect(imageView(replayAll(MetadataImage.EMPTY, decoded))).toEqual(imageView(replayAll(MetadataImage.EMPTY, EVERY_RECORD)));
  });

  it.each<[string, Uint8Array]>([
    ['bytes that are not JSON', encoder.encode('{"type":')],
    ['bytes that are not UTF-8', new Uint8Array([0x5b, 0xff, 0xfe, 0x5d])],
    ['an empty entry', new Uint8Array()],
  ])('rejects %s with CORRUPT_MESSAGE', (_what, bytes) => {
    const error = corrupt(() => decodeMetadataBatch(bytes));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toContain('not valid JSON');
  });

  it.each<[string, unknown]>([
    ['an object', { type: 'Topic', name: 't', topicId: 'x', configs: {} }],
    ['a string', 'RegisterBroker'],
    ['a number', 42],
    ['null', null],
  ])('rejects JSON that is %s instead of a list with CORRUPT_MESSAGE', (_what, value) => {
    const error = corrupt(() => decodeMetadataBatch(encoder.encode(JSON.stringify(value))));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toContain('not a list');
  });

  it.each<[string, unknown[]]>([
    ['an unknown record type', [{ type: 'RegisterBroker', nodeId: 1, endpoints: [] }, { type: 'DropEverything' }]],
    ['a record without a type', [{ nodeId: 1 }]],
    ['a type that is not a string', [{ type: 7 }]],
    ['a null record', [null]],
    ['a bare string record', ['Topic']],
  ])('rejects %s with CORRUPT_MESSAGE', (_what, value) => {
    const error = corrupt(() => decodeMetadataBatch(encoder.encode(JSON.stringify(value))));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toContain('unknown metadata record type');
  });

  it.each<[string, string, string]>([
    ['a broker id that is a string', '[{"type":"RegisterBroker","nodeId":"7","endpoints":[]}]', 'nodeId'],
    ['a RegisterBroker without endpoints', '[{"type":"RegisterBroker","nodeId":7}]', 'endpoints'],
    ['an endpoint without a port', '[{"type":"RegisterBroker","nodeId":7,"endpoints":[{"name":"INTERNAL","host":"h"}]}]', 'endpoints'],
    ['a config value that is a number', '[{"type":"Config","topic":"t","changes":{"retention.ms":5}}]', 'changes'],
    ['a Topic without a name', '[{"type":"Topic","topicId":"x","configs":{}}]', 'name'],
    ['an ISR that is not a list of ids', '[{"type":"PartitionChange","topic":"t","partition":0,"isr":[1,"2"]}]', 'isr'],
    ['a fractional partition epoch', '[{"type":"Partition","topic":"t","partition":0,"replicas":[1],"isr":[1],"leader":1,"leaderEpoch":0,"partitionEpoch":0.5}]', 'partitionEpoch'],
  ])('rejects %s with CORRUPT_MESSAGE naming the field', (_what, text, field) => {
    const error = corrupt(() => decodeMetadataBatch(encoder.encode(text)));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toContain(field);
  });

  it('accepts records whose optional fields are absent', () => {
    const records: MetadataRecord[] = [
      { type: 'RegisterBroker', nodeId: 1, endpoints: [] },
      { type: 'PartitionChange', topic: 't', partition: 0, leader: -1 },
      { type: 'PartitionChange', topic: 't', partition: 0, isr: [1] },
    ];
    expect(decodeMetadataBatch(encodeMetadataBatch(records))).toEqual(records);
  });

  it('names the unknown record type in the message', () => {
    expect(corrupt(() => decodeMetadataBatch(encoder.encode('[{"type":"DropEverything"}]'))).message).toContain('"DropEverything"');
  });
});

describe('metadata snapshots (imageToRecords)', () => {
  it('rebuilds a non-trivial image exactly: brokers, fencing, topics, configs, partitions, epochs, producer ids', () => {
    const image = busyImage();
    const rebuilt = replayAll(MetadataImage.EMPTY, imageToRecords(image));
    expect(imageView(rebuilt)).toEqual(imageView(image));

    // Spelled out, so a wrong fixture cannot make both sides equal by accident.
    expect([...rebuilt.brokers.keys()].sort()).toEqual([1, 2, 3, 4]);
    expect(rebuilt.unfencedBrokerIds()).toEqual([1, 3]);
    expect(rebuilt.brokers.get(2)?.fenced).toBe(true);
    expect(rebuilt.brokers.get(4)).toMatchObject({ fenced: true, incarnationId: undefined, rack: undefined });
    expect(rebuilt.brokers.get(3)?.endpoints.get('CLIENT')).toEqual({ host: 'kavka-3', port: 9094 });
    expect(rebuilt.brokers.get(1)).toMatchObject({ rack: 'a', incarnationId: 'inc-1' });
    expect([...rebuilt.topics.keys()].sort()).toEqual(['alpha', 'zeta']);
    expect(Object.fromEntries(rebuilt.topic('zeta')?.configs ?? [])).toEqual({ 'retention.ms': '120000', 'min.insync.replicas': '2' });
    expect(rebuilt.topic('zeta')?.topicId).toBe('id-zeta');
    expect(rebuilt.topic('zeta')?.partitions).toEqual([
      { partition: 0, replicas: [1, 2, 3], isr: [1, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 1 },
      { partition: 1, replicas: [2, 3, 1], isr: [3, 1], leader: 3, leaderEpoch: 1, partitionEpoch: 1 },
      { partition: 2, replicas: [3, 1, 2], isr: [3, 1], leader: 3, leaderEpoch: 2, partitionEpoch: 3 },
    ]);
    expect(rebuilt.topic('alpha')?.partitions).toEqual([{ partition: 0, replicas: [2], isr: [2], leader: -1, leaderEpoch: 1, partitionEpoch: 1 }]);
    expect(rebuilt.nextProducerId).toBe(2000);
  });

  it('rebuilds the same image again from its own records (a snapshot of a snapshot)', () => {
    const once = replayAll(MetadataImage.EMPTY, imageToRecords(busyImage()));
    const twice = replayAll(MetadataImage.EMPTY, imageToRecords(once));
    expect(imageView(twice)).toEqual(imageView(busyImage()));
    expect(imageToRecords(twice)).toEqual(imageToRecords(busyImage()));
  });

  it('writes nothing for an empty image and no ProducerIds record before any id is handed out', () => {
    expect(imageToRecords(MetadataImage.EMPTY)).toEqual([]);
    const records = imageToRecords(replayAll(MetadataImage.EMPTY, [{ type: 'RegisterBroker', nodeId: 1, endpoints: [] }]));
    expect(records.map((r) => r.type)).toEqual(['RegisterBroker']);
  });

  it('round-trips through the snapshot bytes', () => {
    const image = busyImage();
    const records = decodeMetadataSnapshot(encodeMetadataSnapshot(image));
    expect(records).toEqual(JSON.parse(JSON.stringify(imageToRecords(image))));
    expect(imageView(replayAll(MetadataImage.EMPTY, records))).toEqual(imageView(image));
  });

  it.each<[string, string]>([
    ['not JSON', 'snap'],
    ['a bare record list (no version)', '[]'],
    ['another version', '{"version":2,"records":[]}'],
    ['records that are not a list', '{"version":1,"records":{}}'],
    ['an unknown record type', '{"version":1,"records":[{"type":"Nope"}]}'],
  ])('rejects a snapshot that is %s with CORRUPT_MESSAGE', (_what, text) => {
    expect(corrupt(() => decodeMetadataSnapshot(encoder.encode(text))).code).toBe('CORRUPT_MESSAGE');
  });
});
