/**
 * (Over 400 lines: one class, the index's state and its search pipeline; input checks, persistence
 * and the rerank stage live in their own modules.)
 *
 * `MemoryHybridIndex`: BGE-M3 hybrid retrieval in process memory. Dense vectors live in one
 * contiguous row-major Float32Array (exact inner product, no approximation); lexical weights live
 * in an inverted index (token id -> postings, exact dot products). A search takes the top
 * candidates of each leg, merges them and rescores every candidate exactly (the BGE-M3 paper's
 * weighted sum by default, RRF as the alternative), then optionally re-ranks the fused top with the
 * M3 reranker (ColBERT + sparse + dense).
 *
 * Consistency. Every change (add, delete, compaction) is applied synchronously in one step that
 * publishes a new immutable-by-contract `State`; a search or save reads one `State` from start to
 * end. Rows below a state's `count` are never written again: adds write above it (growing into a
 * new buffer when full), deletes copy the tombstone array before marking it, compaction builds new
 * arrays. So a search that is awaiting onnxruntime while an add or delete commits still sees exactly
 * the index as it was when it started.
 *
 * Deletes are tombstones; when more than `compactionThreshold` (default 25 %) of the rows are
 * tombstones, the index is compacted (live rows copied, in order, into new arrays). Insertion order
 * is kept, and it breaks score ties.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BgeM3Error } from '../../errors.js';
import type { BgeM3Model } from '../../model/bge-m3-model.js';
import { ModelHandle, type BgeM3ModelFields, type BgeM3ModelOption } from '../../shared/model-option.js';
import type { BgeM3LoadOptions } from '../../model/bge-m3-model.js';
import { dot } from '../../scores.js';
import { checkMultiVectorsOption, encodeMultiVectors, type MultiVectorFormat, type MultiVectorStorage } from '../multi-vectors.js';
import { MultiVectorFile, type MultiVectorRef } from './multi-vector-file.js';
import { storedColbertScore } from '../stored-maxsim.js';
import { scanDense } from './dense-scorer.js';
import { checkInteger, describeValue as describe } from '../../shared/checks.js';
import { DEFAULT_PASSAGE_LENGTH, DEFAULT_QUERY_LENGTH } from '../../shared/defaults.js';
import { fuseCandidates, resolveSearchOptions, type FusionCandidate, type ResolvedSearchOptions } from '../fusion.js';
import { RerankStage } from '../rerank-stage.js';
import { checkEncodedQuery, checkM3Query, encodeQuery } from '../query-encoding.js';
import type { FileIoOptions } from './index-file.js';
import { HYBRID_INDEX_FILE, loadState, saveState } from './index-persistence.js';
import { copyTombstones, emptyState, isDeleted, type State, type StoredDocument } from './index-state.js';
import { encodedRows, encodeDocuments, prepareDocuments, type EncodedRow } from '../document-rows.js';
import { fingerprintModel, type ModelFingerprint } from '../model-fingerprint.js';
import type { SparseVector } from '../sparse-vector.js';
import { compareEntries, TopK } from '../top-k.js';
import type {
  HybridAddOptions,
  HybridDocumentInput,
  HybridEncodedDocument,
  HybridEncodedQuery,
  HybridIndex,
  HybridSearchOptions,
  HybridSearchResult,
  HybridStoredDocument,
  M3QueryEncoding,
  MultiVectorSource,
  StoredPairScores,
} from '../types.js';

export { HYBRID_INDEX_FILE } from './index-persistence.js';

export interface MemoryHybridIndexOptions extends Omit<BgeM3ModelFields, 'model'> {
  /**
   * A loaded `BgeM3Model` (never disposed by the index), or a source for `BgeM3Model.load` (loaded
   * on first use, shared with other adapters given the same source). Default `'BAAI/bge-m3'`, unless
   * `dim` is given; `null` means no model (precomputed encodings only).
   */
  model?: BgeM3ModelOption | null;
  /**
   * Dense width, for an index fed only precomputed encodings (`addEncoded`/`searchEncoded`) and no
   * model. With a model it is taken from the model (and must match if given).
   */
  dim?: number;
  /** Maximum query tokens, counting `<s>`/`</s>`. Default 512 (FlagEmbedding's `max_query_length`). */
  maxQueryLength?: number;
  /** Maximum document tokens, counting `<s>`/`</s>`. Default 8192 (FlagEmbedding's `max_passage_length`). */
  maxPassageLength?: number;
  /** Texts per encoder batch in `add`. Default: the engine's (256). */
  batchSize?: number;
  /**
   * Keep each document's ColBERT vectors, so that `search(q, { rerank })` scores candidates without
   * encoding them: `'fp16'` (2 bytes a value) or `'int8'` (1 byte a value and a scale per row), in a
   * file read on demand (a temporary file until `save`, then beside the index file), not in RAM.
   * Default `false` (the rerank stage encodes the candidates' texts). `add` then also returns the
   * ColBERT output of the encoder (its cost is ~1% of dense); `addEncoded` keeps a document's
   * `colbert` rows when given. A loaded index keeps its saved setting unless overridden.
   */
  multiVectors?: MultiVectorStorage;
  /** Rows to reserve up front (avoids regrowing the dense matrix while adding a known number of documents). */
  initialCapacity?: number;
  /** Fraction of tombstoned rows that triggers compaction after a delete. Default 0.25; 1 never compacts automatically. */
  compactionThreshold?: number;
  /** onnxruntime intra-op threads for the dense scan of large indexes. Default: onnxruntime's choice. */
  denseThreads?: number;
  /**
   * Dense scan implementation: `'auto'` (default: JS below ~2M matrix elements, onnxruntime MatMul
   * above), or force `'js'` / `'onnxruntime'`.
   */
  denseBackend?: 'auto' | 'js' | 'onnxruntime';
}

