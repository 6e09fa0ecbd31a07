/**
 * What the LangChain and LlamaIndex rerankers share: their options, checked when the adapter is
 * built (not at the first query), and one `M3Reranker` created once the model is available, so
 * its passage cache lives as long as the adapter.
 */
import { ModelHandle, type BgeM3ModelFields } from '../shared/model-option.js';
import { checkInteger } from '../shared/checks.js';
import { checkModeWeights } from '../scores.js';
import { DEFAULT_RERANK_WEIGHTS, M3Reranker, type M3RerankerOptions } from './m3-reranker.js';

/** Options of the framework rerankers. */
export interface M3RerankerAdapterOptions extends BgeM3ModelFields, Omit<M3RerankerOptions, 'model'> {
  /** How many documents to keep. Default 3 (as LangChain's `CohereRerank`). */
  topN?: number;
}

/** The default `topN` of the framework rerankers. */
export const DEFAULT_TOP_N = 3;

export class RerankerHandle {
  readonly topN: number;
  private readonly model: ModelHandle;
  private readonly options: Omit<M3RerankerOptions, 'model'>;
  private reranker: Promise<M3Reranker> | undefined;

  constructor(fields: M3RerankerAdapterOptions, owner: string) {
    this.model = new ModelHandle(fields, owner);
    this.topN = checkInteger(fields.topN ?? DEFAULT_TOP_N, `${owner}: topN`, 1);
    // Checked now so a bad option fails at construction; the token bounds need the model (M3Reranker checks them).
    checkModeWeights(fields.weights ?? DEFAULT_RERANK_WEIGHTS, `${owner}: weights`);
    if (fields.maxQueryLength !== undefined) checkInteger(fields.maxQueryLength, `${owner}: maxQueryLength`, 2);
    if (fields.maxPassageLength !== undefined) checkInteger(fields.maxPassageLength, `${owner}: maxPassageLength`, 2);
    if (fields.batchSize !== undefined) checkInteger(fields.batchSize, `${owner}: batchSize`, 1);
    if (fields.cacheMaxBytes !== undefined) checkInteger(fields.cacheMaxBytes, `${owner}: cacheMaxBytes`, 0);
    const { weights, maxQueryLength, maxPassageLength, batchSize, cacheMaxBytes, index } = fields;
    this.options = { weights, maxQueryLength, maxPassageLength, batchSize, cacheMaxBytes, index };
  }

  /** The reranker, created on first use (loading the model if `model` was a source string). */
  get(): Promise<M3Reranker> {
    if (!this.reranker) {
      const created = this.model.get().then((model) => new M3Reranker({ model, ...this.options }));
      // A failed load is not remembered, so a later call can try again.
      created.catch(() => {
        if (this.reranker === created) this.reranker = undefined;
      });
      this.reranker = created;
    }
    return this.reranker;
  }
}
