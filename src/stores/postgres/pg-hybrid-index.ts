/**
 * `PgHybridIndex`: BGE-M3 hybrid retrieval in PostgreSQL + pgvector, on a server (`pg`) or in
 * process (PGlite), with the same search options, fusion, rerank stage and results as
 * `MemoryHybridIndex`.
 *
 * A search runs in one read-only REPEATABLE READ transaction (one snapshot, so a concurrent add or
 * delete is seen wholly or not at all) and takes candidates from each leg:
 * - exact mode (`ann: false`): the `candidates` best rows by the approximate in-database score
 *   (halfvec or float32 accumulation), widened to every row whose approximate score is within a
 *   proven error bound of the last one, then rescored exactly here in float64 from the stored
 *   float32 vectors and full sparse vectors. This is the memory index's method, so both backends
 *   return the same candidates and, after the shared fusion, the same results;
 * - ANN mode (default): HNSW (`halfvec_ip_ops` on the dense column, `sparsevec_ip_ops` on the top
 *   1,000 weights of each document, or an exact sparse scan), with `hnsw.ef_search` and pgvector
 *   0.8's iterative index scans so filtered queries still fill their candidates; the candidates
 *   are then rescored exactly as above.
 * The union of both legs is fused by `fuseCandidates` (fusion.ts) and optionally re-ranked by the
 * M3 reranker (rerank-stage.ts), exactly as in memory.
 *
 * With `multiVectors: 'fp16' | 'int8'` each row also keeps its document's ColBERT rows in the
 * nullable `colbert bytea` column (multi-vectors.ts's blob). Searches never read that column; the
 * rerank stage fetches it for its candidates only (`scoreStored`), so a reranked search encodes the
 * query once and no passage whose vectors are stored.
 */
import { BgeM3Error } from '../../errors.js';
import type { BgeM3Model } from '../../model/bge-m3-model.js';
import { dot } from '../../scores.js';
import { checkInteger, checkPositiveInteger, describeValue as describe } from '../../shared/checks.js';
import { DEFAULT_PASSAGE_LENGTH, DEFAULT_QUERY_LENGTH } from '../../shared/defaults.js';
import { ModelHandle, type BgeM3ModelFields, type BgeM3ModelOption } from '../../shared/model-option.js';
import { MAX_ENCODED_TOKEN_ID } from '../document-checks.js';
import { encodedRows, encodeDocuments, prepareDocuments, type EncodedRow } from '../document-rows.js';
import { storedColbertScore } from '../stored-maxsim.js';
import { checkMultiVectorsOption, encodeMultiVectors, multiVectorBlobBytes, type MultiVectorStorage } from '../multi-vectors.js';
import { filterToSql, type MetadataFilter } from '../filter.js';
import { fuseCandidates, requireDeclarativeFilter, resolveSearchOptions, type FusionCandidate, type ResolvedSearchOptions } from '../fusion.js';
import { checkCompatible, fingerprintModel, parseFingerprint } from '../model-fingerprint.js';
import { RerankStage } from '../rerank-stage.js';
import { checkEncodedQuery, checkM3Query, encodeQuery } from '../query-encoding.js';
import type { SparseVector } from '../sparse-vector.js';
import { compareEntries } from '../top-k.js';
import type {
  HybridAddOptions,
  HybridDocumentInput,
  HybridEncodedDocument,
  HybridEncodedQuery,
  HybridIndex,
  HybridSearchOptions,
  HybridSearchResult,
  M3QueryEncoding,
  MultiVectorSource,
  StoredPairScores,
} from '../types.js';
import {
  hnswStatements,
  migrate,
  multiVectorsMismatch,
  readSettings,
  recordMultiVectors,
  SCHEMA_VERSION,
  tableNames,
  type DenseColumnType,
  type StoredSettings,
  type TableNames,
} from './schema.js';
import { connectServer, openPGlite, wrapClient, type Queryable, type SqlClient } from './sql-client.js';
import { denseBytes, denseLiteral, fromDenseBytes, sparseLiteral, topWeights } from './vector-sql.js';

/** The table an index uses unless `table` says otherwise. */
export const DEFAULT_PG_TABLE = 'bge_m3_documents';

export interface PgAnnOptions {
  /** HNSW graph degree. Default 16 (pgvector's). */
  m?: number;
  /** HNSW build beam width. Default 64 (pgvector's). */
  efConstruction?: number;
  /** HNSW search beam width; raised to `candidates` when lower. Default 100. */
  efSearch?: number;
}

export interface PgHybridIndexOptions extends Omit<BgeM3ModelFields, 'model'> {
  /** A PostgreSQL server, e.g. `postgres://user:pass@127.0.0.1:5432/db` (a `pg.Pool` is opened and closed by the index). */
  connectionString?: string;
  /** A `pg.Pool`, `pg.Client` or `PGlite` you own (never closed by the index). */
  client?: unknown;
  /** Neither of the above: PGlite in process, persisted in this folder (in memory when absent). */
  dataDir?: string;
  /** Table name, optionally schema-qualified (`schema.table`). Default `'bge_m3_documents'`. */
  table?: string;
  /**
   * A loaded `BgeM3Model`, or a source for `BgeM3Model.load`. Default `'BAAI/bge-m3'`, unless `dim`
   * is given; `null`: precomputed encodings only (`addEncoded` / `searchEncoded`).
   */
  model?: BgeM3ModelOption | null;
  /** Dense width for an index without a model (with a model, the model's, and it must match). */
  dim?: number;
  /**
   * HNSW indexes and approximate candidates (default `true`), or `false`: exact scans, which return
   * exactly what `MemoryHybridIndex` returns for the same documents and options.
   */
  ann?: boolean | PgAnnOptions;
  /** Sparse candidates in ANN mode: `'hnsw'` (default; the top 1,000 weights of each document) or `'exact'` (a scan). */
  sparseSearch?: 'hnsw' | 'exact';
  /** Column type of the dense candidates: `'halfvec'` (default, 2 bytes a value) or `'vector'` (float32). */
  denseType?: DenseColumnType;
  /** Run `CREATE EXTENSION IF NOT EXISTS vector` when the extension is missing. Default true. */
  createExtension?: boolean;
  /** Maximum query tokens. Default 512. */
  maxQueryLength?: number;
  /** Maximum document tokens. Default 8192. */
  maxPassageLength?: number;
  /** Texts per encoder batch in `add`. Default: the engine's (256). */
  batchSize?: number;
  /** Rows per INSERT statement in `add`. Default 200 (fewer when stored multi-vectors make a statement large). */
  insertBatchSize?: number;
  /**
   * Keep each document's ColBERT vectors in the table (a `colbert bytea` column, read only for the
   * rerank candidates), so that `search(q, { rerank })` scores candidates without encoding them:
   * `'fp16'` (2 bytes a value) or `'int8'` (1 byte a value and a scale per row). Default: the
   * table's recorded setting, `false` for a new table (the rerank stage encodes the candidates'
   * texts). `add` then also takes the encoder's ColBERT output (~1% of its cost); `addEncoded`
   * keeps a document's `colbert` rows when given. A table keeps one format: opening it with the
   * other one is an `INVALID_ARGUMENT` error; opening a table without stored vectors with a format
   * records it (older rows keep none and are encoded when reranked); `false` stores no vectors for
   * this connection's adds (vectors already stored are still used).
   */
  multiVectors?: MultiVectorStorage;
}

