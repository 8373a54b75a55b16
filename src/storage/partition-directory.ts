// Names of partition directories in a log dir: `<topic>-<partition>`, split on the LAST dash
// (topic names may contain dashes). Kafka's topic name rules apply: 1-249 of [a-zA-Z0-9._-],
// not "." or "..".
import { KavkaError } from '../util/errors.js';
import type { TopicPartition } from './api.js';

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
/** Suffix of a directory being deleted (Kafka's `-delete`); never a partition. */
export const DELETED_DIRECTORY_SUFFIX = '-delete';

export function isValidTopicName(topic: string): boolean {
  return TOPIC_NAME.test(topic) && topic !== '.' && topic !== '..';
}

/** Throws INVALID_TOPIC_EXCEPTION / INVALID_PARTITIONS for a name storage cannot use as a directory. */
export function checkTopicPartition(tp: TopicPartition): void {
  if (!isValidTopicName(tp.topic)) {
    throw new KavkaError('INVALID_TOPIC_EXCEPTION', `topic name ${JSON.stringify(tp.topic)} is not 1-249 characters of [a-zA-Z0-9._-] (and not "." or "..")`);
  }
  if (!Number.isSafeInteger(tp.partition) || tp.partition < 0) {
    throw new KavkaError('INVALID_PARTITIONS', `partition ${tp.partition} of ${tp.topic} is not a non-negative integer`);
  }
}

/** The topic-partition a directory name denotes, or undefined when it is not a partition directory. */
export function parsePartitionDirectoryName(name: string): TopicPartition | undefined {
  if (name.endsWith(DELETED_DIRECTORY_SUFFIX)) return undefined;
  const dash = name.lastIndexOf('-');
  if (dash <= 0) return undefined;
  const topic = name.slice(0, dash);
  const partitionText = name.slice(dash + 1);
  if (!/^(0|[1-9]\d{0,9})$/.test(partitionText) || !isValidTopicName(topic)) return undefined;
  const partition = Number(partitionText);
  return Number.isSafeInteger(partition) ? { topic, partition } : undefined;
}
