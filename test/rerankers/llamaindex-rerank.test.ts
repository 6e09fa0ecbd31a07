/**
 * `BgeM3Rerank` (LlamaIndex.TS node postprocessor) on the fixture model: in a real
 * `RetrieverQueryEngine` over a `VectorStoreIndex` built with `BgeM3Embedding` (MockLLM as the
 * synthesizer's LLM) the source nodes come back in reranked order with `computeScore`'s scores;
 * metadataMode picks the text; every edge case has a defined result.
 */
import { MockLLM } from '@llamaindex/core/llms/mock';
import { Document, ImageNode, MetadataMode, RetrieverQueryEngine, Settings, TextNode, VectorStoreIndex, type NodeWithScore } from 'llamaindex';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Error, BgeM3Model } from '../../src/index.js';
import { BgeM3Embedding, BgeM3Rerank } from '../../src/llamaindex.js';
import { CORPUS, OTHER_QUERY, QUERY } from '../embeddings/corpus.js';
import { TINY_DIR } from '../helpers.js';

const SAME = 1e-5;

function textNodes(texts: string[], metadata: (i: number) => Record<string, unknown> = () => ({})): NodeWithScore[] {
  return texts.map((text, i) => ({ node: new TextNode({ text, id_: `n${i}`, metadata: metadata(i) }), score: 0 }));
}

