/**
 * The ONNX encoder session: loads the graph by path (so onnxruntime finds its external weight files,
 * whatever the graph calls them), recognizes which export layout it is from its output names, and
 * runs padded batches.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as ort from 'onnxruntime-node';
import { BgeM3Error } from '../errors.js';
import { fuseAttention } from './attention-fusion.js';
import { relocateExternalData } from './external-data.js';

/** How the graph's outputs map onto BGE-M3's outputs. */
export type GraphLayout =
  /** Encoder only (BAAI/bge-m3 `onnx/`, Xenova/bge-m3): heads are applied by this package. */
  | { kind: 'encoder'; hidden: string }
  /** Heads inside the graph (aapot, gpahal, yuniko-software exports). */
  | { kind: 'heads'; dense?: string; sparse?: string; colbert?: string };

const HEAD_OUTPUT_NAMES = [
  { dense: 'dense_vecs', sparse: 'sparse_vecs', colbert: 'colbert_vecs' },
  { dense: 'dense_embeddings', sparse: 'sparse_weights', colbert: 'colbert_vectors' },
];

export function detectLayout(outputNames: readonly string[], graph: string): GraphLayout {
  if (outputNames.includes('last_hidden_state')) return { kind: 'encoder', hidden: 'last_hidden_state' };
  for (const names of HEAD_OUTPUT_NAMES) {
    const present = {
      dense: outputNames.includes(names.dense) ? names.dense : undefined,
      sparse: outputNames.includes(names.sparse) ? names.sparse : undefined,
      colbert: outputNames.includes(names.colbert) ? names.colbert : undefined,
    };
    if (present.dense || present.sparse || present.colbert) return { kind: 'heads', ...present };
  }
  throw new BgeM3Error(
    'UNKNOWN_LAYOUT',
    `${graph} has outputs ${JSON.stringify(outputNames)}, which match no known BGE-M3 export. Expected ` +
      `"last_hidden_state" (encoder only, heads from colbert_linear.pt/sparse_linear.pt), or ` +
      HEAD_OUTPUT_NAMES.map((n) => `${n.dense}/${n.sparse}/${n.colbert}`).join(' or ') + ' (heads in the graph).',
  );
}

export interface EncoderBatch {
  /** Number of sequences. */
  batch: number;
  /** Padded sequence length. */
  seqLen: number;
  /** `[batch * seqLen]` ids, padded with the pad id. */
  inputIds: BigInt64Array;
  /** `[batch * seqLen]` 1 for real tokens, 0 for padding. */
  attentionMask: BigInt64Array;
}

/** Pads token id lists into one batch (right padding, like `tokenizer.pad`). */
export function padBatch(sequences: readonly number[][], padId: number): EncoderBatch {
  const batch = sequences.length;
  let seqLen = 0;
  for (const s of sequences) seqLen = Math.max(seqLen, s.length);
  const inputIds = new BigInt64Array(batch * seqLen).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(batch * seqLen);
  sequences.forEach((s, b) => {
    const row = b * seqLen;
    for (let t = 0; t < s.length; t++) {
      inputIds[row + t] = BigInt(s[t]!);
      attentionMask[row + t] = 1n;
    }
  });
  return { batch, seqLen, inputIds, attentionMask };
}

export interface EncoderLoadOptions {
  /**
   * Rewrite the graph's eager attention into onnxruntime's MultiHeadAttention (flash attention for
   * unpadded batches): see `attention-fusion.ts`. Default true.
   */
  fuseAttention?: boolean;
}

/** Whether the encoder runs with fused attention, and why not when it does not. */
export interface AttentionStatus {
  /** Attention subgraphs running as onnxruntime's fused MultiHeadAttention (0: the graph runs as exported). */
  fusedLayers: number;
  /** Why the graph runs as exported, when `fusedLayers` is 0. */
  reason?: string;
}

/**
 * Creates the session from the graph with its attention fused, when the graph has the eager
 * pattern; otherwise says why not, so the caller loads the graph as exported.
 */
