import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests import the package by name; it resolves through package.json
    // "exports" to dist/, so `npm test` runs against what is shipped.
    testTimeout: 60000,
    hookTimeout: 120000,
    pool: 'forks',
  },
});