describe('BgeM3Rerank', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
    Settings.llm = new MockLLM();
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('RetrieverQueryEngine: source nodes in reranked order with computeScore scores', async () => {
    const docs = CORPUS.map((text, i) => new Document({ text, id_: `doc-${i}`, metadata: { source: `doc-${i}` } }));
    const index = await Settings.withEmbedModel(new BgeM3Embedding({ model }), () => VectorStoreIndex.fromDocuments(docs));
    const retriever = index.asRetriever({ similarityTopK: 8 });
    const engine = new RetrieverQueryEngine(retriever, undefined, [new BgeM3Rerank({ model })]);

    const candidates = await retriever.retrieve(QUERY);
    expect(candidates).toHaveLength(8);
    const texts = candidates.map((c) => c.node.getContent(MetadataMode.NONE));
    const s = await model.computeScore(
      texts.map((t) => [QUERY, t] as [string, string]),
      { weightsForDifferentModes: [0.4, 0.2, 0.4] },
    );
    const want = candidates
      .map((c, i) => ({ id: c.node.id_, score: s['colbert+sparse+dense'][i]! }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 3);

    const response = await engine.query({ query: QUERY });
    const sources = response.sourceNodes!;
    expect(sources.map((n) => n.node.id_)).toEqual(want.map((w) => w.id));
    sources.forEach((n, k) => expect(Math.abs(n.score! - want[k]!.score)).toBeLessThan(SAME));
    expect(typeof response.message.content).toBe('string'); // MockLLM answered from the reranked context
  });

  it('returns new NodeWithScore objects around the same nodes, inputs untouched', async () => {
    const input = textNodes(CORPUS.slice(0, 5));
    const out = await new BgeM3Rerank({ model, topN: 5 }).postprocessNodes(input, QUERY);
    expect(input.every((n) => n.score === 0)).toBe(true);
    for (const n of out) {
      const original = input.find((x) => x.node === n.node);
      expect(original).toBeDefined();
      expect(n).not.toBe(original);
    }
  });

  it('metadataMode selects the scored text (default NONE; ALL adds metadata lines)', async () => {
    const input = textNodes(CORPUS.slice(0, 4), (i) => ({ title: CORPUS[11 - i]! }));
    const score = async (mode: MetadataMode) => {
      const s = await model.computeScore(
        input.map((n) => [QUERY, n.node.getContent(mode)] as [string, string]),
        { weightsForDifferentModes: [0.4, 0.2, 0.4] },
      );
      return s['colbert+sparse+dense'];
    };
    const none = await new BgeM3Rerank({ model, topN: 4 }).postprocessNodes(input, QUERY);
    const all = await new BgeM3Rerank({ model, topN: 4, metadataMode: MetadataMode.ALL }).postprocessNodes(input, QUERY);
    const [wantNone, wantAll] = [await score(MetadataMode.NONE), await score(MetadataMode.ALL)];
    for (const n of none) expect(Math.abs(n.score! - wantNone[input.findIndex((x) => x.node === n.node)]!)).toBeLessThan(SAME);
    for (const n of all) expect(Math.abs(n.score! - wantAll[input.findIndex((x) => x.node === n.node)]!)).toBeLessThan(SAME);
    expect(none.map((n) => n.score)).not.toEqual(all.map((n) => n.score));
    expect(new BgeM3Rerank({ model, metadataMode: 'EMBED' }).metadataMode).toBe(MetadataMode.EMBED);
    expect(() => new BgeM3Rerank({ model, metadataMode: 'TITLE' as never })).toThrow(/metadataMode must be one of ALL, EMBED, LLM, NONE/);
  });

  it('accepts message-content queries with text parts, like a string query', async () => {
    const input = textNodes(CORPUS.slice(0, 4));
    const reranker = new BgeM3Rerank({ model });
    const fromString = await reranker.postprocessNodes(input, QUERY);
    const fromContent = await reranker.postprocessNodes(input, [{ type: 'text', text: QUERY }]);
    expect(fromContent).toEqual(fromString);
  });

  it('caches passage encodings across queries', async () => {
    const input = textNodes(CORPUS);
    const reranker = new BgeM3Rerank({ model });
    await reranker.postprocessNodes(input, QUERY);
    const spy = vi.spyOn(model, 'encode');
    try {
      await reranker.postprocessNodes(input, OTHER_QUERY);
      expect(spy.mock.calls.map((c) => c[0])).toEqual([[OTHER_QUERY]]);
    } finally {
      spy.mockRestore();
    }
  });

  it('edge cases: empty list, topN larger than the list, identical texts, image nodes', async () => {
    const reranker = new BgeM3Rerank({ model }); // topN 3
    expect(reranker.topN).toBe(3);
    expect(await reranker.postprocessNodes([], QUERY)).toEqual([]);
    expect(await reranker.postprocessNodes(textNodes(CORPUS.slice(0, 2)), QUERY)).toHaveLength(2);

    const twins = textNodes([CORPUS[5]!, CORPUS[2]!, CORPUS[5]!]);
    const out = await new BgeM3Rerank({ model, topN: 10 }).postprocessNodes(twins, QUERY);
    expect(out).toHaveLength(3);
    const [a, b] = out.filter((n) => n.node.getContent(MetadataMode.NONE) === CORPUS[5]);
    expect(a!.score).toBe(b!.score);
    expect([a!.node.id_, b!.node.id_]).toEqual(['n0', 'n2']); // ties keep input order

    // An image node is scored on its text (caption), like any text node; no text scores as ''.
    const image = new ImageNode({ image: 'data:image/png;base64,AA==', text: CORPUS[2]!, id_: 'img' });
    const blank = new ImageNode({ image: 'data:image/png;base64,AA==', id_: 'blank' });
    const mixed = await new BgeM3Rerank({ model, topN: 3 }).postprocessNodes([{ node: image }, { node: blank }, ...textNodes([CORPUS[2]!])], QUERY);
    const byId = new Map(mixed.map((n) => [n.node.id_, n.score!]));
    expect(byId.get('img')).toBe(byId.get('n0'));
    const [emptyText] = await new BgeM3Rerank({ model }).postprocessNodes(textNodes(['']), QUERY);
    expect(byId.get('blank')).toBeCloseTo(emptyText!.score!, 6); // other batch mates: padding moves fp32 last digits
  });

  it('a missing or text-less query is a BgeM3Error', async () => {
    const reranker = new BgeM3Rerank({ model });
    for (const query of [undefined, null, 3]) {
      const err = await reranker.postprocessNodes(textNodes(CORPUS.slice(0, 2)), query as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BgeM3Error);
      expect((err as Error).message).toMatch(/needs a text query/);
    }
    await expect(reranker.postprocessNodes([], undefined)).rejects.toBeInstanceOf(BgeM3Error);
    await expect(
      reranker.postprocessNodes(textNodes(['x']), [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } }]),
    ).rejects.toThrow(/message content without any text part/);
  });

  it('non-node entries and bad options are BgeM3Errors', async () => {
    const reranker = new BgeM3Rerank({ model });
    await expect(reranker.postprocessNodes([{ node: { text: 'x' } } as never], QUERY)).rejects.toThrow(/nodes\[0\] has no text content/);
    await expect(reranker.postprocessNodes(['text'] as never, QUERY)).rejects.toThrow(/nodes\[0\]/);
    await expect(reranker.postprocessNodes('x' as never, QUERY)).rejects.toThrow(/nodes must be an array/);
    expect(() => new BgeM3Rerank({ model, topN: -1 })).toThrow(/BgeM3Rerank: topN/);
    expect(() => new BgeM3Rerank({ model, weights: [1, 2] as never })).toThrow(/BgeM3Rerank: weights/);
    // The token bound depends on the model, so it is checked when the model is there.
    await expect(new BgeM3Rerank({ model, maxPassageLength: 9000 }).postprocessNodes(textNodes(['x']), QUERY)).rejects.toThrow(
      /maxPassageLength 9000 exceeds the 8192 tokens/,
    );
  });
});
