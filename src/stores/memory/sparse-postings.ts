/**
 * The sparse leg: an inverted index from token id to postings (rows in increasing order, with the
 * document's weight for that token).
 *
 * Layout. Postings live in two parts, both in typed arrays (8 bytes per posting, no object per
 * token or per document):
 * - the main segment, compressed sparse rows by token: `offsets[t]..offsets[t+1]` index `rows` and
 *   `weights`; it is never modified in place, only replaced;
 * - a tail of recently added documents, stored document by document. When the tail grows past
 *   an eighth of the main segment (at least 64k, at most 1M postings) it is merged into a new main
 *   segment, so a scan reads at most that many postings outside the main segment.
 * One typed array pair per token would cost ~200 bytes of object overhead per rare token, more
 * than the postings themselves for a 250k-token vocabulary.
 *
 * Scoring walks the main postings of the query's tokens and the tail, adding `w_query · w_doc`
 * into a per-row float64 accumulator: `lexicalMatchingScore` (scores.ts) computed for every
 * document at once. Each document's terms are added in increasing token id order, the order in
 * which `lexicalMatchingScore` visits the integer keys of a lexical-weights object, so each score is
 * bit-identical to `lexicalMatchingScore(query, doc)` on the stored (float32) weights.
 */
import { BgeM3Error } from '../../errors.js';
import type { SparseVector } from '../sparse-vector.js';

/** Compact, token-major copy of the postings (the main-segment layout, as saved). */
export interface PostingsData {
  tokens: Int32Array;
  lengths: Int32Array;
  rows: Int32Array;
  weights: Float32Array;
}

/** When the tail is merged: past max(minTail, main/8) postings, capped at maxTail. */
export interface TailLimits {
  minTail: number;
  maxTail: number;
}
const DEFAULT_TAIL_LIMITS: TailLimits = { minTail: 1 << 16, maxTail: 1 << 20 };

export class SparsePostings {
  // Main segment (CSR by token id). offsets.length === tokenSpan + 1.
  private offsets: Int32Array = new Int32Array(1);
  private rows: Int32Array = new Int32Array(0);
  private weights: Float32Array = new Float32Array(0);
  // Tail, document-major: document i has row tailRows[i] and postings tailStart[i]..tailStart[i+1].
  private tailRows: Int32Array = new Int32Array(16);
  private tailStart: Int32Array = new Int32Array(17);
  private tailTokens: Int32Array = new Int32Array(256);
  private tailWeights: Float32Array = new Float32Array(256);
  private tailDocs = 0;
  private tailPostings = 0;
  private maxToken = -1;
  /** Scratch: the query's weight per token id while scanning the tail (all zero between calls). */
  private queryWeights: Float64Array = new Float64Array(0);

  /** @param limits when to merge the tail (tests use small limits to exercise merging). */
  constructor(private readonly limits: TailLimits = DEFAULT_TAIL_LIMITS) {}

  /** Number of postings held. */
  get postingCount(): number {
    return this.rows.length + this.tailPostings;
  }

  /** Largest token id with a posting, or -1. */
  get maxTokenId(): number {
    return this.maxToken;
  }

  /** Adds one document's tokens. `row` must exceed every row already added. */
  append(row: number, vector: SparseVector): void {
    const { indices, values } = vector;
    const n = indices.length;
    if (this.tailDocs + 1 >= this.tailRows.length) {
      this.tailRows = grow(this.tailRows, this.tailDocs + 2);
      this.tailStart = grow(this.tailStart, this.tailDocs + 2);
    }
    const end = this.tailPostings + n;
    if (end > this.tailTokens.length) {
      this.tailTokens = grow(this.tailTokens, end);
      this.tailWeights = grow(this.tailWeights, end);
    }
    this.tailTokens.set(indices, this.tailPostings);
    this.tailWeights.set(values, this.tailPostings);
    this.tailRows[this.tailDocs] = row;
    this.tailPostings = end;
    this.tailStart[++this.tailDocs] = end;
    if (n > 0 && indices[n - 1]! > this.maxToken) this.maxToken = indices[n - 1]!;
    const { minTail, maxTail } = this.limits;
    if (this.tailPostings > Math.min(maxTail, Math.max(minTail, this.rows.length >> 3))) this.flush();
  }

