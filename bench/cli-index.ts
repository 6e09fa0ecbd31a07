/**
 * `npm run bench:cli`: the throughput of `bge-m3-rag index` against the engine's own `encode` on the
 * same chunks, on BGE-M3's full shape (the random-weight model of bench/lib/model-generator.ts), and
 * the index command's peak RSS at two corpus sizes. Writes bench/results/cli-index-latest.{md,json}.
 *
 *   flock /tmp/bench.lock npm run bench:cli                 # ~20 minutes on 2 cores (fp32, the CLI's default)
 *   flock /tmp/bench.lock npm run bench:cli -- --dtype q8   # the int8 graph (both sides)
 *   npm run bench:cli -- --quick                            # seconds: the tiny fixture model, small corpus, no files written
 *
 * What runs (every measurement in its own child process, interleaved A B A B …, alternating which
 * goes first, so drift on a shared machine hits both sides alike):
 *
 * - A, the CLI: `node dist/cli.js index corpus --db <fresh temporary folder> --model <dir>`, the built
 *   bin (package.json "bin"), under `/usr/bin/time` for wall-clock and peak RSS. Its time is the one
 *   the command itself prints ("in X s": everything after the model is loaded: discovering, reading,
 *   extracting (PDF.js for the PDFs), chunking, encoding, saving the index and manifest after every
 *   batch); the process wall-clock (with node start-up and the model load) is reported too.
 * - B, the engine: a plain node child that imports dist/index.js, `BgeM3Model.load(dir)` and times only
 *   `model.encode(chunks, { returnDense: true, returnSparse: true, maxLength })`, one call, on exactly
 *   the chunk texts the index command produces: this script runs the CLI's own discovery, extraction
 *   and chunker (src/cli/sources.ts, src/cli/chunker.ts) once, and checks them against the index the
 *   first A run wrote (same ids, same texts).
 *
 * Both sides are credited with the same token count: the real tokens of the chunks as the engine
 * tokenizes them (`<s>`/`</s>` included, no padding). Neither side warms up (the CLI cannot).
 *
 * The corpus is deterministic in the seed: .txt, .md (headings, lists), .jsonl (records with metadata)
 * and real multi-page PDFs written with pdfkit, from the conformance fixture's multilingual texts
 * (27 languages; the PDFs use the scripts DejaVu Sans draws when that font is installed, else Latin-1
 * with Helvetica). `--scale` sets the 1x size (~46k tokens, ~1.5 minutes per run with fp32), `--big`
 * the multiple measured once more for peak RSS (default 3).
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import PDFDocument from 'pdfkit';
import { Chunker } from '../src/cli/chunker.js';
import { distIsCurrent } from '../src/cli/dev-build.js';
import { discover, extract, readSource } from '../src/cli/sources.js';
import { MemoryHybridIndex } from '../src/stores/memory/memory-hybrid-index.js';
import { ensureModel, FIXTURE_DIR } from './lib/model-generator.js';
import { BENCH_MODELS_DIR, REPO_DIR, RESULTS_DIR } from './lib/paths.js';
import { Xoshiro128 } from './lib/prng.js';
import { BGE_M3_SHAPE } from './lib/xlmr-shape.js';

const HELP = `Usage: npm run bench:cli -- [options]   (run it under: flock /tmp/bench.lock …)

  --pairs <n>      interleaved A/B pairs on the 1x corpus (default 3, at least 3 for the results files)
  --scale <x>      size of the 1x corpus (default 1: ~46k tokens)
  --big <x>        the larger corpus, one A/B pair, for peak RSS vs corpus size (default 3; 0 skips it)
  --dtype <d>      fp32 | fp16 | q8 for both sides (default: none given, i.e. the CLI's default, fp32)
  --model <dir>    model folder (default: the generated 24-layer BGE-M3-shape model)
  --seed <n>       corpus seed (default 7)
  --quick          the tiny fixture model, a small corpus, one pair, nothing written to bench/results
  --keep           keep the temporary folder (corpus, chunks, indexes)
  -h, --help`;

const { values: flags } = parseArgs({
  options: {
    pairs: { type: 'string' },
    scale: { type: 'string' },
    big: { type: 'string' },
    dtype: { type: 'string' },
    model: { type: 'string' },
    seed: { type: 'string' },
    quick: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
const quick = flags.quick;
const pairs = Number(flags.pairs ?? (quick ? 1 : 3));
const scale = Number(flags.scale ?? (quick ? 0.25 : 1));
const big = Number(flags.big ?? (quick ? 0.5 : 3));
const seed = Number(flags.seed ?? 7);
const dtype = flags.dtype;
if (!(pairs >= 1 && scale > 0 && big >= 0 && Number.isInteger(seed))) throw new Error(`bad flags\n${HELP}`);
if (dtype !== undefined && !['fp32', 'fp16', 'q8'].includes(dtype)) throw new Error(`--dtype must be fp32, fp16 or q8\n${HELP}`);
const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// The model and the built CLI.

const modelDir = flags.model ?? (quick ? FIXTURE_DIR : ensureModel({ cacheDir: BENCH_MODELS_DIR, shape: BGE_M3_SHAPE, seed: 42, variants: ['fp32', 'int8'], log }).dir);
const CLI_JS = join(REPO_DIR, 'dist', 'cli.js');
const DIST_INDEX = join(REPO_DIR, 'dist', 'index.js');
if (!distIsCurrent()) {
  log('dist/ is older than the sources: building (tsup) …');
  await run(process.execPath, [join(REPO_DIR, 'node_modules', 'tsup', 'dist', 'cli-default.js'), '--silent'], { cwd: REPO_DIR });
}

// ---------------------------------------------------------------------------------------------
// The corpus.

interface FixtureText {
  text: string;
}

/** Sentences: the fixture's short texts plus its long multilingual documents cut at spaces. */
function sentencePool(): string[] {
  const expected = JSON.parse(readFileSync(join(FIXTURE_DIR, 'expected.json'), 'utf8')) as { texts: FixtureText[] };
  // eslint-disable-next-line no-control-regex
  const clean = (s: string) => s.replace(/[\u0000-\u001f]/g, ' ').replace(/ {2,}/g, ' ').trim();
  const pool = new Set<string>();
  for (const { text } of expected.texts) {
    const t = clean(text);
    if (t.length < 4) continue;
    if (t.length <= 120) {
      pool.add(t);
      continue;
    }
    let start = 0;
    while (start < t.length) {
      let end = Math.min(t.length, start + 40 + ((start * 7919) % 60));
      const space = t.indexOf(' ', end);
      end = space < 0 ? t.length : space;
      const piece = t.slice(start, end).trim();
      if (piece.length > 3) pool.add(piece);
      start = end + 1;
    }
  }
  return [...pool];
}

