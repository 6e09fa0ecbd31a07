/**
 * `bge-m3-rag embed [files|-]`: JSONL in, JSONL out (`id`, `dense`, `sparse` as `{ indices, values }`,
 * `lexical_weights` as `{ "<token id>": weight }`, and `colbert` with `--colbert`). Lines are encoded
 * in batches of `--batch` as they are read, and output waits for stdout to drain, so memory stays
 * bounded for any input size.
 */
import { toSparseEmbedding } from '../stores/sparse-export.js';
import { command, EXIT_OK, intOption, loadModel, MODEL_OPTIONS, MODEL_USAGE, parse, PROGRAM, writeOut } from './common.js';
import { Progress } from './progress.js';
import { checkFormat, readRecords, type InputRecord } from './text-input.js';

const USAGE = `Usage: ${PROGRAM} embed [files...|-] [options]

Encodes texts with BGE-M3. Input: JSONL, one {"id"?, "text"} object (or a JSON string) per line, or
plain text, one text per line (.txt files, or --format text); no file or "-" reads stdin.
Output (stdout): one JSON object per input line, in order:
  {"id", "dense": [...], "sparse": {"indices": [...], "values": [...]},
   "lexical_weights": {"<token id>": weight, ...}, "colbert": [[...], ...] (with --colbert)}
A line without an id gets "<file>:<line>" (or its line number for stdin).

Options:
  --colbert              also output the ColBERT multi-vectors
  --no-sparse            dense only
  --format <auto|jsonl|text>  how to read lines (default: auto: JSON when a line starts with { or ")
  --text-field <name>    the text field of JSON lines (default: text)
  --max-length <n>       tokens per text, longer texts are truncated (default: 8192)
  --batch <n>            lines encoded at a time (default: 64)

${MODEL_USAGE}`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  colbert: { type: 'boolean', default: false },
  'no-sparse': { type: 'boolean', default: false },
  format: { type: 'string' },
  'text-field': { type: 'string' },
  'max-length': { type: 'string' },
  batch: { type: 'string' },
} as const;

export const embedCommand = command('embed', 'encode texts (JSONL in, dense + sparse (+ ColBERT) JSONL out)', USAGE, async (args) => {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  const format = checkFormat(values.format);
  const batchSize = intOption(values.batch, '--batch', 64);
  const maxLength = intOption(values['max-length'], '--max-length', 8192, 2);
  const textField = values['text-field'] ?? 'text';
  const records = readRecords(positionals, format, textField);
  // Read the first record before loading the model: a missing file or bad first line fails fast.
  const first = await records.next();
  const model = await loadModel(values, values.quiet);
  const progress = new Progress({ quiet: values.quiet, label: 'Embedding', unit: 'texts' });
  try {
    const single = positionals.length <= 1;
    const idOf = (r: InputRecord) => r.id ?? (single && r.file === 'stdin' ? String(r.line) : `${r.file}:${r.line}`);
    let batch: InputRecord[] = first.done ? [] : [first.value];
    const flush = async () => {
      if (batch.length === 0) return;
      const texts = batch.map((r) => r.text);
      const out = await model.encode(texts, {
        maxLength: Math.min(maxLength, model.maxPositions),
        returnDense: true,
        returnSparse: !values['no-sparse'],
        returnColbertVecs: values.colbert,
      });
      let text = '';
      for (const [i, r] of batch.entries()) {
        const row: Record<string, unknown> = { id: idOf(r), dense: Array.from(out.denseVecs![i]!) };
        if (out.lexicalWeights) {
          const weights = out.lexicalWeights[i]!;
          row.sparse = toSparseEmbedding(weights);
          row.lexical_weights = weights;
        }
        if (out.colbertVecs) row.colbert = out.colbertVecs[i]!.map((v) => Array.from(v));
        text += `${JSON.stringify(row)}\n`;
      }
      progress.tick(batch.length, texts.reduce((n, t) => n + t.length, 0) / 4);
      batch = [];
      await writeOut(text);
    };
    for await (const r of records) {
      batch.push(r);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
  } finally {
    progress.stop();
    await model.dispose();
  }
  return EXIT_OK;
});
