/**
 * `BgeM3Model`: BGE-M3's three outputs (dense, sparse/lexical, ColBERT multi-vector) and its pair
 * scores, computed as FlagEmbedding's `BGEM3FlagModel` computes them, on onnxruntime-node.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import pLimit from 'p-limit';
import { BgeM3Error } from '../errors.js';
import {
  checkModeWeights,
  colbertScore,
  combineScores,
  dot,
  lexicalMatchingScore,
  normalizeInPlace,
  type LexicalWeights,
  type M3PairScore,
} from '../scores.js';
import { DEFAULT_BATCH_PLAN, planBatches } from './batching.js';
import { EncoderSession, padBatch, type EncoderBatch } from './encoder.js';
import { HeadsRunner } from './heads.js';
import { locateModelFiles, type BgeM3Dtype } from './model-files.js';
import type { DownloadProgressCallback } from './sources/progress.js';
import { resolveModelSource } from './sources/resolve-source.js';
import { BgeM3Tokenizer } from './tokenizer.js';
import { findHeadFile, headFileNames, readLinearHead, type HeadName } from './weights/linear-head.js';

export interface BgeM3LoadOptions {
  /** Hub revision (branch, tag or 40-hex commit) when `source` is a repo id. Default `'main'`. */
  revision?: string;
  /**
   * Hugging Face hub cache (shared with Python's huggingface_hub). Default: `HF_HUB_CACHE`, else
   * `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
   */
  cacheDir?: string;
  /** Hub base URL (a mirror or a private hub). Default: `HF_ENDPOINT`, else `https://huggingface.co`. */
  hubUrl?: string;
  /** Token for private or gated repos. Default: `HF_TOKEN`, else the token `huggingface-cli login` saved. */
  token?: string;
  /**
   * Never open a connection: load from the cache or fail with a list of the missing files.
   * Default: `HF_HUB_OFFLINE=1`. Even when online, a repo whose files are all cached loads without
   * contacting the hub.
   */
  offline?: boolean;
  /**
   * Graph precision: `'fp32'` (default) → `onnx/model.onnx`, `'fp16'` → `onnx/model_fp16.onnx`,
   * `'q8'` → `onnx/model_quantized.onnx` (Xenova/bge-m3 naming; a root-level `model*.onnx` also
   * matches). `modelFile` overrides it.
   */
  dtype?: BgeM3Dtype;
  /**
   * A hub repo id or directory to take `colbert_linear.pt` / `sparse_linear.pt` from when the model
   * lacks them, e.g. `{ dtype: 'q8', heads: 'BAAI/bge-m3' }` with source `'Xenova/bge-m3'`.
   */
  heads?: string;
  /** Download progress (bytes, rate, ETA per file). Default: a progress line on stderr when it is a terminal. */
  onProgress?: DownloadProgressCallback;
  /** onnxruntime intra-op threads. Default: onnxruntime's own choice (the number of physical cores). */
  threads?: number;
  /**
   * The graph to load, relative to the model directory. Default: `onnx/model.onnx`, else `model.onnx`.
   * E.g. `onnx/model_quantized.onnx` for Xenova/bge-m3's int8 export.
   */
  modelFile?: string;
  /** onnxruntime graph optimization level. Default `'all'`. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Default padded-token budget per batch (`texts × longest`). Throughput on CPU peaks at about
   * 1-2k tokens per batch and drops beyond; smaller budgets also cap memory. A longer text still
   * runs, alone. Default 2048.
   */
  maxBatchTokens?: number;
  /** Batches run at once (p-limit). Default 1: one batch already uses every intra-op thread. */
  concurrency?: number;
  /** Extra onnxruntime session options, merged over this package's defaults. */
  sessionOptions?: ort.InferenceSession.SessionOptions;
}

export interface BgeM3EncodeOptions {
  /** Maximum texts per batch. Default 256 (FlagEmbedding's). */
  batchSize?: number;
  /** Maximum tokens per text, counting `<s>` and `</s>`; longer texts are truncated. Default 8192. */
  maxLength?: number;
  /** Return `denseVecs`. Default true. */
  returnDense?: boolean;
  /** Return `lexicalWeights`. Default false. */
  returnSparse?: boolean;
  /** Return `colbertVecs`. Default false. */
  returnColbertVecs?: boolean;
  /** Padded-token budget per batch; overrides the model's default. */
  maxBatchTokens?: number;
  /** Called after each batch with the number of texts encoded so far. */
  onProgress?: (progress: { done: number; total: number }) => void;
  /** Aborts the encode between batches. */
  signal?: AbortSignal;
}

