// Which queued batch of a partition may go out now, and with which bytes: the ordering rules an
// idempotent producer keeps per partition (a retry goes alone and only behind every earlier
// batch's acknowledgement; at most 5 batches from the oldest unacknowledged one on), the encoding
// that stamps a batch with the producer id, epoch and its sequence when it is first sent, and the
// merging of fresh batches queued behind a held-back head. Without idempotence (or for a batch
// with acks other than -1) every batch may go and is encoded without a producer id.
//
// Called synchronously by the Producer while it takes batches for a request (takeRequest in
// partition-queues.ts) and while it builds the request; it changes the batches it is handed and,
// through assign(), the IdempotentState, which the Producer shares.
import { encodeRecordBatch } from '../codec/record-batch.js';
import type { ProducerBatch } from './accumulator.js';
import { MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION, type IdempotentState } from './idempotence.js';

/** How many batch sizes queued batches of one partition may merge into (see coalesce). */
const COALESCE_BATCH_SIZES = 8;

function sameBatchSettings(a: ProducerBatch, b: ProducerBatch): boolean {
  return a.settings.acks === b.settings.acks && a.settings.compression === b.settings.compression && a.settings.timeoutMs === b.settings.timeoutMs;
}

export interface BatchSendLimits {
  batchSizeBytes: number;
  maxRequestSizeBytes: number;
}

export class BatchSendPolicy {
  /** `idempotence` is undefined when the producer is not idempotent. */
  constructor(
    private readonly idempotence: IdempotentState | undefined,
    private readonly limits: BatchSendLimits,
  ) {}

  isIdempotentBatch(batch: ProducerBatch): boolean {
    return this.idempotence !== undefined && batch.settings.acks === -1;
  }

  /** An idempotent batch sent before under the current epoch (its bytes are kept). */
  isIdempotentResend(batch: ProducerBatch): boolean {
    return this.isIdempotentBatch(batch) && batch.sends > 0 && batch.encoded !== undefined;
  }

  /**
   * May the head of a partition queue go now, as the (fromQueue + 1)-th batch of its partition in
   * this request? Without idempotence, always. With it: a retried batch only alone and only when
   * every earlier batch of the partition is acknowledged (Kafka's Sender does the same), so a
   * retry can never overtake a later batch; a fresh batch only while fewer than 5 batches of the
   * partition were sent from the oldest unacknowledged one on (the broker remembers the last 5). Unary Produce calls may be
   * handled out of order, so there a partition has one request in flight at a time.
   */
  mayTake(head: ProducerBatch, fromQueue: number, unary: boolean): boolean {
    const state = this.idempotence;
    if (state === undefined || !this.isIdempotentBatch(head)) return true;
    const position = state.position(head);
    if (this.isIdempotentResend(head)) return fromQueue === 0 && position === 0;
    // After a bump, a partition's new batches wait until its old epoch's batches are settled.
    if (head.encoded === undefined && !state.mayAssign(head)) return false;
    if (unary && fromQueue === 0 && position > 0) return false;
    // Holding a sequence, it has its slot; a fresh one needs the oldest unacknowledged batch to stay
    // among the broker's last 5 (IdempotentState.windowLength).
    return head.encoded !== undefined || state.windowLength(head) < MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION;
  }

  /** The batch's bytes, encoded on first use; an idempotent batch gets its sequence here. */
  encode(batch: ProducerBatch): Buffer {
    if (batch.encoded !== undefined) return batch.encoded;
    const state = this.idempotence;
    if (state !== undefined && this.isIdempotentBatch(batch)) {
      batch.baseSequence = state.assign(batch);
      batch.encoded = encodeRecordBatch({
        records: batch.records,
        compression: batch.settings.compression,
        producerId: state.producerId,
        producerEpoch: state.producerEpoch,
        baseSequence: batch.baseSequence,
      });
    } else {
      batch.encoded = encodeRecordBatch({ records: batch.records, compression: batch.settings.compression });
    }
    return batch.encoded;
  }

  /**
   * An idempotent producer has at most 5 batches of a partition in flight (the broker remembers
   * 5), so batches queue up behind them. Before the head goes out for the first time, the fresh
   * batches queued behind it join it, up to COALESCE_BATCH_SIZES x batch size: fewer, larger
   * batches keep the window's throughput. Nothing encoded (no sequence yet) is ever merged.
   * `batches` is the head's partition queue, head first; merged batches leave it.
   */
  coalesce(batches: ProducerBatch[], head: ProducerBatch): void {
    if (!this.isIdempotentBatch(head) || head.encoded !== undefined || head.sends > 0) return;
    const limit = Math.min(this.limits.maxRequestSizeBytes, COALESCE_BATCH_SIZES * this.limits.batchSizeBytes);
    while (batches.length > 1) {
      const next = batches[1];
      const mergeable = next.encoded === undefined && next.sends === 0 && next.attempts === 0 && sameBatchSettings(next, head);
      if (!mergeable || head.sizeBytes + next.sizeBytes > limit) break;
      head.absorb(next);
      batches.splice(1, 1);
    }
  }
}
