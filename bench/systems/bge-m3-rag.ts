/**
 * Child process: this package. `BgeM3Model.load` with its defaults, then `encode(texts)` per
 * workload with dense only or all three outputs: tokenization, batching, heads and per-text results
 * included in the time. From the plain model folder (`bge-m3-rag`), or as users load it, a repo id
 * from the Hugging Face cache (`bge-m3-rag-hub`, `config.hub`).
 */
import { BgeM3Model } from '../../src/index.js';
import { currentRssMB, emit, measure, readChildConfig, readWorkloadFile, runChild } from '../lib/child-protocol.js';
import { graphFile } from '../lib/model-generator.js';
import { warmupIndex } from '../lib/warmup.js';

runChild(async () => {
  const config = readChildConfig();
  const { hub } = config;
  const threads = config.threads ? { threads: config.threads } : {};
  const t0 = performance.now();
  const model = hub
    ? await BgeM3Model.load(hub.repo, { cacheDir: hub.cacheDir, offline: true, dtype: hub.dtype, ...threads })
    : await BgeM3Model.load(config.modelDir, { modelFile: graphFile(config.dtype), ...threads });
  emit({ type: 'load', seconds: (performance.now() - t0) / 1000, rssMB: currentRssMB(), attention: model.info.attention });
  const all = config.outputs === 'all';
  const options = { returnDense: true, returnSparse: all, returnColbertVecs: all };
  await model.encode(['warm-up: allocate buffers before timing'], options);
  for (const { file, repeat } of config.workloads) {
    const workload = readWorkloadFile(file);
    const longest = warmupIndex(workload);
    if (longest !== undefined) await model.encode([workload.texts[longest]!], options);
    await measure(workload, repeat, async () => {
      const out = await model.encode(workload.texts, options);
      if (out.denseVecs?.length !== workload.texts.length) throw new Error('encode returned the wrong number of vectors');
    });
  }
  await model.dispose();
});
