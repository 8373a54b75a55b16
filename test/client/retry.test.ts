import { describe, expect, it } from 'vitest';
import { backoffMs, withRetry } from '../../src/client/retry.js';
import { KavkaError } from '../../src/util/errors.js';

const options = { retries: 3, initialRetryTimeMs: 100, maxRetryTimeMs: 1_000 };

describe('backoffMs', () => {
  it('doubles from the initial time and caps at the maximum', () => {
    const middle = () => 0.5; // jitter factor exactly 1
    expect([0, 1, 2, 3, 4, 10].map((attempt) => backoffMs(attempt, options, middle))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('spreads each delay by +-20% with the injected random', () => {
    expect(backoffMs(1, options, () => 0)).toBe(160);
    expect(backoffMs(1, options, () => 0.999999)).toBe(240);
  });
});

describe('withRetry', () => {
  const context = (sleeps: number[]) => ({ options, random: () => 0.5, sleep: async (ms: number) => void sleeps.push(ms) });

  it('retries a retriable error and returns the later success', async () => {
    const sleeps: number[] = [];
    let calls = 0;
    const result = await withRetry(async () => {
      if (++calls < 3) throw new KavkaError('NOT_LEADER_OR_FOLLOWER', 'moved');
      return 'ok';
    }, context(sleeps));
    expect(result).toBe('ok');
    expect(sleeps).toEqual([100, 200]);
  });

  it('gives up after the configured retries with the last error', async () => {
    const sleeps: number[] = [];
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new KavkaError('LEADER_NOT_AVAILABLE', `attempt ${calls}`);
      }, context(sleeps)),
    ).rejects.toMatchObject({ code: 'LEADER_NOT_AVAILABLE', message: 'attempt 4' });
    expect(calls).toBe(4);
  });

  it('does not retry a non-retriable error', async () => {
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new KavkaError('TOPIC_ALREADY_EXISTS', 'exists');
      }, context([])),
    ).rejects.toMatchObject({ code: 'TOPIC_ALREADY_EXISTS' });
    expect(calls).toBe(1);
  });

  it('refreshes before each retry and tolerates a failing refresh', async () => {
    const refreshes: number[] = [];
    let calls = 0;
    await withRetry(
      async () => {
        if (++calls < 3) throw new KavkaError('NOT_LEADER_OR_FOLLOWER', 'moved');
      },
      {
        ...context([]),
        beforeRetry: (_error, attempt) => {
          refreshes.push(attempt);
          throw new Error('metadata down');
        },
      },
    );
    expect(refreshes).toEqual([0, 1]);
  });
});
