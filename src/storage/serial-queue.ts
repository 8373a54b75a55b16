// Runs async tasks one at a time in arrival order: a partition log's appends, rolls, retention
// and close, so offsets are assigned and written in order. A failed task does not stop the ones
// behind it. Reads never enter the queue.
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  /** Tasks queued or running. */
  get length(): number {
    return this.queued;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.queued += 1;
    const result = this.tail.then(task).finally(() => {
      this.queued -= 1;
    });
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
