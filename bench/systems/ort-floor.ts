/**
 * Child process: the floor. Raw `onnxruntime-node` `session.run` on the same model file, over the
 * same pre-tokenized, length-sorted batches this package forms by default (its `planBatches` with
 * its default token budget), with the padded input tensors built before the clock starts. No
 * tokenization, no pooling, no copies out: the cost of the graph as exported, which this package's
 * overhead is measured against.
 */
import * as ort from 'onnxruntime-node';
import { DEFAULT_BATCH_PLAN, planBatches } from '../../src/model/batching.js';
import { padBatch } from '../../src/model/encoder.js';
import { currentRssMB, emit, measure, readChildConfig, readWorkloadFile, runChild } from '../lib/child-protocol.js';
import { graphFile } from '../lib/model-generator.js';
import { warmupIndex } from '../lib/warmup.js';

runChild(async () => {
  const config = readChildConfig();
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(`${config.modelDir}/${graphFile(config.dtype)}`, {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(config.threads ? { intraOpNumThreads: config.threads } : {}),
  });
  emit({ type: 'load', seconds: (performance.now() - t0) / 1000, rssMB: currentRssMB() });
  const feedsOf = (sequences: number[][]) => {
    const b = padBatch(sequences, 1);
    const shape = [b.batch, b.seqLen];
    return { input_ids: new ort.Tensor('int64', b.inputIds, shape), attention_mask: new ort.Tensor('int64', b.attentionMask, shape) };
  };
  await session.run(feedsOf([[0, 6, 2]]));
  for (const { file, repeat } of config.workloads) {
    const workload = readWorkloadFile(file);
    const batches = planBatches(workload.lengths, DEFAULT_BATCH_PLAN).map((indices) => feedsOf(indices.map((i) => workload.ids[i]!)));
    // Warm-up: the longest text alone, as every system does (see warmup.ts).
    const longest = warmupIndex(workload);
    if (longest !== undefined) await session.run(feedsOf([workload.ids[longest]!]));
    await measure(workload, repeat, async () => {
      for (const feeds of batches) await session.run(feeds);
      return { batches: batches.length };
    });
  }
  await session.release();
});
