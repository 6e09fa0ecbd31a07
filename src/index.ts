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
  dot,
  lexicalMatchingScore,
  colbertScore,
  combineScores,
  checkModeWeights,
  type LexicalWeights,
  type M3PairScore,
  type ModeWeights,
} from './scores.js';
