import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Model loading and onnxruntime runs take seconds on a 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // onnxruntime already uses every core inside one test file.
    fileParallelism: false,
  },
});
