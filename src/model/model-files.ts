/**
 * Finds the files of a BGE-M3 export in a local directory: the ONNX graph (chosen by `dtype` or
 * `modelFile`), its external-data files, the tokenizer, config.json and, when the graph returns
 * only hidden states, the head directories.
 *
 * Every file found is checked before anything opens it (`shared/regular-file.ts`): a regular file
 * (a FIFO or device would block or read forever), within its size cap where it is read into
 * memory, and reached through symlinks that stay inside the model directory or, in the Hugging
 * Face cache, its repo's `blobs/`. Only a graph named explicitly by `modelFile` (and its external
 * data) may be a symlink to elsewhere, as the caller chose that file.
 */
import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BgeM3Error } from '../errors.js';
import { checkModelFile, fileSystemError, type ModelFileRule } from '../shared/regular-file.js';
import {
  ATTR_G,
  ATTR_GRAPHS,
  ATTR_SPARSE_TENSOR,
  ATTR_SPARSE_TENSORS,
  ATTR_T,
  ATTR_TENSORS,
  ENTRY_KEY,
  ENTRY_VALUE,
  FUNCTION_NODE,
  GRAPH_INITIALIZER,
  GRAPH_NODE,
  GRAPH_SPARSE_INITIALIZER,
  MODEL_FUNCTIONS,
  MODEL_GRAPH,
  NODE_ATTRIBUTE,
  SPARSE_INDICES,
  SPARSE_VALUES,
  TENSOR_EXTERNAL_DATA,
} from './graph-info.js'; // onnx.proto field numbers

const MiB = 1024 * 1024;
/** The largest .onnx graph: 2 GiB, protobuf's limit for one message (BGE-M3's fp32 graph is 0.7 MB + 2.2 GB external data). */
export const MAX_GRAPH_BYTES = 2048 * MiB;
/** The largest tokenizer.json: 256 MiB (BGE-M3's is 17 MB). */
export const MAX_TOKENIZER_BYTES = 256 * MiB;
/** The largest tokenizer_config.json / config.json: 16 MiB (BGE-M3's are 1.3 KB and 0.7 KB). */
export const MAX_CONFIG_BYTES = 16 * MiB;

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
  /** The graph's external-data files found on disk (absolute paths, each checked), in order of first use. */
  externalData: string[];
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
  const graphRule: ModelFileRule = { root: dir, what: 'the ONNX graph', maxBytes: MAX_GRAPH_BYTES, anywhere: options.modelFile !== undefined };
  checkModelFile(graph, graphRule);
  const graphDir = dirname(graph);
  // The tokenizer sits in the model root (BAAI/bge-m3) or beside the graph (exports that copy it).
  const tokenizerDir = [dir, graphDir].find((d) => existsSync(join(d, 'tokenizer.json')));
  if (!tokenizerDir) {
    throw new BgeM3Error('MISSING_FILE', `No tokenizer.json in ${dir}${graphDir !== dir ? ` or ${graphDir}` : ''}; copy it from the model repository.`);
  }
  const tokenizerJson = join(tokenizerDir, 'tokenizer.json');
  checkModelFile(tokenizerJson, { root: dir, what: 'the tokenizer', maxBytes: MAX_TOKENIZER_BYTES });
  const tokenizerConfig = join(tokenizerDir, 'tokenizer_config.json');
  // Optional files count as there as readers see them (existsSync): a dangling link is skipped, as it is when read.
  const hasTokenizerConfig = existsSync(tokenizerConfig);
  if (hasTokenizerConfig) checkModelFile(tokenizerConfig, { root: dir, what: 'the tokenizer config', maxBytes: MAX_CONFIG_BYTES });
  // config.json is read from the model root or beside the graph (model-config.ts).
  for (const d of new Set([dir, graphDir])) {
    const config = join(d, 'config.json');
    if (existsSync(config)) checkModelFile(config, { root: dir, what: 'the model config', maxBytes: MAX_CONFIG_BYTES });
  }
  const externalData = locateExternalData(graph, { ...graphRule, what: 'an external-data file of the ONNX graph', maxBytes: undefined });
  const ownHeadDirs = graphDir === dir ? [dir] : [dir, graphDir];
  const extra = (options.extraHeadDirs ?? []).map((d) => resolve(d)).filter((d) => !ownHeadDirs.includes(d));
  return {
    dir,
    graph,
    externalData,
    tokenizerJson,
    tokenizerConfig: hasTokenizerConfig ? tokenizerConfig : undefined,
    headDirs: [...ownHeadDirs, ...extra],
  };
}

/**
 * Whether something is at `path`: what `existsSync` sees (a file, or a symlink to one), or a
 * symlink that cannot be followed (a loop, or a link to a missing file), which the check reports
 * rather than silently skipping.
 */
