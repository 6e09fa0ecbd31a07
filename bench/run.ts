/**
 * `npm run bench [-- options]`: BGE-M3's full shape, this package (loaded from the model folder,
 * and as users load it: the repo id through a Hugging Face cache) side by side with the raw
 * onnxruntime floor, transformers.js (as LangChain calls it, and one text at a time) and the
 * machine's matrix-multiply roofline, on the same model file in one run. Never part of `npm test`.
 *
 * 1. Generates the random-weight model on first use (bench/.models/, ~25 s, 2.8 GB on disk).
 * 2. Builds the workloads (deterministic) and installs transformers.js into bench/transformersjs/
 *    with `npm ci` when it is missing.
 * 3. Fills the hub cache for bge-m3-rag-hub on first use: the model served as BAAI/bge-m3 by a
 *    local hub stand-in, downloaded by the package (bench/.models/hub-cache-<model>/, 2.8 GB).
 * 4. Measures interleaved: for each workload, rounds of every system/dtype/outputs combination
 *    (A B C …, the order rotating from round to round), each measurement in a fresh child process
 *    of its own (loaded and warmed up before the clock starts; peak RSS per system and workload).
 *    Throughput is the median over rounds; each ratio (vs the floor, vs transformers.js, int8 vs
 *    fp32, …) is the median of the per-round ratios, reported with their spread, so a noisy
 *    neighbour that slows one round slows both sides of that round's ratio.
 * 5. Prints the table and writes bench/results/latest.{md,json} (`--quick`: quick.{md,json}).
 *
 * `--help` lists the options.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BgeM3Tokenizer } from '../src/model/tokenizer.js';
import { DEFAULT_BATCH_PLAN } from '../src/model/batching.js';
import { MESSAGE_PREFIX, writeWorkloadFile, type AttentionInfo, type ChildConfig, type ChildMessage, type Dtype, type Outputs } from './lib/child-protocol.js';
import { ensureHubCache, HUB_DTYPES, HUB_REPO } from './lib/hub-cache.js';
import { loadAverages, machineInfo } from './lib/machine.js';
import { ensureModel, parameterCount } from './lib/model-generator.js';
import { BENCH_MODELS_DIR, REPO_DIR, RESULTS_DIR, TRANSFORMERS_JS_DIR } from './lib/paths.js';
import {
  addRatios,
  attentionNotes,
  checkTargets,
  isPackageSystem,
  rooflineTokensPerSecond,
  toConsoleTable,
  toMarkdown,
  type BenchResults,
  type ResultRow,
  type Skipped,
  type SystemName,
} from './lib/report.js';
import type { RooflineRates } from './systems/roofline.js';
import { median, rotation } from './lib/stats.js';
import { ensureTransformersJs } from './lib/transformers-js.js';
import { buildWorkload, FULL_SIZES, QUICK_SIZES, WORKLOAD_NAMES, type Workload, type WorkloadName } from './lib/workloads.js';
import { BGE_M3_SHAPE, TINY_SHAPE } from './lib/xlmr-shape.js';

const SYSTEMS: SystemName[] = ['bge-m3-rag', 'bge-m3-rag-hub', 'ort-floor', 'transformers.js-single', 'transformers.js-batch', 'roofline'];

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    workloads: { type: 'string' },
    systems: { type: 'string' },
    dtypes: { type: 'string' },
    outputs: { type: 'string' },
    layers: { type: 'string' },
    seed: { type: 'string', default: '42' },
    threads: { type: 'string' },
    rounds: { type: 'string' },
    'long-rounds': { type: 'string' },
    'full-matrix': { type: 'boolean', default: false },
    'tjs-batch-max-gb': { type: 'string', default: '16' },
    'child-timeout-min': { type: 'string', default: '20' },
    name: { type: 'string' },
    'results-dir': { type: 'string' },
    'cache-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (flags.help) {
  console.log(`Usage: npm run bench -- [options]

  --quick                 small workloads on a 4-layer model (a minute or two), results in quick.{md,json}
  --tiny                  the harness on the conformance fixture's shape (hidden 32): seconds, for its tests
  --workloads LIST        mixed,uniform128,long8192 (default all)
  --systems LIST          ${SYSTEMS.join(',')} (default all)
  --dtypes LIST           fp32,int8 (default both)
  --outputs LIST          dense,all: this package's outputs (default both)
  --full-matrix           also run the long document with every system/dtype/outputs combination
                          (default: the long document runs this package fp32+int8 dense and fp32 all,
                          the fp32 floor and transformers.js fp32, to keep the run under 30 minutes;
                          bge-m3-rag-hub runs dense outputs on mixed and long8192 only)
  --layers N              encoder layers of the generated model (default 24, --quick 4)
  --seed S                model weights and workload seed (default 42)
  --threads N             onnxruntime intra-op threads for every system (default: each system's default)
  --rounds N              interleaved rounds per workload: every combination measured once per round,
                          the order rotating (default 3; --tiny 2)
  --long-rounds N         rounds for the long document (default 1: minutes per measurement; --quick 3)
                          transformers.js's padded mixed batch (3 minutes a run) runs in the first round
                          only unless --quick
  --tjs-batch-max-gb G    skip transformers.js's padded batch when it would need more than G GB
                          (estimated from its attention score tensors; default 16)
  --child-timeout-min M   kill a system that runs longer than M minutes (default 20)
  --name NAME             results file name (default latest, --quick: quick)
  --results-dir DIR       where to write NAME.md and NAME.json (default bench/results)
  --cache-dir DIR         generated models, their hub caches and workload files (default bench/.models)`);
  process.exit(0);
}

const list = <T extends string>(value: string | undefined, all: readonly T[], what: string): T[] => {
  if (!value) return [...all];
  const items = value.split(',').map((s) => s.trim()) as T[];
  for (const i of items) if (!all.includes(i)) throw new Error(`--${what}: unknown value "${i}" (use ${all.join(', ')})`);
  return items;
};

const tiny = flags.tiny;
const quick = flags.quick || tiny;
const workloadNames = list<WorkloadName>(flags.workloads, WORKLOAD_NAMES, 'workloads');
const systems = list<SystemName>(flags.systems, SYSTEMS, 'systems');
const dtypes = list<Dtype>(flags.dtypes, ['fp32', 'int8'], 'dtypes');
const outputsList = list<Outputs>(flags.outputs, ['dense', 'all'], 'outputs');
const layers = Number(flags.layers ?? (tiny ? TINY_SHAPE.layers : quick ? 4 : BGE_M3_SHAPE.layers));
const seed = Number(flags.seed);
const threads = flags.threads ? Number(flags.threads) : undefined;
const rounds = Number(flags.rounds ?? (tiny ? 2 : 3));
const longRounds = Number(flags['long-rounds'] ?? (tiny ? 2 : quick ? rounds : 1));
const tjsBatchMaxBytes = Number(flags['tjs-batch-max-gb']) * 1e9;
const childTimeoutMs = Number(flags['child-timeout-min']) * 60_000;
const resultsName = flags.name ?? (tiny ? 'tiny' : quick ? 'quick' : 'latest');
const resultsDir = flags['results-dir'] ?? RESULTS_DIR;
const cacheDir = flags['cache-dir'] ?? BENCH_MODELS_DIR;
for (const [name, v] of Object.entries({ layers, seed })) if (!Number.isInteger(v)) throw new Error(`--${name} must be an integer`);
for (const [name, v] of Object.entries({ rounds, 'long-rounds': longRounds })) if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${name} must be a positive integer`);
if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw new Error('--threads must be a positive integer');

const started = Date.now();
const loadAverageAtStart = loadAverages();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;
const log = (line: string) => console.error(`[bench ${elapsed()}] ${line}`);

// --- model -------------------------------------------------------------------------------------
const shape = { ...(tiny ? TINY_SHAPE : BGE_M3_SHAPE), layers };
const model = ensureModel({ cacheDir, shape, seed, variants: ['fp32', 'int8'], log });
log(`model: ${model.dir}${model.generated ? ` (generated in ${model.seconds.toFixed(0)} s)` : ''}`);

// --- workloads ---------------------------------------------------------------------------------
const sizes = quick ? QUICK_SIZES : FULL_SIZES;
const tokenizer = await BgeM3Tokenizer.load(join(model.dir, 'tokenizer.json'), join(model.dir, 'tokenizer_config.json'));
const workloadDir = join(cacheDir, 'workloads');
mkdirSync(workloadDir, { recursive: true });
const workloads = new Map<WorkloadName, Workload & { file: string }>();
for (const name of workloadNames) {
  const w = await buildWorkload(name, tokenizer, sizes, seed);
  const file = join(workloadDir, `${name}-${quick ? 'quick' : 'full'}-seed${seed}-v${shape.vocab}.json`);
  writeWorkloadFile(file, { ...w, ids: await Promise.all(w.texts.map((t) => tokenizer.encode(t, 8192))) });
  workloads.set(name, { ...w, file });
  log(`workload ${name}: ${w.description}; ${w.tokens} tokens in ${w.texts.length} texts`);
}

// --- transformers.js ---------------------------------------------------------------------------
const skipped: Skipped[] = [];
const wantsTjs = systems.some((s) => s.startsWith('transformers.js'));
const transformersJsVersion = wantsTjs ? ensureTransformersJs(log) : undefined;

// --- the run plan --------------------------------------------------------------------------------
interface Job {
  system: SystemName;
  dtype: Dtype;
  outputs: Outputs;
  mode?: 'batch' | 'single';
  workloads: WorkloadName[];
}

/** Whether a (system, dtype, outputs) combination runs on the long document by default. */
function runsLong(system: SystemName, dtype: Dtype, outputs: Outputs): boolean {
  if (flags['full-matrix']) return true;
  if (isPackageSystem(system)) return dtype === 'fp32' || outputs === 'dense';
  return dtype === 'fp32';
}

