/**
 * Order statistics for interleaved measurements: percentiles with linear interpolation (numpy's
 * default), a summary of a sample, and ratios taken pair by pair (one per round) rather than as a
 * ratio of two medians, so a burst of load on a shared machine that slows one round slows both
 * sides of that round's ratio.
 */

/** The `p` quantile (0..1) of `values` with linear interpolation between order statistics. */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const at = Math.min(Math.max(p, 0), 1) * (s.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export interface Summary {
  n: number;
  min: number;
  p25: number;
  p50: number;
  p75: number;
  p95: number;
  max: number;
  mean: number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    min: values.length ? Math.min(...values) : NaN,
    p25: quantile(values, 0.25),
    p50: quantile(values, 0.5),
    p75: quantile(values, 0.75),
    p95: quantile(values, 0.95),
    max: values.length ? Math.max(...values) : NaN,
    mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN,
  };
}

/**
 * Per-pair ratios `a[i] / b[i]` over the indices where both were measured (`undefined`/`null`
 * entries are rounds in which one side did not run).
 */
export function pairedRatios(a: readonly (number | null | undefined)[], b: readonly (number | null | undefined)[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (typeof x === 'number' && typeof y === 'number' && y > 0 && Number.isFinite(x)) out.push(x / y);
  }
  return out;
}

/** A ratio with its spread over rounds, for reports: median, p25-p75 and min-max of the per-round ratios. */
export interface RatioSpread {
  n: number;
  median: number;
  p25: number;
  p75: number;
  min: number;
  max: number;
}

export function ratioSpread(ratios: readonly number[]): RatioSpread | undefined {
  if (ratios.length === 0) return undefined;
  const s = summarize(ratios);
  return { n: s.n, median: s.p50, p25: s.p25, p75: s.p75, min: s.min, max: s.max };
}

/** The order of `n` participants in round `round`: a rotation, so each one goes first equally often. */
export function rotation(n: number, round: number): number[] {
  return Array.from({ length: n }, (_, i) => (i + round) % n);
}
