/**
 * (Over 400 lines: one pattern matcher and its rewrite, which only make sense together.)
 *
 * Rewrites the eager self-attention subgraphs of an exported encoder into onnxruntime's
 * `com.microsoft.MultiHeadAttention`, before the session is created.
 *
 * Why: PyTorch exports of XLM-RoBERTa (BAAI/bge-m3's `onnx/model.onnx`, Xenova's, optimum's) spell
 * attention out as `MatMul(Q, Kᵀ) → Div(√d) → Add(mask) → Softmax → MatMul(·, V)`, and onnxruntime's
 * CPU optimizer does not fuse that pattern. Unfused, every layer materializes the scores twice
 * (`[batch, 16, seq, seq]` float32: 4 GiB each for one 8192-token document), which puts an
 * 8k-token encode above 10 GB of memory and makes long documents slow. `MultiHeadAttention` keeps
 * one score buffer with an in-place softmax when a padding mask is given, and runs onnxruntime's
 * CPU flash attention (memory linear in the length, several times faster) when it is not.
 *
 * So each layer becomes `If(batch has no padding) → MHA(Q, K, V) else → MHA(Q, K, V, key_padding_mask)`:
 * a padding-free batch (any single text, and length-sorted batches of equal lengths) takes the
 * flash path; a padded batch applies the same additive mask value the graph used. Results equal
 * the original graph's up to float rounding (the conformance tests hold to 1e-4).
 *
 * The matcher is strict: it rewrites a layer only when the whole pattern is present and private
 * (no intermediate value used elsewhere), the scale and head count are constants, and the additive
 * mask provably is `f(attention_mask)` broadcast over keys with `f(1) = 0` and `f(0) ≤ -1e4`
 * (checked by evaluating the mask subgraph on 0 and 1). Anything else is left as exported.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IModelProto = onnxProto.onnx.IModelProto;

const MS_DOMAIN = 'com.microsoft';

export interface AttentionFusionResult {
  /** The rewritten ModelProto bytes (external-data references as `edit` left them). */
  model: Uint8Array;
  /** Attention subgraphs replaced. */
  fused: number;
}

/** Numbers of a constant tensor (initializer or Constant node), whatever its storage. */
function tensorValues(t: ITensorProto): number[] | undefined {
  const DT = onnx.TensorProto.DataType;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const num = (v: unknown) => (typeof v === 'object' && v !== null && 'toNumber' in v ? (v as { toNumber(): number }).toNumber() : Number(v));
  switch (t.dataType) {
    case DT.FLOAT:
      return view ? Array.from({ length: view.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true)) : (t.floatData ?? []).map(Number);
    case DT.DOUBLE:
      return view ? Array.from({ length: view.byteLength / 8 }, (_, i) => view.getFloat64(i * 8, true)) : (t.doubleData ?? []).map(Number);
    case DT.INT64:
      return view ? Array.from({ length: view.byteLength / 8 }, (_, i) => Number(view.getBigInt64(i * 8, true))) : (t.int64Data ?? []).map(num);
    case DT.INT32:
      return view ? Array.from({ length: view.byteLength / 4 }, (_, i) => view.getInt32(i * 4, true)) : (t.int32Data ?? []).map(Number);
    case DT.BOOL:
    case DT.UINT8:
      return raw ? Array.from(raw) : (t.int32Data ?? []).map(Number);
    case DT.INT8:
      return raw ? Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength)) : (t.int32Data ?? []).map(Number);
    default:
      return undefined;
  }
}

function attr(n: INodeProto, name: string) {
  return n.attribute?.find((a) => a.name === name);
}

function intsAttr(n: INodeProto, name: string): number[] | undefined {
  return attr(n, name)?.ints?.map((v) => Number(v));
}

/** Lookup tables over one graph. */
class GraphIndex {
  readonly producer = new Map<string, INodeProto>();
  readonly consumers = new Map<string, INodeProto[]>();
  readonly initializers = new Map<string, ITensorProto>();
  readonly graphOutputs: Set<string>;

