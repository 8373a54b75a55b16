// The streaming calls a server has open. On shutdown each is asked to finish: it stops taking
// new work, answers what it already took, and ends with a retriable BROKER_NOT_AVAILABLE status,
// so clients move on at once instead of holding the server's graceful shutdown open.
import type * as grpc from '@grpc/grpc-js';
import { KavkaError } from '../util/errors.js';
import { toServiceError } from '../proto/index.js';

export class StreamRegistry {
  private readonly open = new Set<() => void>();
  private closing = false;

  /** Registers a stream's close function; returns the function that unregisters it. */
  add(close: () => void): () => void {
    if (this.closing) {
      close();
      return () => undefined;
    }
    this.open.add(close);
    return () => this.open.delete(close);
  }

  get isClosing(): boolean {
    return this.closing;
  }

  closeAll(): void {
    this.closing = true;
    for (const close of [...this.open]) close();
    this.open.clear();
  }
}

export function shuttingDownError(nodeId: number): KavkaError {
  return new KavkaError('BROKER_NOT_AVAILABLE', `node ${nodeId} is shutting down; retry on another broker or after it restarts`, { retriable: true });
}

/**
 * Ends a server stream with a failure status. grpc-js sends the status (and its ErrorInfo
 * details) only when the error is emitted; `destroy(error)` would drop it.
 */
export function failStream(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, error: ReturnType<typeof toServiceError>): void {
  call.emit('error', error);
}