/**
 * The hub-loaded package runs what tells it apart from the folder-loaded one (the same engine):
 * dense outputs on the mixed corpus and the long document, where unfused attention would show.
 */
function hubRuns(outputs: Outputs, w: WorkloadName): boolean {
  return flags['full-matrix'] || (outputs === 'dense' && w !== 'uniform128');
}

const jobs: Job[] = [];
for (const system of systems) {
  if (system === 'roofline') continue;
  for (const dtype of dtypes) {
    for (const outputs of isPackageSystem(system) ? outputsList : (['dense'] as Outputs[])) {
      // transformers.js int8 is outside the issue's comparison; --full-matrix includes it.
      if (system.startsWith('transformers.js') && dtype === 'int8' && !flags['full-matrix']) continue;
      const ws = workloadNames.filter((w) => {
        if (w === 'long8192' && !runsLong(system, dtype, outputs)) return false;
        // One text: the padded batch is the single call; measured once, as transformers.js-single.
        if (w === 'long8192' && system === 'transformers.js-batch') return false;
        if (system === 'bge-m3-rag-hub' && !hubRuns(outputs, w)) return false;
        return true;
      });
      if (ws.length === 0) continue;
      const mode = system === 'transformers.js-batch' ? 'batch' : system === 'transformers.js-single' ? 'single' : undefined;
      jobs.push({ system, dtype, outputs, mode, workloads: ws });
    }
  }
}

