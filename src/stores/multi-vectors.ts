/**
 * Stored multi-vectors (ColBERT rows), the one codec both backends use: a document's `tokens - 1`
 * rows of `dim` values (as `encode` returns them) in fp16 (2 bytes a value, half of fp32) or int8
 * (one float32 scale per row and a byte a value, a quarter), in a self-describing blob:
 *
 *     bytes 0-3  'M', 'V', version (1), format (1 = fp16, 2 = int8)
 *     bytes 4-7  dim (uint32, little-endian)
 *     then       rows, row-major: fp16 = dim × uint16; int8 = float32 scale + dim × int8
 *
 * The memory backend keeps blobs in a side file (and a CRC32 per blob in the index file), the
 * Postgres backend in a `bytea` column. Decoding checks the header against the index's width and
 * that the payload is whole rows, so truncated or foreign bytes are a `CORRUPT_FILE` error.
 */
import { BgeM3Error } from '../errors.js';
import { describeValue as describe } from '../shared/checks.js';
import { float32ToHalf, halfTable, halfToFloat32 } from '../shared/fp16.js';

/** How an index keeps each document's ColBERT rows: not at all (`false`, the default), fp16 or int8. */
export type MultiVectorStorage = false | 'fp16' | 'int8';
/** A storage format of the rows (see {@link MultiVectorStorage}). */
export type MultiVectorFormat = Exclude<MultiVectorStorage, false>;

const HEADER_BYTES = 8;
const VERSION = 1;
const FORMAT_CODES: Record<MultiVectorFormat, number> = { fp16: 1, int8: 2 };
const FORMATS: Record<number, MultiVectorFormat> = { 1: 'fp16', 2: 'int8' };
/** Largest ColBERT value accepted: fp16's largest finite value (BGE-M3's rows are unit vectors). */
const MAX_COLBERT_ABS = 65504;
/** Largest int8 magnitude used (symmetric, so -128 never occurs). */
const INT8_MAX = 127;

/** Checks the `multiVectors` option of an index. */
export function checkMultiVectorsOption(value: unknown, option = 'multiVectors'): MultiVectorStorage {
  if (value === undefined || value === false) return false;
  if (value === 'fp16' || value === 'int8') return value;
  throw new BgeM3Error('INVALID_ARGUMENT', `${option} must be false, 'fp16' or 'int8'; got ${describe(value)}.`);
}

/** Bytes of one stored row. */
export function multiVectorRowBytes(format: MultiVectorFormat, dim: number): number {
  return format === 'fp16' ? 2 * dim : 4 + dim;
}

/** Bytes of a blob holding `rows` rows. */
export function multiVectorBlobBytes(format: MultiVectorFormat, dim: number, rows: number): number {
  return HEADER_BYTES + rows * multiVectorRowBytes(format, dim);
}

/**
 * Checks ColBERT rows given to `addEncoded` (an array of `dim`-long numeric rows, finite values)
 * and returns them; `where` names the document in the message.
 */
export function checkColbertRows(rows: unknown, dim: number, where: string): readonly ArrayLike<number>[] {
  if (!Array.isArray(rows)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${where} must be an array of ${dim}-value rows (the document's ColBERT vectors as encode returns them); got ${describe(rows)}.`);
  }
  rows.forEach((row, r) => {
    const n = (row as ArrayLike<number> | null)?.length;
    if (row === null || typeof row !== 'object' || n !== dim) {
      throw new BgeM3Error('INVALID_ARGUMENT', `${where}[${r}] must hold ${dim} numbers (the index's width); got ${describe(row)}.`);
    }
    for (let i = 0; i < dim; i++) {
      const v = (row as ArrayLike<number>)[i];
      if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > MAX_COLBERT_ABS) {
        throw new BgeM3Error('INVALID_ARGUMENT', `${where}[${r}][${i}] is ${describe(v)}; ColBERT values must be finite numbers of magnitude at most ${MAX_COLBERT_ABS}.`);
      }
    }
  });
  return rows as readonly ArrayLike<number>[];
}