export interface MemoryHybridIndexLoadOptions extends FileIoOptions {
  /** Options for `BgeM3Model.load` when `model` is a source string. */
  loadOptions?: BgeM3LoadOptions;
  /** For an index loaded without a model: the dense width it must have. */
  dim?: number;
  /** Overrides of the saved settings and the runtime options. */
  index?: Omit<MemoryHybridIndexOptions, 'model' | 'loadOptions' | 'dim'>;
}


/** Internal per-candidate record during fusion. */

export class MemoryHybridIndex implements HybridIndex, MultiVectorSource {
  readonly maxQueryLength: number;
  /** How documents' ColBERT vectors are kept (see {@link MemoryHybridIndexOptions.multiVectors}). */
  readonly multiVectors: MultiVectorStorage;
  readonly maxPassageLength: number;
  private readonly handle: ModelHandle | undefined;
  private readonly batchSize: number | undefined;
  private readonly compactionThreshold: number;
  private readonly denseThreads: number | undefined;
  private readonly denseBackend: 'js' | 'onnxruntime' | undefined;
  private readonly initialCapacity: number;
  private dimension: number | undefined;
  /** The fingerprint of the model a loaded index was saved with (kept when re-saved). */
  private savedFingerprint: ModelFingerprint | null = null;
  private state: State;
  /** id -> row of the live document with that id (writers only; searches never read it). */
  private idToRow = new Map<string, number>();
  private readonly rerankStage: RerankStage;
  /** Where rows added in this process keep their multi-vectors (created on first use). */
  private spill: MultiVectorFile | undefined;
  /** Every multi-vector file this index reads (closed by `close`). */
  private readonly files = new Set<MultiVectorFile>();

