import { defineConfig } from 'vitest/config';

// Deployment checks that need the TypeScript sources (run by .ci/helm-check.mjs).
export default defineConfig({
  test: {
    root: './',
    include: ['.ci/**/*.spec.ts'],
    testTimeout: 60_000,
  },
});
