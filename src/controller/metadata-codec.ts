// Bytes of the replicated metadata log. A Raft entry carries one batch of metadata records,
// committed and applied atomically (JSON, UTF-8); a snapshot carries the records that rebuild an
// image from empty. JSON keeps the log readable with `level` tools and costs nothing that
// matters at metadata rates. Decoding checks the shape, so a foreign or damaged entry stops the
// node with a message instead of corrupting its image.
import { KavkaError } from '../util/errors.js';
import type { MetadataImage } from './metadata-image.js';
import type { MetadataRecord } from './metadata-records.js';


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
      ...(broker.directoryId === undefined ? {} : { directoryId: broker.directoryId }),
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

type FieldCheck = (value: unknown) => boolean;

const isInt: FieldCheck = (v) => Number.isSafeInteger(v);
const isString: FieldCheck = (v) => typeof v === 'string';
const isIntList: FieldCheck = (v) => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x));
const optional = (check: FieldCheck): FieldCheck => (v) => v === undefined || v === null || check(v);
const isEndpoints: FieldCheck = (v) =>
  Array.isArray(v) && v.every((e) => typeof e === 'object' && e !== null && isString((e as { name?: unknown }).name) && isString((e as { host?: unknown }).host) && isInt((e as { port?: unknown }).port));
const isStringMap = (allowNull: boolean): FieldCheck => (v) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string' || (allowNull && x === null));

/** The fields each record type must have, with their types (metadata-records.ts). */
const RECORD_FIELDS: Record<MetadataRecord['type'], Record<string, FieldCheck>> = {
  RegisterBroker: { nodeId: isInt, endpoints: isEndpoints, rack: optional(isString), incarnationId: optional(isString), directoryId: optional(isString) },
  FenceBroker: { nodeId: isInt },
  UnfenceBroker: { nodeId: isInt },
  UnregisterBroker: { nodeId: isInt },
  Topic: { name: isString, topicId: isString, configs: isStringMap(false) },
  Partition: { topic: isString, partition: isInt, replicas: isIntList, isr: isIntList, leader: isInt, leaderEpoch: isInt, partitionEpoch: isInt },
  PartitionChange: { topic: isString, partition: isInt, leader: optional(isInt), isr: optional(isIntList), replicas: optional(isIntList) },
  RemoveTopic: { name: isString },
  Config: { topic: isString, changes: isStringMap(true) },
  ProducerIds: { brokerId: isInt, nextProducerId: isInt },
};

function checkRecords(value: unknown, what: string): MetadataRecord[] {
  if (!Array.isArray(value)) throw new KavkaError('CORRUPT_MESSAGE', `${what} is not a list of metadata records`);
  for (const record of value) {
    const type = (record as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !Object.prototype.hasOwnProperty.call(RECORD_FIELDS, type)) {
      throw new KavkaError('CORRUPT_MESSAGE', `${what} holds an unknown metadata record type ${JSON.stringify(type)}`);
    }
    for (const [field, check] of Object.entries(RECORD_FIELDS[type as MetadataRecord['type']])) {
      if (!check((record as Record<string, unknown>)[field])) {
        throw new KavkaError('CORRUPT_MESSAGE', `${what} holds a ${type} record whose ${field} is missing or of the wrong type: ${JSON.stringify(record).slice(0, 200)}`);
      }
    }
  }
  return value as MetadataRecord[];
}
