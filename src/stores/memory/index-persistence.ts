/**
 * Saving and loading a `MemoryHybridIndex` state with the single-file format of `index-file.ts`:
 * which sections hold what, the header fields, and the checks a loaded file must pass before
 * anything is allocated from it or used (format, field types and ranges, consistent sizes, model
 * compatibility, and every row checked by the same functions `addEncoded` uses, document-checks.ts).
 *
 * The docs section is newline-delimited JSON, one `[id, text, metadata]` record per row (JSON
 * escapes newlines, so a record never contains one). It is encoded and decoded in pieces of at most
 * {@link docsChunking}`.maxBytes`: a section of any size (beyond V8's longest string or Buffer), or
 * a record with more UTF-8 bytes than a string can have characters, never passes through one.
 */
import { constants } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import { BgeM3Error } from '../../errors.js';
import { squaredNorm } from '../../scores.js';
import { checkDense, checkDocument, MAX_DENSE_ABS, MAX_DENSE_DIM, MAX_ENCODED_TOKEN_ID } from '../document-checks.js';
import { describeValue as describe } from '../../shared/checks.js';
import { readIndexFile, writeIndexFile, type FileIoOptions, type IndexFileHeader, type SectionSink, type SectionWriter } from './index-file.js';
import { isDeleted, type State, type StoredDocument } from './index-state.js';
import { checkCompatible, parseFingerprint, type ModelFingerprint } from '../model-fingerprint.js';
import { SparsePostings } from './sparse-postings.js';
import { toSparseVector } from '../sparse-vector.js';
import { checkMultiVectorsOption, type MultiVectorStorage } from '../multi-vectors.js';
import { MultiVectorFile, REF_FIELDS, removeOtherSideFiles, writeSideFile, type MultiVectorRef } from './multi-vector-file.js';
import { dirname } from 'node:path';

/**
 * Internal: the largest piece (bytes) the docs section is encoded or decoded through. Tests lower
 * it to run the chunked paths (records spanning pieces, long records sliced) on small indexes;
 * at least 8.
 */
export const docsChunking = { maxBytes: 8 << 20 };

/** File name inside the directory given to `save`/`load`. */
export const HYBRID_INDEX_FILE = 'hybrid-index.bgem3';
const FORMAT_NAME = 'bge-m3-rag/memory-hybrid-index';
/** The header's `version` (the same as the file format version: the layout of the sections). */
const HEADER_VERSION = 1;

/** What a saved index records besides its rows. */
export interface SavedMeta {
  dim: number;
  model: ModelFingerprint | null;
  settings: { maxQueryLength?: number; maxPassageLength?: number; multiVectors?: MultiVectorStorage };
}

/**
 * Writes the live rows of `s` (tombstones dropped, rows renumbered in order). The snapshot is taken
 * synchronously before the first write, and rows below `s.count` never change afterwards, so adds
 * and deletes may run while the file is written. Stored multi-vectors go to a new side file first
 * (multi-vector-file.ts), which the index file then names; older side files are removed after.
 */
