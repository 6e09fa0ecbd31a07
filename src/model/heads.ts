/**
 * BGE-M3's sparse and ColBERT heads, for exports whose graph returns only `last_hidden_state`.
 *
 * The ColBERT head is a 1024x1024 matrix per token: in plain JS it would cost a sizeable share of
 * the encoder's time, so both heads run as a small ONNX graph in onnxruntime (its MatMul kernels are
 * the same ones the encoder uses). The graph takes the hidden states of the rows that need heads,
 * packed without padding (`[rows, hidden]`), and returns
 * `sparse = relu(h·Wsᵀ + bs)` (`[rows, 1]`) and `colbert = normalize(h·Wcᵀ + bc)` (`[rows, colbertDim]`).
 */
import * as ort from 'onnxruntime-node';
import type { LinearWeights } from './weights/tensor.js';
import { DataType, encodeModel, floatTensor, node, valueInfo } from './onnx-graph.js';

export interface HeadWeights {
  sparse?: LinearWeights;
  colbert?: LinearWeights;
}

export interface HeadOutputs {
  /** `[rows]` ReLU weights, one per packed row. */
  sparse?: Float32Array;
  /** `[rows * colbertDim]` L2-normalized vectors. */
  colbert?: Float32Array;
}

/** Builds the heads graph for the given weights (either head may be absent). */
export function buildHeadsGraph(hidden: number, heads: HeadWeights): Uint8Array {
  const nodes = [];
  const initializer = [];
  const output = [];
  if (heads.sparse) {
    initializer.push(floatTensor('sparse_w', heads.sparse.weight.shape, heads.sparse.weight.data));
    initializer.push(floatTensor('sparse_b', heads.sparse.bias.shape, heads.sparse.bias.data));
    nodes.push(node('Gemm', ['hidden', 'sparse_w', 'sparse_b'], ['sparse_logits'], { transB: 1 }));
    nodes.push(node('Relu', ['sparse_logits'], ['sparse']));
    output.push(valueInfo('sparse', DataType.FLOAT, ['rows', 1]));
  }
  if (heads.colbert) {
    const dim = heads.colbert.weight.shape[0]!;
    initializer.push(floatTensor('colbert_w', heads.colbert.weight.shape, heads.colbert.weight.data));
    initializer.push(floatTensor('colbert_b', heads.colbert.bias.shape, heads.colbert.bias.data));
    initializer.push(floatTensor('eps', [], new Float32Array([1e-12])));
    nodes.push(node('Gemm', ['hidden', 'colbert_w', 'colbert_b'], ['colbert_raw'], { transB: 1 }));
    // F.normalize: x / max(||x||_2, 1e-12)
    nodes.push(node('ReduceL2', ['colbert_raw'], ['colbert_norm'], { axes: [-1], keepdims: 1 }));
    nodes.push(node('Max', ['colbert_norm', 'eps'], ['colbert_denom']));
    nodes.push(node('Div', ['colbert_raw', 'colbert_denom'], ['colbert']));
    output.push(valueInfo('colbert', DataType.FLOAT, ['rows', dim]));
  }
  return encodeModel({
    name: 'bge_m3_heads',
    node: nodes,
    initializer,
    input: [valueInfo('hidden', DataType.FLOAT, ['rows', hidden])],
    output,
  });
}

/**
 * The heads session's threads must not spin-wait. onnxruntime's intra-op threads busy-wait for
 * work after each run by default; the heads run between two encoder runs, so their spinning
 * threads would take the cores from the next encoder batch (measured: all three outputs 30%
 * slower than dense only on a 4-layer model; with this, within 2-3%). The indexes' scoring sessions
 * (src/stores/scoring-sessions.ts) use it for the same reason.
 */
export function withoutSpinning(options: ort.InferenceSession.SessionOptions): ort.InferenceSession.SessionOptions {
  const extra = (options.extra ?? {}) as Record<string, unknown>;
  const session = (extra.session ?? {}) as Record<string, unknown>;
  const intraOp = (session.intra_op ?? {}) as Record<string, unknown>;
  return { ...options, extra: { ...extra, session: { ...session, intra_op: { ...intraOp, allow_spinning: '0' } } } };
}

/** A running heads session. */
export class HeadsRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly hidden: number,
    readonly hasSparse: boolean,
    readonly hasColbert: boolean,
  ) {}

  static async create(hidden: number, heads: HeadWeights, options: ort.InferenceSession.SessionOptions): Promise<HeadsRunner> {
    const session = await ort.InferenceSession.create(buildHeadsGraph(hidden, heads), withoutSpinning(options));
    return new HeadsRunner(session, hidden, !!heads.sparse, !!heads.colbert);
  }

  /** Runs the requested heads over `rows` packed hidden states. */
  async run(packed: Float32Array, rows: number, want: { sparse: boolean; colbert: boolean }): Promise<HeadOutputs> {
    if (rows === 0) return { sparse: want.sparse ? new Float32Array(0) : undefined, colbert: want.colbert ? new Float32Array(0) : undefined };
    const fetches: string[] = [];
    if (want.sparse) fetches.push('sparse');
    if (want.colbert) fetches.push('colbert');
    const input = new ort.Tensor('float32', packed, [rows, this.hidden]);
    const result = await this.session.run({ hidden: input }, fetches);
    input.dispose();
    const out: HeadOutputs = {};
    if (want.sparse) out.sparse = result.sparse!.data as Float32Array;
    if (want.colbert) out.colbert = result.colbert!.data as Float32Array;
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
