import { defineConfig } from 'vitest/config';

// Every test is bounded: a hung test fails at testTimeout instead of stalling CI.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