export async function saveState(path: string, s: State, meta: SavedMeta, options: FileIoOptions): Promise<void> {
  // Everything until writeIndexFile is synchronous: one consistent snapshot.
  const dim = meta.dim;
  const newRow = new Int32Array(s.count);
  const liveRows: number[] = [];
  for (let r = 0; r < s.count; r++) {
    if (isDeleted(s, r)) newRow[r] = -1;
    else newRow[r] = liveRows.push(r) - 1;
  }
  const postings = s.postings.export(s.count, newRow);
  const docChunks = encodeDocs(s.docs, liveRows, docsChunking.maxBytes);
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const sections: SectionWriter[] = [
    {
      name: 'dense',
      byteLength: liveRows.length * dim * 4,
      // Runs of consecutive live rows are written straight from the matrix (no copy).
      *chunks() {
        for (let i = 0; i < liveRows.length; ) {
          let j = i + 1;
          while (j < liveRows.length && liveRows[j] === liveRows[j - 1]! + 1) j++;
          yield bytes(s.dense.subarray(liveRows[i]! * dim, (liveRows[j - 1]! + 1) * dim));
          i = j;
        }
      },
    },
    section('postingTokens', bytes(postings.tokens)),
    section('postingLengths', bytes(postings.lengths)),
    section('postingRows', bytes(postings.rows)),
    section('postingWeights', bytes(postings.weights)),
    { name: 'docs', byteLength: docChunks.reduce((n, b) => n + b.length, 0), chunks: () => docChunks },
  ];
  const refs = liveRows.map((r) => s.multiVectors[r]);
  let side: Awaited<ReturnType<typeof writeSideFile>> | undefined;
  if (refs.some((r) => r !== undefined)) {
    side = await writeSideFile(dirname(path), refs, (i) => `document ${JSON.stringify(s.docs[liveRows[i]!]!.id.slice(0, 80))}`, options.signal);
    sections.push(section('multiVectorRefs', bytes(side.section)));
  }
  const header = {
    format: FORMAT_NAME,
    version: HEADER_VERSION,
    dim,
    rows: liveRows.length,
    postings: postings.rows.length,
    model: meta.model,
    settings: meta.settings,
    ...(side ? { multiVectors: { file: side.name, bytes: side.bytes } } : {}),
    createdBy: 'bge-m3-rag',
  };
  try {
    await writeIndexFile(path, header, sections, options);
  } catch (e) {
    // The index file was not replaced: the side file this save wrote is nobody's.
    if (side) await removeOtherSideFiles(dirname(path), undefined, side.name);
    throw e;
  }
  await removeOtherSideFiles(dirname(path), side?.name);
}

/**
 * Reads and verifies a saved index; `current` (the model's fingerprint) or `dim` must match it.
 * Returns a fresh state (no tombstones, exact capacity).
 */
export async function loadState(path: string, current: ModelFingerprint | undefined, dim: number | undefined, options: FileIoOptions): Promise<SavedMeta & { state: State }> {
  let arrays: { dense: Float32Array; tokens: Int32Array; lengths: Int32Array; rows: Int32Array; weights: Float32Array } | undefined;
  let meta: ReturnType<typeof checkHeader> | undefined;
  let docs: DocsDecoder | undefined;
  let refs: Float64Array | undefined;
  await readIndexFile(
    path,
    (header) => {
      meta = checkHeader(header, path);
      checkCompatible(meta, current, dim, path);
      const size = (name: string) => header.sections.find((x) => x.name === name)!.byteLength;
      // Every size was checked against the header and the file's size: nothing here exceeds the file.
      arrays = {
        dense: new Float32Array(size('dense') / 4),
        tokens: new Int32Array(size('postingTokens') / 4),
        lengths: new Int32Array(size('postingLengths') / 4),
        rows: new Int32Array(size('postingRows') / 4),
        weights: new Float32Array(size('postingWeights') / 4),
      };
      docs = new DocsDecoder(meta.rows, path, docsChunking.maxBytes);
      const b = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      return {
        dense: b(arrays.dense),
        postingTokens: b(arrays.tokens),
        postingLengths: b(arrays.lengths),
        postingRows: b(arrays.rows),
        postingWeights: b(arrays.weights),
        docs,
        ...(meta.multiVectors ? { multiVectorRefs: b((refs = new Float64Array(meta.rows * REF_FIELDS))) } : {}),
      };
    },
    options,
  );
  const a = arrays!;
  const m = meta!;
  const bad = corruptError(path);
  const refuse = refusal(bad);
  // The sparse rules of addEncoded (toSparseVector, capped at MAX_ENCODED_TOKEN_ID), before the
  // postings size anything by token id.
  const tokenIds = refuse('a posting list has an invalid token id or length', () => toSparseVector({ indices: a.tokens, values: a.lengths }, 'the posting lists (token id: length)', MAX_ENCODED_TOKEN_ID));
  if (tokenIds.indices.length !== a.tokens.length) throw bad('a posting list is empty');
  checkPostingWeights(a.weights, refuse, bad);
  const postings = SparsePostings.import({ tokens: a.tokens, lengths: a.lengths, rows: a.rows, weights: a.weights }, m.rows, path);
  if (current && postings.maxTokenId >= current.vocabSize) {
    throw new BgeM3Error('INCOMPATIBLE_INDEX', `${path} has postings for token id ${postings.maxTokenId}, beyond this model's vocabulary of ${current.vocabSize}; it was built with another model.`);
  }
  let maxRowNorm = 0;
  for (let r = 0; r < m.rows; r++) {
    const sq = squaredNorm(a.dense, r * m.dim, m.dim);
    // Every |value| is at most the row's norm: a row with a finite norm ≤ MAX_DENSE_ABS passes
    // checkDense, so only the others are checked value by value (and refused or accepted by it).
    if (!(sq <= MAX_DENSE_ABS * MAX_DENSE_ABS)) {
      refuse(`the dense vector of document ${r} is invalid`, () => checkDense(a.dense.subarray(r * m.dim, (r + 1) * m.dim), m.dim, `dense[${r}]`));
    }
    maxRowNorm = Math.max(maxRowNorm, Math.sqrt(sq));
  }
  const multiVectors: (MultiVectorRef | undefined)[] = new Array(m.rows);
  if (m.multiVectors && refs) {
    const file = MultiVectorFile.openSaved(dirname(path), m.multiVectors.file, m.multiVectors.bytes, bad);
    try {
      for (let r = 0; r < m.rows; r++) {
        const [offset, length, crc] = refs.subarray(r * REF_FIELDS, (r + 1) * REF_FIELDS);
        if (length !== 0) multiVectors[r] = file.ref(offset!, length!, crc!, r, bad);
        else if (offset !== 0 || crc !== 0) throw bad(`the multi-vector entry of document ${r} is malformed`);
      }
    } catch (e) {
      file.close();
      throw e;
    }
  }
  const state: State = { count: m.rows, dense: a.dense, docs: docs!.docs, multiVectors, deleted: new Uint8Array(0), deletedCount: 0, postings, maxRowNorm };
  return { dim: m.dim, model: m.model, settings: m.settings, state };
}

