/**
 * A search's query, as every backend takes it: text encoded with the model (dense + sparse, up to
 * `maxQueryLength` tokens), or precomputed encodings checked against the index's width.
 */
import { BgeM3Error } from '../errors.js';
import type { BgeM3Model } from '../model/bge-m3-model.js';
import { describeValue as describe } from '../shared/checks.js';
import { checkDense, MAX_ENCODED_TOKEN_ID } from './document-checks.js';
import type { ResolvedSearchOptions } from './fusion.js';
import { toSparseVector, type SparseVector } from './sparse-vector.js';
import type { HybridEncodedQuery } from './types.js';

export interface EncodedQuery {
  dense: Float32Array;
  sparse: SparseVector;
}

/** Encodes `query` (checked to be a string) for `search`. */
export async function encodeQuery(model: BgeM3Model, query: unknown, maxQueryLength: number, signal: AbortSignal | undefined): Promise<EncodedQuery> {
  if (typeof query !== 'string') {
    throw new BgeM3Error('INVALID_ARGUMENT', `search: the query must be a string; got ${describe(query)}.`);
  }
  const encoded = await model.encode([query], { returnDense: true, returnSparse: true, maxLength: Math.min(maxQueryLength, model.maxPositions), signal });
  return { dense: encoded.denseVecs![0]!, sparse: toSparseVector(encoded.lexicalWeights![0]!, 'the query lexical weights') };
}

/** Checks a precomputed query for `searchEncoded` (which cannot rerank: that needs the text). */
export function checkEncodedQuery(query: HybridEncodedQuery, dim: number | undefined, opts: ResolvedSearchOptions): EncodedQuery {
  if (opts.rerank) {
    throw new BgeM3Error('INVALID_ARGUMENT', 'searchEncoded: rerank needs the query text and the model; use search(query, { rerank }) instead.');
  }
  if (query === null || typeof query !== 'object') {
    throw new BgeM3Error('INVALID_ARGUMENT', `searchEncoded expects { dense, sparse }; got ${describe(query)}.`);
  }
  const dense = checkDense(query.dense, dim ?? query.dense?.length, 'searchEncoded: query.dense');
  return { dense: Float32Array.from(dense), sparse: toSparseVector(query.sparse, 'searchEncoded: query.sparse', MAX_ENCODED_TOKEN_ID) };
}
