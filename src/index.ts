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
} from './model/sources/index.js';
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
  type M3RerankOptions,
  type M3RerankResult,
  type PassageCacheStats,
} from './rerankers/m3-reranker.js';
export {
  DEFAULT_MODEL_SOURCE,
  disposeSharedModels,
  type BgeM3ModelOption,
  type BgeM3ModelFields,
} from './model/model-option.js';
