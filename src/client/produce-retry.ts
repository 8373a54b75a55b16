// How the producer treats a batch whose request failed or whose partition answered an error:
// retry it (after a backoff, within the retry count), retry it behind an epoch bump, or fail it
// for good (handlingOfBatchError); and the retry budget: each retry spends one of retry.retries
// and waits backoffMs (retry.ts) for the attempt it is (spendRetry, spendQueueRetries).
//
// Plain functions: they read the IdempotentState without changing it and change only the
// `attempts` of the batches they are handed (and the queue they are handed). The Producer calls
// them for every failed batch and carries out the answer (the backoff, the epoch bump, the failure).
import { isRetriable, type KavkaError } from '../util/errors.js';
import type { ProducerBatch } from './accumulator.js';
import type { IdempotentState } from './idempotence.js';
import { backoffMs } from './retry.js';
import type { RetryOptions } from './types.js';

export type BatchErrorHandling = 'retry' | 'bump-epoch-and-retry' | 'fail';

/**
 * What to do with `batch` after `error`; `idempotence` is undefined when the producer is not
 * idempotent. Retriable errors (isRetriable) are retried. The sequence errors of an idempotent
 * batch are all retried (within the retry count):
 * - DUPLICATE_SEQUENCE_NUMBER without offsets: the broker has the batch but could not say where
 *   (it repeated one inside an append of several); the retry goes alone and gets its offsets.
 * - OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH while an earlier
 *   batch of the partition is unacknowledged: this one arrived past the gap that one leaves, or
 *   both carry a state the broker lost; the earlier batch's fate decides, so wait behind it.
 * - The same for the oldest unacknowledged batch: the broker lost or rejects this producer's
 *   state (expired after producer.id.expiration.ms, or lost with an unclean leader change).
 *   Bump the epoch and retry under it from sequence 0 (Kafka 3 bumps on these too).
 */
export function handlingOfBatchError(batch: ProducerBatch, error: KavkaError, idempotence: IdempotentState | undefined): BatchErrorHandling {
  if (isRetriable(error)) return 'retry';
  if (idempotence === undefined || !idempotence.holds(batch)) return 'fail';
  switch (error.code) {
    case 'DUPLICATE_SEQUENCE_NUMBER':
      return 'retry';
    case 'OUT_OF_ORDER_SEQUENCE_NUMBER':
    case 'UNKNOWN_PRODUCER_ID':
    case 'INVALID_PRODUCER_EPOCH':
      return idempotence.hasEarlierUnacknowledged(batch) ? 'retry' : 'bump-epoch-and-retry';
    default:
      return 'fail';
  }
}

/** Spends one retry of `batch` and returns the backoff before it; undefined when it is out of retries. */
export function spendRetry(batch: ProducerBatch, options: RetryOptions, random: () => number): number | undefined {
  if (batch.attempts >= options.retries) return undefined;
  const delay = backoffMs(batch.attempts, options, random);
  batch.attempts++;
  return delay;
}

/**
 * Every batch of a partition queue spends a retry. Those out of retries leave `batches` and are
 * returned (in queue order) to be failed; `attempt` is the largest attempt spent, which sets the
 * queue's backoff.
 */
export function spendQueueRetries(batches: ProducerBatch[], options: RetryOptions): { exhausted: ProducerBatch[]; attempt: number } {
  const exhausted: ProducerBatch[] = [];
  let attempt = 0;
  for (const batch of [...batches]) {
    if (batch.attempts >= options.retries) {
      batches.splice(batches.indexOf(batch), 1);
      exhausted.push(batch);
    } else {
      attempt = Math.max(attempt, batch.attempts);
      batch.attempts++;
    }
  }
  return { exhausted, attempt };
}
