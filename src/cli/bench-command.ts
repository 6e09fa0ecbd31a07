/**
 * `bge-m3-rag bench <paths...>`: the throughput of `index` (read, extract, chunk, encode, add to a
 * folder index, save) against the engine's bare `encode` (dense + sparse) of the same chunks, so
 * the overhead of everything around the model is visible. Writes to a temporary folder only.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryHybridIndex } from '../stores/memory/memory-hybrid-index.js';
import { Chunker } from './chunker.js';
import { CliUsageError, command, EXIT_OK, intOption, loadModel, MODEL_OPTIONS, MODEL_USAGE, parse, PROGRAM, writeOut } from './common.js';
import { discover, extract, readSource } from './sources.js';

const USAGE = `Usage: ${PROGRAM} bench <paths...> [options]

Measures "index" throughput (files read, extracted, chunked, encoded, added to a folder index and
saved, in a temporary folder) against the engine's encode (dense + sparse) of the same chunks.
Prints one JSON object: chunks, tokens, and seconds / chunks per second / tokens per second of each.

Options:
  --chunk-tokens <n>     tokens per chunk (default: 512)
  --overlap <n>          tokens shared by consecutive chunks (default: 64)
  --text-field <name>    text field of JSON/JSONL/CSV records (default: text)

${MODEL_USAGE}`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  'chunk-tokens': { type: 'string' },
  overlap: { type: 'string' },
  'text-field': { type: 'string' },
} as const;

export const benchCommand = command('bench', 'index throughput vs the engine encode on the same chunks', USAGE, async (args) => {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new CliUsageError('bench needs at least one file, folder or glob pattern');
  const chunkTokens = intOption(values['chunk-tokens'], '--chunk-tokens', 512, 8);
  const overlap = intOption(values.overlap, '--overlap', 64, 0);
  if (overlap > (chunkTokens - 2) / 2) throw new CliUsageError('--overlap must be at most half of --chunk-tokens minus 2');
  const textField = values['text-field'] ?? 'text';
  const found = await discover(positionals);
  const model = await loadModel(values, true);
  const dir = await mkdtemp(join(tmpdir(), 'bge-m3-rag-bench-'));
  try {
    const chunker = await Chunker.load(model.dir, Math.min(chunkTokens, model.maxPositions), overlap);
    // index: the whole pipeline, as the index command runs it (one batch).
    const t0 = performance.now();
    const docs: { id: string; text: string; metadata: Record<string, unknown> }[] = [];
    let tokens = 0;
    for (const source of found.files) {
      for (const record of await extract(source, await readSource(source), { textField })) {
        for (const c of await chunker.chunk(record.text)) {
          docs.push({ id: `${source}#${docs.length}`, text: c.text, metadata: { source, start: c.start, end: c.end } });
          tokens += c.tokens + 2;
        }
      }
    }
    const index = new MemoryHybridIndex({ model });
    await index.add(docs);
    await index.save(dir);
    const indexSeconds = (performance.now() - t0) / 1000;
    // encode: the engine alone on the same texts.
    const t1 = performance.now();
    await model.encode(
      docs.map((d) => d.text),
      { returnDense: true, returnSparse: true },
    );
    const encodeSeconds = (performance.now() - t1) / 1000;
    const rate = (s: number) => ({ seconds: +s.toFixed(3), chunksPerSecond: +(docs.length / s).toFixed(1), tokensPerSecond: Math.round(tokens / s) });
    await writeOut(
      `${JSON.stringify({ files: found.files.length, chunks: docs.length, tokens, index: rate(indexSeconds), encode: rate(encodeSeconds), overhead: +(indexSeconds / encodeSeconds).toFixed(3) })}\n`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
    await model.dispose();
  }
  return EXIT_OK;
});