/**
 * transformers.js pads LangChain's whole batch to its longest text: skip what cannot fit. The
 * unfused attention materializes `[texts, heads, longest, longest]` float32 score tensors per
 * layer, which onnxruntime's memory arena holds in power-of-two chunks, about three at a time
 * (measured: 79 x 861 tokens, 3.75 GB per tensor, 14.4 GB peak; 95 x 861, 4.5 GB, 17 GB), plus
 * ~2 GB of weights and activations.
 */
function tjsBatchTooBig(w: Workload): string | undefined {
  const batch = Math.min(w.texts.length, 512);
  const longest = Math.max(...w.lengths);
  const scores = batch * shape.heads * longest * longest * 4;
  const peak = 3 * 2 ** Math.ceil(Math.log2(scores)) + 2e9;
  return peak > tjsBatchMaxBytes
    ? `one padded batch of ${batch} x ${longest} tokens would need ~${(peak / 1e9).toFixed(0)} GB (limit --tjs-batch-max-gb ${flags['tjs-batch-max-gb']})`
    : undefined;
}

/**
 * Rounds of one job on one workload: `--rounds`, `--long-rounds` for the long document, and one for
 * transformers.js's padded mixed batch (3 minutes a run, 16x slower than the package: its ratio
 * needs no spread) unless --quick.
 */
