import { defineConfig } from 'vitest/config';

/**
 * Shared vitest settings: every package writes a JSON report next to its tests,
 * which `.ci/run` sums into its closing `N passed, N failed` line.
 */
export const sharedTestConfig = defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // VITEST_REPORT names another report: CI's second run of a suite (the portable path) keeps both.
    reporters: ['default', ['json', { outputFile: process.env.VITEST_REPORT ?? '.vitest-results/results.json' }]],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real processes and threads; two cores do not gain from running files in parallel.
    fileParallelism: false,
  },
});
