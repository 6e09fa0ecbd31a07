/**
 * Child process: transformers.js (`@huggingface/transformers`, installed in this folder), called
 * the way LangChain's `HuggingFaceTransformersEmbeddings` calls it with BGE-M3's CLS pooling:
 * `pipeline('feature-extraction', model)`, then `(await pipe(texts, { pooling: 'cls',
 * normalize: true })).tolist()` on chunks of 512 texts (LangChain's default `batchSize`: one padded
 * batch for these workloads), newlines replaced by spaces. Mode `single` calls it one text at a
 * time (LangChain's `embedQuery`, or a loop over texts).
 *
 * LangChain's class is not imported itself because it resolves `@huggingface/transformers` from
 * the package's node_modules, where the library is deliberately not installed; the calls above
 * are its code path. The model is read from the same local folder (no network), with
 * transformers.js's default session options (onnxruntime's defaults: all graph optimizations,
 * one thread per physical core).
 */
import { basename, dirname } from 'node:path';
import { currentRssMB, emit, measure, readChildConfig, readWorkloadFile, runChild } from '../lib/child-protocol.js';
import { warmupIndex } from '../lib/warmup.js';

/** The part of `@huggingface/transformers` used here (typed locally: the library is installed on demand). */
interface TransformersJs {
  env: { allowRemoteModels: boolean; allowLocalModels: boolean; localModelPath: string };
  pipeline(
    task: 'feature-extraction',
    model: string,
    options: { dtype: string; session_options?: Record<string, unknown> },
  ): Promise<{
    (texts: string[], options: { pooling: 'cls'; normalize: boolean }): Promise<{ tolist(): number[][] }>;
    dispose(): Promise<void>;
  }>;
}

// A computed specifier keeps the package's type-check independent of this folder being installed.
const TRANSFORMERS_JS = '@huggingface/transformers';

const LANGCHAIN_BATCH_SIZE = 512;

runChild(async () => {
  const config = readChildConfig();
  const { env, pipeline } = (await import(TRANSFORMERS_JS)) as TransformersJs;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(config.modelDir)}/`;
  const t0 = performance.now();
  const pipe = await pipeline('feature-extraction', basename(config.modelDir), {
    dtype: config.dtype === 'fp32' ? 'fp32' : 'q8',
    ...(config.threads ? { session_options: { intraOpNumThreads: config.threads } } : {}),
  });
  emit({ type: 'load', seconds: (performance.now() - t0) / 1000, rssMB: currentRssMB() });
  const options = { pooling: 'cls', normalize: true } as const;
  const embed = async (texts: string[]) => (await pipe(texts, options)).tolist();
  await embed(['warm-up: allocate buffers before timing']);
  for (const { file, repeat } of config.workloads) {
    const workload = readWorkloadFile(file);
    const texts = workload.texts.map((t) => t.replace(/\n/g, ' '));
    const longest = warmupIndex(workload);
    if (longest !== undefined) await embed([texts[longest]!]);
    await measure(workload, repeat, async () => {
      let vectors = 0;
      if (config.mode === 'single') {
        for (const t of texts) vectors += (await embed([t])).length;
      } else {
        for (let i = 0; i < texts.length; i += LANGCHAIN_BATCH_SIZE) vectors += (await embed(texts.slice(i, i + LANGCHAIN_BATCH_SIZE))).length;
      }
      if (vectors !== texts.length) throw new Error(`transformers.js returned ${vectors} vectors for ${texts.length} texts`);
      const longest = Math.max(...workload.lengths);
      return config.mode === 'single' ? {} : { paddedTokens: Math.min(texts.length, LANGCHAIN_BATCH_SIZE) * longest };
    });
  }
  await pipe.dispose();
});
