/**
 * Saving and loading a `MemoryHybridIndex` state with the single-file format of `index-file.ts`:
 * which sections hold what, the header fields, and the checks a loaded file must pass (format,
 * consistent sizes, model compatibility, well-formed documents).
 */
import { BgeM3Error } from '../errors.js';
import { squaredNorm } from './dense-scorer.js';
import { readIndexFile, writeIndexFile, type FileIoOptions, type IndexFileHeader, type SectionWriter } from './index-file.js';
import { isDeleted, type State, type StoredDocument } from './index-state.js';
import type { ModelFingerprint } from './model-fingerprint.js';
import { SparsePostings } from './sparse-postings.js';
import type { HybridMetadata } from './types.js';

/** File name inside the directory given to `save`/`load`. */
export const HYBRID_INDEX_FILE = 'hybrid-index.bgem3';
const FORMAT_NAME = 'bge-m3-rag/memory-hybrid-index';

/** What a saved index records besides its rows. */
export interface SavedMeta {
  dim: number;
  model: ModelFingerprint | null;
  settings: { maxQueryLength?: number; maxPassageLength?: number };
}

/**
 * Writes the live rows of `s` (tombstones dropped, rows renumbered in order). The snapshot is taken
 * synchronously before the first write, and rows below `s.count` never change afterwards, so adds
 * and deletes may run while the file is written.
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
  const docChunks: Buffer[] = [];
  for (let i = 0; i < liveRows.length; i += 1024) {
    const lines = liveRows.slice(i, i + 1024).map((r) => {
      const d = s.docs[r]!;
      return `${JSON.stringify([d.id, d.text, d.metadata])}\n`;
    });
    docChunks.push(Buffer.from(lines.join(''), 'utf8'));
  }
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
  const header = {
    format: FORMAT_NAME,
    version: 1,
    dim,
    rows: liveRows.length,
    postings: postings.rows.length,
    model: meta.model,
    settings: meta.settings,
    createdBy: 'bge-m3-rag',
  };
  await writeIndexFile(path, header, sections, options);
}

/**
 * Reads and verifies a saved index; `current` (the model's fingerprint) or `dim` must match it.
 * Returns a fresh state (no tombstones, exact capacity).
 */
export async function loadState(path: string, current: ModelFingerprint | undefined, dim: number | undefined, options: FileIoOptions): Promise<SavedMeta & { state: State }> {
  let arrays: { dense: Float32Array; tokens: Int32Array; lengths: Int32Array; rows: Int32Array; weights: Float32Array; docs: Uint8Array } | undefined;
  let meta: { dim: number; rows: number; model: ModelFingerprint | null; settings: { maxQueryLength?: number; maxPassageLength?: number } } | undefined;
  await readIndexFile(
    path,
    (header) => {
      meta = checkHeader(header, path);
      checkCompatible(meta, current, dim, path);
      const size = (name: string) => header.sections.find((x) => x.name === name)!.byteLength;
      arrays = {
        dense: new Float32Array(size('dense') / 4),
        tokens: new Int32Array(size('postingTokens') / 4),
        lengths: new Int32Array(size('postingLengths') / 4),
        rows: new Int32Array(size('postingRows') / 4),
        weights: new Float32Array(size('postingWeights') / 4),
        docs: new Uint8Array(size('docs')),
      };
      const b = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      return {
        dense: b(arrays.dense),
        postingTokens: b(arrays.tokens),
        postingLengths: b(arrays.lengths),
        postingRows: b(arrays.rows),
        postingWeights: b(arrays.weights),
        docs: arrays.docs,
      };
    },
    options,
  );
  const a = arrays!;
  const m = meta!;
  const postings = SparsePostings.import({ tokens: a.tokens, lengths: a.lengths, rows: a.rows, weights: a.weights }, m.rows, path);
  if (current && postings.maxTokenId >= current.vocabSize) {
    throw new BgeM3Error('INCOMPATIBLE_INDEX', `${path} has postings for token id ${postings.maxTokenId}, beyond this model's vocabulary of ${current.vocabSize}; it was built with another model.`);
  }
  const docs = parseDocs(a.docs, m.rows, path);
  let maxRowNorm = 0;
  for (let r = 0; r < m.rows; r++) maxRowNorm = Math.max(maxRowNorm, Math.sqrt(squaredNorm(a.dense, r * m.dim, m.dim)));
  const settings: SavedMeta['settings'] = {};
  if (Number.isInteger(m.settings.maxQueryLength)) settings.maxQueryLength = m.settings.maxQueryLength;
  if (Number.isInteger(m.settings.maxPassageLength)) settings.maxPassageLength = m.settings.maxPassageLength;
  const state: State = { count: m.rows, dense: a.dense, docs, deleted: new Uint8Array(0), deletedCount: 0, postings, maxRowNorm };
  return { dim: m.dim, model: m.model, settings, state };
}

