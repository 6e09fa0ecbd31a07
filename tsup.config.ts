import { defineConfig } from 'tsup';

// Dual ESM + CJS build with declarations for each entry point. Dependencies and peers stay external,
// so the CJS build requires the frameworks' CJS builds and the ESM build imports their ESM builds
// (the user's own condition decides; no dual-package mixing).
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    langchain: 'src/langchain.ts',
    llamaindex: 'src/llamaindex.ts',
    postgres: 'src/postgres.ts',
    cli: 'src/cli.ts',
    // The worker thread that owns the onnxruntime sessions (started by src/model/inference-backend.ts).
    'inference-worker': 'src/model/inference-worker.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  shims: true,
  // p-limit is ESM-only; bundling it (a few lines) keeps the CJS build working on every Node 20.x,
  // including releases before require(esm).
  noExternal: ['p-limit', 'yocto-queue'],
});