function present(path: string): boolean {
  if (existsSync(path)) return true;
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Finds and checks the external-data files the graph names, where onnxruntime and
 * `external-data.ts` look for them: beside the graph, else beside the real file of a symlinked
 * graph. A location on neither is left for the loader to report as missing.
 */
function locateExternalData(graph: string, rule: ModelFileRule): string[] {
  const folders = [dirname(graph)];
  try {
    const realDir = dirname(realpathSync.native(graph));
    if (realDir !== folders[0]) folders.push(realDir);
  } catch {
    // Checked above: not reached.
  }
  const out: string[] = [];
  for (const location of externalDataLocations(graph)) {
    const candidates = folders.map((f) => join(f, location));
    const found = candidates.find((p) => existsSync(p)) ?? candidates.find((p) => present(p));
    if (!found) continue;
    checkModelFile(found, rule);
    if (!out.includes(found)) out.push(found);
  }
  return out;
}

/** Subgraphs nested deeper than this are not searched (BGE-M3's graphs have none). */
const MAX_GRAPH_NESTING = 32;

/** Thrown inside the walk: the graph is not what it should be; the loader reports it in its own words. */
class StopWalk extends Error {}

/**
 * The external-data `location`s of the ONNX graph at `path`, read synchronously with positional
 * reads that skip every tensor's bytes (an fp16 graph with inline weights is over 1 GB). Best
 * effort: on a malformed graph it returns what it found, and graph-info.ts / onnxruntime report
 * the problem as before.
 */
export function externalDataLocations(path: string): string[] {
  let fd: number;
  try {
    // Non-blocking: the graph was checked to be a regular file, but a FIFO swapped in since must not block.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (cause) {
    throw fileSystemError(path, 'the ONNX graph', cause);
  }
  const found: string[] = [];
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new BgeM3Error('CORRUPT_FILE', `${path} (the ONNX graph) changed while it was being opened: it is no longer a regular file.`);
    const size = st.size;
    const WINDOW = 1 << 16;
    let buf = Buffer.alloc(0);
    let bufStart = 0;
    const fill = (pos: number, len: number) => {
      if (pos + len > size) throw new StopWalk();
      const n = Math.min(Math.max(len, WINDOW), size - pos);
      buf = Buffer.alloc(n);
      const got = readSync(fd, buf, 0, n, pos);
      buf = buf.subarray(0, got);
      bufStart = pos;
      if (got < len) throw new StopWalk();
    };
    const byte = (pos: number) => {
      if (pos < bufStart || pos >= bufStart + buf.length) fill(pos, 1);
      return buf[pos - bufStart]!;
    };
    const text = (start: number, end: number) => {
      if (start < bufStart || end > bufStart + buf.length) fill(start, end - start);
      return buf.toString('utf8', start - bufStart, end - bufStart);
    };
    /** Calls `visit(field, start, end)` for each length-delimited field of the message in [start, end). */
    const fields = (start: number, end: number, visit: (field: number, start: number, end: number) => void) => {
      let pos = start;
      const varint = () => {
        let result = 0;
        let mul = 1;
        for (let i = 0; i < 10; i++) {
          if (pos >= end) throw new StopWalk();
          const b = byte(pos++);
          result += (b & 0x7f) * mul;
          if ((b & 0x80) === 0) return result;
          mul *= 128;
        }
        throw new StopWalk();
      };
      while (pos < end) {
        const tag = varint();
        const wire = tag & 7;
        if (wire === 0) varint();
        else if (wire === 1) pos += 8;
        else if (wire === 5) pos += 4;
        else if (wire === 2) {
          const len = varint();
          if (pos + len > end) throw new StopWalk();
          const s = pos;
          pos += len;
          visit(Math.floor(tag / 8), s, s + len);
        } else throw new StopWalk();
      }
    };
    const tensor = (start: number, end: number) =>
      fields(start, end, (f, s, e) => {
        if (f !== TENSOR_EXTERNAL_DATA) return;
        let key: string | undefined;
        let value: string | undefined;
        fields(s, e, (g, a, b) => {
          // A key or file name longer than 4 KiB is no external-data reference onnxruntime opens.
          if (b - a > 4096) return;
          if (g === ENTRY_KEY) key = text(a, b);
          else if (g === ENTRY_VALUE) value = text(a, b);
        });
        if (key === 'location' && value) {
          const normalized = value.replace(/^\.\//, '');
          if (!found.includes(normalized)) found.push(normalized);
        }
      });
    const sparse = (start: number, end: number) =>
      fields(start, end, (f, s, e) => {
        if (f === SPARSE_VALUES || f === SPARSE_INDICES) tensor(s, e);
      });
    const graphAt = (start: number, end: number, depth: number): void => {
      if (depth > MAX_GRAPH_NESTING) return;
      fields(start, end, (f, s, e) => {
        if (f === GRAPH_NODE) node(s, e, depth);
        else if (f === GRAPH_INITIALIZER) tensor(s, e);
        else if (f === GRAPH_SPARSE_INITIALIZER) sparse(s, e);
      });
    };
    const node = (start: number, end: number, depth: number) =>
      fields(start, end, (f, s, e) => {
        if (f !== NODE_ATTRIBUTE) return;
        fields(s, e, (g, a, b) => {
          if (g === ATTR_T || g === ATTR_TENSORS) tensor(a, b);
          else if (g === ATTR_G || g === ATTR_GRAPHS) graphAt(a, b, depth + 1);
          else if (g === ATTR_SPARSE_TENSOR || g === ATTR_SPARSE_TENSORS) sparse(a, b);
        });
      });
    fields(0, size, (f, s, e) => {
      if (f === MODEL_GRAPH) graphAt(s, e, 0);
      else if (f === MODEL_FUNCTIONS) {
        fields(s, e, (g, a, b) => {
          if (g === FUNCTION_NODE) node(a, b, 0);
        });
      }
    });
  } catch (e) {
    if (e instanceof BgeM3Error) throw e;
    if (!(e instanceof StopWalk)) throw fileSystemError(path, 'the ONNX graph', e);
  } finally {
    closeSync(fd);
  }
  return found;
}