function section(name: string, data: Uint8Array): SectionWriter {
  return { name, byteLength: data.byteLength, chunks: () => [data] };
}

function corruptError(path: string): (what: string) => BgeM3Error {
  return (what) => new BgeM3Error('CORRUPT_FILE', `${path}: ${what}; the file was not written by MemoryHybridIndex.save or is damaged. Rebuild the index.`);
}

type Refuse = <T>(what: string, check: () => T) => T;

/** Runs an input check of `add`/`addEncoded` on saved data: its INVALID_ARGUMENT becomes CORRUPT_FILE. */
function refusal(bad: (what: string) => BgeM3Error): Refuse {
  return (what, check) => {
    try {
      return check();
    } catch (e) {
      if (e instanceof BgeM3Error && e.code === 'INVALID_ARGUMENT') throw bad(`${what} (${e.message})`);
      throw e;
    }
  };
}

/** Largest row count: postings store rows as int32. */
const MAX_ROWS = 0x7fffffff;
/** The shortest docs record: `["x","",{}]` and its newline. */
const MIN_DOC_RECORD_BYTES = 12;

const isInt = (v: unknown, min: number, max: number): v is number => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;

/**
 * Validates the header fields `load` relies on (after the checksum passed, before anything is
 * allocated from them): types, ranges, and the section sizes the row count and width imply.
 */
