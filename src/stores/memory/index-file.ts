/**
 * The on-disk format of a saved hybrid index: one file, so that replacing it is one atomic rename.
 *
 * ```
 * 0   8 bytes   magic "BGEM3HYB"
 * 8   u32 LE    format version (1)
 * 12  u32 LE    header length H
 * 16  H bytes   header, UTF-8 JSON: { format, version, dim, rows, model, settings, sections: [{ name, byteLength }] }
 *     …         zero padding to a multiple of 8
 *     sections  in header order, each followed by zero padding to a multiple of 8
 *     32 bytes  SHA-256 of every byte before it
 * ```
 *
 * Writing goes to a temporary file `.<name>.<host>.<pid>.<random>.tmp` in the same directory
 * (`<host>` a short hash of this host and PID namespace; see `shared/atomic-write.ts`), is fsynced, then
 * renamed over the target and the directory fsynced: a crash, a full disk or an abort leaves the
 * previous file as it was. A process killed mid-save leaves its temporary file behind; the next
 * save or load of that file removes such leftovers whose `<host>` is this host's and whose
 * `<pid>` is no live process (never another host's, a live writer's or this process's own).
 *
 * Reading refuses anything but a regular file, then checks the magic, the version, the size the
 * header implies and the checksum (a first streaming pass) before any header value is trusted, then
 * reads each section straight into the array that will hold it (no second in-memory copy of a
 * large index), or streams it in chunks to a consumer (so no section needs one Buffer or string of
 * its size). The file stays open between the passes, so a concurrent save (which renames a new
 * file into place) cannot mix two versions.
 */
import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { BgeM3Error } from '../../errors.js';
import { removeStaleTempFiles, writeAtomically } from '../../shared/atomic-write.js';
import type { HybridProgress } from '../types.js';

export const INDEX_MAGIC = 'BGEM3HYB';
export const INDEX_FORMAT_VERSION = 1;
const PRELUDE_BYTES = 16;
const CHECKSUM_BYTES = 32;
const MAX_HEADER_BYTES = 16 << 20;
const CHUNK_BYTES = 8 << 20;

export interface SectionInfo {
  name: string;
  byteLength: number;
}

export interface IndexFileHeader {
  format: string;
  version: number;
  sections: SectionInfo[];
  [key: string]: unknown;
}

/** A section to write: its length and its bytes, produced in chunks (no need to concatenate). */
export interface SectionWriter extends SectionInfo {
  chunks: () => Iterable<Uint8Array>;
}

/**
 * Receives a section's bytes in order, in chunks of at most 8 MiB. A chunk is a view over a reused
 * buffer, valid only during the call (consume or copy it). `end` follows the last chunk; either may
 * throw to refuse the contents.
 */
export interface SectionSink {
  write(chunk: Buffer): void;
  end(): void;
}

export interface FileIoOptions {
  onProgress?: (progress: HybridProgress) => void;
  signal?: AbortSignal;
}

function pad8(n: number): number {
  return (8 - (n % 8)) % 8;
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE') {
    throw new BgeM3Error('INVALID_ARGUMENT', 'Saved hybrid indexes store little-endian numbers; this machine is big-endian, which is not supported.');
  }
}

