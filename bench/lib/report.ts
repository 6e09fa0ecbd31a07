/**
 * Turns measured rows into the benchmark's outputs: ratios against the alternatives, the targets
 * of issue 6, a console table, `latest.md` and `latest.json`.
 *
 * Rows measured in interleaved rounds carry their per-round seconds (`roundSeconds`, aligned by
 * round); a ratio between two such rows is the median of their per-round ratios (rounds where
 * both ran), with its spread in `ratioSpread`. Rows without rounds (the computed roofline, or
 * rows built by hand) are compared by their tokens/s.
 */
import type { AttentionInfo, Dtype, Outputs } from './child-protocol.js';
import type { RooflineRates } from '../systems/roofline.js';
import { pairedRatios, ratioSpread, type RatioSpread } from './stats.js';
import { encoderFlops, type XlmrShape } from './xlmr-shape.js';
import type { WorkloadName } from './workloads.js';

export type SystemName = 'bge-m3-rag' | 'bge-m3-rag-hub' | 'ort-floor' | 'transformers.js-batch' | 'transformers.js-single' | 'roofline';

/**
 * The systems that run this package: from the plain model folder, and as users load it (the repo id
 * through the Hugging Face cache). Their rows have both outputs settings and record the attention fusion.
 */
export const PACKAGE_SYSTEMS: readonly SystemName[] = ['bge-m3-rag', 'bge-m3-rag-hub'];

/** Whether `system` runs this package (see {@link PACKAGE_SYSTEMS}). */
export function isPackageSystem(system: SystemName): boolean {
  return PACKAGE_SYSTEMS.includes(system);
}

/** One line of `latest.json` (the first six fields are the contract other tools read). */
export interface ResultRow {
  workload: WorkloadName;
  system: SystemName;
  dtype: Dtype;
  outputs: Outputs;
  tokensPerSecond: number;
  peakRssMB: number;
  /** Real (non-padding) tokens in the workload. */
  tokens: number;
  texts: number;
  /** Median over the rounds, seconds (absent for the roofline, which is computed). */
  seconds?: number;
  /** Seconds of each round the row was measured in. */
  allSeconds?: number[];
  /** Seconds by round index (`null`: not measured in that round), for per-round ratios. */
  roundSeconds?: (number | null)[];
  /** Rounds measured. */
  rounds?: number;
  /** Why a later round failed, when some rounds succeeded. */
  failedRounds?: string;
  /** Model load time of the process that produced the row. */
  loadSeconds?: number;
  /** Highest 1-minute load average at the start of the row's rounds: above ~0.5 the machine was not quiet. */
  loadAverage?: number;
  /** This package's rows: `model.info.attention` of the process (fused layers, or why none). */
  attention?: AttentionInfo;
  detail?: Record<string, unknown>;
  /** Filled by {@link addRatios}. */
  ratios?: Partial<Record<RatioName, number>>;
  /** Filled by {@link addRatios} for ratios taken over rounds: median, p25-p75 and min-max of the per-round ratios. */
  ratioSpread?: Partial<Record<RatioName, RatioSpread>>;
}

export type RatioName = 'vsFloor' | 'vsTransformersJsSingle' | 'vsTransformersJsBatch' | 'ofRoofline' | 'vsDenseOnly' | 'vsFp32';

export interface Skipped {
  workload: WorkloadName;
  system: SystemName;
  dtype: Dtype;
  outputs: Outputs;
  reason: string;
}

export interface BenchResults {
  machine: Record<string, unknown>;
  settings: Record<string, unknown>;
  rows: ResultRow[];
  skipped: Skipped[];
  targets: TargetCheck[];
}

