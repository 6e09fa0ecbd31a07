/**
 * Child process: this package. `BgeM3Model.load` with its defaults, then `encode(texts)` per
 * workload with dense only or all three outputs: tokenization, batching, heads and per-text results
 * included in the time.
 */
import { BgeM3Model } from '../../src/index.js';
import { currentRssMB, emit, measure, readChildConfig, readWorkloadFile, runChild } from '../lib/child-protocol.js';
import { graphFile } from '../lib/model-generator.js';

runChild(async () => {
  const config = readChildConfig();
  const t0 = performance.now();
  const model = await BgeM3Model.load(config.modelDir, {
    modelFile: graphFile(config.dtype),
    ...(config.threads ? { threads: config.threads } : {}),
  });
  emit({ type: 'load', seconds: (performance.now() - t0) / 1000, rssMB: currentRssMB() });
  const all = config.outputs === 'all';
  const options = { returnDense: true, returnSparse: all, returnColbertVecs: all };
  await model.encode(['warm-up: allocate buffers before timing'], options);
  for (const { file, repeat } of config.workloads) {
    const workload = readWorkloadFile(file);
    await measure(workload, repeat, async () => {
      const out = await model.encode(workload.texts, options);
      if (out.denseVecs?.length !== workload.texts.length) throw new Error('encode returned the wrong number of vectors');
    });
  }
  await model.dispose();
});
