/**
 * Where `index` writes and `search` reads (`--db`): a folder (a `MemoryHybridIndex` saved there, and
 * beside it the manifest `bge-m3-rag-manifest.json`) or a PostgreSQL URL (a `PgHybridIndex` table;
 * the manifest is the chunks' own metadata: `source`, `sha256`, `chunking`).
 *
 * The manifest maps each source file to the content hash and chunking settings its chunks were made
 * with, and their ids. A batch is committed as a whole:
 * - folder: chunks added and stale ones deleted in memory, then the index saved atomically
 *   (temporary file + rename, by `MemoryHybridIndex.save`), then the manifest written atomically the
 *   same way. An interruption between the two leaves the index ahead of the manifest; the next run
 *   then re-indexes those files (same chunk ids, so they are replaced, not duplicated).
 * - PostgreSQL: the chunks of the batch are added in one transaction (`PgHybridIndex.add`), then the
 *   chunks they replace are deleted (a second transaction). The manifest is read back from the rows,
 *   so an interruption between the two is seen on the next run (a file with chunks of two versions)
 *   and the stale ones are deleted then.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BgeM3Error } from '../errors.js';
import { writeAtomically } from '../shared/atomic-write.js';
import type { BgeM3Model } from '../model/bge-m3-model.js';
import { HYBRID_INDEX_FILE, MemoryHybridIndex } from '../stores/memory/memory-hybrid-index.js';
import type { MultiVectorStorage } from '../stores/multi-vectors.js';
import type { PgHybridIndex } from '../stores/postgres/pg-hybrid-index.js';
import { tableNames } from '../stores/postgres/schema.js';
import type { HybridAddOptions, HybridDocumentInput, HybridIndex } from '../stores/types.js';
import { CliError } from './common.js';

export const MANIFEST_FILE = 'bge-m3-rag-manifest.json';

/** One version of a source file's chunks. */
export interface ManifestEntry {
  sha256: string;
  chunking: string;
  ids: string[];
}

/** source path -> the versions of its chunks in the index (normally one). */
export type Manifest = Map<string, ManifestEntry[]>;

export interface Batch {
  docs: HybridDocumentInput[];
  /** The new manifest entry of each source indexed in this batch. */
  entries: Map<string, ManifestEntry>;
  /** Sources whose chunks are all gone (removed files). */
  removed: string[];
  /** Chunks to delete (replaced versions, removed files). */
  deleteIds: string[];
}

export interface IndexTarget {
  readonly index: HybridIndex;
  readonly description: string;
  manifest(): Promise<Manifest>;
  commit(batch: Batch, options: HybridAddOptions): Promise<void>;
  close(): Promise<void>;
}

export const isPostgresUrl = (db: string) => /^postgres(ql)?:\/\//i.test(db);

export interface OpenOptions {
  table?: string;
  ann?: boolean;
  /** `search`: the index must exist. */
  mustExist: boolean;
  /** `index --multi-vectors`: how added chunks keep their ColBERT vectors (default: the index's setting). */
  multiVectors?: MultiVectorStorage;
}

export async function openTarget(db: string, model: BgeM3Model, options: OpenOptions): Promise<IndexTarget> {
  return isPostgresUrl(db) ? PgTarget.open(db, model, options) : MemoryTarget.open(db, model, options);
}

class MemoryTarget implements IndexTarget {
  private constructor(
    readonly index: MemoryHybridIndex,
    private readonly dir: string,
    private files: Record<string, ManifestEntry>,
  ) {}

  get description(): string {
    return this.dir;
  }

  static async open(dir: string, model: BgeM3Model, options: OpenOptions): Promise<MemoryTarget> {
    const abs = resolve(dir);
    const exists = existsSync(join(abs, HYBRID_INDEX_FILE));
    if (!exists && options.mustExist) {
      throw new CliError(`No index in ${dir} (no ${HYBRID_INDEX_FILE} there). Build one first: bge-m3-rag index <files or folders> --db ${dir}`);
    }
    const multiVectors = options.multiVectors === undefined ? {} : { multiVectors: options.multiVectors };
    const index = exists ? await MemoryHybridIndex.load(abs, model, { index: multiVectors }) : new MemoryHybridIndex({ model, ...multiVectors });
    let files: Record<string, ManifestEntry> = {};
    const manifestPath = join(abs, MANIFEST_FILE);
    if (existsSync(manifestPath)) {
      try {
        const parsed = JSON.parse(await readFile(manifestPath, 'utf8')) as { version: number; files: Record<string, ManifestEntry> };
        if (parsed.version !== 1 || typeof parsed.files !== 'object') throw new Error(`unknown manifest version ${parsed.version}`);
        files = parsed.files;
      } catch (e) {
        throw new CliError(`The manifest ${manifestPath} is unreadable (${(e as Error).message}). Delete it to re-index everything (chunks keep their ids, so they are replaced, not duplicated).`);
      }
    }
    return new MemoryTarget(index, abs, files);
  }

