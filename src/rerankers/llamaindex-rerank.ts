/**
 * `BgeM3Rerank`: the M3 reranker as a LlamaIndex.TS node postprocessor, e.g. in
 * `RetrieverQueryEngine` or `index.asQueryEngine({ nodePostprocessors })`.
 */
import type { MessageContent } from '@llamaindex/core/llms';
import type { BaseNodePostprocessor } from '@llamaindex/core/postprocessor';
import { MetadataMode, type NodeWithScore } from '@llamaindex/core/schema';
import { extractText } from '@llamaindex/core/utils';
import { BgeM3Error } from '../errors.js';
import { describeValue } from '../shared/checks.js';
import type { M3Reranker } from './m3-reranker.js';
import { RerankerHandle, type M3RerankerAdapterOptions } from './reranker-handle.js';

/**
 * Options: those of `M3Reranker` (`model`, `weights`, lengths, `batchSize`, `cacheMaxBytes`, and
 * `index`: an index with stored multi-vectors, from which nodes whose `id_` it stores are scored
 * without encoding them), `topN` (default 3) and `metadataMode`.
 */
export interface BgeM3RerankOptions extends M3RerankerAdapterOptions {
  /**
   * Which node text to score: `getContent(metadataMode)`. Default `MetadataMode.NONE`: the node's
   * text only, like LangChain's `pageContent` and FlagEmbedding's passages (metadata such as file
   * names is not text to match). `EMBED` scores what the embedding saw; `ALL` adds every metadata line.
   */
  metadataMode?: MetadataMode | `${MetadataMode}`;
}

const METADATA_MODES = Object.values(MetadataMode) as string[];

export class BgeM3Rerank implements BaseNodePostprocessor {
  readonly topN: number;
  readonly metadataMode: MetadataMode;
  private readonly handle: RerankerHandle;

  constructor(options: BgeM3RerankOptions = {}) {
    this.handle = new RerankerHandle(options, 'BgeM3Rerank');
    this.topN = this.handle.topN;
    const mode = options.metadataMode ?? MetadataMode.NONE;
    if (!METADATA_MODES.includes(mode)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3Rerank: metadataMode must be one of ${METADATA_MODES.join(', ')}; got ${describeValue(mode)}.`);
    }
    this.metadataMode = mode as MetadataMode;
  }

  /** The framework-free reranker behind this postprocessor (its cache statistics, for instance). */
  getReranker(): Promise<M3Reranker> {
    return this.handle.get();
  }

  /**
   * Returns new `NodeWithScore` objects (same nodes, `score` = the `'colbert+sparse+dense'`
   * score) for the best `topN` nodes, best first. `[]` gives `[]`. The query is required: a
   * string, or message content with at least one text part (image-only content is an error).
   */
  async postprocessNodes(nodes: NodeWithScore[], query?: MessageContent): Promise<NodeWithScore[]> {
    const queryText = queryToText(query);
    const texts = nodeTexts(nodes, this.metadataMode);
    if (texts.length === 0) return [];
    // Stored vectors (the `index` option) were computed from the node's text alone: only then are ids passed.
    const passages = this.metadataMode === MetadataMode.NONE ? texts.map((text, i) => ({ text, id: nodes[i]!.node.id_ })) : texts;
    const results = await (await this.handle.get()).rerank(queryText, passages, { topN: this.topN });
    return results.map((r) => ({ node: nodes[r.index]!.node, score: r.relevanceScore }));
  }
}

function queryToText(query: unknown): string {
  if (typeof query === 'string') return query;
  if (Array.isArray(query) && query.some((part) => part?.type === 'text' && typeof part.text === 'string')) {
    return extractText(query as MessageContent);
  }
  throw new BgeM3Error(
    'INVALID_ARGUMENT',
    `BgeM3Rerank.postprocessNodes needs a text query (a string, or message content with a text part); got ${
      Array.isArray(query) ? 'message content without any text part' : describeValue(query)
    }.`,
  );
}

function nodeTexts(nodes: unknown, mode: MetadataMode): string[] {
  if (!Array.isArray(nodes)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3Rerank.postprocessNodes: nodes must be an array of NodeWithScore; got ${describeValue(nodes)}.`);
  }
  return nodes.map((n: unknown, i) => {
    const node = (n as Partial<NodeWithScore> | null)?.node;
    // Duck-typed: LlamaIndex's ESM and CJS builds have different BaseNode classes.
    const text = typeof node?.getContent === 'function' ? node.getContent(mode) : undefined;
    if (typeof text !== 'string') {
      throw new BgeM3Error(
        'INVALID_ARGUMENT',
        `BgeM3Rerank.postprocessNodes: nodes[${i}] has no text content (expected { node: BaseNode, score? } whose getContent() returns a string); got ${describeValue(n)}.`,
      );
    }
    return text;
  });
}