function section(name: string, data: Uint8Array): SectionWriter {
  return { name, byteLength: data.byteLength, chunks: () => [data] };
}

/** Validates the header fields `load` relies on (after the checksum passed). */
function checkHeader(header: IndexFileHeader, path: string) {
  const bad = (what: string) => new BgeM3Error('CORRUPT_FILE', `${path}: ${what}; the file was not written by MemoryHybridIndex.save or is damaged. Rebuild the index.`);
  if (header.format !== FORMAT_NAME) throw bad(`its format is ${JSON.stringify(header.format)}, expected ${JSON.stringify(FORMAT_NAME)}`);
  const dim = header.dim;
  const rows = header.rows;
  if (!Number.isSafeInteger(dim) || (dim as number) < 0 || !Number.isSafeInteger(rows) || (rows as number) < 0) throw bad('its dim or row count is invalid');
  const sections = new Map(header.sections.map((x) => [x.name, x.byteLength]));
  for (const name of ['dense', 'postingTokens', 'postingLengths', 'postingRows', 'postingWeights', 'docs']) {
    if (!sections.has(name)) throw bad(`the ${name} section is missing`);
  }
  const len = (name: string) => sections.get(name)!;
  if (len('dense') !== (rows as number) * (dim as number) * 4) throw bad('the dense section does not hold rows × dim floats');
  if (len('postingTokens') % 4 || len('postingTokens') !== len('postingLengths')) throw bad('the posting token and length sections disagree');
  if (len('postingRows') % 4 || len('postingRows') !== len('postingWeights')) throw bad('the posting row and weight sections disagree');
  const model = (header.model ?? null) as ModelFingerprint | null;
  const settings = (header.settings ?? {}) as { maxQueryLength?: number; maxPassageLength?: number };
  return { dim: dim as number, rows: rows as number, model, settings };
}

function checkCompatible(meta: { dim: number; rows: number; model: ModelFingerprint | null }, current: ModelFingerprint | undefined, dim: number | undefined, path: string): void {
  const want = current?.dim ?? dim;
  if (want !== undefined && meta.rows !== 0 && meta.dim !== want) {
    throw new BgeM3Error(
      'INCOMPATIBLE_INDEX',
      `${path} holds ${meta.dim}-dimensional dense vectors but ${current ? 'the model given to load produces' : 'the dim option says'} ${want}: it was built with another model. Load it with that model, or rebuild the index.`,
    );
  }
  if (current && meta.model && (meta.model.vocabSize !== current.vocabSize || meta.model.vocabHash !== current.vocabHash)) {
    throw new BgeM3Error(
      'INCOMPATIBLE_INDEX',
      `${path} was saved with a model whose vocabulary differs from this model's (saved: ${meta.model.vocabSize} tokens, fingerprint ${meta.model.vocabHash.slice(0, 12)}…; given: ${current.vocabSize} tokens, fingerprint ${current.vocabHash.slice(0, 12)}…). Its sparse postings are keyed by token id, so they would match the wrong tokens. Load it with the model it was built with, or rebuild the index.`,
    );
  }
}

function parseDocs(bytes: Uint8Array, rows: number, path: string): StoredDocument[] {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const docs: StoredDocument[] = [];
  const ids = new Set<string>();
  let start = 0;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end < 0 ? text.length : end);
    start = end < 0 ? text.length : end + 1;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new BgeM3Error('CORRUPT_FILE', `${path}: document ${docs.length} is not valid JSON; rebuild the index.`);
    }
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string' || typeof parsed[2] !== 'object' || parsed[2] === null || ids.has(parsed[0])) {
      throw new BgeM3Error('CORRUPT_FILE', `${path}: document ${docs.length} is malformed or has a duplicate id; rebuild the index.`);
    }
    ids.add(parsed[0]);
    docs.push({ id: parsed[0], text: parsed[1], metadata: parsed[2] as HybridMetadata });
  }
  if (docs.length !== rows) throw new BgeM3Error('CORRUPT_FILE', `${path}: the header promises ${rows} documents but ${docs.length} are stored; rebuild the index.`);
  return docs;
}
