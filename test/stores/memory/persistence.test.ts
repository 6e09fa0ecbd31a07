/**
 * `MemoryHybridIndex.save` / `load`: identical results after a round trip, refusal of corrupt,
 * truncated, foreign and newer-version files, the last good save surviving an interrupted save, and
 * refusal of a model with another dense width or another vocabulary.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model, disposeSharedModels, HYBRID_INDEX_FILE, MemoryHybridIndex, type HybridSearchOptions } from '../../../src/index.js';
import { DataType, encodeModel, int64Tensor, floatTensor, node, valueInfo } from '../../../src/model/onnx-graph.js';
import { generateModel } from '../../../bench/lib/model-generator.js';
import { TINY_SHAPE } from '../../../bench/lib/xlmr-shape.js';
import { loadExpected, TINY_DIR } from '../../helpers.js';
import { randomCorpus, randomDense, randomSparse, rng } from '../../support/random-corpus.js';

let model: BgeM3Model;
let work: string;
beforeAll(async () => {
  model = await BgeM3Model.load(TINY_DIR);
  work = mkdtempSync(join(tmpdir(), 'bge-m3-rag-persist-'));
});
afterAll(async () => {
  await model?.dispose();
  await disposeSharedModels();
  rmSync(work, { recursive: true, force: true });
});

const texts = () => [...new Set(loadExpected().texts.map((t) => t.text))].filter((t) => t.trim().length > 0);
const queries = ['weather today', 'Wie geht es dir?', '检索', 'интерфейс пользователя', 'BGE M3'];
const optionSets: HybridSearchOptions[] = [
  { k: 10 },
  { k: 5, fusion: 'rrf' },
  { k: 7, weights: { dense: 0, sparse: 1 } },
  { k: 4, candidates: 3, filter: { even: true } },
];

async function buildIndex(): Promise<MemoryHybridIndex> {
  const index = new MemoryHybridIndex({ model });
  await index.add(texts().map((text, i) => ({ id: `t${i}`, text, metadata: { i, even: i % 2 === 0, nested: { tags: ['a', String(i)] } } })));
  await index.delete(['t3', 't4', 't50']); // tombstones, not compacted: save must drop them
  return index;
}

async function allResults(index: MemoryHybridIndex) {
  const out = [];
  for (const q of queries) for (const o of optionSets) out.push(await index.search(q, o));
  return out;
}

function freshDir(name: string): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

describe('MemoryHybridIndex save/load', () => {
  it('save, load, search gives identical results (and the loaded index keeps working)', async () => {
    const index = await buildIndex();
    const dir = freshDir('roundtrip');
    const progress: number[] = [];
    await index.save(dir, { onProgress: (p) => progress.push(p.done) });
    expect(progress.length).toBeGreaterThan(0);
    expect(readdirSync(dir)).toEqual([HYBRID_INDEX_FILE]);

    const loaded = await MemoryHybridIndex.load(dir, model);
    expect(loaded.size).toBe(index.size);
    expect(loaded.has('t3')).toBe(false);
    expect(loaded.get('t7')).toEqual(index.get('t7'));
    expect(await allResults(loaded)).toEqual(await allResults(index));

    // The model may also be given as a source string (loaded once and shared).
    const viaPath = await MemoryHybridIndex.load(dir, TINY_DIR);
    expect(await allResults(viaPath)).toEqual(await allResults(index));

    // A loaded index accepts adds and deletes like a fresh one, and saves again.
    await loaded.add([{ id: 'new', text: 'A brand new document about the weather today' }]);
    await index.add([{ id: 'new', text: 'A brand new document about the weather today' }]);
    await loaded.delete(['t7']);
    await index.delete(['t7']);
    expect(await allResults(loaded)).toEqual(await allResults(index));
    await loaded.save(dir);
    expect(await allResults(await MemoryHybridIndex.load(dir, model))).toEqual(await allResults(index));
  });

  it('refuses corrupt, truncated, foreign and newer-version files with clear errors', async () => {
    const index = await buildIndex();
    const dir = freshDir('corrupt');
    await index.save(dir);
    const path = join(dir, HYBRID_INDEX_FILE);
    const good = readFileSync(path);

    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
    writeFileSync(path, flipped);
    await expect(MemoryHybridIndex.load(dir, model)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/checksum/) });

    const headerFlip = Buffer.from(good);
    headerFlip[40]! ^= 0x01; // inside the JSON header
    writeFileSync(path, headerFlip);
    await expect(MemoryHybridIndex.load(dir, model)).rejects.toMatchObject({ code: 'CORRUPT_FILE' });

    writeFileSync(path, good.subarray(0, good.length - 1000));
    await expect(MemoryHybridIndex.load(dir, model)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/truncated/) });

    writeFileSync(path, good.subarray(0, 20));
    await expect(MemoryHybridIndex.load(dir, model)).rejects.toMatchObject({ code: 'CORRUPT_FILE' });

    writeFileSync(path, Buffer.from('{"not": "an index"}'.repeat(10)));
    await expect(MemoryHybridIndex.load(dir, model)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/signature/) });

    const newer = Buffer.from(good);
    newer.writeUInt32LE(2, 8);
    writeFileSync(path, newer);
    await expect(MemoryHybridIndex.load(dir, model)).rejects.toMatchObject({ code: 'INCOMPATIBLE_INDEX', message: expect.stringMatching(/version 2.*Upgrade/) });

    await expect(MemoryHybridIndex.load(freshDir('nothing-here'), model)).rejects.toMatchObject({ code: 'MISSING_FILE' });

    writeFileSync(path, good);
    expect((await MemoryHybridIndex.load(dir, model)).size).toBe(index.size);
  });

  it('an interrupted save keeps the last good save (and leaves no temporary file)', async () => {
    const index = await buildIndex();
    const dir = freshDir('interrupted');
    await index.save(dir);
    const before = await allResults(index);
    const sizeBefore = index.size;
    // A stale temporary file from a crashed save in another process changes nothing.
    writeFileSync(join(dir, `.${HYBRID_INDEX_FILE}.99999.abcdef.tmp`), 'partial garbage');

    await index.add([{ id: 'extra', text: 'weather today is sunny' }]);
    const controller = new AbortController();
    await expect(
      index.save(dir, {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.done > 0 && p.done < p.total) controller.abort(); // mid-write
        },
      }),
    ).rejects.toThrow(/abort/i);
    expect(readdirSync(dir).sort()).toEqual([`.${HYBRID_INDEX_FILE}.99999.abcdef.tmp`, HYBRID_INDEX_FILE].sort());

    const loaded = await MemoryHybridIndex.load(dir, model);
    expect(loaded.size).toBe(sizeBefore);
    expect(loaded.has('extra')).toBe(false);
    await index.delete(['extra']);
    expect(await allResults(loaded)).toEqual(before);
  });

  it('refuses a model with another vocabulary', async () => {
    const index = await buildIndex();
    const dir = freshDir('vocab');
    await index.save(dir);
    // The same graph and heads with a permuted vocabulary: the ids of neighbouring pieces swapped.
    const otherDir = join(work, 'other-vocab-model');
    cpSync(TINY_DIR, otherDir, { recursive: true });
    const tok = JSON.parse(readFileSync(join(otherDir, 'tokenizer.json'), 'utf8')) as { model: { vocab: [string, number][] } };
    for (let i = 10; i + 1 < tok.model.vocab.length - 1; i += 2) {
      const a = tok.model.vocab[i]!;
      tok.model.vocab[i] = tok.model.vocab[i + 1]!;
      tok.model.vocab[i + 1] = a;
    }
    writeFileSync(join(otherDir, 'tokenizer.json'), JSON.stringify(tok));
    const other = await BgeM3Model.load(otherDir);
    try {
      expect(other.dim).toBe(model.dim);
      await expect(MemoryHybridIndex.load(dir, other)).rejects.toMatchObject({ code: 'INCOMPATIBLE_INDEX', message: expect.stringMatching(/vocabulary differs/) });
    } finally {
      await other.dispose();
    }
  });

  it('refuses a model with another dense width', async () => {
    const index = await buildIndex();
    const dir = freshDir('dim');
    await index.save(dir);
    const otherDir = writeDenseOnlyModel(join(work, 'dim16-model'), 16);
    const other = await BgeM3Model.load(otherDir);
    try {
      expect(other.dim).toBe(16);
      await expect(MemoryHybridIndex.load(dir, other)).rejects.toMatchObject({ code: 'INCOMPATIBLE_INDEX', message: expect.stringMatching(/32-dimensional.*produces 16/) });
    } finally {
      await other.dispose();
    }
  });

  it('refuses a model of the same shape and vocabulary with other weights', async () => {
    const index = await buildIndex();
    const dir = freshDir('weights');
    await index.save(dir);
    const otherDir = join(work, 'other-weights');
    generateModel(otherDir, { shape: TINY_SHAPE, seed: 7 });
    const other = await BgeM3Model.load(otherDir);
    try {
      expect([other.dim, other.tokenizer.vocabSize]).toEqual([model.dim, model.tokenizer.vocabSize]);
      await expect(MemoryHybridIndex.load(dir, other)).rejects.toMatchObject({ code: 'INCOMPATIBLE_INDEX', message: expect.stringMatching(/same shape but other weights/) });
      // The model it was built with still loads it.
      expect((await MemoryHybridIndex.load(dir, model)).size).toBe(index.size);
    } finally {
      await other.dispose();
    }
  });

  it('round-trips an index of precomputed encodings without a model', async () => {
    const rand = rng(5);
    const docs = randomCorpus(rand, 200, 24, 500, 30);
    const index = new MemoryHybridIndex({ dim: 24 });
    index.addEncoded(docs);
    await index.delete(['d1', 'd2']);
    const dir = freshDir('encoded');
    await index.save(dir);
    const loaded = await MemoryHybridIndex.load(dir);
    for (let q = 0; q < 10; q++) {
      const query = { dense: randomDense(rand, 24), sparse: randomSparse(rand, 500, 20) };
      expect(await loaded.searchEncoded(query, { k: 20 })).toEqual(await index.searchEncoded(query, { k: 20 }));
    }
    await expect(MemoryHybridIndex.load(dir, undefined, { dim: 16 })).rejects.toMatchObject({ code: 'INCOMPATIBLE_INDEX' });
    await expect(loaded.search('text')).rejects.toThrow(/needs a model/);
  });
});

/**
 * A real, loadable BGE-M3-layout model of another width: heads-in-graph layout with only a
 * `dense_vecs` output (normalized, masked token embedding of `<s>`), the fixture's tokenizer.
 */
