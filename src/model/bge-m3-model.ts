/**
 * `BgeM3Model`: BGE-M3's three outputs (dense, sparse/lexical, ColBERT multi-vector) and its pair
 * scores, computed as FlagEmbedding's `BGEM3FlagModel` computes them, on onnxruntime-node.
 */
import { dirname } from 'node:path';
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
import { checkInteger, checkMaxLength, checkPositiveInteger, checkStrings, describeValue as describe } from '../shared/checks.js';
import { DEFAULT_PASSAGE_LENGTH, DEFAULT_QUERY_LENGTH } from '../shared/defaults.js';
import { DEFAULT_BATCH_PLAN, planBatches } from './batching.js';
import { openBackend, type InferenceBackend } from './inference-backend.js';
import { locateModelFiles } from './model-files.js';
import { readGraphInfo } from './graph-info.js';
import { resolveModelSource } from '../hub/resolve-source.js';
import { BgeM3Tokenizer } from './tokenizer.js';
import { checkModelShape, readConfig } from './model-config.js';
import type {
  BgeM3ComputeScoreOptions,
  BgeM3EncodeOptions,
  BgeM3EncodeResult,
  BgeM3LoadOptions,
  BgeM3ModelInfo,
  BgeM3ScoreResult,
} from './model-options.js';

export type { BgeM3ComputeScoreOptions, BgeM3EncodeOptions, BgeM3EncodeResult, BgeM3LoadOptions, BgeM3ModelInfo, BgeM3ScoreResult } from './model-options.js';


/** Pairs are scored in chunks of this many so memory stays bounded for long pair lists. */
const SCORE_CHUNK_PAIRS = 1024;
/** Texts tokenized at once on libuv's thread pool: 2 of its 4 threads, so file I/O still gets the others. */
const TOKENIZE_LANES = 2;

export class BgeM3Model {
  private disposed = false;

  private constructor(
    private readonly modelInfo: BgeM3ModelInfo,
    /** The tokenizer (exposed for adapters that need token counts). */
    readonly tokenizer: BgeM3Tokenizer,
    private readonly backend: InferenceBackend,
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
    const threads = options.threads === undefined ? undefined : checkPositiveInteger(options.threads, 'threads');
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
    // A graph this reader cannot walk is reported by onnxruntime below, with its own words.
    const rows = await readGraphInfo(files.graph).then((g) => g.embeddingRows, () => ({}));
    const maxPositions = checkModelShape(files.graph, rows, tokenizer, files.tokenizerJson, config);
    const worker = options.worker ?? true;
    const backend = await openBackend(
      {
        graph: files.graph,
        headDirs: files.headDirs,
        sessionOptions,
        configHiddenSize: config.hidden_size,
        fuseAttention: options.fuseAttention ?? process.env.BGE_M3_RAG_FUSE_ATTENTION !== '0',
        special: tokenizer.special,
      },
      { worker },
    );
    const { attention, layout, graph, dim } = backend.info;
    if (attention.fusedLayers === 0 && attention.reason && !attention.reason.startsWith('turned off')) {
      process.emitWarning(`bge-m3-rag: ${graph} runs with unfused attention (slower, far more memory for long texts): ${attention.reason}.`, {
        code: 'BGE_M3_RAG_ATTENTION_NOT_FUSED',
      });
    }
    const info: BgeM3ModelInfo = {
      dir: files.dir,
      graph,
      layout: layout.kind,
      dim,
      vocabSize: tokenizer.vocabSize,
      maxPositions,
      attention: { fused: attention.fusedLayers > 0, layers: attention.fusedLayers, ...(attention.reason ? { reason: attention.reason } : {}) },
      worker,
    };
    return new BgeM3Model(info, tokenizer, backend, maxBatchTokens, concurrency);
  }

  /** Where the model came from and how it runs: the graph, its layout, whether attention is fused (and why not). */
  get info(): BgeM3ModelInfo {
    return this.modelInfo;
  }

  /** The directory the model was loaded from. */
  get dir(): string {
    return this.modelInfo.dir;
  }

  /** Hidden size of the encoder and width of the dense vectors (1024 for BGE-M3). */
  get dim(): number {
    return this.modelInfo.dim;
  }