  async manifest(): Promise<Manifest> {
    return new Map(Object.entries(this.files).map(([source, entry]) => [source, [entry]]));
  }

  async commit(batch: Batch, options: HybridAddOptions): Promise<void> {
    // All or nothing in memory (an abort during encoding adds nothing), then two atomic writes.
    await this.index.add(batch.docs, options);
    await this.index.delete(batch.deleteIds);
    const files = { ...this.files };
    for (const source of batch.removed) delete files[source];
    for (const [source, entry] of batch.entries) files[source] = entry;
    await mkdir(this.dir, { recursive: true });
    await this.index.save(this.dir);
    await writeAtomically(join(this.dir, MANIFEST_FILE), (fh) => fh.writeFile(`${JSON.stringify({ version: 1, files }, null, 1)}\n`));
    this.files = files;
  }

  async close(): Promise<void> {
    // Closing read descriptors cannot lose data; an error here must not hide the command's own.
    await this.index.close().catch(() => {});
  }
}

interface PgPool {
  query(text: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  on(event: 'error', listener: (e: Error) => void): unknown;
  end(): Promise<void>;
}

class PgTarget implements IndexTarget {
  private constructor(
    readonly index: PgHybridIndex,
    private readonly pool: PgPool,
    private readonly table: string,
    readonly description: string,
  ) {}

  static async open(url: string, model: BgeM3Model, options: OpenOptions): Promise<PgTarget> {
    let pg: { default?: { Pool: new (o: object) => PgPool }; Pool?: new (o: object) => PgPool };
    try {
      pg = (await import('pg')) as typeof pg;
    } catch {
      throw new CliError('A PostgreSQL --db needs the optional package pg: npm install pg');
    }
    const { PgHybridIndex } = await import('../stores/postgres/pg-hybrid-index.js');
    const Pool = pg.Pool ?? pg.default!.Pool;
    const pool = new Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 10_000 });
    pool.on('error', () => {});
    const table = options.table ?? 'bge_m3_documents';
    const safe = redact(url);
    try {
      const names = tableNames(table);
      try {
        await pool.query('SELECT 1');
      } catch (e) {
        throw new CliError(`Cannot connect to the database ${safe}: ${(e as Error).message || (e as { code?: string }).code}. Is the server running and the URL right?`);
      }
      if (options.mustExist) {
        const [row] = (await pool.query(`SELECT to_regclass($1) AS t`, [names.table])).rows;
        if (!row?.t) throw new CliError(`No index table ${table} in ${safe}. Build one first: bge-m3-rag index <files or folders> --db <url>`);
      }
      const index = await PgHybridIndex.open({ client: pool, model, table, ann: options.ann ?? true, multiVectors: options.multiVectors });
      return new PgTarget(index, pool, names.table, `${safe} (table ${table})`);
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
  }

  async manifest(): Promise<Manifest> {
    const { rows } = await this.pool.query(
      `SELECT metadata->>'source' AS source, metadata->>'sha256' AS sha256, metadata->>'chunking' AS chunking, array_agg(id ORDER BY id) AS ids
         FROM ${this.table} WHERE metadata ? 'source' AND metadata ? 'sha256' GROUP BY 1, 2, 3`,
    );
    const manifest: Manifest = new Map();
    for (const r of rows) {
      const list = manifest.get(r.source as string) ?? [];
      list.push({ sha256: r.sha256 as string, chunking: (r.chunking as string) ?? '', ids: r.ids as string[] });
      manifest.set(r.source as string, list);
    }
    return manifest;
  }

  async commit(batch: Batch, options: HybridAddOptions): Promise<void> {
    if (batch.docs.length > 0) await this.index.add(batch.docs, options);
    if (batch.deleteIds.length > 0) await this.index.delete(batch.deleteIds);
  }

  async close(): Promise<void> {
    await this.index.close().catch(() => {});
    await this.pool.end().catch(() => {});
  }
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the PostgreSQL URL';
  }
}

export function isAbort(e: unknown): boolean {
  return (e as Error)?.name === 'AbortError' || (e instanceof BgeM3Error && /abort/i.test(e.message));
}