export interface BgeM3EncodeResult {
  /** `[n][dim]` L2-normalized CLS vectors. */
  denseVecs?: Float32Array[];
  /** Per text: decimal token id -> max ReLU weight (special tokens and zero weights dropped). */
  lexicalWeights?: LexicalWeights[];
  /** Per text: `tokens - 1` L2-normalized vectors (all positions but `<s>`, `</s>` included). */
  colbertVecs?: Float32Array[][];
}

export interface BgeM3ComputeScoreOptions {
  /** Maximum texts per batch. Default 256. */
  batchSize?: number;
  /** Default 512. */
  maxQueryLength?: number;
  /** Default 8192. */
  maxPassageLength?: number;
  /** `[dense, sparse, colbert]`. Default `[1, 1, 1]`; the model card uses `[0.4, 0.2, 0.4]`. */
  weightsForDifferentModes?: readonly number[];
}

export type BgeM3ScoreResult = { [K in keyof M3PairScore]: number[] };

/** Pairs are scored in chunks of this many so memory stays bounded for long pair lists. */
const SCORE_CHUNK_PAIRS = 1024;
/** Texts tokenized between two yields to the event loop. */
const TOKENIZE_CHUNK = 64;

export class BgeM3Model {
  private disposed = false;

  private constructor(
    /** The directory the model was loaded from. */
    readonly dir: string,
    /** Hidden size of the encoder and width of the dense vectors (1024 for BGE-M3). */
    readonly dim: number,
    /** The tokenizer (exposed for adapters that need token counts). */
    readonly tokenizer: BgeM3Tokenizer,
    private readonly encoder: EncoderSession,
    private readonly heads: HeadsRunner | undefined,
    private readonly missingHeads: Partial<Record<HeadName, string>>,
    /** Longest input the model accepts, in tokens (8192 for BGE-M3). */
    readonly maxPositions: number,
    private readonly maxBatchTokens: number,
    private readonly concurrency: number,
  ) {}

