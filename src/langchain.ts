/** bge-m3-rag/langchain: LangChain.js adapters (peer: @langchain/core >=1 <2). Re-exports only. */
export { BgeM3Embeddings, type BgeM3EmbeddingsParams } from './embeddings/langchain-embeddings.js';
export { BgeM3Reranker, type BgeM3RerankerParams, type BgeM3RerankMetadata } from './rerankers/langchain-reranker.js';
export { DEFAULT_MODEL_SOURCE, disposeSharedModels, type BgeM3ModelOption, type BgeM3ModelFields } from './shared/model-option.js';
export { BgeM3HybridRetriever, type BgeM3HybridRetrieverParams, type BgeM3HybridRetrieverFromDocumentsOptions, type BgeM3HybridMetadata, type BgeM3HybridRetrieverCallOptions } from './retrievers/langchain-hybrid-retriever.js';
export {
  BgeM3VectorStore,
  BgeM3VectorStoreRetriever,
  type BgeM3VectorStoreArgs,
  type BgeM3VectorStoreSearchType,
  type BgeM3VectorStoreSearchOptions,
  type BgeM3AddDocumentOptions,
  type BgeM3MMRSearchOptions,
  type BgeM3RetrieverSearchType,
  type BgeM3VectorStoreRetrieverInput,
  type BgeM3VectorStoreRetrieverCallOptions,
} from './retrievers/langchain-vector-store.js';
