/**
 * Stored multi-vectors (issue: reranking at the cost of one query): the codec's rounding bounds
 * and its refusal of damaged blobs; MemoryHybridIndex keeping ColBERT rows in a side file (spill
 * file before save), reranking from them with one encoder call (counted), surviving save/load,
 * compaction and re-saves, and refusing truncated or damaged side files; M3Reranker with `index`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Model, M3Reranker, MemoryHybridIndex } from '../../src/index.js';
import { decodeMultiVectors, encodeMultiVectors } from '../../src/stores/multi-vectors.js';
import { packColbertQuery, storedColbertScore, storedColbertScoreJs } from '../../src/stores/stored-maxsim.js';
import { colbertScore } from '../../src/scores.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

const texts = loadExpected().texts.map((t) => t.text);
const docs = texts.map((text, i) => ({ id: `d${i}`, text, metadata: { i } }));
const QUERIES = [texts[0]!, texts[1]!, 'BM25 und dichte Vektoren', 'multilingual retrieval'];
const BOUND = { fp16: 1e-3, int8: 5e-3 } as const;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function unitRows(rand: () => number, n: number, dim: number): Float32Array[] {
  return Array.from({ length: n }, () => {
    const v = Float32Array.from({ length: dim }, () => rand() * 2 - 1);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

describe('multi-vector codec', () => {
  it('fp16 and int8 keep MaxSim within their bounds and size rows as documented', () => {
    const rand = rng(1);
    const dim = 1024;
    const q = unitRows(rand, 12, dim);
    const p = unitRows(rand, 200, dim);
    const exact = colbertScore(q, p);
    for (const [format, rowBytes] of [['fp16', 2 * dim], ['int8', dim + 4]] as const) {
      const blob = encodeMultiVectors(p, dim, format);
      expect(blob.byteLength).toBe(8 + 200 * rowBytes);
      const back = decodeMultiVectors(blob, dim, 'test');
      expect(back).toHaveLength(200);
      expect(Math.abs(colbertScore(q, back) - exact)).toBeLessThan(BOUND[format] / 4);
    }
    expect(decodeMultiVectors(encodeMultiVectors([], dim, 'int8'), dim, 'x')).toEqual([]);
    expect(decodeMultiVectors(encodeMultiVectors([new Float32Array(dim)], dim, 'int8'), dim, 'x')[0]!.every((v) => v === 0)).toBe(true);
  });

  it('scores straight from the stored bytes as MaxSim over the decoded rows does (both kernels, every query length, odd offsets)', async () => {
    const rand = rng(4);
    const dim = 48;
    const p = unitRows(rand, 37, dim);
    for (const format of ['fp16', 'int8'] as const) {
      const blob = encodeMultiVectors(p, dim, format);
      // The same bytes at an odd byte offset (as a database driver's Buffer may hold them).
      const odd = new Uint8Array(blob.byteLength + 1).subarray(1);
      odd.set(blob);
      // And in a Buffer of Node's pool at an odd offset (its slice is a view, not a copy).
      const pooled = Buffer.concat([Buffer.from([1]), blob]).subarray(1);
      const decoded = decodeMultiVectors(blob, dim, 'x');
      for (let qn = 0; qn <= 9; qn++) {
        const q = unitRows(rand, qn, dim);
        const expected = colbertScore(q, decoded);
        for (const bytes of [blob, odd, pooled]) {
          // JS: the same float32 values in double, only the summation order differs (and for int8
          // the scale is applied once per dot product rather than rounded into every value);
          // onnxruntime: float32 accumulation.
          expect(Math.abs(storedColbertScoreJs(packColbertQuery(q, dim), bytes, 'x') - expected)).toBeLessThan(format === 'fp16' ? 1e-12 : 1e-8);
          expect(Math.abs((await storedColbertScore(packColbertQuery(q, dim), bytes, 'x', { backend: 'onnxruntime' })) - expected)).toBeLessThan(1e-6);
        }
      }
      // A passage without rows scores 0, as colbertScore does.
      for (const backend of ['js', 'onnxruntime'] as const) {
        expect(await storedColbertScore(packColbertQuery(unitRows(rand, 3, dim), dim), encodeMultiVectors([], dim, format), 'x', { backend })).toBe(0);
      }
    }
    // BGE-M3's width picks onnxruntime by default: a 1024-d, 200-row document.
    const q = unitRows(rand, 7, 1024);
    const big = unitRows(rand, 200, 1024);
    const blob = encodeMultiVectors(big, 1024, 'fp16');
    expect(Math.abs((await storedColbertScore(packColbertQuery(q, 1024), blob, 'x')) - colbertScore(q, decodeMultiVectors(blob, 1024, 'x')))).toBeLessThan(1e-5);
  });

  it('refuses damaged blobs when scoring from them too (both kernels)', async () => {
    const where = 'table docs, document "b"';
    const q = packColbertQuery(unitRows(rng(5), 5, 8), 8);
    const inf = Uint8Array.from(encodeMultiVectors(unitRows(rng(6), 2, 8), 8, 'fp16'));
    new DataView(inf.buffer).setUint16(8 + 16 + 6, 0x7c00, true); // +Inf in row 1
    const nan = Uint8Array.from(encodeMultiVectors(unitRows(rng(7), 1, 8), 8, 'int8'));
    new DataView(nan.buffer).setFloat32(8, NaN, true);
    for (const backend of ['js', 'onnxruntime'] as const) {
      await expect(storedColbertScore(q, inf, where, { backend })).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/document "b".*row 1 holds a value that is not finite/) });
      await expect(storedColbertScore(q, nan, where, { backend })).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/scale NaN/) });
      await expect(storedColbertScore(q, nan.subarray(0, nan.length - 2), where, { backend })).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/whole number of int8 rows/) });
      await expect(storedColbertScore(packColbertQuery([], 16), nan, where, { backend })).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/8-value rows in an index of 16-dimensional/) });
    }
  });

  it('refuses truncated, foreign and mismatched blobs with CORRUPT_FILE naming the place', () => {
    const blob = encodeMultiVectors(unitRows(rng(2), 3, 8), 8, 'fp16');
    const where = 'table docs, document "a"';
    expect(() => decodeMultiVectors(blob.subarray(0, blob.length - 1), 8, where)).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE', message: expect.stringMatching(/document "a".*whole number of fp16 rows/) }));
    expect(() => decodeMultiVectors(blob.subarray(0, 4), 8, where)).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE' }));
    expect(() => decodeMultiVectors(Buffer.from('not a multi-vector blob'), 8, where)).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE', message: expect.stringMatching(/no multi-vector header/) }));
    expect(() => decodeMultiVectors(blob, 16, where)).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE', message: expect.stringMatching(/8-value rows in an index of 16-dimensional/) }));
    const nan = Uint8Array.from(encodeMultiVectors(unitRows(rng(3), 1, 8), 8, 'int8'));
    new DataView(nan.buffer).setFloat32(8, NaN, true);
    expect(() => decodeMultiVectors(nan, 8, where)).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE', message: expect.stringMatching(/scale NaN/) }));
  });
});

describe('MemoryHybridIndex with multiVectors', () => {
  let model: BgeM3Model;
  let plain: MemoryHybridIndex;
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'bge-m3-rag-mv-'));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
    plain = new MemoryHybridIndex({ model });
    await plain.add(docs);
  });
  afterAll(async () => {
    await model.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Encoder calls and texts while `work` runs. */
  async function countEncodes<T>(work: () => Promise<T>): Promise<{ result: T; calls: number; texts: number }> {
    const spy = vi.spyOn(model, 'encode');
    try {
      const result = await work();
      return { result, calls: spy.mock.calls.length, texts: spy.mock.calls.reduce((n, c) => n + (c[0] as string[]).length, 0) };
    } finally {
      spy.mockRestore();
    }
  }

  for (const format of ['fp16', 'int8'] as const) {
    it(`${format}: reranks from stored vectors with one encode of the query, within ${BOUND[format]} of re-encoding`, async () => {
      const index = new MemoryHybridIndex({ model, multiVectors: format });
      try {
        await index.add(docs);
        let worst = 0;
        for (const [qi, q] of QUERIES.entries()) {
          const opts = { k: 5, rerank: { topN: docs.length } };
          const stored = await countEncodes(() => index.search(q, opts));
          expect(stored.calls, 'encoder calls').toBe(1);
          expect(stored.texts, 'texts encoded').toBe(1);
          const encoded = await countEncodes(() => plain.search(q, opts));
          // Without stored vectors the passages are encoded (then served by the reranker's cache).
          if (qi === 0 && format === 'fp16') expect(encoded.texts).toBeGreaterThan(docs.length / 2);
          expect(stored.result.map((r) => r.colbertSource)).toEqual(stored.result.map(() => 'stored'));
          expect(encoded.result.every((r) => r.colbertSource === 'encoded')).toBe(true);
          const want = new Map(encoded.result.map((r) => [r.id, r]));
          // The re-encoded top 5 may differ in order only by near-ties; compare by id.
          const all = await plain.search(q, { k: docs.length, rerank: { topN: docs.length } });
          for (const r of all) want.set(r.id, r);
          for (const r of stored.result) {
            const w = want.get(r.id)!;
            expect(r.dense).toBe(w.dense);
            expect(r.sparse).toBe(w.sparse);
            worst = Math.max(worst, Math.abs(r.score - w.score), Math.abs(r.colbert! - w.colbert!));
          }
        }
        expect(worst, `largest |stored - re-encoded| score (${format})`).toBeLessThanOrEqual(BOUND[format]);
      } finally {
        await index.close();
      }
    });
  }

  it('keeps vectors on disk: save writes a side file, load reads it on demand, re-saves replace it, compaction keeps it', async () => {
    const index = new MemoryHybridIndex({ model, multiVectors: 'fp16' });
    const dir = tmp();
    await index.add(docs);
    const before = await index.search(QUERIES[0]!, { k: 4, rerank: true });
    await index.save(dir);
    const side = readdirSync(dir).filter((n) => n.endsWith('.colbert'));
    expect(side).toHaveLength(1);
    expect(statSync(join(dir, side[0]!)).size).toBeGreaterThan(1000);
    await index.close();

    const loaded = await MemoryHybridIndex.load(dir, model);
    expect(loaded.multiVectors).toBe('fp16');
    const after = await countEncodes(() => loaded.search(QUERIES[0]!, { k: 4, rerank: true }));
    expect(after.texts).toBe(1);
    expect(after.result).toEqual(before);
    // Adds after a load go to the spill file; deletes and compaction keep the others' vectors.
    await loaded.add([{ id: 'new', text: 'ein neues Dokument über Retrieval' }]);
    await loaded.delete(['d0', 'd1', 'd2']);
    expect(loaded.size).toBe(docs.length - 2);
    const compacted = await loaded.search(QUERIES[1]!, { k: 20, rerank: { topN: 20 } });
    expect(compacted.every((r) => r.colbertSource === 'stored')).toBe(true);
    await loaded.save(dir);
    const side2 = readdirSync(dir).filter((n) => n.endsWith('.colbert'));
    expect(side2).toHaveLength(1);
    expect(side2[0]).not.toBe(side[0]);
    // The loaded index still reads its (now removed) first side file through its open descriptor.
    expect((await loaded.search(QUERIES[1]!, { k: 20, rerank: { topN: 20 } })).map((r) => r.score)).toEqual(compacted.map((r) => r.score));
    await loaded.close();
    const again = await MemoryHybridIndex.load(dir, model);
    try {
      expect((await again.search(QUERIES[1]!, { k: 20, rerank: { topN: 20 } })).map((r) => [r.id, r.score, r.colbertSource])).toEqual(compacted.map((r) => [r.id, r.score, 'stored']));
    } finally {
      await again.close();
    }
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses a missing, truncated or damaged side file with CORRUPT_FILE naming it', async () => {
    const index = new MemoryHybridIndex({ model, multiVectors: 'int8' });
    const dir = tmp();
    await index.add(docs);
    await index.save(dir);
    await index.close();
    const side = join(dir, readdirSync(dir).find((n) => n.endsWith('.colbert'))!);
    const original = readFileSync(side);

    // Damaged in the middle: the load succeeds (sizes match); the rerank that reads it fails.
    const damaged = Buffer.from(original);
    damaged[damaged.length - 3] = damaged[damaged.length - 3]! ^ 0xff;
    writeFileSync(side, damaged);
    const loaded = await MemoryHybridIndex.load(dir, model);
    try {
      await expect(loaded.search(QUERIES[0]!, { k: docs.length, rerank: { topN: docs.length } })).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/\.colbert.*CRC-32/) });
      // Searches without rerank do not read the side file.
      expect(await loaded.search(QUERIES[0]!, { k: 3 })).toHaveLength(3);
    } finally {
      await loaded.close();
    }

    writeFileSync(side, original);
    truncateSync(side, original.length - 10);
    await expect(MemoryHybridIndex.load(dir, model)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/\.colbert.*truncated or replaced/) });
    rmSync(side);
    await expect(MemoryHybridIndex.load(dir, model)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/multi-vector file .*\.colbert cannot be opened/) });
  });

  it('addEncoded keeps given ColBERT rows, refuses bad ones whole, and rows without them fall back to encoding', async () => {
    const dim = model.dim;
    const encoded = await model.encode(texts.slice(0, 4), { returnDense: true, returnSparse: true, returnColbertVecs: true });
    const index = new MemoryHybridIndex({ model, multiVectors: 'fp16' });
    try {
      const rows = texts.slice(0, 4).map((text, i) => ({ id: `e${i}`, text, dense: encoded.denseVecs![i]!, sparse: encoded.lexicalWeights![i]!, colbert: i < 3 ? encoded.colbertVecs![i]! : undefined }));
      expect(() => index.addEncoded([{ ...rows[0]!, id: 'bad', colbert: [new Float32Array(dim + 1)] }])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/colbert\[0\] must hold/) }));
      expect(() => index.addEncoded([rows[1]!, { ...rows[0]!, id: 'nan', colbert: [new Float32Array(dim).fill(NaN)] }])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/docs\[1\]\.colbert\[0\]\[0\] is number NaN/) }));
      expect(index.size).toBe(0);
      index.addEncoded(rows);
      const results = await index.search(texts[0]!, { k: 4, rerank: { topN: 4 } });
      expect(new Map(results.map((r) => [r.id, r.colbertSource]))).toEqual(new Map([['e0', 'stored'], ['e1', 'stored'], ['e2', 'stored'], ['e3', 'encoded']]));
    } finally {
      await index.close();
    }
  });

  it('M3Reranker with { index } scores { text, id } passages from stored vectors and encodes the rest', async () => {
    const index = new MemoryHybridIndex({ model, multiVectors: 'fp16' });
    try {
      await index.add(docs);
      const reranker = new M3Reranker({ model, index, cacheMaxBytes: 0 });
      const plainReranker = new M3Reranker({ model, cacheMaxBytes: 0 });
      const passages = [{ text: docs[3]!.text, id: 'd3' }, docs[4]!.text, { text: docs[5]!.text, id: 'unknown' }, { text: docs[6]!.text, id: 'd6' }];
      const fresh = 'eine Frage, die noch niemand gestellt hat';
      const run = await countEncodes(() => reranker.rerank(fresh, passages));
      expect(run.texts).toBe(1 + 2); // the query, and the two passages the index does not store
      const bySource = new Map(run.result.map((r) => [r.index, r.colbertSource]));
      expect(bySource).toEqual(new Map([[0, 'stored'], [1, 'encoded'], [2, 'encoded'], [3, 'stored']]));
      const want = await plainReranker.rerank(fresh, passages.map((p) => (typeof p === 'string' ? p : p.text)));
      for (const r of run.result) expect(Math.abs(r.relevanceScore - want.find((w) => w.index === r.index)!.relevanceScore)).toBeLessThanOrEqual(BOUND.fp16);
      // A retriever -> reranker chain: the index's search encodes the query (all three outputs) once;
      // the reranker then encodes nothing.
      const chain = await countEncodes(async () => {
        const hits = await index.search('retrieval in many languages', { k: 5 });
        return reranker.rerank('retrieval in many languages', hits.map((h) => ({ text: h.text, id: h.id })));
      });
      expect(chain.calls).toBe(1);
      expect(chain.texts).toBe(1);
      expect(chain.result.every((r) => r.colbertSource === 'stored')).toBe(true);
      expect(() => new M3Reranker({ model, index: {} as never })).toThrow(/index option must be an index that can store multi-vectors/);
      await expect(reranker.rerank('q', [{ text: 'a', id: 7 as never }])).rejects.toThrow(/passages\[0\] is .*every entry must be a string or a \{ text: string, id\?: string \} object/);
    } finally {
      await index.close();
    }
  });

  it('refuses an unknown multiVectors setting', () => {
    expect(() => new MemoryHybridIndex({ model, multiVectors: 'fp32' as never })).toThrow(/multiVectors must be false, 'fp16' or 'int8'; got the string "fp32"/);
  });
});