  /** Longest input the model accepts, in tokens (8192 for BGE-M3). */
  get maxPositions(): number {
    return this.modelInfo.maxPositions;
  }

  /** Which graph layout was detected: `'encoder'` (heads applied here) or `'heads'` (heads in the graph). */
  get layout(): 'encoder' | 'heads' {
    return this.modelInfo.layout;
  }

  /**
   * Token ids with `<s>` … `</s>`, truncated to `maxLength` (default 8192, or the model's limit if
   * lower) with `</s>` kept.
   */
  async tokenize(texts: string[], options: { maxLength?: number } = {}): Promise<number[][]> {
    this.assertUsable();
    checkStrings(texts, 'texts');
    const maxLength = this.checkMaxLength(options.maxLength ?? this.defaultLength(DEFAULT_PASSAGE_LENGTH), 'maxLength');
    return this.tokenizeAll(texts, maxLength);
  }

  /**
   * Encodes texts into any of BGE-M3's three outputs, in input order. Texts are length-sorted and
   * batched under a token budget; each batch's encoder output is reduced to per-text results and
   * dropped before the next, so memory follows the batch, not the corpus.
   */
  async encode(texts: string[], options: BgeM3EncodeOptions = {}): Promise<BgeM3EncodeResult> {
    this.assertUsable();
    checkStrings(texts, 'texts');
    const returnDense = options.returnDense ?? true;
    const returnSparse = options.returnSparse ?? false;
    const returnColbert = options.returnColbertVecs ?? false;
    const batchSize = checkInteger(options.batchSize ?? DEFAULT_BATCH_PLAN.batchSize, 'batchSize', 1);
    const maxBatchTokens = checkInteger(options.maxBatchTokens ?? this.maxBatchTokens, 'maxBatchTokens', 1);
    const maxLength = this.checkMaxLength(options.maxLength ?? this.defaultLength(DEFAULT_PASSAGE_LENGTH), 'maxLength');
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
    const stop = this.stopSignal(options.signal);
    let done = 0;
    try {
      await untilAborted(Promise.all(
        batches.map((indices) =>
          limit(async () => {
            stop.throwIfAborted();
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
      ), stop);
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
    const maxQueryLength = this.checkMaxLength(options.maxQueryLength ?? this.defaultLength(DEFAULT_QUERY_LENGTH), 'maxQueryLength');
    const maxPassageLength = this.checkMaxLength(options.maxPassageLength ?? this.defaultLength(DEFAULT_PASSAGE_LENGTH), 'maxPassageLength');
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
    // Encodes in progress stop now (tokenizing or waiting for a batch); a batch already computing finishes.
    this.closing.abort(disposedError());
    await Promise.allSettled([...this.inflight]);
    await this.backend.close();
  }

  // --- internals -------------------------------------------------------------------------------

  /** Aborted by `dispose`, so that encodes in progress stop promptly. */
  private readonly closing = new AbortController();

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
    if (this.disposed) throw disposedError();
  }

  private checkMaxLength(value: unknown, option: string): number {
    return checkMaxLength(value, option, this.maxPositions);
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

  /**
   * Tokenizes on libuv's thread pool (several texts at once), never on the event loop; stops as soon
   * as `signal` aborts or the model is disposed.
   */
  private async tokenizeAll(texts: string[], maxLength: number, signal?: AbortSignal): Promise<number[][]> {
    const stop = this.stopSignal(signal);
    const ids = new Array<number[]>(texts.length);
    let next = 0;
    const lane = async () => {
      while (next < texts.length) {
        stop.throwIfAborted();
        const i = next++;
        ids[i] = await this.tokenizer.encode(texts[i]!, maxLength);
      }
    };
    await untilAborted(Promise.all(Array.from({ length: Math.min(TOKENIZE_LANES, texts.length) }, lane)), stop);
    return ids;
  }

  /** Aborts when `signal` does or when the model is disposed (with a `DISPOSED` error). */
  private stopSignal(signal: AbortSignal | undefined): AbortSignal {
    return signal ? AbortSignal.any([signal, this.closing.signal]) : this.closing.signal;
  }
}

/** `promise`, or a rejection with the abort reason as soon as `signal` aborts (the work itself runs on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function disposedError(): BgeM3Error {
  return new BgeM3Error('DISPOSED', 'This BgeM3Model was disposed; load the model again to use it.');
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




