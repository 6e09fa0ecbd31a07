/**
 * `bge-m3-rag index | search | embed | rerank` as child processes (the TypeScript sources through
 * tsx, as test/hub/cli.test.ts runs `download`), on the fixture model and real files in a temporary
 * folder: every supported type including a real PDF (written here with pdfkit), the folder backend
 * and PostgreSQL (BGE_M3_RAG_PG_URL; skipped with a note when unset, an error when
 * CI_REQUIRE_POSTGRES=1), incremental re-indexing, resuming after Ctrl-C, exit codes and messages.
 */
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import PDFDocument from 'pdfkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src', 'cli.ts');
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const MODEL = join(ROOT, 'test', 'fixtures', 'bge-m3-tiny');
const PG_URL = process.env.BGE_M3_RAG_PG_URL;

let work: string;
let emptyCache: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, HF_HUB_OFFLINE: '1', HF_HUB_CACHE: emptyCache, BGE_M3_RAG_PROGRESS_INTERVAL_MS: '100', ...extra };
  delete e.HF_HOME;
  delete e.HF_ENDPOINT;
  return e;
}

function cli(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', TSX, CLI, ...args], { cwd: work, env: env(options.env), timeout: 60_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(options.input ?? '');
  });
}

const m = (...args: string[]) => [...args, '--model', MODEL];

function writePdf(path: string, pages: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument();
    const out = createWriteStream(path);
    out.on('finish', () => resolve());
    out.on('error', reject);
    doc.pipe(out);
    pages.forEach((text, i) => {
      if (i > 0) doc.addPage();
      doc.text(text);
    });
    doc.end();
  });
}

const LONG = Array.from({ length: 40 }, (_, i) => `Sentence ${i} of the long text is about rivers and mountains.`).join(' ');

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'bge-m3-rag-cli-'));
  emptyCache = join(work, 'empty-hub-cache');
  mkdirSync(emptyCache);
  const docs = join(work, 'docs');
  mkdirSync(join(docs, 'sub'), { recursive: true });
  writeFileSync(join(docs, 'long.txt'), LONG);
  writeFileSync(join(docs, 'sub', 'paris.md'), '# Paris\n\nThe Eiffel tower stands in Paris.\n');
  writeFileSync(join(docs, 'page.html'), '<html><head><style>p{}</style></head><body><h1>Volcano</h1><p>Lava <b>flows</b> downhill.</p><script>var x = 1;</script></body></html>');
  writeFileSync(join(docs, 'records.json'), JSON.stringify([{ id: 'r1', text: 'Honey bees dance to show where flowers are.', lang: 'en' }, { text: 'Bienen tanzen.', lang: 'de' }]));
  writeFileSync(join(docs, 'lines.jsonl'), '{"text": "Coffee comes from Ethiopia.", "lang": "en"}\n\n{"text": "Café viene de Etiopía.", "lang": "es"}\n');
  writeFileSync(join(docs, 'table.csv'), 'title,text,year\nMoon,"Apollo 11 landed on the Moon, in 1969.",1969\nMars,Rovers drive on Mars.,2004\n');
  await writePdf(join(docs, 'report.pdf'), ['The first page is about zebras.', 'The second page mentions giraffes.']);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface JsonResult {
  rank: number;
  id: string;
  score: number;
  dense: number;
  sparse: number;
  colbert?: number;
  colbertSource?: 'stored' | 'encoded';
  fused: number;
  source: string;
  chunk: number;
  text: string;
  metadata: Record<string, unknown>;
}

async function searchJson(db: string, query: string, extra: string[] = []): Promise<JsonResult[]> {
  const r = await cli(m('search', query, '--db', db, '--json', ...extra));
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { results: JsonResult[] }).results;
}

