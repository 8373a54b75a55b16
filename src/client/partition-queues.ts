// Where the producer's drained batches wait before they are sent: a FIFO per partition (by
// ordinal, so a retried batch goes back before every later batch of its partition), each listed
// under the broker that leads its partition, and per broker a round robin over the listed queues
// from which one request's batches are taken (takeRequest).
//
// Plain data and bookkeeping: no I/O, no timers. The Producer looks up leaders, holds queues for
// their backoffs (PartitionQueue.backoffs) and decides when to list, unlist and take; every call
// is synchronous, so no caller sees a half-updated queue across an await.
//
// Invariants: a queue is listed under at most one address, and queue.address says which;
// outside takeRequest a broker's round robin is never empty (it is dropped with its last queue).
import type { ProducerBatch } from './accumulator.js';
import type { BatchSendPolicy } from './batch-send-policy.js';
import { partitionKey } from './idempotence.js';

/** The batches of one partition that wait to be sent, and the broker they go to. */
export interface PartitionQueue {
  readonly key: string;
  /** Ascending by ordinal: fresh batches at the end, a retried one back before every later one. */
  readonly batches: ProducerBatch[];
  /** The broker whose round robin lists this queue; undefined while not listed. */
  address: string | undefined;
  /** Backoffs under way: while any runs, the queue is not listed and sends nothing. */
  backoffs: number;
}

export class PartitionQueues {
  /** Per partition ("topic\u0000partition"): batches drained or retried and not yet sent. */
  private readonly partitionQueues = new Map<string, PartitionQueue>();
  /**
   * Per broker address, the partition queues it leads that may send. Map order is the
   * round-robin order of partitions. A queue is listed under at most one address.
   */
  private readonly brokerQueues = new Map<string, Map<string, PartitionQueue>>();

  constructor(
    private readonly policy: BatchSendPolicy,
    private readonly maxRequestSizeBytes: number,
  ) {}

  /** Puts a batch into its partition's queue, in ordinal order. */
  enqueue(batch: ProducerBatch): PartitionQueue {
    const key = partitionKey(batch.topic, batch.partition);
    let queue = this.partitionQueues.get(key);
    if (queue === undefined) {
      queue = { key, batches: [], address: undefined, backoffs: 0 };
      this.partitionQueues.set(key, queue);
    }
    let at = queue.batches.length;
    while (at > 0 && queue.batches[at - 1].ordinal > batch.ordinal) at--;
    queue.batches.splice(at, 0, batch);
    return queue;
  }

  /** Adds an unlisted queue to the round robin of `address`, the leader of its partition. */
  listUnder(queue: PartitionQueue, address: string): void {
    let listed = this.brokerQueues.get(address);
    if (listed === undefined) {
      listed = new Map();
      this.brokerQueues.set(address, listed);
    }
    listed.set(queue.key, queue);
    queue.address = address;
  }

  /** Takes a queue out of its broker's round robin; forgets it when it is empty and idle. */
  unlist(queue: PartitionQueue): void {
    if (queue.address !== undefined) {
      const listed = this.brokerQueues.get(queue.address);
      listed?.delete(queue.key);
      if (listed?.size === 0) this.brokerQueues.delete(queue.address);
      queue.address = undefined;
    }
    if (queue.batches.length === 0 && queue.backoffs === 0 && this.partitionQueues.get(queue.key) === queue) this.partitionQueues.delete(queue.key);
  }

  /** The broker the queue of `batch`'s partition is listed under, if any. */
  addressOf(batch: ProducerBatch): string | undefined {
    return this.partitionQueues.get(partitionKey(batch.topic, batch.partition))?.address;
  }

  /** Does `address` list any queue? */
  hasListed(address: string): boolean {
    return (this.brokerQueues.get(address)?.size ?? 0) > 0;
  }

  /** The brokers that list queues, in the order they first listed one. */
  addresses(): string[] {
    return [...this.brokerQueues.keys()];
  }

  /** Every partition queue (a copy of the list). */
  all(): PartitionQueue[] {
    return [...this.partitionQueues.values()];
  }

  /** Does any partition queue hold a batch? */
  hasWaitingBatches(): boolean {
    return [...this.partitionQueues.values()].some((q) => q.batches.length > 0);
  }

  /**
   * Takes batches for one request to `address`: from each listed partition queue in round-robin
   * order, its oldest batches that may go (BatchSendPolicy.mayTake), all with the acks of the
   * first, up to maxRequestSizeBytes (the first batch always goes, however large). Several
   * batches of one partition travel back to back in one PartitionProduceData, which the broker
   * appends at consecutive offsets; an idempotent producer's retried batch travels alone. A
   * visited partition moves to the back of the order; an emptied one leaves it.
   * Costs O(partitions + batches taken).
   */
  takeRequest(address: string, unary: boolean): ProducerBatch[] {
    const taken: ProducerBatch[] = [];
    const listed = this.brokerQueues.get(address);
    if (listed === undefined) return taken;
    let acks: number | undefined;
    let bytes = 0;
    for (const queue of [...listed.values()]) {
      let fromQueue = 0;
      while (queue.batches.length > 0) {
        const head = queue.batches[0];
        if (acks !== undefined && head.settings.acks !== acks) break;
        if (!this.policy.mayTake(head, fromQueue, unary)) break;
        this.policy.coalesce(queue.batches, head);
        const resend = this.policy.isIdempotentResend(head);
        const size = this.policy.encode(head).length;
        if (taken.length > 0 && bytes + size > this.maxRequestSizeBytes) break;
        acks ??= head.settings.acks;
        taken.push(queue.batches.shift() as ProducerBatch);
        bytes += size;
        fromQueue++;
        if (resend) break;
      }
      listed.delete(queue.key);
      if (queue.batches.length > 0) listed.set(queue.key, queue);
      else this.unlist(queue);
      if (bytes >= this.maxRequestSizeBytes) break;
    }
    return taken;
  }
}