  constructor(readonly graph: onnxProto.onnx.IGraphProto) {
    for (const n of graph.node ?? []) {
      for (const o of n.output ?? []) this.producer.set(o, n);
      for (const i of n.input ?? []) if (i) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n]);
    }
    for (const t of graph.initializer ?? []) this.initializers.set(t.name!, t);
    this.graphOutputs = new Set((graph.output ?? []).map((o) => o.name!));
  }

  /** The node producing `name` if it has the given op type (default domain). */
  op(name: string | undefined, opType: string): INodeProto | undefined {
    const n = name ? this.producer.get(name) : undefined;
    return n && n.opType === opType && !n.domain ? n : undefined;
  }

  /** Constant values of `name` (initializer or Constant node). */
  constant(name: string | undefined): number[] | undefined {
    if (!name) return undefined;
    const init = this.initializers.get(name);
    if (init) return tensorValues(init);
    const c = this.op(name, 'Constant');
    if (!c) return undefined;
    const a = c.attribute?.[0];
    if (!a) return undefined;
    if (a.name === 'value' && a.t) return tensorValues(a.t);
    if (a.name === 'value_float') return [Number(a.f)];
    if (a.name === 'value_int') return [Number(a.i)];
    if (a.name === 'value_ints') return a.ints?.map(Number);
    if (a.name === 'value_floats') return a.floats?.map(Number);
    return undefined;
  }

  scalar(name: string | undefined): number | undefined {
    const v = this.constant(name);
    return v && v.length === 1 ? v[0] : undefined;
  }

  /** True when `name` feeds exactly `node` and nothing else (and is not a graph output). */
  private(name: string, node: INodeProto): boolean {
    const c = this.consumers.get(name) ?? [];
    return c.length === 1 && c[0] === node && !this.graphOutputs.has(name);
  }
}

interface HeadSplit {
  /** The `[batch, seq, hidden]` tensor before the split. */
  input: string;
  heads: number;
  nodes: INodeProto[];
}

/** `Reshape(x, [*, *, heads, size])`: the head count, from a constant shape or a Concat of constants. */
function reshapeHeads(g: GraphIndex, reshape: INodeProto): number | undefined {
  const shape = g.constant(reshape.input?.[1]);
  if (shape) return shape.length === 4 && shape[2]! > 0 ? shape[2] : undefined;
  const concat = g.op(reshape.input?.[1], 'Concat');
  if (!concat || concat.input?.length !== 4) return undefined;
  const heads = g.scalar(concat.input[2]);
  return heads !== undefined && heads > 0 ? heads : undefined;
}

/** Matches `Transpose(perm)` of `Reshape(x → [b, s, heads, size])`, optionally via a second Transpose. */
function matchHeadSplit(g: GraphIndex, name: string, consumer: INodeProto, perms: number[][]): HeadSplit | undefined {
  const nodes: INodeProto[] = [];
  let current = name;
  let user = consumer;
  for (const perm of perms) {
    const t = g.op(current, 'Transpose');
    if (!t || !g.private(current, user) || String(intsAttr(t, 'perm')) !== String(perm)) return undefined;
    nodes.push(t);
    user = t;
    current = t.input![0]!;
  }
  const reshape = g.op(current, 'Reshape');
  if (!reshape || !g.private(current, user)) return undefined;
  const heads = reshapeHeads(g, reshape);
  if (heads === undefined) return undefined;
  nodes.push(reshape);
  return { input: reshape.input![0]!, heads, nodes };
}

/** Unwraps an optional constant scaling `Mul(x, c)` / `Mul(c, x)` / `Div(x, c)`. */
function unscale(g: GraphIndex, name: string, consumer: INodeProto): { inner: string; scale: number; node?: INodeProto } {
  const n = g.producer.get(name);
  if (!n || n.domain || !g.private(name, consumer)) return { inner: name, scale: 1 };
  if (n.opType === 'Div') {
    const c = g.scalar(n.input![1]);
    if (c !== undefined && c !== 0) return { inner: n.input![0]!, scale: 1 / c, node: n };
  }
  if (n.opType === 'Mul') {
    for (const [x, c] of [[0, 1], [1, 0]] as const) {
      const v = g.scalar(n.input![c]);
      if (v !== undefined && g.constant(n.input![x]) === undefined) return { inner: n.input![x]!, scale: v, node: n };
    }
  }
  return { inner: name, scale: 1 };
}

