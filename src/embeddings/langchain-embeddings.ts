/**
 * `BgeM3Embeddings`: BGE-M3's dense vectors as a LangChain.js `Embeddings`, for any vector store.
 * Sparse and ColBERT outputs are not part of LangChain's interface; use the engine, the hybrid
 * retriever or the reranker for those.
 */
import { Embeddings, type EmbeddingsParams } from '@langchain/core/embeddings';
import { chunkArray } from '@langchain/core/utils/chunk_array';
import { BgeM3Error } from '../errors.js';
import type { BgeM3Model } from '../model/bge-m3-model.js';
import { DEFAULT_MODEL_SOURCE, ModelHandle, type BgeM3ModelFields } from '../shared/model-option.js';
import { checkInteger, checkStrings, describeValue } from '../shared/checks.js';
import { embedDense } from './dense.js';
import { DEFAULT_BATCH_SIZE } from '../shared/defaults.js';

export interface BgeM3EmbeddingsParams extends EmbeddingsParams, BgeM3ModelFields {
  /** Texts per `encode` call (and at most per onnxruntime batch). Default 256 (FlagEmbedding's). */
  batchSize?: number;
  /** Maximum tokens per text, counting `<s>`/`</s>`; longer texts are truncated. Default: the engine's (8192, or the model's limit). */
  maxLength?: number;
  /**
   * `encode` calls that may run at once. Default 1 (not LangChain's Infinity): one onnxruntime run
   * already uses every core, so parallel runs only compete for them and add memory.
   */
  maxConcurrency?: number;
  /**
   * Retries of a failed `encode`. Default 0 (not LangChain's 6): a local failure (bad input, missing
   * file, out of memory) is not transient, and retrying it only delays the error.
   */
  maxRetries?: number;
  /** Called as `embedDocuments` progresses, with texts done so far out of the call's total. */
  onProgress?: (progress: { done: number; total: number }) => void;
}

export class BgeM3Embeddings extends Embeddings {
  readonly batchSize: number;
  readonly maxLength: number | undefined;
  /**
   * The `model` and `loadOptions` as given (`model` defaulting to `'BAAI/bge-m3'`), so another
   * adapter built from them (e.g. the default index of `BgeM3VectorStore`) shares this model.
   */
  readonly modelFields: Readonly<BgeM3ModelFields>;
  private readonly handle: ModelHandle;
  private readonly onProgress: BgeM3EmbeddingsParams['onProgress'];

  constructor(fields: BgeM3EmbeddingsParams = {}) {
    const maxConcurrency = checkInteger(fields.maxConcurrency ?? 1, 'BgeM3Embeddings: maxConcurrency', 1);
    const maxRetries = checkInteger(fields.maxRetries ?? 0, 'BgeM3Embeddings: maxRetries', 0);
    super({ maxConcurrency, maxRetries, onFailedAttempt: fields.onFailedAttempt });
    this.handle = new ModelHandle(fields, 'BgeM3Embeddings');
    this.modelFields = Object.freeze({ model: fields.model ?? DEFAULT_MODEL_SOURCE, loadOptions: fields.loadOptions });
    this.batchSize = checkInteger(fields.batchSize ?? DEFAULT_BATCH_SIZE, 'BgeM3Embeddings: batchSize', 1);
    this.maxLength = fields.maxLength === undefined ? undefined : checkInteger(fields.maxLength, 'BgeM3Embeddings: maxLength', 2);
    this.onProgress = fields.onProgress;
  }

  /** The model (loaded on first call when `model` was a source string). */
  getModel(): Promise<BgeM3Model> {
    return this.handle.get();
  }

  /** Dense vectors of the documents, in order; `[]` for `[]`. */
  async embedDocuments(documents: string[]): Promise<number[][]> {
    checkStrings(documents, 'BgeM3Embeddings.embedDocuments: documents');
    if (documents.length === 0) return [];
    const model = await this.handle.get();
    let done = 0;
    const chunks = chunkArray(documents, this.batchSize);
    const vectors = await Promise.all(
      chunks.map((chunk) =>
        this.caller.call(async () => {
          const out = await embedDense(model, chunk, { batchSize: this.batchSize, maxLength: this.maxLength });
          done += chunk.length;
          this.onProgress?.({ done, total: documents.length });
          return out;
        }),
      ),
    );
    return vectors.flat();
  }

  /** The dense vector of the query (BGE-M3 needs no query instruction). */
  async embedQuery(document: string): Promise<number[]> {
    if (typeof document !== 'string') {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3Embeddings.embedQuery: the query must be a string; got ${describeValue(document)}.`);
    }
    const model = await this.handle.get();
    const [vector] = await this.caller.call(() => embedDense(model, [document], { batchSize: 1, maxLength: this.maxLength }));
    return vector!;
  }
}