describe('help, version and usage errors', () => {
  it('every command has --help; --version prints the version; the top-level help lists them', async () => {
    for (const name of ['index', 'search', 'embed', 'rerank', 'bench']) {
      const r = await cli([name, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: bge-m3-rag ${name}`);
      expect(r.stdout).toContain('--model <dir|repo>');
      expect(r.stdout).toContain('Exit codes: 0 success, 1 failure');
    }
    const version = await cli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
    const top = await cli(['--help']);
    for (const name of ['download', 'verify', 'index', 'search', 'embed', 'rerank', 'bench']) expect(top.stdout).toMatch(new RegExp(`^ {2}${name} `, 'm'));
  });

  it('usage errors exit 2 with the message and the usage', async () => {
    const noDb = await cli(m('index', 'docs'));
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toContain('index needs --db');
    expect(noDb.stderr).toContain('Usage: bge-m3-rag index');
    const badOption = await cli(m('search', 'q', '--db', 'x', '--bogus'));
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toContain("Unknown option '--bogus'");
    const badFilter = await cli(m('search', 'q', '--db', 'x', '--filter', '{nope'));
    expect(badFilter.code).toBe(2);
    expect(badFilter.stderr).toContain('--filter is not valid JSON');
    const badDtype = await cli(m('embed', '--dtype', 'int4'));
    expect(badDtype.code).toBe(2);
  });
});

describe('index and search, folder backend', () => {
  const db = 'index-dir';

  it('indexes every file type, with token chunks and their metadata', async () => {
    const r = await cli(m('index', 'docs', '--db', db, '--chunk-tokens', '32', '--overlap', '4'));
    // stderr is not a terminal: progress comes as plain lines (every 100 ms here, 5 s by default).
    for (const line of r.stderr.split('\n').filter(Boolean)) expect(line).toMatch(/^Indexing: \d+\/7 files, \d+ chunks, [\d.]+ docs\/s, \d+ tokens\/s, \d+ s elapsed/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^7 file\(s\) indexed \(\d+ chunks, \d+ tokens\), 0 unchanged, 0 removed/);
    const manifest = JSON.parse(readFileSync(join(work, db, 'bge-m3-rag-manifest.json'), 'utf8'));
    expect(Object.keys(manifest.files).sort()).toEqual(['docs/lines.jsonl', 'docs/long.txt', 'docs/page.html', 'docs/records.json', 'docs/report.pdf', 'docs/sub/paris.md', 'docs/table.csv']);

    // The long text: several overlapping chunks whose offsets point into the file.
    const long = await searchJson(db, 'rivers', ['--k', '100', '--filter', '{"source": "docs/long.txt"}']);
    expect(long.length).toBeGreaterThan(3);
    const byChunk = [...long].sort((a, b) => a.chunk - b.chunk);
    expect(byChunk.map((c) => c.chunk)).toEqual(byChunk.map((_, i) => i));
    for (const c of byChunk) {
      expect(c.id).toBe(`docs/long.txt#${c.chunk}`);
      expect(LONG.slice(c.metadata.start as number, c.metadata.end as number)).toBe(c.text);
    }
    expect(byChunk[1]!.metadata.start as number).toBeLessThan(byChunk[0]!.metadata.end as number); // overlap
    expect(byChunk.at(-1)!.metadata.end).toBe(LONG.length);

    const html = await searchJson(db, 'lava', ['--filter', '{"source": "docs/page.html"}']);
    expect(html[0]!.text).toContain('Lava flows downhill.');
    expect(html[0]!.text).not.toMatch(/<b>|var x/);
    const csv = await searchJson(db, 'Moon', ['--filter', '{"source": "docs/table.csv"}']);
    expect(csv.map((c) => [c.text, c.metadata.title, c.metadata.year, c.metadata.row]).sort()).toEqual([
      ['Apollo 11 landed on the Moon, in 1969.', 'Moon', '1969', 1],
      ['Rovers drive on Mars.', 'Mars', '2004', 2],
    ]);
    const german = await searchJson(db, 'x', ['--filter', '{"lang": "de"}']);
    expect(german.map((g) => [g.text, g.source])).toEqual([['Bienen tanzen.', 'docs/records.json']]);
    const jsonl = await searchJson(db, 'coffee', ['--filter', '{"source": "docs/lines.jsonl"}']);
    expect(jsonl.map((j) => j.metadata.line).sort()).toEqual([1, 3]);
    const pdf = await searchJson(db, 'giraffes', ['--filter', '{"source": "docs/report.pdf"}']);
    expect(pdf[0]!.text).toContain('zebras');
    expect(pdf[0]!.text).toContain('giraffes');
    expect(pdf[0]!.metadata.pages).toBe(2);
  });

  it('search: a table for people, JSON with scores, --rerank adds ColBERT, --fusion rrf', async () => {
    const human = await cli(m('search', 'Eiffel tower in Paris', '--db', db, '--k', '3'));
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ 1\. \[-?\d+\.\d{4}\] \S+#\d+ {2}\(docs\/\S+, chunk \d+\)\n {4}dense -?\d\.\d{4} \| sparse \d\.\d{4} \| fused -?\d\.\d{4}\n {4}\S/);
    expect(human.stdout.match(/^ ?\d+\. /gm)).toHaveLength(3);
    const reranked = await searchJson(db, 'Eiffel tower in Paris', ['--k', '2', '--rerank', '--top-n', '5']);
    expect(reranked).toHaveLength(2);
    for (const r of reranked) expect(typeof r.colbert).toBe('number');
    expect(reranked[0]!.score).toBeGreaterThanOrEqual(reranked[1]!.score);
    const rrf = await searchJson(db, 'Eiffel tower in Paris', ['--fusion', 'rrf', '--k', '2']);
    expect(rrf[0]!.score).toBeLessThan(0.05); // RRF scores are ~1/60
  });

  it('index --multi-vectors keeps ColBERT vectors: search --rerank scores from them, within 1e-3 of encoding', async () => {
    const bad = await cli(m('index', 'docs', '--db', 'index-mv', '--multi-vectors', 'fp32'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--multi-vectors must be fp16, int8 or none; got "fp32"');
    const r = await cli(m('index', 'docs', '--db', 'index-mv', '--chunk-tokens', '32', '--overlap', '4', '--multi-vectors', 'fp16', '--quiet'));
    expect(r.code).toBe(0);
    expect(readdirSync(join(work, 'index-mv')).filter((f) => f.endsWith('.colbert'))).toHaveLength(1);
    const query = 'Eiffel tower in Paris';
    const stored = await searchJson('index-mv', query, ['--k', '5', '--rerank', '--top-n', '8']);
    const encoded = await searchJson(db, query, ['--k', '5', '--rerank', '--top-n', '8']);
    expect(stored.map((s) => s.colbertSource)).toEqual(Array(5).fill('stored'));
    expect(encoded.map((s) => s.colbertSource)).toEqual(Array(5).fill('encoded'));
    const byId = new Map(encoded.map((e) => [e.id, e]));
    const both = stored.filter((s) => byId.has(s.id));
    expect(both.length).toBeGreaterThanOrEqual(3);
    for (const s of both) expect(Math.abs(s.score - byId.get(s.id)!.score)).toBeLessThan(1e-3);
  });

  it('re-indexing skips unchanged files, re-chunks changed ones and drops removed ones', async () => {
    const again = await cli(m('index', 'docs', '--db', db, '--chunk-tokens', '32', '--overlap', '4'));
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^0 file\(s\) indexed \(0 chunks, 0 tokens\), 7 unchanged, 0 removed/);
    writeFileSync(join(work, 'docs', 'sub', 'paris.md'), '# Paris\n\nThe Louvre is a museum in Paris.\n');
    unlinkSync(join(work, 'docs', 'page.html'));
    const changed = await cli(m('index', 'docs', '--db', db, '--chunk-tokens', '32', '--overlap', '4'));
    expect(changed.code).toBe(0);
    expect(changed.stdout).toMatch(/^1 file\(s\) indexed \(1 chunks, \d+ tokens\), 5 unchanged, 1 removed/);
    const all = await searchJson(db, 'Paris', ['--k', '100']);
    expect(all.some((r) => r.source === 'docs/page.html')).toBe(false);
    expect(all.filter((r) => r.source === 'docs/sub/paris.md').map((r) => r.text)).toEqual(['# Paris\n\nThe Louvre is a museum in Paris.\n']);
    // Other chunk settings re-chunk everything.
    const rechunk = await cli(m('index', 'docs', '--db', db, '--chunk-tokens', '64', '--overlap', '4', '--quiet'));
    expect(rechunk.stdout).toMatch(/^6 file\(s\) indexed/);
  });

  it('Ctrl-C mid-run keeps the committed batches, and the next run resumes', async () => {
    const many = join(work, 'many');
    mkdirSync(many);
    for (let i = 0; i < 240; i++) writeFileSync(join(many, `f${String(i).padStart(3, '0')}.txt`), `File ${i} is about topic ${i % 7}. `.repeat(30));
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...m('index', 'many', '--db', 'resume-db', '--chunk-tokens', '32', '--overlap', '4', '--batch-files', '4')], { cwd: work, env: env() });
    let stderr = '';
    const done = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/Indexing: ([4-9]|\d\d+)\/240 files/.test(stderr)) resolve();
      });
      child.on('exit', () => resolve());
    });
    child.kill('SIGINT');
    const code = await done;
    expect(code).toBe(130);
    expect(stderr).toMatch(/Interrupted: (\d+) file\(s\) indexed .* were committed to .*resume-db\. Run the same command again to resume\./);
    const committed = Number(/Interrupted: (\d+) file/.exec(stderr)![1]);
    expect(committed).toBeGreaterThan(0);
    expect(committed).toBeLessThan(240);
    expect(committed % 4).toBe(0); // whole batches only
    const manifest = JSON.parse(readFileSync(join(work, 'resume-db', 'bge-m3-rag-manifest.json'), 'utf8'));
    expect(Object.keys(manifest.files)).toHaveLength(committed);
    expect(existsSync(join(work, 'resume-db', 'hybrid-index.bgem3'))).toBe(true);

    const resumed = await cli(m('index', 'many', '--db', 'resume-db', '--chunk-tokens', '32', '--overlap', '4', '--batch-files', '4', '--quiet'));
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`^${240 - committed} file\\(s\\) indexed \\(\\d+ chunks, \\d+ tokens\\), ${committed} unchanged, 0 removed`));
    const full = await cli(m('index', 'many', '--db', 'full-db', '--chunk-tokens', '32', '--overlap', '4', '--quiet'));
    const chunks = (s: string) => Number(/\((\d+) chunks/.exec(s)![1]);
    const perFile = JSON.parse(readFileSync(join(work, 'resume-db', 'bge-m3-rag-manifest.json'), 'utf8')).files as Record<string, { ids: string[] }>;
    expect(Object.values(perFile).reduce((n, f) => n + f.ids.length, 0)).toBe(chunks(full.stdout));
  });

  it('failures name the file and line, exit 1, no stack trace', async () => {
    writeFileSync(join(work, 'bad.jsonl'), '{"text": "ok"}\n{"text": broken}\n');
    const bad = await cli(m('index', 'bad.jsonl', '--db', 'bad-db'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('bad.jsonl:2: not valid JSON');
    const missing = await cli(m('index', 'nowhere', '--db', 'bad-db'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('Cannot read nowhere: no such file or folder.');
    const noIndex = await cli(m('search', 'q', '--db', 'never-built'));
    expect(noIndex.code).toBe(1);
    expect(noIndex.stderr).toContain('No index in never-built');
    for (const r of [bad, missing, noIndex]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('no hub access and no --model: says to pass --model <dir> or follow the air-gapped recipe', async () => {
    const r = await cli(['search', 'q', '--db', 'index-dir']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Cannot load the model "BAAI/bge-m3"');
    expect(r.stderr).toContain('--model <dir>');
    expect(r.stderr).toContain('Air-gapped machines');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const nothing = await cli(['embed', '--model', join(work, 'no-such-model')], { input: 'hello\n' });
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('no-such-model');
    expect(nothing.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('embed and rerank', () => {
  it('embed: JSONL and plain lines in, dense + sparse (+ ColBERT) JSONL out, in order', async () => {
    const input = '{"id": "a", "text": "BGE M3 is an embedding model"}\nplain text line\n\n"a JSON string"\n{"id": 7, "text": "seven"}\n';
    const r = await cli(m('embed', '--colbert'), { input });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x) => x.id)).toEqual(['a', '2', '4', '7']);
    const dim = rows[0].dense.length;
    expect(dim).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.dense).toHaveLength(dim);
      expect(Math.hypot(...row.dense)).toBeCloseTo(1, 4);
      expect(row.sparse.indices.length).toBe(row.sparse.values.length);
      expect(row.sparse.indices.map(String)).toEqual(Object.keys(row.lexical_weights));
      expect(row.sparse.values).toEqual(Object.values(row.lexical_weights));
      expect(row.colbert.length).toBeGreaterThan(0);
      expect(row.colbert[0]).toHaveLength(dim);
    }
    // Same texts from a file, one batch at a time: the same vectors.
    writeFileSync(join(work, 'texts.txt'), 'BGE M3 is an embedding model\nplain text line\n');
    const file = await cli(m('embed', 'texts.txt', '--batch', '1', '--no-sparse'));
    const fromFile = file.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(fromFile.map((x) => x.id)).toEqual(['texts.txt:1', 'texts.txt:2']);
    expect(fromFile[0].sparse).toBeUndefined();
    fromFile[0].dense.forEach((v: number, i: number) => expect(v).toBeCloseTo(rows[0].dense[i], 5));
  });

  it('embed: a bad line names the file and line number', async () => {
    writeFileSync(join(work, 'in.jsonl'), '{"text": "fine"}\n{"txt": "no text field"}\n');
    const r = await cli(m('embed', 'in.jsonl'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('in.jsonl:2: the object has no string "text" field');
  });

  it('rerank: passages scored and ordered, as a table or JSONL', async () => {
    writeFileSync(join(work, 'passages.jsonl'), ['BM25 is a bag-of-words retrieval function', 'BGE M3 is an embedding model', 'Defination of BM25'].map((text, i) => JSON.stringify({ id: `p${i}`, text })).join('\n'));
    const json = await cli(m('rerank', 'What is BGE M3?', 'passages.jsonl', '--json'));
    expect(json.code).toBe(0);
    const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x) => x.rank)).toEqual([1, 2, 3]);
    expect(rows.map((x) => x.id).sort()).toEqual(['p0', 'p1', 'p2']);
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1].score).toBeGreaterThanOrEqual(rows[i].score);
    for (const row of rows) expect(Object.keys(row)).toEqual(['rank', 'id', 'score', 'dense', 'sparse', 'colbert', 'text']);
    const table = await cli(m('rerank', 'What is BGE M3?', '--top-n', '2'), { input: 'one passage\nanother passage\nthird\n' });
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^rank +id +score +dense +sparse +colbert +text$/);
    expect(table.stdout.trim().split('\n')).toHaveLength(3);
  });
});

describe('bench', () => {
  it('reports index and encode throughput on the same chunks', async () => {
    const r = await cli(m('bench', 'docs', '--chunk-tokens', '32', '--overlap', '4'));
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.chunks).toBeGreaterThan(5);
    for (const leg of [out.index, out.encode]) {
      expect(leg.seconds).toBeGreaterThan(0);
      expect(leg.chunksPerSecond).toBeGreaterThan(0);
      expect(leg.tokensPerSecond).toBeGreaterThan(0);
    }
  });
});

describe('index and search, PostgreSQL backend', () => {
  const table = `cli_test_${process.pid}`;
  let skip = false;
  beforeAll(() => {
    if (!PG_URL) {
      if (process.env.CI_REQUIRE_POSTGRES === '1') throw new Error('CI_REQUIRE_POSTGRES=1 but BGE_M3_RAG_PG_URL is not set.');
      console.log('Skipping the PostgreSQL CLI tests: BGE_M3_RAG_PG_URL is not set (npm run db:start).');
      skip = true;
    }
  });
  afterAll(async () => {
    if (skip || !PG_URL) return;
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP TABLE IF EXISTS ${table}, ${table}_meta; DROP SEQUENCE IF EXISTS ${table}_seq`);
    await client.end();
  });

  it('indexes, skips unchanged files, re-chunks changed ones, and searches (ANN and exact)', async () => {
    if (skip) return;
    const pgDocs = join(work, 'pg-docs');
    mkdirSync(pgDocs);
    writeFileSync(join(pgDocs, 'a.txt'), LONG);
    writeFileSync(join(pgDocs, 'b.md'), 'The Eiffel tower stands in Paris.');
    await writePdf(join(pgDocs, 'c.pdf'), ['Zebras have stripes.']);
    const first = await cli(m('index', 'pg-docs', '--db', PG_URL!, '--table', table, '--chunk-tokens', '32', '--overlap', '4', '--multi-vectors', 'int8', '--quiet'));
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^3 file\(s\) indexed/);
    if (new URL(PG_URL!).password) expect(first.stdout).not.toContain(`:${new URL(PG_URL!).password}@`); // the password is not printed
    const again = await cli(m('index', 'pg-docs', '--db', PG_URL!, '--table', table, '--chunk-tokens', '32', '--overlap', '4', '--exact'));
    expect(again.stdout).toMatch(/^0 file\(s\) indexed \(0 chunks, 0 tokens\), 3 unchanged, 0 removed/);
    writeFileSync(join(pgDocs, 'a.txt'), 'Now a short text about rivers.');
    unlinkSync(join(pgDocs, 'b.md'));
    const changed = await cli(m('index', 'pg-docs', '--db', PG_URL!, '--table', table, '--chunk-tokens', '32', '--overlap', '4'));
    expect(changed.stdout).toMatch(/^1 file\(s\) indexed \(1 chunks, \d+ tokens\), 1 unchanged, 1 removed/);
    const exact = await searchJson(PG_URL!, 'rivers', ['--table', table, '--exact', '--k', '10']);
    expect(exact.map((r) => r.id).sort()).toEqual(['pg-docs/a.txt#0', 'pg-docs/c.pdf#0']);
    const ann = await searchJson(PG_URL!, 'zebras', ['--table', table, '--k', '1', '--rerank']);
    expect(ann[0]!.id).toBe('pg-docs/c.pdf#0');
    expect(typeof ann[0]!.colbert).toBe('number');
    // The table keeps int8 ColBERT vectors (set by the first run, kept by the later ones).
    const reranked = await searchJson(PG_URL!, 'rivers', ['--table', table, '--exact', '--rerank']);
    expect(reranked.map((r) => [r.id, r.colbertSource]).sort()).toEqual([['pg-docs/a.txt#0', 'stored'], ['pg-docs/c.pdf#0', 'stored']]);
  });

  it('an unreachable database is a one-line error, exit 1', async () => {
    if (skip) return;
    const r = await cli(m('search', 'q', '--db', 'postgres://nobody:secret@127.0.0.1:1/none'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Cannot connect to the database postgres://nobody:***@127.0.0.1:1/none');
    expect(r.stderr).not.toContain('secret');
  });
});
