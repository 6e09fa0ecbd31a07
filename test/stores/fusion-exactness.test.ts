/**
 * Property tests of `MemoryHybridIndex` on random corpora and random weights (precomputed
 * encodings, no model): with candidate pools at least the corpus size the results equal brute-force
 * fused scoring of every document; with smaller pools they equal the candidate-restricted formula;
 * RRF equals its formula; filters, deletes, replacements and compaction keep that true; both dense
 * scan backends agree; a search in flight sees the index as it was when it started.
 */
import { describe, expect, it } from 'vitest';
import { MemoryHybridIndex, type HybridSearchOptions } from '../../src/index.js';
import { lexicalMatchingScore } from '../../src/scores.js';
import { SparsePostings } from '../../src/stores/memory/sparse-postings.js';
import { toSparseVector } from '../../src/stores/sparse-vector.js';
import { scanDense } from '../../src/stores/memory/dense-scorer.js';
import { dot } from '../../src/scores.js';
import { bruteForce, randomCorpus, randomDense, randomSparse, rng, type RefDoc, type RefOptions } from '../support/random-corpus.js';

function indexOf(docs: RefDoc[], options: ConstructorParameters<typeof MemoryHybridIndex>[0] = {}): MemoryHybridIndex {
  const index = new MemoryHybridIndex({ dim: docs[0]!.dense.length, ...options });
  index.addEncoded(docs);
  return index;
}

function randomOptions(rand: () => number, n: number, full: boolean): RefOptions {
  const fusion = rand() < 0.5 ? 'weighted' : 'rrf';
  const pick = () => (rand() < 0.15 ? 0 : Math.round(rand() * 2000) / 1000);
  let weights = { dense: pick(), sparse: pick() };
  if (weights.dense + weights.sparse === 0) weights = { dense: 1, sparse: 0.3 };
  return {
    k: 1 + Math.floor(rand() * 12),
    candidates: full ? n + Math.floor(rand() * 5) : 1 + Math.floor(rand() * Math.max(1, n / 2)),
    fusion,
    weights,
    rrfK: [60, 0, 1, 10.5][Math.floor(rand() * 4)]!,
  };
}

async function expectMatches(index: MemoryHybridIndex, docs: RefDoc[], query: { dense: Float32Array; sparse: Record<string, number> }, o: RefOptions, label: string, filter?: HybridSearchOptions['filter']) {
  const { filter: refFilter, ...rest } = o;
  const got = await index.searchEncoded(query, { ...rest, filter: filter ?? (refFilter as HybridSearchOptions['filter']) });
  const want = bruteForce(docs, query, o);
  expect(
    got.map((r) => [r.id, r.score, r.dense, r.sparse]),
    `${label} ${JSON.stringify({ ...o, filter: !!o.filter })}`,
  ).toEqual(want.map((r) => [r.id, r.score, r.dense, r.sparse]));
}