/**
 * Evaluates the additive-mask subgraph on a scalar attention-mask value, checking it is built only
 * from `attention_mask`, constants and elementwise/broadcast ops, with the mask unsqueezed on axes
 * 1 and 2 (`[batch, 1, 1, keys]`). Returns undefined when it is anything else.
 */
function evaluateMask(g: GraphIndex, name: string, maskInput: string): ((m: number) => number) | undefined {
  const unsqueezed: number[] = [];
  const build = (value: string, depth: number): ((m: number) => number) | undefined => {
    if (depth > 32) return undefined;
    if (value === maskInput) return (m) => m;
    const c = g.constant(value);
    if (c) return c.length > 0 && c.every((v) => v === c[0]) ? () => c[0]! : undefined;
    const n = g.producer.get(value);
    if (!n || n.domain) return undefined;
    const inputs = n.input ?? [];
    const arg = (i: number) => build(inputs[i]!, depth + 1);
    switch (n.opType) {
      case 'Identity':
      case 'Expand':
        return arg(0);
      case 'Unsqueeze': {
        const axes = intsAttr(n, 'axes') ?? g.constant(inputs[1]);
        if (!axes) return undefined;
        unsqueezed.push(...axes);
        return arg(0);
      }
      case 'Cast': {
        const to = Number(attr(n, 'to')?.i);
        const f = arg(0);
        if (!f) return undefined;
        const DT = onnx.TensorProto.DataType;
        if (to === DT.BOOL) return (m) => (f(m) !== 0 ? 1 : 0);
        if (to === DT.FLOAT || to === DT.DOUBLE || to === DT.FLOAT16) return f;
        return (m) => Math.trunc(f(m));
      }
      case 'Not': {
        const f = arg(0);
        return f && ((m) => (f(m) !== 0 ? 0 : 1));
      }
      case 'Neg': {
        const f = arg(0);
        return f && ((m) => -f(m));
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
      case 'Equal': {
        const a = arg(0);
        const b = arg(1);
        if (!a || !b) return undefined;
        const op = n.opType;
        return (m) => {
          const x = a(m);
          const y = b(m);
          return op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? Math.fround(x * y) : op === 'Div' ? x / y : x === y ? 1 : 0;
        };
      }
      case 'Where': {
        const c = arg(0);
        const a = arg(1);
        const b = arg(2);
        return c && a && b && ((m) => (c(m) !== 0 ? a(m) : b(m)));
      }
      default:
        return undefined;
    }
  };
  const f = build(name, 0);
  // Exactly axes 1 and 2 (negative axes depend on each node's rank: not accepted).
  const keysLast = [...unsqueezed].sort().join() === '1,2';
  return f && keysLast ? f : undefined;
}

interface AttentionMatch {
  q: string;
  k: string;
  v: string;
  heads: number;
  scale: number;
  maskFilterValue: number;
  /** The value the rewritten node must produce (the `[b, s, hidden]` Reshape's output). */
  output: string;
  remove: INodeProto[];
}

function matchAttention(g: GraphIndex, softmax: INodeProto, opset: number, maskInput: string): AttentionMatch | undefined {
  const axis = attr(softmax, 'axis');
  const axisValue = axis ? Number(axis.i) : opset >= 13 ? -1 : 1;
  if (axisValue !== -1 && axisValue !== 3) return undefined;

  // Softmax(Add(scores, mask)) -> MatMul(·, V) -> Transpose(0,2,1,3) -> Reshape([b, s, hidden])
  const add = g.op(softmax.input?.[0], 'Add');
  if (!add || !g.private(add.output![0]!, softmax)) return undefined;
  const probs = softmax.output![0]!;
  const pv = (g.consumers.get(probs) ?? [])[0];
  if (!pv || pv.opType !== 'MatMul' || pv.domain || pv.input?.[0] !== probs || !g.private(probs, pv)) return undefined;
  const ctxT = (g.consumers.get(pv.output![0]!) ?? [])[0];
  if (!ctxT || ctxT.opType !== 'Transpose' || String(intsAttr(ctxT, 'perm')) !== '0,2,1,3' || !g.private(pv.output![0]!, ctxT)) return undefined;
  const merge = (g.consumers.get(ctxT.output![0]!) ?? [])[0];
  if (!merge || merge.opType !== 'Reshape' || merge.domain || !g.private(ctxT.output![0]!, merge)) return undefined;
  const mergeShape = g.constant(merge.input?.[1]);
  const mergeConcat = g.op(merge.input?.[1], 'Concat');
  if (mergeShape ? mergeShape.length !== 3 : mergeConcat?.input?.length !== 3) return undefined;

  for (const [scoresIdx, maskIdx] of [[0, 1], [1, 0]] as const) {
    const maskTerm = add.input![maskIdx]!;
    const f = evaluateMask(g, maskTerm, maskInput);
    if (!f) continue;
    const filter = f(0);
    if (f(1) !== 0 || !(filter <= -1e4)) continue;

    const scaled = unscale(g, add.input![scoresIdx]!, add);
    const qk = g.op(scaled.inner, 'MatMul');
    if (!qk || !g.private(scaled.inner, scaled.node ?? add)) continue;
    // Scale may also sit on Q and K before the product (torch SDPA exports: √scale on each).
    const qs = unscale(g, qk.input![0]!, qk);
    const ks = unscale(g, qk.input![1]!, qk);
    const q = matchHeadSplit(g, qs.inner, qs.node ?? qk, [[0, 2, 1, 3]]);
    const k =
      matchHeadSplit(g, ks.inner, ks.node ?? qk, [[0, 2, 3, 1]]) ??
      matchHeadSplit(g, ks.inner, ks.node ?? qk, [[0, 1, 3, 2], [0, 2, 1, 3]]);
    const v = matchHeadSplit(g, pv.input![1]!, pv, [[0, 2, 1, 3]]);
    if (!q || !k || !v || q.heads !== k.heads || q.heads !== v.heads) continue;
    return {
      q: q.input,
      k: k.input,
      v: v.input,
      heads: q.heads,
      scale: scaled.scale * qs.scale * ks.scale,
      maskFilterValue: Math.max(filter, -3.4028234663852886e38),
      output: merge.output![0]!,
      remove: [...q.nodes, ...k.nodes, ...v.nodes, ...[qs.node, ks.node, scaled.node].filter((n): n is INodeProto => !!n), qk, add, softmax, pv, ctxT, merge],
    };
  }
  return undefined;
}

function mhaBranch(name: string, m: AttentionMatch, maskI32: string | undefined): onnxProto.onnx.IGraphProto {
  const out = `${m.output}/${name}`;
  return {
    name: `${m.output}/${name}_graph`,
    node: [
      {
        opType: 'MultiHeadAttention',
        domain: MS_DOMAIN,
        name: `${m.output}/${name}/MultiHeadAttention`,
        input: maskI32 ? [m.q, m.k, m.v, '', maskI32] : [m.q, m.k, m.v],
        output: [out],
        attribute: [
          { name: 'num_heads', type: onnx.AttributeProto.AttributeType.INT, i: m.heads },
          { name: 'scale', type: onnx.AttributeProto.AttributeType.FLOAT, f: m.scale },
          { name: 'mask_filter_value', type: onnx.AttributeProto.AttributeType.FLOAT, f: m.maskFilterValue },
        ],
      },
    ],
    output: [{ name: out, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }],
  };
}

/** Removes nodes and initializers nobody uses any more (the now-orphaned mask chains and constants). */
function pruneDead(graph: onnxProto.onnx.IGraphProto): void {
  const outputs = new Set((graph.output ?? []).map((o) => o.name!));
  let changed = true;
  while (changed) {
    changed = false;
    const used = new Set<string>(outputs);
    for (const n of graph.node ?? []) for (const i of n.input ?? []) used.add(i);
    // Inputs referenced from subgraphs (If branches) count as used.
    for (const n of graph.node ?? [])
      for (const a of n.attribute ?? []) for (const sn of a.g?.node ?? []) for (const i of sn.input ?? []) used.add(i);
    const kept = (graph.node ?? []).filter((n) => (n.output ?? []).some((o) => used.has(o)));
    if (kept.length !== graph.node!.length) {
      graph.node = kept;
      changed = true;
    } else {
      // Constants only the removed nodes read (scales, reshape shapes, the mask's min value), and
      // shape annotations of values that no longer exist.
      graph.initializer = (graph.initializer ?? []).filter((t) => used.has(t.name!));
      const produced = new Set([...(graph.input ?? []).map((i) => i.name!), ...(graph.node ?? []).flatMap((n) => n.output ?? [])]);
      graph.valueInfo = (graph.valueInfo ?? []).filter((v) => produced.has(v.name!));
    }
  }
}

export interface AttentionFusionOptions {
  /** The graph input holding the 0/1 padding mask. Default `'attention_mask'`. */
  maskInput?: string;
  /** Further edits to the decoded model before it is re-encoded (e.g. external-data locations). */
  edit?: (model: IModelProto) => void;
}

/**
 * Returns the model with its attention subgraphs fused, or undefined when none matched (or the
 * graph has no `attention_mask` input). Pure: decodes, rewrites and re-encodes the bytes.
 */
export function fuseAttention(modelBytes: Uint8Array, options: AttentionFusionOptions = {}): AttentionFusionResult | undefined {
  const maskInput = options.maskInput ?? 'attention_mask';
  const model: IModelProto = onnx.ModelProto.decode(modelBytes);
  const graph = model.graph;
  if (!graph?.node || !(graph.input ?? []).some((i) => i.name === maskInput)) return undefined;
  const opset = Number(model.opsetImport?.find((o) => !o.domain)?.version ?? 0);
  const g = new GraphIndex(graph);
  const matches: AttentionMatch[] = [];
  const taken = new Set<INodeProto>();
  for (const n of graph.node) {
    if (n.opType !== 'Softmax' || n.domain) continue;
    const m = matchAttention(g, n, opset, maskInput);
    if (m && !m.remove.some((r) => taken.has(r))) {
      matches.push(m);
      m.remove.forEach((r) => taken.add(r));
    }
  }
  if (matches.length === 0) return undefined;

  const prefix = '/bge_m3_rag/attention_fusion';
  const maskI32 = `${prefix}/key_padding_mask`;
  const noPadding = `${prefix}/no_padding`;
  const minMask = `${prefix}/min_mask`;
  const one = `${prefix}/one`;
  const shared: INodeProto[] = [
    { opType: 'Cast', name: `${maskI32}/Cast`, input: [maskInput], output: [maskI32], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: onnx.TensorProto.DataType.INT32 }] },
    // No axes: reduce over everything, which every opset's ReduceMin accepts (axes moved from
    // attribute to input in opset 18).
    { opType: 'ReduceMin', name: `${minMask}/ReduceMin`, input: [maskI32], output: [minMask], attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] },
    { opType: 'Equal', name: `${noPadding}/Equal`, input: [minMask, one], output: [noPadding] },
  ];
  graph.initializer = [...(graph.initializer ?? []), { name: one, dataType: onnx.TensorProto.DataType.INT32, dims: [], int32Data: [1] }];

  const replacement = new Map<INodeProto, INodeProto>();
  for (const m of matches) {
    // The last node of the pattern (the merging Reshape) is where the fused node goes, so
    // topological order holds: Q, K and V are all computed before it.
    replacement.set(m.remove[m.remove.length - 1]!, {
      opType: 'If',
      name: `${m.output}/If`,
      input: [noPadding],
      output: [m.output],
      attribute: [
        { name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: mhaBranch('flash', m, undefined) },
        { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: mhaBranch('masked', m, maskI32) },
      ],
    });
  }
  const nodes: INodeProto[] = [...shared];
  for (const n of graph.node) {
    const r = replacement.get(n);
    if (r) nodes.push(r);
    else if (!taken.has(n)) nodes.push(n);
  }
  graph.node = nodes;
  // The per-layer mask chains (Unsqueeze/Cast/Sub/Mul) now feed nothing.
  pruneDead(graph);
  if (!model.opsetImport?.some((o) => o.domain === MS_DOMAIN)) model.opsetImport = [...(model.opsetImport ?? []), { domain: MS_DOMAIN, version: 1 }];
  options.edit?.(model);
  return { model: onnx.ModelProto.encode(model).finish(), fused: matches.length };
}
