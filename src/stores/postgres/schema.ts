/**
 * The tables of one `PgHybridIndex`, their versioned migrations, and the identifiers they use.
 *
 * ```sql
 * <table>       (id text PRIMARY KEY, seq bigint, text, metadata jsonb,
 *                dense halfvec(dim) | vector(dim),  -- candidates: HNSW (halfvec_ip_ops) or exact scan
 *                dense_exact bytea,                  -- the float32 vector, for exact rescoring
 *                sparse sparsevec(vocab),            -- every lexical weight (token id + 1: pgvector is 1-based)
 *                sparse_top sparsevec(vocab),        -- the top 1,000 weights (what sparsevec HNSW accepts)
 *                colbert bytea)                      -- v2: the ColBERT rows (multi-vectors.ts's blob), or NULL
 * <table>_meta  (key text PRIMARY KEY, value jsonb)  -- schema_version, dim, vocab, dense type, model
 *                                                       fingerprint, max_norm, multi_vectors (v2)
 * ```
 * `seq` is the insertion order (a re-added id gets a new one, as in `MemoryHybridIndex`): it breaks
 * score ties the same way in both backends.
 *
 * Versions: 1 = the table above without `colbert`; 2 adds the nullable `colbert` column (an
 * `ALTER TABLE … ADD COLUMN`, metadata only: existing rows read NULL, i.e. no stored vectors) and
 * the `multi_vectors` meta key (absent = `false`). A new table runs every migration in the one
 * transaction that creates it; an existing one runs those above its version when opened on a
 * primary, under the index's advisory lock.
 */
import { BgeM3Error } from '../../errors.js';
import { checkMultiVectorsOption, type MultiVectorStorage } from '../multi-vectors.js';
import type { Queryable } from './sql-client.js';

/** The newest schema this package writes; opening a newer one is refused. */
export const SCHEMA_VERSION = 2;
/** pgvector's HNSW index on `sparsevec` accepts at most this many non-zeros per vector. */
export const SPARSE_INDEX_MAX_NNZ = 1000;

export type DenseColumnType = 'halfvec' | 'vector';

/** Quoted identifiers of one index's objects. */
export interface TableNames {
  /** As given, for messages. */
  display: string;
  table: string;
  meta: string;
  seq: string;
  denseIndex: string;
  sparseIndex: string;
  /** Unquoted, for `pg_advisory_xact_lock(hashtext(...))` and catalog lookups. */
  schema: string | undefined;
  bare: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

/**
 * Validates `table` (`name` or `schema.name`, letters, digits and `_`, at most 48 characters so
 * derived names fit PostgreSQL's 63) and derives the names of its meta table, sequence and indexes.
 */
export function tableNames(table: string): TableNames {
  const parts = typeof table === 'string' ? table.split('.') : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every((p) => IDENT.test(p))) {
    throw new BgeM3Error(
      'INVALID_ARGUMENT',
      `table ${JSON.stringify(String(table).slice(0, 80))} is not a safe table name: use letters, digits and _ (not starting with a digit, at most 48 characters), optionally schema-qualified as schema.table.`,
    );
  }
  const bare = parts[parts.length - 1]!.toLowerCase();
  const schema = parts.length === 2 ? parts[0]!.toLowerCase() : undefined;
  const q = (name: string) => (schema ? `"${schema}"."${name}"` : `"${name}"`);
  return {
    display: table,
    table: q(bare),
    meta: q(`${bare}_meta`),
    seq: q(`${bare}_seq`),
    denseIndex: `"${bare}_dense_hnsw"`,
    sparseIndex: `"${bare}_sparse_hnsw"`,
    schema,
    bare,
  };
}

export interface SchemaSettings {
  dim: number;
  vocab: number;
  denseType: DenseColumnType;
  /** Whether (and how) documents' ColBERT rows are stored; recorded for a new table. */
  multiVectors: MultiVectorStorage;
  /** HNSW build parameters, when the indexes are created. */
  hnsw?: { m: number; efConstruction: number };
}

