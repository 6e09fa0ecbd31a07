/**
 * Sparse vectors in index form (token ids ascending, float32 weights > 0): the conversion from
 * lexical weights every backend applies, and the one exact sparse dot product they share.
 */
import { BgeM3Error } from '../errors.js';
import type { SparseVectorInput } from './types.js';

/** A sparse vector in index form: token ids ascending, weights > 0 (float32, as BGE-M3 emits them). */
export interface SparseVector {
  indices: Int32Array;
  values: Float32Array;
}

/**
 * Converts lexical weights (either form) into an index-form vector: token ids ascending, weights
 * as float32 (BGE-M3 produces float32 weights, so model output loses nothing), zeros dropped.
 * `what` names the input in error messages.
 */
export function toSparseVector(input: SparseVectorInput, what: string, vocabSize?: number): SparseVector {
  if (input === null || typeof input !== 'object') {
    throw new BgeM3Error('INVALID_ARGUMENT', `${what} must be lexical weights ({ "<token id>": weight }) or { indices, values }; got ${input === null ? 'null' : typeof input}.`);
  }
  let ids: ArrayLike<number>;
  let weights: ArrayLike<number>;
  if ('indices' in input && 'values' in input && typeof (input as { indices: unknown }).indices === 'object') {
    ({ indices: ids, values: weights } = input as { indices: ArrayLike<number>; values: ArrayLike<number> });
    if (ids.length !== weights.length) {
      throw new BgeM3Error('INVALID_ARGUMENT', `${what}: indices has ${ids.length} entries but values has ${weights.length}; they must pair up.`);
    }
  } else {
    const keys = Object.keys(input);
    const idList = new Array<number>(keys.length);
    const weightList = new Array<number>(keys.length);
    keys.forEach((key, i) => {
      idList[i] = /^\d+$/.test(key) ? Number(key) : NaN;
      weightList[i] = (input as Record<string, number>)[key]!;
    });
    ids = idList;
    weights = weightList;
  }
  const n = ids.length;
  let sorted = true;
  let nonzero = 0;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    const w = weights[i]!;
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff || (vocabSize !== undefined && id >= vocabSize)) {
      throw new BgeM3Error('INVALID_ARGUMENT', `${what}: token id ${JSON.stringify(String(id))} is not a token id${vocabSize !== undefined ? ` of this model's vocabulary (0…${vocabSize - 1})` : ''}; keys must be decimal token ids as BgeM3Model.encode returns them.`);
    }
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) {
      throw new BgeM3Error('INVALID_ARGUMENT', `${what}: the weight of token ${id} is ${String(w)}; lexical weights must be finite and non-negative.`);
    }
    if (i > 0 && id <= ids[i - 1]!) sorted = false;
    if (Math.fround(w) !== 0) nonzero++;
  }
  let order: ArrayLike<number> | undefined;
  if (!sorted) {
    const o = Array.from({ length: n }, (_, i) => i).sort((a, b) => ids[a]! - ids[b]!);
    for (let i = 1; i < n; i++) {
      if (ids[o[i]!] === ids[o[i - 1]!]) {
        throw new BgeM3Error('INVALID_ARGUMENT', `${what}: token ${ids[o[i]!]} appears twice; give each token id one weight (FlagEmbedding keeps the maximum).`);
      }
    }
    order = o;
  }
  const indices = new Int32Array(nonzero);
  const values = new Float32Array(nonzero);
  let k = 0;
  for (let j = 0; j < n; j++) {
    const i = order ? order[j]! : j;
    const w = Math.fround(weights[i]!);
    if (w === 0) continue;
    indices[k] = ids[i]!;
    values[k++] = w;
  }
  return { indices, values };
}

/**
 * The exact lexical score of two index-form vectors: shared terms multiplied and summed in float64,
 * in increasing token id order, the order the memory index's postings add them (so backends agree
 * to the bit).
 */
export function sparseDot(a: SparseVector, b: SparseVector): number {
  let s = 0;
  let i = 0;
  let j = 0;
  while (i < a.indices.length && j < b.indices.length) {
    const x = a.indices[i]!;
    const y = b.indices[j]!;
    if (x === y) s += a.values[i++]! * b.values[j++]!;
    else if (x < y) i++;
    else j++;
  }
  return s;
}
