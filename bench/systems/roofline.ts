/**
 * Child process: the roofline. Measures onnxruntime's matrix-multiply throughput on this machine
 * at the encoder's own shapes (read from the model's config.json; BGE-M3: hidden 1024, FFN 4096,
 * 16 heads), with the same session settings the package uses:
 *
 * - linear layers, fp32 `MatMul` and int8 `DynamicQuantizeMatMul` (what the quantized graph runs),
 *   `[rows, hidden] × [hidden, hidden]` (`hh`), `[rows, hidden] × [hidden, ffn]` (`hf`),
 *   `[rows, ffn] × [ffn, hidden]` (`fh`);
 * - attention products, fp32 batched `[heads, T, 64] × [heads, 64, T]` and `[heads, T, T] × [heads, T, 64]`.
 *
 * The parent turns the best rates into a tokens/s ceiling per workload: each text's matrix-multiply
 * FLOPs (no padding, nothing but the products) divided by these rates. No real system reaches it;
 * it says how much of the hardware the others use.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, encodeModel, floatTensor, node, valueInfo } from '../../src/model/onnx-graph.js';
import { emit, peakRssMB, readChildConfig, runChild } from '../lib/child-protocol.js';
import { quantizeLinearWeight } from '../lib/xlmr-graph.js';
import { Xoshiro128 } from '../lib/prng.js';

export interface RooflineRates {
  /** FLOP/s of the linear layers per dtype, best over the row counts tried, per weight shape. */
  linear: Record<'fp32' | 'int8', Record<'hh' | 'hf' | 'fh', number>>;
  /** FLOP/s of the attention products (fp32 in both graphs) by sequence length. */
  attention: Record<string, number>;
}

function random(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  new Xoshiro128(seed).fillUniform(a, 0, 1);
  return a;
}

async function session(model: Uint8Array, threads?: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(threads ? { intraOpNumThreads: threads } : {}),
  });
}

/** Seconds of the fastest of `reps` runs (after one warm-up). */
async function best(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>, reps: number): Promise<number> {
  await s.run(feeds);
  let fastest = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await s.run(feeds);
    fastest = Math.min(fastest, (performance.now() - t0) / 1000);
  }
  return fastest;
}

function linearGraph(k: number, n: number, dtype: 'fp32' | 'int8'): Uint8Array {
  const w = random(k * n, k * 31 + n); // torch layout [n, k]
  if (dtype === 'fp32') {
    return encodeModel({
      name: 'linear',
      node: [node('MatMul', ['x', 'w'], ['y'])],
      initializer: [floatTensor('w', [k, n], w)],
      input: [valueInfo('x', DataType.FLOAT, ['rows', k])],
      output: [valueInfo('y', DataType.FLOAT, ['rows', n])],
    });
  }
  const { q, scales } = quantizeLinearWeight(w, n, k);
  return encodeModel(
    {
      name: 'linear_int8',
      node: [node('DynamicQuantizeMatMul', ['x', 'wq', 'ws', 'wz'], ['y'], {}, { domain: 'com.microsoft' })],
      initializer: [
        { name: 'wq', dims: [k, n], dataType: DataType.INT8, rawData: new Uint8Array(q.buffer) },
        floatTensor('ws', [n], scales),
        { name: 'wz', dims: [n], dataType: DataType.INT8, rawData: new Uint8Array(n) },
      ],
      input: [valueInfo('x', DataType.FLOAT, ['rows', k])],
      output: [valueInfo('y', DataType.FLOAT, ['rows', n])],
    },
    [{ domain: 'com.microsoft', version: 1 }],
  );
}

function attentionGraph(heads: number, dh: number): Uint8Array {
  return encodeModel({
    name: 'attention_products',
    node: [node('MatMul', ['q', 'kt'], ['scores']), node('MatMul', ['scores', 'v'], ['ctx'])],
    input: [valueInfo('q', DataType.FLOAT, [heads, 't', dh]), valueInfo('kt', DataType.FLOAT, [heads, dh, 't']), valueInfo('v', DataType.FLOAT, [heads, 't', dh])],
    output: [valueInfo('ctx', DataType.FLOAT, [heads, 't', dh])],
  });
}

runChild(async () => {
  const config = readChildConfig();
  const model = JSON.parse(readFileSync(join(config.modelDir, 'config.json'), 'utf8')) as {
    hidden_size: number;
    intermediate_size: number;
    num_attention_heads: number;
  };
  const { hidden_size: h, intermediate_size: f, num_attention_heads: heads } = model;
  const t0 = performance.now();
  const rates: RooflineRates = { linear: { fp32: { hh: 0, hf: 0, fh: 0 }, int8: { hh: 0, hf: 0, fh: 0 } }, attention: {} };
  const shapes: ['hh' | 'hf' | 'fh', number, number][] = [
    ['hh', h, h],
    ['hf', h, f],
    ['fh', f, h],
  ];
  const rowsTried = [256, 1024, 2048];
  for (const dtype of ['fp32', 'int8'] as const) {
    for (const [key, k, n] of shapes) {
      const s = await session(linearGraph(k, n, dtype), config.threads);
      let bestRate = 0;
      for (const rows of rowsTried) {
        const x = new ort.Tensor('float32', random(rows * k, rows), [rows, k]);
        const seconds = await best(s, { x }, 3);
        bestRate = Math.max(bestRate, (2 * rows * k * n) / seconds);
      }
      rates.linear[dtype][key] = bestRate;
      await s.release();
    }
  }
  const dh = h / heads;
  const att = await session(attentionGraph(heads, dh), config.threads);
  for (const t of [128, 512, 2048]) {
    const feeds = {
      q: new ort.Tensor('float32', random(heads * t * dh, 1), [heads, t, dh]),
      kt: new ort.Tensor('float32', random(heads * dh * t, 2), [heads, dh, t]),
      v: new ort.Tensor('float32', random(heads * t * dh, 3), [heads, t, dh]),
    };
    const seconds = await best(att, feeds, t >= 2048 ? 2 : 4);
    rates.attention[String(t)] = (2 * 2 * heads * t * t * dh) / seconds;
  }
  await att.release();
  emit({ type: 'roofline', rates, seconds: (performance.now() - t0) / 1000, peakRssMB: peakRssMB() });
});
