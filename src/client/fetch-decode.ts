// Turns one partition's fetched bytes into consumer messages. Pure.
//
// The broker returns whole batches, so the first may start before the fetch position: records
// below the position are skipped. Control batches (transaction markers) are skipped but still
// move the position past them. A torn trailing batch (fewer bytes than its length) is ignored:
// the next fetch asks for it again. A CRC mismatch is CORRUPT_MESSAGE.
import { decodeRecordBatch, effectiveTimestamp, isControl, lastOffsetOf, scanBatches, timestampTypeOf } from '../codec/record-batch.js';
import { KavkaError } from '../util/errors.js';
import { toKafkaMessage } from './convert.js';
import type { KafkaMessage } from './types.js';

export interface DecodedFetch {
  messages: KafkaMessage[];
  /** Offset after the last whole batch in the response (>= position), or position if none. */
  endOffset: bigint;
}

export function decodeFetchedBatches(bytes: Buffer, position: bigint, context: string): DecodedFetch {
  const messages: KafkaMessage[] = [];
  let endOffset = position;
  if (bytes.length === 0) return { messages, endOffset };
  const scan = scanBatches(bytes, { verifyCrc: true });
  if (scan.stop.kind === 'corrupt') {
    throw new KavkaError('CORRUPT_MESSAGE', `${context}: fetched batch at byte ${scan.stop.position} is corrupt (${scan.stop.reason})`);
  }
  for (const { position: at, size, header } of scan.batches) {
    const next = lastOffsetOf(header) + 1n;
    if (next <= position) continue;
    if (next > endOffset) endOffset = next;
    if (isControl(header.attributes)) continue;
    const { records } = decodeRecordBatch(bytes.subarray(at, at + size));
    const timestampType = timestampTypeOf(header.attributes);
    for (const record of records) {
      if (record.offset < position) continue;
      messages.push(toKafkaMessage(record, effectiveTimestamp(header, record), timestampType));
    }
  }
  return { messages, endOffset };
}