class Picker {
  private readonly rng: Xoshiro128;
  constructor(stream: string, private readonly pool: string[]) {
    this.rng = new Xoshiro128(seed, stream);
  }
  int(min: number, max: number): number {
    return min + (this.rng.nextUint32() % (max - min + 1));
  }
  sentence(): string {
    return this.pool[this.rng.nextUint32() % this.pool.length]!;
  }
  /** Sentences joined with spaces up to about `chars` characters. */
  text(chars: number): string {
    let out = this.sentence();
    while (out.length < chars) out += ` ${this.sentence()}`;
    return out;
  }
  /** Paragraphs (blank-line separated) of 200-900 characters, about `chars` in all. */
  paragraphs(chars: number): string[] {
    const out: string[] = [];
    let n = 0;
    while (n < chars) {
      const p = this.text(this.int(200, 900));
      out.push(p);
      n += p.length + 2;
    }
    return out;
  }
}

const DEJAVU = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const pdfFont = existsSync(DEJAVU) ? DEJAVU : 'Helvetica';
// Scripts DejaVu Sans draws left to right without shaping (Arabic, Indic and CJK need shaping or
// other fonts, and PDF text extraction of them is a test of the PDF, not of the CLI).
const PDF_SAFE = pdfFont === DEJAVU ? /^[\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}\p{Script=Armenian}\p{Script=Georgian}\p{Script=Common}\p{Script=Inherited}]+$/u : /^[\u0020-\u007e\u00a0-\u00ff]+$/;

