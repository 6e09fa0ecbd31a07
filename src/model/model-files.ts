/**
 * Finds the files of a BGE-M3 export in a local directory: the ONNX graph, the tokenizer and,
 * when the graph returns only hidden states, the head files.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BgeM3Error } from '../errors.js';

/** Graph paths tried in order when no `modelFile` is given (BAAI/Xenova layout, then root). */
export const DEFAULT_GRAPH_CANDIDATES = ['onnx/model.onnx', 'model.onnx'];

export interface ModelFiles {
  dir: string;
  graph: string;
  tokenizerJson: string;
  tokenizerConfig?: string;
  /** Directories searched for `colbert_linear.pt` / `sparse_linear.pt` (model root first). */
  headDirs: string[];
}

export function locateModelFiles(dirArg: string, modelFile?: string): ModelFiles {
  const dir = resolve(dirArg);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new BgeM3Error(
      'MISSING_FILE',
      `Model directory ${dir} does not exist or is not a directory. Pass the folder that holds the BGE-M3 export ` +
        `(with onnx/model.onnx or model.onnx, tokenizer.json and, for sparse/ColBERT, colbert_linear.pt and sparse_linear.pt).`,
    );
  }
  const candidates = modelFile ? [modelFile] : DEFAULT_GRAPH_CANDIDATES;
  const graphRel = candidates.find((c) => existsSync(join(dir, c)));
  if (!graphRel) {
    throw new BgeM3Error(
      'MISSING_FILE',
      `No ONNX graph in ${dir}: looked for ${candidates.join(', ')}. ` +
        (modelFile ? 'Check the modelFile option.' : 'Pass modelFile if the graph has another name.'),
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
  return {
    dir,
    graph,
    tokenizerJson: join(tokenizerDir, 'tokenizer.json'),
    tokenizerConfig: existsSync(tokenizerConfig) ? tokenizerConfig : undefined,
    headDirs: graphDir === dir ? [dir] : [dir, graphDir],
  };
}
