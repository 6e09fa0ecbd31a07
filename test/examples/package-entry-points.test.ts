/**
 * The built package as consumers see it (`dist/` through the `exports` map; CI runs `npm run build`
 * before the tests): ESM `import` and CJS `require` of every entry point work end to end on the
 * fixture model and give the same numbers, each build uses the framework build of its own format
 * (no dual-package mixing: `instanceof` the consumer's framework classes holds), and importing
 * `bge-m3-rag` alone never resolves LangChain or LlamaIndex.
 * Each check runs in a child process so the module graph starts empty.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_DIR } from '../helpers.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FRAMEWORK = /[\\/]node_modules[\\/](@langchain|@llamaindex|llamaindex)[\\/]/;

/** The same end-to-end work for both formats; `m` holds the modules, loaded the consumer's way. */
const WORKLOAD = `
  const query = 'What is BGE M3?';
  const texts = ['BM25 is a bag-of-words retrieval function', 'BGE M3 is an embedding model', 'Defination of BM25'];
  const model = await m.core.BgeM3Model.load(process.env.TINY_DIR);
  const lcEmbeddings = new m.lc.BgeM3Embeddings({ model });
  const lcReranker = new m.lc.BgeM3Reranker({ model, topN: 2 });
  const liEmbedding = new m.li.BgeM3Embedding({ model });
  const liRerank = new m.li.BgeM3Rerank({ model, topN: 2 });
  const docs = await lcReranker.compressDocuments(texts.map((t) => new m.documents.Document({ pageContent: t })), query);
  const nodes = await liRerank.postprocessNodes(texts.map((t) => ({ node: new m.schema.TextNode({ text: t }) })), query);
  const out = {
    instanceOf: {
      embeddings: lcEmbeddings instanceof m.lcEmbeddings.Embeddings,
      compressor: lcReranker instanceof m.compressors.BaseDocumentCompressor,
      baseEmbedding: liEmbedding instanceof m.liEmbeddings.BaseEmbedding,
      documents: docs.every((d) => d instanceof m.documents.Document),
      nodes: nodes.every((n) => n.node instanceof m.schema.BaseNode),
    },
    lcQuery: (await lcEmbeddings.embedQuery(query)).slice(0, 4),
    liQuery: (await liEmbedding.getTextEmbedding(query)).slice(0, 4),
    docs: docs.map((d) => [d.pageContent, d.metadata.relevanceScore]),
    nodes: nodes.map((n) => [n.node.getContent(), n.score]),
    reranker: (await new m.core.M3Reranker({ model }).rerank(query, texts)).map((r) => r.index),
  };
  await model.dispose();
  console.log(JSON.stringify(out));
`;

const ESM_CONSUMER = `
  const m = {
    core: await import('bge-m3-rag'),
    lc: await import('bge-m3-rag/langchain'),
    li: await import('bge-m3-rag/llamaindex'),
    documents: await import('@langchain/core/documents'),
    lcEmbeddings: await import('@langchain/core/embeddings'),
    compressors: await import('@langchain/core/retrievers/document_compressors'),
    liEmbeddings: await import('@llamaindex/core/embeddings'),
    schema: await import('@llamaindex/core/schema'),
  };
  ${WORKLOAD}
`;

const CJS_CONSUMER = `
  (async () => {
    const m = {
      core: require('bge-m3-rag'),
      lc: require('bge-m3-rag/langchain'),
      li: require('bge-m3-rag/llamaindex'),
      documents: require('@langchain/core/documents'),
      lcEmbeddings: require('@langchain/core/embeddings'),
      compressors: require('@langchain/core/retrievers/document_compressors'),
      liEmbeddings: require('@llamaindex/core/embeddings'),
      schema: require('@llamaindex/core/schema'),
    };
    ${WORKLOAD}
  })().catch((e) => { console.error(e); process.exit(1); });
`;

/** Runs code as the package's own consumer (cwd = package root, so `bge-m3-rag` self-resolves). */
async function node(args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, args, { cwd: ROOT, env: { ...process.env, TINY_DIR, ...env }, timeout: 60_000 });
  return stdout;
}

describe('package entry points (dist/)', () => {
  let tmp: string;
  beforeAll(() => {
    for (const file of ['index.js', 'index.cjs', 'langchain.js', 'langchain.cjs', 'llamaindex.js', 'llamaindex.cjs']) {
      if (!existsSync(join(ROOT, 'dist', file))) throw new Error(`dist/${file} is missing: run \`npm run build\` before these tests.`);
    }
    tmp = mkdtempSync(join(tmpdir(), 'bge-m3-rag-entry-'));
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('ESM and CJS consumers both work, with their own framework builds, and agree', async () => {
    const esm = JSON.parse(await node(['--input-type=module', '-e', ESM_CONSUMER]));
    const cjs = JSON.parse(await node(['-e', CJS_CONSUMER]));
    for (const out of [esm, cjs]) {
      expect(out.instanceOf).toEqual({ embeddings: true, compressor: true, baseEmbedding: true, documents: true, nodes: true });
      expect(out.docs).toHaveLength(2);
      expect(out.nodes).toHaveLength(2);
      expect(out.lcQuery).toEqual(out.liQuery); // one model, one dense vector, whichever adapter
    }
    expect(cjs).toEqual(esm);
  });

  it('CJS: require("bge-m3-rag") loads neither LangChain nor LlamaIndex', async () => {
    const out = await node([
      '-e',
      `require('bge-m3-rag');
       const loaded = () => Object.keys(require.cache).filter((p) => ${FRAMEWORK}.test(p));
       const core = loaded();
       require('bge-m3-rag/langchain');
       require('bge-m3-rag/llamaindex');
       console.log(JSON.stringify({ core, adapters: loaded().length }));`,
    ]);
    const { core, adapters } = JSON.parse(out);
    expect(core).toEqual([]);
    expect(adapters).toBeGreaterThan(0); // the detection itself works
  });

  it('ESM: import("bge-m3-rag") resolves neither LangChain nor LlamaIndex', async () => {
    // A resolve hook appends every resolved URL to a file, synchronously, before the import continues.
    const log = join(tmp, 'resolved.txt');
    const hooks = join(tmp, 'hooks.mjs');
    writeFileSync(log, '');
    writeFileSync(
      hooks,
      `import { appendFileSync } from 'node:fs';
       let log;
       export function initialize(data) { log = data.log; }
       export async function resolve(specifier, context, next) {
         const result = await next(specifier, context);
         appendFileSync(log, result.url + '\\n');
         return result;
       }`,
    );
    const out = await node([
      '--input-type=module',
      '-e',
      `import { register } from 'node:module';
       import { readFileSync } from 'node:fs';
       register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { log: ${JSON.stringify(log)} } });
       const loaded = () => readFileSync(${JSON.stringify(log)}, 'utf8').split('\\n').filter((u) => ${FRAMEWORK}.test(u));
       const core = await import('bge-m3-rag');
       const afterCore = loaded();
       await import('bge-m3-rag/langchain');
       await import('bge-m3-rag/llamaindex');
       console.log(JSON.stringify({ exports: Object.keys(core).length, afterCore, adapters: loaded().length }));`,
    ]);
    const { exports, afterCore, adapters } = JSON.parse(out);
    expect(exports).toBeGreaterThan(0);
    expect(afterCore).toEqual([]);
    expect(adapters).toBeGreaterThan(0);
    expect(readFileSync(log, 'utf8')).toMatch(/dist\/index\.js/);
  });
});
