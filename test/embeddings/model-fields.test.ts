/**
 * `modelFields` on both embedding adapters: the model option as given, so another adapter (e.g. the
 * default index of `BgeM3VectorStore`) built from it shares the same model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model, MemoryHybridIndex } from '../../src/index.js';
import { BgeM3Embeddings, BgeM3VectorStore } from '../../src/langchain.js';
import { BgeM3Embedding } from '../../src/llamaindex.js';
import { disposeSharedModels } from '../../src/index.js';
import { TINY_DIR } from '../helpers.js';

describe('modelFields', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(async () => {
    await model?.dispose();
    await disposeSharedModels();
  });

  it('hold the model or source as given (default BAAI/bge-m3) and the load options', () => {
    expect(new BgeM3Embeddings({ model }).modelFields).toEqual({ model, loadOptions: undefined });
    expect(new BgeM3Embeddings().modelFields.model).toBe('BAAI/bge-m3');
    expect(new BgeM3Embedding({ model: TINY_DIR, loadOptions: { threads: 1 } }).modelFields).toEqual({ model: TINY_DIR, loadOptions: { threads: 1 } });
    expect(Object.isFrozen(new BgeM3Embedding().modelFields)).toBe(true);
  });

  it('a source string is loaded once and shared by the embeddings and the store’s default index', async () => {
    const embeddings = new BgeM3Embeddings({ model: TINY_DIR });
    const store = new BgeM3VectorStore(embeddings);
    const [a, b] = await Promise.all([embeddings.getModel(), (store.index as MemoryHybridIndex).getModel()]);
    expect(a).toBe(b);
  });
});