/** Writes `header` + `sections` to `path` atomically (temp file, fsync, rename). */
export async function writeIndexFile(path: string, header: Omit<IndexFileHeader, 'sections'>, sections: SectionWriter[], options: FileIoOptions = {}): Promise<void> {
  assertLittleEndian();
  const fullHeader: IndexFileHeader = { ...header, sections: sections.map(({ name, byteLength }) => ({ name, byteLength })) } as IndexFileHeader;
  const headerBytes = Buffer.from(JSON.stringify(fullHeader), 'utf8');
  const prelude = Buffer.alloc(PRELUDE_BYTES);
  prelude.write(INDEX_MAGIC, 0, 'ascii');
  prelude.writeUInt32LE(INDEX_FORMAT_VERSION, 8);
  prelude.writeUInt32LE(headerBytes.length, 12);
  const total = expectedFileSize(headerBytes.length, fullHeader.sections);

  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) {
    throw new BgeM3Error('INVALID_ARGUMENT', `Cannot save the index to ${path}: that path is a directory. Remove it or save to another directory.`);
  }
  const hash = createHash('sha256');
  await writeAtomically(path, async (fh) => {
    let written = 0;
    const writeAll = async (bytes: Uint8Array) => {
      for (let off = 0; off < bytes.length; ) off += (await fh.write(bytes, off, bytes.length - off)).bytesWritten;
    };
    // Small pieces (a row between tombstones, a document) are gathered into one buffer: one write
    // call per 8 MiB, not per piece. Pieces as large as the buffer are written from their source.
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, total));
    let buffered = 0;
    const flush = async () => {
      await writeAll(buffer.subarray(0, buffered));
      buffered = 0;
    };
    const write = async (bytes: Uint8Array) => {
      options.signal?.throwIfAborted();
      hash.update(bytes);
      if (bytes.length >= buffer.length) {
        await flush();
        await writeAll(bytes);
      } else {
        if (buffered + bytes.length > buffer.length) await flush();
        buffer.set(bytes, buffered);
        buffered += bytes.length;
      }
      written += bytes.length;
      options.onProgress?.({ phase: 'save', done: written, total });
    };
    await write(prelude);
    await write(headerBytes);
    await write(new Uint8Array(pad8(headerBytes.length)));
    for (const section of sections) {
      let n = 0;
      for (const chunk of section.chunks()) {
        // Large chunks are split so progress and abort stay responsive.
        for (let off = 0; off < chunk.length; off += CHUNK_BYTES) {
          const part = chunk.subarray(off, Math.min(chunk.length, off + CHUNK_BYTES));
          await write(part);
          n += part.length;
        }
      }
      if (n !== section.byteLength) throw new Error(`internal: section ${section.name} wrote ${n} bytes, declared ${section.byteLength}`);
      await write(new Uint8Array(pad8(n)));
    }
    options.signal?.throwIfAborted();
    await flush();
    await writeAll(hash.digest());
  });
}

function expectedFileSize(headerLength: number, sections: SectionInfo[]): number {
  let size = PRELUDE_BYTES + headerLength + pad8(headerLength);
  for (const s of sections) size += s.byteLength + pad8(s.byteLength);
  return size + CHECKSUM_BYTES;
}

/**
 * Reads and verifies an index file. `allocate(header)` is called once the header is known and
 * returns, per section name, the bytes to fill (a view over the final typed array) or a
 * {@link SectionSink} to stream it to; sections it names no target for are skipped. It may throw
 * to refuse a header. Nothing returned is valid unless this resolves.
 */