function writePdf(path: string, pages: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument({ info: { CreationDate: new Date(0), Producer: 'bench/cli-index.ts' } });
    const out = createWriteStream(path);
    out.on('finish', () => resolve());
    out.on('error', reject);
    doc.pipe(out);
    doc.font(pdfFont).fontSize(11);
    pages.forEach((text, i) => {
      if (i > 0) doc.addPage();
      doc.text(text);
    });
    doc.end();
  });
}

interface CorpusInfo {
  scale: number;
  dir: string;
  files: Record<'txt' | 'md' | 'jsonl' | 'pdf', number>;
  bytes: number;
  chars: number;
}

/** Writes the corpus for `size` (1 = the base size) into `root/corpus`. */
async function buildCorpus(root: string, size: number): Promise<CorpusInfo> {
  const dir = join(root, 'corpus');
  const pool = sentencePool();
  // PDFs: sentences the PDF font draws; pdfkit wraps lines, PDF.js extracts them again.
  const pdfPool = pool.filter((s) => PDF_SAFE.test(s) && !/[\u2000-\u2bff\u3000-\uffff]/u.test(s));
  const count = (n: number) => Math.max(1, Math.round(n * size));
  const files = { txt: count(8), md: count(8), jsonl: count(3), pdf: count(4) };
  let bytes = 0;
  let chars = 0;
  const put = (rel: string, text: string) => {
    const path = join(dir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
    bytes += Buffer.byteLength(text);
    chars += text.length;
  };
  for (let i = 0; i < files.txt; i++) {
    const pick = new Picker(`txt-${i}`, pool);
    put(`notes/${String(i).padStart(3, '0')}-note.txt`, `${pick.paragraphs(pick.int(2500, 6000)).join('\n\n')}\n`);
  }
  for (let i = 0; i < files.md; i++) {
    const pick = new Picker(`md-${i}`, pool);
    const budget = pick.int(2000, 5000);
    let md = `# ${pick.sentence()}\n\n`;
    while (md.length < budget) {
      md += `## ${pick.sentence()}\n\n${pick.paragraphs(pick.int(300, 1200)).join('\n\n')}\n\n`;
      if (pick.int(0, 2) === 0) md += `${Array.from({ length: pick.int(2, 5) }, () => `- ${pick.sentence()}`).join('\n')}\n\n`;
    }
    put(`docs/${i % 2 ? 'guide' : 'reference'}/${String(i).padStart(3, '0')}-page.md`, md);
  }
  for (let i = 0; i < files.jsonl; i++) {
    const pick = new Picker(`jsonl-${i}`, pool);
    const lines = Array.from({ length: 30 }, (_, r) => JSON.stringify({ id: `r${i}-${r}`, title: pick.sentence(), text: pick.text(pick.int(150, 700)), rating: pick.int(1, 5) }));
    put(`data/${String(i).padStart(3, '0')}-records.jsonl`, `${lines.join('\n')}\n`);
  }
  for (let i = 0; i < files.pdf; i++) {
    const pick = new Picker(`pdf-${i}`, pdfPool);
    const pages = Array.from({ length: pick.int(2, 4) }, () => pick.paragraphs(pick.int(1200, 1800)).join('\n\n'));
    const path = join(dir, 'reports', `${String(i).padStart(3, '0')}-report.pdf`);
    mkdirSync(join(path, '..'), { recursive: true });
    await writePdf(path, pages);
    bytes += readFileSync(path).length;
    chars += pages.reduce((n, p) => n + p.length, 0);
  }
  return { scale: size, dir, files, bytes, chars };
}

/** The chunks `index` makes of the corpus, by the CLI's own code (default settings). */
async function cliChunks(cwd: string): Promise<{ ids: string[]; texts: string[]; cliTokens: number }> {
  const found = await discover(['corpus'], cwd);
  const chunker = await Chunker.load(modelDir, 512, 64);
  const ids: string[] = [];
  const texts: string[] = [];
  let cliTokens = 0;
  for (const source of found.files) {
    let n = 0;
    for (const record of await extract(source, await readSource(join(cwd, source)), { textField: 'text' })) {
      for (const c of await chunker.chunk(record.text)) {
        ids.push(`${source}#${n++}`);
        texts.push(c.text);
        cliTokens += c.tokens + 2;
      }
    }
  }
  return { ids, texts, cliTokens };
}

// ---------------------------------------------------------------------------------------------
// Child processes.

interface Proc {
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], options: { cwd: string }): Promise<Proc> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: options.cwd, maxBuffer: 256 << 20, env: { ...process.env, HF_HUB_OFFLINE: '1' } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