function checkHeader(header: IndexFileHeader, path: string) {
  const bad = corruptError(path);
  if (header.format !== FORMAT_NAME) throw bad(`its format is ${JSON.stringify(header.format)}, expected ${JSON.stringify(FORMAT_NAME)}`);
  if (header.version !== HEADER_VERSION) throw bad(`its header says version ${describe(header.version)}, its prelude version ${HEADER_VERSION}`);
  const { dim, rows } = header;
  if (!isInt(rows, 0, MAX_ROWS)) throw bad(`its row count ${describe(rows)} is invalid`);
  if (!isInt(dim, rows > 0 ? 1 : 0, MAX_DENSE_DIM)) throw bad(`its dim ${describe(dim)} is invalid for ${rows} rows (1…${MAX_DENSE_DIM})`);
  const sections = new Map(header.sections.map((x) => [x.name, x.byteLength]));
  for (const name of ['dense', 'postingTokens', 'postingLengths', 'postingRows', 'postingWeights', 'docs']) {
    if (!sections.has(name)) throw bad(`the ${name} section is missing`);
  }
  const len = (name: string) => sections.get(name)!;
  if (len('dense') !== rows * dim * 4) throw bad('the dense section does not hold rows × dim floats');
  if (len('postingTokens') % 4 || len('postingTokens') !== len('postingLengths')) throw bad('the posting token and length sections disagree');
  if (len('postingRows') % 4 || len('postingRows') !== len('postingWeights')) throw bad('the posting row and weight sections disagree');
  const tokens = len('postingTokens') / 4;
  const postingCount = len('postingRows') / 4;
  if (header.postings !== postingCount) throw bad(`its header counts ${describe(header.postings)} postings but the sections hold ${postingCount}`);
  if (tokens > MAX_ENCODED_TOKEN_ID || tokens > postingCount || (rows === 0 && postingCount > 0)) throw bad('the posting sections do not fit the row count');
  if (len('docs') < rows * MIN_DOC_RECORD_BYTES) throw bad(`the docs section (${len('docs')} bytes) cannot hold ${rows} documents`);
  const mv = header.multiVectors as { file?: unknown; bytes?: unknown } | undefined;
  if (mv !== undefined && (mv === null || typeof mv !== 'object')) throw bad('its multiVectors entry is not an object');
  if ((mv !== undefined) !== sections.has('multiVectorRefs')) throw bad('its multi-vector section and header entry disagree');
  if (mv && len('multiVectorRefs') !== rows * REF_FIELDS * 8) throw bad('the multiVectorRefs section does not hold an entry per row');

  const model = parseFingerprint(header.model, bad);
  const settings = header.settings ?? {};
  if (typeof settings !== 'object' || Array.isArray(settings)) throw bad('its settings are not an object');
  const out: SavedMeta['settings'] = {};
  for (const key of ['maxQueryLength', 'maxPassageLength'] as const) {
    const v = (settings as Record<string, unknown>)[key];
    if (v === undefined) continue;
    // The rule of the MemoryHybridIndex option the setting is restored into.
    if (!isInt(v, 2, MAX_ROWS)) throw bad(`its setting ${key} is ${describe(v)}, not an integer ≥ 2`);
    out[key] = v;
  }
  const storage = (settings as Record<string, unknown>).multiVectors;
  if (storage !== undefined) out.multiVectors = refusal(bad)('its multiVectors setting is invalid', () => checkMultiVectorsOption(storage));
  return { dim, rows, model, settings: out, multiVectors: mv as { file: unknown; bytes: unknown } | undefined };
}

/**
 * The lexical-weight rule of addEncoded (toSparseVector: finite, non-negative) on every saved
 * weight, in slices numbered by posting; a saved weight is never 0 either (zeros are dropped on add).
 */
function checkPostingWeights(weights: Float32Array, refuse: Refuse, bad: (what: string) => BgeM3Error): void {
  const slice = 1 << 16;
  const positions = new Int32Array(Math.min(slice, weights.length));
  for (let start = 0; start < weights.length; start += slice) {
    const n = Math.min(slice, weights.length - start);
    for (let i = 0; i < n; i++) positions[i] = start + i;
    const values = weights.subarray(start, start + n);
    const kept = refuse('a posting has an invalid weight', () => toSparseVector({ indices: positions.subarray(0, n), values }, 'postings (posting number: weight)'));
    if (kept.values.length !== n) throw bad(`posting ${start + values.findIndex((w) => w === 0)} has weight 0`);
  }
}

/** The docs section: one `JSON [id, text, metadata]\n` record per row, in pieces of at most `maxBytes`. */
function encodeDocs(docs: StoredDocument[], rows: number[], maxBytes: number): Buffer[] {
  const out: Buffer[] = [];
  let batch: string[] = [];
  let batchBytes = 0;
  const flush = () => {
    if (batch.length > 0) out.push(Buffer.from(batch.join(''), 'utf8'));
    batch = [];
    batchBytes = 0;
  };
  for (const r of rows) {
    const d = docs[r]!;
    let line: string;
    try {
      line = `${JSON.stringify([d.id, d.text, d.metadata])}\n`;
    } catch (cause) {
      throw new BgeM3Error('INVALID_ARGUMENT', `Cannot save the document ${JSON.stringify(d.id.slice(0, 80))}: its id, text and metadata exceed the longest string JavaScript can hold (${(cause as Error).message}).`, { cause });
    }
    const n = Buffer.byteLength(line, 'utf8');
    if (n > maxBytes) {
      flush();
      for (const part of utf8Slices(line, maxBytes)) out.push(Buffer.from(part, 'utf8'));
      continue;
    }
    if (batchBytes + n > maxBytes) flush();
    batch.push(line);
    batchBytes += n;
  }
  flush();
  return out;
}

