/**
 * The engine against the conformance fixture (FlagEmbedding semantics computed independently in
 * float64): token ids, dense vectors, lexical weights, ColBERT vectors and pair scores, for both
 * export layouts, with texts encoded in mixed-length batches so padding is exercised.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model } from '../../src/index.js';
import { loadExpected, maxAbsDiff, TINY_DIR, TINY_M3_DIR, TOL, type ExpectedText } from '../helpers.js';

const expected = loadExpected();

/** Groups the fixture's texts by max_length, since encode takes one maxLength per call. */
function byMaxLength(texts: ExpectedText[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  texts.forEach((t, i) => groups.set(t.max_length, [...(groups.get(t.max_length) ?? []), i]));
  return groups;
}

function checkLexical(actual: Record<string, number>, want: Record<string, number>, label: string) {
  for (const [id, w] of Object.entries(want)) {
    if (w < 1e-4 && !(id in actual)) continue; // near-zero weights may flip sign in fp32
    expect(actual[id], `${label}: weight of token ${id}`).toBeDefined();
    expect(Math.abs(actual[id]! - w), `${label}: weight of token ${id}`).toBeLessThan(TOL);
  }
  for (const [id, w] of Object.entries(actual)) {
    if (!(id in want)) expect(w, `${label}: unexpected token ${id}`).toBeLessThan(1e-4);
  }
}

for (const [layout, dir] of [
  ['onnx/ + .pt heads', TINY_DIR],
  ['m3/ heads in graph', TINY_M3_DIR],
] as const) {
  describe(`conformance: ${layout}`, () => {
    let model: BgeM3Model;
    beforeAll(async () => {
      model = await BgeM3Model.load(dir);
    });
    afterAll(async () => {
      await model?.dispose();
    });

    it('detects the layout and the hidden size', () => {
      expect(model.layout).toBe(dir === TINY_DIR ? 'encoder' : 'heads');
      expect(model.dim).toBe(32);
    });

    it('tokenizes every text to the reference input_ids', async () => {
      for (const [maxLength, indices] of byMaxLength(expected.texts)) {
        const ids = await model.tokenize(
          indices.map((i) => expected.texts[i]!.text),
          { maxLength },
        );
        indices.forEach((i, k) => expect(ids[k], `text ${i}`).toEqual(expected.texts[i]!.input_ids));
      }
    });

    // Small batches and a small token budget put texts of different lengths in one padded batch.
    for (const batching of [
      { batchSize: 7, maxBatchTokens: 400 },
      { batchSize: 256 },
    ]) {
      it(`reproduces dense, lexical and ColBERT outputs (batchSize ${batching.batchSize})`, async () => {
        for (const [maxLength, indices] of byMaxLength(expected.texts)) {
          const out = await model.encode(
            indices.map((i) => expected.texts[i]!.text),
            { ...batching, maxLength, returnDense: true, returnSparse: true, returnColbertVecs: true },
          );
          indices.forEach((i, k) => {
            const want = expected.texts[i]!;
            expect(maxAbsDiff(out.denseVecs![k]!, want.dense), `dense of text ${i}`).toBeLessThan(TOL);
            checkLexical(out.lexicalWeights![k]!, want.lexical_weights, `text ${i}`);
            const colbert = out.colbertVecs![k]!;
            expect(colbert.length, `colbert rows of text ${i}`).toBe(want.input_ids.length - 1);
            colbert.forEach((row, r) => expect(maxAbsDiff(row, want.colbert_vecs[r]!), `colbert ${i}[${r}]`).toBeLessThan(TOL));
          });
        }
      });
    }

    it('reproduces every pair score with computeScore and the single-pair functions', async () => {
      const pairs = expected.pairs.map((p) => [expected.texts[p.query]!, expected.texts[p.passage]!] as const);
      // Each side is encoded with its own max_length in the fixture; group pairs accordingly.
      const groups = new Map<string, number[]>();
      pairs.forEach(([q, p], i) => {
        const key = `${q.max_length}/${p.max_length}`;
        groups.set(key, [...(groups.get(key) ?? []), i]);
      });
      for (const [key, indices] of groups) {
        const [maxQueryLength, maxPassageLength] = key.split('/').map(Number);
        const scores = await model.computeScore(
          indices.map((i) => [pairs[i]![0].text, pairs[i]![1].text]),
          { maxQueryLength, maxPassageLength, weightsForDifferentModes: expected.weights },
        );
        indices.forEach((i, k) => {
          const want = expected.pairs[i]!;
          for (const mode of ['dense', 'sparse', 'colbert', 'sparse+dense', 'colbert+sparse+dense'] as const) {
            expect(Math.abs(scores[mode][k]! - want[mode]), `pair ${i} ${mode}`).toBeLessThan(TOL);
          }
        });
      }
      // The single-pair helpers on encode() outputs give the same numbers.
      const p0 = expected.pairs[0]!;
      const [q, p] = [expected.texts[p0.query]!, expected.texts[p0.passage]!];
      const enc = await model.encode([q.text, p.text], { returnSparse: true, returnColbertVecs: true });
      expect(Math.abs(model.computeLexicalMatchingScore(enc.lexicalWeights![0]!, enc.lexicalWeights![1]!) - p0.sparse)).toBeLessThan(TOL);
      expect(Math.abs(model.colbertScore(enc.colbertVecs![0]!, enc.colbertVecs![1]!) - p0.colbert)).toBeLessThan(TOL);
    });
  });
}
