/**
 * Smoke tests of the hybrid retrieval examples on the fixture model, run as a user runs them
 * (`node --import tsx examples/<name>.ts --model <dir>`, importing the built package by name): they
 * exit 0 and what they print is what the index, the reranker and `computeScore` give.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model, MemoryHybridIndex } from '../../src/index.js';
import { TINY_DIR } from '../helpers.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCS = JSON.parse(readFileSync(join(ROOT, 'examples/data/multilingual-docs.json'), 'utf8')) as { id: string; lang: string; title: string; text: string }[];
const PRINTED = 6e-5; // scores are printed to 4 decimals

async function runExample(name: string, ...extra: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join('examples', name), '--model', TINY_DIR, ...extra], { cwd: ROOT, timeout: 60_000 });
  return stdout;
}

describe('hybrid retrieval examples (fixture model)', () => {
  let model: BgeM3Model;
  let index: MemoryHybridIndex;
  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` before the example tests.');
    model = await BgeM3Model.load(TINY_DIR);
    index = new MemoryHybridIndex({ model });
    await index.add(DOCS.map((d) => ({ id: d.id, text: d.text, metadata: { lang: d.lang, title: d.title } })));
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('the multilingual data set has a few dozen documents in ten languages and several scripts', () => {
    expect(DOCS.length).toBeGreaterThanOrEqual(30);
    expect(new Set(DOCS.map((d) => d.lang))).toEqual(new Set(['en', 'de', 'fr', 'es', 'zh', 'ja', 'ko', 'ru', 'ar', 'hi']));
    expect(new Set(DOCS.map((d) => d.id)).size).toBe(DOCS.length);
  });

  it('demo.ts: hybrid search + M3 rerank per query, printing relevance, dense, sparse, ColBERT and hybrid scores', async () => {
    const queries = ['Which mountain is the highest in Japan?', '人类第一次登上月球是在什么时候？', 'ताजमहल किसने बनवाया?'];
    const stdout = await runExample('demo.ts', ...queries.flatMap((q) => ['--query', q]));
    const blocks = stdout.split(/^Query: /m).slice(1);
    expect(blocks).toHaveLength(queries.length);
    for (const [qi, block] of blocks.entries()) {
      const query = queries[qi]!;
      expect(block.startsWith(`${query}\n`)).toBe(true);
      const results = [...block.matchAll(/^ {2}(\d+)\. \[(-?\d+\.\d+)\] (\S+) \((\w+)\) .*\n {5}dense (-?\d+\.\d+) \| sparse (-?\d+\.\d+) \| colbert (-?\d+\.\d+) \| hybrid (-?\d+\.\d+)$/gm)].map((m) => ({
        score: Number(m[2]),
        id: m[3]!,
        lang: m[4]!,
        dense: Number(m[5]),
        sparse: Number(m[6]),
        colbert: Number(m[7]),
        hybrid: Number(m[8]),
      }));
      expect(results).toHaveLength(3);
      // The same pipeline in-process: fused top 8, re-ranked, best 3.
      const expected = await index.search(query, { k: 3, rerank: { topN: 8 } });
      expect(results.map((r) => r.id)).toEqual(expected.map((r) => r.id));
      const texts = results.map((r) => DOCS.find((d) => d.id === r.id)!.text);
      const m3 = await model.computeScore(texts.map((t) => [query, t]), { weightsForDifferentModes: [0.4, 0.2, 0.4] });
      const hybrid = await model.computeScore(texts.map((t) => [query, t]), { weightsForDifferentModes: [1, 0.3, 0] });
      results.forEach((r, i) => {
        expect(r.lang).toBe(DOCS.find((d) => d.id === r.id)!.lang);
        expect(Math.abs(r.score - m3['colbert+sparse+dense'][i]!)).toBeLessThanOrEqual(PRINTED);
        expect(Math.abs(r.dense - m3.dense[i]!)).toBeLessThanOrEqual(PRINTED);
        expect(Math.abs(r.sparse - m3.sparse[i]!)).toBeLessThanOrEqual(PRINTED);
        expect(Math.abs(r.colbert - m3.colbert[i]!)).toBeLessThanOrEqual(PRINTED);
        expect(Math.abs(r.hybrid - hybrid['sparse+dense'][i]!)).toBeLessThanOrEqual(PRINTED);
        if (i > 0) expect(r.score).toBeLessThanOrEqual(results[i - 1]!.score);
      });
    }
  });

  it('demo.ts with no --query runs its built-in queries in six languages', async () => {
    const stdout = await runExample('demo.ts', '--k', '2');
    const queries = [...stdout.matchAll(/^Query: (.+)$/gm)].map((m) => m[1]!);
    expect(queries.length).toBe(6);
    expect(queries.some((q) => /[\u4e00-\u9fff]/.test(q))).toBe(true); // CJK
    expect(queries.some((q) => /[\u0600-\u06ff]/.test(q))).toBe(true); // Arabic
    expect(queries.some((q) => /[\u0900-\u097f]/.test(q))).toBe(true); // Devanagari
    expect([...stdout.matchAll(/^ {2}\d+\. \[/gm)]).toHaveLength(12);
  });

  it('hybrid-search.ts: each mode, the filter, save/load and both framework retrievers print what the index returns', async () => {
    const query = 'Wann landeten Menschen zum ersten Mal auf dem Mond?';
    const stdout = await runExample('hybrid-search.ts', '--query', query);
    const line = (label: string) => stdout.match(new RegExp(`^${label.replace(/[()]/g, '\\$&')}: (.+)$`, 'm'))?.[1];
    const ids = (label: string) => line(label)!.split(', ').map((x) => x.split(' ')[0]);
    const top = async (options: object) => (await index.search(query, { k: 3, ...options })).map((r) => r.id);
    expect(ids('dense only')).toEqual(await top({ weights: { dense: 1, sparse: 0 } }));
    expect(ids('sparse only')).toEqual(await top({ weights: { dense: 0, sparse: 1 } }));
    expect(ids('hybrid (weighted)')).toEqual(await top({}));
    expect(ids('hybrid (rrf)')).toEqual(await top({ fusion: 'rrf' }));
    const japanese = (await index.search(query, { k: 2, filter: { lang: 'ja' } })).map((r) => r.id);
    expect(line('filter lang=ja')).toBe(japanese.join(', '));
    expect(stdout).toMatch(/^saved and reloaded: 36 documents, identical results: yes$/m);
    const weighted = await top({});
    expect([...stdout.matchAll(/^langchain: (\S+) hybrid/gm)].map((m) => m[1])).toEqual(weighted);
    expect([...stdout.matchAll(/^llamaindex: (\S+) /gm)].map((m) => m[1])).toEqual(weighted);
  });
});