/** `s` in consecutive slices of at most `maxBytes` UTF-8 bytes, never splitting a surrogate pair. */
function* utf8Slices(s: string, maxBytes: number): Generator<string> {
  const step = Math.max(2, Math.floor(maxBytes / 3));
  for (let i = 0; i < s.length; ) {
    let end = Math.min(s.length, i + step);
    const last = s.charCodeAt(end - 1);
    if (end < s.length && last >= 0xd800 && last <= 0xdbff) end--;
    yield s.slice(i, end);
    i = end;
  }
}

/**
 * Decodes the docs section as it streams in: each record is decoded from pieces of at most
 * `maxBytes` (a record within one piece with one `toString`, a longer one through a StringDecoder,
 * piece by piece) and checked with the rules of `add` as soon as it is complete.
 */
class DocsDecoder implements SectionSink {
  readonly docs: StoredDocument[] = [];
  private readonly check = { operation: 'saved documents', seen: new Set<string>(), scope: 'in the file; ids must be unique' };
  private readonly bad: (what: string) => BgeM3Error;
  /** The decoded start of a record that spans pieces. */
  private partial: string[] = [];
  private partialLength = 0;
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly rows: number,
    path: string,
    private readonly maxBytes: number,
  ) {
    this.bad = corruptError(path);
  }

  write(chunk: Buffer): void {
    for (let off = 0; off < chunk.length; off += this.maxBytes) this.piece(chunk.subarray(off, Math.min(chunk.length, off + this.maxBytes)));
  }

  end(): void {
    if (this.partial.length > 0) throw this.bad(`document ${this.docs.length} is not terminated by a newline`);
    if (this.docs.length !== this.rows) throw this.bad(`the header promises ${this.rows} documents but ${this.docs.length} are stored`);
  }

  private piece(buf: Buffer): void {
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) {
        // No newline byte (0x0a) occurs inside a multi-byte UTF-8 sequence, so the decoder only
        // ever carries an incomplete character across pieces, never across records.
        const part = this.decoder.write(buf.subarray(start));
        this.partialLength += part.length;
        if (this.partialLength > constants.MAX_STRING_LENGTH) throw this.tooLong();
        this.partial.push(part);
        return;
      }
      let line: string;
      if (this.partial.length === 0) {
        line = buf.toString('utf8', start, nl);
      } else {
        this.partial.push(this.decoder.end(buf.subarray(start, nl)));
        try {
          line = this.partial.join('');
        } catch {
          throw this.tooLong();
        }
        this.partial = [];
        this.partialLength = 0;
      }
      this.record(line);
      start = nl + 1;
    }
  }

  private tooLong(): BgeM3Error {
    return this.bad(`document ${this.docs.length} is longer than the longest string JavaScript can hold`);
  }

  private record(line: string): void {
    const i = this.docs.length;
    if (i >= this.rows) throw this.bad(`it stores more than the ${this.rows} documents its header promises`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw this.bad(`document ${i} is not valid JSON`);
    }
    if (!Array.isArray(parsed) || parsed.length !== 3) throw this.bad(`document ${i} is not an [id, text, metadata] record`);
    let doc: ReturnType<typeof checkDocument>;
    try {
      doc = checkDocument({ id: parsed[0], text: parsed[1], metadata: parsed[2] }, i, this.check);
    } catch (e) {
      throw this.bad(`document ${i} is malformed or has a duplicate id (${(e as Error).message})`);
    }
    this.docs.push({ id: doc.id, text: doc.text, metadata: doc.metadata ?? {} });
  }
}
