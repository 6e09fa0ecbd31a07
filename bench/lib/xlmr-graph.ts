/**
 * Writes an XLM-RoBERTa encoder (BGE-M3's backbone) as an ONNX graph with external weights, with
 * the node pattern PyTorch's exporter produces for Hugging Face's eager `XLMRobertaModel`
 * (decomposed LayerNorm, erf GELU, `QKᵀ / √d + mask` → Softmax), so onnxruntime's optimizer sees
 * what it sees in BAAI's `onnx/model.onnx` and applies the same fusions (LayerNormalization,
 * BiasGelu, FusedMatMul).
 *
 * - inputs `input_ids`, `attention_mask`: int64 `[batch_size, sequence_length]`;
 *   output `last_hidden_state`: float `[batch_size, sequence_length, hidden]`.
 * - positions from the ids, as `create_position_ids_from_input_ids`:
 *   `cumsum(ids != pad) * (ids != pad) + pad`.
 * - attention mask extended to `(1 - mask) * finfo(float32).min`, added to the scaled scores.
 * - post-LayerNorm residual blocks, eps from the shape.
 *
 * `variant: 'int8'` writes what onnxruntime's `quantize_dynamic` (optimum's `model_quantized.onnx`)
 * writes: every weight MatMul as `DynamicQuantizeLinear` (uint8 activations) → `MatMulInteger`
 * with int8 weights quantized symmetrically per output channel → `Cast` → `Mul` by the scales; the
 * word-embedding table as int8 with a `DequantizeLinear` after the `Gather`. onnxruntime fuses the
 * MatMul pattern into `DynamicQuantizeMatMul` at load. Attention's activation×activation MatMuls
 * stay float32.
 */
import { writeFileSync } from 'node:fs';
import { DataType, encodeModel, node, valueInfo, type NodeProto, type TensorProto } from '../../src/model/onnx-graph.js';
import { ExternalDataWriter } from './external-data.js';
import { embeddingSpecs, layerSpecs, numel, weightChunks, weightValues, type WeightSpec } from './random-weights.js';
import type { XlmrShape } from './xlmr-shape.js';

export type ModelVariant = 'fp32' | 'int8';

export interface WriteGraphOptions {
  shape: XlmrShape;
  seed: number;
  variant: ModelVariant;
  /** Path of the `.onnx` file; weights go to `<graph>_data` beside it (BAAI's naming). */
  graphPath: string;
  /** Called with the bytes written to the data file so far. */
  onProgress?: (bytesWritten: number) => void;
}

/** `float32` bytes of a Float32Array. */
const f32bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Collects nodes and initializers, naming intermediate values after their scope like torch does. */
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly counts = new Map<string, number>();

  constructor(readonly data: ExternalDataWriter) {}

  /** Adds one node and returns its output names. */
  op(scope: string, opType: string, inputs: string[], attrs: Record<string, number | number[] | string> = {}, outputs = 1, floatAttrs?: string[]): string[] {
    const key = `${scope}/${opType}`;
    const k = this.counts.get(key) ?? 0;
    this.counts.set(key, k + 1);
    const name = k === 0 ? key : `${key}_${k}`;
    const outs = Array.from({ length: outputs }, (_, j) => `${name}_output_${j}`);
    this.nodes.push({ ...node(opType, inputs, outs, attrs, { floatAttrs }), name });
    return outs;
  }

  /** Adds one single-output node and returns its output name. */
  op1(scope: string, opType: string, inputs: string[], attrs: Record<string, number | number[] | string> = {}, floatAttrs?: string[]): string {
    return this.op(scope, opType, inputs, attrs, 1, floatAttrs)[0]!;
  }

  /** A constant initializer, inline. */
  constant(name: string, dataType: number, dims: number[], bytes: ArrayBufferView): string {
    this.initializers.push(this.data.tensor(name, dims, dataType, bytes.byteLength, [bytes]));
    return name;
  }

  float(name: string, values: number[], dims: number[] = []): string {
    return this.constant(name, DataType.FLOAT, dims, new Float32Array(values));
  }

  int64(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.constant(name, DataType.INT64, dims, BigInt64Array.from(values.map(BigInt)));
  }

  /** Streams a weight tensor (in its own torch layout) into the data file. */
  weight(w: WeightSpec, seed: number, name = w.name): string {
    this.initializers.push(this.data.tensor(name, w.shape, DataType.FLOAT, numel(w.shape) * 4, mapIter(weightChunks(w, seed), f32bytes)));
    return name;
  }
}

