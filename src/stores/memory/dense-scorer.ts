/**
 * Inner products of one query vector with every row of a contiguous row-major matrix: the dense
 * leg's full scan.
 *
 * Tiny matrices are scanned in JS. Everything else goes through onnxruntime's MatMul (the same
 * MLAS kernels the encoder uses: SIMD and the intra-op thread pool), which is several times faster
 * than any scalar JS loop: at 100k × 1024 it reads 400 MB per query, which a JS loop needs ~60 ms
 * for on this class of machine and MLAS ~12 ms. The matrix is handed over as an input tensor (a
 * view, no copy in JS). onnxruntime-node runs a session on the main thread (deferred with
 * setImmediate), so other JS may run between the call and the run: callers pass a snapshot that
 * later writes do not touch.
 *
 * Both paths compute the plain inner product (`scores.ts` `dot`) in a different summation order
 * (and float32 for MLAS), so each result comes with a bound on its rounding error; the index uses
 * it to pick candidates and then rescores them with `dot` itself.
 */
import * as ort from 'onnxruntime-node';
import { DataType, encodeModel, node, valueInfo } from '../../model/onnx-graph.js';
import { dotAt, squaredNorm } from '../../scores.js';
import { scoringSession } from '../scoring-sessions.js';

/**
 * Below this many matrix elements the JS loop is used. Measured at 1024-d: onnxruntime is already
 * faster at 64 rows (0.013 ms vs 0.054 ms; 0.05 ms vs 0.84 ms at 1024 rows), so JS only serves
 * tiny indexes, where it also spares creating the session.
 */
const ORT_MIN_ELEMENTS = 1 << 14;

export interface DenseScan {
  /** `scores[r]` ≈ inner product of the query and row r. */
  scores: Float32Array | Float64Array;
  /**
   * `|scores[r] − dot(query, row r)| ≤ errorBound` for every row whose L2 norm is at most the
   * `maxRowNorm` given to {@link scanDense}.
   */
  errorBound: number;
}

export interface DenseScanOptions {
  /** onnxruntime intra-op threads for large scans. Default: onnxruntime's choice (physical cores). */
  threads?: number;
  /** Largest L2 norm of any row (for the error bound). */
  maxRowNorm: number;
  /** Force a path (tests compare both). Default: by size. */
  backend?: 'js' | 'onnxruntime';
}

/** Scores rows `[0, rows)` of `matrix` (row-major, `dim` columns) against `query`. */
export async function scanDense(matrix: Float32Array, rows: number, dim: number, query: Float32Array, options: DenseScanOptions): Promise<DenseScan> {
  const qNorm = Math.sqrt(squaredNorm(query));
  const useOrt = options.backend ? options.backend === 'onnxruntime' : rows * dim >= ORT_MIN_ELEMENTS;
  if (!useOrt || rows === 0) {
    const scores = scanJs(matrix, rows, dim, query);
    // Double accumulation in four interleaved sums: error ≤ ~dim·2⁻⁵³·|q|·|r|; a generous bound.
    return { scores, errorBound: 4 * dim * 2 ** -52 * qNorm * options.maxRowNorm };
  }
  const session = await scoringSession('dense-scan', matmulGraph, options.threads);
  const out = await session.run({
    m: new ort.Tensor('float32', matrix.subarray(0, rows * dim), [rows, dim]),
    q: new ort.Tensor('float32', query, [dim, 1]),
  });
  const scores = out.s!.data as Float32Array;
  // Float32 accumulation (blocked, FMA): |error| ≤ γ_dim·Σ|q_i·r_i| ≤ dim·2⁻²⁴·|q|·|r| (Cauchy-Schwarz),
  // doubled for safety, plus the final rounding to float32.
  return { scores, errorBound: (2 * dim + 2) * 2 ** -24 * qNorm * options.maxRowNorm };
}

/** Scalar kernel (the package's one unrolled dot product), row by row. */
function scanJs(matrix: Float32Array, rows: number, dim: number, q: Float32Array): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) out[r] = dotAt(matrix, r * dim, q, 0, dim);
  return out;
}


/** The `[rows, dim] × [dim, 1]` MatMul graph (no data: the matrix is an input). */
function matmulGraph(): Uint8Array {
  return encodeModel({
    name: 'bge_m3_rag_dense_scan',
    node: [node('MatMul', ['m', 'q'], ['s'])],
    input: [valueInfo('m', DataType.FLOAT, ['rows', 'dim']), valueInfo('q', DataType.FLOAT, ['dim', 1])],
    output: [valueInfo('s', DataType.FLOAT, ['rows', 1])],
  });
}
