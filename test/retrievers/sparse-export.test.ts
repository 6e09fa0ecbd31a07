/**
 * `toSparseEmbedding`: BGE-M3 lexical weights as `{ indices, values }` (Qdrant, Milvus, Pinecone),
 * sorted by token id, weights unchanged, zeros dropped, bad input refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error, BgeM3Model, lexicalMatchingScore, toSparseEmbedding } from '../../src/index.js';
import { TINY_DIR } from '../helpers.js';

describe('toSparseEmbedding', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('turns the model’s lexical weights into ascending indices with their weights', async () => {
    const { lexicalWeights } = await model.encode(['What is BGE M3?', 'BM25 is a bag-of-words retrieval function'], { returnSparse: true, returnDense: false });
    const [a, b] = lexicalWeights!.map((w) => toSparseEmbedding(w));
    for (const [weights, sparse] of [[lexicalWeights![0]!, a!], [lexicalWeights![1]!, b!]] as const) {
      expect(sparse.indices.length).toBe(Object.keys(weights).length);
      expect(sparse.indices).toEqual([...sparse.indices].sort((x, y) => x - y));
      sparse.indices.forEach((id, i) => expect(sparse.values[i]).toBe(weights[String(id)]));
      expect(sparse.indices.every(Number.isInteger)).toBe(true);
    }
    // The inner product of the exported vectors is the lexical matching score.
    const shared = new Map(b!.indices.map((id, i) => [id, b!.values[i]!]));
    const ip = a!.indices.reduce((s, id, i) => s + a!.values[i]! * (shared.get(id) ?? 0), 0);
    expect(ip).toBeCloseTo(lexicalMatchingScore(lexicalWeights![0]!, lexicalWeights![1]!), 6);
  });

  it('sorts numerically, keeps weights exactly, drops zeros; rejects bad keys and weights', () => {
    const weights = Object.create(null) as Record<string, number>;
    weights['1000'] = 0.25;
    weights['7'] = 0.123456789012;
    weights['42'] = 0;
    weights['9'] = 1.5;
    expect(toSparseEmbedding(weights)).toEqual({ indices: [7, 9, 1000], values: [0.123456789012, 1.5, 0.25] });
    expect(toSparseEmbedding({})).toEqual({ indices: [], values: [] });
    // maxEntries keeps the largest weights (ties: the smaller id), still sorted by id.
    expect(toSparseEmbedding({ '5': 0.5, '2': 0.9, '8': 0.5, '1': 0.1 }, { maxEntries: 2 })).toEqual({ indices: [2, 5], values: [0.9, 0.5] });
    expect(toSparseEmbedding({ '5': 0.5 }, { maxEntries: 10 })).toEqual({ indices: [5], values: [0.5] });
    expect(() => toSparseEmbedding({ '5': 0.5 }, { maxEntries: 0 })).toThrow(/maxEntries must be an integer >= 1/);
    expect(() => toSparseEmbedding({ abc: 1 })).toThrow(BgeM3Error);
    expect(() => toSparseEmbedding({ '01': 1 })).toThrow(/not a token id/);
    expect(() => toSparseEmbedding({ '-1': 1 })).toThrow(/not a token id/);
    expect(() => toSparseEmbedding({ '1': -0.5 })).toThrow(/finite numbers ≥ 0/);
    expect(() => toSparseEmbedding({ '1': Number.NaN })).toThrow(/finite numbers ≥ 0/);
    expect(() => toSparseEmbedding(null as never)).toThrow(/expects lexical weights/);
  });
});
