/**
 * BGE-M3's lexical weights in the `{ indices, values }` shape external vector databases take for
 * sparse vectors: Qdrant (`SparseVector`), Milvus (`SPARSE_FLOAT_VECTOR`, the Node SDK's
 * `SparseVectorCSR`) and Pinecone (`sparseValues`). See the README section "Sparse vectors in other
 * databases" for each one's details.
 */
import { BgeM3Error } from '../errors.js';
import { describeValue as describe } from '../shared/checks.js';
import type { LexicalWeights } from '../scores.js';

/** A sparse vector as Qdrant, Milvus and Pinecone take it: token ids ascending, weights paired by position. */
export interface SparseEmbedding {
  indices: number[];
  values: number[];
}

/** Options of {@link toSparseEmbedding}. */
export interface SparseEmbeddingOptions {
  /**
   * Keep only the largest weights, at most this many (ties: the smaller token id), for databases
   * that cap the non-zero entries of a sparse vector. Default: all of them.
   */
  maxEntries?: number;
}

/** The largest token id a sparse vector may hold (uint32, what Qdrant, Milvus and Pinecone accept). */
const MAX_INDEX = 0xffffffff;

/**
 * Converts lexical weights (`{ "<token id>": weight }`, as `BgeM3Model.encode(…, { returnSparse: true })`
 * returns them) into `{ indices, values }`: token ids as numbers in ascending order, each weight
 * unchanged (no rounding), zero weights dropped. Token ids are 0-based, as the model's vocabulary
 * (pgvector's `sparsevec` is 1-based: add 1 there). `maxEntries` keeps only the largest weights.
 * Throws a `BgeM3Error('INVALID_ARGUMENT')` for a key that is not a decimal token id or a weight
 * that is not a finite number ≥ 0.
 */
export function toSparseEmbedding(lexicalWeights: LexicalWeights, options: SparseEmbeddingOptions = {}): SparseEmbedding {
  const maxEntries = options?.maxEntries;
  if (maxEntries !== undefined && (!Number.isInteger(maxEntries) || maxEntries < 1)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `toSparseEmbedding: maxEntries must be an integer >= 1; got ${describe(maxEntries)}.`);
  }
  if (lexicalWeights === null || typeof lexicalWeights !== 'object' || Array.isArray(lexicalWeights)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `toSparseEmbedding expects lexical weights { "<token id>": weight } (from encode(…, { returnSparse: true })); got ${describe(lexicalWeights)}.`);
  }
  const entries: [number, number][] = [];
  for (const key of Object.keys(lexicalWeights)) {
    const id = /^(0|[1-9]\d*)$/.test(key) ? Number(key) : NaN;
    if (!Number.isSafeInteger(id) || id > MAX_INDEX) {
      throw new BgeM3Error('INVALID_ARGUMENT', `toSparseEmbedding: the key ${JSON.stringify(key)} is not a token id (a decimal integer 0…${MAX_INDEX}, as encode returns them).`);
    }
    const weight = lexicalWeights[key];
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
      throw new BgeM3Error('INVALID_ARGUMENT', `toSparseEmbedding: the weight of token ${key} is ${describe(weight)}; lexical weights are finite numbers ≥ 0.`);
    }
    if (weight > 0) entries.push([id, weight]);
  }
  let kept = entries;
  if (maxEntries !== undefined && entries.length > maxEntries) {
    kept = [...entries].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, maxEntries);
  }
  // Integer-like keys come in ascending order from a plain object; sort anyway (cheap).
  kept.sort((a, b) => a[0] - b[0]);
  return { indices: kept.map((e) => e[0]), values: kept.map((e) => e[1]) };
}
