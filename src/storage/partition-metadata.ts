// `<partition dir>/partition.metadata`, Kafka's PartitionMetadataFile: which topic (by id) the
// directory belongs to. A topic name can be deleted and created again; the directory name is the
// same both times, the topic id is not.
//
//   version: 0
//   topic_id: <topic id>
//
// Written atomically (temp, fdatasync, rename, directory fsync) when the log is created, before it
// serves anything; written on open when missing (a directory from before this file existed, or a
// crash between the directory's creation and this write).
import { join } from 'node:path';
import { assert } from '../util/assert.js';
import { KavkaError } from '../util/errors.js';
import { writeFileAtomic } from './atomic-file.js';
import { readFileIfExists, type StorageFs } from './storage-fs.js';

export const PARTITION_METADATA_FILE = 'partition.metadata';
const PARTITION_METADATA_VERSION = '0';
/** Printable, no spaces or line breaks, so it survives the line format. Kafka's are base64 UUIDs; Kavka's are UUIDs. */
const TOPIC_ID = /^[\x21-\x7e]{1,255}$/;

export function partitionMetadataPath(directory: string): string {
  return join(directory, PARTITION_METADATA_FILE);
}

/** Topic ids come from the metadata log, never from a client: a bad one is a bug. */
export function assertTopicId(topicId: string): void {
  assert(typeof topicId === 'string' && TOPIC_ID.test(topicId), `topic id ${JSON.stringify(topicId)} is 1-255 printable characters without spaces`);
}

export async function writePartitionMetadata(fs: StorageFs, directory: string, topicId: string): Promise<void> {
  assertTopicId(topicId);
  const text = `version: ${PARTITION_METADATA_VERSION}\ntopic_id: ${topicId}\n`;
  await writeFileAtomic(fs, partitionMetadataPath(directory), Buffer.from(text, 'utf8'), { syncDirectory: true });
}

/** The topic id the directory belongs to; undefined when the file is missing. A damaged file is a KAFKA_STORAGE_ERROR naming it. */
export async function readPartitionMetadata(fs: StorageFs, directory: string): Promise<string | undefined> {
  const path = partitionMetadataPath(directory);
  const bytes = await readFileIfExists(fs, path);
  if (bytes === undefined) return undefined;
  const fields = new Map<string, string>();
  for (const line of bytes.toString('utf8').split('\n')) {
    if (line.trim() === '') continue;
    const separator = line.indexOf(':');
    if (separator <= 0) throw new KavkaError('KAFKA_STORAGE_ERROR', `${path} is damaged: line ${JSON.stringify(line)} is not "key: value"`);
    fields.set(line.slice(0, separator).trim(), line.slice(separator + 1).trim());
  }
  const version = fields.get('version');
  if (version !== PARTITION_METADATA_VERSION) {
    throw new KavkaError('KAFKA_STORAGE_ERROR', `${path} has version ${JSON.stringify(version ?? null)}; this node reads version ${PARTITION_METADATA_VERSION}`);
  }
  const topicId = fields.get('topic_id');
  if (topicId === undefined || !TOPIC_ID.test(topicId)) throw new KavkaError('KAFKA_STORAGE_ERROR', `${path} is damaged: topic_id ${JSON.stringify(topicId ?? null)}`);
  return topicId;
}
