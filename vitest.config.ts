import { defineConfig } from 'vitest/config';

// Every test is bounded: a hung test fails at testTimeout instead of stalling CI.
// Tests that run real broker processes (and the short chaos profile) are their own project, run
// one file at a time and only after the unit project has finished (sequence.groupOrder), so their
// brokers never compete for the cores with the timing of in-process cluster tests.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: ['test/process/**', 'test/cli/**'], sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'process', include: ['test/process/**/*.test.ts', 'test/cli/**/*.test.ts'], fileParallelism: false, testTimeout: 120_000, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
