/**
 * Each measurement of `npm run bench` runs in a fresh child process (bench/run.ts interleaves them),
 * so before the clock starts every system also encodes the workload's longest text once: the
 * largest shapes its memory arena and kernels meet are then not first met inside the measured run.
 * A workload of one text (the long document) is not run twice: its warm-up stays the short text.
 */
import type { WorkloadFile } from './child-protocol.js';

/** Index of the longest text, or undefined for a single-text workload. */
export function warmupIndex(workload: WorkloadFile): number | undefined {
  if (workload.texts.length < 2) return undefined;
  let best = 0;
  workload.lengths.forEach((l, i) => {
    if (l > workload.lengths[best]!) best = i;
  });
  return best;
}