  /**
   * Loads a BGE-M3 export from a local directory. The layout is detected from the files and the
   * graph's output names: an encoder graph (`last_hidden_state`) plus `colbert_linear.pt` /
   * `sparse_linear.pt` (or `.safetensors`), or a graph with the heads inside
   * (`dense_vecs`/`sparse_vecs`/`colbert_vecs` or `dense_embeddings`/`sparse_weights`/`colbert_vectors`).
   * Dense-only use works without head files.
   *
   * `source` is a local directory or a Hugging Face hub repo id (default `'BAAI/bge-m3'`). A repo is
   * fetched once into the hub cache (only the files its layout needs, verified, resumable) and then
   * loaded from there without any network access; see the hub options above.
   */
  static async load(source: string = 'BAAI/bge-m3', options: BgeM3LoadOptions = {}): Promise<BgeM3Model> {
    if (typeof source !== 'string' || source.length === 0) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3Model.load: expected a model directory or a hub repo id such as "BAAI/bge-m3", got ${describe(source)}.`);
    }
    const threads = options.threads;
    if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `threads must be a positive integer (e.g. ${availableParallelism()}); got ${describe(threads)}.`);
    }
    const maxBatchTokens = checkPositiveInt(options.maxBatchTokens ?? DEFAULT_BATCH_PLAN.maxBatchTokens, 'maxBatchTokens');
    const concurrency = checkPositiveInt(options.concurrency ?? 1, 'concurrency');
    const resolved = await resolveModelSource(source, options);
    const files = locateModelFiles(resolved.dir, {
      modelFile: resolved.modelFile ?? options.modelFile,
      dtype: options.dtype,
      extraHeadDirs: resolved.headDirs,
    });
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      ...(threads ? { intraOpNumThreads: threads } : {}),
      ...options.sessionOptions,
    };
    const tokenizer = await BgeM3Tokenizer.load(files.tokenizerJson, files.tokenizerConfig);
    const config = await readConfig([files.dir, dirname(files.graph)]);
    const encoder = await EncoderSession.load(files.graph, sessionOptions);
    try {
      const layout = encoder.layout;
      const declared =
        layout.kind === 'encoder' ? encoder.outputWidth(layout.hidden) : layout.dense ? encoder.outputWidth(layout.dense) : undefined;
      let dim = declared ?? config.hidden_size;
      let heads: HeadsRunner | undefined;
      const missingHeads: Partial<Record<HeadName, string>> = {};
      if (layout.kind === 'encoder') {
        const colbertPath = findHeadFile('colbert_linear', files.headDirs);
        const sparsePath = findHeadFile('sparse_linear', files.headDirs);
        const colbert = colbertPath ? await readLinearHead(colbertPath, dim) : undefined;
        dim ??= colbert?.weight.shape[1];
        const sparse = sparsePath ? await readLinearHead(sparsePath, dim, 1) : undefined;
        dim ??= sparse?.weight.shape[1];
        if (!colbertPath) missingHeads.colbert_linear = describeMissingHead('colbert_linear', files.headDirs);
        if (!sparsePath) missingHeads.sparse_linear = describeMissingHead('sparse_linear', files.headDirs);
        if (dim !== undefined && (colbert || sparse)) {
          heads = await HeadsRunner.create(dim, { colbert, sparse }, { ...sessionOptions, graphOptimizationLevel: 'all' });
        }
      }
      if (dim === undefined) {
        throw new BgeM3Error('UNKNOWN_LAYOUT', `Cannot tell the hidden size of ${files.graph}: the graph does not declare it and there is no config.json with hidden_size in ${files.dir}.`);
      }
      const positions = typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings - 2 : Infinity;
      const maxPositions = Math.min(tokenizer.modelMaxLength, positions);
      return new BgeM3Model(files.dir, dim, tokenizer, encoder, heads, missingHeads, maxPositions, maxBatchTokens, concurrency);
    } catch (e) {
      await encoder.release();
      throw e;
    }
  }

  /** Which graph layout was detected: `'encoder'` (heads applied here) or `'heads'` (heads in the graph). */
  get layout(): 'encoder' | 'heads' {
    return this.encoder.layout.kind;
  }

  /** Token ids with `<s>` … `</s>`, truncated to `maxLength` (default 8192) with `</s>` kept. */
  async tokenize(texts: string[], options: { maxLength?: number } = {}): Promise<number[][]> {
    this.assertUsable();
    checkTexts(texts);
    const maxLength = this.checkMaxLength(options.maxLength ?? 8192, 'maxLength');
    return this.tokenizeAll(texts, maxLength);
  }

  /**
   * Encodes texts into any of BGE-M3's three outputs, in input order. Texts are length-sorted and
   * batched under a token budget; each batch's encoder output is reduced to per-text results and
   * dropped before the next, so memory follows the batch, not the corpus.
   */
  async encode(texts: string[], options: BgeM3EncodeOptions = {}): Promise<BgeM3EncodeResult> {
    this.assertUsable();
    checkTexts(texts);
    const returnDense = options.returnDense ?? true;
    const returnSparse = options.returnSparse ?? false;
    const returnColbert = options.returnColbertVecs ?? false;
    const batchSize = checkPositiveInt(options.batchSize ?? DEFAULT_BATCH_PLAN.batchSize, 'batchSize');
    const maxBatchTokens = checkPositiveInt(options.maxBatchTokens ?? this.maxBatchTokens, 'maxBatchTokens');
    const maxLength = this.checkMaxLength(options.maxLength ?? 8192, 'maxLength');
    this.checkHeadsAvailable(returnSparse, returnColbert);

    const n = texts.length;
    const result: BgeM3EncodeResult = {};
    if (returnDense) result.denseVecs = new Array(n);
    if (returnSparse) result.lexicalWeights = new Array(n);
    if (returnColbert) result.colbertVecs = new Array(n);
    if (n === 0) return result;

    const ids = await this.tokenizeAll(texts, maxLength, options.signal);
    const batches = planBatches(
      ids.map((s) => s.length),
      { batchSize, maxBatchTokens },
    );
    const want = { dense: returnDense, sparse: returnSparse, colbert: returnColbert };
    const limit = pLimit(this.concurrency);
    let done = 0;
    try {
      await Promise.all(
        batches.map((indices) =>
          limit(async () => {
            options.signal?.throwIfAborted();
            this.assertUsable();
            return this.runBatch(
              indices.map((i) => ids[i]!),
              want,
            );
          }).then((outputs) => {
            // Runs outside the limiter, so the next batch is already computing while this one is split up.
            indices.forEach((textIndex, b) => {
              if (outputs.dense) result.denseVecs![textIndex] = outputs.dense[b]!;
              if (outputs.sparse) result.lexicalWeights![textIndex] = outputs.sparse[b]!;
              if (outputs.colbert) result.colbertVecs![textIndex] = outputs.colbert[b]!;
            });
            done += indices.length;
            options.onProgress?.({ done, total: n });
          }),
        ),
      );
    } catch (e) {
      limit.clearQueue();
      throw e;
    }
    return result;
  }

  /** `compute_lexical_matching_score`: sum over shared token ids of `w_a * w_b`. */
  computeLexicalMatchingScore(a: LexicalWeights, b: LexicalWeights): number {
    return lexicalMatchingScore(a, b);
  }

  /** `colbert_score`: mean over query vectors of the max dot product over passage vectors. */
  colbertScore(q: ArrayLike<number>[], p: ArrayLike<number>[]): number {
    return colbertScore(q, p);
  }

  /**
   * `compute_score`: scores `[query, passage]` pairs with all three modes and their weighted
   * averages. Queries and passages are encoded separately (each text once), with their own maximum
   * lengths.
   */
  async computeScore(pairs: [query: string, passage: string][], options: BgeM3ComputeScoreOptions = {}): Promise<BgeM3ScoreResult> {
    this.assertUsable();
    if (!Array.isArray(pairs)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `computeScore expects an array of [query, passage] pairs; got ${describe(pairs)}.`);
    }
    pairs.forEach((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw new BgeM3Error('INVALID_ARGUMENT', `computeScore: pairs[${i}] must be [query: string, passage: string]; got ${describe(pair)}.`);
      }
    });
    const weights = checkModeWeights(options.weightsForDifferentModes ?? [1, 1, 1]);
    const maxQueryLength = this.checkMaxLength(options.maxQueryLength ?? 512, 'maxQueryLength');
    const maxPassageLength = this.checkMaxLength(options.maxPassageLength ?? 8192, 'maxPassageLength');
    this.checkHeadsAvailable(true, true);
    const out: BgeM3ScoreResult = { dense: [], sparse: [], colbert: [], 'sparse+dense': [], 'colbert+sparse+dense': [] };
    const all = { returnDense: true, returnSparse: true, returnColbertVecs: true, batchSize: options.batchSize };
    for (let start = 0; start < pairs.length; start += SCORE_CHUNK_PAIRS) {
      const chunk = pairs.slice(start, start + SCORE_CHUNK_PAIRS);
      const queries = uniqueIndex(chunk.map((p) => p[0]));
      const passages = uniqueIndex(chunk.map((p) => p[1]));
      const q = await this.encode(queries.texts, { ...all, maxLength: maxQueryLength });
      const p = await this.encode(passages.texts, { ...all, maxLength: maxPassageLength });
      chunk.forEach((_, i) => {
        const qi = queries.index[i]!;
        const pi = passages.index[i]!;
        const s = combineScores(
          dot(q.denseVecs![qi]!, p.denseVecs![pi]!),
          lexicalMatchingScore(q.lexicalWeights![qi]!, p.lexicalWeights![pi]!),
          colbertScore(q.colbertVecs![qi]!, p.colbertVecs![pi]!),
          weights,
        );
        for (const key of Object.keys(out) as (keyof M3PairScore)[]) out[key].push(s[key]);
      });
    }
    return out;
  }

  /** `convert_id_to_token`: replaces token-id keys by their decoded text (display only: ids can collide). */
  convertIdToToken(weights: LexicalWeights[]): Record<string, number>[] {
    this.assertUsable();
    if (!Array.isArray(weights)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `convertIdToToken expects an array of lexical-weight dicts; got ${describe(weights)}.`);
    }
    return weights.map((w) => {
      const out: Record<string, number> = {};
      for (const [id, weight] of Object.entries(w)) out[this.tokenizer.decodeOne(Number(id))] = weight;
      return out;
    });
  }

  /** Releases the onnxruntime sessions. The model cannot be used afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.encoder.release();
    await this.heads?.release();
  }

  // --- internals -------------------------------------------------------------------------------

  private assertUsable(): void {
    if (this.disposed) throw new BgeM3Error('DISPOSED', 'This BgeM3Model was disposed; load the model again to use it.');
  }

  private checkMaxLength(value: unknown, option: string): number {
    if (!Number.isInteger(value) || (value as number) < 2) {
      throw new BgeM3Error(
        'INVALID_ARGUMENT',
        `${option} must be an integer >= 2 (it counts <s> and </s>); got ${describe(value)}.`,
      );
    }
    if ((value as number) > this.maxPositions) {
      throw new BgeM3Error(
        'INVALID_ARGUMENT',
        `${option} ${value} exceeds the ${this.maxPositions} tokens this model's position embeddings allow; use at most ${this.maxPositions}.`,
      );
    }
    return value as number;
  }

  private checkHeadsAvailable(sparse: boolean, colbert: boolean): void {
    const layout = this.encoder.layout;
    const problems: string[] = [];
    if (layout.kind === 'heads') {
      if (sparse && !layout.sparse) problems.push(`sparse output (the graph ${this.encoder.graph} has no sparse output)`);
      if (colbert && !layout.colbert) problems.push(`ColBERT output (the graph ${this.encoder.graph} has no ColBERT output)`);
    } else {
      if (sparse && this.missingHeads.sparse_linear) problems.push(`sparse output: ${this.missingHeads.sparse_linear}`);
      if (colbert && this.missingHeads.colbert_linear) problems.push(`ColBERT output: ${this.missingHeads.colbert_linear}`);
    }
    if (problems.length > 0) {
      throw new BgeM3Error('MISSING_FILE', `Cannot compute the ${problems.join('; ')}. Dense output works without them.`);
    }
  }

  private async tokenizeAll(texts: string[], maxLength: number, signal?: AbortSignal): Promise<number[][]> {
    const ids = new Array<number[]>(texts.length);
    for (let start = 0; start < texts.length; start += TOKENIZE_CHUNK) {
      const end = Math.min(texts.length, start + TOKENIZE_CHUNK);
      for (let i = start; i < end; i++) ids[i] = this.tokenizer.encode(texts[i]!, maxLength);
      // Tokenizing a large corpus takes seconds: let timers and I/O run in between.
      if (end < texts.length) await yieldToEventLoop();
      signal?.throwIfAborted();
    }
    return ids;
  }

  private async runBatch(
    sequences: number[][],
    want: { dense: boolean; sparse: boolean; colbert: boolean },
  ): Promise<{ dense?: Float32Array[]; sparse?: LexicalWeights[]; colbert?: Float32Array[][] }> {
    const batch = padBatch(sequences, this.tokenizer.special.pad);
    return this.encoder.layout.kind === 'encoder'
      ? this.runEncoderLayout(batch, sequences, want)
      : this.runHeadsLayout(batch, sequences, want);
  }

  /** Encoder-only graph: CLS pooling here, sparse/ColBERT through the heads session on packed rows. */
  private async runEncoderLayout(batch: EncoderBatch, sequences: number[][], want: { dense: boolean; sparse: boolean; colbert: boolean }) {
    const layout = this.encoder.layout as { kind: 'encoder'; hidden: string };
    const { data: hidden } = (await this.encoder.run(batch, [layout.hidden]))[layout.hidden]!;
    const H = this.dim;
    const T = batch.seqLen;
    const out: { dense?: Float32Array[]; sparse?: LexicalWeights[]; colbert?: Float32Array[][] } = {};
    if (want.dense) {
      out.dense = sequences.map((_, b) => normalizeInPlace(hidden.slice(b * T * H, b * T * H + H)));
    }
    if (want.sparse || want.colbert) {
      // Rows 1..len-1 of each text (everything but <s>, no padding), packed.
      let rows = 0;
      for (const s of sequences) rows += s.length - 1;
      const packed = new Float32Array(rows * H);
      let r = 0;
      sequences.forEach((s, b) => {
        const from = (b * T + 1) * H;
        packed.set(hidden.subarray(from, from + (s.length - 1) * H), r * H);
        r += s.length - 1;
      });
      const heads = await this.heads!.run(packed, rows, { sparse: want.sparse, colbert: want.colbert });
      if (heads.sparse) {
        let row = 0;
        out.sparse = sequences.map((s) => {
          const weights = this.lexicalWeights(s, 1, (t) => heads.sparse![row + t - 1]!);
          row += s.length - 1;
          return weights;
        });
      }
      if (heads.colbert) {
        const D = heads.colbert.length / Math.max(rows, 1);
        let row = 0;
        out.colbert = sequences.map((s) => {
          const vecs = splitRows(heads.colbert!.slice(row * D, (row + s.length - 1) * D), s.length - 1, D);
          row += s.length - 1;
          return vecs;
        });
      }
    }
    return out;
  }

  /** Heads-in-graph export: outputs are already pooled/normalized; strip padding and filter. */
  private async runHeadsLayout(batch: EncoderBatch, sequences: number[][], want: { dense: boolean; sparse: boolean; colbert: boolean }) {
    const layout = this.encoder.layout as { kind: 'heads'; dense?: string; sparse?: string; colbert?: string };
    const fetches = [want.dense && layout.dense, want.sparse && layout.sparse, want.colbert && layout.colbert].filter(
      (x): x is string => typeof x === 'string',
    );
    const res = await this.encoder.run(batch, fetches);
    const T = batch.seqLen;
    const out: { dense?: Float32Array[]; sparse?: LexicalWeights[]; colbert?: Float32Array[][] } = {};
    if (want.dense) {
      const { data } = res[layout.dense!]!;
      const H = this.dim;
      out.dense = sequences.map((_, b) => data.slice(b * H, b * H + H));
    }
    if (want.sparse) {
      const { data } = res[layout.sparse!]!;
      out.sparse = sequences.map((s, b) => this.lexicalWeights(s, 0, (t) => data[b * T + t]!));
    }
    if (want.colbert) {
      const { data, dims } = res[layout.colbert!]!;
      const rowsPer = dims[1]!;
      const D = dims[2]!;
      // Known exports return positions 1.. (`seq - 1` rows); one that keeps all `seq` rows has <s> first.
      const skip = rowsPer === T ? 1 : 0;
      out.colbert = sequences.map((s, b) => {
        const from = (b * rowsPer + skip) * D;
        return splitRows(data.slice(from, from + (s.length - 1) * D), s.length - 1, D);
      });
    }
    return out;
  }

  /**
   * `_process_token_weights`: for positions `from..len-1`, drop `<s>`, `</s>`, `<pad>`, `<unk>` and
   * weights <= 0; keep the maximum weight per token id.
   */
  private lexicalWeights(ids: number[], from: number, weightAt: (position: number) => number): LexicalWeights {
    const { bos, eos, pad, unk } = this.tokenizer.special;
    const out: LexicalWeights = {};
    for (let t = from; t < ids.length; t++) {
      const id = ids[t]!;
      if (id === bos || id === eos || id === pad || id === unk) continue;
      const w = weightAt(t);
      if (!(w > 0)) continue;
      const prev = out[id];
      if (prev === undefined || w > prev) out[id] = w;
    }
    return out;
  }
}