interface Band {
  /** `seq` of every row whose exact score can be among the leg's candidates. */
  seqs: number[];
}

interface RowVectors {
  dense: Float32Array;
  /** The stored sparse vector as `sparsevec_send` bytes. */
  sparse: Uint8Array;
}

const DEFAULT_ANN: Required<PgAnnOptions> = { m: 16, efConstruction: 64, efSearch: 100 };
/** Dense-only ANN searches read the kept candidates and this many more first (see searchVectors). */
const PREFIX_MARGIN = 25;
/** An INSERT statement of `add` carries at most about this many bytes of multi-vector blobs (and at least one row). */
const STATEMENT_BLOB_BYTES = 32 << 20;

export class PgHybridIndex implements HybridIndex, MultiVectorSource {
  /** How this connection's adds keep documents' ColBERT vectors (see {@link PgHybridIndexOptions.multiVectors}). */
  readonly multiVectors: MultiVectorStorage;
  private readonly rerankStage: RerankStage;
  private maxNorm: number;
  /** Whether the table has the `colbert` column (schema version 2; a standby may still serve version 1). */
  private readonly colbertColumn: boolean;

  private constructor(
    private readonly db: SqlClient,
    private readonly names: TableNames,
    private readonly handle: ModelHandle | undefined,
    private readonly settings: StoredSettings,
    private readonly ann: Required<PgAnnOptions> | undefined,
    private readonly sparseSearch: 'hnsw' | 'exact',
    /** Whether the connection is a read-only standby. */
    readonly readOnly: boolean,
    private readonly options: { maxQueryLength: number; maxPassageLength: number; batchSize?: number; insertBatchSize: number },
    multiVectors: MultiVectorStorage,
  ) {
    this.maxNorm = settings.maxNorm;
    this.multiVectors = multiVectors;
    this.colbertColumn = settings.schemaVersion >= 2;
    this.rerankStage = new RerankStage({ maxQueryLength: options.maxQueryLength, maxPassageLength: options.maxPassageLength, batchSize: options.batchSize, source: this });
  }

  /**
   * Opens (and on first use creates) the index's tables. With a model, checks that the stored
   * index was built by the same model (`INCOMPATIBLE_INDEX` otherwise). On a read-only standby the
   * index must exist; searches work and writes fail with a clear error.
   */
  static async open(options: PgHybridIndexOptions = {}): Promise<PgHybridIndex> {
    if (options === null || typeof options !== 'object') {
      throw new BgeM3Error('INVALID_ARGUMENT', `PgHybridIndex.open expects an options object; got ${describe(options)}.`);
    }
    const names = tableNames(options.table ?? DEFAULT_PG_TABLE);
    const ann = resolveAnn(options.ann);
    const sparseSearch = options.sparseSearch ?? 'hnsw';
    if (sparseSearch !== 'hnsw' && sparseSearch !== 'exact') {
      throw new BgeM3Error('INVALID_ARGUMENT', `sparseSearch must be 'hnsw' or 'exact'; got ${describe(sparseSearch)}.`);
    }
    const denseType = options.denseType ?? 'halfvec';
    if (denseType !== 'halfvec' && denseType !== 'vector') {
      throw new BgeM3Error('INVALID_ARGUMENT', `denseType must be 'halfvec' or 'vector'; got ${describe(denseType)}.`);
    }
    const runtime = {
      maxQueryLength: checkInteger(options.maxQueryLength ?? DEFAULT_QUERY_LENGTH, 'maxQueryLength', 2),
      maxPassageLength: checkInteger(options.maxPassageLength ?? DEFAULT_PASSAGE_LENGTH, 'maxPassageLength', 2),
      batchSize: options.batchSize === undefined ? undefined : checkInteger(options.batchSize, 'batchSize', 1),
      insertBatchSize: checkInteger(options.insertBatchSize ?? 200, 'insertBatchSize', 1),
    };
    if (options.dim !== undefined) checkPositiveInteger(options.dim, 'dim');
    // undefined: the table's recorded setting.
    const requestedMultiVectors = options.multiVectors === undefined ? undefined : checkMultiVectorsOption(options.multiVectors);
    const handle = options.model === null || (options.model === undefined && options.dim !== undefined) ? undefined : new ModelHandle({ ...options, model: options.model ?? undefined }, 'PgHybridIndex');
    const model = handle ? await handle.get() : undefined;
    const fingerprint = model ? await fingerprintModel(model) : undefined;
    if (model && options.dim !== undefined && options.dim !== model.dim) {
      throw new BgeM3Error('INVALID_ARGUMENT', `dim ${options.dim} disagrees with the model's ${model.dim}; leave dim out when a model is given.`);
    }

    const sources = [options.connectionString !== undefined, options.client !== undefined, options.dataDir !== undefined].filter(Boolean).length;
    if (sources > 1) {
      throw new BgeM3Error('INVALID_ARGUMENT', 'PgHybridIndex.open: give one of connectionString, client or dataDir, not several.');
    }
    const db =
      options.client !== undefined
        ? wrapClient(options.client)
        : options.connectionString !== undefined
          ? await connectServer(checkConnectionString(options.connectionString))
          : await openPGlite(options.dataDir);
    try {
      const [{ ro }] = (await run(db, names, 'open', () => db.query<{ ro: boolean }>(`SELECT pg_is_in_recovery() AS ro`))) as [{ ro: boolean }];
      await ensureExtension(db, names, options.createExtension ?? true, ro);
      let stored = await run(db, names, 'open', () => readSettings(db, names));
      if (!stored) {
        if (ro) {
          throw new BgeM3Error('MISSING_FILE', `The index table ${names.display} does not exist on this read-only server (a standby); create it on the primary first.`);
        }
        const dim = model?.dim ?? options.dim;
        if (dim === undefined) {
          throw new BgeM3Error('INVALID_ARGUMENT', 'PgHybridIndex.open: a new index needs a model or a dim (the dense width).');
        }
        const settings = { dim, vocab: model?.tokenizer.vocabSize ?? MAX_ENCODED_TOKEN_ID, denseType, multiVectors: requestedMultiVectors ?? false };
        // migrate() reads the meta table again under its lock: another process may have created it meanwhile.
        await run(db, names, 'create', () => db.transaction((tx) => migrate(tx, names, settings, fingerprint ?? null)));
        stored = (await readSettings(db, names))!;
      } else if (stored.schemaVersion > SCHEMA_VERSION) {
        throw new BgeM3Error('INCOMPATIBLE_INDEX', `The index table ${names.display} has schema version ${stored.schemaVersion}, newer than this bge-m3-rag reads (${SCHEMA_VERSION}): upgrade bge-m3-rag.`);
      } else if (!ro && stored.schemaVersion < SCHEMA_VERSION) {
        const existing = { dim: stored.dim, vocab: stored.vocab, denseType: stored.denseType, multiVectors: stored.multiVectors };
        await run(db, names, 'migrate', () => db.transaction((tx) => migrate(tx, names, existing, null)));
        stored = (await readSettings(db, names))!;
      }
      let multiVectors = stored.multiVectors;
      if (requestedMultiVectors !== undefined && requestedMultiVectors !== stored.multiVectors) {
        if (requestedMultiVectors === false) multiVectors = false; // this connection adds without vectors; the table's setting stays
        else if (stored.multiVectors !== false) throw multiVectorsMismatch(names, stored.multiVectors, requestedMultiVectors);
        else {
          // Upgrade: record the format (a standby cannot, and cannot add rows either).
          if (!ro) await run(db, names, 'migrate', () => db.transaction((tx) => recordMultiVectors(tx, names, requestedMultiVectors)));
          multiVectors = requestedMultiVectors;
        }
      }
      const storedFingerprint = parseFingerprint(stored.fingerprint, (what) => new BgeM3Error('CORRUPT_FILE', `The index table ${names.display}: ${what}.`));
      const [counted] = await db.query<{ n: number }>(`SELECT count(*)::float8 AS n FROM ${names.table}`);
      checkCompatible({ dim: stored.dim, rows: counted?.n ?? 0, model: storedFingerprint }, fingerprint, options.dim, `The index table ${names.display}`);
      if (fingerprint && stored.dim !== fingerprint.dim) {
        throw new BgeM3Error('INCOMPATIBLE_INDEX', `The index table ${names.display} holds ${stored.dim}-dimensional vectors but the model produces ${fingerprint.dim}; use the model it was built with.`);
      }
      if (ann && !ro) await run(db, names, 'create HNSW indexes', async () => {
        for (const sql of hnswStatements(names, { denseType: stored!.denseType, hnsw: ann })) await db.query(sql);
      });
      return new PgHybridIndex(db, names, handle, stored, ann, sparseSearch, ro, runtime, multiVectors);
    } catch (e) {
      await db.close().catch(() => {});
      throw e;
    }
  }

