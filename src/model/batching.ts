/**
 * Batch planning: texts are sorted by token count (longest first, as FlagEmbedding does, so an
 * out-of-memory failure shows up at the start) and the sorted order is cut into batches that
 * minimize the estimated encoder time, within a token budget and a batch size.
 *
 * The estimate (measured on BGE-M3's full shape with onnxruntime on CPU, see bench/README.md):
 * a batch costs its padded tokens (`count × longest`), plus attention's extra per padded token
 * growing with the length (`longest / ATTENTION_TOKENS`), plus a fixed per-run overhead worth
 * `RUN_OVERHEAD_TOKENS` tokens (matrix products on a handful of rows run far below full speed).
 * So short texts of similar lengths are grouped into big batches, while a long document is not
 * padded out by its neighbours (a 1,000-token document batched with ten short texts would pay for
 * 11,000 tokens) and runs alone, with no padding at all (which also lets attention take its fastest
 * path). Cutting a sorted list optimally is a small dynamic programme over the cut points:
 * O(texts × batchSize).
 */
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCH_TOKENS } from '../shared/defaults.js';
export interface BatchPlanOptions {
  /** Upper bound on `count × longest` per batch. A single longer text still forms its own batch. */
  maxBatchTokens: number;
  /** Upper bound on the number of texts per batch. */
  batchSize: number;
  /** Fixed cost of one encoder run in tokens' worth of compute (the planner's model). Default 32. */
  runOverheadTokens?: number;
}

/**
 * The engine's defaults (`BgeM3Model.load`'s `maxBatchTokens`, `encode`'s `batchSize`), in one
 * place so the benchmark's raw-onnxruntime floor forms exactly the batches `encode` forms.
 * `batchSize` 256 is FlagEmbedding's. The token budget: on BGE-M3's full shape, throughput peaks
 * at 1-2k padded tokens per batch and falls ~15% by 8k (activations of `batch × length × 4096`
 * floats outgrow the caches), while memory keeps growing with it.
 */
export const DEFAULT_BATCH_PLAN: Readonly<BatchPlanOptions> = { batchSize: DEFAULT_BATCH_SIZE, maxBatchTokens: DEFAULT_MAX_BATCH_TOKENS };

/** Fixed cost of one encoder run, in tokens' worth of compute (measured: ~25-35). */
const RUN_OVERHEAD_TOKENS = 32;
/** Attention's per-token cost relative to the linear layers grows as `length / ATTENTION_TOKENS`. */
const ATTENTION_TOKENS = 1500;

/** Estimated cost of one padded batch of `count` texts padded to `longest` tokens. */
export function batchCost(count: number, longest: number, runOverhead = RUN_OVERHEAD_TOKENS): number {
  return count * longest * (1 + longest / ATTENTION_TOKENS) + runOverhead;
}

/** Returns batches of indices into `lengths` (longest first). Every index appears exactly once. */
export function planBatches(lengths: readonly number[], options: BatchPlanOptions): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const n = order.length;
  // best[i]: cheapest plan for the first i sorted texts; cut[i]: where its last batch starts.
  const best = new Float64Array(n + 1).fill(Infinity);
  const cut = new Int32Array(n + 1);
  best[0] = 0;
  for (let i = 1; i <= n; i++) {
    // Last batch = sorted[j .. i-1]; its longest text is sorted[j] (descending order).
    for (let j = i - 1; j >= 0; j--) {
      const count = i - j;
      const longest = lengths[order[j]!]!;
      if (count > 1 && (count > options.batchSize || count * longest > options.maxBatchTokens)) break;
      const cost = best[j]! + batchCost(count, longest, options.runOverheadTokens);
      if (cost < best[i]!) {
        best[i] = cost;
        cut[i] = j;
      }
    }
  }
  const batches: number[][] = [];
  for (let i = n; i > 0; i = cut[i]!) batches.push(order.slice(cut[i]!, i));
  return batches.reverse();
}