function roundsFor(job: Job, w: WorkloadName): number {
  if (w === 'long8192') return longRounds;
  if (job.mode === 'batch' && w === 'mixed' && !quick) return 1;
  return rounds;
}

// --- child processes -------------------------------------------------------------------------------
const require = createRequire(import.meta.url);
const TSX_CLI = require.resolve('tsx/cli');

function childScript(system: SystemName): string {
  if (isPackageSystem(system)) return join(REPO_DIR, 'bench/systems/bge-m3-rag.ts');
  if (system === 'ort-floor') return join(REPO_DIR, 'bench/systems/ort-floor.ts');
  if (system === 'roofline') return join(REPO_DIR, 'bench/systems/roofline.ts');
  return join(TRANSFORMERS_JS_DIR, 'run.ts');
}

/** Runs one child to completion and returns its messages (an error message if it died). */
function runChildProcess(system: SystemName, config: ChildConfig): Promise<ChildMessage[]> {
  return new Promise((resolve) => {
    const messages: ChildMessage[] = [];
    const child = spawn(process.execPath, [TSX_CLI, childScript(system), JSON.stringify(config)], {
      cwd: REPO_DIR,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith(MESSAGE_PREFIX)) messages.push(JSON.parse(line.slice(MESSAGE_PREFIX.length)) as ChildMessage);
        else if (line.trim()) process.stderr.write(`    ${line}\n`);
      }
    });
    const timer = setTimeout(() => {
      messages.push({ type: 'error', message: `timed out after ${flags['child-timeout-min']} min` });
      child.kill('SIGKILL');
    }, childTimeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 && !messages.some((m) => m.type === 'error')) {
        messages.push({ type: 'error', message: `exited with ${signal ?? `code ${code}`}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}` });
      }
      resolve(messages);
    });
  });
}

// --- hub cache ---------------------------------------------------------------------------------------
/** The filled hub cache for bge-m3-rag-hub, or why it could not be filled. */
let hubCache: string | undefined;
let hubFailure: string | undefined;
const hubDtypes = [...new Set(jobs.filter((j) => j.system === 'bge-m3-rag-hub').map((j) => j.dtype))];
if (hubDtypes.length > 0) {
  try {
    const r = await ensureHubCache({ cacheDir, modelDir: model.dir, dtypes: hubDtypes, log });
    hubCache = r.dir;
    if (!r.filled) log(`hub cache: ${r.dir} (complete, reused)`);
  } catch (e) {
    hubFailure = (e as Error).message.split('\n')[0];
    log(`hub cache failed: ${hubFailure}`);
  }
}

// --- run -----------------------------------------------------------------------------------------
const rows: ResultRow[] = [];
let rates: RooflineRates | undefined;
if (systems.includes('roofline')) {
  log('roofline: timing onnxruntime matrix products at the encoder shapes ...');
  const messages = await runChildProcess('roofline', { modelDir: model.dir, dtype: 'fp32', outputs: 'dense', workloads: [], threads });
  for (const m of messages) {
    if (m.type === 'roofline') rates = m.rates as RooflineRates;
    if (m.type === 'error') log(`roofline failed: ${m.message}`);
  }
  if (rates) {
    for (const dtype of dtypes) {
      for (const w of workloads.values()) {
        rows.push({
          workload: w.name,
          system: 'roofline',
          dtype,
          outputs: 'dense',
          tokensPerSecond: rooflineTokensPerSecond(shape, w.lengths, rates, dtype),
          peakRssMB: 0,
          tokens: w.tokens,
          texts: w.texts.length,
          detail: { ratesGflops: mapRates(rates, dtype) },
        });
      }
    }
  }
}

function mapRates(r: RooflineRates, dtype: Dtype): Record<string, number> {
  const out: Record<string, number> = {};
  const names = { hh: `${shape.hidden}x${shape.hidden}`, hf: `${shape.hidden}x${shape.ffn}`, fh: `${shape.ffn}x${shape.hidden}` };
  for (const [k, v] of Object.entries(r.linear[dtype])) out[`linear ${names[k as keyof typeof names]}`] = Math.round(v / 1e9);
  for (const [k, v] of Object.entries(r.attention)) out[`attention T=${k}`] = Math.round(v / 1e9);
  return out;
}

