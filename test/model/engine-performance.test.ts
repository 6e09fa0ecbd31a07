/**
 * The engine's performance work, checked for correctness (speed itself is measured by
 * `npm run bench`, never here):
 * - batch planning: a valid partition within the limits, optimal for its cost model, long
 *   documents never padded out by short texts;
 * - attention fusion: every layer of both fixture layouts and of the generated fp32/int8 graphs is
 *   rewritten, outputs equal the graph as exported (padded and unpadded batches), and graphs
 *   without the exact pattern are left alone;
 * - the encoder session reports the fusion, and it can be turned off.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../bench/lib/model-generator.js';
import { TINY_SHAPE } from '../../bench/lib/xlmr-shape.js';
import { BgeM3Model } from '../../src/index.js';
import { fuseAttention } from '../../src/model/attention-fusion.js';
import { batchCost, DEFAULT_BATCH_PLAN, planBatches } from '../../src/model/batching.js';
import { EncoderSession, padBatch } from '../../src/model/encoder.js';
import { buildHeadsGraph } from '../../src/model/heads.js';
import { DataType, encodeModel, node, onnx, valueInfo } from '../../src/model/onnx-graph.js';
import { TINY_DIR, TINY_M3_DIR } from '../helpers.js';

function lcg(seed: number) {
  let s = seed;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

describe('planBatches', () => {
  const check = (lengths: number[], options = DEFAULT_BATCH_PLAN) => {
    const batches = planBatches(lengths, options);
    expect(batches.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    for (const b of batches) {
      const longest = Math.max(...b.map((i) => lengths[i]!));
      if (b.length > 1) {
        expect(b.length).toBeLessThanOrEqual(options.batchSize);
        expect(b.length * longest).toBeLessThanOrEqual(options.maxBatchTokens);
      }
    }
    return batches;
  };

  it('covers every text once, within batchSize and the token budget', () => {
    const rnd = lcg(1);
    for (let trial = 0; trial < 20; trial++) {
      const lengths = Array.from({ length: 1 + Math.floor(rnd() * 300) }, () => 3 + Math.floor(rnd() ** 3 * 3000));
      check(lengths);
      check(lengths, { batchSize: 7, maxBatchTokens: 400 });
    }
    expect(planBatches([], DEFAULT_BATCH_PLAN)).toEqual([]);
  });

  it('runs a long document alone instead of padding short texts to its length', () => {
    const lengths = [20, 1000, 18, 25, 22, 19, 30, 21];
    const batches = check(lengths);
    expect(batches[0]).toEqual([1]); // longest first, alone
    expect(batches.slice(1).flat().sort()).toEqual([0, 2, 3, 4, 5, 6, 7]);
  });

  it('fills batches with texts of equal length up to the limits', () => {
    // As few runs as the limits allow: 2048 / 16 = 128 texts per batch, then batchSize 256.
    expect(check(Array.from({ length: 600 }, () => 16))).toHaveLength(5);
    expect(check(Array.from({ length: 600 }, () => 4))).toHaveLength(3);
  });

  it('finds the cheapest cut of the sorted order (brute force on small inputs)', () => {
    const rnd = lcg(7);
    for (let trial = 0; trial < 30; trial++) {
      const n = 1 + Math.floor(rnd() * 9);
      const lengths = Array.from({ length: n }, () => 2 + Math.floor(rnd() ** 2 * 700));
      const options = { batchSize: 4, maxBatchTokens: 1200 };
      const cost = (batches: number[][]) => batches.reduce((s, b) => s + batchCost(b.length, Math.max(...b.map((i) => lengths[i]!))), 0);
      const sorted = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
      let bestCost = Infinity;
      for (let mask = 0; mask < 1 << (n - 1); mask++) {
        const parts: number[][] = [[sorted[0]!]];
        for (let i = 1; i < n; i++) (mask & (1 << (i - 1)) ? parts.push([sorted[i]!]) : parts[parts.length - 1]!.push(sorted[i]!));
        const valid = parts.every((p) => p.length === 1 || (p.length <= options.batchSize && p.length * Math.max(...p.map((i) => lengths[i]!)) <= options.maxBatchTokens));
        if (valid) bestCost = Math.min(bestCost, cost(parts));
      }
      expect(cost(check(lengths, options))).toBeCloseTo(bestCost, 6);
    }
  });
});

/** Runs a graph (path or bytes) on a batch and returns the first output. */
async function run(model: string | Uint8Array, sequences: number[][], folder?: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model as string, {
    logSeverityLevel: 3,
    ...(folder ? { extra: { session: { model_external_initializers_file_folder_path: folder } } } : {}),
  });
  try {
    const b = padBatch(sequences, 1);
    const shape = [b.batch, b.seqLen];
    const out = await s.run({ input_ids: new ort.Tensor('int64', b.inputIds, shape), attention_mask: new ort.Tensor('int64', b.attentionMask, shape) });
    return out[s.outputNames[0]!]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]!) || Number.isFinite(b[i]!)) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Zeroes the padded rows of a `[batch, seq, width]` output (they are never read). */
