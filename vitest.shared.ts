import { defineConfig } from 'vitest/config';

/**
 * Shared vitest settings: every package writes a JSON report next to its tests,
 * which `.ci/run` sums into its closing `N passed, N failed` line.
 */
export const sharedTestConfig = defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', ['json', { outputFile: '.vitest-results/results.json' }]],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real processes and threads; two cores do not gain from running files in parallel.
    fileParallelism: false,
  },
});
