/**
 * Multilingual hybrid search with BGE-M3: the framework-free `MemoryHybridIndex`, then the same
 * index behind LangChain.js and LlamaIndex.TS retrievers.
 *
 *   npm run build   # the example imports the package by name
 *   node --import tsx examples/hybrid-search.ts [--model <dir or repo id>] [--query "..."]
 *
 * The model defaults to BAAI/bge-m3 (downloaded once); `--model test/fixtures/bge-m3-tiny` runs in a
 * second on the test fixture (random weights: real plumbing, meaningless rankings).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BgeM3Model, MemoryHybridIndex, type HybridSearchOptions } from 'bge-m3-rag';
import { BgeM3HybridRetriever as LangChainHybridRetriever } from 'bge-m3-rag/langchain';
import { BgeM3HybridRetriever as LlamaIndexHybridRetriever } from 'bge-m3-rag/llamaindex';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'BAAI/bge-m3' },
    query: { type: 'string', default: 'Wann landeten Menschen zum ersten Mal auf dem Mond?' },
  },
});
const query = args.query;
const docs = JSON.parse(readFileSync(new URL('./data/multilingual-docs.json', import.meta.url), 'utf8')) as { id: string; lang: string; title: string; text: string }[];

const model = await BgeM3Model.load(args.model);
const work = mkdtempSync(join(tmpdir(), 'bge-m3-rag-example-'));
try {
  // 1. Index: dense vectors + sparse lexical weights, encoded in batches.
  const index = new MemoryHybridIndex({ model });
  await index.add(docs.map((d) => ({ id: d.id, text: d.text, metadata: { lang: d.lang, title: d.title } })));
  console.log(`Indexed ${index.size} documents. Query: ${query}\n`);

  // 2. The legs alone and fused. Weighted fusion (the paper's) rescores every candidate exactly;
  //    RRF fuses ranks. Each result carries both leg scores.
  const modes: [string, HybridSearchOptions][] = [
    ['dense only', { weights: { dense: 1, sparse: 0 } }],
    ['sparse only', { weights: { dense: 0, sparse: 1 } }],
    ['hybrid (weighted)', {}],
    ['hybrid (rrf)', { fusion: 'rrf' }],
  ];
  for (const [label, options] of modes) {
    const results = await index.search(query, { k: 3, ...options });
    console.log(`${label}: ${results.map((r) => `${r.id} ${r.score.toFixed(4)}`).join(', ')}`);
  }

  // 3. Metadata filter: only Japanese documents are candidates.
  const japanese = await index.search(query, { k: 2, filter: { lang: 'ja' } });
  console.log(`filter lang=ja: ${japanese.map((r) => r.id).join(', ')}`);

  // 4. Persist and reload (one checksummed file, written atomically).
  await index.save(work);
  const reloaded = await MemoryHybridIndex.load(work, model);
  const same = JSON.stringify(await reloaded.search(query)) === JSON.stringify(await index.search(query));
  console.log(`saved and reloaded: ${reloaded.size} documents, identical results: ${same ? 'yes' : 'no'}`);

  // 5. LangChain.js: a BaseRetriever (use it in chains, ContextualCompressionRetriever, agents…).
  const lcRetriever = new LangChainHybridRetriever({ index, k: 3 });
  for (const doc of await lcRetriever.invoke(query)) {
    const m = doc.metadata;
    console.log(`langchain: ${doc.id} hybrid ${m.hybridScore.toFixed(4)} (dense ${m.denseScore.toFixed(4)}, sparse ${m.sparseScore.toFixed(4)})`);
  }

  // 6. LlamaIndex.TS: a BaseRetriever returning NodeWithScore (use it in RetrieverQueryEngine…).
  const liRetriever = new LlamaIndexHybridRetriever({ index, similarityTopK: 3 });
  for (const { node, score } of await liRetriever.retrieve(query)) {
    console.log(`llamaindex: ${node.id_} ${score!.toFixed(4)}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
  await model.dispose();
}