function realRows(data: Float32Array, sequences: number[][], width: number): Float32Array {
  const seq = Math.max(...sequences.map((s) => s.length));
  const out = new Float32Array(data.length);
  sequences.forEach((s, b) => out.set(data.subarray(b * seq * width, (b * seq + s.length) * width), b * seq * width));
  return out;
}

describe('attention fusion', () => {
  let root: string;
  let generated: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'bge-m3-fusion-'));
    generated = join(root, 'tiny');
    generateModel(generated, { shape: TINY_SHAPE, seed: 11 });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const padded = [
    [0, 35, 400, 1200, 77, 9, 2],
    [0, 44, 2],
    [0, 5, 6, 7, 8, 2],
  ];
  const unpadded = [
    [0, 35, 400, 1200, 77, 9, 2],
    [0, 44, 45, 46, 47, 48, 2],
  ];

  for (const [label, graph, width] of [
    ['fixture onnx/ (torch export)', () => join(TINY_DIR, 'onnx/model.onnx'), 32],
    ['fixture m3/ (heads in the graph)', () => join(TINY_M3_DIR, 'model.onnx'), 32],
    ['generated fp32', () => join(generated, 'onnx/model.onnx'), 32],
    ['generated int8', () => join(generated, 'onnx/model_quantized.onnx'), 32],
  ] as const) {
    it(`${label}: rewrites every layer and matches the exported graph`, async () => {
      const path = graph();
      const fused = fuseAttention(readFileSync(path));
      expect(fused?.fused).toBe(2);
      const rewritten = onnx.ModelProto.decode(fused!.model);
      const ops = rewritten.graph!.node!.map((n) => n.opType);
      expect(ops.filter((o) => o === 'If')).toHaveLength(2);
      expect(ops).not.toContain('Softmax');
      const folder = join(path, '..');
      for (const batch of [padded, unpadded]) {
        const want = await run(path, batch);
        const got = await run(fused!.model, batch, folder);
        if (label.includes('m3')) {
          expect(maxDiff(got, want)).toBeLessThan(1e-5); // dense_vecs: one row per text
        } else {
          expect(maxDiff(realRows(got, batch, width), realRows(want, batch, width))).toBeLessThan(1e-5);
        }
      }
    });
  }

  it('leaves graphs without the pattern alone', () => {
    // The heads graph has no attention; a graph without attention_mask cannot be masked.
    expect(fuseAttention(buildHeadsGraph(8, {}))).toBeUndefined();
    const raw = onnx.ModelProto.decode(readFileSync(join(generated, 'onnx/model.onnx')));
    raw.graph!.input = raw.graph!.input!.filter((i) => i.name !== 'attention_mask');
    expect(fuseAttention(onnx.ModelProto.encode(raw).finish())).toBeUndefined();
  });

  it('does not fuse when the additive mask is not derived from attention_mask', () => {
    // Softmax(Q·Kᵀ/8 + bias) · V with a free bias input: not a key-padding mask.
    const model = encodeModel({
      name: 'not_a_padding_mask',
      node: [
        node('Reshape', ['q', 'shape'], ['qr']),
        node('Transpose', ['qr'], ['qt'], { perm: [0, 2, 1, 3] }),
        node('Reshape', ['k', 'shape'], ['kr']),
        node('Transpose', ['kr'], ['kt'], { perm: [0, 2, 3, 1] }),
        node('Reshape', ['v', 'shape'], ['vr']),
        node('Transpose', ['vr'], ['vt'], { perm: [0, 2, 1, 3] }),
        node('MatMul', ['qt', 'kt'], ['s']),
        node('Div', ['s', 'eight'], ['scaled']),
        node('Add', ['scaled', 'bias'], ['biased']),
        node('Softmax', ['biased'], ['p'], { axis: -1 }),
        node('MatMul', ['p', 'vt'], ['c']),
        node('Transpose', ['c'], ['ct'], { perm: [0, 2, 1, 3] }),
        node('Reshape', ['ct', 'merged'], ['out']),
        node('Identity', ['attention_mask'], ['unused']),
      ],
      initializer: [
        { name: 'shape', dims: [4], dataType: DataType.INT64, rawData: new Uint8Array(BigInt64Array.from([0n, 0n, 2n, 4n]).buffer) },
        { name: 'merged', dims: [3], dataType: DataType.INT64, rawData: new Uint8Array(BigInt64Array.from([0n, 0n, 8n]).buffer) },
        { name: 'eight', dims: [], dataType: DataType.FLOAT, rawData: new Uint8Array(new Float32Array([8]).buffer) },
      ],
      input: ['q', 'k', 'v'].map((n) => valueInfo(n, DataType.FLOAT, ['b', 's', 8])).concat([
        valueInfo('bias', DataType.FLOAT, ['b', 1, 1, 's']),
        valueInfo('attention_mask', DataType.INT64, ['b', 's']),
      ]),
      output: [valueInfo('out', DataType.FLOAT, ['b', 's', 8]), valueInfo('unused', DataType.INT64, ['b', 's'])],
    });
    expect(fuseAttention(model)).toBeUndefined();
  });

  it('EncoderSession reports the fused layers; fuseAttention: false or the environment variable turns it off', async () => {
    const graph = join(generated, 'onnx/model.onnx');
    const on = await EncoderSession.load(graph, { logSeverityLevel: 3 });
    const off = await EncoderSession.load(graph, { logSeverityLevel: 3 }, { fuseAttention: false });
    // The variable is read where load options are resolved: BgeM3Model.load.
    process.env.BGE_M3_RAG_FUSE_ATTENTION = '0';
    const env = await BgeM3Model.load(generated, { worker: false }).finally(() => delete process.env.BGE_M3_RAG_FUSE_ATTENTION);
    try {
      expect([on.fusedAttentionLayers, off.fusedAttentionLayers, env.info.attention.layers]).toEqual([2, 0, 0]);
      expect(off.attention.reason).toMatch(/turned off/);
      expect(env.info.attention).toMatchObject({ fused: false, reason: expect.stringMatching(/turned off/) });
      const b = padBatch(padded, 1);
      const a = (await on.run(b, ['last_hidden_state'])).last_hidden_state!.data;
      const c = (await off.run(b, ['last_hidden_state'])).last_hidden_state!.data;
      expect(maxDiff(realRows(a, padded, 32), realRows(c, padded, 32))).toBeLessThan(1e-5);
    } finally {
      await Promise.all([on.release(), off.release(), env.dispose()]);
    }
  });
});
