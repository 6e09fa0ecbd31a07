/**
 * Finds the files of a BGE-M3 export in a local directory: the ONNX graph (chosen by `dtype` or
 * `modelFile`), the tokenizer and, when the graph returns only hidden states, the head files.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BgeM3Error } from '../errors.js';

/** Weight precision of the ONNX graph to load (the file names follow Xenova/bge-m3). */
export type BgeM3Dtype = 'fp32' | 'fp16' | 'q8';

export const DTYPES: readonly BgeM3Dtype[] = ['fp32', 'fp16', 'q8'];

/**
 * Graph paths tried in order for each dtype: the `onnx/` folder (BAAI/bge-m3, Xenova/bge-m3), then
 * the repo root (aapot/bge-m3-onnx, gpahal/bge-m3-onnx-int8).
 */
export const GRAPH_CANDIDATES: Readonly<Record<BgeM3Dtype, readonly string[]>> = {
  fp32: ['onnx/model.onnx', 'model.onnx'],
  fp16: ['onnx/model_fp16.onnx', 'model_fp16.onnx'],
  q8: ['onnx/model_quantized.onnx', 'model_quantized.onnx'],
};

/** Graph paths tried in order when neither `modelFile` nor `dtype` is given. */
export const DEFAULT_GRAPH_CANDIDATES = GRAPH_CANDIDATES.fp32;

/** Checks a `dtype` option; `undefined` means fp32. */
export function checkDtype(dtype: unknown): BgeM3Dtype {
  if (dtype === undefined) return 'fp32';
  if (typeof dtype === 'string' && (DTYPES as readonly string[]).includes(dtype)) return dtype as BgeM3Dtype;
  throw new BgeM3Error(
    'INVALID_ARGUMENT',
    `dtype must be one of ${DTYPES.map((d) => `'${d}'`).join(', ')} (onnx/model.onnx, onnx/model_fp16.onnx, onnx/model_quantized.onnx); got ${JSON.stringify(dtype)}.`,
  );
}

/** The graph paths to try: `[modelFile]` if given, else the dtype's candidates. */
export function graphCandidates(options: { modelFile?: string; dtype?: BgeM3Dtype } = {}): string[] {
  if (options.modelFile !== undefined) {
    if (typeof options.modelFile !== 'string' || options.modelFile.length === 0) {
      throw new BgeM3Error('INVALID_ARGUMENT', `modelFile must be a non-empty path relative to the model directory; got ${JSON.stringify(options.modelFile)}.`);
    }
    return [options.modelFile.replace(/\\/g, '/').replace(/^\.\//, '')];
  }
  return [...GRAPH_CANDIDATES[checkDtype(options.dtype)]];
}

export interface ModelFiles {
  dir: string;
  graph: string;
  tokenizerJson: string;
  tokenizerConfig?: string;
  /** Directories searched for `colbert_linear.pt` / `sparse_linear.pt` (model root first, then `heads` directories). */
  headDirs: string[];
}

export interface LocateOptions {
  /** The graph, relative to the directory; overrides `dtype`. */
  modelFile?: string;
  /** Which graph to pick when `modelFile` is not given. Default `'fp32'`. */
  dtype?: BgeM3Dtype;
  /** Further directories to take head files from when the model's own lack them (the `heads` option). */
  extraHeadDirs?: readonly string[];
}

export function locateModelFiles(dirArg: string, optionsOrModelFile: LocateOptions | string = {}): ModelFiles {
  const options: LocateOptions = typeof optionsOrModelFile === 'string' ? { modelFile: optionsOrModelFile } : optionsOrModelFile;
  const dir = resolve(dirArg);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new BgeM3Error(
      'MISSING_FILE',
      `Model directory ${dir} does not exist or is not a directory. Pass the folder that holds the BGE-M3 export ` +
        `(with onnx/model.onnx or model.onnx, tokenizer.json and, for sparse/ColBERT, colbert_linear.pt and sparse_linear.pt).`,
    );
  }
  const candidates = graphCandidates(options);
  const graphRel = candidates.find((c) => existsSync(join(dir, c)));
  if (!graphRel) {
    throw new BgeM3Error(
      'MISSING_FILE',
      `No ONNX graph in ${dir}: looked for ${candidates.join(', ')}. ` +
        (options.modelFile ? 'Check the modelFile option.' : `Pass modelFile if the graph has another name${options.dtype && options.dtype !== 'fp32' ? `, or another dtype than '${options.dtype}'` : ''}.`),
    );
  }
  const graph = join(dir, graphRel);
  const graphDir = dirname(graph);
  // The tokenizer sits in the model root (BAAI/bge-m3) or beside the graph (exports that copy it).
  const tokenizerDir = [dir, graphDir].find((d) => existsSync(join(d, 'tokenizer.json')));
  if (!tokenizerDir) {
    throw new BgeM3Error('MISSING_FILE', `No tokenizer.json in ${dir}${graphDir !== dir ? ` or ${graphDir}` : ''}; copy it from the model repository.`);
  }
  const tokenizerConfig = join(tokenizerDir, 'tokenizer_config.json');
  const ownHeadDirs = graphDir === dir ? [dir] : [dir, graphDir];
  const extra = (options.extraHeadDirs ?? []).map((d) => resolve(d)).filter((d) => !ownHeadDirs.includes(d));
  return {
    dir,
    graph,
    tokenizerJson: join(tokenizerDir, 'tokenizer.json'),
    tokenizerConfig: existsSync(tokenizerConfig) ? tokenizerConfig : undefined,
    headDirs: [...ownHeadDirs, ...extra],
  };
}