function splitRows(flat: Float32Array, rows: number, width: number): Float32Array[] {
  const out = new Array<Float32Array>(rows);
  for (let r = 0; r < rows; r++) out[r] = flat.subarray(r * width, (r + 1) * width);
  return out;
}

function uniqueIndex(texts: string[]): { texts: string[]; index: number[] } {
  const seen = new Map<string, number>();
  const index = texts.map((t) => {
    let i = seen.get(t);
    if (i === undefined) seen.set(t, (i = seen.size));
    return i;
  });
  return { texts: [...seen.keys()], index };
}

function checkTexts(texts: unknown): asserts texts is string[] {
  if (!Array.isArray(texts)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `Expected an array of strings; got ${describe(texts)}. Wrap a single text in an array.`);
  }
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== 'string') {
      throw new BgeM3Error('INVALID_ARGUMENT', `texts[${i}] is ${describe(texts[i])}; every entry must be a string.`);
    }
  }
}

function checkPositiveInt(value: unknown, option: string): number {
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${option} must be a positive integer; got ${describe(value)}.`);
  }
  return value as number;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function describeMissingHead(head: HeadName, dirs: string[]): string {
  return `no ${headFileNames(head).join(' or ')} in ${dirs.join(' or ')}; copy it from the BAAI/bge-m3 repository`;
}

async function readConfig(dirs: string[]): Promise<{ hidden_size?: number; max_position_embeddings?: number }> {
  for (const dir of dirs) {
    const path = join(dir, 'config.json');
    if (!existsSync(path)) continue;
    try {
      return JSON.parse(await readFile(path, 'utf8'));
    } catch (cause) {
      throw new BgeM3Error('CORRUPT_FILE', `${path} is not valid JSON: ${(cause as Error).message}`, { cause });
    }
  }
  return {};
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