  /** Merges the tail into a new main segment. */
  flush(): void {
    if (this.tailDocs === 0) return;
    const span = this.maxToken + 1;
    const oldSpan = this.offsets.length - 1;
    const counts = new Int32Array(span + 1);
    for (let t = 0; t < oldSpan; t++) counts[t] = this.offsets[t + 1]! - this.offsets[t]!;
    for (let i = 0; i < this.tailPostings; i++) counts[this.tailTokens[i]!]!++;
    const offsets = new Int32Array(span + 1);
    for (let t = 0; t < span; t++) offsets[t + 1] = offsets[t]! + counts[t]!;
    const total = offsets[span]!;
    const rows = new Int32Array(total);
    const weights = new Float32Array(total);
    const cursor = offsets.slice(0, span);
    for (let t = 0; t < oldSpan; t++) {
      const from = this.offsets[t]!;
      const to = this.offsets[t + 1]!;
      if (to === from) continue;
      rows.set(this.rows.subarray(from, to), cursor[t]!);
      weights.set(this.weights.subarray(from, to), cursor[t]!);
      cursor[t]! += to - from;
    }
    // Tail documents in row order, so each token's list stays sorted by row.
    for (let d = 0; d < this.tailDocs; d++) {
      const row = this.tailRows[d]!;
      for (let i = this.tailStart[d]!; i < this.tailStart[d + 1]!; i++) {
        const at = cursor[this.tailTokens[i]!]!++;
        rows[at] = row;
        weights[at] = this.tailWeights[i]!;
      }
    }
    this.offsets = offsets;
    this.rows = rows;
    this.weights = weights;
    this.tailDocs = 0;
    this.tailPostings = 0;
    this.tailStart[0] = 0;
  }

  /**
   * Adds `w_query · w_doc` for every posting of the query's tokens into `scores[row]`, for rows
   * below `rowLimit` (rows added later are ignored). `scores` must start at 0.
   */
  accumulate(query: SparseVector, rowLimit: number, scores: Float64Array): void {
    const { indices, values } = query;
    const span = this.offsets.length - 1;
    for (let q = 0; q < indices.length; q++) {
      const t = indices[q]!;
      if (t >= span) break; // indices ascending
      const wq = values[q]!;
      const end = this.offsets[t + 1]!;
      for (let i = this.offsets[t]!; i < end; i++) {
        const row = this.rows[i]!;
        if (row >= rowLimit) break;
        scores[row]! += wq * this.weights[i]!;
      }
    }
    if (this.tailDocs === 0) return;
    // Tail: mark the query's weights by token id, scan the tail documents, unmark.
    if (this.queryWeights.length <= this.maxToken) this.queryWeights = new Float64Array(this.maxToken + 1);
    const qw = this.queryWeights;
    const limit = qw.length;
    for (let q = 0; q < indices.length && indices[q]! < limit; q++) qw[indices[q]!] = values[q]!;
    for (let d = 0; d < this.tailDocs; d++) {
      const row = this.tailRows[d]!;
      if (row >= rowLimit) break;
      let s = scores[row]!;
      for (let i = this.tailStart[d]!; i < this.tailStart[d + 1]!; i++) {
        const wq = qw[this.tailTokens[i]!]!;
        if (wq !== 0) s += wq * this.tailWeights[i]!;
      }
      scores[row] = s;
    }
    for (let q = 0; q < indices.length && indices[q]! < limit; q++) qw[indices[q]!] = 0;
  }

  /**
   * A new index holding only the rows where `newRow[row] >= 0` among `[0, rowLimit)`, renumbered to
   * `newRow[row]` (order preserved). This object is left untouched (readers may still use it).
   */
  compacted(rowLimit: number, newRow: Int32Array): SparsePostings {
    return SparsePostings.import(this.export(rowLimit, newRow), Infinity, 'compaction', this.limits);
  }

