// Bytes of the replicated metadata log. A Raft entry carries one batch of metadata records,
// committed and applied atomically (JSON, UTF-8); a snapshot carries the records that rebuild an
// image from empty. JSON keeps the log readable with `level` tools and costs nothing that
// matters at metadata rates. Decoding checks the shape, so a foreign or damaged entry stops the
// node with a message instead of corrupting its image.
import { KavkaError } from '../util/errors.js';
import type { MetadataImage } from './metadata-image.js';
import type { MetadataRecord } from './metadata-records.js';

const RECORD_TYPES = new Set<MetadataRecord['type']>([
  'RegisterBroker',
  'FenceBroker',
  'UnfenceBroker',
  'UnregisterBroker',
  'Topic',
  'Partition',
  'PartitionChange',
  'RemoveTopic',
  'Config',
  'ProducerIds',
]);

const SNAPSHOT_VERSION = 1;

export function encodeMetadataBatch(records: readonly MetadataRecord[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(records));
}

export function decodeMetadataBatch(data: Uint8Array): MetadataRecord[] {
  return checkRecords(parseJson(data, 'metadata log entry'), 'metadata log entry');
}

/** The records that rebuild `image` from an empty one, in an order replay accepts. */
export function imageToRecords(image: MetadataImage): MetadataRecord[] {
  const records: MetadataRecord[] = [];
  for (const broker of [...image.brokers.values()].sort((a, b) => a.nodeId - b.nodeId)) {
    records.push({
      type: 'RegisterBroker',
      nodeId: broker.nodeId,
      endpoints: [...broker.endpoints].map(([name, e]) => ({ name, host: e.host, port: e.port })),
      rack: broker.rack,
      incarnationId: broker.incarnationId,
    });
    // A registration replays fenced.
    if (!broker.fenced) records.push({ type: 'UnfenceBroker', nodeId: broker.nodeId });
  }
  for (const topic of [...image.topics.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    records.push({ type: 'Topic', name: topic.name, topicId: topic.topicId, configs: Object.fromEntries(topic.configs) });
    for (const p of topic.partitions) {
      records.push({
        type: 'Partition',
        topic: topic.name,
        partition: p.partition,
        replicas: [...p.replicas],
        isr: [...p.isr],
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        partitionEpoch: p.partitionEpoch,
      });
    }
  }
  if (image.nextProducerId > 0) records.push({ type: 'ProducerIds', brokerId: -1, nextProducerId: image.nextProducerId });
  return records;
}

export function encodeMetadataSnapshot(image: MetadataImage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ version: SNAPSHOT_VERSION, records: imageToRecords(image) }));
}

export function decodeMetadataSnapshot(data: Uint8Array): MetadataRecord[] {
  const value = parseJson(data, 'metadata snapshot');
  if (typeof value !== 'object' || value === null || (value as { version?: unknown }).version !== SNAPSHOT_VERSION) {
    throw new KavkaError('CORRUPT_MESSAGE', `metadata snapshot has an unknown format (want version ${SNAPSHOT_VERSION})`);
  }
  return checkRecords((value as { records?: unknown }).records, 'metadata snapshot');
}

function parseJson(data: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (error) {
    throw new KavkaError('CORRUPT_MESSAGE', `${what} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

function checkRecords(value: unknown, what: string): MetadataRecord[] {
  if (!Array.isArray(value)) throw new KavkaError('CORRUPT_MESSAGE', `${what} is not a list of metadata records`);
  for (const record of value) {
    const type = (record as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !RECORD_TYPES.has(type as MetadataRecord['type'])) {
      throw new KavkaError('CORRUPT_MESSAGE', `${what} holds an unknown metadata record type ${JSON.stringify(type)}`);
    }
  }
  return value as MetadataRecord[];
}
