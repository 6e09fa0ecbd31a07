/**
 * MaxSim over stored multi-vectors (`colbert_score`: the mean over query rows of the best dot
 * product with any stored row), computed from the stored fp16 / int8 bytes without decoding them
 * into float32 rows in JS. Both backends score their rerank candidates with it.
 *
 * Two kernels, picked by size. A stored document of BGE-M3 (hundreds of 1024-d rows) goes to a
 * small onnxruntime graph (`Cast` → `Gemm` → `ReduceMax`: the MLAS kernels the encoder uses, SIMD
 * and the intra-op threads). Measured on the 2-core machine (busy), a 10-row query against 20
 * documents of 215 rows: 7 ms, against 65 ms for the JS loop below and 122 ms for decoding the rows
 * to float32 and running `colbertScore`; at a top-20 rerank that is the difference between a
 * rerank costing a fraction of the query's own encode and costing more than it. Tiny documents
 * (and models) use the JS loop, which also spares creating the session.
 *
 * The JS kernel accumulates in double, the onnxruntime one in float32 (error ≤ dim·2⁻²⁴ relative,
 * ~6e-5 at 1024-d, far inside the 1e-3 / 5e-3 bounds of the storage formats themselves). Each
 * document is scored on its own (never batched with others), so a score depends only on the query
 * and that document's bytes: the memory and Postgres backends return the same scores.
 */
import * as ort from 'onnxruntime-node';
import { DataType, encodeModel, node, valueInfo } from '../model/onnx-graph.js';
import { halfTable } from '../shared/fp16.js';
import { MULTI_VECTOR_HEADER_BYTES as HEADER_BYTES, multiVectorRowBytes, readMultiVectorHeader, readRowScale, type MultiVectorFormat, type MultiVectorHeader } from './multi-vectors.js';
import { scoringSession } from './scoring-sessions.js';

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

export interface StoredMaxSimOptions {
  /** Force a kernel (tests compare both). Default: onnxruntime from {@link ORT_MIN_ELEMENTS} stored values on. */
  backend?: 'js' | 'onnxruntime';
  /** onnxruntime intra-op threads. Default: onnxruntime's choice (physical cores). */
  threads?: number;
}

/**
 * Stored values (rows × dim) from which onnxruntime scores a document: 16 rows of 1024-d. Below
 * that the JS loop costs microseconds and the session's per-run overhead would dominate.
 */
const ORT_MIN_ELEMENTS = 1 << 14;

/**
 * MaxSim of `query` against the stored rows in `blob` (a multi-vector blob of the query's width).
 * Equal, within float32 accumulation, to `colbertScore(query rows, decodeMultiVectors(blob))`; an
 * empty query or a document without rows scores 0. A damaged blob (bad header, partial row, an
 * Inf/NaN value, a bad int8 scale) is a `CORRUPT_FILE` error naming `where`.
 */
