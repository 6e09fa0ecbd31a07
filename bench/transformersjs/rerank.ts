/**
 * Child process of `npm run bench:latency`: a cross-encoder reranker (bge-reranker-v2-m3's shape)
 * through transformers.js (`@huggingface/transformers`, installed in this folder), called the way
 * its documentation reranks with a cross-encoder:
 *
 * ```js
 * const tokenizer = await AutoTokenizer.from_pretrained(id);
 * const model = await AutoModelForSequenceClassification.from_pretrained(id, { dtype });
 * const inputs = tokenizer(new Array(passages.length).fill(query), { text_pair: passages, padding: true, truncation: true });
 * const scores = (await model(inputs)).logits.sigmoid().tolist();
 * ```
 *
 * then sorted by score. It stays alive and answers `{ cmd: 'rerank', query, passages }` commands
 * (bench/lib/command-child.ts), timing each call itself (tokenization, the one padded batch of
 * pairs, the sigmoid and the sort), so the parent can interleave it with its own measurements.
 * Config (JSON, last argument): `{ modelDir, dtype: 'fp32' | 'int8', threads? }`; the model is read
 * from the local folder (no network) with transformers.js's default session options unless
 * `threads` is given.
 */
import { basename, dirname } from 'node:path';
import { currentRssMB, peakRssMB, resetPeakRss } from '../lib/child-protocol.js';
import { serveCommands, type Command } from '../lib/command-child.js';

interface Tensor {
  dims: number[];
  sigmoid(): Tensor;
  tolist(): number[][];
}

/** The part of `@huggingface/transformers` used here (typed locally: the library is installed on demand). */
interface TransformersJs {
  env: { allowRemoteModels: boolean; allowLocalModels: boolean; localModelPath: string };
  AutoTokenizer: {
    from_pretrained(id: string): Promise<(texts: string[], options: { text_pair: string[]; padding: boolean; truncation: boolean }) => { input_ids: Tensor; attention_mask: Tensor }>;
  };
  AutoModelForSequenceClassification: {
    from_pretrained(id: string, options: { dtype: string; session_options?: Record<string, unknown> }): Promise<{
      (inputs: Record<string, Tensor>): Promise<{ logits: Tensor }>;
      dispose(): Promise<void>;
    }>;
  };
}

interface Config {
  modelDir: string;
  dtype: 'fp32' | 'int8';
  threads?: number;
}

// A computed specifier keeps the package's type-check independent of this folder being installed.
const TRANSFORMERS_JS = '@huggingface/transformers';

const config = JSON.parse(process.argv[process.argv.length - 1]!) as Config;
let rank: (query: string, passages: string[]) => Promise<{ order: { index: number; score: number }[]; paddedShape: number[] }>;

serveCommands(
  async () => {
    const t0 = performance.now();
    const { env, AutoTokenizer, AutoModelForSequenceClassification } = (await import(TRANSFORMERS_JS)) as TransformersJs;
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${dirname(config.modelDir)}/`;
    const id = basename(config.modelDir);
    const tokenizer = await AutoTokenizer.from_pretrained(id);
    const model = await AutoModelForSequenceClassification.from_pretrained(id, {
      dtype: config.dtype === 'fp32' ? 'fp32' : 'q8',
      ...(config.threads ? { session_options: { intraOpNumThreads: config.threads } } : {}),
    });
    rank = async (query, passages) => {
      const inputs = tokenizer(new Array<string>(passages.length).fill(query), { text_pair: passages, padding: true, truncation: true });
      const scores = (await model(inputs)).logits.sigmoid().tolist().map((row) => row[0]!);
      const order = scores.map((score, index) => ({ index, score })).sort((a, b) => b.score - a.score);
      return { order, paddedShape: inputs.input_ids.dims };
    };
    await rank('warm-up', ['allocate buffers before timing']);
    return { seconds: (performance.now() - t0) / 1000, rssMB: currentRssMB() };
  },
  async (command: Command) => {
    if (command.cmd !== 'rerank') throw new Error(`unknown command ${command.cmd}`);
    resetPeakRss();
    const t0 = performance.now();
    const { order, paddedShape } = await rank(command.query as string, command.passages as string[]);
    const ms = performance.now() - t0;
    return { ms, order, paddedShape, peakRssMB: peakRssMB() };
  },
);
