/**
 * Turning `add` / `addEncoded` input into rows, the same way for every backend: documents checked
 * (document-checks.ts), ids assigned, metadata copied through JSON (what is searched is what is
 * stored), then dense and sparse encodings from the model or from the caller.
 */
import { randomUUID } from 'node:crypto';
import { BgeM3Error } from '../errors.js';
import type { BgeM3Model } from '../model/bge-m3-model.js';
import { checkDense, checkDocument, MAX_ENCODED_TOKEN_ID } from './document-checks.js';
import { checkColbertRows } from './multi-vectors.js';
import { toSparseVector, type SparseVector } from './sparse-vector.js';
import type { HybridAddOptions, HybridDocumentInput, HybridEncodedDocument, HybridMetadata } from './types.js';
import { squaredNorm } from '../scores.js';
import { describeValue as describe } from '../shared/checks.js';

export interface PreparedDoc {
  id: string;
  text: string;
  metadata: HybridMetadata;
}

export interface EncodedRow extends PreparedDoc {
  dense: ArrayLike<number>;
  sparse: SparseVector;
  /** L2 norm of `dense`. */
  norm: number;
  /** ColBERT rows, when the index stores multi-vectors and they were encoded or given. */
  colbert?: readonly ArrayLike<number>[];
}

/** Checks documents, assigns ids (random UUIDs where absent) and copies metadata. */
export function prepareDocuments(docs: (HybridDocumentInput | HybridEncodedDocument)[], operation: string): PreparedDoc[] {
  if (!Array.isArray(docs)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${operation} expects an array of documents { id?, text, metadata? }; got ${describe(docs)}.`);
  }
  const ctx = { operation, seen: new Set<string>(), scope: 'in this call; ids must be unique (re-adding an indexed id replaces it)', newId: randomUUID };
  return docs.map((doc, i) => {
    const checked = checkDocument(doc, i, ctx);
    let metadata: HybridMetadata = {};
    if (checked.metadata !== undefined) {
      try {
        metadata = JSON.parse(JSON.stringify(checked.metadata));
      } catch (cause) {
        throw new BgeM3Error('INVALID_ARGUMENT', `${operation}: docs[${i}].metadata cannot be stored as JSON (${(cause as Error).message}); use strings, numbers, booleans, arrays and plain objects.`, { cause });
      }
    }
    return { id: checked.id, text: checked.text, metadata };
  });
}

/** Encodes prepared documents' dense and sparse outputs (batched, with progress and abort). */
export async function encodeDocuments(
  model: BgeM3Model,
  prepared: PreparedDoc[],
  options: HybridAddOptions & { maxLength: number; batchSize?: number; colbert?: boolean },
): Promise<EncodedRow[]> {
  const total = prepared.length;
  const encoded = await model.encode(
    prepared.map((d) => d.text),
    {
      returnDense: true,
      returnSparse: true,
      returnColbertVecs: options.colbert === true,
      maxLength: Math.min(options.maxLength, model.maxPositions),
      batchSize: options.batchSize,
      signal: options.signal,
      onProgress: options.onProgress ? ({ done }) => options.onProgress!({ phase: 'encode', done, total }) : undefined,
    },
  );
  options.signal?.throwIfAborted();
  return prepared.map((d, i) => {
    const dense = encoded.denseVecs![i]!;
    const row: EncodedRow = { ...d, dense, sparse: toSparseVector(encoded.lexicalWeights![i]!, `the lexical weights of document ${i}`), norm: Math.sqrt(squaredNorm(dense)) };
    if (encoded.colbertVecs) row.colbert = encoded.colbertVecs[i]!;
    return row;
  });
}

/**
 * Rows from precomputed encodings (`addEncoded`), each checked against `dim`; with `colbert` (the
 * index stores multi-vectors) a document's `colbert` rows are checked and kept.
 */
export function encodedRows(docs: HybridEncodedDocument[], prepared: PreparedDoc[], dim: number | undefined, colbert = false): EncodedRow[] {
  return prepared.map((d, i) => {
    const doc = docs[i]!;
    const dense = checkDense(doc.dense, dim, `addEncoded: docs[${i}].dense`);
    const row: EncodedRow = { ...d, dense, sparse: toSparseVector(doc.sparse, `addEncoded: docs[${i}].sparse`, MAX_ENCODED_TOKEN_ID), norm: Math.sqrt(squaredNorm(dense)) };
    if (colbert && doc.colbert !== undefined) row.colbert = checkColbertRows(doc.colbert, dense.length, `addEncoded: docs[${i}].colbert`);
    return row;
  });
}
