/**
 * `bge-m3-rag index <paths...> --db <dir | postgres://...>`: reads files and folders, chunks them by
 * tokens, encodes the chunks and adds them to a hybrid index, incrementally (see index-target.ts for
 * the manifest and how batches are committed). Ctrl-C stops after aborting the batch being encoded:
 * every committed batch stays, and running the same command again resumes.
 */
import { createHash } from 'node:crypto';
import { CliUsageError, command, EXIT_INTERRUPTED, EXIT_OK, intOption, loadModel, MODEL_OPTIONS, MODEL_USAGE, parse, PROGRAM } from './common.js';
import { Chunker } from './chunker.js';
import { isAbort, isPostgresUrl, openTarget, type Batch, type IndexTarget, type ManifestEntry } from './index-target.js';
import { Progress } from './progress.js';
import { discover, extract, readSource, EXTENSIONS } from './sources.js';
import type { MultiVectorStorage } from '../stores/multi-vectors.js';
import type { HybridDocumentInput } from '../stores/types.js';

const USAGE = `Usage: ${PROGRAM} index <paths...> --db <dir | postgres://...> [options]

Indexes files, folders (recursively) and glob patterns ("docs/**/*.md") into a hybrid index:
${EXTENSIONS.map((e) => `.${e}`).join(' ')}. Text is split into chunks of at most --chunk-tokens BGE-M3
tokens, --overlap tokens shared between neighbours; each chunk is stored with metadata source (the
path), chunk (its number), start/end (character offsets in the file's text, or in the record's text
for JSON/JSONL/CSV records, whose other fields become metadata too) and sha256 (of the file).

Incremental: unchanged files are skipped, changed files re-chunked (their old chunks deleted), and
files that disappeared from the given folders/patterns have their chunks deleted. Work is committed
every --batch-files files; Ctrl-C keeps what was committed, and running the command again resumes.

Options:
  --db <dir|url>         a folder (created if needed) or postgres://user:pass@host:port/db
  --table <name>         PostgreSQL table (default: bge_m3_documents)
  --ann / --exact        PostgreSQL: HNSW indexes (default) or exact scans only
  --text-field <name>    the text field of .json/.jsonl records and the text column of .csv (default: text)
  --chunk-tokens <n>     tokens per chunk, <s> and </s> included (default: 512)
  --overlap <n>          tokens shared by consecutive chunks (default: 64)
  --batch-files <n>      files per commit (default: 16)
  --multi-vectors <fp16|int8|none>
                         keep each chunk's ColBERT vectors (2 or ~1 KiB per token) so that
                         "search --rerank" scores them instead of encoding the candidates
                         (default: none for a new index, else the index's own setting)

${MODEL_USAGE}`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  db: { type: 'string' },
  table: { type: 'string' },
  ann: { type: 'boolean' },
  exact: { type: 'boolean' },
  'text-field': { type: 'string' },
  'chunk-tokens': { type: 'string' },
  overlap: { type: 'string' },
  'batch-files': { type: 'string' },
  'multi-vectors': { type: 'string' },
} as const;

/** Chunks encoded per commit at most (a batch of files with many chunks is committed earlier). */
const MAX_BATCH_CHUNKS = 1024;

