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
import { float32ToHalf, halfToFloat32 } from '../shared/fp16.js';

/** How an index keeps each document's ColBERT rows: not at all (`false`, the default), fp16 or int8. */
export type MultiVectorStorage = false | 'fp16' | 'int8';
/** A storage format of the rows (see {@link MultiVectorStorage}). */
export type MultiVectorFormat = Exclude<MultiVectorStorage, false>;

/** Bytes before the first row. */
export const MULTI_VECTOR_HEADER_BYTES = 8;
const HEADER_BYTES = MULTI_VECTOR_HEADER_BYTES;
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

/** A blob's header, checked against the index's width and the payload's size. */
export interface MultiVectorHeader {
  format: MultiVectorFormat;
  rows: number;
  view: DataView;
  /** The `CORRUPT_FILE` error for this blob (`where` named in it). */
  bad: (what: string) => BgeM3Error;
}

/** Reads and checks a blob's header; `where` names the storage and the document in the error. */
export function readMultiVectorHeader(blob: Uint8Array, dim: number, where: string): MultiVectorHeader {
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
 * see `stored-maxsim.ts`.)
 */
export function decodeMultiVectors(blob: Uint8Array, dim: number, where: string): Float32Array[] {
  const { format, rows: count, view, bad } = readMultiVectorHeader(blob, dim, where);
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
    const scale = readRowScale(view, at, r, bad);
    const row = new Float32Array(dim);
    for (let i = 0; i < dim; i++) row[i] = view.getInt8(at + 4 + i) * scale;
    rows[r] = row;
  }
  return rows;
}

/** The float32 scale of the int8 row `row` stored at byte `at`, checked (finite, not negative). */
export function readRowScale(view: DataView, at: number, row: number, bad: MultiVectorHeader['bad']): number {
  const scale = view.getFloat32(at, true);
  if (!(scale >= 0 && Number.isFinite(scale))) throw bad(`row ${row} has the scale ${scale}`);
  return scale;
}
