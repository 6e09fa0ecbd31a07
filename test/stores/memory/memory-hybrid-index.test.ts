/**
 * `MemoryHybridIndex` with the engine (the conformance fixture model): a document's own text
 * retrieves it first, scores equal `computeScore`, planted rare tokens are found by the sparse leg
 * alone, delete then search, searches while adding see a consistent index, the rerank stage equals
 * the M3 reranker, and progress/abort during add.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model, M3Reranker, MemoryHybridIndex, type HybridSearchResult } from '../../../src/index.js';
import { lexicalMatchingScore } from '../../../src/scores.js';
import { loadExpected, TINY_DIR } from '../../helpers.js';

let model: BgeM3Model;
beforeAll(async () => {
  model = await BgeM3Model.load(TINY_DIR);
});
afterAll(async () => {
  await model?.dispose();
});

/** The fixture's texts (27 languages, long documents, edge cases), distinct and non-empty. */
function corpus(): string[] {
  return [...new Set(loadExpected().texts.map((t) => t.text))].filter((t) => t.trim().length > 0);
}

const stripped = (results: HybridSearchResult[]) => results.map((r) => [r.id, r.score]);

describe('MemoryHybridIndex with the engine', () => {
  it("a document's own text retrieves it first (every chunk-sized fixture text: 27 languages, several scripts)", async () => {
    // Chunk-sized documents, as a RAG corpus holds. (A 12,000-character document collects the
    // maximum weight of thousands of tokens, so its raw lexical score against a short text can exceed
    // that text's own; that is what sparse scores are, not a retrieval error.)
    const texts = corpus().filter((t) => t.length <= 600);
    expect(texts.length).toBeGreaterThan(100);
    // Queries as long as the documents, so a query encodes exactly like its document.
    const index = new MemoryHybridIndex({ model, maxQueryLength: 8192 });
    const ids = await index.add(texts.map((text, i) => ({ id: `t${i}`, text })));
    expect(ids).toEqual(texts.map((_, i) => `t${i}`));
    expect(index.size).toBe(texts.length);
    const lexical = (await model.encode(texts, { returnDense: false, returnSparse: true })).lexicalWeights!;
    let hybridFirst = 0;
    for (const [i, text] of texts.entries()) {
      const label = JSON.stringify(text.slice(0, 60));
      // Dense leg: unit vectors, so the own vector (inner product 1) is always the best match.
      const [dense] = await index.search(text, { k: 1, weights: { dense: 1, sparse: 0 } });
      expect(dense?.id, label).toBe(`t${i}`);
      expect(dense!.dense).toBeCloseTo(1, 5);
      // Hybrid (paper weights): first whenever the own text is also its best lexical match. The
      // fixture's random-weight sparse head does not make every self-match the best one (a few
      // other texts score higher on shared tokens); there the own text must still be in the top 3.
      const hybrid = await index.search(text, { k: 3 });
      const ownLexical = lexicalMatchingScore(lexical[i]!, lexical[i]!);
      const bestLexical = Math.max(...lexical.map((w) => lexicalMatchingScore(lexical[i]!, w)));
      if (ownLexical >= bestLexical) expect(hybrid[0]?.id, label).toBe(`t${i}`);
      else expect(hybrid.map((r) => r.id), label).toContain(`t${i}`);
      if (hybrid[0]?.id === `t${i}`) hybridFirst++;
    }
    expect(hybridFirst / texts.length).toBeGreaterThan(0.9);
  });

  it("scores equal the engine's computeScore: dense, sparse and 'sparse+dense' with the same weights", async () => {
    const texts = corpus().slice(0, 30);
    const index = new MemoryHybridIndex({ model });
    await index.add(texts.map((text, i) => ({ id: String(i), text })));
    for (const query of ['How is the weather today?', 'Wie spät ist es?', '今日は良い天気です', texts[3]!]) {
      for (const weights of [{ dense: 1, sparse: 0.3 }, { dense: 0.4, sparse: 0.2 }]) {
        const results = await index.search(query, { k: 5, weights });
        expect(results).toHaveLength(5);
        const ref = await model.computeScore(
          results.map((r) => [query, r.text]),
          { weightsForDifferentModes: [weights.dense, weights.sparse, 0] },
        );
        results.forEach((r, j) => {
          expect(r.dense).toBeCloseTo(ref.dense[j]!, 5);
          expect(r.sparse).toBeCloseTo(ref.sparse[j]!, 5);
          expect(r.score).toBeCloseTo(ref['sparse+dense'][j]!, 5);
        });
      }
    }
  });

  it('planted rare tokens are found by the sparse leg alone', async () => {
    const texts = corpus();
    const tokenizer = JSON.parse(readFileSync(`${TINY_DIR}/tokenizer.json`, 'utf8')) as { model: { vocab: [string, number][] } };
    const corpusWeights = (await model.encode(texts, { returnDense: false, returnSparse: true })).lexicalWeights!;
    const used = new Set(corpusWeights.flatMap((w) => Object.keys(w)));
    // Whole-word pieces no corpus text uses, which the (random-weight) model gives a positive
    // weight both as a query and inside a sentence.
    const candidates = tokenizer.model.vocab
      .map(([piece], id) => ({ word: piece.slice(1), id: String(id) }))
      .filter(({ word, id }, i) => /^▁[a-z]{5,}$/.test(tokenizer.model.vocab[i]![0]) && !used.has(id) && word.length > 0)
      .slice(0, 60);
    // Random weights depend on context, so try a few host sentences per word.
    const hosts = [
      (w: string) => `Some ordinary sentence about a topic, and the word ${w} in it.`,
      (w: string) => `A short note that happens to mention ${w} once.`,
      (w: string) => `${w} appears at the start of this line.`,
    ];
    const q = await model.encode(candidates.map((c) => c.word), { returnDense: false, returnSparse: true });
    const docs = candidates.flatMap((c) => hosts.map((h) => h(c.word)));
    const d = (await model.encode(docs, { returnDense: false, returnSparse: true })).lexicalWeights!;
    const planted = candidates
      .map((c, i) => ({ ...c, text: docs[hosts.findIndex((_, h) => (d[i * hosts.length + h]![c.id] ?? 0) > 0) + i * hosts.length] }))
      .filter((c, i) => (q.lexicalWeights![i]![c.id] ?? 0) > 0 && d.some((w, j) => Math.floor(j / hosts.length) === i && (w[c.id] ?? 0) > 0))
      .slice(0, 3);
    expect(planted.length).toBe(3);

    const index = new MemoryHybridIndex({ model });
    await index.add(texts.map((text, i) => ({ id: `t${i}`, text })));
    await index.add(planted.map((p) => ({ id: `planted-${p.word}`, text: p.text! })));
    for (const p of planted) {
      const sparseOnly = await index.search(p.word, { k: 5, weights: { dense: 0, sparse: 1 } });
      expect(sparseOnly[0]?.id).toBe(`planted-${p.word}`);
      expect(sparseOnly[0]!.sparse).toBeGreaterThan(0);
      // Only documents sharing a token with the query are sparse candidates.
      for (const r of sparseOnly) expect(r.sparse).toBeGreaterThan(0);
      // The default hybrid search still finds it.
      const hybrid = await index.search(p.word, { k: 10 });
      expect(hybrid.map((r) => r.id)).toContain(`planted-${p.word}`);
    }
  });

  it('delete then search: removed documents are never returned; re-adding brings them back', async () => {
    const texts = corpus().slice(0, 40);
    const index = new MemoryHybridIndex({ model });
    await index.add(texts.map((text, i) => ({ id: `t${i}`, text, metadata: { i } })));
    const query = texts[7]!;
    const before = await index.search(query, { k: 40 });
    expect(before[0]!.id).toBe('t7');
    expect(await index.delete(['t7', 't8', 'missing'])).toBe(2);
    expect(index.size).toBe(38);
    expect(index.has('t7')).toBe(false);
    const after = await index.search(query, { k: 40 });
    expect(after.map((r) => r.id)).not.toContain('t7');
    expect(after.map((r) => r.id)).not.toContain('t8');
    // Everything else keeps its exact score and relative order.
    expect(stripped(after)).toEqual(stripped(before.filter((r) => r.id !== 't7' && r.id !== 't8')));
    await index.add([{ id: 't7', text: texts[7]!, metadata: { i: 7 } }]);
    const again = await index.search(query, { k: 1 });
    expect(again[0]).toMatchObject({ id: 't7', metadata: { i: 7 } });
  });

  it('concurrent searches while adding see the index before or after the add, never in between', async () => {
    const texts = corpus();
    const first = texts.slice(0, 40);
    const rest = texts.slice(40);
    const index = new MemoryHybridIndex({ model, batchSize: 4 });
    await index.add(first.map((text, i) => ({ id: `a${i}`, text })));
    const queries = ['weather', 'Guten Morgen', '사랑', first[3]!, rest[5]!];
    const opts = { k: 15, candidates: 20 };
    const beforeResults = await Promise.all(queries.map((q) => index.search(q, opts)));

    let adding = true;
    const observed: HybridSearchResult[][][] = [];
    const addition = index.add(rest.map((text, i) => ({ id: `b${i}`, text }))).finally(() => (adding = false));
    let rounds = 0;
    while (adding) {
      observed.push(await Promise.all(queries.map((q) => index.search(q, opts))));
      rounds++;
    }
    await addition;
    const afterResults = await Promise.all(queries.map((q) => index.search(q, opts)));
    expect(rounds).toBeGreaterThan(1); // the searches really ran while encoding was in progress
    const before = JSON.stringify(beforeResults.map(stripped));
    const after = JSON.stringify(afterResults.map(stripped));
    for (const round of observed) expect([before, after]).toContain(JSON.stringify(round.map(stripped)));
    expect(index.size).toBe(texts.length);
  });

  it('rerank: the fused top candidates re-ranked by the M3 reranker (scores equal M3Reranker and computeScore)', async () => {
    const texts = corpus().slice(0, 50);
    const index = new MemoryHybridIndex({ model });
    await index.add(texts.map((text, i) => ({ id: `t${i}`, text })));
    const query = 'A question about languages and the weather';
    const fused = await index.search(query, { k: 8 });
    const reranked = await index.search(query, { k: 3, rerank: { topN: 8 } });
    expect(reranked).toHaveLength(3);
    const reference = await new M3Reranker({ model }).rerank(
      query,
      fused.map((r) => r.text),
      { topN: 3 },
    );
    expect(reranked.map((r) => r.id)).toEqual(reference.map((r) => fused[r.index]!.id));
    reranked.forEach((r, i) => {
      expect(r.score).toBe(reference[i]!.relevanceScore);
      expect(r.colbert).toBe(reference[i]!.colbert);
      expect(r.fusedScore).toBe(fused.find((f) => f.id === r.id)!.score);
    });
    const scores = await model.computeScore(
      reranked.map((r) => [query, r.text]),
      { weightsForDifferentModes: [0.4, 0.2, 0.4] },
    );
    reranked.forEach((r, i) => expect(r.score).toBeCloseTo(scores['colbert+sparse+dense'][i]!, 5));
    // Custom reranker weights.
    const custom = await index.search(query, { k: 2, rerank: { topN: 8, weights: [0, 1, 1] } });
    for (const r of custom) expect(r.score).toBeCloseTo((r.sparse + r.colbert!) / 2, 12);
  });

  it('add reports progress, and an aborted add adds nothing', async () => {
    const texts = corpus().slice(0, 20);
    const index = new MemoryHybridIndex({ model });
    const progress: number[] = [];
    await index.add(
      texts.map((text) => ({ text })),
      { batchSize: 5, onProgress: (p) => progress.push(p.done) },
    );
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(20);
    const controller = new AbortController();
    controller.abort();
    await expect(index.add([{ text: 'never added' }], { signal: controller.signal })).rejects.toThrow();
    expect(index.size).toBe(20);
  });

  it('filters by metadata and returns copies (mutating a result does not change the index)', async () => {
    const index = new MemoryHybridIndex({ model });
    await index.add(corpus().slice(0, 30).map((text, i) => ({ id: `t${i}`, text, metadata: { lang: i % 2 ? 'odd' : 'even', tags: [i] } })));
    const odd = await index.search('hello', { k: 30, filter: { lang: 'odd' } });
    expect(odd).toHaveLength(15);
    for (const r of odd) expect(r.metadata.lang).toBe('odd');
    (odd[0]!.metadata.tags as number[]).push(99);
    const again = await index.search('hello', { k: 1, filter: { lang: 'odd' } });
    expect(again[0]!.metadata.tags).toHaveLength(1);
  });
});
