/**
 * pgvector's text forms of this package's vectors, and back. Values are written with JavaScript's
 * shortest round-trip form of each float32, which PostgreSQL parses back to the same float32.
 */
import { BgeM3Error } from '../../errors.js';
import type { SparseVector } from '../sparse-vector.js';
import { SPARSE_INDEX_MAX_NNZ } from './schema.js';

/** `[v1,v2,…]`, the input form of `vector` and `halfvec`. */
export function denseLiteral(dense: ArrayLike<number>): string {
  return `[${Array.prototype.join.call(dense, ',')}]`;
}

/** The float32 bytes (little-endian) kept for exact rescoring. */
export function denseBytes(dense: Float32Array): Buffer {
  const out = Buffer.alloc(dense.length * 4);
  for (let i = 0; i < dense.length; i++) out.writeFloatLE(dense[i]!, i * 4);
  return out;
}

/** Reads {@link denseBytes} back (`where` names the row for a corrupt value). */
export function fromDenseBytes(bytes: Uint8Array, dim: number, where: string): Float32Array {
  if (bytes.byteLength !== dim * 4) {
    throw new BgeM3Error('CORRUPT_FILE', `${where}: dense_exact holds ${bytes.byteLength} bytes, not ${dim} float32 values; the row was not written by bge-m3-rag.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(dim);
  for (let i = 0; i < dim; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** `{id+1:w,…}/vocab`: pgvector's sparsevec indices start at 1, token ids at 0. */
export function sparseLiteral(v: SparseVector, vocab: number): string {
  const parts = new Array<string>(v.indices.length);
  for (let i = 0; i < v.indices.length; i++) parts[i] = `${v.indices[i]! + 1}:${v.values[i]!}`;
  return `{${parts.join(',')}}/${vocab}`;
}

/** The `SPARSE_INDEX_MAX_NNZ` largest weights (ties: lower token id), in token id order. */
export function topWeights(v: SparseVector): SparseVector {
  if (v.indices.length <= SPARSE_INDEX_MAX_NNZ) return v;
  const order = Array.from({ length: v.indices.length }, (_, i) => i)
    .sort((a, b) => v.values[b]! - v.values[a]! || a - b)
    .slice(0, SPARSE_INDEX_MAX_NNZ)
    .sort((a, b) => a - b);
  return { indices: Int32Array.from(order, (i) => v.indices[i]!), values: Float32Array.from(order, (i) => v.values[i]!) };
}

/** Parses a `sparsevec` text value back into index form (token ids 0-based). */
export function parseSparse(text: string, where: string): SparseVector {
  const m = /^\{(.*)\}\/\d+$/.exec(text);
  if (!m) throw new BgeM3Error('CORRUPT_FILE', `${where}: ${JSON.stringify(text.slice(0, 40))} is not a sparsevec value.`);
  const body = m[1]!;
  if (body === '') return { indices: new Int32Array(0), values: new Float32Array(0) };
  const pairs = body.split(',');
  const indices = new Int32Array(pairs.length);
  const values = new Float32Array(pairs.length);
  pairs.forEach((p, i) => {
    const colon = p.indexOf(':');
    indices[i] = Number(p.slice(0, colon)) - 1;
    values[i] = Number(p.slice(colon + 1));
  });
  return { indices, values };
}
