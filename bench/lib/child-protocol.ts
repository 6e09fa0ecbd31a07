/**
 * How the benchmark's orchestrator and its child processes talk. Each system runs in its own
 * process (so its peak RSS is its own, and transformers.js's onnxruntime-node never meets this
 * package's): the parent passes a JSON config as the last argument; the child prints one
 * `@@bench {json}` line per event on stdout and logs freely on stderr.
 *
 * Kept free of onnxruntime imports: transformers.js's child imports it too.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { BgeM3Dtype } from '../../src/index.js';
import type { WorkloadName } from './workloads.js';

export const MESSAGE_PREFIX = '@@bench ';

export type Dtype = 'fp32' | 'int8';
export type Outputs = 'dense' | 'all';

export interface ChildConfig {
  modelDir: string;
  dtype: Dtype;
  outputs: Outputs;
  /**
   * Workload files (JSON written by the parent), run in this order, each `repeat` times; the
   * fastest repetition counts (the machine is shared: noise only ever slows a run down).
   */
  workloads: { name: WorkloadName; file: string; repeat: number }[];
  /** transformers.js only: LangChain-style padded batches, or one text per call. */
  mode?: 'batch' | 'single';
  /** onnxruntime intra-op threads (undefined: each system's own default). */
  threads?: number;
  /**
   * bge-m3-rag-hub only: load the repo id from this Hugging Face cache, offline, with the
   * package's `dtype` (as users do), instead of `modelDir`.
   */
  hub?: { repo: string; cacheDir: string; dtype: BgeM3Dtype };
}

/** This package's `model.info.attention`: how many encoder layers run fused attention, and why not. */
export interface AttentionInfo {
  fused: boolean;
  layers: number;
  reason?: string;
}

/** What a workload file holds (written once by the parent, read by every child). */
export interface WorkloadFile {
  name: WorkloadName;
  description: string;
  texts: string[];
  lengths: number[];
  tokens: number;
  /** Token ids per text, for the raw-onnxruntime floor (which must not tokenize). */
  ids: number[][];
}

export type ChildMessage =
  | { type: 'load'; seconds: number; rssMB: number; attention?: AttentionInfo; detail?: Record<string, unknown> }
  | {
      type: 'result';
      workload: WorkloadName;
      tokens: number;
      texts: number;
      /** Fastest repetition. */
      seconds: number;
      allSeconds: number[];
      peakRssMB: number;
      detail?: Record<string, unknown>;
    }
  | { type: 'roofline'; rates: unknown; seconds: number; peakRssMB: number }
  | { type: 'error'; workload?: WorkloadName; message: string };

export function emit(message: ChildMessage): void {
  process.stdout.write(`${MESSAGE_PREFIX}${JSON.stringify(message)}\n`);
}

export function readChildConfig(): ChildConfig {
  const raw = process.argv[process.argv.length - 1];
  if (!raw?.startsWith('{')) throw new Error('expected the child config as a JSON argument');
  return JSON.parse(raw) as ChildConfig;
}

export function readWorkloadFile(file: string): WorkloadFile {
  return JSON.parse(readFileSync(file, 'utf8')) as WorkloadFile;
}

export function writeWorkloadFile(file: string, w: WorkloadFile): void {
  writeFileSync(file, JSON.stringify(w));
}

function statusKB(field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${field}:\\s+(\\d+)`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resets the process's peak-RSS counter to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`),
 * so each workload's peak is its own. Returns false where that is unavailable; peaks are then
 * cumulative over the process (an upper bound), which {@link peakRssMB} reports.
 */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Peak resident memory since the last reset (or process start), in MiB. */
export function peakRssMB(): number {
  const kb = statusKB('VmHWM');
  return Math.round((kb ?? process.resourceUsage().maxRSS) / 1024);
}

export function currentRssMB(): number {
  return Math.round((statusKB('VmRSS') ?? process.memoryUsage().rss / 1024) / 1024);
}

/**
 * Runs `work` `repeat` times and reports the fastest run with the peak RSS over all runs.
 * `work` returns optional details for the report.
 */
export async function measure(
  workload: WorkloadFile,
  repeat: number,
  work: () => Promise<Record<string, unknown> | void>,
): Promise<void> {
  resetPeakRss();
  const allSeconds: number[] = [];
  let detail: Record<string, unknown> | undefined;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    detail = (await work()) ?? undefined;
    allSeconds.push((performance.now() - t0) / 1000);
  }
  emit({
    type: 'result',
    workload: workload.name,
    tokens: workload.tokens,
    texts: workload.texts.length,
    seconds: Math.min(...allSeconds),
    allSeconds,
    peakRssMB: peakRssMB(),
    detail,
  });
}

/** Runs a child's main, reporting any failure as an error message (and a non-zero exit). */
export function runChild(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      emit({ type: 'error', message: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) });
      process.exit(1);
    },
  );
}