export const indexCommand = command('index', 'index files and folders into a hybrid index (folder or PostgreSQL)', USAGE, async (args) => {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new CliUsageError('index needs at least one file, folder or glob pattern');
  if (!values.db) throw new CliUsageError('index needs --db <dir | postgres://...>');
  if (values.ann && values.exact) throw new CliUsageError('--ann and --exact exclude each other');
  if ((values.ann || values.exact || values.table) && !isPostgresUrl(values.db)) throw new CliUsageError('--ann, --exact and --table apply to a PostgreSQL --db only');
  const chunkTokens = intOption(values['chunk-tokens'], '--chunk-tokens', 512, 8);
  const overlap = intOption(values.overlap, '--overlap', 64, 0);
  if (overlap > (chunkTokens - 2) / 2) throw new CliUsageError(`--overlap (${overlap}) must be at most half of --chunk-tokens minus 2 (${Math.floor((chunkTokens - 2) / 2)})`);
  const batchFiles = intOption(values['batch-files'], '--batch-files', 16);
  const textField = values['text-field'] ?? 'text';
  const multiVectors = multiVectorsOption(values['multi-vectors']);
  const chunking = `tokens=${chunkTokens};overlap=${overlap};field=${textField}`;
  const quiet = values.quiet;

  const found = await discover(positionals);
  const model = await loadModel(values, quiet);
  const stop = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) {
      // A second Ctrl-C: leave now. Writes are atomic (folder) or transactional (PostgreSQL).
      process.stderr.write('\nInterrupted again: exiting now.\n');
      process.exit(EXIT_INTERRUPTED);
    }
    if (!quiet) process.stderr.write('\nInterrupted: stopping after the batch in progress is rolled back (Ctrl-C again to exit at once)…\n');
    stop.abort();
  };
  process.on('SIGINT', onSigint);
  let target: IndexTarget | undefined;
  const started = performance.now();
  const stats = { indexed: 0, skipped: 0, removed: 0, chunks: 0, tokens: 0 };
  let progress: Progress | undefined;
  let dbLabel = values.db;
  try {
    target = await openTarget(values.db, model, { table: values.table, ann: !values.exact, mustExist: false, multiVectors });
    dbLabel = target.description;
    const chunker = await Chunker.load(model.dir, Math.min(chunkTokens, model.maxPositions), overlap);
    const manifest = await target.manifest();
    const present = new Set(found.files);
    const removed = [...manifest.keys()].filter((s) => !present.has(s) && found.inScope(s));
    progress = new Progress({ quiet, label: 'Indexing', unit: 'files', total: found.files.length });

    let batch: Batch = { docs: [], entries: new Map(), removed: [], deleteIds: [] };
    let batchFilesCount = 0;
    let batchTokens = 0;
    for (const source of removed) {
      batch.removed.push(source);
      for (const entry of manifest.get(source)!) batch.deleteIds.push(...entry.ids);
    }
    const commit = async () => {
      if (batch.docs.length === 0 && batch.deleteIds.length === 0 && batch.entries.size === 0 && batch.removed.length === 0) return;
      let reported = 0;
      const tokensPerChunk = batch.docs.length ? batchTokens / batch.docs.length : 0;
      await target!.commit(batch, {
        signal: stop.signal,
        onProgress: ({ phase, done }) => {
          if (phase !== 'encode') return;
          progress!.chunkProgress(done - reported, (done - reported) * tokensPerChunk);
          reported = done;
        },
      });
      progress!.chunkProgress(batch.docs.length - reported, (batch.docs.length - reported) * tokensPerChunk);
      progress!.skip(batchFilesCount);
      stats.indexed += batch.entries.size;
      stats.removed += batch.removed.length;
      stats.chunks += batch.docs.length;
      stats.tokens += batchTokens;
      batch = { docs: [], entries: new Map(), removed: [], deleteIds: [] };
      batchFilesCount = 0;
      batchTokens = 0;
    };

    for (const source of found.files) {
      if (stop.signal.aborted) break;
      const bytes = await readSource(source);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const versions = manifest.get(source) ?? [];
      const current = versions.find((v) => v.sha256 === sha256 && v.chunking === chunking);
      if (current) {
        // Unchanged. Chunks of other versions are left over from an interrupted update: delete them.
        for (const v of versions) if (v !== current) batch.deleteIds.push(...v.ids.filter((id) => !current.ids.includes(id)));
        stats.skipped++;
        progress.skip(1);
        continue;
      }
      const records = await extract(source, bytes, { textField });
      const docs: HybridDocumentInput[] = [];
      for (const record of records) {
        for (const c of await chunker.chunk(record.text)) {
          const n = docs.length;
          const metadata: Record<string, unknown> = { ...record.metadata, source, chunk: n, start: c.start, end: c.end, sha256, chunking };
          if (record.pageStarts) metadata.page = pageOf(record.pageStarts, c.start);
          docs.push({ id: `${source}#${n}`, text: c.text, metadata });
          batchTokens += c.tokens + 2;
        }
      }
      const entry: ManifestEntry = { sha256, chunking, ids: docs.map((d) => d.id!) };
      const keep = new Set(entry.ids);
      for (const v of versions) batch.deleteIds.push(...v.ids.filter((id) => !keep.has(id)));
      batch.docs.push(...docs);
      batch.entries.set(source, entry);
      batchFilesCount++;
      if (batchFilesCount >= batchFiles || batch.docs.length >= MAX_BATCH_CHUNKS) await commit();
    }
    if (!stop.signal.aborted) await commit();
  } catch (e) {
    if (!(stop.signal.aborted && isAbort(e))) throw e;
  } finally {
    progress?.stop();
    process.off('SIGINT', onSigint);
    await target?.close();
    await model.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  const summary = `${stats.indexed} file(s) indexed (${stats.chunks} chunks, ${stats.tokens} tokens), ${stats.skipped} unchanged, ${stats.removed} removed, in ${seconds.toFixed(1)} s`;
  if (stop.signal.aborted) {
    process.stderr.write(`Interrupted: ${summary} were committed to ${dbLabel}. Run the same command again to resume.\n`);
    return EXIT_INTERRUPTED;
  }
  process.stdout.write(`${summary}. Index: ${dbLabel}\n`);
  return EXIT_OK;
});

function pageOf(pageStarts: number[], offset: number): number {
  let page = 1;
  for (let i = 0; i < pageStarts.length; i++) if (pageStarts[i]! <= offset) page = i + 1;
  return page;
}

/** `--multi-vectors fp16|int8|none`: undefined when not given (a new index stores none). */
function multiVectorsOption(value: string | undefined): MultiVectorStorage | undefined {
  if (value === undefined) return undefined;
  if (value === 'fp16' || value === 'int8') return value;
  if (value === 'none') return false;
  throw new CliUsageError(`--multi-vectors must be fp16, int8 or none; got ${JSON.stringify(value)}`);
}