/** Encodes rows (each `dim` long) into a blob of `format`. */
export function encodeMultiVectors(rows: readonly ArrayLike<number>[], dim: number, format: MultiVectorFormat): Uint8Array {
  const out = new Uint8Array(multiVectorBlobBytes(format, dim, rows.length));
  const view = new DataView(out.buffer);
  out.set([0x4d, 0x56, VERSION, FORMAT_CODES[format]]);
  view.setUint32(4, dim, true);
  const row32 = new Float32Array(dim);
  const stride = multiVectorRowBytes(format, dim);
  rows.forEach((row, r) => {
    const at = HEADER_BYTES + r * stride;
    for (let i = 0; i < dim; i++) row32[i] = row[i]!;
    if (format === 'fp16') {
      const half = float32ToHalf(row32);
      for (let i = 0; i < dim; i++) view.setUint16(at + 2 * i, half[i]!, true);
      return;
    }
    let maxAbs = 0;
    for (let i = 0; i < dim; i++) maxAbs = Math.max(maxAbs, Math.abs(row32[i]!));
    const scale = Math.fround(maxAbs / INT8_MAX);
    view.setFloat32(at, scale, true);
    if (scale === 0) return; // an all-zero row stays zeros
    for (let i = 0; i < dim; i++) view.setInt8(at + 4 + i, Math.max(-INT8_MAX, Math.min(INT8_MAX, Math.round(row32[i]! / scale))));
  });
  return out;
}

