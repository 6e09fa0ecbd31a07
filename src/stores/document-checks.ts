/**
 * The rules a document must satisfy to enter a `MemoryHybridIndex`, in one place: `add` /
 * `addEncoded` apply them to their input (as `INVALID_ARGUMENT`), `load` applies the same functions
 * to every saved document before it is used (a refusal there is `CORRUPT_FILE`: a file written by
 * `save` always passes). The lexical-weight rule is `toSparseVector` (sparse-postings.ts), capped at
 * {@link MAX_ENCODED_TOKEN_ID}.
 */
import { BgeM3Error } from '../errors.js';
import { describeValue as describe } from '../shared/checks.js';
import type { HybridMetadata } from './types.js';

/**
 * Largest token id (exclusive) accepted from precomputed encodings: far above any real vocabulary
 * (BGE-M3: 250,002), and small enough that the sparse index's per-token arrays stay bounded even
 * for hostile input (a single id near 2^31 would make them gigabytes).
 */
export const MAX_ENCODED_TOKEN_ID = 1 << 24;

/** Widest dense vector accepted (BGE-M3: 1,024; one vector of this width is 4 MiB). */
export const MAX_DENSE_DIM = 1 << 20;

/**
 * Largest magnitude of a dense value. With at most {@link MAX_DENSE_DIM} values per vector, no
 * inner product of two accepted vectors can overflow float32, whatever the summation order of the
 * dense scan (2^20 · 2^50 · 2^50 = 2^120 < 2^128), and every value is exact in a Float32Array's range.
 */
export const MAX_DENSE_ABS = 2 ** 50;

/** Checks a dense vector: `dim` (if known) finite numbers of magnitude ≤ {@link MAX_DENSE_ABS}. */
export function checkDense(dense: ArrayLike<number> | undefined, dim: number | undefined, what: string): ArrayLike<number> {
  if (dense === null || typeof dense !== 'object' || typeof dense.length !== 'number') {
    throw new BgeM3Error('INVALID_ARGUMENT', `${what} must be an array or Float32Array of numbers; got ${describe(dense)}.`);
  }
  if (dim !== undefined && dense.length !== dim) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${what} has ${dense.length} values; this index holds ${dim}-dimensional vectors.`);
  }
  if (dense.length > MAX_DENSE_DIM) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${what} has ${dense.length} values; dense vectors may have at most ${MAX_DENSE_DIM}.`);
  }
  for (let i = 0; i < dense.length; i++) {
    const v = dense[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `${what}[${i}] is ${describe(v)}; dense vectors must hold finite numbers.`);
    }
    if (v > MAX_DENSE_ABS || v < -MAX_DENSE_ABS) {
      throw new BgeM3Error('INVALID_ARGUMENT', `${what}[${i}] is ${v}; dense values must be at most 2^50 in magnitude (embeddings are usually unit length).`);
    }
  }
  if (dense.length === 0) throw new BgeM3Error('INVALID_ARGUMENT', `${what} is empty.`);
  return dense;
}

/** How {@link checkDocument} names a document and treats a missing id. */
export interface DocumentCheckContext {
  /** Prefix of every message (`add`, `addEncoded`, or the saved file). */
  operation: string;
  /** Ids of the documents checked before in the same batch; the checked id is added. */
  seen: Set<string>;
  /** Where the ids must be unique, ending the duplicate-id message ("in this call"). */
  scope: string;
  /** Supplies the id of a document without one; without it an id is required. */
  newId?: () => string;
}

/**
 * Checks one document `{ id, text, metadata }`: an object with a string text, a non-empty id
 * (unique in `ctx.seen`) and, if present, plain-object metadata. Returns the fields (metadata not
 * copied).
 */
export function checkDocument(doc: unknown, i: number, ctx: DocumentCheckContext): { id: string; text: string; metadata: HybridMetadata | undefined } {
  const { operation } = ctx;
  const d = doc as { id?: unknown; text?: unknown; metadata?: unknown } | null;
  if (d === null || typeof d !== 'object' || typeof d.text !== 'string') {
    throw new BgeM3Error('INVALID_ARGUMENT', `${operation}: docs[${i}] must be { text: string, id?, metadata? }; got ${d === null || typeof d !== 'object' ? describe(d) : `text ${describe(d.text)}`}.`);
  }
  const id = ctx.newId ? (d.id ?? ctx.newId()) : d.id;
  if (typeof id !== 'string' || id.length === 0) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${operation}: docs[${i}].id must be a non-empty string${ctx.newId ? ' (or omitted for a random UUID)' : ''}; got ${describe(id)}.`);
  }
  if (ctx.seen.has(id)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${operation}: the id ${JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id)} appears twice ${ctx.scope}.`);
  }
  ctx.seen.add(id);
  if (d.metadata !== undefined && (d.metadata === null || typeof d.metadata !== 'object' || Array.isArray(d.metadata))) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${operation}: docs[${i}].metadata must be a plain object; got ${describe(d.metadata)}.`);
  }
  return { id, text: d.text, metadata: d.metadata as HybridMetadata | undefined };
}
