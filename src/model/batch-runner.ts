/**
 * Runs one padded batch through the ONNX sessions and reduces it to per-text results: CLS pooling,
 * lexical weights and ColBERT rows (applying the head graph for encoder-only exports, or reading the
 * head outputs of exports that have them in the graph). Framework-free and thread-agnostic: it runs
 * inside the inference worker (see `inference-backend.ts`), or in the calling thread when asked to.
 */
import type * as ort from 'onnxruntime-node';
import { BgeM3Error } from '../errors.js';
import { normalizeInPlace, type LexicalWeights } from '../scores.js';
import { EncoderSession, padBatch, type AttentionStatus, type EncoderBatch, type GraphLayout } from './encoder.js';
import { HeadsRunner } from './heads.js';
import type { SpecialTokenIds } from './tokenizer.js';
import { findHeadFile, headFileNames, readLinearHead, type HeadName } from './weights/linear-head.js';

/** Which outputs a batch should produce. */
export interface BatchWants {
  dense: boolean;
  sparse: boolean;
  colbert: boolean;
}

/** Per-text outputs of one batch, in the batch's order. */
export interface BatchOutputs {
  dense?: Float32Array[];
  sparse?: LexicalWeights[];
  colbert?: Float32Array[][];
}

/** Everything needed to open the sessions; plain data, so it can be sent to a worker thread. */
export interface RunnerSpec {
  graph: string;
  /** Directories searched for `colbert_linear` / `sparse_linear` head files. */
  headDirs: string[];
  sessionOptions: ort.InferenceSession.SessionOptions;
  /** `hidden_size` from config.json, when there is one. */
  configHiddenSize?: number;
  special: SpecialTokenIds;
  /** Fuse the graph's attention at load (see `attention-fusion.ts`). Default true. */
  fuseAttention?: boolean;
}

/** What the caller learns about the model once the sessions are open. */
export interface RunnerInfo {
  layout: GraphLayout;
  graph: string;
  dim: number;
  /** For each head file that is absent: a message naming the files looked for and where. */
  missingHeads: Partial<Record<HeadName, string>>;
  /** Whether the encoder's attention is fused (and why not). */
  attention: AttentionStatus;
}

export class BatchRunner {
  private constructor(
    private readonly encoder: EncoderSession,
    private readonly heads: HeadsRunner | undefined,
    readonly info: RunnerInfo,
    private readonly special: SpecialTokenIds,
  ) {}

  /** Opens the encoder session, reads the head files (if the graph needs them) and opens the heads session. */
  static async open(spec: RunnerSpec): Promise<BatchRunner> {
    const encoder = await EncoderSession.load(spec.graph, spec.sessionOptions, { fuseAttention: spec.fuseAttention });
    try {
      const layout = encoder.layout;
      const declared =
        layout.kind === 'encoder' ? encoder.outputWidth(layout.hidden) : layout.dense ? encoder.outputWidth(layout.dense) : undefined;
      let dim = declared ?? spec.configHiddenSize;
      let heads: HeadsRunner | undefined;
      const missingHeads: Partial<Record<HeadName, string>> = {};
      if (layout.kind === 'encoder') {
        const colbertPath = findHeadFile('colbert_linear', spec.headDirs);
        const sparsePath = findHeadFile('sparse_linear', spec.headDirs);
        const colbert = colbertPath ? await readLinearHead(colbertPath, dim) : undefined;
        dim ??= colbert?.weight.shape[1];
        const sparse = sparsePath ? await readLinearHead(sparsePath, dim, 1) : undefined;
        dim ??= sparse?.weight.shape[1];
        if (!colbertPath) missingHeads.colbert_linear = describeMissingHead('colbert_linear', spec.headDirs);
        if (!sparsePath) missingHeads.sparse_linear = describeMissingHead('sparse_linear', spec.headDirs);
        if (dim !== undefined && (colbert || sparse)) {
          // Only the threading options carry over: file-writing options such as
          // optimizedModelFilePath or profiling belong to the encoder session alone.
          const { intraOpNumThreads, interOpNumThreads, executionMode } = spec.sessionOptions;
          const threading = Object.fromEntries(
            Object.entries({ intraOpNumThreads, interOpNumThreads, executionMode }).filter(([, v]) => v !== undefined),
          );
          heads = await HeadsRunner.create(dim, { colbert, sparse }, { ...threading, graphOptimizationLevel: 'all' });
        }
      }
      if (dim === undefined) {
        throw new BgeM3Error(
          'UNKNOWN_LAYOUT',
          `Cannot tell the hidden size of ${spec.graph}: the graph does not declare it and there is no config.json with hidden_size beside it.`,
        );
      }
      return new BatchRunner(encoder, heads, { layout, graph: spec.graph, dim, missingHeads, attention: encoder.attention }, spec.special);
    } catch (e) {
      await encoder.release();
      throw e;
    }
  }

