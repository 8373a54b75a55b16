// One ProduceStream (bidirectional gRPC stream) to one broker. Every request carries a
// correlation id and gets exactly one response with the same id; at most `maxInFlight` are
// outstanding (the producer checks `hasCapacity` before sending).
//
// A failed or ended stream fails every outstanding request with a retriable error and is reopened
// on the next send. A request that waits longer than its timeout cancels the stream (one slow
// request cannot be cancelled alone), which fails the others too; the producer retries them.
// If the broker does not implement ProduceStream (UNIMPLEMENTED), this falls back to unary
// Produce calls for good.
import * as grpc from '@grpc/grpc-js';
import { fromServiceError } from '../proto/index.js';
import { KavkaError } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import type { KavkaClient } from '../gen/kavka/v1/Kavka.js';
import type { ProduceRequest } from '../gen/kavka/v1/ProduceRequest.js';
import type { ProduceResponse__Output } from '../gen/kavka/v1/ProduceResponse.js';
import { callUnary } from './rpc.js';
import type { ClientLogger } from './types.js';

interface Outstanding {
  request: Omit<ProduceRequest, 'correlationId'>;
  timeoutMs: number;
  resolve: (response: ProduceResponse__Output) => void;
  reject: (error: KavkaError) => void;
  cancelTimer: () => void;
}

type Stream = grpc.ClientDuplexStream<ProduceRequest, ProduceResponse__Output>;

export class ProduceStreamConnection {
  private stream: Stream | undefined;
  private readonly outstanding = new Map<string, Outstanding>();
  private nextCorrelationId = 1;
  private unary: boolean;

  constructor(
    private readonly client: KavkaClient,
    private readonly address: string,
    private readonly maxInFlight: number,
    useUnary: boolean,
    private readonly clock: Clock,
    private readonly logger: ClientLogger | undefined,
  ) {
    this.unary = useUnary;
  }

  /** Sends unary Produce calls (asked for, or the broker has no ProduceStream); the broker may handle those out of order. */
  get usesUnary(): boolean {
    return this.unary;
  }

  get inFlight(): number {
    return this.outstanding.size;
  }

  get hasCapacity(): boolean {
    return this.outstanding.size < this.maxInFlight;
  }

  /** Sends one request; resolves with its response. `timeoutMs` bounds the wait. */
  send(request: Omit<ProduceRequest, 'correlationId'>, timeoutMs: number): Promise<ProduceResponse__Output> {
    const correlationId = String(this.nextCorrelationId++);
    return new Promise<ProduceResponse__Output>((resolve, reject) => {
      const cancelTimer = this.clock.schedule(timeoutMs, () => this.onTimeout(correlationId, timeoutMs));
      this.outstanding.set(correlationId, { request, timeoutMs, resolve, reject, cancelTimer });
      if (this.unary) this.sendUnary(correlationId, request, timeoutMs);
      else this.openStream().write({ ...request, correlationId });
    });
  }

  private sendUnary(correlationId: string, request: Omit<ProduceRequest, 'correlationId'>, timeoutMs: number): void {
    callUnary<ProduceResponse__Output>((options, cb) => this.client.Produce({ ...request, correlationId }, options, cb), timeoutMs).then(
      (response) => this.complete(correlationId, response),
      (error: KavkaError) => this.failOne(correlationId, error),
    );
  }

  private openStream(): Stream {
    if (this.stream !== undefined) return this.stream;
    const stream = this.client.ProduceStream();
    this.stream = stream;
    stream.on('data', (response: ProduceResponse__Output) => this.complete(response.correlationId, response));
    stream.on('error', (error: grpc.ServiceError) => {
      if (this.stream === stream) this.stream = undefined;
      if (error.code === grpc.status.UNIMPLEMENTED) {
        // Nothing was processed: send what is outstanding again, as unary calls.
        this.logger?.info({ address: this.address }, 'broker has no ProduceStream; using unary Produce');
        this.unary = true;
        for (const [id, entry] of this.outstanding) this.sendUnary(id, entry.request, entry.timeoutMs);
        return;
      }
      const failure = error.code === grpc.status.CANCELLED ? new KavkaError('NETWORK_EXCEPTION', `produce stream to ${this.address} was cancelled`, { cause: error }) : fromServiceError(error);
      this.failAll(failure);
    });
    stream.on('end', () => {
      if (this.stream === stream) this.stream = undefined;
      this.failAll(new KavkaError('NETWORK_EXCEPTION', `produce stream to ${this.address} ended with requests outstanding`));
    });
    return stream;
  }

  private complete(correlationId: string, response: ProduceResponse__Output): void {
    const entry = this.outstanding.get(correlationId);
    if (entry === undefined) {
      this.logger?.warn({ address: this.address, correlationId }, 'produce response for an unknown correlation id');
      return;
    }
    this.outstanding.delete(correlationId);
    entry.cancelTimer();
    entry.resolve(response);
  }

  private failOne(correlationId: string, error: KavkaError): void {
    const entry = this.outstanding.get(correlationId);
    if (entry === undefined) return;
    this.outstanding.delete(correlationId);
    entry.cancelTimer();
    entry.reject(error);
  }

  private failAll(error: KavkaError): void {
    for (const id of [...this.outstanding.keys()]) this.failOne(id, error);
  }

  private onTimeout(correlationId: string, timeoutMs: number): void {
    const error = new KavkaError('REQUEST_TIMED_OUT', `produce request to ${this.address} had no response after ${timeoutMs} ms`);
    if (this.unary) {
      this.failOne(correlationId, error);
      return;
    }
    const stream = this.stream;
    this.stream = undefined;
    this.failAll(error);
    stream?.cancel();
  }

  /** Ends the stream; outstanding requests are failed. Call after the producer has drained. */
  close(): void {
    const stream = this.stream;
    this.stream = undefined;
    this.failAll(new KavkaError('NETWORK_EXCEPTION', `produce stream to ${this.address} closed`));
    if (stream !== undefined) {
      stream.removeAllListeners('error');
      stream.on('error', () => undefined);
      stream.end();
      stream.cancel();
    }
  }
}
