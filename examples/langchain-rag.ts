/**
 * A LangChain.js RAG pipeline with BGE-M3 running locally:
 *   MemoryVectorStore (BgeM3Embeddings, dense) → top 6 candidates
 *   → BgeM3Reranker (colbert + sparse + dense) in a ContextualCompressionRetriever → top 3
 *   → prompt → LLM → answer.
 *
 * Run (after `npm run build`, since it imports the package by name):
 *   node --import tsx examples/langchain-rag.ts [--model <dir or repo id>] [--query "..."]
 * The model defaults to BAAI/bge-m3; `--model test/fixtures/bge-m3-tiny` runs in a second on the
 * test fixture (random weights: the plumbing is real, the ranking is not meaningful).
 */
import { ContextualCompressionRetriever } from '@langchain/classic/retrievers/contextual_compression';
import { MemoryVectorStore } from '@langchain/classic/vectorstores/memory';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import { StringOutputParser } from '@langchain/core/output_parsers';
import { ChatPromptTemplate } from '@langchain/core/prompts';
import { RunnableLambda, RunnablePassthrough, RunnableSequence } from '@langchain/core/runnables';
import { BgeM3Model } from 'bge-m3-rag';
import { BgeM3Embeddings, BgeM3Reranker } from 'bge-m3-rag/langchain';
import { exampleArgs, KNOWLEDGE_BASE } from './knowledge-base.js';

const { model: modelSource, query } = exampleArgs('What does the M3 reranker combine?');

// One model instance serves the embeddings and the reranker.
const model = await BgeM3Model.load(modelSource);
try {
  const docs = KNOWLEDGE_BASE.map((d) => new Document({ pageContent: d.text, metadata: { title: d.title } }));
  const store = await MemoryVectorStore.fromDocuments(docs, new BgeM3Embeddings({ model }));
  const retriever = new ContextualCompressionRetriever({
    baseRetriever: store.asRetriever(6),
    baseCompressor: new BgeM3Reranker({ model, topN: 3 }),
  });

  const prompt = ChatPromptTemplate.fromMessages([
    ['system', 'Answer the question using only this context:\n{context}'],
    ['human', '{question}'],
  ]);

  // LLM STAND-IN, so the example runs offline without a language model: it "answers" with the
  // best-ranked context line. Replace it with a real chat model, e.g. `new ChatOllama({ model: 'llama3.2' })`.
  const standInLlm = RunnableLambda.from(async (value: { toChatMessages(): { content: unknown }[] }) => {
    const system = String(value.toChatMessages()[0]!.content);
    const best = system.split('\n')[1] ?? '(no context)';
    return `[LLM stand-in] Based on the top-ranked context: ${best}`;
  });

  const formatDocs = (found: DocumentInterface[]) => found.map((d) => `${d.pageContent} (${d.metadata.title})`).join('\n');
  const chain = RunnableSequence.from([
    { context: retriever.pipe(formatDocs), question: new RunnablePassthrough() },
    prompt,
    standInLlm,
    new StringOutputParser(),
  ]);

  console.log(`Query: ${query}\n`);
  console.log('Reranked context (colbert+sparse+dense; dense / sparse / colbert):');
  for (const [i, d] of (await retriever.invoke(query)).entries()) {
    const m = d.metadata;
    console.log(`${i + 1}. [${m.relevanceScore.toFixed(4)}] ${m.title} (${m.denseScore.toFixed(3)} / ${m.sparseScore.toFixed(3)} / ${m.colbertScore.toFixed(3)})`);
  }
  console.log(`\nAnswer: ${await chain.invoke(query)}`);
} finally {
  await model.dispose();
}
