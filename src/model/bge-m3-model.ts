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
  type LexicalWeights,
  type M3PairScore,
} from '../scores.js';
import { checkInteger, describeValue as describe } from '../option-checks.js';
import { DEFAULT_BATCH_PLAN, planBatches } from './batching.js';
import { openBackend, type InferenceBackend } from './inference-backend.js';
import { locateModelFiles, type BgeM3Dtype } from './model-files.js';
import type { DownloadProgressCallback } from './sources/progress.js';
import { resolveModelSource } from './sources/resolve-source.js';
import { BgeM3Tokenizer } from './tokenizer.js';

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
  /**
   * Batches in flight at once (p-limit). Default 2: one computing while the next is queued, so the
   * sessions never wait for the calling thread. Batches still run one after another.
   */
  concurrency?: number;
  /**
   * Rewrite the graph's attention into onnxruntime's fused MultiHeadAttention at load (flash
   * attention for unpadded batches): an 8192-token document then needs ~2 GB instead of ~10 GB and
   * runs faster. Default true; graphs without the exported attention pattern run as they are.
   * The environment variable `BGE_M3_RAG_FUSE_ATTENTION=0` also turns it off.
   */
  fuseAttention?: boolean;
  /**
   * Run the onnxruntime sessions in a worker thread (default true). onnxruntime-node runs a batch as
   * synchronous native code, so without the worker a long encode freezes the event loop for the
   * duration of each batch. Set false where worker threads are unavailable.
   */
  worker?: boolean;
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
    private readonly backend: InferenceBackend,
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
    const maxBatchTokens = checkInteger(options.maxBatchTokens ?? DEFAULT_BATCH_PLAN.maxBatchTokens, 'maxBatchTokens', 1);
    const concurrency = checkInteger(options.concurrency ?? 2, 'concurrency', 1);
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
    const backend = await openBackend(
      {
        graph: files.graph,
        headDirs: files.headDirs,
        sessionOptions,
        configHiddenSize: typeof config.hidden_size === 'number' ? config.hidden_size : undefined,
        fuseAttention: options.fuseAttention,
        special: tokenizer.special,
      },
      { worker: options.worker ?? true },
    );
    // The position table is the hard limit (tokens beyond it have no embedding); without a
    // config.json, the tokenizer's model_max_length is the best guess.
    const maxPositions =
      typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings - 2 : tokenizer.modelMaxLength;
    return new BgeM3Model(files.dir, backend.info.dim, tokenizer, backend, maxPositions, maxBatchTokens, concurrency);
  }

  /** Which graph layout was detected: `'encoder'` (heads applied here) or `'heads'` (heads in the graph). */
  get layout(): 'encoder' | 'heads' {
    return this.backend.info.layout.kind;
  }

  /**
   * Token ids with `<s>` … `</s>`, truncated to `maxLength` (default 8192, or the model's limit if
   * lower) with `</s>` kept.
   */
  async tokenize(texts: string[], options: { maxLength?: number } = {}): Promise<number[][]> {
    this.assertUsable();
    checkTexts(texts);
    const maxLength = this.checkMaxLength(options.maxLength ?? this.defaultLength(8192), 'maxLength');
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
    const batchSize = checkInteger(options.batchSize ?? DEFAULT_BATCH_PLAN.batchSize, 'batchSize', 1);
    const maxBatchTokens = checkInteger(options.maxBatchTokens ?? this.maxBatchTokens, 'maxBatchTokens', 1);
    const maxLength = this.checkMaxLength(options.maxLength ?? this.defaultLength(8192), 'maxLength');
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
            return this.track(this.backend.run(
              indices.map((i) => ids[i]!),
              want,
            ));
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
    const maxQueryLength = this.checkMaxLength(options.maxQueryLength ?? this.defaultLength(512), 'maxQueryLength');
    const maxPassageLength = this.checkMaxLength(options.maxPassageLength ?? this.defaultLength(8192), 'maxPassageLength');
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

  /**
   * Releases the onnxruntime sessions (and their worker thread) once the batches already running
   * have finished. The model cannot be used afterwards: later calls throw a `DISPOSED` error.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.allSettled([...this.inflight]);
    await this.backend.close();
  }

  // --- internals -------------------------------------------------------------------------------

  /** Batches sent to the backend and not yet answered; `dispose` waits for them. */
  private readonly inflight = new Set<Promise<unknown>>();

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const forget = () => this.inflight.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** FlagEmbedding's default length, capped by the model's position table. */
  private defaultLength(reference: number): number {
    return Math.min(reference, this.maxPositions);
  }

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
    const { layout, graph, missingHeads } = this.backend.info;
    const problems: string[] = [];
    if (layout.kind === 'heads') {
      if (sparse && !layout.sparse) problems.push(`sparse output (the graph ${graph} has no sparse output)`);
      if (colbert && !layout.colbert) problems.push(`ColBERT output (the graph ${graph} has no ColBERT output)`);
    } else {
      if (sparse && missingHeads.sparse_linear) problems.push(`sparse output: ${missingHeads.sparse_linear}`);
      if (colbert && missingHeads.colbert_linear) problems.push(`ColBERT output: ${missingHeads.colbert_linear}`);
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
