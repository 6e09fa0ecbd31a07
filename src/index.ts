/**
 * bge-m3-rag: the framework-free engine. LangChain.js and LlamaIndex.TS adapters live in the
 * `bge-m3-rag/langchain` and `bge-m3-rag/llamaindex` entry points, so importing this module never
 * loads either framework.
 */
export { BgeM3Model } from './model/bge-m3-model.js';
export type {
  BgeM3LoadOptions,
  BgeM3EncodeOptions,
  BgeM3EncodeResult,
  BgeM3ComputeScoreOptions,
  BgeM3ScoreResult,
  BgeM3ModelInfo,
} from './model/bge-m3-model.js';
export { BgeM3Error, type BgeM3ErrorCode } from './errors.js';
export {
  resolveModelSource,
  defaultCacheDir,
  type ResolveSourceOptions,
  type ResolvedModelSource,
  type DownloadProgress,
  type DownloadProgressCallback,
  type HubOptions,
  type ModelSourceOptions,
} from './hub/index.js';
export type { BgeM3Dtype } from './model/model-files.js';
export {
  dot,
  lexicalMatchingScore,
  colbertScore,
  combineScores,
  checkModeWeights,
  type LexicalWeights,
  type M3PairScore,
  type ModeWeights,
} from './scores.js';
export {
  M3Reranker,
  DEFAULT_RERANK_WEIGHTS,
  DEFAULT_RERANK_CACHE_BYTES,
  type M3RerankerOptions,
  type M3RerankerCallOptions,
  type M3RerankOptions,
  type M3RerankResult,
  type M3RerankPassage,
  type PassageCacheStats,
} from './rerankers/m3-reranker.js';
export {
  DEFAULT_MODEL_SOURCE,
  disposeSharedModels,
  type BgeM3ModelOption,
  type BgeM3ModelFields,
} from './shared/model-option.js';
export { MemoryHybridIndex, HYBRID_INDEX_FILE, type MemoryHybridIndexOptions, type MemoryHybridIndexLoadOptions } from './stores/memory/memory-hybrid-index.js';
export type { HybridIndex, HybridDocumentInput, HybridEncodedDocument, HybridEncodedQuery, HybridStoredDocument, HybridSearchOptions, HybridSearchResult, HybridFilter, HybridFusion, HybridWeights, HybridRerankOptions, HybridAddOptions, HybridProgress, HybridMetadata, SparseVectorInput, MultiVectorSource, MultiVectorStorage, ColbertSource, M3QueryEncoding, StoredPairScores } from './stores/types.js';
export { DEFAULT_WEIGHTED_WEIGHTS, DEFAULT_RRF_WEIGHTS, weightedScore, rrfScore } from './stores/fusion.js';
export { checkFilter, compileFilter, matchesFilter, type MetadataFilter, type FieldOperators, type FilterValue } from './stores/filter.js';
export { toSparseEmbedding, type SparseEmbedding, type SparseEmbeddingOptions } from './stores/sparse-export.js';