export async function storedColbertScore(query: PackedColbertQuery, blob: Uint8Array, where: string, options: StoredMaxSimOptions = {}): Promise<number> {
  const header = readMultiVectorHeader(blob, query.dim, where);
  if (query.rows === 0 || header.rows === 0) return 0;
  const useOrt = options.backend ? options.backend === 'onnxruntime' : header.rows * query.dim >= ORT_MIN_ELEMENTS;
  if (!useOrt) return maxSimJs(query, blob, header);
  const { format, rows, view, bad } = header;
  const dim = query.dim;
  const feeds: Record<string, ort.Tensor> = { q: new ort.Tensor('float32', query.values, [query.rows, dim]) };
  if (format === 'fp16') feeds.p = new ort.Tensor('float16', uint16View(blob, HEADER_BYTES, rows * dim), [rows, dim]);
  else {
    // int8 rows are stored as [scale, values]: split them into the two inputs of the graph.
    const values = new Int8Array(rows * dim);
    const scales = new Float32Array(rows);
    const bytes = new Int8Array(blob.buffer, blob.byteOffset, blob.byteLength);
    const stride = multiVectorRowBytes(format, dim);
    for (let r = 0; r < rows; r++) {
      const at = HEADER_BYTES + r * stride;
      scales[r] = readRowScale(view, at, r, bad);
      values.set(bytes.subarray(at + 4, at + 4 + dim), r * dim);
    }
    feeds.p = new ort.Tensor('int8', values, [rows, dim]);
    feeds.scale = new ort.Tensor('float32', scales, [rows]);
  }
  const session = await scoringSession(`maxsim-${format}`, () => maxSimGraph(format), options.threads);
  const out = await session.run(feeds);
  // Any Inf/NaN stored value makes every product with its row, and so their sum, non-finite (the
  // query is checked finite); the JS kernel then finds the row for the message. (A float32 sum can
  // also overflow on valid but huge values: the JS kernel's double result is then the answer.)
  if (!Number.isFinite((out.check!.data as Float32Array)[0]!)) return maxSimJs(query, blob, header);
  const best = out.best!.data as Float32Array;
  let total = 0;
  for (let j = 0; j < query.rows; j++) total += best[j]!;
  return total / query.rows;
}

/**
 * `q [queryRows, dim]` × stored rows `p [rows, dim]` (fp16, or int8 with `scale [rows]`) →
 * `best [queryRows]` (each query row's best product) and `check` (the sum of all products, for
 * the non-finite test). No data in the graph: everything is an input.
 */
function maxSimGraph(format: MultiVectorFormat): Uint8Array {
  const nodes = [node('Cast', ['p'], ['pf'], { to: DataType.FLOAT }), node('Gemm', ['q', 'pf'], ['s'], { transB: 1 })];
  const input = [valueInfo('q', DataType.FLOAT, ['queryRows', 'dim']), valueInfo('p', format === 'fp16' ? DataType.FLOAT16 : DataType.INT8, ['rows', 'dim'])];
  let products = 's';
  if (format === 'int8') {
    input.push(valueInfo('scale', DataType.FLOAT, ['rows']));
    nodes.push(node('Mul', ['s', 'scale'], ['ss']));
    products = 'ss';
  }
  nodes.push(node('ReduceMax', [products], ['best'], { axes: [1], keepdims: 0 }), node('ReduceSum', [products], ['check'], { keepdims: 0 }));
  return encodeModel({
    name: `bge_m3_rag_maxsim_${format}`,
    node: nodes,
    input,
    output: [valueInfo('best', DataType.FLOAT, ['queryRows']), valueInfo('check', DataType.FLOAT, [])],
  });
}

/**
 * The JS kernel (double accumulation): one pass over the blob, one stored row decoded at a time
 * into a scratch row (fp16 by table), four query rows per pass over it (one load of the stored
 * value, four products), no allocation per row. Written by hand: it is the rerank's inner loop.
 */
export function storedColbertScoreJs(query: PackedColbertQuery, blob: Uint8Array, where: string): number {
  return maxSimJs(query, blob, readMultiVectorHeader(blob, query.dim, where));
}

/** {@link storedColbertScoreJs} on a blob whose header is already read. */
function maxSimJs(query: PackedColbertQuery, blob: Uint8Array, header: MultiVectorHeader): number {
  const { dim, rows: qn, values: q } = query;
  const { format, rows: count, view, bad } = header;
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
      scale = readRowScale(view, at, r, bad);
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

/**
 * `n` uint16 values at `offset` of `blob`, copied only when the bytes are misaligned (a Buffer's
 * `slice` is a view, so the copy is explicit). Little-endian hosts only, as the blobs are.
 */
function uint16View(blob: Uint8Array, offset: number, n: number): Uint16Array {
  const start = blob.byteOffset + offset;
  if (start % 2 === 0) return new Uint16Array(blob.buffer, start, n);
  const out = new Uint16Array(n);
  new Uint8Array(out.buffer).set(blob.subarray(offset, offset + 2 * n));
  return out;
}
