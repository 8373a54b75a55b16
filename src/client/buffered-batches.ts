// Kafka's buffer.memory for the producer: every batch from the moment it opens until it is
// settled (acknowledged, or failed for good), and the record bytes they hold. While the bytes
// reach maxBufferedBytes a send() waits (isFull, anySettled); flush() waits until every batch is
// settled (allSettled).
//
// One per producer. The counts change synchronously, on append (added) and in each batch's
// settle callback, so they are consistent at every await of the Producer.
import type { ProducerBatch } from './accumulator.js';

export class BufferedBatches {
  /** Every batch not yet settled, wherever it is. */
  private readonly unsettled = new Set<ProducerBatch>();
  /** Record bytes appended and not yet settled; bounded by maxBufferedBytes. */
  private bufferedBytes = 0;

  constructor(private readonly maxBufferedBytes: number) {}

  /** A record of `recordSizeBytes` went into `batch`; `newBatch` when the record opened it. */
  added(batch: ProducerBatch, recordSizeBytes: number, newBatch: boolean): void {
    if (newBatch) {
      this.track(batch);
      this.bufferedBytes += batch.sizeBytes - recordSizeBytes;
    }
    this.bufferedBytes += recordSizeBytes;
  }

  /** Is every batch settled? */
  get isEmpty(): boolean {
    return this.unsettled.size === 0;
  }

  /** Do unsettled records hold maxBufferedBytes? A send waits until some settle. */
  get isFull(): boolean {
    return this.bufferedBytes >= this.maxBufferedBytes && this.unsettled.size > 0;
  }

  /** Resolves when any batch unsettled now settles, either way. */
  anySettled(): Promise<void> {
    return Promise.race([...this.unsettled].map((b) => b.done.then(
      () => undefined,
      () => undefined,
    )));
  }

  /** Resolves when every batch unsettled now has settled, either way. */
  allSettled(): Promise<unknown> {
    return Promise.allSettled([...this.unsettled].map((b) => b.done));
  }

  private track(batch: ProducerBatch): void {
    this.unsettled.add(batch);
    const settled = () => {
      this.unsettled.delete(batch);
      this.bufferedBytes -= batch.sizeBytes;
    };
    batch.done.then(settled, settled);
  }
}
