// The log start offset of one partition, kept in `<partition dir>/log-start-offset-checkpoint` in
// Kafka's offset-checkpoint text format, so retention's progress survives a restart:
//
//   0                        version
//   1                        number of entries
//   <topic> <partition> <offset>
//
// Written atomically (temp, fdatasync, rename, directory fsync) before the segments below the new
// start are deleted; after a crash between the two, the loader deletes those segments.
import { join } from 'node:path';
import { KavkaError } from '../util/errors.js';
import type { TopicPartition } from './api.js';
import { writeFileAtomic } from './atomic-file.js';
import { readFileIfExists, type StorageFs } from './storage-fs.js';

export const LOG_START_OFFSET_CHECKPOINT_FILE = 'log-start-offset-checkpoint';
const CHECKPOINT_VERSION = '0';

export function logStartOffsetCheckpointPath(directory: string): string {
  return join(directory, LOG_START_OFFSET_CHECKPOINT_FILE);
}

export async function writeLogStartOffset(fs: StorageFs, directory: string, tp: TopicPartition, logStartOffset: bigint): Promise<void> {
  const text = `${CHECKPOINT_VERSION}\n1\n${tp.topic} ${tp.partition} ${logStartOffset}\n`;
  await writeFileAtomic(fs, logStartOffsetCheckpointPath(directory), Buffer.from(text, 'utf8'), { syncDirectory: true });
}

/** The checkpointed log start offset, undefined when there is no checkpoint. A damaged file is a KAFKA_STORAGE_ERROR naming it. */
export async function readLogStartOffset(fs: StorageFs, directory: string, tp: TopicPartition): Promise<bigint | undefined> {
  const path = logStartOffsetCheckpointPath(directory);
  const bytes = await readFileIfExists(fs, path);
  if (bytes === undefined) return undefined;
  const lines = bytes.toString('utf8').split('\n').filter((line) => line.trim() !== '');
  const damaged = (why: string) => new KavkaError('KAFKA_STORAGE_ERROR', `${path} is damaged: ${why}`);
  if (lines[0]?.trim() !== CHECKPOINT_VERSION) throw damaged(`version line is ${JSON.stringify(lines[0])}, expected ${CHECKPOINT_VERSION}`);
  const count = Number(lines[1]);
  if (!Number.isInteger(count) || count !== lines.length - 2) throw damaged(`entry count ${JSON.stringify(lines[1])} does not match ${lines.length - 2} entries`);
  for (const line of lines.slice(2)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 3 || !/^\d+$/.test(fields[1]) || !/^\d+$/.test(fields[2])) throw damaged(`bad entry ${JSON.stringify(line)}`);
    if (fields[0] === tp.topic && Number(fields[1]) === tp.partition) return BigInt(fields[2]);
  }
  return undefined;
}
