// Topic name rules, as Kafka's org.apache.kafka.common.internals.Topic enforces them.
import { KavkaError } from '../util/errors.js';

export const MAX_TOPIC_NAME_LENGTH = 249;
const LEGAL = /^[a-zA-Z0-9._-]+$/;

/** Throws INVALID_TOPIC_EXCEPTION with a message that says what to change. */
export function validateTopicName(name: string): void {
  if (name.length === 0) throw new KavkaError('INVALID_TOPIC_EXCEPTION', 'topic name is empty');
  if (name === '.' || name === '..') throw new KavkaError('INVALID_TOPIC_EXCEPTION', `topic name cannot be "${name}"`);
  if (name.length > MAX_TOPIC_NAME_LENGTH) {
    throw new KavkaError('INVALID_TOPIC_EXCEPTION', `topic name is ${name.length} characters long; the limit is ${MAX_TOPIC_NAME_LENGTH}`);
  }
  if (!LEGAL.test(name)) {
    throw new KavkaError('INVALID_TOPIC_EXCEPTION', `topic name ${JSON.stringify(name)} has illegal characters; use only ASCII letters, digits, '.', '_' and '-'`);
  }
}

/** '.' and '_' collide in metric names, so Kafka refuses topics that differ only there. */
export function collisionKey(name: string): string {
  return name.replace(/\./g, '_');
}

export function isInternalTopic(name: string): boolean {
  return name.startsWith('__');
}