interface Migration {
  version: number;
  /** Statements run in order, in the open transaction. */
  up(names: TableNames, s: SchemaSettings): string[];
}

/** Every schema change ever made, in order; a database at version v runs those above v. */
const MIGRATIONS: Migration[] = [
  {
    version: 1,
    up: (n, s) => [
      `CREATE SEQUENCE IF NOT EXISTS ${n.seq}`,
      `CREATE TABLE ${n.table} (
        id text PRIMARY KEY,
        seq bigint NOT NULL DEFAULT nextval('${n.seq.replaceAll('"', '')}'),
        text text NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        dense ${s.denseType}(${s.dim}) NOT NULL,
        dense_exact bytea NOT NULL,
        dense_norm double precision NOT NULL,
        sparse sparsevec(${s.vocab}) NOT NULL,
        sparse_top sparsevec(${s.vocab}) NOT NULL
      )`,
      `CREATE UNIQUE INDEX IF NOT EXISTS "${n.bare}_seq_idx" ON ${n.table} (seq)`,
    ],
  },
  {
    // Stored multi-vectors (issue 14). Nullable without a default: no table rewrite.
    version: 2,
    up: (n) => [`ALTER TABLE ${n.table} ADD COLUMN IF NOT EXISTS colbert bytea`],
  },
];

/** HNSW indexes (created when `ann` is on; harmless to exact searches, which do not use them). */
export function hnswStatements(n: TableNames, s: { denseType: DenseColumnType; hnsw: { m: number; efConstruction: number } }): string[] {
  const w = `WITH (m = ${s.hnsw.m}, ef_construction = ${s.hnsw.efConstruction})`;
  return [
    `CREATE INDEX IF NOT EXISTS ${n.denseIndex} ON ${n.table} USING hnsw (dense ${s.denseType}_ip_ops) ${w}`,
    `CREATE INDEX IF NOT EXISTS ${n.sparseIndex} ON ${n.table} USING hnsw (sparse_top sparsevec_ip_ops) ${w}`,
  ];
}

/** What the meta table says about an existing index. */
export interface StoredSettings {
  schemaVersion: number;
  dim: number;
  vocab: number;
  denseType: DenseColumnType;
  fingerprint: unknown;
  /** Largest L2 norm of a stored dense vector (only grows): bounds the approximate scan's error. */
  maxNorm: number;
  /** How documents' ColBERT rows are stored (`false` for a version-1 table). */
  multiVectors: MultiVectorStorage;
}

/** Reads the meta table, or undefined when the index does not exist yet. */
export async function readSettings(db: Queryable, n: TableNames): Promise<StoredSettings | undefined> {
  const [exists] = await db.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [n.meta.replaceAll('"', '')]);
  if (!exists?.ok) return undefined;
  const rows = await db.query<{ key: string; value: unknown }>(`SELECT key, value FROM ${n.meta}`);
  const m = new Map(rows.map((r) => [r.key, r.value]));
  const bad = (what: string) =>
    new BgeM3Error('CORRUPT_FILE', `The index table ${n.display} has an unreadable ${n.display}_meta (${what}); it was not written by bge-m3-rag, or was edited by hand.`);
  const int = (key: string) => {
    const v = m.get(key);
    if (!Number.isSafeInteger(v) || (v as number) < 1) throw bad(`${key} is ${JSON.stringify(v)}`);
    return v as number;
  };
  const denseType = m.get('dense_type');
  if (denseType !== 'halfvec' && denseType !== 'vector') throw bad(`dense_type is ${JSON.stringify(denseType)}`);
  const maxNorm = m.get('max_norm') ?? 0;
  if (typeof maxNorm !== 'number' || !Number.isFinite(maxNorm) || maxNorm < 0) throw bad(`max_norm is ${JSON.stringify(maxNorm)}`);
  const storage = m.get('multi_vectors') ?? false;
  if (storage !== false && storage !== 'fp16' && storage !== 'int8') throw bad(`multi_vectors is ${JSON.stringify(storage)}`);
  return { schemaVersion: int('schema_version'), dim: int('dim'), vocab: int('vocab'), denseType, fingerprint: m.get('fingerprint') ?? null, maxNorm, multiVectors: storage };
}