/** What one round of one job on one workload measured. */
interface RoundResult {
  round: number;
  seconds: number;
  peakRssMB: number;
  loadSeconds?: number;
  loadAverage: number;
  attention?: AttentionInfo;
  detail?: Record<string, unknown>;
}

const jobLabel = (job: Job) => `${job.system} ${job.dtype}${isPackageSystem(job.system) ? ` ${job.outputs}` : ''}`;

/** Why a job cannot run a workload at all (recorded as skipped), or undefined. */
function cannotRun(job: Job, w: WorkloadName): string | undefined {
  if (job.system.startsWith('transformers.js') && !transformersJsVersion) return 'transformers.js is not installed (npm ci failed)';
  if (job.system === 'bge-m3-rag-hub' && !hubCache) return `the hub cache could not be filled: ${hubFailure}`;
  return job.mode === 'batch' ? tjsBatchTooBig(workloads.get(w)!) : undefined;
}

/** One measurement: a fresh child process loads the model, warms up, runs the workload once and exits. */
async function measureOnce(job: Job, w: WorkloadName, round: number): Promise<RoundResult | { error: string }> {
  const loadAverage = loadavg()[0]!;
  const messages = await runChildProcess(job.system, {
    modelDir: model.dir,
    dtype: job.dtype,
    outputs: job.outputs,
    mode: job.mode,
    threads,
    workloads: [{ name: w, file: workloads.get(w)!.file, repeat: 1 }],
    ...(job.system === 'bge-m3-rag-hub' ? { hub: { repo: HUB_REPO, cacheDir: hubCache!, dtype: HUB_DTYPES[job.dtype] } } : {}),
  });
  const error = messages.find((m) => m.type === 'error');
  const result = messages.find((m) => m.type === 'result');
  if (error || !result || result.type !== 'result') return { error: error?.type === 'error' ? error.message.split('\n')[0]! : 'no result' };
  const loaded = messages.find((m) => m.type === 'load');
  return {
    round,
    seconds: result.seconds,
    peakRssMB: result.peakRssMB,
    loadSeconds: loaded?.type === 'load' ? loaded.seconds : undefined,
    loadAverage,
    attention: loaded?.type === 'load' ? loaded.attention : undefined,
    detail: result.detail,
  };
}

for (const w of workloadNames) {
  const workload = workloads.get(w)!;
  const participants = jobs.filter((job) => {
    if (!job.workloads.includes(w)) return false;
    const reason = cannotRun(job, w);
    if (reason) skipped.push({ workload: w, system: job.system, dtype: job.dtype, outputs: job.outputs, reason });
    return !reason;
  });
  if (participants.length === 0) continue;
  const maxRounds = Math.max(...participants.map((j) => roundsFor(j, w)));
  log(`${w}: ${participants.length} combinations, ${maxRounds} interleaved round${maxRounds === 1 ? '' : 's'} (${participants.map(jobLabel).join(', ')})`);
  const measured = new Map<Job, RoundResult[]>(participants.map((j) => [j, []]));
  const failed = new Map<Job, string>();
  for (let round = 0; round < maxRounds; round++) {
    for (const i of rotation(participants.length, round)) {
      const job = participants[i]!;
      if (round >= roundsFor(job, w) || failed.has(job)) continue;
      const r = await measureOnce(job, w, round);
      if ('error' in r) {
        log(`  round ${round + 1}/${maxRounds} ${jobLabel(job)}: FAILED: ${r.error}`);
        failed.set(job, r.error);
        continue;
      }
      measured.get(job)!.push(r);
      const attention = r.attention && !r.attention.fused ? `, attention not fused (${r.attention.reason ?? 'no reason given'})` : '';
      log(`  round ${round + 1}/${maxRounds} ${jobLabel(job)}: ${(workload.tokens / r.seconds).toFixed(1)} tokens/s, peak RSS ${r.peakRssMB} MB${attention}`);
    }
  }
  for (const job of participants) {
    const results = measured.get(job)!;
    if (results.length === 0) {
      skipped.push({ workload: w, system: job.system, dtype: job.dtype, outputs: job.outputs, reason: `failed: ${failed.get(job) ?? 'no result'}` });
      continue;
    }
    const roundSeconds: (number | null)[] = Array.from({ length: maxRounds }, (_, k) => results.find((r) => r.round === k)?.seconds ?? null);
    const seconds = median(results.map((r) => r.seconds));
    const attention = results.find((r) => r.attention)?.attention;
    const detail = results[results.length - 1]!.detail;
    const loads = results.map((r) => r.loadSeconds).filter((v): v is number => v !== undefined);
    rows.push({
      workload: w,
      system: job.system,
      dtype: job.dtype,
      outputs: job.outputs,
      tokensPerSecond: workload.tokens / seconds,
      peakRssMB: Math.max(...results.map((r) => r.peakRssMB)),
      tokens: workload.tokens,
      texts: workload.texts.length,
      seconds,
      allSeconds: results.map((r) => r.seconds),
      roundSeconds,
      rounds: results.length,
      ...(loads.length > 0 ? { loadSeconds: median(loads) } : {}),
      loadAverage: Math.max(...results.map((r) => r.loadAverage)),
      ...(attention ? { attention } : {}),
      ...(detail && Object.keys(detail).length > 0 ? { detail } : {}),
      ...(failed.has(job) ? { failedRounds: failed.get(job) } : {}),
    });
  }
}