describe('MemoryHybridIndex exactness (property tests)', () => {
  for (const backend of ['js', 'onnxruntime'] as const) {
    it(`equals brute-force fused scoring of every document when candidates >= corpus size (${backend} dense scan)`, async () => {
      for (let seed = 1; seed <= 25; seed++) {
        const rand = rng(seed);
        const n = 5 + Math.floor(rand() * 120);
        const docs = randomCorpus(rand, n, 4 + Math.floor(rand() * 20), 10 + Math.floor(rand() * 60), 12);
        const index = indexOf(docs, { denseBackend: backend });
        for (let q = 0; q < 6; q++) {
          const query = { dense: randomDense(rand, docs[0]!.dense.length), sparse: randomSparse(rand, 70, 8) };
          await expectMatches(index, docs, query, randomOptions(rand, n, true), `seed ${seed} query ${q}`);
        }
      }
    });
  }

  it('with smaller candidate pools equals the formula over the exact per-leg candidate lists (weighted and RRF)', async () => {
    for (let seed = 100; seed < 130; seed++) {
      const rand = rng(seed);
      const n = 20 + Math.floor(rand() * 200);
      const docs = randomCorpus(rand, n, 8, 40, 10);
      const index = indexOf(docs, { denseBackend: seed % 2 ? 'js' : 'onnxruntime' });
      for (let q = 0; q < 5; q++) {
        const query = { dense: randomDense(rand, 8), sparse: randomSparse(rand, 40, 6) };
        await expectMatches(index, docs, query, randomOptions(rand, n, false), `seed ${seed} query ${q}`);
      }
    }
  });

  it('RRF is Σ w/(rrfK + rank) with ranks from 1: a hand-checked case', async () => {
    // Dense order: a, b, c. Sparse order (only docs sharing a token): c, a.
    const docs: RefDoc[] = [
      { id: 'a', text: 'a', metadata: { group: 0, n: 0 }, dense: Float32Array.of(1, 0), sparse: { '1': 1 } },
      { id: 'b', text: 'b', metadata: { group: 0, n: 1 }, dense: Float32Array.of(0.5, 0), sparse: {} },
      { id: 'c', text: 'c', metadata: { group: 0, n: 2 }, dense: Float32Array.of(0.25, 0), sparse: { '1': 2 } },
    ];
    const index = indexOf(docs);
    const got = await index.searchEncoded({ dense: Float32Array.of(1, 0), sparse: { '1': 1 } }, { fusion: 'rrf', rrfK: 60 });
    expect(got.map((r) => [r.id, r.score])).toEqual([
      ['a', 1 / 61 + 1 / 62],
      ['c', 1 / 63 + 1 / 61],
      ['b', 1 / 62],
    ]);
    // Default RRF weights are 1 and 1 (plain RRF); weighted RRF scales each leg's term.
    const weighted = await index.searchEncoded({ dense: Float32Array.of(1, 0), sparse: { '1': 1 } }, { fusion: 'rrf', weights: { dense: 2, sparse: 0.5 }, rrfK: 10 });
    expect(weighted.map((r) => [r.id, r.score])).toEqual([
      ['a', 2 / 11 + 0.5 / 12],
      ['c', 2 / 13 + 0.5 / 11],
      ['b', 2 / 12],
    ]);
  });

  it('weighted fusion is (wd·dense + ws·sparse)/(wd + ws) with the paper weights by default', async () => {
    const docs: RefDoc[] = [
      { id: 'a', text: 'a', metadata: { group: 0, n: 0 }, dense: Float32Array.of(0.5, 0), sparse: { '7': 1 } },
      { id: 'b', text: 'b', metadata: { group: 0, n: 1 }, dense: Float32Array.of(0.75, 0), sparse: {} },
    ];
    const [a, b] = await indexOf(docs).searchEncoded({ dense: Float32Array.of(1, 0), sparse: { '7': 2 } });
    expect(a).toMatchObject({ id: 'a', dense: 0.5, sparse: 2, score: (1 * 0.5 + 0.3 * 2) / 1.3 });
    expect(b).toMatchObject({ id: 'b', dense: 0.75, sparse: 0, score: 0.75 / 1.3 });
  });

  it('filters (function or metadata object) apply before candidates are taken', async () => {
    for (let seed = 200; seed < 210; seed++) {
      const rand = rng(seed);
      const docs = randomCorpus(rand, 150, 6, 30, 8);
      const index = indexOf(docs);
      for (let q = 0; q < 4; q++) {
        const query = { dense: randomDense(rand, 6), sparse: randomSparse(rand, 30, 6) };
        const o = randomOptions(rand, 150, rand() < 0.5);
        const group = q % 3;
        await expectMatches(index, docs, query, { ...o, filter: (d) => d.metadata.group === group }, `seed ${seed} object filter`, { group });
        await expectMatches(index, docs, query, { ...o, filter: (d) => d.metadata.n % 2 === 0 }, `seed ${seed} function filter`, (d) => (d.metadata.n as number) % 2 === 0);
      }
    }
  });

  for (const compactionThreshold of [0.25, 1]) {
    it(`stays exact through deletes, replacements and ${compactionThreshold < 1 ? 'automatic compaction' : 'tombstones only'}`, async () => {
      for (let seed = 300; seed < 312; seed++) {
        const rand = rng(seed);
        let docs = randomCorpus(rand, 80, 6, 25, 8);
        const index = indexOf(docs, { compactionThreshold });
        for (let round = 0; round < 6; round++) {
          const victims = docs.filter(() => rand() < 0.15).map((d) => d.id);
          expect(await index.delete([...victims, 'no-such-id'])).toBe(victims.length);
          docs = docs.filter((d) => !victims.includes(d.id));
          // Re-adding an existing id replaces it and moves it to the end of the insertion order.
          const fresh = randomCorpus(rand, 10, 6, 25, 8, `r${round}-`);
          const replace = docs.length > 0 ? { ...fresh[0]!, id: docs[0]!.id } : fresh[0]!;
          index.addEncoded([replace, ...fresh.slice(1)]);
          docs = [...docs.filter((d) => d.id !== replace.id), replace, ...fresh.slice(1)];
          expect(index.size).toBe(docs.length);
          for (const d of victims) expect(index.has(d)).toBe(false);
          const query = { dense: randomDense(rand, 6), sparse: randomSparse(rand, 25, 6) };
          await expectMatches(index, docs, query, randomOptions(rand, docs.length, true), `seed ${seed} round ${round}`);
          await expectMatches(index, docs, query, randomOptions(rand, docs.length, false), `seed ${seed} round ${round} small pools`);
        }
        index.compact();
        const query = { dense: randomDense(rand, 6), sparse: randomSparse(rand, 25, 6) };
        await expectMatches(index, docs, query, randomOptions(rand, docs.length, true), `seed ${seed} after compact()`);
      }
    });
  }

  for (const initialCapacity of [300, 2000]) {
    it(`a search in flight sees the index as it was when it started (adds ${initialCapacity > 300 ? 'in place' : 'reallocating the matrix'}, deletes, compaction during the dense scan)`, async () => {
      const rand = rng(400 + initialCapacity);
      const docs = randomCorpus(rand, 300, 16, 40, 10);
      const index = indexOf(docs, { denseBackend: 'onnxruntime', initialCapacity });
      const query = { dense: randomDense(rand, 16), sparse: randomSparse(rand, 40, 8) };
      const o: RefOptions = { k: 20, candidates: 400, fusion: 'weighted', weights: { dense: 1, sparse: 0.3 }, rrfK: 60 };
      const inFlight = index.searchEncoded(query, { ...o, filter: undefined }); // suspended in onnxruntime until the next await
      index.addEncoded(randomCorpus(rand, 200, 16, 40, 10, 'late-'));
      index.addEncoded([{ ...docs[5]!, id: docs[0]!.id }]);
      await index.delete(docs.slice(10, 200).map((d) => d.id));
      const got = await inFlight;
      expect(got.map((r) => [r.id, r.score])).toEqual(bruteForce(docs, query, o).map((r) => [r.id, r.score]));
      // A search that starts now sees every change.
      const after = await index.searchEncoded(query, { ...o, filter: undefined, k: 1000 });
      expect(after.length).toBe(index.size);
      expect(index.size).toBe(300 + 200 - 190);
    });
  }
});

