/**
 * Turns measured rows into the benchmark's outputs: ratios against the alternatives, the targets
 * of issue 6, a console table, `latest.md` and `latest.json`.
 */
import type { AttentionInfo, Dtype, Outputs } from './child-protocol.js';
import type { RooflineRates } from '../systems/roofline.js';
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
  /** Fastest repetition, seconds (absent for the roofline, which is computed). */
  seconds?: number;
  allSeconds?: number[];
  /** Model load time of the process that produced the row. */
  loadSeconds?: number;
  /** 1-minute load average when the run started: above ~0.5 the machine was not quiet. */
  loadAverage?: number;
  /** This package's rows: `model.info.attention` of the process (fused layers, or why none). */
  attention?: AttentionInfo;
  detail?: Record<string, unknown>;
  /** Filled by {@link addRatios}. */
  ratios?: Partial<Record<'vsFloor' | 'vsTransformersJsSingle' | 'vsTransformersJsBatch' | 'ofRoofline' | 'vsDenseOnly' | 'vsFp32', number>>;
}

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

/** Ratios of each measured row against the alternatives on the same workload and dtype. */
export function addRatios(rows: ResultRow[]): void {
  for (const r of rows) {
    if (r.system === 'roofline') continue;
    const ratio = (other: ResultRow | undefined) => (other && other.tokensPerSecond > 0 ? r.tokensPerSecond / other.tokensPerSecond : undefined);
    const ratios: NonNullable<ResultRow['ratios']> = {};
    if (r.system !== 'ort-floor') ratios.vsFloor = ratio(find(rows, r.workload, 'ort-floor', r.dtype));
    if (isPackageSystem(r.system)) {
      ratios.vsTransformersJsSingle = ratio(find(rows, r.workload, 'transformers.js-single', r.dtype));
      ratios.vsTransformersJsBatch = ratio(find(rows, r.workload, 'transformers.js-batch', r.dtype));
      if (r.outputs === 'all') ratios.vsDenseOnly = ratio(find(rows, r.workload, r.system, r.dtype, 'dense'));
      if (r.dtype === 'int8') ratios.vsFp32 = ratio(find(rows, r.workload, r.system, 'fp32', r.outputs));
    }
    ratios.ofRoofline = ratio(find(rows, r.workload, 'roofline', r.dtype));
    for (const k of Object.keys(ratios) as (keyof typeof ratios)[]) if (ratios[k] === undefined) delete ratios[k];
    r.ratios = ratios;
  }
}

export interface TargetCheck {
  target: string;
  required: number;
  /** undefined when the rows needed were not measured in this run. */
  actual?: number;
  pass?: boolean;
}

/** Issue 6's targets, checked on this run's rows. */
export function checkTargets(rows: ResultRow[]): TargetCheck[] {
  const dense = find(rows, 'mixed', 'bge-m3-rag', 'fp32', 'dense');
  const all = find(rows, 'mixed', 'bge-m3-rag', 'fp32', 'all');
  const int8 = find(rows, 'mixed', 'bge-m3-rag', 'int8', 'dense');
  const long = find(rows, 'long8192', 'bge-m3-rag', 'fp32', 'dense');
  const longAll = find(rows, 'long8192', 'bge-m3-rag', 'fp32', 'all');
  const checks: TargetCheck[] = [
    { target: 'mixed, dense fp32 vs raw-onnxruntime floor', required: 0.9, actual: dense?.ratios?.vsFloor },
    { target: 'mixed, dense fp32 vs transformers.js one text at a time', required: 1.15, actual: dense?.ratios?.vsTransformersJsSingle },
    { target: 'mixed, dense fp32 vs transformers.js batched (LangChain)', required: 2, actual: dense?.ratios?.vsTransformersJsBatch },
    { target: 'mixed, all three outputs vs dense only (fp32)', required: 0.9, actual: all?.ratios?.vsDenseOnly },
    { target: 'mixed, int8 vs fp32 (dense)', required: 1.8, actual: int8?.ratios?.vsFp32 },
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

const HEADER = ['system', 'dtype', 'outputs', 'tokens/s', 'vs floor', 'vs tjs single', 'vs tjs batch', 'of roofline', 'peak RSS MB', 'fused attention', 'load s'];

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
    x(r.ratios?.vsFloor),
    x(r.ratios?.vsTransformersJsSingle),
    x(r.ratios?.vsTransformersJsBatch),
    r.ratios?.ofRoofline === undefined ? '' : `${(r.ratios.ofRoofline * 100).toFixed(0)}%`,
    r.system === 'roofline' ? '' : String(r.peakRssMB),
    fusedCell(r),
    fmt(r.loadSeconds, 1),
  ];
}

/** Markdown tables, one per workload, plus the targets. */
export function toMarkdown(results: BenchResults, descriptions: Partial<Record<WorkloadName, string>>): string {
  const lines: string[] = [];
  const m = results.machine;
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB RAM; Node ${m.node}, onnxruntime-node ${m.onnxruntime}` +
    (m.transformersJs ? `, transformers.js ${m.transformersJs}` : '') + `; ${m.date}.`);
  lines.push(`Model: ${results.settings.model}.`);
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
      `| ${t.target} | ${isRss ? `≤ ${t.required}` : `≥ ${t.required}x`} | ${t.actual === undefined ? 'not measured' : isRss ? String(t.actual) : `${t.actual.toFixed(2)}x`} | ${t.pass === undefined ? '' : t.pass ? 'pass' : 'FAIL'} |`,
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