/** Matrix-multiply-only ceiling for one workload, from measured rates. */
export function rooflineTokensPerSecond(shape: XlmrShape, lengths: readonly number[], rates: RooflineRates, dtype: Dtype): number {
  const lin = rates.linear[dtype];
  const { hidden: h, ffn: f, layers } = shape;
  // Seconds per token through every linear layer, each shape at its own measured rate.
  const perToken =
    layers * ((4 * 2 * h * h) / lin.hh + (2 * h * f) / lin.hf + (2 * f * h) / lin.fh);
  const attentionRate = (len: number) => {
    const measured = Object.keys(rates.attention).map(Number).sort((a, b) => a - b);
    const nearest = measured.reduce((best, t) => (Math.abs(Math.log(t / len)) < Math.abs(Math.log(best / len)) ? t : best), measured[0]!);
    return rates.attention[String(nearest)]!;
  };
  let seconds = 0;
  let tokens = 0;
  for (const len of lengths) {
    seconds += len * perToken + encoderFlops(shape, len).attention / attentionRate(len);
    tokens += len;
  }
  return tokens / seconds;
}

const find = (rows: ResultRow[], w: WorkloadName, system: SystemName, dtype: Dtype, outputs: Outputs = 'dense') =>
  rows.find((r) => r.workload === w && r.system === system && r.dtype === dtype && r.outputs === outputs);

/**
 * This row's throughput over `other`'s: the median of per-round ratios when both were measured in
 * common rounds (with the spread), else the ratio of their tokens/s.
 */
function compare(r: ResultRow, other: ResultRow | undefined): { ratio?: number; spread?: RatioSpread } {
  if (!other || !(other.tokensPerSecond > 0)) return {};
  if (r.roundSeconds && other.roundSeconds) {
    // Same tokens on both sides: throughput ratio = other's seconds / this row's seconds.
    const spread = ratioSpread(pairedRatios(other.roundSeconds, r.roundSeconds));
    if (spread) return { ratio: spread.median, spread };
  }
  return { ratio: r.tokensPerSecond / other.tokensPerSecond };
}

/** Ratios of each measured row against the alternatives on the same workload and dtype. */
export function addRatios(rows: ResultRow[]): void {
  for (const r of rows) {
    if (r.system === 'roofline') continue;
    const ratios: NonNullable<ResultRow['ratios']> = {};
    const spreads: NonNullable<ResultRow['ratioSpread']> = {};
    const set = (name: RatioName, other: ResultRow | undefined) => {
      const { ratio, spread } = compare(r, other);
      if (ratio === undefined) return;
      ratios[name] = ratio;
      if (spread) spreads[name] = spread;
    };
    if (r.system !== 'ort-floor') set('vsFloor', find(rows, r.workload, 'ort-floor', r.dtype));
    if (isPackageSystem(r.system)) {
      set('vsTransformersJsSingle', find(rows, r.workload, 'transformers.js-single', r.dtype));
      set('vsTransformersJsBatch', find(rows, r.workload, 'transformers.js-batch', r.dtype));
      if (r.outputs === 'all') set('vsDenseOnly', find(rows, r.workload, r.system, r.dtype, 'dense'));
      if (r.dtype === 'int8') set('vsFp32', find(rows, r.workload, r.system, 'fp32', r.outputs));
    }
    set('ofRoofline', find(rows, r.workload, 'roofline', r.dtype));
    r.ratios = ratios;
    if (Object.keys(spreads).length > 0) r.ratioSpread = spreads;
  }
}

export interface TargetCheck {
  target: string;
  required: number;
  /** undefined when the rows needed were not measured in this run. */
  actual?: number;
  /** The spread of `actual` over rounds, when it is a ratio taken over rounds. */
  spread?: RatioSpread;
  pass?: boolean;
}

