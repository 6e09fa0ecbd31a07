/**
 * Generates a random-weight cross-encoder with bge-reranker-v2-m3's shape, the reranker a user
 * would otherwise pick: XLM-RoBERTa large (24 layers, hidden 1024, 8194 positions, vocabulary
 * 250002) with Hugging Face's `XLMRobertaForSequenceClassification` head and one label:
 *
 * ```
 * logits = out_proj(tanh(dense(last_hidden_state[:, 0, :])))    dense 1024→1024, out_proj 1024→1
 * ```
 *
 * The encoder is `writeXlmrGraph`'s (the same node pattern as BGE-M3's export, fp32 or int8 like
 * `quantize_dynamic`); the head is appended to that graph and its output replaced by
 * `logits` `[batch_size, 1]`, as optimum exports a sequence classifier. The folder is laid out as
 * transformers.js loads it (`AutoModelForSequenceClassification`, `AutoTokenizer`):
 *
 * ```
 * config.json (architectures XLMRobertaForSequenceClassification, num_labels 1), tokenizer files
 * onnx/model.onnx + model.onnx_data, onnx/model_quantized.onnx + model_quantized.onnx_data
 * ```
 *
 * Weights are a deterministic function of the seed (the head's tensors are named
 * `classifier.dense.*` and `classifier.out_proj.*`, each drawn from its own stream). Written
 * under a temporary name and renamed when complete, like the encoder model.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DataType, floatTensor, onnx, valueInfo, type NodeProto, type TensorProto } from '../../src/model/onnx-graph.js';
import { FIXTURE_DIR, graphFile } from './model-generator.js';
import { weightValues, type WeightSpec } from './random-weights.js';
import { quantizeLinearWeight, writeXlmrGraph, type ModelVariant } from './xlmr-graph.js';
import { hfConfig, type XlmrShape } from './xlmr-shape.js';

/** Bumped whenever the output changes, so cached cross-encoders are regenerated. */
export const CROSS_ENCODER_GENERATOR_VERSION = 1;

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'sentencepiece.bpe.model'];
const STD_002 = 0.02 * Math.sqrt(3);

/** The classification head's tensors (torch layout, Linear weights `[out, in]`). */
export function classifierSpecs(shape: XlmrShape): { dense: [WeightSpec, WeightSpec]; outProj: [WeightSpec, WeightSpec] } {
  const h = shape.hidden;
  return {
    dense: [
      { name: 'classifier.dense.weight', shape: [h, h], center: 0, halfWidth: STD_002 },
      { name: 'classifier.dense.bias', shape: [h], center: 0, halfWidth: 0.02 },
    ],
    outProj: [
      // A wider output layer than BERT's init, so the random logits spread over a useful range.
      { name: 'classifier.out_proj.weight', shape: [1, h], center: 0, halfWidth: 0.1 },
      { name: 'classifier.out_proj.bias', shape: [1], center: 0, halfWidth: 0.02 },
    ],
  };
}

/** Hugging Face `config.json` of the cross-encoder. */
export function crossEncoderConfig(shape: XlmrShape): Record<string, unknown> {
  return {
    ...hfConfig(shape),
    architectures: ['XLMRobertaForSequenceClassification'],
    num_labels: 1,
    id2label: { '0': 'LABEL_0' },
    label2id: { LABEL_0: 0 },
    problem_type: 'regression',
    classifier_dropout: null,
  };
}

/**
 * Appends the classification head to an encoder graph written by `writeXlmrGraph` (in place):
 * `<s>` row → dense + tanh → out_proj → `logits`. int8 graphs get the head quantized the same
 * way as the encoder's Linear layers (DynamicQuantizeLinear → MatMulInteger → Cast → Mul).
 */
