/**
 * Generates a random-weight model folder with BGE-M3's file layout:
 *
 * ```
 * config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json, sentencepiece.bpe.model
 * colbert_linear.pt, sparse_linear.pt            fp16 heads (torch.save format)
 * onnx/model.onnx + onnx/model.onnx_data          fp32 encoder, weights external
 * onnx/model_quantized.onnx + ..._data            int8 (dynamically quantized MatMuls)
 * onnx/config.json, onnx/tokenizer*.json          copies, as BAAI's onnx/ folder has them
 * ```
 *
 * The tokenizer files are the conformance fixture's (vocabulary 8002: its ids are valid for any
 * larger vocabulary, and tokenization cost is negligible next to the encoder). The folder is
 * written under a temporary name and renamed when complete, so an interrupted run never leaves a
 * half-written model that looks finished.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { float32ToHalf } from './fp16.js';
import { headSpecs, numel, weightValues } from './random-weights.js';
import { writeTorchStateDict } from './torch-writer.js';
import { writeXlmrGraph, type ModelVariant } from './xlmr-graph.js';
import { hfConfig, type XlmrShape } from './xlmr-shape.js';

/** Bumped whenever the generator's output changes, so cached models are regenerated. */
export const GENERATOR_VERSION = 1;

export const FIXTURE_DIR = fileURLToPath(new URL('../../test/fixtures/bge-m3-tiny', import.meta.url));
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'sentencepiece.bpe.model'];

export interface GenerateOptions {
  shape: XlmrShape;
  seed: number;
  /** Which graphs to write. Default both. */
  variants?: ModelVariant[];
  /** Progress lines (e.g. `console.error`). */
  log?: (line: string) => void;
}

/** The graph file of a variant, relative to the model folder. */
export function graphFile(variant: ModelVariant): string {
  return variant === 'fp32' ? 'onnx/model.onnx' : 'onnx/model_quantized.onnx';
}

/** Approximate bytes of a variant's external data (for progress and disk checks). */
export function estimateBytes(shape: XlmrShape, variant: ModelVariant): number {
  const { hidden: h, ffn: f, layers, vocab, maxPositions } = shape;
  const linear = layers * (4 * h * h + 2 * h * f);
  const small = layers * (9 * h + f) + maxPositions * h;
  return variant === 'fp32' ? (linear + vocab * h + small) * 4 : linear + vocab * h + small * 4;
}

/** Writes a complete model folder at `dir` (replacing it). */
export function generateModel(dir: string, options: GenerateOptions): void {
  const { shape, seed } = options;
  const variants = options.variants ?? ['fp32', 'int8'];
  const log = options.log ?? (() => {});
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'onnx'), { recursive: true });

  const config = JSON.stringify(hfConfig(shape), null, 2);
  writeFileSync(join(tmp, 'config.json'), config);
  writeFileSync(join(tmp, 'onnx', 'config.json'), config);
  for (const f of TOKENIZER_FILES) {
    copyFileSync(join(FIXTURE_DIR, f), join(tmp, f));
    if (f !== 'sentencepiece.bpe.model') copyFileSync(join(FIXTURE_DIR, f), join(tmp, 'onnx', f));
  }

  const heads = headSpecs(shape);
  for (const [file, specs] of [['colbert_linear', heads.colbert], ['sparse_linear', heads.sparse]] as const) {
    writeTorchStateDict(
      join(tmp, `${file}.pt`),
      file,
      specs.map((w) => ({ name: w.name.slice(file.length + 1), shape: w.shape, data: float32ToHalf(weightValues(w, seed)) })),
    );
  }

  for (const variant of variants) {
    const total = estimateBytes(shape, variant);
    const started = Date.now();
    let lastLog = 0;
    writeXlmrGraph({
      shape,
      seed,
      variant,
      graphPath: join(tmp, graphFile(variant)),
      onProgress: (bytes) => {
        const now = Date.now();
        if (now - lastLog < 2000) return;
        lastLog = now;
        log(`  ${variant}: ${(bytes / 2 ** 20).toFixed(0)} / ~${(total / 2 ** 20).toFixed(0)} MiB`);
      },
    });
    log(`  ${variant}: ${graphFile(variant)} written in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  writeFileSync(join(tmp, 'GENERATED.json'), JSON.stringify({ generator: GENERATOR_VERSION, seed, shape, variants }, null, 2));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(tmp, dir);
}

export interface EnsureOptions extends GenerateOptions {
  /** Folder holding cached models. */
  cacheDir: string;
}

/** The cache folder name for a shape and seed. */
export function modelDirName(shape: XlmrShape, seed: number): string {
  const tag = shape.hidden === 1024 && shape.vocab === 250002 ? 'bge-m3' : `h${shape.hidden}-v${shape.vocab}`;
  return `${tag}-random-${shape.layers}L-seed${seed}-g${GENERATOR_VERSION}`;
}

/**
 * Returns the cached model folder for (shape, seed), generating it first if it is missing,
 * incomplete, or lacks a requested variant.
 */
export function ensureModel(options: EnsureOptions): { dir: string; generated: boolean; seconds: number } {
  const dir = join(options.cacheDir, modelDirName(options.shape, options.seed));
  const variants = options.variants ?? ['fp32', 'int8'];
  const marker = join(dir, 'GENERATED.json');
  if (existsSync(marker)) {
    const info = JSON.parse(readFileSync(marker, 'utf8')) as { generator: number; variants: ModelVariant[] };
    if (info.generator === GENERATOR_VERSION && variants.every((v) => info.variants.includes(v))) {
      return { dir, generated: false, seconds: 0 };
    }
  }
  const started = Date.now();
  options.log?.(`Generating ${dir} (${variants.join(' + ')}, seed ${options.seed}) ...`);
  generateModel(dir, { ...options, variants });
  return { dir, generated: true, seconds: (Date.now() - started) / 1000 };
}

/** Parameters of the encoder (for reports). */
export function parameterCount(shape: XlmrShape): number {
  const { hidden: h, ffn: f, layers, vocab, maxPositions } = shape;
  return numel([vocab, h]) + numel([maxPositions, h]) + h + 2 * h + layers * (4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h);
}
