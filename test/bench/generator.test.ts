/**
 * The benchmark's model generator, checked on the conformance fixture's tiny shape (hidden 32,
 * 2 layers, 4 heads, FFN 64, vocab 8002):
 * - same files, config, input/output names, types and shapes as the fixture;
 * - the fp32 graph equals an independent float64 XLM-RoBERTa forward pass of the same weights
 *   (so the architecture is right: positions, mask, scaling, residuals, post-LN, exact GELU);
 * - the engine loads it and produces all three outputs matching the float64 reference;
 * - the fp16 heads read back through the engine's torch reader;
 * - the int8 variant is the dynamically quantized pattern onnxruntime fuses, and stays close to fp32;
 * - output is deterministic in the seed; the model cache reuses a finished folder.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float32ToHalf } from '../../bench/lib/fp16.js';
import { ensureModel, generateModel, modelDirName } from '../../bench/lib/model-generator.js';
import { embeddingSpecs, headSpecs, weightChunks, weightValues } from '../../bench/lib/random-weights.js';
import { hfConfig, TINY_SHAPE } from '../../bench/lib/xlmr-shape.js';
import { BgeM3Model } from '../../src/index.js';
import { onnx } from '../../src/model/onnx-graph.js';
import { halfToFloat32 } from '../../src/shared/fp16.js';
import { readTorchStateDict } from '../../src/model/weights/torch-state-dict.js';
import { TINY_DIR } from '../helpers.js';
import { erf, positionIds, referenceHeads, xlmrForward } from './xlmr-reference.js';

const SEED = 7;
const TEXTS = [
  'BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.',
  'Привет, мир! 你好，世界。',
  'a',
];

let root: string;
let dir: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'bge-m3-gen-'));
  dir = join(root, 'tiny');
  generateModel(dir, { shape: TINY_SHAPE, seed: SEED });
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const roundHalf = (a: Float32Array) => halfToFloat32(float32ToHalf(a));

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function opTypes(path: string): Map<string, number> {
  const m = onnx.ModelProto.decode(readFileSync(path));
  const counts = new Map<string, number>();
  for (const n of m.graph!.node!) counts.set(n.opType!, (counts.get(n.opType!) ?? 0) + 1);
  return counts;
}

async function optimizedOpTypes(graph: string): Promise<Map<string, number>> {
  const out = join(root, `optimized-${Math.random().toString(36).slice(2)}.onnx`);
  const s = await ort.InferenceSession.create(graph, { graphOptimizationLevel: 'all', optimizedModelFilePath: out, logSeverityLevel: 3 });
  await s.release();
  return opTypes(out);
}

describe('layout: the same files, config and graph signature as the conformance fixture', () => {
  it('writes every file of the fixture layout plus the int8 graph', () => {
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'sentencepiece.bpe.model', 'colbert_linear.pt', 'sparse_linear.pt']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    expect(readdirSync(join(dir, 'onnx')).sort()).toEqual(
      expect.arrayContaining(['config.json', 'model.onnx', 'model.onnx_data', 'model_quantized.onnx', 'model_quantized.onnx_data']),
    );
    expect(hfConfig(TINY_SHAPE)).toEqual(JSON.parse(readFileSync(join(TINY_DIR, 'config.json'), 'utf8')));
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toEqual(JSON.parse(readFileSync(join(TINY_DIR, 'config.json'), 'utf8')));
  });

  it('keeps the weights in model.onnx_data (external data), not in the graph file', () => {
    const m = onnx.ModelProto.decode(readFileSync(join(dir, 'onnx/model.onnx')));
    const word = m.graph!.initializer!.find((t) => t.name === 'embeddings.word_embeddings.weight')!;
    expect(word.dataLocation).toBe(onnx.TensorProto.DataLocation.EXTERNAL);
    expect(Object.fromEntries(word.externalData!.map((e) => [e.key, e.value]))).toMatchObject({ location: 'model.onnx_data' });
    expect(word.dims!.map(Number)).toEqual([8002, 32]);
  });

  for (const graph of ['onnx/model.onnx', 'onnx/model_quantized.onnx']) {
    it(`${graph} has the fixture's input/output names, types and shapes`, async () => {
      const fixture = await ort.InferenceSession.create(join(TINY_DIR, 'onnx/model.onnx'));
      const generated = await ort.InferenceSession.create(join(dir, graph));
      try {
        expect(generated.inputNames).toEqual(fixture.inputNames);
        expect(generated.outputNames).toEqual(fixture.outputNames);
        expect(generated.inputMetadata).toEqual(fixture.inputMetadata);
        expect(generated.outputMetadata).toEqual(fixture.outputMetadata);
      } finally {
        await fixture.release();
        await generated.release();
      }
    });
  }
});

describe('numerics: the fp32 graph is XLM-RoBERTa', () => {
  let model: BgeM3Model;
  let ids: number[][];
  let reference: ReturnType<typeof xlmrForward>[];
  beforeAll(async () => {
    model = await BgeM3Model.load(dir);
    ids = await model.tokenize(TEXTS);
    reference = ids.map((seq) => xlmrForward(TINY_SHAPE, SEED, seq));
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('reference helpers: erf and RoBERTa position ids', () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(-1.5)).toBeCloseTo(-0.9661051464753108, 14);
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 14);
    expect(positionIds([0, 57, 2, 1, 1], 1)).toEqual([2, 3, 4, 1, 1]);
  });

  it('last_hidden_state equals a float64 forward pass on a padded batch (every real token)', async () => {
    const session = await ort.InferenceSession.create(join(dir, 'onnx/model.onnx'));
    try {
      const T = Math.max(...ids.map((s) => s.length));
      const inputIds = new BigInt64Array(ids.length * T).fill(1n);
      const mask = new BigInt64Array(ids.length * T);
      ids.forEach((seq, b) => seq.forEach((id, t) => ((inputIds[b * T + t] = BigInt(id)), (mask[b * T + t] = 1n))));
      const out = await session.run({
        input_ids: new ort.Tensor('int64', inputIds, [ids.length, T]),
        attention_mask: new ort.Tensor('int64', mask, [ids.length, T]),
      });
      const hidden = out.last_hidden_state!;
      expect(hidden.dims).toEqual([ids.length, T, 32]);
      const data = hidden.data as Float32Array;
      let worst = 0;
      ids.forEach((seq, b) =>
        seq.forEach((_, t) => {
          worst = Math.max(worst, maxDiff(data.subarray((b * T + t) * 32, (b * T + t + 1) * 32), reference[b]![t]!));
        }),
      );
      expect(worst).toBeLessThan(1e-4);
    } finally {
      await session.release();
    }
  });

  it('the engine loads it and returns dense, lexical and ColBERT outputs matching the reference', async () => {
    expect(model.layout).toBe('encoder');
    expect(model.dim).toBe(32);
    const out = await model.encode(TEXTS, { returnDense: true, returnSparse: true, returnColbertVecs: true, maxBatchTokens: 64 });
    ids.forEach((seq, i) => {
      const want = referenceHeads(TINY_SHAPE, SEED, reference[i]!, roundHalf);
      expect(maxDiff(out.denseVecs![i]!, want.dense), `dense ${i}`).toBeLessThan(1e-4);
      expect(out.colbertVecs![i]!.length).toBe(seq.length - 1);
      out.colbertVecs![i]!.forEach((row, r) => expect(maxDiff(row, want.colbert[r]!), `colbert ${i}[${r}]`).toBeLessThan(1e-4));
      const lexical: Record<string, number> = {};
      seq.forEach((id, t) => {
        const w = want.sparse[t]!;
        if ([0, 1, 2, 3].includes(id) || !(w > 0)) return;
        lexical[id] = Math.max(lexical[id] ?? 0, w);
      });
      const got = out.lexicalWeights![i]!;
      for (const [id, w] of Object.entries(lexical)) {
        if (w < 1e-4 && !(id in got)) continue;
        expect(Math.abs(got[id]! - w), `lexical ${i} token ${id}`).toBeLessThan(1e-4);
      }
      for (const id of Object.keys(got)) expect(lexical[id] ?? 0, `unexpected token ${id}`).toBeGreaterThan(-1e-4);
    });
  });

  it('onnxruntime applies the fusions it applies to torch exports, with exact (erf) GELU', async () => {
    const raw = opTypes(join(dir, 'onnx/model.onnx'));
    expect(raw.get('Erf')).toBe(2);
    expect(raw.get('Softmax')).toBe(2);
    expect(raw.get('MatMul')).toBe(2 * 8);
    const optimized = await optimizedOpTypes(join(dir, 'onnx/model.onnx'));
    expect(optimized.get('BiasGelu')).toBe(2);
    expect(optimized.has('FastGelu')).toBe(false);
    expect((optimized.get('LayerNormalization') ?? 0) + (optimized.get('SkipLayerNormalization') ?? 0)).toBe(1 + 2 * 2);
    expect(optimized.get('FusedMatMul')).toBe(2); // Q·Kᵀ with the 1/√d scale folded in
  });
});

describe('heads: fp16 torch.save files the engine reads', () => {
  for (const [file, key, shapes] of [
    ['colbert_linear.pt', 'colbert', [[32, 32], [32]]],
    ['sparse_linear.pt', 'sparse', [[1, 32], [1]]],
  ] as const) {
    it(`${file} holds fp16 weight and bias`, () => {
      const tensors = readTorchStateDict(readFileSync(join(dir, file)), file);
      expect([...tensors.keys()]).toEqual(['weight', 'bias']);
      const specs = headSpecs(TINY_SHAPE)[key];
      specs.forEach((spec, k) => {
        const t = tensors.get(k === 0 ? 'weight' : 'bias')!;
        expect(t.shape).toEqual(shapes[k]);
        expect(Array.from(t.data)).toEqual(Array.from(roundHalf(weightValues(spec, SEED))));
      });
    });
  }
});

describe('int8 variant', () => {
  it('is dynamically quantized like quantize_dynamic output, and onnxruntime fuses it', async () => {
    const raw = opTypes(join(dir, 'onnx/model_quantized.onnx'));
    expect(raw.get('MatMulInteger')).toBe(2 * 6);
    expect(raw.get('DynamicQuantizeLinear')).toBe(2 * 6);
    expect(raw.get('DequantizeLinear')).toBe(1); // int8 word embeddings
    expect(raw.get('MatMul')).toBe(2 * 2); // attention's activation×activation products stay float
    const m = onnx.ModelProto.decode(readFileSync(join(dir, 'onnx/model_quantized.onnx')));
    const table = m.graph!.initializer!.find((t) => t.name === 'embeddings.word_embeddings.weight_quantized')!;
    expect(table.dataType).toBe(onnx.TensorProto.DataType.INT8);
    const optimized = await optimizedOpTypes(join(dir, 'onnx/model_quantized.onnx'));
    expect((optimized.get('DynamicQuantizeMatMul') ?? 0) + (optimized.get('MatMulIntegerToFloat') ?? 0)).toBe(2 * 6);
    expect(optimized.has('MatMulInteger')).toBe(false);
  });

  it('stays close to fp32 (all three outputs)', async () => {
    const fp32 = await BgeM3Model.load(dir);
    const int8 = await BgeM3Model.load(dir, { modelFile: 'onnx/model_quantized.onnx' });
    try {
      const all = { returnDense: true, returnSparse: true, returnColbertVecs: true };
      const a = await fp32.encode(TEXTS, all);
      const b = await int8.encode(TEXTS, all);
      TEXTS.forEach((_, i) => {
        expect(cosine(a.denseVecs![i]!, b.denseVecs![i]!), `dense ${i}`).toBeGreaterThan(0.995);
        a.colbertVecs![i]!.forEach((row, r) => expect(cosine(row, b.colbertVecs![i]![r]!), `colbert ${i}[${r}]`).toBeGreaterThan(0.99));
        for (const [id, w] of Object.entries(a.lexicalWeights![i]!)) expect(Math.abs((b.lexicalWeights![i]![id] ?? 0) - w)).toBeLessThan(0.05);
      });
    } finally {
      await fp32.dispose();
      await int8.dispose();
    }
  });
});

describe('determinism and caching', () => {
  it('the same seed gives identical files; another seed gives other weights', () => {
    const again = join(root, 'again');
    const other = join(root, 'other');
    generateModel(again, { shape: TINY_SHAPE, seed: SEED, variants: ['fp32'] });
    generateModel(other, { shape: TINY_SHAPE, seed: SEED + 1, variants: ['fp32'] });
    for (const f of ['onnx/model.onnx', 'onnx/model.onnx_data', 'colbert_linear.pt', 'sparse_linear.pt']) {
      expect(sha(join(again, f)), f).toBe(sha(join(dir, f)));
    }
    expect(sha(join(other, 'onnx/model.onnx_data'))).not.toBe(sha(join(dir, 'onnx/model.onnx_data')));
  });

  it('weight streams do not depend on the chunk size (the 1 GB table is written in chunks)', () => {
    const word = embeddingSpecs(TINY_SHAPE).word;
    const whole = weightValues(word, SEED);
    const pieces = [...weightChunks(word, SEED, 100)];
    expect(pieces.length).toBeGreaterThan(100);
    expect(Buffer.from(new Float32Array(pieces.flatMap((p) => Array.from(p))).buffer).equals(Buffer.from(whole.buffer))).toBe(true);
    expect(Array.from(whole.subarray(32, 64)).every((v) => v === 0)).toBe(true); // padding row
  });

  it('ensureModel generates once, then reuses the finished folder', () => {
    const cacheDir = join(root, 'cache');
    const first = ensureModel({ cacheDir, shape: TINY_SHAPE, seed: SEED, variants: ['fp32'] });
    const second = ensureModel({ cacheDir, shape: TINY_SHAPE, seed: SEED, variants: ['fp32'] });
    expect(first.generated).toBe(true);
    expect(second.generated).toBe(false);
    expect(second.dir).toBe(join(cacheDir, modelDirName(TINY_SHAPE, SEED)));
    expect(readdirSync(cacheDir)).toEqual([modelDirName(TINY_SHAPE, SEED)]);
  });
});

describe('fp16 conversion', () => {
  it('rounds to nearest even and handles zeros, subnormals, overflow and NaN', () => {
    const input = new Float32Array([0, -0, 1, -2.5, 65504, 70000, 2 ** -24, 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, Infinity, NaN, 5.960464477539063e-8 * 1.5]);
    const half = float32ToHalf(input);
    expect(Array.from(half.slice(0, 12))).toEqual([0x0000, 0x8000, 0x3c00, 0xc100, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x3c00, 0x3c02, 0x7c00, 0x7e00]);
    expect(half[12]).toBe(0x0002); // 1.5 ulp of the smallest subnormal: tie rounds to even
    const back = halfToFloat32(float32ToHalf(new Float32Array([0.1, -3.14159, 1000.5])));
    expect(Array.from(back)).toEqual([0.0999755859375, -3.140625, 1000.5]);
  });
});