export function appendClassifierHead(graphPath: string, shape: XlmrShape, seed: number, variant: ModelVariant): void {
  const model = onnx.ModelProto.decode(readFileSync(graphPath));
  const graph = model.graph!;
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const scope = '/classifier';
  let count = 0;
  const op = (opType: string, inputs: string[], attrs: Record<string, number> = {}, outputs = 1): string[] => {
    const name = `${scope}/${opType}_${count++}`;
    const outs = Array.from({ length: outputs }, (_, j) => `${name}_output_${j}`);
    nodes.push({
      opType,
      name,
      input: inputs,
      output: outs,
      domain: '',
      attribute: Object.entries(attrs).map(([k, v]) => ({ name: k, type: onnx.AttributeProto.AttributeType.INT, i: v })),
    });
    return outs;
  };
  const linear = (x: string, [w, b]: [WeightSpec, WeightSpec]): string => {
    const [out, inp] = w.shape as [number, number];
    const values = weightValues(w, seed);
    let y: string;
    if (variant === 'fp32') {
      const t = new Float32Array(values.length);
      for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) t[i * out + o] = values[o * inp + i]!;
      inits.push(floatTensor(`${w.name}.T`, [inp, out], t));
      y = op('MatMul', [x, `${w.name}.T`])[0]!;
    } else {
      const { q, scales } = quantizeLinearWeight(values, out, inp);
      inits.push({ name: `${w.name}_quantized`, dims: [inp, out], dataType: DataType.INT8, rawData: new Uint8Array(q.buffer) });
      inits.push(floatTensor(`${w.name}_scale`, [out], scales));
      inits.push({ name: `${w.name}_zero_point`, dims: [out], dataType: DataType.INT8, rawData: new Uint8Array(out) });
      const [xq, xs, xz] = op('DynamicQuantizeLinear', [x], {}, 3) as [string, string, string];
      const acc = op('MatMulInteger', [xq, `${w.name}_quantized`, xz, `${w.name}_zero_point`])[0]!;
      const accF = op('Cast', [acc], { to: DataType.FLOAT })[0]!;
      const scale = op('Mul', [xs, `${w.name}_scale`])[0]!;
      y = op('Mul', [accF, scale])[0]!;
    }
    inits.push(floatTensor(b.name, b.shape, weightValues(b, seed)));
    return op('Add', [y, b.name])[0]!;
  };
  const heads = classifierSpecs(shape);
  // features[:, 0, :]: Gather with a scalar index drops the sequence axis.
  inits.push({ name: `${scope}/cls_index`, dims: [], dataType: DataType.INT64, rawData: new Uint8Array(new BigInt64Array([0n]).buffer) });
  const cls = op('Gather', ['last_hidden_state', `${scope}/cls_index`], { axis: 1 })[0]!;
  const hidden = op('Tanh', [linear(cls, heads.dense)])[0]!;
  const logits = linear(hidden, heads.outProj);
  const last = nodes[nodes.length - 1]!;
  last.output = last.output!.map((o) => (o === logits ? 'logits' : o));
  graph.node = [...(graph.node ?? []), ...nodes];
  graph.initializer = [...(graph.initializer ?? []), ...inits];
  graph.output = [valueInfo('logits', DataType.FLOAT, ['batch_size', 1])];
  graph.name = `${graph.name ?? 'xlm_roberta'}_sequence_classification`;
  writeFileSync(graphPath, onnx.ModelProto.encode(model).finish());
}

export interface CrossEncoderOptions {
  cacheDir: string;
  shape: XlmrShape;
  seed: number;
  variants?: ModelVariant[];
  log?: (line: string) => void;
}

export function crossEncoderDirName(shape: XlmrShape, seed: number): string {
  const tag = shape.hidden === 1024 && shape.vocab === 250002 ? 'bge-reranker-v2-m3-shape' : `xlmr-cls-h${shape.hidden}-v${shape.vocab}`;
  return `${tag}-random-${shape.layers}L-seed${seed}-c${CROSS_ENCODER_GENERATOR_VERSION}`;
}

/** Writes a complete cross-encoder folder at `dir` (replacing it). */
export function generateCrossEncoder(dir: string, options: Omit<CrossEncoderOptions, 'cacheDir'>): void {
  const { shape, seed } = options;
  const variants = options.variants ?? ['fp32', 'int8'];
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'onnx'), { recursive: true });
  const config = JSON.stringify(crossEncoderConfig(shape), null, 2);
  writeFileSync(join(tmp, 'config.json'), config);
  writeFileSync(join(tmp, 'onnx', 'config.json'), config);
  for (const f of TOKENIZER_FILES) copyFileSync(join(FIXTURE_DIR, f), join(tmp, f));
  for (const variant of variants) {
    const started = Date.now();
    const graphPath = join(tmp, graphFile(variant));
    writeXlmrGraph({ shape, seed, variant, graphPath });
    appendClassifierHead(graphPath, shape, seed, variant);
    options.log?.(`  cross-encoder ${variant}: ${graphFile(variant)} written in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  writeFileSync(join(tmp, 'GENERATED.json'), JSON.stringify({ generator: CROSS_ENCODER_GENERATOR_VERSION, seed, shape, variants }, null, 2));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(tmp, dir);
}

/** The cached cross-encoder folder for (shape, seed), generated first when missing or incomplete. */
export function ensureCrossEncoder(options: CrossEncoderOptions): { dir: string; generated: boolean; seconds: number } {
  const dir = join(options.cacheDir, crossEncoderDirName(options.shape, options.seed));
  const variants = options.variants ?? ['fp32', 'int8'];
  const marker = join(dir, 'GENERATED.json');
  if (existsSync(marker)) {
    const info = JSON.parse(readFileSync(marker, 'utf8')) as { generator: number; variants: ModelVariant[] };
    if (info.generator === CROSS_ENCODER_GENERATOR_VERSION && variants.every((v) => info.variants.includes(v))) {
      return { dir, generated: false, seconds: 0 };
    }
  }
  const started = Date.now();
  options.log?.(`Generating the cross-encoder ${dir} (${variants.join(' + ')}, seed ${options.seed}) ...`);
  generateCrossEncoder(dir, { ...options, variants });
  return { dir, generated: true, seconds: (Date.now() - started) / 1000 };
}
