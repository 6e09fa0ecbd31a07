/**
 * Batch planning: texts are sorted by token count (longest first, as FlagEmbedding does, so an
 * out-of-memory failure shows up at the start) and grouped so that each batch's padded size
 * (`count × longest`) stays under a token budget. Sorted neighbours have similar lengths, so padding
 * stays small, and long documents run alone instead of inflating a batch of short texts.
 */
export interface BatchPlanOptions {
  /** Upper bound on `count × longest` per batch. A single longer text still forms its own batch. */
  maxBatchTokens: number;
  /** Upper bound on the number of texts per batch. */
  batchSize: number;
}

/** Returns batches of indices into `lengths`. Every index appears exactly once. */
export function planBatches(lengths: readonly number[], options: BatchPlanOptions): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const batches: number[][] = [];
  let current: number[] = [];
  let longest = 0;
  for (const i of order) {
    const len = lengths[i]!;
    const nextLongest = Math.max(longest, len);
    if (current.length > 0 && (current.length >= options.batchSize || (current.length + 1) * nextLongest > options.maxBatchTokens)) {
      batches.push(current);
      current = [];
      longest = 0;
    }
    current.push(i);
    longest = Math.max(longest, len);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
