// The producer's record accumulator (Kafka's RecordAccumulator): records wait per partition in
// open batches until a batch reaches batchSizeBytes (it is then "full") or has waited lingerMs.
// Pure data structure: no timers, no I/O; the producer asks drainReady(nowMs) and
// nextDeadlineMs() and owns the timer.
//
// Invariants: each partition has at most one open batch, and it is the last in its queue; a
// batch holds at least one record; a full batch is never appended to. A record larger than
// batchSizeBytes gets a batch of its own.
import type { CompressionName, RecordInput } from '../codec/record-batch.js';
import type { KavkaError } from '../util/errors.js';
import { assert } from '../util/assert.js';
import type { Acks } from './types.js';

/** Fixed bytes of a RecordBatch v2 header. */
const BATCH_OVERHEAD_BYTES = 61;

export interface BatchResult {
  baseOffset: bigint;
  logAppendTime: bigint;
  logStartOffset: bigint;
}

/** Settings that must be equal for records to share a batch (and a request). */
export interface BatchSettings {
  acks: Acks;
  compression: CompressionName;
  timeoutMs: number;
}

export class ProducerBatch {
  readonly records: RecordInput[] = [];
  sizeBytes = BATCH_OVERHEAD_BYTES;
  full = false;
  /** Retries done so far (the producer bumps it). */
  attempts = 0;
  /** Times the batch went out in a request (the producer bumps it). */
  sends = 0;
  /**
   * Position among all batches the producer drained, in drain order (-1 before): a retried batch
   * goes back into its partition's queue before every later batch.
   */
  ordinal = -1;
  /** The sequence of an idempotent producer's batch, given when first encoded; -1 = none. */
  baseSequence = -1;
  /**
   * Encoded bytes, built once when the batch is first sent and reused by retries, so a retry is
   * byte-identical. Cleared only when an idempotent producer bumps its epoch (new epoch and sequence).
   */
  encoded: Buffer | undefined;
  readonly done: Promise<BatchResult>;
  private settle!: { resolve: (r: BatchResult) => void; reject: (e: KavkaError) => void };
  private settled = false;
  /** Batches merged into this one before it was first encoded, with where their records start here. */
  private readonly absorbed: { batch: ProducerBatch; firstIndex: number }[] = [];

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly settings: BatchSettings,
    readonly createdMs: number,
  ) {
    this.done = new Promise<BatchResult>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // A batch nobody awaits (its send() already failed elsewhere) must not crash the process.
    this.done.catch(() => undefined);
  }

  get recordCount(): number {
    return this.records.length;
  }

  get isSettled(): boolean {
    return this.settled;
  }

  /**
   * Moves `other`'s records to the end of this batch (both not yet encoded, same partition and
   * settings); `other` is settled with this batch, its offsets shifted by where its records landed.
   */
  absorb(other: ProducerBatch): void {
    assert(this.encoded === undefined && other.encoded === undefined, 'only batches not yet encoded merge');
    assert(other.topic === this.topic && other.partition === this.partition && sameSettings(other.settings, this.settings), 'only batches of one partition and settings merge');
    this.absorbed.push({ batch: other, firstIndex: this.records.length });
    this.records.push(...other.records);
    this.sizeBytes += other.sizeBytes - BATCH_OVERHEAD_BYTES;
  }

  succeed(result: BatchResult): void {
    if (this.settled) return;
    this.settled = true;
    this.settle.resolve(result);
    for (const { batch, firstIndex } of this.absorbed) {
      batch.succeed({ ...result, baseOffset: result.baseOffset < 0n ? result.baseOffset : result.baseOffset + BigInt(firstIndex) });
    }
  }

  fail(error: KavkaError): void {
    if (this.settled) return;
    this.settled = true;
    this.settle.reject(error);
    for (const { batch } of this.absorbed) batch.fail(error);
  }
}

function sameSettings(a: BatchSettings, b: BatchSettings): boolean {
  return a.acks === b.acks && a.compression === b.compression && a.timeoutMs === b.timeoutMs;
}

export class RecordAccumulator {
  /** Per "topic\u0000partition": queued batches, oldest first; only the last may be open. */
  private readonly queues = new Map<string, ProducerBatch[]>();
  private pendingBatches = 0;

  constructor(
    private readonly batchSizeBytes: number,
    private readonly lingerMs: number,
  ) {}

  /**
   * Adds a record to the partition's open batch, opening a new one when the open batch is full,
   * would overflow, or has other settings. Returns the batch the record went into.
   */
  append(topic: string, partition: number, record: RecordInput, recordSizeBytes: number, settings: BatchSettings, nowMs: number): { batch: ProducerBatch; newBatch: boolean } {
    const key = `${topic}\u0000${partition}`;
    let queue = this.queues.get(key);
    if (queue === undefined) {
      queue = [];
      this.queues.set(key, queue);
    }
    let batch = queue[queue.length - 1];
    let newBatch = false;
    if (batch !== undefined && !batch.full && (!sameSettings(batch.settings, settings) || batch.sizeBytes + recordSizeBytes > this.batchSizeBytes)) {
      batch.full = true;
    }
    if (batch === undefined || batch.full) {
      batch = new ProducerBatch(topic, partition, settings, nowMs);
      queue.push(batch);
      this.pendingBatches++;
      newBatch = true;
    }
    batch.records.push(record);
    batch.sizeBytes += recordSizeBytes;
    if (batch.sizeBytes >= this.batchSizeBytes) batch.full = true;
    return { batch, newBatch };
  }

  /**
   * Removes and returns the batches ready to send: full ones, ones that waited lingerMs, and,
   * with `flush`, every batch.
   */
  drainReady(nowMs: number, flush: boolean): ProducerBatch[] {
    const ready: ProducerBatch[] = [];
    for (const [key, queue] of this.queues) {
      while (queue.length > 0) {
        const head = queue[0];
        if (!(flush || head.full || nowMs - head.createdMs >= this.lingerMs)) break;
        head.full = true;
        ready.push(queue.shift() as ProducerBatch);
        this.pendingBatches--;
      }
      if (queue.length === 0) this.queues.delete(key);
    }
    return ready;
  }

  /** When the next batch becomes ready by lingering, or undefined when nothing is queued. */
  nextDeadlineMs(): number | undefined {
    let deadline: number | undefined;
    for (const queue of this.queues.values()) {
      const head = queue[0];
      if (head === undefined) continue;
      const due = head.full ? head.createdMs : head.createdMs + this.lingerMs;
      deadline = deadline === undefined ? due : Math.min(deadline, due);
    }
    return deadline;
  }

  hasFullBatch(): boolean {
    for (const queue of this.queues.values()) if (queue[0]?.full) return true;
    return false;
  }

  get size(): number {
    return this.pendingBatches;
  }
}
