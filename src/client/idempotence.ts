// The idempotent producer's bookkeeping (the idempotence half of Kafka's TransactionManager;
// DESIGN.md section 4): the producer id and epoch InitProducerId granted last, and per partition
// the id and epoch its sequences belong to, the next sequence, and the batches that hold a
// sequence and are not settled yet ("unacknowledged"), in sequence order.
//
// Pure data: no I/O, no timers. The producer calls assign() when it first encodes a batch (so
// sequences follow the order batches of a partition are first sent), settle() when a batch
// succeeds or fails for good, requireEpochBump() for a partition whose sequences the broker
// lost or rejects, and bumped() with the id and epoch of the InitProducerId answer.
//
// Epochs are per partition, as in Kafka 3's TransactionManager (TxnPartitionEntry keeps its own
// producerIdAndEpoch; bumpIdempotentProducerEpoch rewrites only partitionsToRewriteSequences;
// maybeUpdateProducerIdAndEpoch moves any other partition to the new epoch only once it has
// nothing in flight). Why: an unacknowledged batch of another partition may be in that
// partition's log already (its answer lost); re-sent under a new epoch from sequence 0 the broker
// cannot recognise it and writes it twice. Kept under its old epoch and sequence, a retry is
// answered with its original offsets. So a bump rewrites only the partitions that asked for it;
// the others keep their epoch until their unacknowledged batches are settled, and only then
// start again at sequence 0 under the new epoch (mayAssign holds their new batches back until then).
//
// The window: the broker remembers a producer's last 5 batches per partition, so a retry is
// recognised only while fewer than 5 batches were written after it. Batches can be acknowledged
// out of order (a batch's answer lost at a deposed leader while later ones succeed at the new
// one), so counting the unacknowledged batches is not enough: a fresh batch gets a sequence only
// while fewer than 5 batches were assigned from the oldest unacknowledged one on, acknowledged or
// not (windowLength). Otherwise the retry of that oldest batch would find it pushed out of the
// broker's memory (OUT_OF_ORDER_SEQUENCE_NUMBER, then an epoch bump and a duplicate).
//
// Invariant: a partition's unacknowledged batches hold consecutive sequences (wrapping) of its
// id and epoch, oldest first; `window` starts at the oldest of them (empty when there is none)
// and holds every batch assigned since, in sequence order; each batch is in at most one partition.
import { assert } from '../util/assert.js';
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
  /** The producer id and epoch this partition's sequences belong to. */
  readonly producerId: bigint;
  readonly producerEpoch: number;
  next: number;
  unacknowledged: ProducerBatch[];
  /** From the oldest unacknowledged batch on, every batch assigned, settled or not (see the header). */
  window: ProducerBatch[];
}

export class IdempotentState {
  /** The id and epoch of the last InitProducerId answer: new sequences of every partition move to it. */
  producerId = -1n;
  producerEpoch = -1;
  /** The partitions (partitionKey) whose sequences the next bump rewrites; not empty while a bump is required. */
  private readonly partitionsToRewrite = new Set<string>();
  private readonly partitions = new Map<string, PartitionSequences>();

  get hasProducerId(): boolean {
    return this.producerId >= 0n;
  }

  /**
   * Set while the broker's state for this producer on some partition is gone or disagrees
   * (UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH, an OUT_OF_ORDER_SEQUENCE_NUMBER no earlier
   * batch explains) or a batch with a sequence failed for good: the producer sends nothing until
   * it has a new epoch.
   */
  get bumpRequired(): boolean {
    return this.partitionsToRewrite.size > 0;
  }

  /** The partition `key` needs a new epoch: the next bump restarts its sequences at 0. Returns false when a bump was already required. */
  requireEpochBump(key: string): boolean {
    const first = !this.bumpRequired;
    this.partitionsToRewrite.add(key);
    return first;
  }

  /**
   * The first InitProducerId answer, or one for a bump: new sequences use this id and epoch. The
   * partitions that required the bump forget their sequences; their unacknowledged batches are
   * returned (oldest first per partition) to be encoded again under the new epoch from sequence 0.
   * Every other partition keeps its epoch and sequences (see the header).
   */
  bumped(producerId: bigint, producerEpoch: number): ProducerBatch[] {
    this.producerId = producerId;
    this.producerEpoch = producerEpoch;
    const rewrite: ProducerBatch[] = [];
    for (const key of this.partitionsToRewrite) {
      rewrite.push(...(this.partitions.get(key)?.unacknowledged ?? []));
      this.partitions.delete(key);
    }
    this.partitionsToRewrite.clear();
    return rewrite;
  }

  /**
   * May `batch` (not holding a sequence) get one now? Not while its partition's unacknowledged
   * batches belong to an older id or epoch: its sequences under the new epoch start at 0, which
   * the broker accepts only after every batch of the old epoch (Kafka's Sender holds such
   * partitions back the same way).
   */
  mayAssign(batch: ProducerBatch): boolean {
    const sequences = this.partitions.get(partitionKey(batch.topic, batch.partition));
    return sequences === undefined || sequences.unacknowledged.length === 0 || this.isCurrent(sequences);
  }

  /** Gives `batch` the partition's next sequence under the current id and epoch; the batch becomes unacknowledged. */
  assign(batch: ProducerBatch): number {
    assert(this.mayAssign(batch), `${batch.topic}-${batch.partition} has unacknowledged batches of an older epoch`);
    const key = partitionKey(batch.topic, batch.partition);
    let sequences = this.partitions.get(key);
    if (sequences === undefined || !this.isCurrent(sequences)) {
      sequences = { producerId: this.producerId, producerEpoch: this.producerEpoch, next: 0, unacknowledged: [], window: [] };
      this.partitions.set(key, sequences);
    }
    const baseSequence = sequences.next;
    sequences.next = incrementSequence(baseSequence, batch.recordCount);
    sequences.unacknowledged.push(batch);
    sequences.window.push(batch);
    return baseSequence;
  }

  /**
   * How many batches of `batch`'s partition were assigned from its oldest unacknowledged one on
   * (0 when none is unacknowledged): a fresh batch may take a sequence only while this is below
   * MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION.
   */
  windowLength(batch: ProducerBatch): number {
    return this.partitions.get(partitionKey(batch.topic, batch.partition))?.window.length ?? 0;
  }

  /** Does `batch` hold a sequence and no final answer? */
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
    const oldest = sequences.unacknowledged[0];
    const start = oldest === undefined ? sequences.window.length : sequences.window.indexOf(oldest);
    sequences.window.splice(0, start);
  }

  private isCurrent(sequences: PartitionSequences): boolean {
    return sequences.producerId === this.producerId && sequences.producerEpoch === this.producerEpoch;
  }

  private indexOf(batch: ProducerBatch): number {
    return this.partitions.get(partitionKey(batch.topic, batch.partition))?.unacknowledged.indexOf(batch) ?? -1;
  }
}