  /** Dense width of the stored vectors. */
  get dim(): number {
    return this.settings.dim;
  }

  /** Number of documents. */
  async count(): Promise<number> {
    const [row] = await run(this.db, this.names, 'count', () => this.db.query<{ n: number }>(`SELECT count(*)::float8 AS n FROM ${this.names.table}`));
    return row!.n;
  }

  /** Closes the connection this index opened (a client you passed stays open). */
  async close(): Promise<void> {
    await this.db.close();
  }

  /**
   * Encodes and adds documents in one transaction (all or nothing; a document whose id is indexed
   * is replaced). Returns the ids in input order.
   */
  async add(docs: HybridDocumentInput[], options: HybridAddOptions = {}): Promise<string[]> {
    const prepared = prepareDocuments(docs, 'add');
    this.assertWritable('add');
    const model = await this.requireModel('add');
    if (prepared.length === 0) return [];
    const rows = await encodeDocuments(model, prepared, {
      ...options,
      maxLength: this.options.maxPassageLength,
      batchSize: options.batchSize ?? this.options.batchSize,
      colbert: this.multiVectors !== false,
    });
    await this.write(rows, options);
    return prepared.map((d) => d.id);
  }

  /**
   * Adds documents with precomputed dense and sparse encodings (no model needed), and their
   * `colbert` rows when the index stores multi-vectors. Same semantics as `add`.
   */
  async addEncoded(docs: HybridEncodedDocument[], options: Pick<HybridAddOptions, 'signal' | 'onProgress'> = {}): Promise<string[]> {
    const prepared = prepareDocuments(docs, 'addEncoded');
    this.assertWritable('addEncoded');
    const rows = encodedRows(docs, prepared, this.settings.dim, this.multiVectors !== false);
    for (const [i, r] of rows.entries()) {
      const last = r.sparse.indices[r.sparse.indices.length - 1];
      if (last !== undefined && last >= this.settings.vocab) {
        throw new BgeM3Error('INVALID_ARGUMENT', `addEncoded: docs[${i}].sparse has token id ${last}, beyond this index's vocabulary (0…${this.settings.vocab - 1}).`);
      }
      if (this.settings.denseType === 'halfvec' && Array.prototype.some.call(r.dense, (v: number) => Math.abs(v) > 65504)) {
        throw new BgeM3Error('INVALID_ARGUMENT', `addEncoded: docs[${i}].dense has a value beyond halfvec's range (±65504); open the index with denseType: 'vector' for such vectors.`);
      }
    }
    if (rows.length > 0) await this.write(rows, options);
    return prepared.map((d) => d.id);
  }

