/**
 * The tables of one `PgHybridIndex`, their versioned migrations, and the identifiers they use.
 *
 * ```sql
 * <table>       (id text PRIMARY KEY, seq bigint, text, metadata jsonb,
 *                dense halfvec(dim) | vector(dim),  -- candidates: HNSW (halfvec_ip_ops) or exact scan
 *                dense_exact bytea,                  -- the float32 vector, for exact rescoring
 *                sparse sparsevec(vocab),            -- every lexical weight (token id + 1: pgvector is 1-based)
 *                sparse_top sparsevec(vocab))        -- the top 1,000 weights (what sparsevec HNSW accepts)
 * <table>_meta  (key text PRIMARY KEY, value jsonb)  -- schema_version, dim, vocab, dense type, model fingerprint
 * ```
 * `seq` is the insertion order (a re-added id gets a new one, as in `MemoryHybridIndex`): it breaks
 * score ties the same way in both backends.
 */
import { BgeM3Error } from '../../errors.js';
import type { Queryable } from './sql-client.js';

/** The newest schema this package writes; opening a newer one is refused. */
export const SCHEMA_VERSION = 1;
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
  return { schemaVersion: int('schema_version'), dim: int('dim'), vocab: int('vocab'), denseType, fingerprint: m.get('fingerprint') ?? null, maxNorm };
}

/**
 * Creates the index's tables (or upgrades them to {@link SCHEMA_VERSION}) inside `db`'s open
 * transaction, holding an advisory lock so two processes opening at once do not race.
 */
export async function migrate(db: Queryable, n: TableNames, s: SchemaSettings, fingerprint: unknown, stored: StoredSettings | undefined): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`bge-m3-rag:${n.schema ?? 'public'}.${n.bare}`]);
  const from = stored?.schemaVersion ?? 0;
  if (from > SCHEMA_VERSION) {
    throw new BgeM3Error('INCOMPATIBLE_INDEX', `The index table ${n.display} has schema version ${from}, newer than this bge-m3-rag writes (${SCHEMA_VERSION}): upgrade bge-m3-rag.`);
  }
  if (n.schema) await db.query(`CREATE SCHEMA IF NOT EXISTS "${n.schema}"`);
  await db.query(`CREATE TABLE IF NOT EXISTS ${n.meta} (key text PRIMARY KEY, value jsonb NOT NULL)`);
  for (const m of MIGRATIONS) {
    if (m.version <= from) continue;
    for (const sql of m.up(n, stored ? { ...s, dim: stored.dim, vocab: stored.vocab, denseType: stored.denseType } : s)) await db.query(sql);
  }
  const put = (key: string, value: unknown) =>
    db.query(`INSERT INTO ${n.meta} (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, JSON.stringify(value)]);
  await put('schema_version', SCHEMA_VERSION);
  if (!stored) {
    await put('dim', s.dim);
    await put('vocab', s.vocab);
    await put('dense_type', s.denseType);
    await put('fingerprint', fingerprint);
    await put('max_norm', 0);
  }
}