  /** Encodes one batch of token-id sequences (each with `<s>` … `</s>`). */
  async run(sequences: number[][], want: BatchWants): Promise<BatchOutputs> {
    const batch = padBatch(sequences, this.special.pad);
    try {
      return await (this.info.layout.kind === 'encoder'
        ? this.runEncoderLayout(batch, sequences, want)
        : this.runHeadsLayout(batch, sequences, want));
    } catch (cause) {
      if (cause instanceof BgeM3Error) throw cause;
      throw new BgeM3Error(
        'INFERENCE_FAILED',
        `onnxruntime failed on a batch of ${batch.batch} text(s) × ${batch.seqLen} tokens with ${this.info.graph}: ${(cause as Error).message}. ` +
          'If the model files are intact, try a smaller maxBatchTokens or maxLength.',
        { cause },
      );
    }
  }

  /** The output `name` of a run, checked to have the shape `expected` (`undefined` entries: any size). */
  private output(
    res: Record<string, { data: Float32Array; dims: readonly number[] }>,
    name: string,
    expected: (number | undefined)[],
  ): { data: Float32Array; dims: readonly number[] } {
    const out = res[name];
    const ok = out && out.dims.length === expected.length && expected.every((d, i) => d === undefined || out.dims[i] === d);
    if (!ok || out.data.length !== out.dims.reduce((a, b) => a * b, 1)) {
      throw new BgeM3Error(
        'UNKNOWN_LAYOUT',
        `${this.info.graph}: output ${name} has shape ${out ? JSON.stringify(out.dims) : 'none'}; expected ` +
          `[${expected.map((d) => d ?? '?').join(', ')}]. The graph is not a BGE-M3 export this package can read.`,
      );
    }
    return out;
  }

  async release(): Promise<void> {
    try {
      await this.encoder.release();
    } finally {
      await this.heads?.release();
    }
  }

  /** Encoder-only graph: CLS pooling here, sparse/ColBERT through the heads session on packed rows. */
  private async runEncoderLayout(batch: EncoderBatch, sequences: number[][], want: BatchWants): Promise<BatchOutputs> {
    const layout = this.info.layout as { kind: 'encoder'; hidden: string };
    const H = this.info.dim;
    const T = batch.seqLen;
    const { data: hidden } = this.output(await this.encoder.run(batch, [layout.hidden]), layout.hidden, [batch.batch, T, H]);
    const out: BatchOutputs = {};
    if (want.dense) {
      out.dense = sequences.map((_, b) => normalizeInPlace(hidden.slice(b * T * H, b * T * H + H)));
    }
    if (want.sparse || want.colbert) {
      // Rows 1..len-1 of each text (everything but <s>, no padding), packed.
      let rows = 0;
      for (const s of sequences) rows += s.length - 1;
      const packed = new Float32Array(rows * H);
      let r = 0;
      sequences.forEach((s, b) => {
        const from = (b * T + 1) * H;
        packed.set(hidden.subarray(from, from + (s.length - 1) * H), r * H);
        r += s.length - 1;
      });
      const heads = await this.heads!.run(packed, rows, { sparse: want.sparse, colbert: want.colbert });
      if (heads.sparse) {
        let row = 0;
        out.sparse = sequences.map((s) => {
          const weights = this.lexicalWeights(s, 1, (t) => heads.sparse![row + t - 1]!);
          row += s.length - 1;
          return weights;
        });
      }
      if (heads.colbert) {
        const D = heads.colbert.length / Math.max(rows, 1);
        let row = 0;
        out.colbert = sequences.map((s) => {
          const vecs = splitRows(heads.colbert!.slice(row * D, (row + s.length - 1) * D), s.length - 1, D);
          row += s.length - 1;
          return vecs;
        });
      }
    }
    return out;
  }