describe('building blocks', () => {
  for (const limits of [undefined, { minTail: 40, maxTail: 200 }]) {
    it(`sparse postings give lexicalMatchingScore bit for bit, for every document at once (${limits ? 'main segment + tail, frequent merges' : 'tail only'})`, () => {
      const rand = rng(7);
      const docs = Array.from({ length: 300 }, () => randomSparse(rand, 60, 15));
      const postings = new SparsePostings(limits);
      const check = (rows: number, p: SparsePostings = postings, ref: typeof docs = docs) => {
        for (let q = 0; q < 5; q++) {
          const query = randomSparse(rand, 70, 10);
          const scores = new Float64Array(ref.length);
          p.accumulate(toSparseVector(query, 'query'), rows, scores);
          ref.forEach((d, row) => expect(scores[row], `row ${row}`).toBe(row < rows ? lexicalMatchingScore(query, d) : 0));
        }
      };
      docs.forEach((d, row) => {
        postings.append(row, toSparseVector(d, 'doc'));
        if (row % 37 === 0) check(row + 1);
      });
      check(docs.length);
      check(150); // a reader limited to the rows of an older snapshot
      // Export (with rows dropped and renumbered) and import give the same scores.
      const newRow = Int32Array.from(docs, (_, r) => (r % 4 === 1 ? -1 : 0));
      let next = 0;
      newRow.forEach((v, r) => (newRow[r] = v < 0 ? -1 : next++));
      const kept = docs.filter((_, r) => newRow[r]! >= 0);
      const reloaded = SparsePostings.import(postings.export(docs.length, newRow), kept.length, 'test');
      check(kept.length, reloaded, kept);
      check(kept.length, postings.compacted(docs.length, newRow), kept);
      check(docs.length); // the original is unchanged
    });
  }

  it('both dense scan backends stay within their error bound of scores.ts dot', async () => {
    const rand = rng(8);
    for (const dim of [3, 16, 130]) {
      const rows = 257;
      const matrix = new Float32Array(rows * dim);
      for (let i = 0; i < matrix.length; i++) matrix[i] = rand() * 2 - 1;
      const q = randomDense(rand, dim);
      let maxRowNorm = 0;
      for (let r = 0; r < rows; r++) maxRowNorm = Math.max(maxRowNorm, Math.hypot(...matrix.subarray(r * dim, (r + 1) * dim)));
      for (const backend of ['js', 'onnxruntime'] as const) {
        const scan = await scanDense(matrix, rows, dim, q, { maxRowNorm, backend });
        for (let r = 0; r < rows; r++) {
          const exact = dot(q, matrix.subarray(r * dim, (r + 1) * dim));
          expect(Math.abs(scan.scores[r]! - exact)).toBeLessThanOrEqual(scan.errorBound);
        }
      }
    }
  });

  it('rejects bad options and inputs with errors that name the option', async () => {
    const index = indexOf(randomCorpus(rng(9), 5, 4, 10, 4));
    const q = { dense: new Float32Array(4), sparse: {} };
    await expect(index.searchEncoded(q, { k: 0 })).rejects.toThrow(/k must be a positive integer/);
    await expect(index.searchEncoded(q, { fusion: 'max' as never })).rejects.toThrow(/fusion must be 'weighted'/);
    await expect(index.searchEncoded(q, { weights: { dense: -1 } })).rejects.toThrow(/weights.dense/);
    await expect(index.searchEncoded(q, { weights: { dense: 0, sparse: 0 } })).rejects.toThrow(/both 0/);
    await expect(index.searchEncoded(q, { rrfK: Number.NaN })).rejects.toThrow(/rrfK/);
    await expect(index.searchEncoded(q, { filter: 'x' as never })).rejects.toThrow(/filter must be/);
    await expect(index.searchEncoded(q, { rerank: true })).rejects.toThrow(/rerank needs the query text/);
    await expect(index.searchEncoded({ dense: new Float32Array(5), sparse: {} })).rejects.toThrow(/5 values; this index holds 4-dimensional/);
    expect(() => index.addEncoded([{ text: 'x', dense: [1, 2, 3, 4], sparse: { abc: 1 } }])).toThrow(/not a token id/);
    expect(() => index.addEncoded([{ text: 'x', dense: [1, 2, 3, 4], sparse: { '3': -1 } }])).toThrow(/non-negative/);
    expect(() => index.addEncoded([{ text: 'x', dense: [1, 2, Number.NaN, 4], sparse: {} }])).toThrow(/finite/);
    expect(() => index.addEncoded([{ id: 'same', text: 'x', dense: [1, 2, 3, 4], sparse: {} }, { id: 'same', text: 'y', dense: [1, 2, 3, 4], sparse: {} }])).toThrow(/appears twice/);
    expect(() => index.addEncoded([{ text: 'x', dense: [1, 2, 3, 4], sparse: {}, metadata: { big: 1n } as never }])).toThrow(/cannot be stored as JSON/);
    await expect(index.search('text')).rejects.toThrow(/needs a model/);
    expect(index.size).toBe(5);
  });

  it('accepts the compact { indices, values } sparse form and drops zero weights', async () => {
    const index = new MemoryHybridIndex({ dim: 2 });
    index.addEncoded([
      { id: 'a', text: 'a', dense: [1, 0], sparse: { indices: [5, 9], values: [0.5, 0] } },
      { id: 'b', text: 'b', dense: [0, 1], sparse: { '9': 1 } },
    ]);
    const [top] = await index.searchEncoded({ dense: [0, 0], sparse: { indices: Int32Array.of(9), values: Float32Array.of(1) } }, { weights: { dense: 0, sparse: 1 } });
    expect(top).toMatchObject({ id: 'b', sparse: 1 });
    const results = await index.searchEncoded({ dense: [0, 0], sparse: { '5': 2 } }, { weights: { dense: 0, sparse: 1 } });
    expect(results.map((r) => [r.id, r.sparse])).toEqual([['a', 1]]);
  });

  it('refuses token ids no vocabulary has (they would size the postings arrays) and leaves the index as it was', () => {
    const index = new MemoryHybridIndex({ dim: 2 });
    index.addEncoded([{ id: 'a', text: 'a', dense: [1, 0], sparse: { '5': 1 } }]);
    expect(() => index.addEncoded([{ id: 'b', text: 'b', dense: [0, 1], sparse: { '2000000000': 1 } }])).toThrow(/token id "2000000000"/);
    expect(index.size).toBe(1);
    expect(index.has('b')).toBe(false);
  });
});
