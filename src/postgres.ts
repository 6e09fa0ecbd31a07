/**
 * bge-m3-rag/postgres: `PgHybridIndex`, BGE-M3 hybrid retrieval in PostgreSQL + pgvector (a server
 * through `pg`, or PGlite in process). `pg`, `@electric-sql/pglite` and
 * `@electric-sql/pglite-pgvector` are optional peers, loaded only when an index opens a connection
 * itself. Re-exports only.
 */
export { PgHybridIndex, DEFAULT_PG_TABLE, type PgHybridIndexOptions, type PgAnnOptions } from './stores/postgres/pg-hybrid-index.js';
export { SCHEMA_VERSION as PG_SCHEMA_VERSION, SPARSE_INDEX_MAX_NNZ } from './stores/postgres/schema.js';
export type { MetadataFilter } from './stores/filter.js';
