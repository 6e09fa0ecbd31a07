/**
 * `npm run demo`: multilingual hybrid retrieval with BGE-M3, end to end, on your machine.
 *
 * 1. Loads BAAI/bge-m3 (downloaded once into the Hugging Face cache, with progress), or a local
 *    export with `--model <dir>`.
 * 2. Indexes 36 short documents in ten languages and scripts (examples/data/multilingual-docs.json)
 *    with their dense vectors and sparse lexical weights.
 * 3. For queries in several languages: hybrid search (dense + sparse candidates, fused with the
 *    BGE-M3 paper's weights), then the M3 reranker (dense + sparse + ColBERT) on the fused top,
 *    printing each result's relevance, dense, sparse, ColBERT and hybrid scores.
 *
 *   npm run demo                                   # BAAI/bge-m3 (≈2.3 GB download the first time)
 *                                                  # (builds dist/ first only when it is older than src/)
 *   npm run demo -- --model ./path/to/bge-m3       # a local export
 *   npm run demo -- --query "Wer hat das Taj Mahal gebaut?" --k 5
 *
 * With the test fixture (`--model test/fixtures/bge-m3-tiny`, random weights) the plumbing is real
 * but the rankings mean nothing.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BgeM3Error, BgeM3Model, MemoryHybridIndex } from 'bge-m3-rag';

interface DemoDoc {
  id: string;
  lang: string;
  title: string;
  text: string;
}

const DEFAULT_QUERIES = [
  'Which mountain is the highest in Japan?',
  'Wie zeigen Bienen ihren Artgenossen, wo die Blumen sind?',
  '人类第一次登上月球是在什么时候？',
  '¿De dónde viene el café?',
  'من أين جاءت كلمة خوارزمية؟',
  'ताजमहल किसने बनवाया?',
];

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'BAAI/bge-m3' },
    query: { type: 'string', multiple: true },
    k: { type: 'string', default: '3' },
    'rerank-top': { type: 'string', default: '8' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('Usage: npm run demo -- [--model <dir or repo id>] [--query <text>]... [--k 3] [--rerank-top 8]');
  process.exit(0);
}
const k = Number(args.k);
const topN = Number(args['rerank-top']);
const queries = args.query?.length ? args.query : DEFAULT_QUERIES;
const docs = JSON.parse(readFileSync(new URL('./data/multilingual-docs.json', import.meta.url), 'utf8')) as DemoDoc[];

console.error(`Loading ${args.model}…`);
let model: BgeM3Model;
try {
  model = await BgeM3Model.load(args.model);
} catch (e) {
  // Expected failures (no network, no such folder, an incomplete cache): a few lines that say what to
  // do, exit 1, no stack trace. Anything else is a bug and keeps its stack.
  if (!(e instanceof BgeM3Error)) throw e;
  console.error(`\nCannot load ${args.model}: ${e.message}\n`);
  if (e.code === 'DOWNLOAD_FAILED' || e.code === 'MISSING_FILE') {
    console.error(
      [
        'To run the demo without hub access:',
        '  npm run demo -- --model <dir>     a folder holding a BGE-M3 export (e.g. test/fixtures/bge-m3-tiny: random weights, real plumbing)',
        '  or the air-gapped recipe in the README ("Air-gapped machines"): copy a Hugging Face cache made with',
        '  `npx bge-m3-rag download` elsewhere, then HF_HUB_OFFLINE=1 npm run demo',
      ].join('\n'),
    );
  }
  process.exit(1);
}
try {
  const index = new MemoryHybridIndex({ model });
  const started = performance.now();
  await index.add(
    docs.map((d) => ({ id: d.id, text: d.text, metadata: { lang: d.lang, title: d.title } })),
    // A live counter on a terminal; in a log it would only pile up on one line.
    { onProgress: process.stderr.isTTY ? ({ done, total }) => process.stderr.write(`\rIndexing documents: ${done}/${total}`) : undefined },
  );
  console.error(`\rIndexed ${index.size} documents in ${new Set(docs.map((d) => d.lang)).size} languages in ${((performance.now() - started) / 1000).toFixed(1)} s.`);

  for (const query of queries) {
    // Stage 1+2: dense and sparse candidates, fused (dense 1, sparse 0.3); stage 3: the M3 reranker
    // (dense 0.4, sparse 0.2, ColBERT 0.4) over the fused top `topN`.
    const results = await index.search(query, { k, rerank: { topN } });
    console.log(`\nQuery: ${query}`);
    for (const [i, r] of results.entries()) {
      const preview = r.text.length > 70 ? `${r.text.slice(0, 69)}…` : r.text;
      console.log(`  ${i + 1}. [${r.score.toFixed(4)}] ${r.id} (${r.metadata.lang}) ${preview}`);
      console.log(`     dense ${r.dense.toFixed(4)} | sparse ${r.sparse.toFixed(4)} | colbert ${r.colbert!.toFixed(4)} | hybrid ${r.fusedScore!.toFixed(4)}`);
    }
  }
  console.log('\n[score] = M3 reranker relevance, 0.4·dense + 0.2·sparse + 0.4·colbert (weights normalized); hybrid = first-stage (dense + 0.3·sparse)/1.3.');
} finally {
  await model.dispose();
}
