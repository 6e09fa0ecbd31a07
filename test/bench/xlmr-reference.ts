/**
 * A deliberately plain float64 forward pass of Hugging Face's `XLMRobertaModel` (eager attention,
 * post-LayerNorm, exact erf GELU, RoBERTa positions), written from the architecture's definition
 * and the generator's named weights in torch layout. The tests compare the generated ONNX graph
 * against it, so a wrong transpose, residual, scale, mask or position offset in the generator shows
 * up as a numeric mismatch. Only for tiny shapes: no batching, no padding, O(n²) everything.
 */
import { embeddingSpecs, headSpecs, layerSpecs, weightValues, type WeightSpec } from '../../bench/lib/random-weights.js';
import type { XlmrShape } from '../../bench/lib/xlmr-shape.js';

type Vec = Float64Array;

/** erf to ~1e-15: Maclaurin series near 0, continued fraction for erfc in the tails. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let k = ax;
  for (let n = 80; n >= 1; n--) k = ax + n / 2 / k;
  const erfc = Math.exp(-ax * ax) / (Math.sqrt(Math.PI) * k);
  return Math.sign(x) * (1 - erfc);
}

const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

class Weights {
  constructor(private readonly seed: number) {}
  get(w: WeightSpec): Float64Array {
    return Float64Array.from(weightValues(w, this.seed));
  }
}

/** `y = x Wᵀ + b` with torch's `[out, in]` weight. */
function linear(x: Vec, w: Float64Array, b: Float64Array, out: number, inp: number): Vec {
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b[o]!;
    for (let i = 0; i < inp; i++) s += x[i]! * w[o * inp + i]!;
    y[o] = s;
  }
  return y;
}

function layerNorm(x: Vec, gamma: Float64Array, beta: Float64Array, eps: number): Vec {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) ** 2;
  variance /= x.length;
  const inv = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * inv * gamma[i]! + beta[i]!);
}

/** RoBERTa's `create_position_ids_from_input_ids`. */
export function positionIds(ids: readonly number[], paddingIdx: number): number[] {
  let count = 0;
  return ids.map((id) => (id === paddingIdx ? paddingIdx : ++count + paddingIdx));
}

/** `last_hidden_state` of one unpadded sequence: one float64 row per token. */
export function xlmrForward(shape: XlmrShape, seed: number, ids: readonly number[]): Vec[] {
  const W = new Weights(seed);
  const H = shape.hidden;
  const dh = H / shape.heads;
  const emb = embeddingSpecs(shape);
  const word = W.get(emb.word);
  const pos = W.get(emb.position);
  const type0 = W.get(emb.tokenType);
  const [g0, b0] = emb.layerNorm.map((w) => W.get(w)) as [Float64Array, Float64Array];
  const positions = positionIds(ids, shape.paddingIdx);
  let x: Vec[] = ids.map((id, t) => {
    const e = new Float64Array(H);
    for (let i = 0; i < H; i++) e[i] = word[id * H + i]! + pos[positions[t]! * H + i]! + type0[i]!;
    return layerNorm(e, g0, b0, shape.eps);
  });
  const n = ids.length;
  for (let l = 0; l < shape.layers; l++) {
    const L = layerSpecs(shape, l);
    const lin = (pair: WeightSpec[]) => {
      const [w, b] = pair.map((p) => W.get(p)) as [Float64Array, Float64Array];
      const [out, inp] = pair[0]!.shape as [number, number];
      return (v: Vec) => linear(v, w, b, out, inp);
    };
    const norm = (pair: WeightSpec[]) => {
      const [g, b] = pair.map((p) => W.get(p)) as [Float64Array, Float64Array];
      return (v: Vec) => layerNorm(v, g, b, shape.eps);
    };
    const q = x.map(lin(L.query));
    const k = x.map(lin(L.key));
    const v = x.map(lin(L.value));
    const ctx = x.map(() => new Float64Array(H));
    for (let h = 0; h < shape.heads; h++) {
      for (let i = 0; i < n; i++) {
        const scores = new Float64Array(n);
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let d = 0; d < dh; d++) s += q[i]![h * dh + d]! * k[j]![h * dh + d]!;
          scores[j] = s / Math.sqrt(dh);
        }
        const max = Math.max(...scores);
        let z = 0;
        for (let j = 0; j < n; j++) z += (scores[j] = Math.exp(scores[j]! - max));
        for (let j = 0; j < n; j++) for (let d = 0; d < dh; d++) ctx[i]![h * dh + d]! += (scores[j]! / z) * v[j]![h * dh + d]!;
      }
    }
    const attnOut = lin(L.attentionOutput);
    const attnNorm = norm(L.attentionNorm);
    const h1 = x.map((xi, t) => attnNorm(attnOut(ctx[t]!).map((a, i) => a + xi[i]!)));
    const up = lin(L.intermediate);
    const down = lin(L.output);
    const outNorm = norm(L.outputNorm);
    x = h1.map((hi) => outNorm(down(up(hi).map(gelu)).map((d, i) => d + hi[i]!)));
  }
  return x;
}

/** BGE-M3's heads on reference hidden states (heads rounded to fp16 as stored). */
export function referenceHeads(shape: XlmrShape, seed: number, hidden: Vec[], roundHalf: (a: Float32Array) => Float32Array) {
  const heads = headSpecs(shape);
  const get = (w: WeightSpec) => Float64Array.from(roundHalf(weightValues(w, seed)));
  const [cw, cb] = heads.colbert.map(get) as [Float64Array, Float64Array];
  const [sw, sb] = heads.sparse.map(get) as [Float64Array, Float64Array];
  const H = shape.hidden;
  const normalize = (v: Vec) => {
    const norm = Math.max(Math.hypot(...v), 1e-12);
    return v.map((x) => x / norm);
  };
  return {
    dense: normalize(hidden[0]!),
    sparse: hidden.map((h) => Math.max(0, linear(h, sw, sb, 1, H)[0]!)),
    colbert: hidden.slice(1).map((h) => normalize(linear(h, cw, cb, H, H))),
  };
}