function* mapIter<A, B>(it: Iterable<A>, f: (a: A) => B): Generator<B> {
  for (const a of it) yield f(a);
}

/** Linear weight `[out, in]` → MatMul right operand `[in, out]`. */
function transpose(w: Float32Array, out: number, inp: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) t[i * out + o] = w[o * inp + i]!;
  return t;
}

/**
 * Symmetric per-output-channel int8 quantization of a Linear weight `[out, in]`, returned as the
 * MatMul right operand `[in, out]` plus one scale per output column (range ±127, as
 * onnxruntime's quantizer uses for symmetric int8 weights).
 */
export function quantizeLinearWeight(w: Float32Array, out: number, inp: number): { q: Int8Array; scales: Float32Array } {
  const scales = new Float32Array(out);
  const q = new Int8Array(w.length);
  for (let o = 0; o < out; o++) {
    let max = 0;
    for (let i = 0; i < inp; i++) max = Math.max(max, Math.abs(w[o * inp + i]!));
    const scale = max > 0 ? max / 127 : 1;
    scales[o] = scale;
    for (let i = 0; i < inp; i++) q[i * out + o] = Math.max(-127, Math.min(127, Math.round(w[o * inp + i]! / scales[o]!)));
  }
  return { q, scales };
}

export function writeXlmrGraph(options: WriteGraphOptions): { graphBytes: number; dataBytes: number } {
  const { shape: s, seed, variant, graphPath } = options;
  const data = new ExternalDataWriter(`${graphPath}_data`, (n) => options.onProgress?.((written += n)));
  let written = 0;
  const g = new GraphBuilder(data);
  const dh = s.hidden / s.heads;
  if (!Number.isInteger(dh)) throw new Error(`hidden ${s.hidden} is not divisible by heads ${s.heads}`);

  // --- shared constants ---
  const padId = g.int64('pad_token_id', [s.paddingIdx], []);
  const one64 = g.int64('cumsum_axis', [1], []);
  const unsqueezeAxes = g.int64('mask_unsqueeze_axes', [1, 2]);
  const oneF = g.float('one', [1]);
  const minF = g.float('finfo_min', [-3.4028234663852886e38]);
  const two = g.float('two', [2]);
  const epsF = g.float('layer_norm_eps', [s.eps]);
  const sqrtDh = g.float('sqrt_head_dim', [Math.sqrt(dh)]);
  const sqrt2 = g.float('sqrt_2', [Math.SQRT2]);
  const half = g.float('one_half', [0.5]);
  const headsShape = g.int64('heads_shape', [0, 0, s.heads, dh]);
  const mergedShape = g.int64('merged_shape', [0, 0, s.hidden]);

  const layerNorm = (scope: string, x: string, [gamma, beta]: WeightSpec[]): string => {
    const mean = g.op1(scope, 'ReduceMean', [x], { axes: [-1], keepdims: 1 });
    const d = g.op1(scope, 'Sub', [x, mean]);
    const sq = g.op1(scope, 'Pow', [d, two]);
    const v = g.op1(scope, 'ReduceMean', [sq], { axes: [-1], keepdims: 1 });
    const den = g.op1(scope, 'Sqrt', [g.op1(scope, 'Add', [v, epsF])]);
    const n = g.op1(scope, 'Div', [d, den]);
    return g.op1(scope, 'Add', [g.op1(scope, 'Mul', [n, g.weight(gamma!, seed)]), g.weight(beta!, seed)]);
  };

  const linear = (scope: string, x: string, [w, b]: WeightSpec[]): string => {
    const [out, inp] = w!.shape as [number, number];
    const values = weightValues(w!, seed);
    let y: string;
    if (variant === 'fp32') {
      const t = transpose(values, out, inp);
      const wName = g.constant(`${w!.name}.T`, DataType.FLOAT, [inp, out], t);
      y = g.op1(scope, 'MatMul', [x, wName]);
    } else {
      const { q, scales } = quantizeLinearWeight(values, out, inp);
      const qName = g.constant(`${w!.name}_quantized`, DataType.INT8, [inp, out], q);
      const sName = g.constant(`${w!.name}_scale`, DataType.FLOAT, [out], scales);
      const zName = g.constant(`${w!.name}_zero_point`, DataType.INT8, [out], new Int8Array(out));
      const [xq, xs, xz] = g.op(scope, 'DynamicQuantizeLinear', [x], {}, 3) as [string, string, string];
      const acc = g.op1(scope, 'MatMulInteger', [xq, qName, xz, zName]);
      const accF = g.op1(scope, 'Cast', [acc], { to: DataType.FLOAT });
      const scale = g.op1(scope, 'Mul', [xs, sName]);
      y = g.op1(scope, 'Mul', [accF, scale]);
    }
    return g.op1(scope, 'Add', [g.weight(b!, seed), y]);
  };

  // --- embeddings ---
  const emb = embeddingSpecs(s);
  const isPad = g.op1('/embeddings', 'Equal', ['input_ids', padId]);
  const notPad = g.op1('/embeddings', 'Not', [isPad]);
  const mask64 = g.op1('/embeddings', 'Cast', [notPad], { to: DataType.INT64 });
  const cum = g.op1('/embeddings', 'CumSum', [mask64, one64]);
  const positionIds = g.op1('/embeddings', 'Add', [g.op1('/embeddings', 'Mul', [cum, mask64]), padId]);
  let words: string;
  if (variant === 'fp32') {
    words = g.op1('/embeddings/word_embeddings', 'Gather', [g.weight(emb.word, seed), 'input_ids']);
  } else {
    const table = quantizeEmbedding(g, emb.word, seed);
    const gathered = g.op1('/embeddings/word_embeddings', 'Gather', [table.q, 'input_ids']);
    words = g.op1('/embeddings/word_embeddings', 'DequantizeLinear', [gathered, table.scale, table.zeroPoint]);
  }
  const positions = g.op1('/embeddings/position_embeddings', 'Gather', [g.weight(emb.position, seed), positionIds]);
  const summed = g.op1('/embeddings', 'Add', [words, positions]);
  // token_type_ids are all 0 (BGE-M3 is called without them): torch folds the lookup into a row add.
  const tokenType = g.constant(
    emb.tokenType.name,
    DataType.FLOAT,
    [s.hidden],
    weightValues(emb.tokenType, seed),
  );
  let x = layerNorm('/embeddings/LayerNorm', g.op1('/embeddings', 'Add', [summed, tokenType]), emb.layerNorm);

  // --- extended attention mask: (1 - mask[:, None, None, :]) * finfo.min ---
  const mask4 = g.op1('/encoder', 'Unsqueeze', ['attention_mask', unsqueezeAxes]);
  const maskF = g.op1('/encoder', 'Cast', [mask4], { to: DataType.FLOAT });
  const extMask = g.op1('/encoder', 'Mul', [g.op1('/encoder', 'Sub', [oneF, maskF]), minF]);

  // --- layers ---
  for (let i = 0; i < s.layers; i++) {
    const L = layerSpecs(s, i);
    const p = `/encoder/layer.${i}`;
    const heads = (scope: string, v: string, perm: number[]) =>
      g.op1(scope, 'Transpose', [g.op1(scope, 'Reshape', [v, headsShape])], { perm });
    const q = heads(`${p}/attention/self`, linear(`${p}/attention/self/query`, x, L.query), [0, 2, 1, 3]);
    const kT = heads(`${p}/attention/self`, linear(`${p}/attention/self/key`, x, L.key), [0, 2, 3, 1]);
    const v = heads(`${p}/attention/self`, linear(`${p}/attention/self/value`, x, L.value), [0, 2, 1, 3]);
    const scores = g.op1(`${p}/attention/self`, 'Div', [g.op1(`${p}/attention/self`, 'MatMul', [q, kT]), sqrtDh]);
    const probs = g.op1(`${p}/attention/self`, 'Softmax', [g.op1(`${p}/attention/self`, 'Add', [scores, extMask])], { axis: -1 });
    const ctx = g.op1(`${p}/attention/self`, 'MatMul', [probs, v]);
    const merged = g.op1(`${p}/attention/self`, 'Reshape', [g.op1(`${p}/attention/self`, 'Transpose', [ctx], { perm: [0, 2, 1, 3] }), mergedShape]);
    const attnOut = linear(`${p}/attention/output/dense`, merged, L.attentionOutput);
    const h1 = layerNorm(`${p}/attention/output/LayerNorm`, g.op1(`${p}/attention/output`, 'Add', [attnOut, x]), L.attentionNorm);
    const up = linear(`${p}/intermediate/dense`, h1, L.intermediate);
    // Exact GELU: x · ½ · (1 + erf(x / √2))
    const erf = g.op1(`${p}/intermediate`, 'Erf', [g.op1(`${p}/intermediate`, 'Div', [up, sqrt2])]);
    const gelu = g.op1(`${p}/intermediate`, 'Mul', [g.op1(`${p}/intermediate`, 'Mul', [up, g.op1(`${p}/intermediate`, 'Add', [erf, oneF])]), half]);
    const down = linear(`${p}/output/dense`, gelu, L.output);
    x = layerNorm(`${p}/output/LayerNorm`, g.op1(`${p}/output`, 'Add', [down, h1]), L.outputNorm);
  }
  // The last LayerNorm writes the graph output directly (no Identity), as in torch exports.
  for (const n of g.nodes) n.output = n.output!.map((o) => (o === x ? 'last_hidden_state' : o));
  data.close();

  const model = encodeModel({
    name: variant === 'fp32' ? 'xlm_roberta_bge_m3_random' : 'xlm_roberta_bge_m3_random_int8',
    node: g.nodes,
    initializer: g.initializers,
    input: [
      valueInfo('input_ids', DataType.INT64, ['batch_size', 'sequence_length']),
      valueInfo('attention_mask', DataType.INT64, ['batch_size', 'sequence_length']),
    ],
    output: [valueInfo('last_hidden_state', DataType.FLOAT, ['batch_size', 'sequence_length', s.hidden])],
  });
  writeFileSync(graphPath, model);
  return { graphBytes: model.length, dataBytes: data.bytesWritten };
}

/**
 * int8 word embeddings with one symmetric scale for the table (what onnxruntime's Gather
 * quantization does). Two passes over the tensor's PRNG stream: the first finds max |w|, the second
 * writes the quantized rows, so the 1 GB float table never exists in memory.
 */
function quantizeEmbedding(g: GraphBuilder, w: WeightSpec, seed: number): { q: string; scale: string; zeroPoint: string } {
  let max = 0;
  for (const chunk of weightChunks(w, seed)) for (let i = 0; i < chunk.length; i++) max = Math.max(max, Math.abs(chunk[i]!));
  const scale = max > 0 ? max / 127 : 1;
  const chunks = mapIter(weightChunks(w, seed), (chunk) => {
    const q = new Int8Array(chunk.length);
    for (let i = 0; i < chunk.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(chunk[i]! / scale)));
    return q;
  });
  const q = `${w.name}_quantized`;
  g.initializers.push(g.data.tensor(q, w.shape, DataType.INT8, numel(w.shape), chunks));
  return {
    q,
    scale: g.float(`${w.name}_scale`, [scale]),
    zeroPoint: g.constant(`${w.name}_zero_point`, DataType.INT8, [], new Int8Array(1)),
  };
}
