/**
 * A LlamaIndex.TS query engine with BGE-M3 running locally:
 *   VectorStoreIndex (BgeM3Embedding, dense) → top 6 nodes
 *   → BgeM3Rerank node postprocessor (colbert + sparse + dense) → top 3 → response synthesizer.
 *
 * Run (after `npm run build`, since it imports the package by name):
 *   node --import tsx examples/llamaindex-query-engine.ts [--model <dir or repo id>] [--query "..."]
 * The model defaults to BAAI/bge-m3; `--model test/fixtures/bge-m3-tiny` runs in a second on the
 * test fixture (random weights: the plumbing is real, the ranking is not meaningful).
 */
import { MockLLM } from '@llamaindex/core/llms/mock';
import { BgeM3Model } from 'bge-m3-rag';
import { BgeM3Embedding, BgeM3Rerank } from 'bge-m3-rag/llamaindex';
import { Document, Settings, VectorStoreIndex } from 'llamaindex';
import { exampleArgs, KNOWLEDGE_BASE } from './knowledge-base.js';

const { model: modelSource, query } = exampleArgs('What does the M3 reranker combine?');

// One model instance serves the embedding model and the reranker.
const model = await BgeM3Model.load(modelSource);
try {
  Settings.embedModel = new BgeM3Embedding({ model });
  // LLM STAND-IN, so the example runs offline: MockLLM echoes a canned completion. Replace it with a
  // real LLM, e.g. `Settings.llm = new Ollama({ model: 'llama3.2' })` from @llamaindex/ollama.
  Settings.llm = new MockLLM();

  const documents = KNOWLEDGE_BASE.map((d) => new Document({ text: d.text, metadata: { title: d.title } }));
  const index = await VectorStoreIndex.fromDocuments(documents);
  const queryEngine = index.asQueryEngine({
    similarityTopK: 6,
    nodePostprocessors: [new BgeM3Rerank({ model, topN: 3 })],
  });

  const response = await queryEngine.query({ query });
  console.log(`Query: ${query}\n`);
  console.log('Reranked source nodes (colbert+sparse+dense):');
  for (const [i, n] of (response.sourceNodes ?? []).entries()) {
    console.log(`${i + 1}. [${n.score!.toFixed(4)}] ${n.node.metadata.title}`);
  }
  console.log(`\nAnswer ([LLM stand-in] MockLLM): ${response.message.content}`);
} finally {
  await model.dispose();
}
