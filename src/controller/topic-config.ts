// Topic-level configuration keys (kafka-topics --config k=v), each with the broker key that
// gives its default.
import { KavkaError } from '../util/errors.js';
import { INT32_MAX, parseBoolean, parseChoice, parseInteger } from '../util/config-values.js';

/** Topic-level keys (kafka-topics --config), each with the broker key giving its default. */
export const TOPIC_CONFIG_KEYS = {
  'retention.ms': { brokerKey: 'log.retention.ms', parse: parseInteger(-1) },
  'retention.bytes': { brokerKey: 'log.retention.bytes', parse: parseInteger(-1) },
  'retention.messages': { brokerKey: 'log.retention.messages', parse: parseInteger(-1) },
  'segment.bytes': { brokerKey: 'log.segment.bytes', parse: parseInteger(1024 * 14, INT32_MAX) },
  'segment.ms': { brokerKey: 'log.roll.ms', parse: parseInteger(1) },
  'max.message.bytes': { brokerKey: 'message.max.bytes', parse: parseInteger(0, INT32_MAX) },
  'message.timestamp.type': { brokerKey: 'log.message.timestamp.type', parse: parseChoice('CreateTime', 'LogAppendTime') },
  'min.insync.replicas': { brokerKey: 'min.insync.replicas', parse: parseInteger(1, 32_767) },
  'index.interval.bytes': { brokerKey: 'log.index.interval.bytes', parse: parseInteger(0, INT32_MAX) },
  'flush.policy': { brokerKey: 'log.flush.policy', parse: parseChoice('batch', 'os') },
  'unclean.leader.election.enable': { brokerKey: 'unclean.leader.election.enable', parse: parseBoolean },
  'cleanup.policy': { brokerKey: undefined, parse: parseChoice('delete') },
} as const;

export type TopicConfigKey = keyof typeof TOPIC_CONFIG_KEYS;

export function isTopicConfigKey(key: string): key is TopicConfigKey {
  return Object.prototype.hasOwnProperty.call(TOPIC_CONFIG_KEYS, key);
}

/** Checks one topic config value; throws INVALID_CONFIG naming the key. Returns the normalized text. */
export function validateTopicConfig(key: string, value: string): string {
  if (!isTopicConfigKey(key)) {
    throw new KavkaError('INVALID_CONFIG', `unknown topic config ${key}; known keys: ${Object.keys(TOPIC_CONFIG_KEYS).join(', ')}`);
  }
  return String(TOPIC_CONFIG_KEYS[key].parse(value, key));
}

