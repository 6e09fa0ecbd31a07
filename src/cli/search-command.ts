/**
 * `bge-m3-rag search "<query>" --db ...`: hybrid search (dense + sparse candidates, fused), optionally
 * re-ranked with the M3 reranker; a table for people or one JSON document (`--json`) for programs.
 */
import type { MetadataFilter } from '../stores/filter.js';
import type { HybridSearchResult } from '../stores/types.js';
import { CliUsageError, command, EXIT_OK, intOption, loadModel, MODEL_OPTIONS, MODEL_USAGE, parse, PROGRAM, snippet, writeOut } from './common.js';
import { isPostgresUrl, openTarget, type IndexTarget } from './index-target.js';

const USAGE = `Usage: ${PROGRAM} search "<query>" --db <dir | postgres://...> [options]

Hybrid search over an index built by "${PROGRAM} index": dense and sparse candidates, fused
(weighted: the BGE-M3 paper's (dense + 0.3·sparse)/1.3, or rrf), optionally re-ranked by the M3
reranker (dense + sparse + ColBERT).

Options:
  --db <dir|url>         the index folder or postgres://... URL
  --table <name>         PostgreSQL table (default: bge_m3_documents)
  --exact                PostgreSQL: exact scans instead of HNSW candidates
  --k <n>                results (default: 10)
  --filter <json>        metadata filter, e.g. '{"source": "docs/a.md"}' or '{"year": {"$gte": 2020}}'
  --fusion <weighted|rrf>  how the dense and sparse candidates are merged (default: weighted)
  --rerank               re-rank the fused top with the M3 reranker
  --top-n <n>            candidates re-ranked (default: max(k, 20))
  --json                 one JSON document: {"query", "results": [{rank, id, score, dense, sparse,
                         colbert?, colbertSource?, fused, source, chunk, text, metadata}]}
                         (colbertSource: "stored" when the index keeps ColBERT vectors, see
                         index --multi-vectors; "encoded" otherwise)

${MODEL_USAGE}`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  db: { type: 'string' },
  table: { type: 'string' },
  exact: { type: 'boolean', default: false },
  k: { type: 'string' },
  filter: { type: 'string' },
  fusion: { type: 'string' },
  rerank: { type: 'boolean', default: false },
  'top-n': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export const searchCommand = command('search', 'hybrid search over an index (optionally re-ranked)', USAGE, async (args) => {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (positionals.length !== 1 || positionals[0]!.trim() === '') throw new CliUsageError(`search takes one query (quote it); got ${positionals.length} argument(s)`);
  const query = positionals[0]!;
  if (!values.db) throw new CliUsageError('search needs --db <dir | postgres://...>');
  if ((values.exact || values.table) && !isPostgresUrl(values.db)) throw new CliUsageError('--exact and --table apply to a PostgreSQL --db only');
  const k = intOption(values.k, '--k', 10);
  const fusion = values.fusion ?? 'weighted';
  if (fusion !== 'weighted' && fusion !== 'rrf') throw new CliUsageError(`--fusion must be weighted or rrf; got "${fusion}"`);
  if (values['top-n'] !== undefined && !values.rerank) throw new CliUsageError('--top-n needs --rerank');
  const topN = values['top-n'] === undefined ? undefined : intOption(values['top-n'], '--top-n', 1);
  let filter: MetadataFilter | undefined;
  if (values.filter !== undefined) {
    try {
      filter = JSON.parse(values.filter) as MetadataFilter;
    } catch (e) {
      throw new CliUsageError(`--filter is not valid JSON (${(e as Error).message}): ${values.filter}`);
    }
    if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) throw new CliUsageError('--filter must be a JSON object, e.g. {"source": "docs/a.md"}');
  }

  const model = await loadModel(values, values.quiet);
  let target: IndexTarget | undefined;
  let results: HybridSearchResult[];
  try {
    target = await openTarget(values.db, model, { table: values.table, ann: !values.exact, mustExist: true });
    results = await target.index.search(query, { k, fusion, filter, rerank: values.rerank ? (topN === undefined ? true : { topN }) : undefined });
  } finally {
    await target?.close();
    await model.dispose();
  }

  const rows = results.map((r, i) => ({
    rank: i + 1,
    id: r.id,
    score: r.score,
    dense: r.dense,
    sparse: r.sparse,
    ...(r.colbert === undefined ? {} : { colbert: r.colbert }),
    ...(r.colbertSource === undefined ? {} : { colbertSource: r.colbertSource }),
    fused: r.fusedScore ?? r.score,
    source: typeof r.metadata.source === 'string' ? r.metadata.source : undefined,
    chunk: typeof r.metadata.chunk === 'number' ? r.metadata.chunk : undefined,
    text: r.text,
    metadata: r.metadata,
  }));
  if (values.json) {
    await writeOut(`${JSON.stringify({ query, k, fusion, rerank: values.rerank, results: rows })}\n`);
    return EXIT_OK;
  }
  if (rows.length === 0) {
    await writeOut(`No results for "${query}".\n`);
    return EXIT_OK;
  }
  let out = '';
  for (const r of rows) {
    const scores = [`dense ${r.dense.toFixed(4)}`, `sparse ${r.sparse.toFixed(4)}`, ...(r.colbert === undefined ? [] : [`colbert ${r.colbert.toFixed(4)}`]), `fused ${r.fused.toFixed(4)}`];
    out += `${String(r.rank).padStart(2)}. [${r.score.toFixed(4)}] ${r.id}${r.source ? `  (${r.source}${r.chunk === undefined ? '' : `, chunk ${r.chunk}`})` : ''}\n`;
    out += `    ${scores.join(' | ')}\n`;
    out += `    ${snippet(r.text, 100)}\n`;
  }
  await writeOut(out);
  return EXIT_OK;
});