async function createFusedSession(
  graph: string,
  options: ort.InferenceSession.SessionOptions,
): Promise<{ session: ort.InferenceSession; fusedLayers: number } | { reason: string }> {
  let fused: ReturnType<typeof fuseAttention>;
  // Loaded from memory, the graph's external-data paths resolve against one folder: the one that
  // holds the real files (in the hub cache, blobs/), see external-data.ts.
  let folder = dirname(graph);
  try {
    fused = fuseAttention(await readFile(graph), { edit: (model) => (folder = relocateExternalData(model, graph)) });
  } catch (e) {
    // Not decodable here: onnxruntime reports on the original file.
    return { reason: `the graph could not be rewritten (${(e as Error).message})` };
  }
  if (!fused) return { reason: 'the graph has no exported attention pattern (MatMul, Div, Add(mask), Softmax, MatMul) to fuse' };
  const extra = (options.extra ?? {}) as Record<string, unknown>;
  const session = (extra.session ?? {}) as Record<string, unknown>;
  const withFolder: ort.InferenceSession.SessionOptions = {
    ...options,
    extra: { ...extra, session: { ...session, model_external_initializers_file_folder_path: folder } },
  };
  try {
    return { session: await ort.InferenceSession.create(fused.model, withFolder), fusedLayers: fused.fused };
  } catch (e) {
    return { reason: `onnxruntime refused the fused graph (${(e as Error).message})` };
  }
}

export class EncoderSession {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly layout: GraphLayout,
    readonly graph: string,
    /** Whether attention runs fused (and why not). */
    readonly attention: AttentionStatus,
  ) {}

  /** Attention subgraphs replaced by MultiHeadAttention at load (0: the graph runs as exported). */
  get fusedAttentionLayers(): number {
    return this.attention.fusedLayers;
  }

  static async load(graph: string, options: ort.InferenceSession.SessionOptions, loadOptions: EncoderLoadOptions = {}): Promise<EncoderSession> {
    let session: ort.InferenceSession;
    const fused = (loadOptions.fuseAttention ?? true)
      ? await createFusedSession(graph, options)
      : { reason: 'turned off (fuseAttention: false or BGE_M3_RAG_FUSE_ATTENTION=0)' };
    const attention: AttentionStatus = 'session' in fused ? { fusedLayers: fused.fusedLayers } : { fusedLayers: 0, reason: fused.reason };
    try {
      session = 'session' in fused ? fused.session : await ort.InferenceSession.create(graph, options);
    } catch (cause) {
      throw new BgeM3Error(
        'CORRUPT_FILE',
        `onnxruntime cannot load ${graph}: ${(cause as Error).message}. The file (or an external-data file it names, ` +
          `such as model.onnx_data) is missing, truncated or not an ONNX model; re-download the model.`,
        { cause },
      );
    }
    for (const name of ['input_ids', 'attention_mask']) {
      if (!session.inputNames.includes(name)) {
        await session.release();
        throw new BgeM3Error('UNKNOWN_LAYOUT', `${graph} has inputs ${JSON.stringify(session.inputNames)}; a BGE-M3 export takes input_ids and attention_mask.`);
      }
    }
    let layout: GraphLayout;
    try {
      layout = detectLayout(session.outputNames, graph);
    } catch (e) {
      await session.release();
      throw e;
    }
    return new EncoderSession(session, layout, graph, attention);
  }

  /** The last dimension of an output, when the graph declares it as a number. */
  outputWidth(name: string): number | undefined {
    const meta = this.session.outputMetadata.find((m) => m.name === name);
    const shape = meta && 'shape' in meta ? (meta.shape as readonly (number | string)[]) : undefined;
    const last = shape?.[shape.length - 1];
    return typeof last === 'number' && last > 0 ? last : undefined;
  }

  /** Runs one padded batch and returns the requested outputs as flat float32 arrays. */
  async run(b: EncoderBatch, fetches: string[]): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    const shape = [b.batch, b.seqLen];
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', b.inputIds, shape),
      attention_mask: new ort.Tensor('int64', b.attentionMask, shape),
    };
    if (this.session.inputNames.includes('token_type_ids')) {
      feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(b.batch * b.seqLen), shape);
    }
    const result = await this.session.run(feeds, fetches);
    const out: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const name of fetches) {
      const t = result[name]!;
      if (t.type !== 'float32') {
        throw new BgeM3Error('UNKNOWN_LAYOUT', `${this.graph}: output ${name} is ${t.type}; expected float32.`);
      }
      out[name] = { data: t.data as Float32Array, dims: t.dims };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
