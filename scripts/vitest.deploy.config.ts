import { defineConfig } from 'vitest/config';

// Deployment checks that need the TypeScript sources (run by scripts/helm-check.mjs).
export default defineConfig({
  test: {
    root: './',
    include: ['scripts/**/*.spec.ts'],
    testTimeout: 60_000,
  },
});
