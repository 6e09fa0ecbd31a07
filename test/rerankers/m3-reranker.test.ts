/**
 * The framework-free M3 reranker on the fixture model: its scores are `computeScore`'s (and the
 * fixture's reference numbers), its order is stable, its passage cache is bounded and avoids
 * re-encoding, and each edge case has a defined result.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Error, BgeM3Model, M3Reranker } from '../../src/index.js';
import { loadExpected, TINY_DIR, TINY_M3_DIR, TOL } from '../helpers.js';

const expected = loadExpected();
const texts = expected.texts.map((t) => t.text);
/** Score equality with computeScore: same math, only batch composition (padding) differs. */
const SAME = 1e-5;

const QUERY = texts[0]!; // 'What is BGE M3?'
const OTHER_QUERY = texts[1]!;
const PASSAGES = [texts[3]!, texts[2]!, texts[6]!, texts[1]!, texts[8]!, texts[4]!];

async function computeScoreResults(model: BgeM3Model, query: string, passages: string[], opts: { maxQueryLength?: number; maxPassageLength?: number } = {}) {
  const s = await model.computeScore(
    passages.map((p) => [query, p] as [string, string]),
    { weightsForDifferentModes: [0.4, 0.2, 0.4], ...opts },
  );
  return passages.map((_, i) => ({ index: i, relevanceScore: s['colbert+sparse+dense'][i]!, dense: s.dense[i]!, sparse: s.sparse[i]!, colbert: s.colbert[i]! }));
}

function expectSameScores(actual: { index: number; relevanceScore: number; dense: number; sparse: number; colbert: number }[], want: typeof actual) {
  for (const r of actual) {
    const w = want[r.index]!;
    expect(Math.abs(r.relevanceScore - w.relevanceScore), `relevanceScore of ${r.index}`).toBeLessThan(SAME);
    expect(Math.abs(r.dense - w.dense), `dense of ${r.index}`).toBeLessThan(SAME);
    expect(Math.abs(r.sparse - w.sparse), `sparse of ${r.index}`).toBeLessThan(SAME);
    expect(Math.abs(r.colbert - w.colbert), `colbert of ${r.index}`).toBeLessThan(SAME);
  }
}

for (const [layout, dir] of [
  ['onnx/ + .pt heads', TINY_DIR],
  ['m3/ heads in graph', TINY_M3_DIR],
] as const) {
  describe(`M3Reranker scores (${layout})`, () => {
    let model: BgeM3Model;
    beforeAll(async () => {
      model = await BgeM3Model.load(dir);
    });
    afterAll(async () => {
      await model?.dispose();
    });

    it('equals computeScore with weights [0.4, 0.2, 0.4], sorted by relevanceScore', async () => {
      const reranker = new M3Reranker({ model });
      const results = await reranker.rerank(QUERY, PASSAGES);
      expect(results.map((r) => r.index).sort()).toEqual(PASSAGES.map((_, i) => i));
      const want = await computeScoreResults(model, QUERY, PASSAGES);
      expectSameScores(results, want);
      expect(results.map((r) => r.index)).toEqual([...want].sort((a, b) => b.relevanceScore - a.relevanceScore).map((r) => r.index));
    });

    it("matches the fixture's reference pair scores (FlagEmbedding semantics)", async () => {
      const reranker = new M3Reranker({ model });
      for (const q of [0, 1]) {
        const results = await reranker.rerank(texts[q]!, [texts[2]!, texts[3]!]);
        for (const r of results) {
          const pair = expected.pairs.find((p) => p.query === q && p.passage === [2, 3][r.index])!;
          expect(Math.abs(r.relevanceScore - pair['colbert+sparse+dense'])).toBeLessThan(TOL);
          expect(Math.abs(r.dense - pair.dense)).toBeLessThan(TOL);
          expect(Math.abs(r.sparse - pair.sparse)).toBeLessThan(TOL);
          expect(Math.abs(r.colbert - pair.colbert)).toBeLessThan(TOL);
        }
      }
    });
  });
}