  /** Removes documents by id; unknown ids are ignored. Returns how many were removed. */
  async delete(ids: string[]): Promise<number> {
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) {
      throw new BgeM3Error('INVALID_ARGUMENT', `delete expects an array of id strings; got ${describe(ids)}.`);
    }
    this.assertWritable('delete');
    if (ids.length === 0) return 0;
    const rows = await run(this.db, this.names, 'delete', () => this.db.query<{ id: string }>(`DELETE FROM ${this.names.table} WHERE id = ANY($1::text[]) RETURNING id`, [[...new Set(ids)]]));
    return rows.length;
  }

  /** The stored document with this id, or undefined. */
  async get(id: string): Promise<{ id: string; text: string; metadata: Record<string, unknown> } | undefined> {
    const [row] = await run(this.db, this.names, 'get', () => this.db.query<{ id: string; text: string; metadata: Record<string, unknown> }>(`SELECT id, text, metadata FROM ${this.names.table} WHERE id = $1`, [id]));
    return row;
  }

  /** Hybrid search with the same options and results as `MemoryHybridIndex.search`. */
  async search(query: string, options: HybridSearchOptions = {}): Promise<HybridSearchResult[]> {
    const opts = resolveSearchOptions(options);
    const filter = declarativeFilter(opts);
    const model = await this.requireModel('search');
    // With rerank, the query's ColBERT rows come out of the same (one) query encode.
    const q = await encodeQuery(model, query, this.options.maxQueryLength, options.signal, opts.rerank !== undefined);
    const fused = await this.searchVectors(q.dense, q.sparse, opts, filter, options.signal);
    if (!opts.rerank) return fused.slice(0, opts.k);
    return this.rerankStage.rerank(model, query, fused, opts, options.signal, q.m3);
  }

  /** Search with a precomputed query encoding (no model needed); `rerank` needs `search`. */
  async searchEncoded(query: HybridEncodedQuery, options: HybridSearchOptions = {}): Promise<HybridSearchResult[]> {
    const opts = resolveSearchOptions(options);
    const q = checkEncodedQuery(query, this.settings.dim, opts);
    const fused = await this.searchVectors(q.dense, q.sparse, opts, declarativeFilter(opts), options.signal);
    return fused.slice(0, opts.k);
  }

  /**
   * Dense, sparse and ColBERT scores of stored documents against a query's three encodings (see
   * {@link MultiVectorSource}), in one read-only statement that fetches only these rows' vectors;
   * `undefined` for ids that are not indexed or were added without multi-vectors. Exact, and equal
   * to `MemoryHybridIndex.scoreStored` for the same documents: the dense and sparse scores are
   * `search`'s exact rescoring (float32 stored vector, full sparse vector), the ColBERT score is
   * MaxSim over the stored (fp16 or int8) rows. A damaged `colbert` value is a `CORRUPT_FILE` error
   * naming the table and the document.
   */
  async scoreStored(query: M3QueryEncoding, ids: readonly string[], signal?: AbortSignal): Promise<(StoredPairScores | undefined)[]> {
    if (!Array.isArray(ids)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `scoreStored expects an array of document ids; got ${describe(ids)}.`);
    }
    const wanted = [...new Set(ids.filter((id): id is string => typeof id === 'string'))];
    if (wanted.length === 0 || !this.colbertColumn) return ids.map(() => undefined);
    signal?.throwIfAborted();
    const { dim } = this.settings;
    const rows = await run(this.db, this.names, 'rerank', () =>
      this.db.query<{ id: string; dense_exact: Uint8Array; sparse: Uint8Array; colbert: Uint8Array }>(
        `SELECT id, dense_exact, sparsevec_send(sparse) AS sparse, colbert FROM ${this.names.table} WHERE id = ANY($1::text[]) AND colbert IS NOT NULL`,
        [wanted],
      ),
    );
    signal?.throwIfAborted();
    if (rows.length === 0) return ids.map(() => undefined);
    const q = checkM3Query(query, dim);
    const byId = new Map<string, StoredPairScores>();
    for (const r of rows) {
      const where = `The index table ${this.names.display}, document ${JSON.stringify(r.id.slice(0, 80))}`;
      byId.set(r.id, { dense: dot(q.dense, denseView(r.dense_exact, dim, where)), sparse: sparseDotSend(q.sparse, r.sparse, where), colbert: await storedColbertScore(q.colbert, r.colbert, where) });
    }
    return ids.map((id) => (typeof id === 'string' ? byId.get(id) : undefined));
  }


  // --- internals ---------------------------------------------------------------------------------

  private assertWritable(operation: string): void {
    if (this.readOnly) {
      throw new BgeM3Error('INVALID_ARGUMENT', `PgHybridIndex.${operation}: this connection is a read-only standby (replica) of ${this.names.display}; write through the primary.`);
    }
  }

  private async requireModel(operation: string): Promise<BgeM3Model> {
    if (!this.handle) {
      throw new BgeM3Error(
        'INVALID_ARGUMENT',
        `PgHybridIndex.${operation} needs a model to encode text, but this index has none (it was opened with { dim } or model: null). Pass { model }, or use addEncoded/searchEncoded with precomputed encodings.`,
      );
    }
    return this.handle.get();
  }

  /**
   * Upserts rows in one transaction, `insertBatchSize` rows per statement. On a server (`pg`) the
   * vectors travel in pgvector's binary formats (`halfvec_recv`, `vector_recv`, `sparsevec_recv`:
   * the same values the text forms give, without formatting and parsing ~1,000 decimal numbers a
   * row, ~3x faster to insert); PGlite takes parameters as text, so it keeps the text forms. A
   * document with at most 1,000 weights sends its sparse vector once for both columns. Stored
   * multi-vectors go as a binary `bytea` parameter (NULL without them, so a re-added document
   * without vectors drops its old ones), and cap a statement's size (`STATEMENT_BLOB_BYTES`).
   */
  private async write(rows: EncodedRow[], options: Pick<HybridAddOptions, 'signal' | 'onProgress'>): Promise<void> {
    checkStorable(rows, 'add');
    const t = this.names.table;
    const { vocab, denseType, dim } = this.settings;
    const per = this.options.insertBatchSize;
    const binary = this.db.kind === 'pg';
    const maxNorm = rows.reduce((m, r) => Math.max(m, r.norm), this.maxNorm);
    const denseParam = binary ? (denseType === 'halfvec' ? halfvecBinary : vectorBinary) : denseLiteral;
    const sparseParam = binary ? (v: SparseVector) => sparsevecBinary(v, vocab) : (v: SparseVector) => sparseLiteral(v, vocab);
    const format = this.multiVectors;
    const colbertParam = (r: EncodedRow) => {
      if (format === false || r.colbert === undefined) return null;
      const blob = encodeMultiVectors(r.colbert, dim, format);
      return Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    };
    const statement = (chunk: EncodedRow[]) => {
      const params: unknown[] = [];
      const values = chunk.map((r) => {
        const dense = Float32Array.from(r.dense);
        const top = topWeights(r.sparse);
        const b = params.length;
        params.push(r.id, r.text, JSON.stringify(r.metadata), denseParam(dense), float32Bytes(dense), r.norm, sparseParam(r.sparse), colbertParam(r));
        if (top !== r.sparse) params.push(sparseParam(top));
        const topParam = top === r.sparse ? b + 7 : b + 9;
        return `($${b + 1}, $${b + 2}, $${b + 3}::jsonb, $${b + 4}::${denseType}(${dim}), $${b + 5}::bytea, $${b + 6}, $${b + 7}::sparsevec(${vocab}), $${topParam}::sparsevec(${vocab}), $${b + 8}::bytea)`;
      });
      const sql = `INSERT INTO ${t} (id, text, metadata, dense, dense_exact, dense_norm, sparse, sparse_top, colbert) VALUES ${values.join(', ')}
             ON CONFLICT (id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata, dense = excluded.dense,
               dense_exact = excluded.dense_exact, dense_norm = excluded.dense_norm, sparse = excluded.sparse,
               sparse_top = excluded.sparse_top, colbert = excluded.colbert, seq = nextval('${this.names.seq.replaceAll('"', '')}')`;
      return { sql, params };
    };
    // Statements of `insertBatchSize` rows, fewer where their multi-vector blobs would exceed STATEMENT_BLOB_BYTES.
    const chunks: [number, number][] = [];
    for (let start = 0; start < rows.length; ) {
      let end = start;
      let bytes = 0;
      while (end < rows.length && end - start < per) {
        const r = rows[end]!;
        const size = format !== false && r.colbert ? multiVectorBlobBytes(format, dim, r.colbert.length) : 0;
        if (end > start && bytes + size > STATEMENT_BLOB_BYTES) break;
        bytes += size;
        end++;
      }
      chunks.push([start, end]);
      start = end;
    }
    await run(this.db, this.names, 'add', () =>
      this.db.transaction(async (tx) => {
        // One statement in flight while the next one is encoded (the database and this process work at once).
        let inFlight: Promise<unknown> | undefined;
        let done = 0;
        for (const [start, end] of chunks) {
          options.signal?.throwIfAborted();
          const next = statement(rows.slice(start, end));
          if (inFlight) {
            await inFlight;
            options.onProgress?.({ phase: 'add', done, total: rows.length });
          }
          inFlight = tx.query(next.sql, next.params);
          inFlight.catch(() => {}); // awaited below; never an unhandled rejection if an abort ends the loop first
          done = end;
        }
        if (inFlight) {
          await inFlight;
          options.onProgress?.({ phase: 'add', done, total: rows.length });
        }
        if (maxNorm > this.maxNorm) {
          await tx.query(`UPDATE ${this.names.meta} SET value = to_jsonb(GREATEST((value #>> '{}')::float8, $1::float8)) WHERE key = 'max_norm'`, [maxNorm]);
        }
      }),
    );
    this.maxNorm = Math.max(this.maxNorm, maxNorm);
  }

  /**
   * Both legs, exact rescoring and fusion on one snapshot; every fused candidate up to what the
   * caller keeps, best first.
   *
   * ANN mode: one statement takes each leg's candidates (a CTE each: HNSW, or the sparse scan) and,
   * for weighted fusion, the database's approximate scores of their union (halfvec / float32 inner
   * products, within the error bounds exact mode uses). Only the candidates whose fused score can
   * still reach the top `k` (or rerank `topN`) by those bounds are fetched and rescored exactly,
   * with their documents, in a second statement: the same results as rescoring every candidate,
   * without sending ~200 stored vectors per search. RRF needs each leg's exact order, so there the
   * first statement returns each leg's stored vectors instead. Exact mode widens each leg to its
   * error band first (see the class comment). Query vectors go in pgvector's binary formats on a
   * server; stored sparse vectors come back as `sparsevec_send` bytes, of which only the query's
   * tokens are read.
   */
  private async searchVectors(qDense: Float32Array, qSparse: SparseVector, opts: ResolvedSearchOptions, filter: MetadataFilter | undefined, signal?: AbortSignal): Promise<HybridSearchResult[]> {
    const { dim, vocab, denseType } = this.settings;
    if (qDense.length !== dim) {
      throw new BgeM3Error('INVALID_ARGUMENT', `The query's dense vector has ${qDense.length} values but the index holds ${dim}-dimensional vectors.`);
    }
    const { weights, candidates } = opts;
    const t = this.names.table;
    const binary = this.db.kind === 'pg';
    const qDenseParam = binary ? (denseType === 'halfvec' ? halfvecBinary(qDense) : vectorBinary(qDense)) : denseLiteral(qDense);
    const qSparseParam = binary ? sparsevecBinary(qSparse, vocab) : sparseLiteral(qSparse, vocab);
    const useDense = weights.dense > 0;
    const useSparse = weights.sparse > 0 && qSparse.indices.length > 0;
    const kept = Math.max(opts.k, opts.rerank?.topN ?? 0);
    const where = (seq: number) => `${this.names.display} row ${seq}`;
    const exactDense = (seq: number, bytes: Uint8Array) => dot(qDense, denseView(bytes, dim, where(seq)));
    const exactSparse = (seq: number, bytes: Uint8Array) => sparseDotSend(qSparse, bytes, where(seq));
    type Stored = { seq: number; id: string; text: string; metadata: Record<string, unknown>; dense_exact: Uint8Array; sparse: Uint8Array };
    const storedColumns = `seq::float8 AS seq, id, text, metadata, dense_exact, sparsevec_send(sparse) AS sparse`;
    const result = (c: FusionCandidate & { score: number }, d: Stored): HybridSearchResult => ({ id: d.id, text: d.text, metadata: d.metadata, score: c.score, dense: c.dense, sparse: c.sparse });
    return run(this.db, this.names, 'search', () =>
      this.db.transaction(
        async (tx) => {
          if (this.ann) {
            // Dense only, weighted, no filter: the HNSW scan returns its candidates in order of the
            // database score (iterative scans off), so only a prefix is read, as far as a candidate
            // past it could still be among the kept ones by exact mode's error bound.
            const prefix = useDense && !useSparse && opts.fusion !== 'rrf' && !filter;
            const settings = [`set_config('hnsw.ef_search', '${Math.max(this.ann.efSearch, candidates)}', true)`];
            // Unfiltered scans return their candidates in order of the database score (iterative scans off).
            settings.push(`set_config('hnsw.iterative_scan', '${filter ? 'relaxed_order' : 'off'}', true)`);
            if (prefix) settings.push(`(SELECT (value #>> '{}')::float8 FROM ${this.names.meta} WHERE key = 'max_norm') AS max_norm`);
            const [set] = await tx.query<{ max_norm?: number | null }>(`SELECT ${settings.join(', ')}`);
            signal?.throwIfAborted();
            if (!useDense && !useSparse) return [];
            if (prefix) {
              const limit = Math.min(candidates, kept + PREFIX_MARGIN);
              const maxNorm = (this.maxNorm = Math.max(this.maxNorm, set?.max_norm ?? 0));
              const dErr = denseErrorBound(qDense, maxNorm);
              const qd = `$1::${denseType}(${dim})`;
              // p: the prefix in scan order; k: the kept-th best database score in it; only rows within
              // twice the error bound of that score can be among the kept ones, and only they come back.
              // An empty table gives an empty p (OFFSET kept at 0, never negative) and no rows.
              const rows = await tx.query<Stored & { n: number; sorted: boolean | null; k_dd: number; last_dd: number }>(
                `WITH p AS (SELECT seq, dd, row_number() OVER () AS pos FROM (SELECT seq, dense <#> ${qd} AS dd FROM ${t} ORDER BY dense <#> ${qd} LIMIT ${limit}) scan),
                   st AS (SELECT count(*) AS n, (SELECT bool_and(dd >= prev) FROM (SELECT dd, lag(dd) OVER (ORDER BY pos) AS prev FROM p) z) AS sorted,
                            (SELECT dd FROM p ORDER BY pos DESC LIMIT 1) AS last_dd FROM p),
                   k AS (SELECT dd AS k_dd FROM p ORDER BY dd OFFSET GREATEST(LEAST(${kept}, (SELECT n FROM st)) - 1, 0) LIMIT 1)
                 SELECT t.seq::float8 AS seq, t.id, t.text, t.metadata, t.dense_exact, sparsevec_send(t.sparse) AS sparse, st.n::float8 AS n, st.sorted, k.k_dd, st.last_dd
                 FROM p JOIN ${t} t ON t.seq = p.seq, st, k WHERE p.dd <= k.k_dd + $2::float8`,
                [qDenseParam, 2 * dErr + 1e-9],
              );
              const first = rows[0];
              const complete = !first || first.n < limit || limit === candidates;
              if (complete || (first.sorted !== false && first.last_dd > first.k_dd + 2 * dErr + 1e-9)) {
                const bySeq = new Map(rows.map((d) => [d.seq, d]));
                return fuseCandidates(
                  rows.map((d) => ({ row: d.seq, dense: exactDense(d.seq, d.dense_exact), sparse: exactSparse(d.seq, d.sparse) })),
                  opts,
                )
                  .slice(0, kept)
                  .map((c) => result(c, bySeq.get(c.row)!));
              }
              // A candidate past the prefix may still count: take the whole leg below.
            }
            const params: unknown[] = [];
            const qd = useDense ? `$${params.push(qDenseParam)}::${denseType}(${dim})` : '';
            const qs = useSparse ? `$${params.push(qSparseParam)}::sparsevec(${vocab})` : '';
            const filterSql = filter ? filterToSql(filter, 'metadata', params) : 'TRUE';
            const column = this.sparseSearch === 'hnsw' ? 'sparse_top' : 'sparse';
            const legs: string[] = [];
            const union: string[] = [];
            if (useDense) {
              legs.push(`d AS (SELECT seq, dense <#> ${qd} AS dd FROM ${t} WHERE ${filterSql} ORDER BY dense <#> ${qd} LIMIT ${candidates})`);
              union.push(`SELECT seq, TRUE AS in_d, FALSE AS in_s, dd, NULL::float8 AS sd FROM d`);
            }
            if (useSparse) {
              // Rows sharing no token score 0, after every negative distance in an ordered scan: without a
              // filter they are dropped after the LIMIT (the same rows, one inner product fewer per row).
              legs.push(
                filter
                  ? `s AS (SELECT seq, ${column} <#> ${qs} AS sd FROM ${t} WHERE ${filterSql} AND (${column} <#> ${qs}) < 0 ORDER BY ${column} <#> ${qs} LIMIT ${candidates})`
                  : `s AS (SELECT seq, sd FROM (SELECT seq, ${column} <#> ${qs} AS sd FROM ${t} ORDER BY ${column} <#> ${qs} LIMIT ${candidates}) scan WHERE sd < 0)`,
              );
              union.push(`SELECT seq, FALSE AS in_d, TRUE AS in_s, NULL::float8 AS dd, sd FROM s`);
            }
            const legsSql = `${legs.join(', ')}, u AS (SELECT seq, bool_or(in_d) AS in_d, bool_or(in_s) AS in_s, min(dd) AS dd, min(sd) AS sd FROM (${union.join(' UNION ALL ')}) legs GROUP BY seq)`;
            const fetch = async (seqs: number[]) =>
              seqs.length === 0 ? new Map<number, Stored>() : new Map((await tx.query<Stored>(`SELECT ${storedColumns} FROM ${t} WHERE seq = ANY($1::bigint[])`, [seqs])).map((d) => [d.seq, d]));
            if (opts.fusion !== 'rrf') {
              // Weighted: bounds on each candidate's fused score from the database's approximate scores
              // (exact mode's error bounds); only the candidates that can still reach the kept top are
              // returned, with their stored vectors and documents, and rescored exactly here.
              const p = (value: number) => `$${params.push(value)}::float8`;
              const W = weights.dense + weights.sparse;
              const dErr0 = denseErrorBound(qDense, 0);
              const dErrPerNorm = denseErrorBound(qDense, 1) - dErr0;
              const sRel = 2 * sparseRelativeError(qSparse);
              const sAbs = (qSparse.indices.length + 1) * 2 ** -140;
              const sLo = useSparse ? `GREATEST(0, a.asp * ${p(1 - sRel)} - ${p(sAbs)})` : '0';
              const sHi = useSparse ? `(a.asp * ${p(1 + sRel)} + ${p(sAbs)})` : '0';
              const lo = `(${p(weights.dense)} * ${useDense ? '(a.ad - e.d_err)' : '0'} + ${p(weights.sparse)} * ${sLo}) / ${p(W)}`;
              const hi = `(${p(weights.dense)} * ${useDense ? '(a.ad + e.d_err)' : '0'} + ${p(weights.sparse)} * ${sHi}) / ${p(W)}`;
              const rows = await tx.query<Stored & { in_d: boolean; max_norm: number }>(
                `WITH ${legsSql},
                   a AS MATERIALIZED (SELECT u.seq, u.in_d, ${useDense ? `-COALESCE(u.dd, t.dense <#> ${qd})` : 'NULL::float8'} AS ad, ${useSparse ? (column === 'sparse' ? `-COALESCE(u.sd, t.sparse <#> ${qs})` : `-(t.sparse <#> ${qs})`) : 'NULL::float8'} AS asp FROM u JOIN ${t} t ON t.seq = u.seq),
                   m AS (SELECT GREATEST(${p(this.maxNorm)}, (SELECT (value #>> '{}')::float8 FROM ${this.names.meta} WHERE key = 'max_norm')) AS max_norm),
                   e AS (SELECT ${p(dErrPerNorm)} * m.max_norm + ${p(dErr0)} AS d_err FROM m),
                   b0 AS (SELECT a.seq, a.in_d, ${lo} AS lo, ${hi} AS hi, (a.in_d OR ${sLo} > 0) AS sure FROM a, e),
                   b AS (SELECT seq, in_d, sure, lo - 1e-12 * (1 + abs(lo)) AS lo, hi + 1e-12 * (1 + abs(hi)) AS hi FROM b0),
                   f AS (SELECT lo FROM b WHERE sure ORDER BY lo DESC OFFSET ${kept - 1} LIMIT 1)
                 SELECT t.seq::float8 AS seq, t.id, t.text, t.metadata, t.dense_exact, sparsevec_send(t.sparse) AS sparse, b.in_d, (SELECT max_norm FROM m) AS max_norm
                 FROM b JOIN ${t} t ON t.seq = b.seq WHERE b.hi >= COALESCE((SELECT lo FROM f), '-Infinity'::float8)`,
                params,
              );
              if (rows.length > 0) this.maxNorm = Math.max(this.maxNorm, rows[0]!.max_norm);
              const entries: FusionCandidate[] = [];
              for (const d of rows) {
                const e = { row: d.seq, dense: exactDense(d.seq, d.dense_exact), sparse: exactSparse(d.seq, d.sparse) };
                if (d.in_d || e.sparse > 0) entries.push(e);
              }
              const bySeq = new Map(rows.map((d) => [d.seq, d]));
              return fuseCandidates(entries, opts)
                .slice(0, kept)
                .map((c) => result(c, bySeq.get(c.row)!));
            }
            const legRows = await tx.query<{ seq: number; in_d: boolean; in_s: boolean; dense_exact: Uint8Array | null; sparse: Uint8Array | null }>(
              `WITH ${legsSql}
               SELECT u.seq::float8 AS seq, u.in_d, u.in_s, CASE WHEN u.in_d THEN t.dense_exact END AS dense_exact, CASE WHEN u.in_s THEN sparsevec_send(t.sparse) END AS sparse
               FROM u JOIN ${t} t ON t.seq = u.seq`,
              params,
            );
            signal?.throwIfAborted();
            // RRF: each leg's exact order, then the kept candidates' other scores and documents.
            const byRow = new Map<number, FusionCandidate>();
            const rank = (key: 'dense' | 'sparse') => {
              const list = legRows
                .filter((r) => (key === 'dense' ? r.in_d : r.in_s))
                .map((r) => ({ row: r.seq, score: key === 'dense' ? exactDense(r.seq, r.dense_exact!) : exactSparse(r.seq, r.sparse!) }))
                .filter((c) => key === 'dense' || c.score > 0)
                .sort(compareEntries)
                .slice(0, candidates);
              list.forEach((c, i) => {
                let e = byRow.get(c.row);
                if (!e) byRow.set(c.row, (e = { row: c.row, dense: NaN, sparse: NaN }));
                e[key] = c.score;
                e[key === 'dense' ? 'denseRank' : 'sparseRank'] = i + 1;
              });
            };
            if (useDense) rank('dense');
            if (useSparse) rank('sparse');
            const fused = fuseCandidates([...byRow.values()], opts).slice(0, kept);
            const rows = await fetch(fused.map((c) => c.row));
            return fused.map((c) => {
              const d = rows.get(c.row)!;
              if (Number.isNaN(c.dense)) c.dense = exactDense(c.row, d.dense_exact);
              if (Number.isNaN(c.sparse)) c.sparse = exactSparse(c.row, d.sparse);
              return result(c, d);
            });
          }

          // Exact: never an index scan, whatever indexes the table has.
          const maxStoredNorm = await this.storedMaxNorm(tx);
          await tx.query(`SET LOCAL enable_indexscan = off`);
          signal?.throwIfAborted();
          // Each leg's statements take $1 (its query vector), then the filter's parameters.
          const leg = (vector: unknown) => {
            const params: unknown[] = [vector];
            return { params, where: filter ? filterToSql(filter, 'metadata', params) : 'TRUE' };
          };
          const qd = `$1::${denseType}(${dim})`;
          const qs = `$1::sparsevec(${vocab})`;
          const denseBand: Band = { seqs: [] };
          const sparseBand: Band = { seqs: [] };
          if (useDense) {
            const { params, where } = leg(qDenseParam);
            const top = await tx.query<{ seq: number; s: number }>(`SELECT seq::float8 AS seq, -(dense <#> ${qd}) AS s FROM ${t} WHERE ${where} ORDER BY dense <#> ${qd} LIMIT ${candidates}`, params);
            if (top.length < candidates) denseBand.seqs = top.map((r) => r.seq);
            else {
              const floor = top[top.length - 1]!.s - 2 * denseErrorBound(qDense, maxStoredNorm);
              const band = await tx.query<{ seq: number }>(`SELECT seq::float8 AS seq FROM ${t} WHERE ${where} AND -(dense <#> ${qd}) >= ${floor}`, params);
              denseBand.seqs = band.map((r) => r.seq);
            }
          }
          if (useSparse) {
            const { params, where } = leg(qSparseParam);
            const top = await tx.query<{ seq: number; s: number }>(
              `SELECT seq::float8 AS seq, -(sparse <#> ${qs}) AS s FROM ${t} WHERE ${where} AND (sparse <#> ${qs}) < 0 ORDER BY sparse <#> ${qs} LIMIT ${candidates}`,
              params,
            );
            if (top.length < candidates) sparseBand.seqs = top.map((r) => r.seq);
            else {
              const floor = top[top.length - 1]!.s * (1 - sparseRelativeError(qSparse)) - Number.MIN_VALUE;
              const band = await tx.query<{ seq: number }>(`SELECT seq::float8 AS seq FROM ${t} WHERE ${where} AND (sparse <#> ${qs}) < 0 AND -(sparse <#> ${qs}) >= ${floor}`, params);
              sparseBand.seqs = band.map((r) => r.seq);
            }
          }
          signal?.throwIfAborted();
          // Exact scores of every row either band holds.
          const seqs = [...new Set([...denseBand.seqs, ...sparseBand.seqs])];
          const vectors = new Map<number, RowVectors>();
          if (seqs.length > 0) {
            const rows = await tx.query<{ seq: number; dense_exact: Uint8Array; sparse: Uint8Array }>(`SELECT seq::float8 AS seq, dense_exact, sparsevec_send(sparse) AS sparse FROM ${t} WHERE seq = ANY($1::bigint[])`, [seqs]);
            for (const r of rows) vectors.set(r.seq, { dense: denseView(r.dense_exact, dim, where(r.seq)), sparse: r.sparse });
          }
          const exact = (seq: number) => {
            const v = vectors.get(seq)!;
            return { row: seq, dense: dot(qDense, v.dense), sparse: exactSparse(seq, v.sparse) };
          };
          const byRow = new Map<number, FusionCandidate>();
          const entry = (c: { row: number; dense: number; sparse: number }) => {
            let e = byRow.get(c.row);
            if (!e) byRow.set(c.row, (e = { ...c }));
            return e;
          };
          const ranked = (band: Band, key: 'dense' | 'sparse') =>
            band.seqs
              .filter((s) => vectors.has(s))
              .map(exact)
              .filter((c) => key === 'dense' || c.sparse > 0)
              .map((c) => ({ ...c, score: c[key] }))
              .sort(compareEntries)
              .slice(0, candidates);
          ranked(denseBand, 'dense').forEach((c, i) => (entry(c).denseRank = i + 1));
          ranked(sparseBand, 'sparse').forEach((c, i) => (entry(c).sparseRank = i + 1));
          const fused = fuseCandidates([...byRow.values()], opts).slice(0, kept);
          if (fused.length === 0) return [];
          const docs = await tx.query<Stored>(`SELECT seq::float8 AS seq, id, text, metadata FROM ${t} WHERE seq = ANY($1::bigint[])`, [fused.map((c) => c.row)]);
          const bySeq = new Map(docs.map((d) => [d.seq, d]));
          return fused.map((c) => result(c, bySeq.get(c.row)!));
        },
        { readOnly: true },
      ),
    );
  }

  /** The stored vectors' largest norm (other processes may have added longer ones). */
  private async storedMaxNorm(tx: Queryable): Promise<number> {
    const [row] = await tx.query<{ v: number }>(`SELECT (value #>> '{}')::float8 AS v FROM ${this.names.meta} WHERE key = 'max_norm'`);
    this.maxNorm = Math.max(this.maxNorm, row?.v ?? 0);
    return this.maxNorm;
  }
}

/**
 * A bound on |database score − exact score| for the dense leg: the query and the stored vector
 * rounded to halfvec (relative 2⁻¹¹ each, plus fp16's subnormal step), then float32 accumulation
 * (dim · 2⁻²⁴ relative to Σ|q_i·d_i| ≤ |q|·|d|). Generous by a factor of two or more.
 */
function denseErrorBound(q: Float32Array, maxNorm: number): number {
  const qNorm = Math.sqrt(dot(q, q));
  return qNorm * maxNorm * (2 ** -9 + 2 * q.length * 2 ** -24) + q.length * 2 ** -20;
}

/**
 * A bound on the relative error of pgvector's sparse inner product (float32 products and sums of
 * non-negative terms: at most one rounding per shared term and per addition), generous by four.
 */
function sparseRelativeError(q: SparseVector): number {
  return 4 * (q.indices.length + 1) * 2 ** -24;
}

function resolveAnn(ann: PgHybridIndexOptions['ann']): Required<PgAnnOptions> | undefined {
  if (ann === false) return undefined;
  if (ann === undefined || ann === true) return DEFAULT_ANN;
  if (typeof ann !== 'object' || ann === null) {
    throw new BgeM3Error('INVALID_ARGUMENT', `ann must be true, false or { m?, efConstruction?, efSearch? }; got ${describe(ann)}.`);
  }
  return {
    m: checkInteger(ann.m ?? DEFAULT_ANN.m, 'ann.m', 2),
    efConstruction: checkInteger(ann.efConstruction ?? DEFAULT_ANN.efConstruction, 'ann.efConstruction', 4),
    efSearch: checkInteger(ann.efSearch ?? DEFAULT_ANN.efSearch, 'ann.efSearch', 1),
  };
}

function checkConnectionString(value: unknown): string {
  if (typeof value !== 'string' || !/^postgres(ql)?:\/\//.test(value)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `connectionString must be a postgres:// URL; got ${typeof value === 'string' ? 'a string of another form' : describe(value)}.`);
  }
  return value;
}

/** The search's filter as the database can run it; a function filter is memory-only. */
function declarativeFilter(opts: ResolvedSearchOptions): MetadataFilter | undefined {
  return requireDeclarativeFilter(opts, 'PgHybridIndex');
}

async function ensureExtension(db: SqlClient, names: TableNames, create: boolean, readOnly: boolean): Promise<void> {
  const [row] = await db.query<{ v: string | null }>(`SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS v`);
  if (row?.v) return;
  const sql = 'CREATE EXTENSION IF NOT EXISTS vector';
  if (!create || readOnly) {
    throw new BgeM3Error('MISSING_FILE', `The pgvector extension is not installed in this database (needed by ${names.display}). Run as a superuser or database owner: ${sql};`);
  }
  try {
    await db.query(sql);
  } catch (cause) {
    throw new BgeM3Error(
      'MISSING_FILE',
      `The pgvector extension is missing and could not be created (${(cause as Error).message}). Install pgvector on the server and run as a superuser or database owner: ${sql};`,
      { cause },
    );
  }
}

const WRITES = new Set(['add', 'delete', 'create', 'migrate']);

/**
 * PostgreSQL `text` and `jsonb` cannot hold NUL characters or unpaired UTF-16 surrogates (the
 * driver would replace the latter): refuse them rather than store something else than was given.
 */
function checkStorable(rows: EncodedRow[], operation: string): void {
  const bad = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  const visit = (value: unknown, where: string): void => {
    if (typeof value === 'string') {
      if (bad.test(value)) {
        throw new BgeM3Error('INVALID_ARGUMENT', `${operation}: ${where} holds a NUL character or an unpaired surrogate, which PostgreSQL text cannot store; remove it (MemoryHybridIndex keeps such strings).`);
      }
    } else if (Array.isArray(value)) value.forEach((v, i) => visit(v, `${where}[${i}]`));
    else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        visit(k, `${where} key ${JSON.stringify(k.slice(0, 40))}`);
        visit(v, `${where}.${k.slice(0, 40)}`);
      }
    }
  };
  rows.forEach((r, i) => {
    visit(r.id, `docs[${i}].id`);
    visit(r.text, `docs[${i}].text`);
    visit(r.metadata, `docs[${i}].metadata`);
  });
}

/** Runs one database operation, turning driver errors into a `BgeM3Error` that names the table and the operation. */
async function run<T>(db: SqlClient, names: TableNames, operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof BgeM3Error || (e as Error)?.name === 'AbortError') throw e;
    const err = e as Error & { code?: string };
    const readOnly = err.code === '25006' || /read-only transaction/.test(err.message ?? '');
    throw new BgeM3Error(
      'DATABASE_ERROR',
      readOnly
        ? `PgHybridIndex ${operation} on ${names.display}: the server is read-only (a standby replica): ${err.message}. Write through the primary.`
        : `PgHybridIndex ${operation} on ${names.display} failed (${db.kind}): ${err.message}${err.code ? ` [SQLSTATE ${err.code}]` : ''}.${WRITES.has(operation) ? ` Nothing of this ${operation} was stored (it runs in one transaction).` : ''}`,
      { cause: e },
    );
  }
}

// --- write(): pgvector's binary input formats (big-endian, as `pg` sends a Buffer parameter) ---

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The float32 bytes (little-endian) of `dense_exact`: {@link denseBytes}, without a call per value. */
function float32Bytes(dense: Float32Array): Buffer {
  return LITTLE_ENDIAN ? Buffer.from(dense.buffer, dense.byteOffset, dense.byteLength) : denseBytes(dense);
}

/** `halfvec_recv`'s input: int16 dim, int16 unused, then each value as IEEE half (round to nearest even, as `halfvec_in` rounds). */
function halfvecBinary(dense: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(4 + 2 * dense.length);
  out.writeInt16BE(dense.length, 0);
  out.writeInt16BE(0, 2);
  const bits = new Uint32Array(dense.buffer, dense.byteOffset, dense.length);
  for (let i = 0; i < dense.length; i++) out.writeUInt16BE(halfBits(bits[i]!), 4 + 2 * i);
  return out;
}

/** IEEE 754 binary16 bits of a float32 (bits given), rounding to nearest even; beyond ±65504 gives ±infinity, which `halfvec_recv` rejects. */
function halfBits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  const mant = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    return sign | roundShift(mant | 0x800000, 14 - e);
  }
  return sign | roundShift((e << 23) | mant, 13);
}

function roundShift(value: number, shift: number): number {
  const half = 1 << (shift - 1);
  const rest = value & ((1 << shift) - 1);
  const out = value >>> shift;
  return rest > half || (rest === half && out & 1) ? out + 1 : out;
}

/** `vector_recv`'s input: int16 dim, int16 unused, then float4 values. */
function vectorBinary(dense: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(4 + 4 * dense.length);
  out.writeInt16BE(dense.length, 0);
  out.writeInt16BE(0, 2);
  for (let i = 0; i < dense.length; i++) out.writeFloatBE(dense[i]!, 4 + 4 * i);
  return out;
}

/** `sparsevec_recv`'s input: int32 dim, int32 nnz, int32 unused, the 0-based indices (int32, ascending), then float4 values. */
function sparsevecBinary(v: SparseVector, vocab: number): Buffer {
  const n = v.indices.length;
  const out = Buffer.allocUnsafe(12 + 8 * n);
  out.writeInt32BE(vocab, 0);
  out.writeInt32BE(n, 4);
  out.writeInt32BE(0, 8);
  for (let i = 0; i < n; i++) out.writeInt32BE(v.indices[i]!, 12 + 4 * i);
  for (let i = 0; i < n; i++) out.writeFloatBE(v.values[i]!, 12 + 4 * n + 4 * i);
  return out;
}

// --- searchVectors(): reading stored vectors ---

/** `dense_exact` as float32 values: a view of the bytes when aligned (little-endian hosts), else a copy. */
function denseView(bytes: Uint8Array, dim: number, where: string): Float32Array {
  if (LITTLE_ENDIAN && bytes.byteLength === dim * 4 && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, dim);
  return fromDenseBytes(bytes, dim, where);
}

/**
 * `sparseDot(q, stored)` read straight from `sparsevec_send` bytes (int32 dim, nnz, unused; nnz
 * 0-based int32 indices ascending; nnz float4 values; big-endian): the query's tokens are looked
 * up in ascending order and their products summed in that order, so the sum is sparseDot's to the bit.
 */
function sparseDotSend(q: SparseVector, bytes: Uint8Array, where: string): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nnz = bytes.byteLength >= 12 ? view.getInt32(4) : -1;
  if (nnz < 0 || bytes.byteLength !== 12 + 8 * nnz) {
    throw new BgeM3Error('CORRUPT_FILE', `${where}: the sparse vector's stored form has ${bytes.byteLength} bytes, which is not a sparsevec; the row was not written by bge-m3-rag.`);
  }
  const values = 12 + 4 * nnz;
  let s = 0;
  let lo = 0;
  for (let i = 0; i < q.indices.length && lo < nnz; i++) {
    const id = q.indices[i]!;
    let hi = nnz;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (view.getInt32(12 + 4 * mid) < id) lo = mid + 1;
      else hi = mid;
    }
    if (lo < nnz && view.getInt32(12 + 4 * lo) === id) s += q.values[i]! * view.getFloat32(values + 4 * lo++);
  }
  return s;
}
