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
 */
import { BgeM3Error } from '../../errors.js';
import type { BgeM3Model } from '../../model/bge-m3-model.js';
import { dot } from '../../scores.js';
import { checkInteger, checkPositiveInteger, describeValue as describe } from '../../shared/checks.js';
import { DEFAULT_PASSAGE_LENGTH, DEFAULT_QUERY_LENGTH } from '../../shared/defaults.js';
import { ModelHandle, type BgeM3ModelFields, type BgeM3ModelOption } from '../../shared/model-option.js';
import { MAX_ENCODED_TOKEN_ID } from '../document-checks.js';
import { encodedRows, encodeDocuments, prepareDocuments, type EncodedRow } from '../document-rows.js';
import { filterToSql, type MetadataFilter } from '../filter.js';
import { fuseCandidates, requireDeclarativeFilter, resolveSearchOptions, type FusionCandidate, type ResolvedSearchOptions } from '../fusion.js';
import { checkCompatible, fingerprintModel, parseFingerprint } from '../model-fingerprint.js';
import { RerankStage } from '../rerank-stage.js';
import { checkEncodedQuery, encodeQuery } from '../query-encoding.js';
import { sparseDot, type SparseVector } from '../sparse-vector.js';
import { compareEntries } from '../top-k.js';
import type { HybridAddOptions, HybridDocumentInput, HybridEncodedDocument, HybridEncodedQuery, HybridIndex, HybridSearchOptions, HybridSearchResult } from '../types.js';
import { hnswStatements, migrate, readSettings, tableNames, type DenseColumnType, type StoredSettings, type TableNames } from './schema.js';
import { connectServer, openPGlite, wrapClient, type Queryable, type SqlClient } from './sql-client.js';
import { denseBytes, denseLiteral, fromDenseBytes, parseSparse, sparseLiteral, topWeights } from './vector-sql.js';

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
  /** Rows per INSERT statement in `add`. Default 200. */
  insertBatchSize?: number;
}

interface Band {
  /** `seq` of every row whose exact score can be among the leg's candidates. */
  seqs: number[];
}

interface RowVectors {
  seq: number;
  dense: Float32Array;
  sparse: SparseVector;
}

const DEFAULT_ANN: Required<PgAnnOptions> = { m: 16, efConstruction: 64, efSearch: 100 };

