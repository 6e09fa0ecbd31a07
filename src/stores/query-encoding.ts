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
import type { HybridEncodedQuery, M3QueryEncoding } from './types.js';
import { checkColbertRows } from './multi-vectors.js';
import { packColbertQuery, type PackedColbertQuery } from './stored-maxsim.js';
import type { TextEncoding } from '../rerankers/passage-cache.js';

export interface EncodedQuery {
  dense: Float32Array;
  sparse: SparseVector;
  /** All three outputs as the reranker takes them (with `colbert`). */
  m3?: TextEncoding;
}

/**
 * Encodes `query` (checked to be a string) for `search`; with `colbert` (a search that reranks) the
 * same encode also returns its ColBERT rows, so the rerank stage needs no second query encode.
 */
export async function encodeQuery(model: BgeM3Model, query: unknown, maxQueryLength: number, signal: AbortSignal | undefined, colbert = false): Promise<EncodedQuery> {
  if (typeof query !== 'string') {
    throw new BgeM3Error('INVALID_ARGUMENT', `search: the query must be a string; got ${describe(query)}.`);
  }
  const maxLength = Math.min(maxQueryLength, model.maxPositions);
  const encoded = await model.encode([query], { returnDense: true, returnSparse: true, returnColbertVecs: colbert, maxLength, signal });
  const dense = encoded.denseVecs![0]!;
  const lexical = encoded.lexicalWeights![0]!;
  const out: EncodedQuery = { dense, sparse: toSparseVector(lexical, 'the query lexical weights') };
  if (colbert) {
    out.m3 = { dense, sparse: lexical, colbert: encoded.colbertVecs![0]! };
    rememberQuery(model, maxLength, query, out.m3);
  }
  return out;
}

/**
 * The last few queries' three encodings per model, so that a reranker after a retriever (a
 * LangChain or LlamaIndex chain: two components, one query) does not encode the query again. A
 * query of one text encodes identically each time (batch of one, no padding), so a hit is exact.
 * Hand-written: a `Map` in insertion order is the whole LRU for {@link RECENT_QUERIES} entries.
 */
const recentQueries = new WeakMap<BgeM3Model, Map<string, TextEncoding>>();
const RECENT_QUERIES = 16;

function rememberQuery(model: BgeM3Model, maxLength: number, query: string, encoding: TextEncoding): void {
  let recent = recentQueries.get(model);
  if (!recent) recentQueries.set(model, (recent = new Map()));
  const key = `${maxLength}\u0000${query}`;
  recent.delete(key);
  recent.set(key, encoding);
  if (recent.size > RECENT_QUERIES) recent.delete(recent.keys().next().value!);
}

/** A query's three encodings if one of the last queries encoded by this model with this length was it. */
export function recallQuery(model: BgeM3Model, maxLength: number, query: string): TextEncoding | undefined {
  return recentQueries.get(model)?.get(`${Math.min(maxLength, model.maxPositions)}\u0000${query}`);
}

/** Checks a query's three encodings given to `scoreStored` against the index's width; the ColBERT rows come back packed for `storedColbertScore`. */
export function checkM3Query(query: M3QueryEncoding, dim: number): { dense: ArrayLike<number>; sparse: SparseVector; colbert: PackedColbertQuery } {
  if (query === null || typeof query !== 'object') {
    throw new BgeM3Error('INVALID_ARGUMENT', `scoreStored expects the query's { dense, sparse, colbert }; got ${describe(query)}.`);
  }
  return {
    dense: checkDense(query.dense, dim, 'scoreStored: query.dense'),
    sparse: toSparseVector(query.sparse, 'scoreStored: query.sparse', MAX_ENCODED_TOKEN_ID),
    colbert: packColbertQuery(checkColbertRows(query.colbert, dim, 'scoreStored: query.colbert'), dim),
  };
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
