/**
 * The option and result types of {@link BgeM3Model}'s methods, with their defaults documented
 * where they are declared.
 */
import type * as ort from 'onnxruntime-node';
import type { ModelSourceOptions } from '../hub/resolve-source.js';
import type { LexicalWeights, M3PairScore } from '../scores.js';

/** Options of {@link BgeM3Model.load}: where the model comes from (hub and file choice), and how it runs. */
export interface BgeM3LoadOptions extends ModelSourceOptions {
  /** onnxruntime intra-op threads. Default: onnxruntime's own choice (the number of physical cores). */
  threads?: number;
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
  /** Aborts the encode: it rejects at once with the signal's reason; a batch already computing finishes in the background. */
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

/** What {@link BgeM3Model.info} reports. */
export interface BgeM3ModelInfo {
  /** The directory the model was loaded from. */
  dir: string;
  /** The ONNX graph file in use. */
  graph: string;
  /** `'encoder'` (heads applied by this package) or `'heads'` (heads inside the graph). */
  layout: 'encoder' | 'heads';
  /** Hidden size (dense width). */
  dim: number;
  /** Tokens in the tokenizer's vocabulary, added tokens included. */
  vocabSize: number;
  /** Longest input in tokens, `<s>` and `</s>` included. */
  maxPositions: number;
  /**
   * Whether the encoder's attention was rewritten into onnxruntime's fused MultiHeadAttention at
   * load (`layers` of them), and, when not, why (`reason`; a warning says it at load too, unless
   * fusion was turned off on purpose).
   */
  attention: { fused: boolean; layers: number; reason?: string };
  /** Whether the onnxruntime sessions run in a worker thread. */
  worker: boolean;
}