// --- report --------------------------------------------------------------------------------------
addRatios(rows);
const results: BenchResults = {
  machine: machineInfo({ transformersJs: transformersJsVersion, loadAverageAtStart, loadAverageAtEnd: loadAverages() }),
  settings: {
    model: `random weights, BGE-M3 shape (XLM-R ${shape.layers} layers, hidden ${shape.hidden}, ${shape.heads} heads, FFN ${shape.ffn}, vocab ${shape.vocab}; ${(parameterCount(shape) / 1e6).toFixed(0)}M parameters), seed ${seed}`,
    modelDir: model.dir,
    ...(hubCache ? { hubCacheDir: hubCache, hubRepo: HUB_REPO } : {}),
    quick,
    seed,
    threads: threads ?? 'default',
    rounds,
    longRounds,
    method:
      'interleaved: per workload, rounds of every combination (order rotating), each measurement a fresh child process (load and warm-up excluded); tokens/s from the median seconds over rounds; ratios are medians of per-round ratios, spread min-max over rounds',
    batchPlan: DEFAULT_BATCH_PLAN,
    workloads: Object.fromEntries([...workloads.values()].map((w) => [w.name, { description: w.description, tokens: w.tokens, texts: w.texts.length }])),
    durationSeconds: (Date.now() - started) / 1000,
  },
  rows,
  skipped,
  targets: checkTargets(rows),
};
mkdirSync(resultsDir, { recursive: true });
const descriptions = Object.fromEntries([...workloads.values()].map((w) => [w.name, w.description]));
writeFileSync(join(resultsDir, `${resultsName}.json`), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(resultsDir, `${resultsName}.md`), toMarkdown(results, descriptions));
console.log(toConsoleTable(rows));
console.log('');
for (const t of results.targets) {
  const spread = t.spread && t.spread.n > 1 ? ` (${t.spread.min.toFixed(2)}-${t.spread.max.toFixed(2)} over ${t.spread.n} rounds)` : '';
  const measured = t.actual === undefined ? 'not measured' : t.target.includes('RSS') ? `${t.actual} MB` : `${t.actual.toFixed(2)}x${spread}`;
  console.log(`${t.pass === undefined ? '  -  ' : t.pass ? ' pass' : ' FAIL'}  ${t.target}: ${measured} (target ${t.target.includes('RSS') ? '≤' : '≥'} ${t.required})`);
}
for (const n of attentionNotes(rows)) console.log(`  ${n}`);
for (const s of skipped) console.log(`  not run: ${s.workload} ${s.system} ${s.dtype}: ${s.reason}`);
log(`wrote ${join(resultsDir, `${resultsName}.md`)} and .json`);
