// The idempotent producer's bookkeeping (the idempotence half of Kafka's TransactionManager;
// DESIGN.md section 4): the producer id and epoch InitProducerId granted, and per partition the
// next sequence and the batches that hold a sequence of the current epoch and are not settled yet
// ("unacknowledged"), in sequence order.
//
// Pure data: no I/O, no timers. The producer calls assign() when it first encodes a batch (so
// sequences follow the order batches of a partition are first sent), settle() when a batch
// succeeds or fails for good, and reset() with the id and epoch of an InitProducerId answer
// (which starts every partition at sequence 0 again).
//
// Invariant: a partition's unacknowledged batches hold consecutive sequences (wrapping), oldest
// first; each batch is in at most one list.
import type { ProducerBatch } from './accumulator.js';

/**
 * Batches of one partition with sequences and no answer yet. The broker remembers a producer's
 * last 5 batches per partition, so a retry of any of them is recognised (Kafka caps
 * max.in.flight.requests.per.connection at 5 for the same reason).
 */
export const MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION = 5;

/** Kafka's sequences are int32 and wrap to 0 after this. */
export const MAX_SEQUENCE = 2 ** 31 - 1;

/** Kafka's DefaultRecordBatch.incrementSequence: `sequence + increment`, wrapping after MAX_SEQUENCE to 0. */
export function incrementSequence(sequence: number, increment: number): number {
  if (sequence > MAX_SEQUENCE - increment) return increment - (MAX_SEQUENCE - sequence) - 1;
  return sequence + increment;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

interface PartitionSequences {
  next: number;
  unacknowledged: ProducerBatch[];
}

export class IdempotentState {
  producerId = -1n;
  producerEpoch = -1;
  /**
   * Set when the broker's state for this producer is gone or disagrees (UNKNOWN_PRODUCER_ID,
   * INVALID_PRODUCER_EPOCH, an OUT_OF_ORDER_SEQUENCE_NUMBER no earlier batch explains) or a batch
   * with a sequence failed for good: the producer sends nothing until it has a new epoch.
   */
  bumpRequired = false;
  private readonly partitions = new Map<string, PartitionSequences>();

  get hasProducerId(): boolean {
    return this.producerId >= 0n;
  }

  /** A new id or epoch: every partition starts at sequence 0 and nothing holds a sequence. */
  reset(producerId: bigint, producerEpoch: number): void {
    this.producerId = producerId;
    this.producerEpoch = producerEpoch;
    this.partitions.clear();
    this.bumpRequired = false;
  }

  /** Gives `batch` the partition's next sequence; the batch becomes unacknowledged. */
  assign(batch: ProducerBatch): number {
    const key = partitionKey(batch.topic, batch.partition);
    let sequences = this.partitions.get(key);
    if (sequences === undefined) {
      sequences = { next: 0, unacknowledged: [] };
      this.partitions.set(key, sequences);
    }
    const baseSequence = sequences.next;
    sequences.next = incrementSequence(baseSequence, batch.recordCount);
    sequences.unacknowledged.push(batch);
    return baseSequence;
  }

  /** Does `batch` hold a sequence of the current epoch and no final answer? */
  holds(batch: ProducerBatch): boolean {
    return this.indexOf(batch) >= 0;
  }

  /**
   * Where `batch` stands among its partition's unacknowledged batches: its index when it holds a
   * sequence, else how many there are (where it would go).
   */
  position(batch: ProducerBatch): number {
    const list = this.partitions.get(partitionKey(batch.topic, batch.partition))?.unacknowledged ?? [];
    const index = list.indexOf(batch);
    return index >= 0 ? index : list.length;
  }

  /** Is an earlier batch of the same partition still unacknowledged? */
  hasEarlierUnacknowledged(batch: ProducerBatch): boolean {
    return this.indexOf(batch) > 0;
  }

  /** The batch got its final answer (success or failure): it no longer holds a sequence. */
  settle(batch: ProducerBatch): void {
    const key = partitionKey(batch.topic, batch.partition);
    const sequences = this.partitions.get(key);
    if (sequences === undefined) return;
    const index = sequences.unacknowledged.indexOf(batch);
    if (index >= 0) sequences.unacknowledged.splice(index, 1);
  }

  private indexOf(batch: ProducerBatch): number {
    return this.partitions.get(partitionKey(batch.topic, batch.partition))?.unacknowledged.indexOf(batch) ?? -1;
  }
}
