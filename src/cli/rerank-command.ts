/**
 * `bge-m3-rag rerank "<query>" [files|-]`: scores passages against the query with the M3 reranker
 * (dense + sparse + ColBERT, the model card's 0.4/0.2/0.4) and prints them best first, as a table
 * or as JSONL (`--json`).
 */
import { M3Reranker } from '../rerankers/m3-reranker.js';
import { CliUsageError, command, EXIT_OK, intOption, loadModel, MODEL_OPTIONS, MODEL_USAGE, parse, PROGRAM, snippet, writeOut } from './common.js';
import { checkFormat, readRecords, type InputRecord } from './text-input.js';

const USAGE = `Usage: ${PROGRAM} rerank "<query>" [files...|-] [options]

Scores passages against the query with the M3 reranker (0.4·dense + 0.2·sparse + 0.4·ColBERT) and
prints them best first. Input: JSONL {"id"?, "text"} (or JSON strings) or one passage per line
(.txt files or --format text); no file or "-" reads stdin.

Options:
  --top-n <n>            only the best n (default: all)
  --json                 JSONL output: {"rank", "id", "score", "dense", "sparse", "colbert", "text"}
  --format <auto|jsonl|text>  how to read lines (default: auto)
  --text-field <name>    the text field of JSON lines (default: text)

${MODEL_USAGE}`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  'top-n': { type: 'string' },
  json: { type: 'boolean', default: false },
  format: { type: 'string' },
  'text-field': { type: 'string' },
} as const;

export const rerankCommand = command('rerank', 'score and order passages against a query (M3 reranker)', USAGE, async (args) => {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  const [query, ...inputs] = positionals;
  if (query === undefined || query.trim() === '') throw new CliUsageError('rerank needs a query: bge-m3-rag rerank "<query>" [files|-]');
  const topN = values['top-n'] === undefined ? undefined : intOption(values['top-n'], '--top-n', 1);
  const format = checkFormat(values.format);
  const passages: InputRecord[] = [];
  // The passages are all needed to order them; they are read before the model loads (bad input fails fast).
  for await (const r of readRecords(inputs, format, values['text-field'] ?? 'text')) passages.push(r);
  const model = await loadModel(values, values.quiet);
  try {
    const reranker = new M3Reranker({ model, maxPassageLength: Math.min(8192, model.maxPositions) });
    const results = await reranker.rerank(
      query,
      passages.map((p) => p.text),
      { topN },
    );
    const single = inputs.length <= 1;
    const idOf = (r: InputRecord) => r.id ?? (single ? String(r.line) : `${r.file}:${r.line}`);
    if (values.json) {
      for (const [rank, r] of results.entries()) {
        const p = passages[r.index]!;
        await writeOut(`${JSON.stringify({ rank: rank + 1, id: idOf(p), score: r.relevanceScore, dense: r.dense, sparse: r.sparse, colbert: r.colbert, text: p.text })}\n`);
      }
    } else {
      const ids = results.map((r) => idOf(passages[r.index]!));
      const w = Math.max(2, ...ids.map((id) => id.length));
      let out = `${'rank'.padStart(4)}  ${'id'.padEnd(w)}  ${'score'.padStart(7)}  ${'dense'.padStart(7)}  ${'sparse'.padStart(7)}  ${'colbert'.padStart(7)}  text\n`;
      for (const [rank, r] of results.entries()) {
        out += `${String(rank + 1).padStart(4)}  ${ids[rank]!.padEnd(w)}  ${r.relevanceScore.toFixed(4).padStart(7)}  ${r.dense.toFixed(4).padStart(7)}  ${r.sparse.toFixed(4).padStart(7)}  ${r.colbert.toFixed(4).padStart(7)}  ${snippet(passages[r.index]!.text, 60)}\n`;
      }
      await writeOut(out);
    }
  } finally {
    await model.dispose();
  }
  return EXIT_OK;
});