/** Issue 6's targets, checked on this run's rows. */
export function checkTargets(rows: ResultRow[]): TargetCheck[] {
  const dense = find(rows, 'mixed', 'bge-m3-rag', 'fp32', 'dense');
  const all = find(rows, 'mixed', 'bge-m3-rag', 'fp32', 'all');
  const int8 = find(rows, 'mixed', 'bge-m3-rag', 'int8', 'dense');
  const long = find(rows, 'long8192', 'bge-m3-rag', 'fp32', 'dense');
  const longAll = find(rows, 'long8192', 'bge-m3-rag', 'fp32', 'all');
  const ratio = (row: ResultRow | undefined, name: RatioName) => ({ actual: row?.ratios?.[name], ...(row?.ratioSpread?.[name] ? { spread: row.ratioSpread[name] } : {}) });
  const checks: TargetCheck[] = [
    { target: 'mixed, dense fp32 vs raw-onnxruntime floor', required: 0.9, ...ratio(dense, 'vsFloor') },
    { target: 'mixed, dense fp32 vs transformers.js one text at a time', required: 1.15, ...ratio(dense, 'vsTransformersJsSingle') },
    { target: 'mixed, dense fp32 vs transformers.js batched (LangChain)', required: 2, ...ratio(dense, 'vsTransformersJsBatch') },
    { target: 'mixed, all three outputs vs dense only (fp32)', required: 0.9, ...ratio(all, 'vsDenseOnly') },
    { target: 'mixed, int8 vs fp32 (dense)', required: 1.8, ...ratio(int8, 'vsFp32') },
  ];
  const rss = Math.max(long?.peakRssMB ?? 0, longAll?.peakRssMB ?? 0);
  const limitMB = 10e9 / 2 ** 20; // 10 GB
  checks.push({
    target: `${long?.tokens ?? 8192}-token document, peak RSS (fp32), MB`,
    required: Math.round(limitMB),
    actual: long ? rss : undefined,
    pass: long ? rss <= limitMB : undefined,
  });
  for (const c of checks) if (c.pass === undefined && c.actual !== undefined) c.pass = c.actual >= c.required;
  return checks;
}

const fmt = (n: number | undefined, digits = 2) => (n === undefined ? '' : n.toFixed(digits));
const x = (n: number | undefined) => (n === undefined ? '' : `${n.toFixed(2)}x`);
/** `1.00x`, or `1.00x (0.97-1.02)`: the median of per-round ratios and their min-max, when taken over several rounds. */
const xs = (n: number | undefined, spread: RatioSpread | undefined) =>
  n === undefined ? '' : spread && spread.n > 1 ? `${n.toFixed(2)}x (${spread.min.toFixed(2)}-${spread.max.toFixed(2)})` : x(n);

const SYSTEM_ORDER: SystemName[] = ['bge-m3-rag', 'bge-m3-rag-hub', 'ort-floor', 'transformers.js-single', 'transformers.js-batch', 'roofline'];

/** By dtype, then system, this package's two sources side by side for each outputs setting. */
function sortRows(rows: ResultRow[]): ResultRow[] {
  const group = (s: SystemName) => (isPackageSystem(s) ? 0 : SYSTEM_ORDER.indexOf(s));
  return [...rows].sort(
    (a, b) =>
      a.dtype.localeCompare(b.dtype) ||
      group(a.system) - group(b.system) ||
      a.outputs.localeCompare(b.outputs) ||
      SYSTEM_ORDER.indexOf(a.system) - SYSTEM_ORDER.indexOf(b.system),
  );
}

const HEADER = ['system', 'dtype', 'outputs', 'tokens/s', 'vs floor', 'vs tjs single', 'vs tjs batch', 'of roofline', 'peak RSS MB', 'fused attention', 'load s', 'rounds'];

/** `24 layers`, `no` (see {@link attentionNotes}), or empty for other systems' rows. */
function fusedCell(r: ResultRow): string {
  if (!r.attention) return '';
  return r.attention.fused ? `${r.attention.layers} layers` : 'no';
}

/** One line per row of this package whose attention was not fused, with the reason the package gave. */
export function attentionNotes(rows: ResultRow[]): string[] {
  return sortRows(rows.filter((r) => r.attention && !r.attention.fused)).map(
    (r) => `${r.workload}, ${r.system} ${r.dtype} ${r.outputs}: attention not fused (${r.attention!.reason ?? 'no reason given'})`,
  );
}

