/** Checks that a loaded model reproduces the conformance fixture on a few texts. */
import { expect } from 'vitest';
import type { BgeM3Model } from '../../src/index.js';
import { loadExpected, maxAbsDiff, TOL } from '../helpers.js';

/** The first four fixture texts (FlagEmbedding's README sentences), all with max_length 8192. */
export const CHECK_TEXTS = loadExpected().texts.slice(0, 4);

export async function expectFixtureOutputs(model: BgeM3Model, modes: { sparse?: boolean; colbert?: boolean } = { sparse: true, colbert: true }): Promise<void> {
  const out = await model.encode(
    CHECK_TEXTS.map((t) => t.text),
    { returnDense: true, returnSparse: !!modes.sparse, returnColbertVecs: !!modes.colbert },
  );
  CHECK_TEXTS.forEach((t, i) => {
    expect(maxAbsDiff(out.denseVecs![i]!, t.dense), `dense of text ${i}`).toBeLessThan(TOL);
    if (modes.sparse) {
      const got = out.lexicalWeights![i]!;
      for (const [id, w] of Object.entries(t.lexical_weights)) {
        if (w < 1e-4) continue;
        expect(Math.abs((got[id] ?? NaN) - w), `sparse weight of token ${id} in text ${i}`).toBeLessThan(TOL);
      }
    }
    if (modes.colbert) {
      const got = out.colbertVecs![i]!;
      expect(got.length).toBe(t.colbert_vecs.length);
      got.forEach((row, r) => expect(maxAbsDiff(row, t.colbert_vecs[r]!), `colbert row ${r} of text ${i}`).toBeLessThan(TOL));
    }
  });
}
