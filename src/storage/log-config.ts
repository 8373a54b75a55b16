// Bounds of a partition log's configuration. The broker merges topic overrides over its
// defaults (src/config); storage checks the bounds it depends on, naming Kafka's topic keys.
import { BATCH_HEADER_SIZE } from '../codec/record-batch.js';
import { KavkaError } from '../util/errors.js';
import { INT32_MAX } from '../util/config-values.js';
import type { LogConfig } from './api.js';

/** Segment positions and relative offsets are int32 in the index files. */
export { INT32_MAX };

function checkInteger(key: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new KavkaError('INVALID_CONFIG', `config ${key}=${value} is invalid: expected an integer between ${min} and ${max}`);
  }
}

/** Throws INVALID_CONFIG naming the key of the first bad value. */
export function validateLogConfig(config: LogConfig): void {
  checkInteger('segment.bytes', config.segmentBytes, BATCH_HEADER_SIZE, INT32_MAX);
  checkInteger('segment.ms', config.segmentMs, 1, Number.MAX_SAFE_INTEGER);
  checkInteger('retention.ms', config.retentionMs, -1, Number.MAX_SAFE_INTEGER);
  checkInteger('retention.bytes', config.retentionBytes, -1, Number.MAX_SAFE_INTEGER);
  checkInteger('retention.messages', config.retentionMessages, -1, Number.MAX_SAFE_INTEGER);
  checkInteger('max.message.bytes', config.maxMessageBytes, 0, INT32_MAX);
  checkInteger('index.interval.bytes', config.indexIntervalBytes, 0, INT32_MAX);
  checkInteger('producer.id.expiration.ms', config.producerIdExpirationMs, 1, Number.MAX_SAFE_INTEGER);
  if (config.flushPolicy !== 'batch' && config.flushPolicy !== 'os') {
    throw new KavkaError('INVALID_CONFIG', `config flush.policy=${String(config.flushPolicy)} is invalid: expected batch or os`);
  }
  if (config.messageTimestampType !== 'CreateTime' && config.messageTimestampType !== 'LogAppendTime') {
    throw new KavkaError('INVALID_CONFIG', `config message.timestamp.type=${String(config.messageTimestampType)} is invalid: expected CreateTime or LogAppendTime`);
  }
}
