// Kafka's default partitioner (DESIGN.md section 7):
// - a non-null key, including an empty one, goes to (murmur2(key) & 0x7fffffff) % numPartitions,
//   exactly as Kafka's Java client, so a key lands on the same partition from either client;
// - a null key goes to the topic's sticky partition, which stays put until a batch for it is sent
//   and then moves to another partition chosen at random (KIP-480), so keyless records fill
//   whole batches instead of spraying one record per partition.
// State is per producer (one StickyPartitioner per producer instance); random is handed in.
import { partitionForKey } from '../util/murmur2.js';

export interface PartitionChoice {
  /** Partitions of the topic, sorted. */
  partitions: number[];
  /** Partitions that currently have a leader; the sticky choice prefers them. */
  available: number[];
}

export class StickyPartitioner {
  private readonly sticky = new Map<string, number>();

  constructor(private readonly random: () => number) {}

  partition(topic: string, key: Buffer | null, choice: PartitionChoice): number {
    const count = choice.partitions.length;
    if (key !== null) return partitionForKey(key, count);
    const current = this.sticky.get(topic);
    if (current !== undefined && current < count) return current;
    return this.choose(topic, choice, undefined);
  }

  /**
   * A batch for `partition` of `topic` has been sent: if it was the sticky partition, pick a new
   * one (different from it whenever there is another choice).
   */
  onBatchSent(topic: string, partition: number, choice: PartitionChoice): void {
    if (this.sticky.get(topic) === partition) this.choose(topic, choice, partition);
  }

  private choose(topic: string, choice: PartitionChoice, previous: number | undefined): number {
    const pool = choice.available.length > 0 ? choice.available : choice.partitions;
    const candidates = pool.length > 1 && previous !== undefined ? pool.filter((p) => p !== previous) : pool;
    const index = Math.min(candidates.length - 1, Math.floor(this.random() * candidates.length));
    const next = candidates[index];
    this.sticky.set(topic, next);
    return next;
  }
}
