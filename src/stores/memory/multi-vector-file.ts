/**
 * Where a `MemoryHybridIndex` keeps its documents' stored multi-vectors (`multiVectors: 'fp16' |
 * 'int8'`): on disk, read on demand for the rerank candidates, never held in RAM.
 *
 * - Rows added since the last load live in a spill file in the OS temp folder, unlinked as soon as
 *   it is open (POSIX), so it vanishes with the process; appends are synchronous so that `add` and
 *   `addEncoded` still publish their rows in one synchronous step.
 * - `save(dir)` copies the live rows' blobs, in row order, into a side file beside the index file,
 *   `hybrid-index.<16 hex>.colbert`, written atomically (temp file, fsync, rename) before the index
 *   file that names it is. A new name per save means an interrupted save never leaves an index
 *   file pointing at another save's vectors; side files no index file names are removed after the
 *   next save commits.
 * - Each blob's offset, length and CRC-32 are in the index file (section `multiVectorRefs`); a
 *   read checks the length read and the CRC, so a truncated or damaged side file is a
 *   `CORRUPT_FILE` error naming the file and the document.
 *
 * Hand-written on `node:fs` (no library covers an append-only blob file with positional reads).
 */
import { closeSync, fstatSync, openSync, read, readSync, unlinkSync, writeSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { BgeM3Error } from '../../errors.js';
import { writeAtomically } from '../../shared/atomic-write.js';

const readAt = promisify(read);

/** File signature and version at the start of a side file (then blobs). */
const MAGIC = Buffer.from('BGEM3MVF\u0001\u0000\u0000\u0000', 'latin1');
/** Numbers per row in the index file's `multiVectorRefs` section: offset, length, CRC-32 (float64 each). */
export const REF_FIELDS = 3;
const SIDE_FILE = /^hybrid-index\.[0-9a-f]{16}\.colbert$/;
/** The name temporary side files are derived from (so stale ones of killed saves are found and removed). */
const SIDE_FILE_TEMP_BASE = 'hybrid-index.colbert';
const COPY_BYTES = 8 << 20;

/** One document's stored blob. */
export interface MultiVectorRef {
  readonly file: MultiVectorFile;
  readonly offset: number;
  readonly length: number;
  readonly crc: number;
}

/** An open spill or side file. */
export class MultiVectorFile {
  private fd: number | undefined;
  private end: number;

  private constructor(
    /** Named in errors (the spill file's path no longer exists once unlinked). */
    readonly path: string,
    fd: number,
    end: number,
    /** A spill file: removed on close where it could not be unlinked at once. */
    private readonly temporary: boolean,
  ) {
    this.fd = fd;
    this.end = end;
  }

  /** A fresh spill file for rows added in this process. */
  static spill(): MultiVectorFile {
    const path = join(tmpdir(), `bge-m3-rag-multivectors-${process.pid}-${randomBytes(6).toString('hex')}.spill`);
    const fd = openSync(path, 'wx+', 0o600);
    try {
      unlinkSync(path); // POSIX: the file lives while the descriptor is open
    } catch {
      /* Windows: an open file cannot be unlinked; it is removed by close() */
    }
    writeSync(fd, MAGIC);
    return new MultiVectorFile(path, fd, MAGIC.length, true);
  }

  /** Opens a side file written by {@link writeSideFile}, checking its signature and size. */
  static openSaved(dir: string, name: unknown, bytes: unknown, bad: (what: string) => BgeM3Error): MultiVectorFile {
    if (typeof name !== 'string' || !SIDE_FILE.test(name)) throw bad(`its multi-vector file name ${JSON.stringify(name)} is not one save writes`);
    if (!Number.isSafeInteger(bytes) || (bytes as number) < MAGIC.length) throw bad(`its multi-vector file size ${JSON.stringify(bytes)} is invalid`);
    const path = join(dir, name);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (cause) {
      throw new BgeM3Error('CORRUPT_FILE', `The index's multi-vector file ${path} cannot be opened (${(cause as Error).message}); it is saved beside the index file by save(): copy both, or rebuild the index.`, { cause });
    }
    const file = new MultiVectorFile(path, fd, bytes as number, false);
    try {
      const info = fstatSync(fd);
      if (!info.isFile()) throw file.corrupt('it is not a regular file');
      if (info.size !== bytes) throw file.corrupt(`it has ${info.size} bytes, the index file expects ${bytes} (truncated or replaced)`);
      const head = Buffer.alloc(MAGIC.length);
      readFully(fd, head, 0);
      if (!head.equals(MAGIC)) throw file.corrupt('it does not start with the BGEM3MVF signature');
    } catch (e) {
      file.close();
      throw e;
    }
    return file;
  }

  /** Bytes in the file. */
  get size(): number {
    return this.end;
  }

  /** Appends a blob (synchronously) and returns where it is. */
  append(blob: Uint8Array): MultiVectorRef {
    const fd = this.open();
    const offset = this.end;
    for (let done = 0; done < blob.length; ) done += writeSync(fd, blob, done, blob.length - done, offset + done);
    this.end += blob.length;
    return { file: this, offset, length: blob.length, crc: crc32(blob) };
  }

  /** A ref into this (saved) file, checked against its size. */
  ref(offset: number, length: number, crc: number, row: number, bad: (what: string) => BgeM3Error): MultiVectorRef {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < MAGIC.length || length < 1 || offset + length > this.end || !Number.isInteger(crc) || crc < 0 || crc > 0xffffffff) {
      throw bad(`the multi-vector entry of document ${row} (offset ${offset}, ${length} bytes) lies outside ${this.path}`);
    }
    return { file: this, offset, length, crc };
  }

  /** The raw blob at `ref`, length and CRC-32 checked. `doc` names the document in errors. */
  async readBlob(ref: MultiVectorRef, doc: string): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(ref.length);
    let done = 0;
    try {
      while (done < ref.length) {
        const { bytesRead } = await readAt(this.open(), buf, done, ref.length - done, ref.offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (cause) {
      if (cause instanceof BgeM3Error) throw cause;
      throw new BgeM3Error('CORRUPT_FILE', `Cannot read the stored multi-vectors of ${doc} from ${this.path}: ${(cause as Error).message}.`, { cause });
    }
    if (done < ref.length) throw this.corrupt(`it ends before the multi-vectors of ${doc} (truncated)`);
    if (crc32(buf) !== ref.crc) throw this.corrupt(`the multi-vectors of ${doc} fail their CRC-32 check`);
    return buf;
  }

  /** Closes the descriptor (idempotent). Reads after this fail with a clear error. */
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    if (!this.temporary) return;
    try {
      unlinkSync(this.path);
    } catch {
      /* already unlinked when it was created (POSIX) */
    }
  }

  private open(): number {
    if (this.fd === undefined) throw new BgeM3Error('DISPOSED', `The multi-vector file ${this.path} was closed (the index was closed); load the index again.`);
    return this.fd;
  }

  private corrupt(what: string): BgeM3Error {
    return new BgeM3Error('CORRUPT_FILE', `${this.path}: ${what}. The index's multi-vector file is damaged; restore it with its index file from a backup, or rebuild the index.`);
  }
}

/**
 * Writes the blobs of `refs` (in order; `undefined` for rows without stored vectors) into a new
 * side file in `dir`, atomically. Returns its name, size and the refs section (offset, length,
 * CRC-32 per row; length 0 for none). Every blob copied is CRC-checked on the way.
 */
export async function writeSideFile(
  dir: string,
  refs: readonly (MultiVectorRef | undefined)[],
  docName: (i: number) => string,
  signal?: AbortSignal,
): Promise<{ name: string; bytes: number; section: Float64Array }> {
  const name = `hybrid-index.${randomBytes(8).toString('hex')}.colbert`;
  const section = new Float64Array(refs.length * REF_FIELDS);
  let bytes = 0;
  await writeAtomically(
    join(dir, name),
    async (fh) => {
      const buffer = Buffer.allocUnsafe(COPY_BYTES);
      let buffered = 0;
      const flush = async () => {
        for (let off = 0; off < buffered; ) off += (await fh.write(buffer, off, buffered - off)).bytesWritten;
        buffered = 0;
      };
      const put = async (bytesIn: Uint8Array) => {
        if (buffered + bytesIn.length > buffer.length) await flush();
        if (bytesIn.length > buffer.length) {
          for (let off = 0; off < bytesIn.length; ) off += (await fh.write(bytesIn, off, bytesIn.length - off)).bytesWritten;
        } else {
          buffer.set(bytesIn, buffered);
          buffered += bytesIn.length;
        }
        bytes += bytesIn.length;
      };
      await put(MAGIC);
      for (let i = 0; i < refs.length; i++) {
        const ref = refs[i];
        if (!ref) continue;
        signal?.throwIfAborted();
        const blob = await ref.file.readBlob(ref, docName(i));
        section.set([bytes, ref.length, ref.crc], i * REF_FIELDS);
        await put(blob);
      }
      await flush();
    },
    { tempBase: join(dir, SIDE_FILE_TEMP_BASE) },
  );
  return { name, bytes, section };
}

/**
 * Removes the side files in `dir` other than `keep` (after a save committed the index file naming
 * `keep`), or only `only` (a failed save's own side file).
 */
export async function removeOtherSideFiles(dir: string, keep: string | undefined, only?: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  // Readers that have a removed file open keep reading it (POSIX keeps the data while it is open).
  await Promise.all(names.filter((n) => SIDE_FILE.test(n) && n !== keep && (only === undefined || n === only)).map((n) => rm(join(dir, n), { force: true }).catch(() => {})));
}

function readFully(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new BgeM3Error('CORRUPT_FILE', 'unexpected end of file');
    done += n;
  }
}
