/**
 * One consistent version of a `MemoryHybridIndex` (see that module's comment on consistency) and
 * the small helpers that read or copy it.
 */
import type { MultiVectorRef } from './multi-vector-file.js';
import { SparsePostings } from './sparse-postings.js';
import type { HybridMetadata, HybridStoredDocument } from '../types.js';

/** A document as the index stores it (the object `filter` sees). */
export interface StoredDocument extends HybridStoredDocument {
  readonly metadata: HybridMetadata;
}

/** One consistent version of the index. */
export interface State {
  /** Rows in use (live and tombstoned). */
  readonly count: number;
  /** Row-major, at least `count * dim` long (extra capacity above). */
  readonly dense: Float32Array;
  /** Shared with later states; entries below `count` never change. */
  readonly docs: StoredDocument[];
  /** Where each row's stored multi-vectors are (`undefined`: none); shared like `docs`. */
  readonly multiVectors: (MultiVectorRef | undefined)[];
  /** `deleted[row] === 1` for tombstones; rows at or above its length are live. Copied on write. */
  readonly deleted: Uint8Array;
  readonly deletedCount: number;
  readonly postings: SparsePostings;
  /** Largest dense row norm ever stored (for the dense scan's error bound). */
  readonly maxRowNorm: number;
}

export function emptyState(): State {
  return { count: 0, dense: new Float32Array(0), docs: [], multiVectors: [], deleted: new Uint8Array(0), deletedCount: 0, postings: new SparsePostings(), maxRowNorm: 0 };
}

/** Is `row` a tombstone in this state? */
export function isDeleted(s: State, row: number): boolean {
  return row < s.deleted.length && s.deleted[row] === 1;
}

/** A copy of the tombstones sized for `count` rows (deletes never write into a published array). */
export function copyTombstones(deleted: Uint8Array, count: number): Uint8Array {
  const next = new Uint8Array(count);
  next.set(deleted.subarray(0, Math.min(deleted.length, count)));
  return next;
}