  /** Heads-in-graph export: outputs are already pooled/normalized; strip padding and filter. */
  private async runHeadsLayout(batch: EncoderBatch, sequences: number[][], want: BatchWants): Promise<BatchOutputs> {
    const layout = this.info.layout as { kind: 'heads'; dense?: string; sparse?: string; colbert?: string };
    const fetches = [want.dense && layout.dense, want.sparse && layout.sparse, want.colbert && layout.colbert].filter(
      (x): x is string => typeof x === 'string',
    );
    const res = await this.encoder.run(batch, fetches);
    const T = batch.seqLen;
    const out: BatchOutputs = {};
    const B = batch.batch;
    if (want.dense) {
      const H = this.info.dim;
      const { data } = this.output(res, layout.dense!, [B, H]);
      out.dense = sequences.map((_, b) => data.slice(b * H, b * H + H));
    }
    if (want.sparse) {
      const sparse = res[layout.sparse!];
      const { data } = this.output(res, layout.sparse!, sparse?.dims.length === 2 ? [B, T] : [B, T, 1]);
      out.sparse = sequences.map((s, b) => this.lexicalWeights(s, 0, (t) => data[b * T + t]!));
    }
    if (want.colbert) {
      // Known exports return positions 1.. (`seq - 1` rows); one that keeps all `seq` rows has <s> first.
      const { data, dims } = this.output(res, layout.colbert!, [B, res[layout.colbert!]?.dims[1] === T ? T : T - 1, undefined]);
      const rowsPer = dims[1]!;
      const D = dims[2]!;
      const skip = rowsPer === T ? 1 : 0;
      out.colbert = sequences.map((s, b) => {
        const from = (b * rowsPer + skip) * D;
        return splitRows(data.slice(from, from + (s.length - 1) * D), s.length - 1, D);
      });
    }
    return out;
  }

  /**
   * `_process_token_weights`: for positions `from..len-1`, drop `<s>`, `</s>`, `<pad>`, `<unk>` and
   * weights <= 0; keep the maximum weight per token id.
   */
  private lexicalWeights(ids: number[], from: number, weightAt: (position: number) => number): LexicalWeights {
    const { bos, eos, pad, unk } = this.special;
    const out: LexicalWeights = {};
    for (let t = from; t < ids.length; t++) {
      const id = ids[t]!;
      if (id === bos || id === eos || id === pad || id === unk) continue;
      const w = weightAt(t);
      if (!(w > 0)) continue;
      const prev = out[id];
      if (prev === undefined || w > prev) out[id] = w;
    }
    return out;
  }
}

function splitRows(flat: Float32Array, rows: number, width: number): Float32Array[] {
  const out = new Array<Float32Array>(rows);
  for (let r = 0; r < rows; r++) out[r] = flat.subarray(r * width, (r + 1) * width);
  return out;
}

function describeMissingHead(head: HeadName, dirs: string[]): string {
  return `no ${headFileNames(head).join(' or ')} in ${dirs.join(' or ')}; copy it from the BAAI/bge-m3 repository`;
}