/** A blob's header, checked: its format and row count (`where` names it in the error). */
function readHeader(blob: Uint8Array, dim: number, where: string): { format: MultiVectorFormat; rows: number; view: DataView; bad: (what: string) => BgeM3Error } {
  const bad = (what: string) => new BgeM3Error('CORRUPT_FILE', `${where}: the stored multi-vectors are damaged (${what}); rebuild the index, or add the document again.`);
  if (blob.byteLength < HEADER_BYTES) throw bad(`${blob.byteLength} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob[0] !== 0x4d || blob[1] !== 0x56) throw bad('no multi-vector header');
  if (blob[2] !== VERSION) throw bad(`format version ${blob[2]}, expected ${VERSION}`);
  const format = FORMATS[blob[3]!];
  if (!format) throw bad(`unknown storage code ${blob[3]}`);
  const width = view.getUint32(4, true);
  if (width !== dim) throw bad(`${width}-value rows in an index of ${dim}-dimensional vectors`);
  const stride = multiVectorRowBytes(format, dim);
  const payload = blob.byteLength - HEADER_BYTES;
  if (payload % stride !== 0) throw bad(`${payload} bytes of rows is not a whole number of ${format} rows of ${dim} values`);
  return { format, rows: payload / stride, view, bad };
}

/**
 * Decodes a blob into float32 rows. `dim` is the index's width; `where` names the storage and the
 * document for the `CORRUPT_FILE` error a damaged or foreign blob gets. (Scoring does not decode:
 * see {@link storedColbertScore}.)
 */
export function decodeMultiVectors(blob: Uint8Array, dim: number, where: string): Float32Array[] {
  const { format, rows: count, view, bad } = readHeader(blob, dim, where);
  const stride = multiVectorRowBytes(format, dim);
  const rows: Float32Array[] = new Array(count);
  for (let r = 0; r < count; r++) {
    const at = HEADER_BYTES + r * stride;
    if (format === 'fp16') {
      const half = new Uint16Array(dim);
      for (let i = 0; i < dim; i++) half[i] = view.getUint16(at + 2 * i, true);
      const row = halfToFloat32(half);
      for (let i = 0; i < dim; i++) if (!Number.isFinite(row[i]!)) throw bad(`row ${r} holds ${row[i]}`);
      rows[r] = row;
      continue;
    }
    const scale = view.getFloat32(at, true);
    if (!(scale >= 0 && Number.isFinite(scale))) throw bad(`row ${r} has the scale ${scale}`);
    const row = new Float32Array(dim);
    for (let i = 0; i < dim; i++) row[i] = view.getInt8(at + 4 + i) * scale;
    rows[r] = row;
  }
  return rows;
}

/** A query's ColBERT rows packed for {@link storedColbertScore}: one row-major float32 array. */
export interface PackedColbertQuery {
  readonly rows: number;
  readonly dim: number;
  readonly values: Float32Array;
}

/** Packs a query's ColBERT rows (each `dim` long, already checked) into one float32 array. */
export function packColbertQuery(rows: readonly ArrayLike<number>[], dim: number): PackedColbertQuery {
  const values = new Float32Array(rows.length * dim);
  rows.forEach((row, r) => values.set(row, r * dim));
  return { rows: rows.length, dim, values };
}

/**
 * MaxSim (`colbert_score`: the mean over query rows of the best dot product with any stored row)
 * of a query against a stored blob, computed straight from the fp16 / int8 bytes: equal, up to the
 * summation order of a double, to `colbertScore(query, decodeMultiVectors(blob))` (the int8 scale
 * is applied once per dot product instead of once per value). Written by hand because it is the
 * rerank's inner loop: one pass over the blob, one stored row decoded at a time into a scratch row
 * (fp16 by table), four query rows per pass over it (one load of the stored value, four products),
 * no allocation per row. A damaged blob is the same `CORRUPT_FILE` error as in decoding.
 */
export function storedColbertScore(query: PackedColbertQuery, blob: Uint8Array, where: string): number {
  const { dim, rows: qn, values: q } = query;
  const { format, rows: count, view, bad } = readHeader(blob, dim, where);
  if (qn === 0) return 0;
  const best = new Float64Array(qn).fill(-Infinity);
  const row = new Float32Array(dim);
  const table = format === 'fp16' ? halfTable() : undefined;
  const halves = table ? uint16View(blob, HEADER_BYTES, count * dim) : undefined;
  const bytes = table ? undefined : new Int8Array(blob.buffer, blob.byteOffset, blob.byteLength);
  const stride = multiVectorRowBytes(format, dim);
  for (let r = 0; r < count; r++) {
    let scale = 1;
    if (halves) decodeHalfRow(table!, halves, r * dim, row);
    else {
      const at = HEADER_BYTES + r * stride;
      scale = view.getFloat32(at, true);
      if (!(scale >= 0 && Number.isFinite(scale))) throw bad(`row ${r} has the scale ${scale}`);
      decodeInt8Row(bytes!, at + 4, row);
    }
    // A non-finite stored value (an fp16 Inf/NaN pattern) makes every product sum non-finite.
    if (!maxSimRow(q, qn, row, scale, best)) throw bad(`row ${r} holds a value that is not finite`);
  }
  // An empty passage has no vectors: each query row scores 0 (as colbertScore does).
  let total = 0;
  for (let j = 0; j < qn; j++) total += best[j] === -Infinity ? 0 : best[j]!;
  return total / qn;
}

function decodeHalfRow(table: Float32Array, halves: Uint16Array, base: number, row: Float32Array): void {
  for (let i = 0; i < row.length; i++) row[i] = table[halves[base + i]!]!;
}

function decodeInt8Row(bytes: Int8Array, at: number, row: Float32Array): void {
  for (let i = 0; i < row.length; i++) row[i] = bytes[at + i]!;
}

/**
 * Updates `best[j]` with `scale * (query row j · row)` for every query row, four query rows per pass
 * over `row`. Returns false when a product sum is not finite (the row holds Inf or NaN).
 */
function maxSimRow(q: Float32Array, qn: number, row: Float32Array, scale: number, best: Float64Array): boolean {
  const dim = row.length;
  let j = 0;
  for (; j + 3 < qn; j += 4) {
    const o0 = j * dim;
    const o1 = o0 + dim;
    const o2 = o1 + dim;
    const o3 = o2 + dim;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < dim; i++) {
      const v = row[i]!;
      s0 += q[o0 + i]! * v;
      s1 += q[o1 + i]! * v;
      s2 += q[o2 + i]! * v;
      s3 += q[o3 + i]! * v;
    }
    if (!Number.isFinite(s0)) return false;
    if (s0 * scale > best[j]!) best[j] = s0 * scale;
    if (s1 * scale > best[j + 1]!) best[j + 1] = s1 * scale;
    if (s2 * scale > best[j + 2]!) best[j + 2] = s2 * scale;
    if (s3 * scale > best[j + 3]!) best[j + 3] = s3 * scale;
  }
  for (; j < qn; j++) {
    const o = j * dim;
    let s = 0;
    for (let i = 0; i < dim; i++) s += q[o + i]! * row[i]!;
    if (!Number.isFinite(s)) return false;
    if (s * scale > best[j]!) best[j] = s * scale;
  }
  return true;
}

/** `n` little-endian uint16 values at `offset` of `blob`, copied only when the bytes are misaligned. */
function uint16View(blob: Uint8Array, offset: number, n: number): Uint16Array {
  const start = blob.byteOffset + offset;
  if (start % 2 === 0) return new Uint16Array(blob.buffer, start, n);
  return new Uint16Array(blob.slice(offset, offset + 2 * n).buffer, 0, n);
}
