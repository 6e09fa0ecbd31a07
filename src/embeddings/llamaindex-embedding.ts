/**
 * `BgeM3Embedding`: BGE-M3's dense vectors as a LlamaIndex.TS `BaseEmbedding`
 * (`Settings.embedModel`, `VectorStoreIndex`, ingestion pipelines).
 */
import { BaseEmbedding } from '@llamaindex/core/embeddings';
import { BgeM3Error } from '../errors.js';
import type { BgeM3Model } from '../model/bge-m3-model.js';
import { DEFAULT_MODEL_SOURCE, ModelHandle, type BgeM3ModelFields } from '../shared/model-option.js';
import { checkInteger, checkStrings, describeValue } from '../shared/checks.js';
import { embedDense } from './dense.js';
import { DEFAULT_BATCH_SIZE, DEFAULT_PASSAGE_LENGTH } from '../shared/defaults.js';

export interface BgeM3EmbeddingOptions extends BgeM3ModelFields {
  /**
   * Texts per `encode` call (LlamaIndex splits node lists into chunks of this size and reports
   * progress per chunk), and at most per onnxruntime batch. Default 256 (FlagEmbedding's batch
   * size; LlamaIndex's own default of 10 is sized for remote APIs).
   */
  embedBatchSize?: number;
  /** Maximum tokens per text, counting `<s>`/`</s>`; longer texts are truncated. Default: the engine's (8192, or the model's limit). */
  maxLength?: number;
}

export class BgeM3Embedding extends BaseEmbedding {
  // Fields, not constructor assignments: BaseEmbedding's constructor returns a function object
  // (TransformComponent), and define-semantics fields are the way subclasses set state on it.
  readonly maxLength: number | undefined;
  /** The `model` and `loadOptions` as given (`model` defaulting to `'BAAI/bge-m3'`), for adapters that should share this model. */
  readonly modelFields: Readonly<BgeM3ModelFields>;
  private readonly handle: ModelHandle;

  constructor(options: BgeM3EmbeddingOptions = {}) {
    super();
    this.handle = new ModelHandle(options, 'BgeM3Embedding');
    this.modelFields = Object.freeze({ model: options.model ?? DEFAULT_MODEL_SOURCE, loadOptions: options.loadOptions });
    this.embedBatchSize = checkInteger(options.embedBatchSize ?? DEFAULT_BATCH_SIZE, 'BgeM3Embedding: embedBatchSize', 1);
    this.maxLength = options.maxLength === undefined ? undefined : checkInteger(options.maxLength, 'BgeM3Embedding: maxLength', 2);
    this.embedInfo = { maxTokens: this.maxLength ?? DEFAULT_PASSAGE_LENGTH };
  }

  /** The model (loaded on first call when `model` was a source string). */
  getModel(): Promise<BgeM3Model> {
    return this.handle.get();
  }

  /** The dense vector of one text (queries arrive here too: BGE-M3 needs no query instruction). */
  async getTextEmbedding(text: string): Promise<number[]> {
    if (typeof text !== 'string') {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3Embedding.getTextEmbedding: text must be a string; got ${describeValue(text)}.`);
    }
    const [vector] = await this.embed([text]);
    return vector!;
  }

  /**
   * Dense vectors of many texts in one `encode` call, in batches of at most `embedBatchSize`.
   * A field, as in every LlamaIndex provider: the base class defines `getTextEmbeddings` as an
   * arrow-function field, which would shadow a method of the same name.
   */
  override getTextEmbeddings = async (texts: string[]): Promise<number[][]> => {
    checkStrings(texts, 'BgeM3Embedding.getTextEmbeddings: texts');
    return this.embed(texts);
  };

  private async embed(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return []; // nothing to do: do not load a model for it
    const model = await this.handle.get();
    return embedDense(model, texts, { batchSize: this.embedBatchSize, maxLength: this.maxLength });
  }
}
