/** bge-m3-rag/llamaindex: LlamaIndex.TS adapters (peer: @llamaindex/core >=0.5.8 <0.7). Re-exports only. */
export { BgeM3Embedding, type BgeM3EmbeddingOptions } from './embeddings/llamaindex-embedding.js';
export { BgeM3Rerank, type BgeM3RerankOptions } from './rerankers/llamaindex-rerank.js';
export { DEFAULT_MODEL_SOURCE, disposeSharedModels, type BgeM3ModelOption, type BgeM3ModelFields } from './shared/model-option.js';
export { BgeM3HybridRetriever, HYBRID_SCORE_KEYS, type BgeM3HybridRetrieverOptions, type BgeM3HybridRetrieverFromDocumentsOptions } from './retrievers/llamaindex-hybrid-retriever.js';
export {
  BgeM3VectorStore,
  BgeM3VectorStoreEmbedding,
  REF_DOC_ID_KEY,
  alphaWeights,
  type BgeM3VectorStoreOptions,
  type BgeM3VectorStoreQueryParams,
  type BgeM3VectorStoreQueryOptions,
} from './retrievers/llamaindex-vector-store.js';
export { fromLlamaIndexFilters, isLlamaIndexFilters } from './retrievers/llamaindex-filters.js';
