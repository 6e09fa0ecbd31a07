/**
 * The other public heads-in-graph naming (yuniko-software: `dense_embeddings`, `sparse_weights`,
 * `colbert_vectors`) with its weights in an external file called `model.onnx.data`: built from the
 * fixture's m3/ graph by renaming the outputs and moving every initializer out of the graph, then
 * checked against the fixture's expected outputs.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model } from '../../src/index.js';
import { externalTensor, onnx } from '../../src/model/onnx-graph.js';
import { loadExpected, maxAbsDiff, TINY_M3_DIR, TOL } from '../helpers.js';

const RENAME: Record<string, string> = { dense_vecs: 'dense_embeddings', sparse_vecs: 'sparse_weights', colbert_vecs: 'colbert_vectors' };

const dir = mkdtempSync(join(tmpdir(), 'bge-m3-yuniko-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  const model = onnx.ModelProto.decode(readFileSync(join(TINY_M3_DIR, 'model.onnx')));
  const graph = model.graph!;
  const rename = (name: string) => RENAME[name] ?? name;
  for (const o of graph.output ?? []) o.name = rename(o.name!);
  for (const n of graph.node ?? []) n.output = (n.output ?? []).map(rename);
  // Move every initializer with raw data into model.onnx.data.
  const chunks: Buffer[] = [];
  let offset = 0;
  graph.initializer = (graph.initializer ?? []).map((t) => {
    if (!t.rawData || t.rawData.length === 0) return t;
    const data = Buffer.from(t.rawData);
    chunks.push(data);
    const ext = externalTensor(t.name!, (t.dims ?? []).map(Number), t.dataType!, 'model.onnx.data', offset, data.length);
    offset += data.length;
    return ext;
  });
  writeFileSync(join(dir, 'model.onnx.data'), Buffer.concat(chunks));
  writeFileSync(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'config.json']) copyFileSync(join(TINY_M3_DIR, f), join(dir, f));
});

describe('dense_embeddings / sparse_weights / colbert_vectors with model.onnx.data', () => {
  it('loads the layout and reproduces the fixture outputs', async () => {
    const model = await BgeM3Model.load(dir);
    try {
      expect(model.layout).toBe('heads');
      const expected = loadExpected().texts.filter((t) => t.max_length === 8192 && t.input_ids.length < 200).slice(0, 20);
      const out = await model.encode(
        expected.map((t) => t.text),
        { batchSize: 5, returnSparse: true, returnColbertVecs: true },
      );
      expected.forEach((want, i) => {
        expect(maxAbsDiff(out.denseVecs![i]!, want.dense)).toBeLessThan(TOL);
        for (const [id, w] of Object.entries(want.lexical_weights)) {
          if (w >= 1e-4) expect(Math.abs(out.lexicalWeights![i]![id]! - w)).toBeLessThan(TOL);
        }
        expect(out.colbertVecs![i]).toHaveLength(want.input_ids.length - 1);
        out.colbertVecs![i]!.forEach((row, r) => expect(maxAbsDiff(row, want.colbert_vecs[r]!)).toBeLessThan(TOL));
      });
    } finally {
      await model.dispose();
    }
  });
});
