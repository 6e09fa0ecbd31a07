/**
 * Finds and reads BGE-M3's two head layers (`colbert_linear`, `sparse_linear`) from the files the
 * BAAI/bge-m3 repository ships (`<name>.pt`) or their `.safetensors` equivalents.
 *
 * A head file is opened only if it is a regular file of at most {@link MAX_HEAD_FILE_BYTES} whose
 * symlinks stay inside its directory (or, in the hub cache, its repo's `blobs/`); see
 * `shared/regular-file.ts`. Its tensors' shapes are checked before any weight is inflated.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BgeM3Error } from '../../errors.js';
import { readModelFile } from '../../shared/regular-file.js';
import { readSafetensors } from './safetensors.js';
import type { LinearWeights, WeightTensor } from './tensor.js';
import { readTorchStateDict } from './torch-state-dict.js';

export type HeadName = 'colbert_linear' | 'sparse_linear';

/**
 * The largest head file read: 64 MiB. BGE-M3's real heads are 2.1 MB (colbert_linear.pt: a
 * 1024x1024 + 1024 fp16 Linear) and 3 KB (sparse_linear.pt); 64 MiB is 30x the larger, room for a
 * 4096-wide head in fp32.
 */
export const MAX_HEAD_FILE_BYTES = 64 * 1024 * 1024;

/** The file names tried for a head, in order of preference. */
export function headFileNames(head: HeadName): string[] {
  return [`${head}.pt`, `${head}.safetensors`];
}

/** The first existing head file among `dirs`, or undefined. */
export function findHeadFile(head: HeadName, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    for (const name of headFileNames(head)) {
      const path = join(dir, name);
      if (existsSync(path)) return path;
    }
  }
  return undefined;
}

function pick<T>(tensors: ReadonlyMap<string, T>, suffix: 'weight' | 'bias'): T | undefined {
  const exact = tensors.get(suffix);
  if (exact) return exact;
  const matches = [...tensors.keys()].filter((k) => k.endsWith(`.${suffix}`));
  return matches.length === 1 ? tensors.get(matches[0]!) : undefined;
}

/** Checks that `shapes` hold a Linear layer's weight [out, hidden] and bias [out]; throws CORRUPT_FILE naming `path`. */
function checkLinearShapes(shapes: ReadonlyMap<string, readonly number[]>, path: string, hidden: number | undefined, outFeatures: number | undefined): void {
  const weight = pick(shapes, 'weight');
  const bias = pick(shapes, 'bias');
  if (!weight || !bias) {
    const names = [...shapes.keys()];
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${path} must hold a Linear layer's "weight" and "bias"; found ${JSON.stringify(names.length > 20 ? [...names.slice(0, 20), '…'] : names)}.`,
    );
  }
  const [out, inp] = weight;
  const ok =
    weight.length === 2 &&
    (hidden === undefined || inp === hidden) &&
    (outFeatures === undefined || out === outFeatures) &&
    bias.length === 1 &&
    bias[0] === out;
  if (!ok) {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${path}: weight ${JSON.stringify(weight)} / bias ${JSON.stringify(bias)} do not fit a Linear layer ` +
        `from the encoder's hidden size ${hidden ?? '?'} to ${outFeatures ?? 'N'} outputs; is this the right model's head file?`,
    );
  }
}

export interface ReadHeadOptions {
  /** The model directory the file belongs to (its symlinks must stay inside). Default: the file's own directory. */
  root?: string;
}

/**
 * Reads a Linear layer from `path` and checks its shape: `weight [outFeatures, hidden]`,
 * `bias [outFeatures]`. `outFeatures` undefined accepts any output width (ColBERT may be reduced).
 */
export async function readLinearHead(
  path: string,
  hidden: number | undefined,
  outFeatures?: number,
  options: ReadHeadOptions = {},
): Promise<LinearWeights> {
  const buf = await readModelFile(path, {
    root: options.root ?? dirname(path),
    what: `the ${basename(path).replace(/\.(pt|safetensors)$/, '')} head`,
    maxBytes: MAX_HEAD_FILE_BYTES,
  });
  const validate = (shapes: ReadonlyMap<string, readonly number[]>) => checkLinearShapes(shapes, path, hidden, outFeatures);
  let tensors: Map<string, WeightTensor>;
  try {
    tensors = path.endsWith('.safetensors') ? readSafetensors(buf, path, { validate }) : readTorchStateDict(buf, path, { validate });
  } catch (e) {
    if (e instanceof BgeM3Error) throw e;
    // A malformed file can trip a RangeError/TypeError deep in a reader: report it against the file.
    throw new BgeM3Error('CORRUPT_FILE', `${path}: cannot read it (${(e as Error).message}); re-download it.`, { cause: e });
  }
  checkLinearShapes(new Map([...tensors].map(([name, t]) => [name, t.shape])), path, hidden, outFeatures);
  return { weight: pick(tensors, 'weight')!, bias: pick(tensors, 'bias')! };
}
