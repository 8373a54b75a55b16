// Where the records of one send() landed, and the RecordMetadata the send answers with: per
// partition, the batches that hold its records (a send's records of one partition may span
// several batches) and the first record's index in the first of them. The send resolves once
// every one of those batches is acknowledged, with one RecordMetadata per partition carrying the
// offset of its first record, as kafkajs does.
//
// Plain functions over the placements of one send; the Producer fills them while it appends (no
// await in between) and awaits recordMetadataFor once the appends are done.
import type { ProducerBatch } from './accumulator.js';
import type { Acks, RecordMetadata } from './types.js';

/** Where the first record of one send() landed in one partition. */
export interface SendPlacement {
  batch: ProducerBatch;
  indexInBatch: number;
}

/** Per partition, the batches holding a send's records, in append order. */
export type SendPlacements = Map<number, SendPlacement[]>;

/** The send's latest record went into `batch` of `partition` (as its last record). */
export function placeRecord(placements: SendPlacements, partition: number, batch: ProducerBatch): void {
  let list = placements.get(partition);
  if (list === undefined) {
    list = [];
    placements.set(partition, list);
  }
  if (list[list.length - 1]?.batch !== batch) list.push({ batch, indexInBatch: batch.recordCount - 1 });
}

/** Waits until every batch of the send is acknowledged; rejects with the error of the first to fail. */
export async function recordMetadataFor(topic: string, placements: SendPlacements, acks: Acks): Promise<RecordMetadata[]> {
  const all = [...placements.values()].flat();
  await Promise.all(all.map((p) => p.batch.done));
  const out: RecordMetadata[] = [];
  for (const [partition, list] of [...placements.entries()].sort((a, b) => a[0] - b[0])) {
    const first = list[0];
    const result = await first.batch.done;
    const baseOffset = acks === 0 || result.baseOffset < 0n ? '-1' : (result.baseOffset + BigInt(first.indexInBatch)).toString();
    out.push({ topicName: topic, partition, errorCode: 0, baseOffset, logAppendTime: result.logAppendTime.toString(), logStartOffset: result.logStartOffset.toString() });
  }
  return out;
}