  /** The postings of rows `[0, rowLimit)` renumbered by `newRow` (−1 drops a row), token-major. */
  export(rowLimit: number, newRow: Int32Array): PostingsData {
    // Merge a copy so this object (shared with in-flight readers) is not changed.
    const merged = this.tailDocs > 0 ? this.clone() : this;
    if (merged !== this) merged.flush();
    const span = merged.offsets.length - 1;
    const keep = (row: number) => row < rowLimit && newRow[row]! >= 0;
    let tokens = 0;
    let total = 0;
    for (let t = 0; t < span; t++) {
      let n = 0;
      for (let i = merged.offsets[t]!; i < merged.offsets[t + 1]!; i++) if (keep(merged.rows[i]!)) n++;
      if (n > 0) tokens++;
      total += n;
    }
    const data: PostingsData = { tokens: new Int32Array(tokens), lengths: new Int32Array(tokens), rows: new Int32Array(total), weights: new Float32Array(total) };
    let k = 0;
    let p = 0;
    for (let t = 0; t < span; t++) {
      const start = p;
      for (let i = merged.offsets[t]!; i < merged.offsets[t + 1]!; i++) {
        const row = merged.rows[i]!;
        if (!keep(row)) continue;
        data.rows[p] = newRow[row]!;
        data.weights[p++] = merged.weights[i]!;
      }
      if (p > start) {
        data.tokens[k] = t;
        data.lengths[k++] = p - start;
      }
    }
    return data;
  }

  /** Rebuilds postings from {@link export}'s data, checking it describes `rowCount` rows. */
  static import(data: PostingsData, rowCount: number, source: string, limits?: TailLimits): SparsePostings {
    const corrupt = (what: string) => new BgeM3Error('CORRUPT_FILE', `${source}: ${what}; the file is corrupt, rebuild the index.`);
    const span = data.tokens.length > 0 ? data.tokens[data.tokens.length - 1]! + 1 : 0;
    if (span < 0) throw corrupt('the sparse postings are inconsistent');
    const offsets = new Int32Array(span + 1);
    let p = 0;
    let prevToken = -1;
    for (let k = 0; k < data.tokens.length; k++) {
      const token = data.tokens[k]!;
      const n = data.lengths[k]!;
      if (token <= prevToken || n <= 0 || p + n > data.rows.length) throw corrupt(`the sparse postings are inconsistent (token ${token})`);
      for (let t = prevToken + 1; t <= token; t++) offsets[t] = p;
      for (let i = p; i < p + n; i++) {
        const row = data.rows[i]!;
        if (row < 0 || row >= rowCount || (i > p && row <= data.rows[i - 1]!)) throw corrupt(`a posting of token ${token} points at row ${row} of ${rowCount}`);
      }
      p += n;
      prevToken = token;
    }
    offsets[span] = p;
    if (p !== data.rows.length) throw corrupt(`${data.rows.length - p} postings belong to no token`);
    const out = new SparsePostings(limits);
    out.offsets = offsets;
    out.rows = data.rows;
    out.weights = data.weights;
    out.maxToken = span - 1;
    return out;
  }

  /** Bytes held by the typed arrays (capacity, not just length). */
  byteSize(): number {
    return (
      this.offsets.byteLength +
      this.rows.byteLength +
      this.weights.byteLength +
      this.tailRows.byteLength +
      this.tailStart.byteLength +
      this.tailTokens.byteLength +
      this.tailWeights.byteLength +
      this.queryWeights.byteLength
    );
  }

  private clone(): SparsePostings {
    const c = new SparsePostings(this.limits);
    c.offsets = this.offsets;
    c.rows = this.rows;
    c.weights = this.weights;
    c.tailRows = this.tailRows.slice();
    c.tailStart = this.tailStart.slice();
    c.tailTokens = this.tailTokens.slice(0, this.tailPostings);
    c.tailWeights = this.tailWeights.slice(0, this.tailPostings);
    c.tailDocs = this.tailDocs;
    c.tailPostings = this.tailPostings;
    c.maxToken = this.maxToken;
    return c;
  }
}

function grow<T extends Int32Array | Float32Array>(a: T, min: number): T {
  const next = new (a.constructor as new (n: number) => T)(Math.max(min, a.length * 2));
  next.set(a);
  return next;
}