describe('M3Reranker behaviour', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('honours custom weights and lengths exactly as computeScore does', async () => {
    const opts = { maxQueryLength: 6, maxPassageLength: 10 };
    const reranker = new M3Reranker({ model, weights: [1, 0.5, 2], ...opts });
    const results = await reranker.rerank(QUERY, PASSAGES);
    const s = await model.computeScore(
      PASSAGES.map((p) => [QUERY, p] as [string, string]),
      { weightsForDifferentModes: [1, 0.5, 2], ...opts },
    );
    for (const r of results) {
      expect(Math.abs(r.relevanceScore - s['colbert+sparse+dense'][r.index]!)).toBeLessThan(SAME);
      expect(Math.abs(r.colbert - s.colbert[r.index]!)).toBeLessThan(SAME);
    }
  });

  it('reranking the same passages again does not re-encode them', async () => {
    const reranker = new M3Reranker({ model });
    const first = await reranker.rerank(QUERY, PASSAGES);
    expect(reranker.cacheStats()).toMatchObject({ entries: PASSAGES.length, misses: PASSAGES.length, hits: 0 });
    const spy = vi.spyOn(model, 'encode');
    try {
      const again = await reranker.rerank(QUERY, [...PASSAGES].reverse());
      // Only the query was encoded.
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy.mock.calls[0]![0]).toEqual([QUERY]);
      expect(reranker.cacheStats().hits).toBe(PASSAGES.length);
      const n = PASSAGES.length - 1;
      for (const r of again) {
        const f = first.find((x) => x.index === n - r.index)!;
        expect(r.relevanceScore).toBe(f.relevanceScore);
      }
      // A new passage mixed with cached ones: only the new one is encoded.
      spy.mockClear();
      await reranker.rerank(texts[10]!, [PASSAGES[0]!, texts[11]!, PASSAGES[1]!]);
      expect(spy.mock.calls.map((c) => c[0])).toEqual([[texts[10]], [texts[11]]]);
    } finally {
      spy.mockRestore();
    }
  });

  it('keys the cache by maxPassageLength and text: a truncating reranker keeps its own scores', async () => {
    const long = texts[3]!; // 43 tokens
    const full = new M3Reranker({ model });
    const short = new M3Reranker({ model, maxPassageLength: 8 });
    const [a] = await full.rerank(QUERY, [long]);
    const [b] = await short.rerank(QUERY, [long]);
    expect(a!.relevanceScore).not.toBeCloseTo(b!.relevanceScore, 6);
    const [want] = await computeScoreResults(model, QUERY, [long], { maxPassageLength: 8 });
    expect(Math.abs(b!.relevanceScore - want!.relevanceScore)).toBeLessThan(SAME);
  });

  it('bounds the cache by bytes, evicting least recently used passages', async () => {
    const one = new M3Reranker({ model });
    await one.rerank(QUERY, [texts[2]!]);
    const perPassage = one.cacheStats().bytes;
    expect(perPassage).toBeGreaterThan(40 * 32 * 4); // at least the 42 ColBERT rows + dense of 32 floats

    const bounded = new M3Reranker({ model, cacheMaxBytes: Math.floor(perPassage * 2.5) });
    await bounded.rerank(QUERY, [texts[2]!, texts[2]!.slice(0, -1), texts[2]!.slice(0, -2), texts[2]!.slice(0, -3)]);
    const stats = bounded.cacheStats();
    expect(stats.bytes).toBeLessThanOrEqual(stats.maxBytes);
    expect(stats.entries).toBe(2);
    expect(stats.evictions).toBe(2);

    const off = new M3Reranker({ model, cacheMaxBytes: 0 });
    await off.rerank(QUERY, PASSAGES);
    await off.rerank(QUERY, PASSAGES);
    expect(off.cacheStats()).toMatchObject({ entries: 0, bytes: 0, hits: 0, misses: 2 * PASSAGES.length });
  });

  it('concurrent reranks of the same passages encode them once', async () => {
    const reranker = new M3Reranker({ model });
    const spy = vi.spyOn(model, 'encode');
    try {
      const [a, b] = await Promise.all([reranker.rerank(QUERY, PASSAGES), reranker.rerank(OTHER_QUERY, PASSAGES)]);
      const passageCalls = spy.mock.calls.filter((c) => c[0].length > 1);
      expect(passageCalls).toHaveLength(1);
      expect(a).toHaveLength(PASSAGES.length);
      expect(b).toHaveLength(PASSAGES.length);
    } finally {
      spy.mockRestore();
    }
  });

  it("a call waiting for another call's encode that fails (aborted) encodes the passages itself", async () => {
    const reranker = new M3Reranker({ model });
    const solo = await new M3Reranker({ model }).rerank(OTHER_QUERY, PASSAGES);
    const original = model.encode.bind(model);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let otherQueryEncoded = false;
    const spy = vi.spyOn(model, 'encode').mockImplementation(async (texts, options) => {
      if (options?.signal && texts.length > 1) {
        await gate; // the aborting call's passage encode: held open, then aborted
        throw new DOMException('This operation was aborted', 'AbortError');
      }
      const out = await original(texts, options);
      if (texts[0] === OTHER_QUERY) otherQueryEncoded = true;
      return out;
    });
    try {
      const controller = new AbortController();
      const aborted = reranker.rerank(QUERY, PASSAGES, { signal: controller.signal }).catch((e: unknown) => e);
      await vi.waitFor(() => expect(spy.mock.calls.some((c) => c[0].length > 1)).toBe(true));
      const waiting = reranker.rerank(OTHER_QUERY, PASSAGES);
      await vi.waitFor(() => expect(otherQueryEncoded).toBe(true));
      await new Promise((resolve) => setImmediate(resolve)); // the waiting call now borrows the pending encodes
      release();
      expect(((await aborted) as Error).name).toBe('AbortError');
      const results = await waiting;
      // It fell back to encoding each borrowed passage itself, and its scores are unaffected.
      const passageCalls = spy.mock.calls.filter((c) => c[1]?.maxLength === reranker.maxPassageLength);
      expect(passageCalls.map((c) => c[0])).toEqual([PASSAGES, ...PASSAGES.map((p) => [p])]); // the aborted batch, then one by one
      expect(results.map((r) => r.index)).toEqual(solo.map((r) => r.index));
      results.forEach((r, i) => expect(Math.abs(r.relevanceScore - solo[i]!.relevanceScore)).toBeLessThan(SAME));
    } finally {
      spy.mockRestore();
    }
  });

  it('identical passages get identical scores, each its own result, in input order (stable sort)', async () => {
    const reranker = new M3Reranker({ model });
    const spy = vi.spyOn(model, 'encode');
    try {
      const results = await reranker.rerank(QUERY, [texts[5]!, texts[2]!, texts[5]!, texts[2]!]);
      expect(spy.mock.calls[1]![0]).toEqual([texts[5], texts[2]]); // each distinct text encoded once
      expect(results).toHaveLength(4);
      const byText = (i: number) => results.filter((r) => r.index % 2 === i % 2);
      expect(byText(0)[0]!.relevanceScore).toBe(byText(0)[1]!.relevanceScore);
      // Equal scores keep input order.
      for (let i = 1; i < results.length; i++) {
        if (results[i]!.relevanceScore === results[i - 1]!.relevanceScore) expect(results[i]!.index).toBeGreaterThan(results[i - 1]!.index);
      }
    } finally {
      spy.mockRestore();
    }
  });

  it('topN: keeps the best N; larger than the list returns all; must be a positive integer', async () => {
    const reranker = new M3Reranker({ model });
    const all = await reranker.rerank(QUERY, PASSAGES);
    expect(await reranker.rerank(QUERY, PASSAGES, { topN: 2 })).toEqual(all.slice(0, 2));
    expect(await reranker.rerank(QUERY, PASSAGES, { topN: 100 })).toEqual(all);
    for (const topN of [0, -1, 1.5, Number.NaN]) {
      await expect(reranker.rerank(QUERY, PASSAGES, { topN })).rejects.toThrow(/topN must be an integer >= 1/);
    }
  });

  it('an empty passage list returns [] without encoding anything; empty strings are scored', async () => {
    const reranker = new M3Reranker({ model });
    const spy = vi.spyOn(model, 'encode');
    try {
      expect(await reranker.rerank(QUERY, [])).toEqual([]);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
    const [r] = await reranker.rerank('', ['']);
    expect(Number.isFinite(r!.relevanceScore)).toBe(true);
  });

  it('rejects a missing query, non-string passages and bad options with BgeM3Error', async () => {
    const reranker = new M3Reranker({ model });
    for (const q of [undefined, null, 42, { text: 'x' }]) {
      const err = await reranker.rerank(q as never, PASSAGES).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BgeM3Error);
      expect((err as BgeM3Error).code).toBe('INVALID_ARGUMENT');
      expect((err as Error).message).toMatch(/query must be a string/);
    }
    await expect(reranker.rerank(QUERY, 'text' as never)).rejects.toThrow(/passages must be an array of strings/);
    await expect(reranker.rerank(QUERY, ['ok', 7 as never])).rejects.toThrow(/passages\[1\] is number 7; every entry must be a string/);
    expect(() => new M3Reranker({ model, weights: [0, 0, 0] })).toThrow(/weights/);
    expect(() => new M3Reranker({ model, weights: [1, 1] as never })).toThrow(/weights must be three finite numbers/);
    expect(() => new M3Reranker({ model, maxPassageLength: 9000 })).toThrow(/maxPassageLength 9000 exceeds/);
    expect(() => new M3Reranker({ model, maxQueryLength: 1 })).toThrow(/maxQueryLength must be an integer >= 2/);
    expect(() => new M3Reranker({ model, cacheMaxBytes: -1 })).toThrow(/cacheMaxBytes/);
    expect(() => new M3Reranker({ model: 'BAAI/bge-m3' as never })).toThrow(/loaded BgeM3Model/);
  });
});
