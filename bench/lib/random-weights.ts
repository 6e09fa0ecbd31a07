/**
 * The random weights of the benchmark model, named and shaped like Hugging Face's
 * `XLMRobertaModel` state dict (Linear weights `[out, in]`) plus BGE-M3's two heads. Every tensor is
 * a deterministic function of (seed, name), drawn from its own PRNG stream, so the generator can
 * stream the 1 GB embedding table in chunks and the tests can rebuild any tensor independently.
 *
 * Distributions follow BERT's initialization scale (std 0.02, here uniform for speed), LayerNorm
 * gains near 1, and zero rows at the padding index like `nn.Embedding(padding_idx=1)`: enough for
 * realistic activations (no saturated softmax, no exploding norms) in a model that was never trained.
 */
import { Xoshiro128 } from './prng.js';
import type { XlmrShape } from './xlmr-shape.js';

/** Half-width of a uniform distribution with standard deviation 0.02. */
const STD_002 = 0.02 * Math.sqrt(3);

export interface WeightSpec {
  name: string;
  /** Row-major shape, torch convention (`[out, in]` for Linear weights). */
  shape: number[];
  center: number;
  halfWidth: number;
  /** A row set to zero after drawing (the padding index of an embedding table). */
  zeroRow?: number;
}

const spec = (name: string, shape: number[], center: number, halfWidth: number, zeroRow?: number): WeightSpec => ({
  name,
  shape,
  center,
  halfWidth,
  zeroRow,
});

const linear = (prefix: string, out: number, inp: number): WeightSpec[] => [
  spec(`${prefix}.weight`, [out, inp], 0, STD_002),
  spec(`${prefix}.bias`, [out], 0, 0.02),
];

const layerNorm = (prefix: string, h: number): WeightSpec[] => [
  spec(`${prefix}.weight`, [h], 1, 0.1),
  spec(`${prefix}.bias`, [h], 0, 0.05),
];

/** Embedding tensors, in the order the graph uses them. */
export function embeddingSpecs(s: XlmrShape): Record<'word' | 'position' | 'tokenType', WeightSpec> & { layerNorm: WeightSpec[] } {
  return {
    word: spec('embeddings.word_embeddings.weight', [s.vocab, s.hidden], 0, STD_002, s.paddingIdx),
    position: spec('embeddings.position_embeddings.weight', [s.maxPositions, s.hidden], 0, STD_002, s.paddingIdx),
    tokenType: spec('embeddings.token_type_embeddings.weight', [1, s.hidden], 0, STD_002),
    layerNorm: layerNorm('embeddings.LayerNorm', s.hidden),
  };
}

export interface LayerSpecs {
  query: WeightSpec[];
  key: WeightSpec[];
  value: WeightSpec[];
  attentionOutput: WeightSpec[];
  attentionNorm: WeightSpec[];
  intermediate: WeightSpec[];
  output: WeightSpec[];
  outputNorm: WeightSpec[];
}

/** One transformer layer's tensors (`[weight, bias]` pairs). */
export function layerSpecs(s: XlmrShape, i: number): LayerSpecs {
  const p = `encoder.layer.${i}`;
  return {
    query: linear(`${p}.attention.self.query`, s.hidden, s.hidden),
    key: linear(`${p}.attention.self.key`, s.hidden, s.hidden),
    value: linear(`${p}.attention.self.value`, s.hidden, s.hidden),
    attentionOutput: linear(`${p}.attention.output.dense`, s.hidden, s.hidden),
    attentionNorm: layerNorm(`${p}.attention.output.LayerNorm`, s.hidden),
    intermediate: linear(`${p}.intermediate.dense`, s.ffn, s.hidden),
    output: linear(`${p}.output.dense`, s.hidden, s.ffn),
    outputNorm: layerNorm(`${p}.output.LayerNorm`, s.hidden),
  };
}

/** BGE-M3's heads: `colbert_linear` (hidden→hidden) and `sparse_linear` (hidden→1). */
export function headSpecs(s: XlmrShape): Record<'colbert' | 'sparse', WeightSpec[]> {
  return {
    colbert: linear('colbert_linear', s.hidden, s.hidden),
    sparse: [spec('sparse_linear.weight', [1, s.hidden], 0, 0.1), spec('sparse_linear.bias', [1], 0, 0.02)],
  };
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Streams a tensor's values in row chunks of at most `maxChunk` elements (whole rows), in order.
 * Chunks are fresh arrays the caller may keep or modify.
 */
export function* weightChunks(w: WeightSpec, seed: number, maxChunk = 1 << 22): Generator<Float32Array> {
  const rng = new Xoshiro128(seed, w.name);
  const rowLen = w.shape.length > 1 ? numel(w.shape.slice(1)) : numel(w.shape);
  const rows = w.shape.length > 1 ? w.shape[0]! : 1;
  const rowsPerChunk = Math.max(1, Math.floor(maxChunk / rowLen));
  for (let row = 0; row < rows; row += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - row);
    const chunk = new Float32Array(n * rowLen);
    rng.fillUniform(chunk, w.center, w.halfWidth);
    if (w.zeroRow !== undefined && w.zeroRow >= row && w.zeroRow < row + n) {
      chunk.fill(0, (w.zeroRow - row) * rowLen, (w.zeroRow - row + 1) * rowLen);
    }
    yield chunk;
  }
}

/** The whole tensor in memory (small tensors, tests). */
export function weightValues(w: WeightSpec, seed: number): Float32Array {
  const out = new Float32Array(numel(w.shape));
  let at = 0;
  for (const chunk of weightChunks(w, seed)) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