function writeDenseOnlyModel(dir: string, dim: number): string {
  rmSync(dir, { recursive: true, force: true });
  cpSync(TINY_DIR, dir, { recursive: true, filter: (src) => !/onnx|\.pt$|m3$/.test(src.slice(TINY_DIR.length)) });
  const vocab = 8002;
  const table = new Float32Array(vocab * dim);
  const rand = rng(16);
  for (let i = 0; i < table.length; i++) table[i] = rand() - 0.5;
  const graph = {
    name: 'dense_only',
    node: [
      node('Gather', ['table', 'input_ids'], ['emb'], { axis: 0 }),
      node('Cast', ['attention_mask'], ['mask_f'], { to: DataType.FLOAT }),
      node('Unsqueeze', ['mask_f', 'axis2'], ['mask3']),
      node('Mul', ['emb', 'mask3'], ['masked']),
      node('Gather', ['masked', 'zero'], ['cls'], { axis: 1 }),
      node('ReduceL2', ['cls'], ['norm'], { axes: [-1], keepdims: 1 }),
      node('Div', ['cls', 'norm'], ['dense_vecs']),
    ],
    initializer: [floatTensor('table', [vocab, dim], table), int64Tensor('axis2', [1], [2]), int64Tensor('zero', [], [0])],
    input: [valueInfo('input_ids', DataType.INT64, ['batch', 'seq']), valueInfo('attention_mask', DataType.INT64, ['batch', 'seq'])],
    output: [valueInfo('dense_vecs', DataType.FLOAT, ['batch', dim])],
  };
  writeFileSync(join(dir, 'model.onnx'), encodeModel(graph));
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, hidden_size: dim }));
  return dir;
}