function cells(r: ResultRow): string[] {
  return [
    r.system,
    r.dtype,
    isPackageSystem(r.system) ? r.outputs : '',
    fmt(r.tokensPerSecond, 1),
    xs(r.ratios?.vsFloor, r.ratioSpread?.vsFloor),
    xs(r.ratios?.vsTransformersJsSingle, r.ratioSpread?.vsTransformersJsSingle),
    xs(r.ratios?.vsTransformersJsBatch, r.ratioSpread?.vsTransformersJsBatch),
    r.ratios?.ofRoofline === undefined ? '' : `${(r.ratios.ofRoofline * 100).toFixed(0)}%`,
    r.system === 'roofline' ? '' : String(r.peakRssMB),
    fusedCell(r),
    fmt(r.loadSeconds, 1),
    r.rounds === undefined ? '' : String(r.rounds),
  ];
}

/** Markdown tables, one per workload, plus the targets. */
export function toMarkdown(results: BenchResults, descriptions: Partial<Record<WorkloadName, string>>): string {
  const lines: string[] = [];
  const m = results.machine;
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB RAM; Node ${m.node}, onnxruntime-node ${m.onnxruntime}` +
    (m.transformersJs ? `, transformers.js ${m.transformersJs}` : '') + `; ${m.date}.`);
  lines.push(`Model: ${results.settings.model}.`);
  if (results.settings.rounds !== undefined) {
    const load = (v: unknown) => (Array.isArray(v) ? v.join(' / ') : String(v));
    lines.push('');
    lines.push(
      `Interleaved: for each workload, ${String(results.settings.rounds)} rounds (the long document ${String(results.settings.longRounds)}) in which every combination runs once, ` +
        'the order rotating from round to round, each measurement in a fresh child process (load and warm-up excluded). tokens/s: from the median ' +
        'seconds over the rounds. Ratios: the median of the per-round ratios (rounds in which both ran), min-max over rounds in parentheses.' +
        (m.loadAverageAtStart !== undefined ? ` Load average ${load(m.loadAverageAtStart)} at the start, ${load(m.loadAverageAtEnd)} at the end.` : ''),
    );
  }
  lines.push('');
  for (const w of ['mixed', 'uniform128', 'long8192'] as const) {
    const rows = sortRows(results.rows.filter((r) => r.workload === w));
    if (rows.length === 0) continue;
    const first = rows.find((r) => r.system !== 'roofline') ?? rows[0]!;
    lines.push(`### ${w}: ${descriptions[w] ?? ''} (${first.tokens} tokens, ${first.texts} texts)`);
    lines.push('');
    lines.push(`| ${HEADER.join(' | ')} |`);
    lines.push(`| ${HEADER.map((_, i) => (i < 3 ? '---' : '---:')).join(' | ')} |`);
    for (const r of rows) lines.push(`| ${cells(r).join(' | ')} |`);
    lines.push('');
  }
  const notes = attentionNotes(results.rows);
  if (notes.length > 0) {
    lines.push('Unfused attention:');
    for (const n of notes) lines.push(`- ${n}`);
    lines.push('');
  }
  if (results.skipped.length > 0) {
    lines.push('Not run:');
    for (const s of results.skipped) lines.push(`- ${s.workload}, ${s.system} ${s.dtype}: ${s.reason}`);
    lines.push('');
  }
  lines.push('Targets (issue 6):');
  lines.push('');
  lines.push('| target | required | measured | |');
  lines.push('| --- | ---: | ---: | --- |');
  for (const t of results.targets) {
    const isRss = t.target.includes('RSS');
    lines.push(
      `| ${t.target} | ${isRss ? `≤ ${t.required}` : `≥ ${t.required}x`} | ${t.actual === undefined ? 'not measured' : isRss ? String(t.actual) : xs(t.actual, t.spread)} | ${t.pass === undefined ? '' : t.pass ? 'pass' : 'FAIL'} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A plain-text table for the terminal. */
export function toConsoleTable(rows: ResultRow[]): string {
  const body = (['mixed', 'uniform128', 'long8192'] as const).flatMap((w) => sortRows(rows.filter((r) => r.workload === w)).map((r) => [w, ...cells(r)]));
  const table = [['workload', ...HEADER], ...body];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((c, i) => (i < 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}
