/**
 * One small interface over the three clients `PgHybridIndex` accepts: a `pg.Pool`, a `pg.Client`
 * (both a real PostgreSQL server) and `PGlite` (PostgreSQL compiled to WebAssembly, in process).
 * `pg` and PGlite are optional peers, imported only when an index opens one itself.
 */
import { BgeM3Error } from '../../errors.js';

/** Runs parameterized SQL and returns the rows. */
export interface Queryable {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface SqlClient extends Queryable {
  /** `'pg'` for a server (pool or client), `'pglite'` in process. */
  readonly kind: 'pg' | 'pglite';
  /**
   * Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK when it throws) on one connection.
   * `readOnly` snapshots use REPEATABLE READ, so every query of a search sees the same data.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: { readOnly?: boolean }): Promise<T>;
  /** Closes what this package opened (a pool from a connection string, an in-process PGlite); a client you passed stays open. */
  close(): Promise<void>;
}

/** The shapes of the peers' objects that this module uses (kept structural: no import of the peers' types). */
interface PgQueryResult {
  rows: Record<string, unknown>[];
}
interface PgPoolLike {
  query(text: string, params?: unknown[]): Promise<PgQueryResult>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  connect(): Promise<PgPoolClientLike>;
  end(): Promise<void>;
  totalCount: number;
}
interface PgPoolClientLike {
  query(text: string, params?: unknown[]): Promise<PgQueryResult>;
  release(error?: unknown): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}
interface PgClientLike {
  query(text: string, params?: unknown[]): Promise<PgQueryResult>;
  end(): Promise<void>;
}
interface PGliteLike {
  query(text: string, params?: unknown[]): Promise<PgQueryResult>;
  transaction<T>(fn: (tx: { query(text: string, params?: unknown[]): Promise<PgQueryResult> }) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  waitReady: Promise<void>;
}

const isPGlite = (c: unknown): c is PGliteLike => typeof c === 'object' && c !== null && 'waitReady' in c && typeof (c as PGliteLike).transaction === 'function';
const isPool = (c: unknown): c is PgPoolLike => typeof c === 'object' && c !== null && typeof (c as PgPoolLike).connect === 'function' && 'totalCount' in c;
const isClient = (c: unknown): c is PgClientLike => typeof c === 'object' && c !== null && typeof (c as PgClientLike).query === 'function';

function rowsOf<T>(result: PgQueryResult): T[] {
  return result.rows as T[];
}

/** Wraps a client you own (`pg.Pool`, `pg.Client` or `PGlite`); `close()` leaves it open. */
export function wrapClient(client: unknown, owned = false): SqlClient {
  if (isPGlite(client)) return pgliteClient(client, owned);
  if (isPool(client)) return poolClient(client, owned);
  if (isClient(client)) return singleClient(client, owned);
  throw new BgeM3Error('INVALID_ARGUMENT', 'PgHybridIndex.open: client must be a pg.Pool, a pg.Client or a PGlite instance.');
}

function pgliteClient(db: PGliteLike, owned: boolean): SqlClient {
  return {
    kind: 'pglite',
    query: async <T>(text: string, params?: unknown[]) => rowsOf<T>(await db.query(text, params)),
    // One connection: PGlite runs transactions one after another.
    transaction: (fn) => db.transaction((tx) => fn({ query: async <T>(text: string, params?: unknown[]) => rowsOf<T>(await tx.query(text, params)) })),
    close: async () => {
      if (owned) await db.close();
    },
  };
}

function poolClient(pool: PgPoolLike, owned: boolean): SqlClient {
  return {
    kind: 'pg',
    query: async <T>(text: string, params?: unknown[]) => rowsOf<T>(await pool.query(text, params)),
    transaction: async (fn, options) => {
      const conn = await pool.connect();
      let broken: unknown;
      // A checked-out connection that the server drops emits 'error' besides failing its query;
      // unheard, that event would end the process. The query's own rejection reports it.
      const onError = (e: Error) => (broken = e);
      conn.on('error', onError);
      try {
        await conn.query(options?.readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN');
        const out = await fn({ query: async <T>(text: string, params?: unknown[]) => rowsOf<T>(await conn.query(text, params)) });
        await conn.query('COMMIT');
        return out;
      } catch (e) {
        await conn.query('ROLLBACK').catch((rollbackError: unknown) => (broken = rollbackError));
        throw e;
      } finally {
        // A connection that failed or could not even roll back is dropped from the pool, not reused.
        conn.off('error', onError);
        conn.release(broken);
      }
    },
    close: async () => {
      if (owned) await pool.end();
    },
  };
}

function singleClient(client: PgClientLike, owned: boolean): SqlClient {
  // One connection shared by every call: queries and transactions take turns, so a query never
  // runs inside another call's transaction.
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const run = turn.then(work, work);
    turn = run.catch(() => {});
    return run;
  };
  const query = async <T>(text: string, params?: unknown[]) => rowsOf<T>(await client.query(text, params));
  return {
    kind: 'pg',
    query: (text, params) => exclusive(() => query(text, params)),
    transaction: (fn, options) =>
      exclusive(async () => {
        await client.query(options?.readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN');
        try {
          const out = await fn({ query });
          await client.query('COMMIT');
          return out;
        } catch (e) {
          await client.query('ROLLBACK').catch(() => {});
          throw e;
        }
      }),
    close: async () => {
      if (owned) await client.end();
    },
  };
}

/** Loads an optional peer, or says how to install it. */
async function peer<T>(name: string, why: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (cause) {
    throw new BgeM3Error('MISSING_FILE', `${why} needs the optional package ${name}: npm install ${name}`, { cause });
  }
}

/** A pool on `connectionString` (owned: `close()` ends it). */
export async function connectServer(connectionString: string): Promise<SqlClient> {
  const pg = await peer<{ default?: { Pool: new (o: object) => PgPoolLike }; Pool?: new (o: object) => PgPoolLike }>('pg', 'PgHybridIndex with a connectionString');
  const Pool = pg.Pool ?? pg.default!.Pool;
  const pool = new Pool({ connectionString, max: 4 });
  // An idle connection the server closes (restart, failover, pg_terminate_backend) must not crash
  // the process: the pool drops it and the next query opens a new one.
  pool.on('error', () => {});
  return poolClient(pool, true);
}

/** PGlite with pgvector, persisted in `dataDir` (in memory when undefined); owned. */
export async function openPGlite(dataDir: string | undefined): Promise<SqlClient> {
  const { PGlite } = await peer<{ PGlite: new (dataDir?: string, options?: object) => PGliteLike }>('@electric-sql/pglite', 'PgHybridIndex in process (no connectionString or client)');
  const { vector } = await peer<{ vector: unknown }>('@electric-sql/pglite-pgvector', 'PgHybridIndex in process (no connectionString or client)');
  const db = new PGlite(dataDir, { extensions: { vector } });
  await db.waitReady;
  return pgliteClient(db, true);
}
