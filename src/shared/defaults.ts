/**
 * The package's defaults, each in one place: the engine, the adapters, the reranker and the stores
 * read them from here (and document them where their options are declared).
 */

/** Texts per encoder batch: FlagEmbedding's `batch_size`. */
export const DEFAULT_BATCH_SIZE = 256;

/**
 * Padded-token budget per batch (`texts × longest`): on BGE-M3's full shape CPU throughput peaks
 * at 1-2k tokens per batch, and the budget bounds memory (see `model/batching.ts`).
 */
export const DEFAULT_MAX_BATCH_TOKENS = 2048;

/** FlagEmbedding's `max_query_length` for `compute_score` and the reranker. */
export const DEFAULT_QUERY_LENGTH = 512;

/** FlagEmbedding's `max_passage_length` (and `encode`'s `max_length`): BGE-M3's input limit. */
export const DEFAULT_PASSAGE_LENGTH = 8192;