export class PgHybridIndex implements HybridIndex {
  private readonly rerankStage: RerankStage;
  private maxNorm: number;

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
  ) {
    this.maxNorm = settings.maxNorm;
    this.rerankStage = new RerankStage(options);
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
        const settings = { dim, vocab: model?.tokenizer.vocabSize ?? MAX_ENCODED_TOKEN_ID, denseType };
        await run(db, names, 'create', () =>
          db.transaction(async (tx) => {
            const again = await readSettings(tx, names);
            await migrate(tx, names, settings, fingerprint ?? null, again);
          }),
        );
        stored = (await readSettings(db, names))!;
      } else if (!ro && stored.schemaVersion < 1) {
        await run(db, names, 'migrate', () => db.transaction((tx) => migrate(tx, names, stored!, null, stored)));
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
      return new PgHybridIndex(db, names, handle, stored, ann, sparseSearch, ro, runtime);
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
    const rows = await encodeDocuments(model, prepared, { ...options, maxLength: this.options.maxPassageLength, batchSize: options.batchSize ?? this.options.batchSize });
    await this.write(rows, options);
    return prepared.map((d) => d.id);
  }

  /** Adds documents with precomputed dense and sparse encodings (no model needed). Same semantics as `add`. */
  async addEncoded(docs: HybridEncodedDocument[], options: Pick<HybridAddOptions, 'signal' | 'onProgress'> = {}): Promise<string[]> {
    const prepared = prepareDocuments(docs, 'addEncoded');
    this.assertWritable('addEncoded');
    const rows = encodedRows(docs, prepared, this.settings.dim);
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
    const q = await encodeQuery(model, query, this.options.maxQueryLength, options.signal);
    const fused = await this.searchVectors(q.dense, q.sparse, opts, filter, options.signal);
    if (!opts.rerank) return fused.slice(0, opts.k);
    return this.rerankStage.rerank(model, query, fused, opts, options.signal);
  }

  /** Search with a precomputed query encoding (no model needed); `rerank` needs `search`. */
  async searchEncoded(query: HybridEncodedQuery, options: HybridSearchOptions = {}): Promise<HybridSearchResult[]> {
    const opts = resolveSearchOptions(options);
    const q = checkEncodedQuery(query, this.settings.dim, opts);
    const fused = await this.searchVectors(q.dense, q.sparse, opts, declarativeFilter(opts), options.signal);
    return fused.slice(0, opts.k);
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

  /** Upserts rows in one transaction, `insertBatchSize` rows per statement. */
  private async write(rows: EncodedRow[], options: Pick<HybridAddOptions, 'signal' | 'onProgress'>): Promise<void> {
    checkStorable(rows, 'add');
    const t = this.names.table;
    const { vocab, denseType, dim } = this.settings;
    const per = this.options.insertBatchSize;
    const maxNorm = rows.reduce((m, r) => Math.max(m, r.norm), this.maxNorm);
    await run(this.db, this.names, 'add', () =>
      this.db.transaction(async (tx) => {
        for (let start = 0; start < rows.length; start += per) {
          options.signal?.throwIfAborted();
          const chunk = rows.slice(start, start + per);
          const params: unknown[] = [];
          const values = chunk.map((r) => {
            const dense = Float32Array.from(r.dense);
            params.push(r.id, r.text, JSON.stringify(r.metadata), denseLiteral(dense), denseBytes(dense), r.norm, sparseLiteral(r.sparse, vocab), sparseLiteral(topWeights(r.sparse), vocab));
            const b = params.length - 8;
            return `($${b + 1}, $${b + 2}, $${b + 3}::jsonb, $${b + 4}::${denseType}(${dim}), $${b + 5}::bytea, $${b + 6}, $${b + 7}::sparsevec(${vocab}), $${b + 8}::sparsevec(${vocab}))`;
          });
          await tx.query(
            `INSERT INTO ${t} (id, text, metadata, dense, dense_exact, dense_norm, sparse, sparse_top) VALUES ${values.join(', ')}
             ON CONFLICT (id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata, dense = excluded.dense,
               dense_exact = excluded.dense_exact, dense_norm = excluded.dense_norm, sparse = excluded.sparse,
               sparse_top = excluded.sparse_top, seq = nextval('${this.names.seq.replaceAll('"', '')}')`,
            params,
          );
          options.onProgress?.({ phase: 'add', done: Math.min(rows.length, start + per), total: rows.length });
        }
        if (maxNorm > this.maxNorm) {
          await tx.query(`UPDATE ${this.names.meta} SET value = to_jsonb(GREATEST((value #>> '{}')::float8, $1::float8)) WHERE key = 'max_norm'`, [maxNorm]);
        }
      }),
    );
    this.maxNorm = Math.max(this.maxNorm, maxNorm);
  }

  /** Both legs, exact rescoring and fusion on one snapshot; every fused candidate up to what the caller keeps, best first. */
  private async searchVectors(qDense: Float32Array, qSparse: SparseVector, opts: ResolvedSearchOptions, filter: MetadataFilter | undefined, signal?: AbortSignal): Promise<HybridSearchResult[]> {
    const { dim, vocab, denseType } = this.settings;
    if (qDense.length !== dim) {
      throw new BgeM3Error('INVALID_ARGUMENT', `The query's dense vector has ${qDense.length} values but the index holds ${dim}-dimensional vectors.`);
    }
    const { weights, candidates } = opts;
    const t = this.names.table;
    return run(this.db, this.names, 'search', () =>
      this.db.transaction(
        async (tx) => {
          // Each leg's statements take $1 (its query vector), then the filter's parameters.
          const leg = (literal: string) => {
            const params: unknown[] = [literal];
            return { params, where: filter ? filterToSql(filter, 'metadata', params) : 'TRUE' };
          };
          const qd = `$1::${denseType}(${dim})`;
          const qs = `$1::sparsevec(${vocab})`;
          const maxStoredNorm = await this.storedMaxNorm(tx);
          if (this.ann) {
            await tx.query(`SET LOCAL hnsw.ef_search = ${Math.max(this.ann.efSearch, candidates)}`);
            if (filter) await tx.query(`SET LOCAL hnsw.iterative_scan = relaxed_order`);
          } else {
            // Exact: never an index scan, whatever indexes the table has.
            await tx.query(`SET LOCAL enable_indexscan = off`);
          }
          signal?.throwIfAborted();
          const denseBand: Band = { seqs: [] };
          const sparseBand: Band = { seqs: [] };
          if (weights.dense > 0) {
            const { params, where } = leg(denseLiteral(qDense));
            const top = await tx.query<{ seq: number; s: number }>(`SELECT seq::float8 AS seq, -(dense <#> ${qd}) AS s FROM ${t} WHERE ${where} ORDER BY dense <#> ${qd} LIMIT ${candidates}`, params);
            if (this.ann || top.length < candidates) denseBand.seqs = top.map((r) => r.seq);
            else {
              const floor = top[top.length - 1]!.s - 2 * denseErrorBound(qDense, maxStoredNorm);
              const band = await tx.query<{ seq: number }>(`SELECT seq::float8 AS seq FROM ${t} WHERE ${where} AND -(dense <#> ${qd}) >= ${floor}`, params);
              denseBand.seqs = band.map((r) => r.seq);
            }
          }
          if (weights.sparse > 0 && qSparse.indices.length > 0) {
            const { params, where } = leg(sparseLiteral(qSparse, vocab));
            const column = this.ann && this.sparseSearch === 'hnsw' ? 'sparse_top' : 'sparse';
            if (column === 'sparse' && this.ann) await tx.query(`SET LOCAL enable_indexscan = off`);
            const top = await tx.query<{ seq: number; s: number }>(
              `SELECT seq::float8 AS seq, -(${column} <#> ${qs}) AS s FROM ${t} WHERE ${where} AND (${column} <#> ${qs}) < 0 ORDER BY ${column} <#> ${qs} LIMIT ${candidates}`,
              params,
            );
            if (this.ann || top.length < candidates) sparseBand.seqs = top.map((r) => r.seq);
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
            const rows = await tx.query<{ seq: number; dense_exact: Uint8Array; sparse: string }>(
              `SELECT seq::float8 AS seq, dense_exact, sparse::text AS sparse FROM ${t} WHERE seq = ANY($1::bigint[])`,
              [seqs],
            );
            for (const r of rows) {
              const where = `${this.names.display} row ${r.seq}`;
              vectors.set(r.seq, { seq: r.seq, dense: fromDenseBytes(r.dense_exact, dim, where), sparse: parseSparse(r.sparse, where) });
            }
          }
          const exact = (seq: number) => {
            const v = vectors.get(seq)!;
            return { row: seq, dense: dot(qDense, v.dense), sparse: sparseDot(qSparse, v.sparse) };
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
          const keep = Math.max(opts.k, opts.rerank?.topN ?? 0);
          const fused = fuseCandidates([...byRow.values()], opts).slice(0, keep);
          if (fused.length === 0) return [];
          const docs = await tx.query<{ seq: number; id: string; text: string; metadata: Record<string, unknown> }>(
            `SELECT seq::float8 AS seq, id, text, metadata FROM ${t} WHERE seq = ANY($1::bigint[])`,
            [fused.map((c) => c.row)],
          );
          const bySeq = new Map(docs.map((d) => [d.seq, d]));
          return fused.map((c) => {
            const d = bySeq.get(c.row)!;
            return { id: d.id, text: d.text, metadata: d.metadata, score: c.score, dense: c.dense, sparse: c.sparse };
          });
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