/** Serializes schema changes of one index across processes (until the transaction ends). */
async function lockIndex(db: Queryable, n: TableNames): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`bge-m3-rag:${n.schema ?? 'public'}.${n.bare}`]);
}

async function putMeta(db: Queryable, n: TableNames, key: string, value: unknown): Promise<void> {
  await db.query(`INSERT INTO ${n.meta} (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, JSON.stringify(value)]);
}

/**
 * Creates the index's tables (or upgrades them to {@link SCHEMA_VERSION}) inside `db`'s open
 * transaction, holding an advisory lock so two processes opening at once do not race: the meta
 * table is read again once the lock is held, so the second of two openers sees what the first
 * created or migrated and runs nothing twice. `s` and `fingerprint` are used for a new index only.
 */
export async function migrate(db: Queryable, n: TableNames, s: SchemaSettings, fingerprint: unknown): Promise<void> {
  await lockIndex(db, n);
  const stored = await readSettings(db, n);
  const from = stored?.schemaVersion ?? 0;
  if (from > SCHEMA_VERSION) {
    throw new BgeM3Error('INCOMPATIBLE_INDEX', `The index table ${n.display} has schema version ${from}, newer than this bge-m3-rag writes (${SCHEMA_VERSION}): upgrade bge-m3-rag.`);
  }
  if (from === SCHEMA_VERSION) return; // another process got here first
  if (n.schema) await db.query(`CREATE SCHEMA IF NOT EXISTS "${n.schema}"`);
  await db.query(`CREATE TABLE IF NOT EXISTS ${n.meta} (key text PRIMARY KEY, value jsonb NOT NULL)`);
  for (const m of MIGRATIONS) {
    if (m.version <= from) continue;
    for (const sql of m.up(n, stored ? { ...s, dim: stored.dim, vocab: stored.vocab, denseType: stored.denseType } : s)) await db.query(sql);
  }
  const put = (key: string, value: unknown) => putMeta(db, n, key, value);
  await put('schema_version', SCHEMA_VERSION);
  if (!stored) {
    await put('dim', s.dim);
    await put('vocab', s.vocab);
    await put('dense_type', s.denseType);
    await put('fingerprint', fingerprint);
    await put('max_norm', 0);
  }
  // Version 2 records the multi-vector storage: a new table's setting, what an upgraded table had (none).
  if (from < 2) await put('multi_vectors', stored ? stored.multiVectors : checkMultiVectorsOption(s.multiVectors));
}

/**
 * Records that an existing index stores multi-vectors in `format` from now on (inside `db`'s open
 * transaction, under the advisory lock). An index that stored none (`false`, or a version-1 table)
 * is upgraded: its older rows keep no vectors and are encoded when reranked. An index that already
 * stores another format is refused: one table keeps one format.
 */
export async function recordMultiVectors(db: Queryable, n: TableNames, format: Exclude<MultiVectorStorage, false>): Promise<void> {
  await lockIndex(db, n);
  const stored = await readSettings(db, n);
  if (!stored) throw new BgeM3Error('MISSING_FILE', `The index table ${n.display} disappeared while it was being opened.`);
  if (stored.multiVectors === format) return;
  if (stored.multiVectors !== false) throw multiVectorsMismatch(n, stored.multiVectors, format);
  await putMeta(db, n, 'multi_vectors', format);
}

/** The error for opening an index that stores one multi-vector format with another. */
export function multiVectorsMismatch(n: TableNames, stored: MultiVectorStorage, requested: MultiVectorStorage): BgeM3Error {
  return new BgeM3Error(
    'INVALID_ARGUMENT',
    `The index table ${n.display} stores multi-vectors as ${JSON.stringify(stored)}, but it was opened with multiVectors: ${JSON.stringify(requested)}; open it with multiVectors: ${JSON.stringify(stored)} (or leave the option out), or build a new table for ${JSON.stringify(requested)}.`,
  );
}
