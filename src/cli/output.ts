// Buffered writes to stdout that respect backpressure: chunks collect up to a size, then go out in
// one write; write() awaits 'drain' when the stream's buffer is full, so a slow reader slows
// the consumer instead of growing memory. `unbuffered` (-u) writes each chunk at once.
import type { Writable } from 'node:stream';

const CHUNK_BYTES = 64 * 1024;

export class OutputWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private broken = false;

  constructor(
    private readonly stream: Writable,
    private readonly unbuffered: boolean,
  ) {
    // EPIPE (the reader went away, e.g. `| head`): stop writing; the command ends normally.
    stream.on('error', () => {
      this.broken = true;
    });
  }

  get closed(): boolean {
    return this.broken;
  }

  async write(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.unbuffered || this.pendingBytes >= CHUNK_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0 || this.broken) {
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.stream.write(data)) await new Promise<void>((resolve) => {
      const done = () => {
        this.stream.off('drain', done);
        this.stream.off('error', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('error', done);
    });
  }

  /** Resolves once everything written so far has been handed to the OS. */
  async end(): Promise<void> {
    await this.flush();
    if (this.broken) return;
    await new Promise<void>((resolve) => this.stream.write('', () => resolve()));
  }
}