interface Timed {
  wallSeconds: number;
  peakRssMB: number;
  cpuSeconds: number;
}

/** Runs a command under /usr/bin/time (wall, peak RSS, CPU). */
async function timed(args: string[], cwd: string, tmp: string): Promise<Proc & Timed> {
  const timeFile = join(tmp, 'time.txt');
  const p = await run('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, ...args], { cwd });
  const [wall, rssKb, user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { ...p, wallSeconds: wall!, peakRssMB: rssKb! / 1024, cpuSeconds: user! + sys! };
}

const ENCODE_CHILD = `// written by bench/cli-index.ts: the engine alone on the chunk texts (dense + sparse, as index encodes them)
import { readFileSync } from 'node:fs';
const [distIndex, modelDir, chunksFile, dtype] = process.argv.slice(2);
const { BgeM3Model } = await import(distIndex);
const texts = JSON.parse(readFileSync(chunksFile, 'utf8'));
const t0 = performance.now();
const model = await BgeM3Model.load(modelDir, dtype ? { dtype } : {});
const loadSeconds = (performance.now() - t0) / 1000;
const maxLength = Math.min(8192, model.maxPositions);
const t1 = performance.now();
const out = await model.encode(texts, { returnDense: true, returnSparse: true, maxLength });
const encodeSeconds = (performance.now() - t1) / 1000;
if (out.denseVecs.length !== texts.length || out.lexicalWeights.length !== texts.length) throw new Error('wrong output count');
const ids = await model.tokenize(texts, { maxLength });
const tokens = ids.reduce((n, t) => n + t.length, 0);
const attention = model.info.attention;
await model.dispose();
process.stdout.write(JSON.stringify({ loadSeconds, encodeSeconds, tokens, chunks: texts.length, attention }) + '\\n');
`;

interface IndexRun extends Timed {
  side: 'index';
  /** What the command prints: everything after the model load. */
  seconds: number;
  chunks: number;
  cliTokens: number;
  loadAverage: number;
}

interface EncodeRun extends Timed {
  side: 'encode';
  seconds: number;
  loadSeconds: number;
  chunks: number;
  tokens: number;
  loadAverage: number;
  attention: unknown;
}

const dtypeArgs = dtype ? ['--dtype', dtype] : [];

async function runIndex(work: string, db: string): Promise<IndexRun> {
  rmSync(db, { recursive: true, force: true });
  const loadAverage = loadavg()[0]!;
  const p = await timed([process.execPath, CLI_JS, 'index', 'corpus', '--db', db, '--model', modelDir, ...dtypeArgs], work, work);
  const m = /\((\d+) chunks, (\d+) tokens\).* in ([\d.]+) s\. Index:/.exec(p.stdout);
  if (!m) throw new Error(`unexpected index output:\n${p.stdout}\n${p.stderr}`);
  return { side: 'index', wallSeconds: p.wallSeconds, peakRssMB: p.peakRssMB, cpuSeconds: p.cpuSeconds, seconds: Number(m[3]), chunks: Number(m[1]), cliTokens: Number(m[2]), loadAverage };
}

async function runEncode(work: string, chunksFile: string): Promise<EncodeRun> {
  const loadAverage = loadavg()[0]!;
  const p = await timed([process.execPath, join(work, 'encode-child.mjs'), DIST_INDEX, modelDir, chunksFile, dtype ?? ''], work, work);
  const r = JSON.parse(p.stdout.trim().split('\n').pop()!) as { loadSeconds: number; encodeSeconds: number; tokens: number; chunks: number; attention: unknown };
  return { side: 'encode', wallSeconds: p.wallSeconds, peakRssMB: p.peakRssMB, cpuSeconds: p.cpuSeconds, seconds: r.encodeSeconds, loadSeconds: r.loadSeconds, chunks: r.chunks, tokens: r.tokens, loadAverage, attention: r.attention };
}

/** Reads the model files once so the first measured run does not pay for a cold page cache. */
async function warmPageCache(): Promise<void> {
  const files = ['onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/model_quantized.onnx', 'onnx/model_quantized.onnx_data', 'onnx/model_fp16.onnx', 'model.onnx'];
  for (const f of files) {
    const path = join(modelDir, f);
    if (!existsSync(path)) continue;
    await new Promise<void>((resolve, reject) => createReadStream(path, { highWaterMark: 8 << 20 }).on('data', () => {}).on('end', resolve).on('error', reject));
  }
}

// ---------------------------------------------------------------------------------------------
// The measurement.

interface Pair {
  index: IndexRun;
  encode: EncodeRun;
  first: 'index' | 'encode';
}

interface CorpusResult {
  corpus: CorpusInfo;
  chunks: number;
  tokens: number;
  cliTokens: number;
  pairs: Pair[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
};

async function measure(root: string, size: number, nPairs: number, startWith: 0 | 1): Promise<CorpusResult> {
  const work = join(root, `x${size}`);
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'encode-child.mjs'), ENCODE_CHILD);
  const corpus = await buildCorpus(work, size);
  const { ids, texts, cliTokens } = await cliChunks(work);
  const chunksFile = join(work, 'chunks.json');
  writeFileSync(chunksFile, JSON.stringify(texts));
  log(`corpus ${size}x: ${Object.entries(corpus.files).map(([k, v]) => `${v} .${k}`).join(', ')}; ${(corpus.bytes / 1024).toFixed(0)} KiB; ${texts.length} chunks, ${cliTokens} tokens (CLI count)`);
  const db = join(work, 'index-db');
  const result: CorpusResult = { corpus, chunks: texts.length, tokens: 0, cliTokens, pairs: [] };
  let checked = false;
  for (let i = 0; i < nPairs; i++) {
    const order: ('index' | 'encode')[] = (i + startWith) % 2 === 0 ? ['index', 'encode'] : ['encode', 'index'];
    const pair: Partial<Pair> = { first: order[0] };
    for (const side of order) {
      if (side === 'index') {
        pair.index = await runIndex(work, db);
        log(`  ${size}x pair ${i + 1} index : ${pair.index.seconds.toFixed(1)} s (process ${pair.index.wallSeconds.toFixed(1)} s), peak RSS ${pair.index.peakRssMB.toFixed(0)} MB, load avg ${pair.index.loadAverage.toFixed(2)}`);
        if (!checked) {
          // The index the CLI wrote holds exactly the chunks given to the engine.
          const index = await MemoryHybridIndex.load(db);
          if ((await index.count()) !== ids.length) throw new Error(`the CLI indexed ${await index.count()} chunks; the CLI's chunker gives ${ids.length}`);
          ids.forEach((id, k) => {
            if (index.get(id)?.text !== texts[k]) throw new Error(`chunk ${id} differs between the written index and the CLI's chunker`);
          });
          if (pair.index.chunks !== ids.length || pair.index.cliTokens !== cliTokens) throw new Error('the CLI summary disagrees with its chunker');
          checked = true;
        }
      } else {
        pair.encode = await runEncode(work, chunksFile);
        result.tokens = pair.encode.tokens;
        log(`  ${size}x pair ${i + 1} encode: ${pair.encode.seconds.toFixed(1)} s (process ${pair.encode.wallSeconds.toFixed(1)} s), peak RSS ${pair.encode.peakRssMB.toFixed(0)} MB, load avg ${pair.encode.loadAverage.toFixed(2)}`);
      }
    }
    result.pairs.push(pair as Pair);
  }
  return result;
}

function summarize(r: CorpusResult) {
  const ratios = r.pairs.map((p) => p.encode.seconds / p.index.seconds);
  const processRatios = r.pairs.map((p) => p.encode.seconds / p.index.wallSeconds);
  const nonEncode = r.pairs.map((p) => 1 - p.encode.seconds / p.index.seconds);
  const tps = (s: number) => r.tokens / s;
  return {
    scale: r.corpus.scale,
    files: r.corpus.files,
    corpusKiB: Math.round(r.corpus.bytes / 1024),
    chunks: r.chunks,
    tokens: r.tokens,
    cliTokens: r.cliTokens,
    pairs: r.pairs.length,
    indexTokensPerSecond: Math.round(median(r.pairs.map((p) => tps(p.index.seconds)))),
    indexProcessTokensPerSecond: Math.round(median(r.pairs.map((p) => tps(p.index.wallSeconds)))),
    encodeTokensPerSecond: Math.round(median(r.pairs.map((p) => tps(p.encode.seconds)))),
    ratio: { median: +median(ratios).toFixed(3), min: +Math.min(...ratios).toFixed(3), max: +Math.max(...ratios).toFixed(3), all: ratios.map((x) => +x.toFixed(3)) },
    processRatio: { median: +median(processRatios).toFixed(3), min: +Math.min(...processRatios).toFixed(3), max: +Math.max(...processRatios).toFixed(3) },
    nonEncodeShare: { median: +median(nonEncode).toFixed(3), min: +Math.min(...nonEncode).toFixed(3), max: +Math.max(...nonEncode).toFixed(3) },
    indexPeakRssMB: Math.round(Math.max(...r.pairs.map((p) => p.index.peakRssMB))),
    encodePeakRssMB: Math.round(Math.max(...r.pairs.map((p) => p.encode.peakRssMB))),
    modelLoadSeconds: +median(r.pairs.map((p) => p.encode.loadSeconds)).toFixed(2),
  };
}

const root = mkdtempSync(join(tmpdir(), 'bge-m3-rag-cli-bench-'));
const startedAt = new Date();
const machine = {
  cpu: cpus()[0]?.model,
  cores: cpus().length,
  memoryGB: +(totalmem() / 2 ** 30).toFixed(1),
  node: process.version,
  onnxruntimeNode: (JSON.parse(readFileSync(join(REPO_DIR, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string }).version,
  date: startedAt.toISOString().slice(0, 10),
};
log(`model ${modelDir} (dtype ${dtype ?? 'the CLI default, fp32'}); work folder ${root}`);
try {
  await warmPageCache();
  const results: CorpusResult[] = [await measure(root, scale, pairs, 0)];
  if (big > 0) results.push(await measure(root, scale * big, 1, pairs % 2 === 0 ? 0 : 1));
  const summary = results.map(summarize);
  const loadAverages = results.flatMap((r) => r.pairs.flatMap((p) => [p.index.loadAverage, p.encode.loadAverage]));

  const fmt = (n: number) => n.toLocaleString('en-US');
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `| corpus | files (txt/md/jsonl/pdf) | chunks | tokens | index tok/s | encode tok/s | index / encode: median [min-max] (pairs) | not encoding | index process tok/s (with model load) | peak RSS index | peak RSS encode |`,
    `| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |`,
    ...summary.map(
      (s) =>
        `| ${s.scale}x (${fmt(s.corpusKiB)} KiB) | ${s.files.txt}/${s.files.md}/${s.files.jsonl}/${s.files.pdf} | ${fmt(s.chunks)} | ${fmt(s.tokens)} | ${fmt(s.indexTokensPerSecond)} | ${fmt(s.encodeTokensPerSecond)} | ` +
        `**${s.ratio.median.toFixed(3)}** [${s.ratio.min.toFixed(3)}-${s.ratio.max.toFixed(3)}] (${s.pairs}) | ${pct(s.nonEncodeShare.median)} | ${fmt(s.indexProcessTokensPerSecond)} | ${fmt(s.indexPeakRssMB)} MB | ${fmt(s.encodePeakRssMB)} MB |`,
    ),
  ];
  const runs = [
    `| corpus | pair | first | index s (command) | index s (process) | encode s | ratio | index peak RSS | encode peak RSS | load avg (index / encode) |`,
    `| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |`,
    ...results.flatMap((r) =>
      r.pairs.map(
        (p, i) =>
          `| ${r.corpus.scale}x | ${i + 1} | ${p.first} | ${p.index.seconds.toFixed(1)} | ${p.index.wallSeconds.toFixed(1)} | ${p.encode.seconds.toFixed(1)} | ${(p.encode.seconds / p.index.seconds).toFixed(3)} | ${p.index.peakRssMB.toFixed(0)} MB | ${p.encode.peakRssMB.toFixed(0)} MB | ${p.index.loadAverage.toFixed(2)} / ${p.encode.loadAverage.toFixed(2)} |`,
      ),
    ),
  ];
  const md = [
    `# \`bge-m3-rag index\` vs the engine's \`encode\` (bench/cli-index.ts)`,
    '',
    `${machine.date}; ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, Node ${machine.node}, onnxruntime-node ${machine.onnxruntimeNode}. ` +
      `Model: ${quick ? 'the tiny fixture' : "random weights with BGE-M3's full shape (24 layers, hidden 1024, vocabulary 250002)"}, dtype ${dtype ?? 'fp32 (the CLI default)'}. ` +
      `Load average during the runs ${Math.min(...loadAverages).toFixed(2)}-${Math.max(...loadAverages).toFixed(2)} (other jobs shared the machine when above ~0.5).`,
    '',
    ...lines,
    '',
    `- **index**: \`bge-m3-rag index corpus --db <fresh folder> --model <dir>\` (dist/cli.js, a child process), the time the command prints ` +
      '(everything after the model load: discovery, reading, PDF/JSONL extraction, chunking, encoding, saving the index and manifest per batch). ' +
      '"index process" is the whole child process: node start-up and model load included.',
    `- **encode**: a child process that loads the same model with \`BgeM3Model.load(dir)\` and times one \`encode(chunks, { returnDense: true, returnSparse: true, maxLength: 8192 })\` ` +
      `on exactly the chunk texts the index holds (checked against the written index). Both credited with the same real tokens (the engine's tokenization of the chunks; the CLI counts ${fmt(summary[0]!.cliTokens)} at 1x).`,
    '- **ratio** = index tokens/s / encode tokens/s per interleaved pair; **not encoding** = 1 - encode time / index time (median). Peak RSS: `/usr/bin/time` maximum resident set of each child.',
    `- Corpus: ${summary[0]!.files.txt} .txt (2,500-6,000 chars in paragraphs), ${summary[0]!.files.md} .md (headings, paragraphs, lists), ${summary[0]!.files.jsonl} .jsonl (30 records of 150-700 chars each, with metadata), ${summary[0]!.files.pdf} PDFs (2-4 pages, pdfkit, font ${pdfFont === DEJAVU ? 'DejaVu Sans' : 'Helvetica'}) at 1x, from the fixture's multilingual texts (seed ${seed}); the larger corpus has ${big}x the files.`,
    '',
    '## Runs',
    '',
    ...runs,
    '',
  ].join('\n');
  process.stdout.write(`\n${lines.join('\n')}\n\n${runs.join('\n')}\n`);
  if (!quick && !flags.model && pairs >= 3) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const name = dtype && dtype !== 'fp32' ? `cli-index-${dtype}-latest` : 'cli-index-latest';
    writeFileSync(join(RESULTS_DIR, `${name}.md`), md);
    writeFileSync(
      join(RESULTS_DIR, `${name}.json`),
      `${JSON.stringify({ machine, settings: { dtype: dtype ?? 'fp32', pairs, scale, big, seed, model: 'bge-m3-random-24L-seed42', pdfFont: pdfFont === DEJAVU ? 'DejaVu Sans' : 'Helvetica', chunkTokens: 512, overlap: 64, batchFiles: 16 }, summary, runs: results.map((r) => ({ scale: r.corpus.scale, pairs: r.pairs })) }, null, 1)}\n`,
    );
    log(`wrote bench/results/${name}.md and .json`);
  }
} finally {
  if (flags.keep) log(`kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
}
