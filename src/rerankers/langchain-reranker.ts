/**
 * `BgeM3Reranker`: the M3 reranker as a LangChain.js document compressor, e.g. inside
 * `ContextualCompressionRetriever`. Scores `pageContent` only (metadata is not text to match).
 */
import type { Callbacks } from '@langchain/core/callbacks/manager';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import { BaseDocumentCompressor } from '@langchain/core/retrievers/document_compressors';
import { BgeM3Error } from '../errors.js';
import { checkInteger, describeValue } from '../shared/checks.js';
import type { M3Reranker, M3RerankResult } from './m3-reranker.js';
import type { ColbertSource } from '../stores/types.js';
import { RerankerHandle, type M3RerankerAdapterOptions } from './reranker-handle.js';

/**
 * Options: `model` (instance or source, default `'BAAI/bge-m3'`), `topN` (default 3), `weights`
 * (default `[0.4, 0.2, 0.4]`), `maxQueryLength` (512), `maxPassageLength` (8192), `batchSize`,
 * `cacheMaxBytes`, and `index`: an index with stored multi-vectors (`multiVectors: 'fp16' | 'int8'`),
 * from which Documents with an `id` it stores are scored without encoding them (a hybrid retriever
 * over that index sets the ids), so a retriever -> reranker chain pays one query encode.
 */
export type BgeM3RerankerParams = M3RerankerAdapterOptions;

/** Metadata the compressor adds to each returned document copy. */
export interface BgeM3RerankMetadata {
  /** `'colbert+sparse+dense'`, the score documents are sorted by. */
  relevanceScore: number;
  denseScore: number;
  sparseScore: number;
  colbertScore: number;
  /** `'stored'` when scored from the `index`'s stored vectors, `'encoded'` when the text was encoded. */
  colbertSource: ColbertSource;
}

export class BgeM3Reranker extends BaseDocumentCompressor {
  readonly topN: number;
  private readonly handle: RerankerHandle;

  constructor(fields: BgeM3RerankerParams = {}) {
    super();
    this.handle = new RerankerHandle(fields, 'BgeM3Reranker');
    this.topN = this.handle.topN;
  }

  /** The framework-free reranker behind this compressor (its cache statistics, for instance). */
  getReranker(): Promise<M3Reranker> {
    return this.handle.get();
  }

  /**
   * Returns the best `topN` documents, best first, as copies (the inputs are not mutated) whose
   * metadata gains `relevanceScore`, `denseScore`, `sparseScore` and `colbertScore`. Fewer documents
   * than `topN` are all returned; `[]` gives `[]`.
   */
  async compressDocuments(documents: DocumentInterface[], query: string, _callbacks?: Callbacks): Promise<DocumentInterface[]> {
    const results = await this.rerank(documents, query, { topN: this.topN });
    return results.map((r) => {
      const doc = documents[r.index]!;
      const metadata: Record<string, unknown> & BgeM3RerankMetadata = {
        ...doc.metadata,
        relevanceScore: r.relevanceScore,
        denseScore: r.dense,
        sparseScore: r.sparse,
        colbertScore: r.colbert,
        colbertSource: r.colbertSource,
      };
      return new Document({ pageContent: doc.pageContent, metadata, id: doc.id });
    });
  }

  /**
   * Scores documents (strings or `Document`s) against the query, best first. Returns every
   * document unless `options.topN` is given (the constructor's `topN` applies to
   * `compressDocuments` only).
   */
  async rerank(documents: (string | DocumentInterface)[], query: string, options: { topN?: number } = {}): Promise<M3RerankResult[]> {
    if (typeof query !== 'string') {
      throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3Reranker: the query must be a string; got ${describeValue(query)}.`);
    }
    const texts = documentTexts(documents);
    const topN = options.topN === undefined ? undefined : checkInteger(options.topN, 'BgeM3Reranker.rerank: topN', 1);
    if (texts.length === 0) return [];
    // Documents carry their ids, so the reranker's `index` can score them from stored vectors.
    const passages = texts.map((text, i) => {
      const id = typeof documents[i] === 'string' ? undefined : (documents[i] as DocumentInterface).id;
      return typeof id === 'string' && id.length > 0 ? { text, id } : text;
    });
    return (await this.handle.get()).rerank(query, passages, { topN });
  }
}

/** The text of each document; anything that is neither a string nor a document with string `pageContent` is an error. */
function documentTexts(documents: unknown): string[] {
  if (!Array.isArray(documents)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `BgeM3Reranker: documents must be an array of strings or Documents; got ${describeValue(documents)}.`);
  }
  return documents.map((d: unknown, i) => {
    if (typeof d === 'string') return d;
    const content = (d as Partial<DocumentInterface> | null)?.pageContent;
    if (typeof content === 'string') return content;
    throw new BgeM3Error(
      'INVALID_ARGUMENT',
      `BgeM3Reranker: documents[${i}] is ${describeValue(d)}${d && typeof d === 'object' ? ` with pageContent ${describeValue(content)}` : ''}; pass strings or Documents whose pageContent is a string.`,
    );
  });
}
