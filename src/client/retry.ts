// Exponential backoff with jitter for retriable failures (isRetriable from util/errors). The delay
// computation is pure; the caller hands in `random` and `sleep`, so tests run it without timers.
import { isRetriable, toKavkaError, type KavkaError } from '../util/errors.js';
import type { RetryOptions } from './types.js';

/** kafkajs's defaults: about 9 s of retrying before a send or an admin call gives up. */
export const DEFAULT_RETRY: RetryOptions = { retries: 5, initialRetryTimeMs: 300, maxRetryTimeMs: 30_000 };

/** Jitter spreads each delay over [1 - JITTER, 1 + JITTER] of its exponential base. */
const JITTER = 0.2;

export function resolveRetryOptions(partial: Partial<RetryOptions> | undefined): RetryOptions {
  const options = { ...DEFAULT_RETRY, ...partial };
  for (const key of ['retries', 'initialRetryTimeMs', 'maxRetryTimeMs'] as const) {
    const value = options[key];
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`retry.${key} must be a non-negative integer, got ${value}`);
  }
  return options;
}

/**
 * Delay before retry number `attempt` (0 = the first retry):
 * min(maxRetryTimeMs, initialRetryTimeMs * 2^attempt) scaled by a random factor in [0.8, 1.2].
 */
export function backoffMs(attempt: number, options: RetryOptions, random: () => number): number {
  const base = Math.min(options.maxRetryTimeMs, options.initialRetryTimeMs * 2 ** Math.min(attempt, 30));
  const factor = 1 - JITTER + 2 * JITTER * random();
  return Math.max(0, Math.round(Math.min(options.maxRetryTimeMs, base * factor)));
}

export interface RetryContext {
  options: RetryOptions;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Called before each retry, e.g. to refresh metadata. Its own failure is ignored. */
  beforeRetry?: (error: KavkaError, attempt: number) => Promise<void> | void;
}

/**
 * Runs `operation` until it succeeds, fails with a non-retriable error, or has been retried
 * `options.retries` times. Everything thrown comes out as a KavkaError.
 */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, context: RetryContext): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (thrown) {
      const error = toKavkaError(thrown);
      if (!isRetriable(error) || attempt >= context.options.retries) throw error;
      await context.sleep(backoffMs(attempt, context.options, context.random));
      try {
        await context.beforeRetry?.(error, attempt);
      } catch {
        // The next attempt reports the real failure.
      }
    }
  }
}