  /**
   * `new MemoryHybridIndex({ model })` with a loaded `BgeM3Model` or a source for `BgeM3Model.load`
   * (default `'BAAI/bge-m3'`, loaded on first use); or `new MemoryHybridIndex({ dim })` for an index
   * fed only precomputed encodings.
   */
  constructor(options: MemoryHybridIndexOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new BgeM3Error('INVALID_ARGUMENT', `MemoryHybridIndex: pass an options object such as { model }; got ${describe(options)}.`);
    }
    if (options.dim !== undefined) checkInteger(options.dim, 'dim', 1);
    this.dimension = options.dim;
    const wantsModel = options.model !== null && (options.model !== undefined || options.dim === undefined);
    this.handle = wantsModel ? new ModelHandle({ model: options.model ?? undefined, loadOptions: options.loadOptions }, 'MemoryHybridIndex') : undefined;
    this.maxQueryLength = checkInteger(options.maxQueryLength ?? DEFAULT_QUERY_LENGTH, 'maxQueryLength', 2);
    this.maxPassageLength = checkInteger(options.maxPassageLength ?? DEFAULT_PASSAGE_LENGTH, 'maxPassageLength', 2);
    this.batchSize = options.batchSize === undefined ? undefined : checkInteger(options.batchSize, 'batchSize', 1);
    this.multiVectors = checkMultiVectorsOption(options.multiVectors);
    this.rerankStage = new RerankStage({ maxQueryLength: this.maxQueryLength, maxPassageLength: this.maxPassageLength, batchSize: this.batchSize, source: this });
    this.initialCapacity = checkInteger(options.initialCapacity ?? 0, 'initialCapacity', 0);
    const threshold = options.compactionThreshold ?? 0.25;
    if (typeof threshold !== 'number' || !(threshold > 0 && threshold <= 1)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `compactionThreshold must be a fraction in (0, 1]; got ${describe(threshold)}.`);
    }
    this.compactionThreshold = threshold;
    this.denseThreads = options.denseThreads === undefined ? undefined : checkInteger(options.denseThreads, 'denseThreads', 1);
    const backend = options.denseBackend ?? 'auto';
    if (backend !== 'auto' && backend !== 'js' && backend !== 'onnxruntime') {
      throw new BgeM3Error('INVALID_ARGUMENT', `denseBackend must be 'auto', 'js' or 'onnxruntime'; got ${describe(backend)}.`);
    }
    this.denseBackend = backend === 'auto' ? undefined : backend;
    this.state = emptyState();
  }

  /** Number of documents (tombstoned ones excluded). */
  get size(): number {
    return this.state.count - this.state.deletedCount;
  }

  /** Width of the dense vectors, once known (from `dim`, the model, or the first document). */
  /** Number of documents, as the `HybridIndex` contract asks (the same as `size`). */
  async count(): Promise<number> {
    return this.size;
  }

  get dim(): number | undefined {
    return this.dimension;
  }

  /** The model (loaded now if it was given as a source string). Throws for a model-less index. */
  async getModel(): Promise<BgeM3Model> {
    return this.requireModel('getModel');
  }

  /** Whether a document with this id is indexed. */
  has(id: string): boolean {
    return this.idToRow.has(id);
  }

  /** The stored document with this id (a copy), or undefined. */
  get(id: string): HybridStoredDocument | undefined {
    const row = this.idToRow.get(id);
    if (row === undefined) return undefined;
    const doc = this.state.docs[row]!;
    return { id: doc.id, text: doc.text, metadata: structuredClone(doc.metadata) };
  }

  /**
   * Encodes the documents' dense and sparse outputs with the model (batched; `onProgress` reports
   * texts encoded) and adds them all at once when encoding is done (a failure or an abort adds
   * nothing). A document whose id is already indexed replaces it. Returns the ids in input order.
   */
  async add(docs: HybridDocumentInput[], options: HybridAddOptions = {}): Promise<string[]> {
    const prepared = prepareDocuments(docs, 'add');
    const model = await this.requireModel('add');
    if (prepared.length === 0) return [];
    const rows = await encodeDocuments(model, prepared, { ...options, maxLength: this.maxPassageLength, batchSize: options.batchSize ?? this.batchSize, colbert: this.multiVectors !== false });
    this.commit(rows, model.dim);
    return prepared.map((d) => d.id);
  }

  /**
   * Adds documents whose dense and sparse encodings were computed elsewhere (FlagEmbedding, a
   * cache, or synthetic data in benchmarks): no model is needed. Same semantics as `add`.
   */
  addEncoded(docs: HybridEncodedDocument[]): string[] {
    const prepared = prepareDocuments(docs, 'addEncoded');
    const dim = this.dimension ?? (docs[0] ? docs[0].dense?.length : undefined);
    const rows = encodedRows(docs, prepared, dim, this.multiVectors !== false);
    if (rows.length > 0) this.commit(rows, dim!);
    return prepared.map((d) => d.id);
  }

  /** Removes documents by id (tombstones; compacts past `compactionThreshold`). Returns how many were removed. */
  async delete(ids: string[]): Promise<number> {
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) {
      throw new BgeM3Error('INVALID_ARGUMENT', `delete expects an array of id strings; got ${describe(ids)}.`);
    }
    const rows = [];
    for (const id of new Set(ids)) {
      const row = this.idToRow.get(id);
      if (row !== undefined) rows.push(row);
    }
    if (rows.length === 0) return 0;
    const s = this.state;
    const deleted = copyTombstones(s.deleted, s.count);
    for (const row of rows) deleted[row] = 1;
    for (const id of ids) this.idToRow.delete(id);
    this.state = { ...s, deleted, deletedCount: s.deletedCount + rows.length };
    this.maybeCompact();
    return rows.length;
  }

  /**
   * Copies the live rows into new, exactly sized arrays (dropping tombstones and spare capacity).
   * Runs automatically after deletes; call it after bulk loading to return the growth headroom.
   */
  compact(): void {
    const s = this.state;
    const dim = this.dimension;
    const newRow = new Int32Array(s.count);
    let live = 0;
    for (let r = 0; r < s.count; r++) newRow[r] = isDeleted(s, r) ? -1 : live++;
    const dense = new Float32Array(live * (dim ?? 0));
    const docs: StoredDocument[] = new Array(live);
    const multiVectors: (MultiVectorRef | undefined)[] = new Array(live);
    this.idToRow = new Map();
    if (dim) {
      for (let r = 0; r < s.count; ) {
        if (newRow[r]! < 0) {
          r++;
          continue;
        }
        let end = r + 1;
        while (end < s.count && newRow[end]! >= 0) end++;
        dense.set(s.dense.subarray(r * dim, end * dim), newRow[r]! * dim);
        r = end;
      }
    }
    for (let r = 0; r < s.count; r++) {
      const to = newRow[r]!;
      if (to < 0) continue;
      docs[to] = s.docs[r]!;
      multiVectors[to] = s.multiVectors[r];
      this.idToRow.set(s.docs[r]!.id, to);
    }
    this.state = {
      count: live,
      dense,
      docs,
      multiVectors,
      deleted: new Uint8Array(0),
      deletedCount: 0,
      postings: s.postings.compacted(s.count, newRow),
      maxRowNorm: s.maxRowNorm,
    };
  }

  /**
   * Hybrid search: the query is encoded (dense + sparse, `maxQueryLength` tokens), each leg
   * contributes its best `candidates` documents (after `filter`), and every candidate is rescored
   * exactly and fused (see {@link HybridSearchOptions}); `rerank` adds the M3 reranker on the fused
   * top. Results are best first; ties keep insertion order.
   */
  async search(query: string, options: HybridSearchOptions = {}): Promise<HybridSearchResult[]> {
    const opts = resolveSearchOptions(options);
    const model = await this.requireModel('search');
    // With rerank, or stored multi-vectors (a reranker may follow), the query's ColBERT rows come out
    // of the same (one) query encode.
    const q = await encodeQuery(model, query, this.maxQueryLength, options.signal, opts.rerank !== undefined || this.multiVectors !== false);
    const fused = await this.searchVectors(q.dense, q.sparse, opts, options.signal);
    if (!opts.rerank) return fused.slice(0, opts.k);
    return this.rerankStage.rerank(model, query, fused, opts, options.signal, q.m3);
  }

  /**
   * Search with a precomputed query encoding (no model needed). Same options as `search`, except
   * `rerank`, which needs the query text.
   */
  async searchEncoded(query: HybridEncodedQuery, options: HybridSearchOptions = {}): Promise<HybridSearchResult[]> {
    const opts = resolveSearchOptions(options);
    const q = checkEncodedQuery(query, this.dimension, opts);
    const fused = await this.searchVectors(q.dense, q.sparse, opts, options.signal);
    return fused.slice(0, opts.k);
  }


  /**
   * Dense, sparse and ColBERT scores of stored documents against a query's three encodings (see
   * {@link MultiVectorSource}), reading only these documents' multi-vectors from disk; `undefined`
   * for ids that are not indexed or were added without multi-vectors. Exact: the dense and sparse
   * scores equal `search`'s, the ColBERT score is MaxSim over the stored (fp16 or int8) rows.
   */
  async scoreStored(query: M3QueryEncoding, ids: readonly string[], signal?: AbortSignal): Promise<(StoredPairScores | undefined)[]> {
    const s = this.state;
    const dim = this.dimension;
    const rows = ids.map((id) => {
      const row = typeof id === 'string' ? this.idToRow.get(id) : undefined;
      return row !== undefined && row < s.count && s.multiVectors[row] ? row : undefined;
    });
    if (dim === undefined || rows.every((r) => r === undefined)) return rows.map(() => undefined);
    const q = checkM3Query(query, dim);
    const sparse = new Float64Array(s.count);
    s.postings.accumulate(q.sparse, s.count, sparse);
    return Promise.all(
      rows.map(async (row) => {
        if (row === undefined) return undefined;
        const ref = s.multiVectors[row]!;
        const doc = `document ${JSON.stringify(s.docs[row]!.id.slice(0, 80))}`;
        const blob = await ref.file.readBlob(ref, doc);
        signal?.throwIfAborted();
        return { dense: dot(q.dense, s.dense.subarray(row * dim, row * dim + dim)), sparse: sparse[row]!, colbert: await storedColbertScore(q.colbert, blob, `${ref.file.path}, ${doc}`, { threads: this.denseThreads }) };
      }),
    );
  }

  /**
   * Closes the files that hold multi-vectors (the temporary one of unsaved rows is deleted). Call it
   * when done with an index that stores multi-vectors; searches and reranks afterwards fail.
   */
  async close(): Promise<void> {
    for (const file of this.files) file.close();
    this.files.clear();
    this.spill = undefined;
  }

  /**
   * Writes the index to `dir/hybrid-index.bgem3` (created if needed): one versioned file with a
   * SHA-256 checksum, written to a temporary file and renamed into place, so an interrupted save
   * leaves the previous save intact. Records the model's dim and vocabulary for `load` to check.
   */
  async save(dir: string, options: FileIoOptions = {}): Promise<void> {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw new BgeM3Error('INVALID_ARGUMENT', `save: expected a directory path; got ${describe(dir)}.`);
    }
    const fingerprint = this.handle ? await fingerprintModel(await this.handle.get()) : this.savedFingerprint;
    await mkdir(dir, { recursive: true });
    await saveState(join(dir, HYBRID_INDEX_FILE), this.state, {
      dim: this.dimension ?? fingerprint?.dim ?? 0,
      model: fingerprint,
      settings: { maxQueryLength: this.maxQueryLength, maxPassageLength: this.maxPassageLength, multiVectors: this.multiVectors },
    }, options);
  }

  /**
   * Loads an index written by `save`. The file is verified (format version, size, SHA-256) before
   * use; a corrupt or truncated file is refused with `CORRUPT_FILE`. With a model, the saved dim and
   * vocabulary must match it (`INCOMPATIBLE_INDEX` otherwise). Without a model (`undefined`), only
   * `searchEncoded`/`addEncoded` work.
   */
  static async load(dir: string, model?: BgeM3ModelOption, options: MemoryHybridIndexLoadOptions = {}): Promise<MemoryHybridIndex> {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw new BgeM3Error('INVALID_ARGUMENT', `MemoryHybridIndex.load: expected a directory path; got ${describe(dir)}.`);
    }
    const handle = model === undefined ? undefined : new ModelHandle({ model, loadOptions: options.loadOptions }, 'MemoryHybridIndex.load');
    const current = handle ? await fingerprintModel(await handle.get()) : undefined;
    const loaded = await loadState(join(dir, HYBRID_INDEX_FILE), current, options.dim, options);
    const index = new MemoryHybridIndex({
      model: model ?? null,
      loadOptions: options.loadOptions,
      ...loaded.settings,
      ...options.index,
    });
    // An empty index saved before any document was added may not know its width yet.
    // An empty save does not fix a width: keep the model's (or the requested) one.
    index.dimension = loaded.state.count > 0 ? loaded.dim : (current?.dim ?? options.dim ?? (loaded.dim > 0 ? loaded.dim : index.dimension));
    index.savedFingerprint = loaded.model;
    loaded.state.docs.forEach((d, row) => index.idToRow.set(d.id, row));
    index.state = loaded.state;
    const file = loaded.state.multiVectors.find((r) => r !== undefined)?.file;
    if (file) index.files.add(file);
    return index;
  }

  /** Approximate bytes held: dense matrix, postings, document texts and metadata. */
  memoryUsage(): { dense: number; sparse: number; docs: number; total: number } {
    const s = this.state;
    const dense = s.dense.byteLength;
    const sparse = s.postings.byteSize();
    let docs = 0;
    for (let r = 0; r < s.count; r++) docs += 64 + 2 * (s.docs[r]!.id.length + s.docs[r]!.text.length);
    return { dense, sparse, docs, total: dense + sparse + docs };
  }

  // --- internals -------------------------------------------------------------------------------

  private async requireModel(operation: string): Promise<BgeM3Model> {
    if (!this.handle) {
      throw new BgeM3Error(
        'INVALID_ARGUMENT',
        `MemoryHybridIndex.${operation} needs a model to encode text, but this index has none (it was created with { dim } or loaded without a model). Pass { model } (or a model to MemoryHybridIndex.load), or use addEncoded/searchEncoded with precomputed encodings.`,
      );
    }
    const model = await this.handle.get();
    if (this.dimension !== undefined && model.dim !== this.dimension) {
      throw new BgeM3Error('INCOMPATIBLE_INDEX', `MemoryHybridIndex.${operation}: the index holds ${this.dimension}-dimensional vectors but the model produces ${model.dim}; use the model the index was built with.`);
    }
    return model;
  }

  /** Adds encoded rows in one synchronous step (see the module comment). */
  private commit(rows: EncodedRow[], dim: number): void {
    if (this.dimension === undefined) this.dimension = dim;
    if (dim !== this.dimension) {
      throw new BgeM3Error('INVALID_ARGUMENT', `The documents' dense vectors have ${dim} values but this index holds ${this.dimension}-dimensional vectors.`);
    }
    const s = this.state;
    const replaced = rows.map((r) => this.idToRow.get(r.id)).filter((row): row is number => row !== undefined);
    let deleted = s.deleted;
    if (replaced.length > 0) {
      deleted = copyTombstones(s.deleted, s.count);
      for (const row of replaced) deleted[row] = 1;
    }
    const count = s.count + rows.length;
    let dense = s.dense;
    if (count * dim > dense.length) {
      const capacity = Math.max(count, Math.floor((dense.length / dim) * 1.5), this.initialCapacity, 64);
      dense = new Float32Array(capacity * dim);
      dense.set(s.dense.subarray(0, s.count * dim));
    }
    // Multi-vectors are appended to the spill file first (synchronously): if that fails, nothing is published.
    const refs = this.multiVectors === false ? [] : rows.map((r) => (r.colbert ? this.spillFile().append(encodeMultiVectors(r.colbert, dim, this.multiVectors as MultiVectorFormat)) : undefined));
    let maxRowNorm = s.maxRowNorm;
    rows.forEach((r, i) => {
      const row = s.count + i;
      dense.set(r.dense, row * dim);
      // Assigned by index, not pushed: entries at or above `count` belong to no published state.
      s.docs[row] = { id: r.id, text: r.text, metadata: r.metadata };
      s.multiVectors[row] = refs[i];
      s.postings.append(row, r.sparse);
      if (r.norm > maxRowNorm) maxRowNorm = r.norm;
    });
    this.state = { count, dense, docs: s.docs, multiVectors: s.multiVectors, deleted, deletedCount: s.deletedCount + replaced.length, postings: s.postings, maxRowNorm };
    // Ids point at the new rows only once the state holding them is published: if an append above
    // threw, no id refers to a row beyond `count`.
    rows.forEach((r, i) => this.idToRow.set(r.id, s.count + i));
    this.maybeCompact();
  }

  private spillFile(): MultiVectorFile {
    if (!this.spill) {
      this.spill = MultiVectorFile.spill();
      this.files.add(this.spill);
    }
    return this.spill;
  }

  private maybeCompact(): void {
    const s = this.state;
    if (s.deletedCount > 0 && s.deletedCount >= this.compactionThreshold * s.count && this.compactionThreshold < 1) this.compact();
  }

  /** The two legs, exact rescoring and fusion, on one snapshot. Returns every fused candidate, best first. */
  private async searchVectors(qDense: Float32Array, qSparse: SparseVector, opts: ResolvedSearchOptions, signal?: AbortSignal): Promise<HybridSearchResult[]> {
    const s = this.state;
    const n = s.count;
    const dim = this.dimension;
    if (n === 0 || dim === undefined) return [];
    if (qDense.length !== dim) {
      throw new BgeM3Error('INVALID_ARGUMENT', `The query's dense vector has ${qDense.length} values but the index holds ${dim}-dimensional vectors.`);
    }
    const allowed = allowedRows(s, opts.filter);
    const { weights, candidates } = opts;

    // Sparse leg (synchronous, on this snapshot): exact lexical scores of every row.
    const sparseScores = new Float64Array(n);
    s.postings.accumulate(qSparse, n, sparseScores);
    let sparseList: { score: number; row: number }[] = [];
    if (weights.sparse > 0) {
      const heap = new TopK(candidates);
      for (let r = 0; r < n; r++) {
        const v = sparseScores[r]!;
        // Only documents sharing a token with the query are sparse candidates (weights are > 0).
        if (v > 0 && !heap.rejects(v) && allowed(r)) heap.push(v, r);
      }
      sparseList = heap.sorted();
    }

    // Dense leg: full scan (approximate summation order), then exact `dot` on a band that is
    // guaranteed to contain the exact top `candidates`.
    let denseList: { score: number; row: number }[] = [];
    const exactDense = new Map<number, number>();
    const denseOf = (row: number) => {
      let v = exactDense.get(row);
      if (v === undefined) {
        v = dot(qDense, s.dense.subarray(row * dim, row * dim + dim));
        exactDense.set(row, v);
      }
      return v;
    };
    if (weights.dense > 0) {
      const scan = await scanDense(s.dense, n, dim, qDense, { maxRowNorm: s.maxRowNorm, threads: this.denseThreads, backend: this.denseBackend });
      signal?.throwIfAborted();
      const approx = scan.scores;
      const heap = new TopK(candidates);
      for (let r = 0; r < n; r++) {
        const v = approx[r]!;
        if (!heap.rejects(v) && allowed(r)) heap.push(v, r);
      }
      const floor = heap.threshold() - 2 * scan.errorBound;
      const band: { score: number; row: number }[] = [];
      for (let r = 0; r < n; r++) if (approx[r]! >= floor && allowed(r)) band.push({ score: denseOf(r), row: r });
      denseList = band.sort(compareEntries).slice(0, candidates);
    }

    // Union and exact fusion.
    const byRow = new Map<number, FusionCandidate>();
    const entry = (row: number): FusionCandidate => {
      let c = byRow.get(row);
      if (!c) {
        c = { row, dense: denseOf(row), sparse: sparseScores[row]! };
        byRow.set(row, c);
      }
      return c;
    };
    denseList.forEach((e, i) => (entry(e.row).denseRank = i + 1));
    sparseList.forEach((e, i) => (entry(e.row).sparseRank = i + 1));
    const fused = fuseCandidates([...byRow.values()], opts);
    const keep = Math.max(opts.k, opts.rerank?.topN ?? 0);
    return fused.slice(0, keep).map((c) => {
      const doc = s.docs[c.row]!;
      return { id: doc.id, text: doc.text, metadata: structuredClone(doc.metadata), score: c.score, dense: c.dense, sparse: c.sparse };
    });
  }
}

/** A row predicate for one search: not tombstoned and passing the filter (each row's filter result cached). */
function allowedRows(s: State, filter: ResolvedSearchOptions['filter']): (row: number) => boolean {
  const deleted = s.deleted;
  if (!filter) return (row) => !(row < deleted.length && deleted[row] === 1);
  const memo = new Int8Array(s.count); // 0 unknown, 1 allowed, -1 not
  return (row) => {
    const m = memo[row]!;
    if (m !== 0) return m > 0;
    const ok = !(row < deleted.length && deleted[row] === 1) && filter(s.docs[row]!) === true;
    memo[row] = ok ? 1 : -1;
    return ok;
  };
}