export async function readIndexFile(
  path: string,
  allocate: (header: IndexFileHeader) => Record<string, Uint8Array | SectionSink>,
  options: FileIoOptions = {},
): Promise<IndexFileHeader> {
  assertLittleEndian();
  const corrupt = (what: string) =>
    new BgeM3Error('CORRUPT_FILE', `${path} is not a usable saved hybrid index: ${what}. The file is corrupt or truncated; restore it from a backup or rebuild the index and save it again.`);
  const cannotOpen = (cause: unknown) => {
    const code = (cause as NodeJS.ErrnoException).code;
    return new BgeM3Error(code === 'ENOENT' ? 'MISSING_FILE' : 'CORRUPT_FILE', `Cannot open the saved index ${path}: ${(cause as Error).message}. Save an index there with index.save(dir) first.`, { cause });
  };
  await removeStaleTempFiles(path);
  // Checked before opening: opening a FIFO would block, and a directory opens fine on Linux.
  const kind = await stat(path).catch((cause: unknown) => {
    throw cannotOpen(cause);
  });
  if (!kind.isFile()) throw corrupt(kind.isDirectory() ? 'it is a directory, not a file written by MemoryHybridIndex.save' : 'it is not a regular file');
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (cause) {
    throw cannotOpen(cause);
  }
  try {
    const info = await fh.stat();
    if (!info.isFile()) throw corrupt('it is not a regular file');
    const size = info.size;
    if (size < PRELUDE_BYTES + CHECKSUM_BYTES) throw corrupt(`it has only ${size} bytes`);
    const prelude = Buffer.alloc(PRELUDE_BYTES);
    await readExactly(fh, prelude, 0);
    if (prelude.toString('ascii', 0, 8) !== INDEX_MAGIC) throw corrupt('it does not start with the BGEM3HYB signature (not a file written by MemoryHybridIndex.save)');
    const version = prelude.readUInt32LE(8);
    if (version !== INDEX_FORMAT_VERSION) {
      throw new BgeM3Error(
        'INCOMPATIBLE_INDEX',
        `${path} uses index format version ${version}; this version of bge-m3-rag reads version ${INDEX_FORMAT_VERSION}. ${version > INDEX_FORMAT_VERSION ? 'Upgrade bge-m3-rag' : 'Rebuild the index'} to use it.`,
      );
    }
    const headerLength = prelude.readUInt32LE(12);
    if (headerLength === 0 || headerLength > MAX_HEADER_BYTES || PRELUDE_BYTES + headerLength + CHECKSUM_BYTES > size) throw corrupt(`its header length (${headerLength}) does not fit the file`);
    const headerBytes = Buffer.alloc(headerLength);
    await readExactly(fh, headerBytes, PRELUDE_BYTES);
    let header: IndexFileHeader;
    try {
      header = JSON.parse(headerBytes.toString('utf8'));
    } catch {
      throw corrupt('its header is not valid JSON');
    }
    if (
      !header ||
      typeof header !== 'object' ||
      !Array.isArray(header.sections) ||
      !header.sections.every((s) => s !== null && typeof s === 'object' && typeof s.name === 'string' && Number.isSafeInteger(s.byteLength) && s.byteLength >= 0)
    ) {
      throw corrupt('its header has no valid section list');
    }
    if (new Set(header.sections.map((s) => s.name)).size !== header.sections.length) throw corrupt('its header names a section twice');
    const expected = expectedFileSize(headerLength, header.sections);
    if (expected !== size) throw corrupt(`its header describes ${expected} bytes but the file has ${size}`);

    const hash = createHash('sha256');
    hash.update(prelude);
    hash.update(headerBytes);
    hash.update(new Uint8Array(pad8(headerLength)));
    // Verify the whole file before allocating section memory from header values: a flipped bit in
    // the header must read as "corrupt", not as "incompatible" or as a huge allocation.
    let pos = PRELUDE_BYTES + headerLength + pad8(headerLength);
    const bodyStart = pos;
    const scratch = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(size, 1)));
    const total = size;
    const checksumAt = size - CHECKSUM_BYTES;
    for (let off = bodyStart; off < checksumAt; ) {
      options.signal?.throwIfAborted();
      const n = Math.min(scratch.length, checksumAt - off);
      await readExactly(fh, scratch.subarray(0, n), off);
      hash.update(scratch.subarray(0, n));
      off += n;
      options.onProgress?.({ phase: 'load', done: off, total: total * 2 });
    }
    const stored = Buffer.alloc(CHECKSUM_BYTES);
    await readExactly(fh, stored, checksumAt);
    if (!hash.digest().equals(stored)) throw corrupt('its SHA-256 checksum does not match its contents');

    const targets = allocate(header);
    for (const section of header.sections) {
      const target = Object.hasOwn(targets, section.name) ? targets[section.name] : undefined;
      if (target instanceof Uint8Array) {
        if (target.byteLength !== section.byteLength) {
          throw new Error(`internal: section ${section.name} has ${section.byteLength} bytes but ${target.byteLength} were allocated`);
        }
        for (let off = 0; off < section.byteLength; ) {
          options.signal?.throwIfAborted();
          const n = Math.min(CHUNK_BYTES, section.byteLength - off);
          await readExactly(fh, target.subarray(off, off + n), pos + off);
          off += n;
          options.onProgress?.({ phase: 'load', done: total + pos + off, total: total * 2 });
        }
      } else if (target) {
        for (let off = 0; off < section.byteLength; ) {
          options.signal?.throwIfAborted();
          const n = Math.min(scratch.length, section.byteLength - off);
          await readExactly(fh, scratch.subarray(0, n), pos + off);
          target.write(scratch.subarray(0, n));
          off += n;
          options.onProgress?.({ phase: 'load', done: total + pos + off, total: total * 2 });
        }
        target.end();
      }
      pos += section.byteLength + pad8(section.byteLength);
    }
    options.onProgress?.({ phase: 'load', done: total * 2, total: total * 2 });
    return header;
  } finally {
    await fh.close();
  }
}

async function readExactly(fh: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < target.length) {
    const { bytesRead } = await fh.read(target, off, target.length - off, position + off);
    if (bytesRead === 0) throw new BgeM3Error('CORRUPT_FILE', `Unexpected end of file at byte ${position + off}: the saved index is truncated.`);
    off += bytesRead;
  }
}
