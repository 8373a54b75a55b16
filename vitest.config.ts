import { defineConfig } from 'vitest/config';

// Every test is bounded: a hung test fails at testTimeout instead of stalling CI.
// Tests that run real broker processes are their own project and run one file at a time.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: ['test/process/**', 'test/cli/**'] },
      },
      {
        extends: true,
        test: { name: 'process', include: ['test/process/**/*.test.ts', 'test/cli/**/*.test.ts'], fileParallelism: false, testTimeout: 120_000 },
      },
    ],
  },
});
