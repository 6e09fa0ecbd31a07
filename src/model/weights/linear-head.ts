/**
 * Finds and reads BGE-M3's two head layers (`colbert_linear`, `sparse_linear`) from the files the
 * BAAI/bge-m3 repository ships (`<name>.pt`) or their `.safetensors` equivalents.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BgeM3Error } from '../../errors.js';
import { readSafetensors } from './safetensors.js';
import type { LinearWeights, WeightTensor } from './tensor.js';
import { readTorchStateDict } from './torch-state-dict.js';

export type HeadName = 'colbert_linear' | 'sparse_linear';

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

function pick(tensors: Map<string, WeightTensor>, suffix: 'weight' | 'bias'): WeightTensor | undefined {
  const exact = tensors.get(suffix);
  if (exact) return exact;
  const matches = [...tensors.keys()].filter((k) => k.endsWith(`.${suffix}`));
  return matches.length === 1 ? tensors.get(matches[0]!) : undefined;
}

/**
 * Reads a Linear layer from `path` and checks its shape: `weight [outFeatures, hidden]`,
 * `bias [outFeatures]`. `outFeatures` undefined accepts any output width (ColBERT may be reduced).
 */
export async function readLinearHead(path: string, hidden: number | undefined, outFeatures?: number): Promise<LinearWeights> {
  const buf = await readFile(path);
  let tensors: Map<string, WeightTensor>;
  try {
    tensors = path.endsWith('.safetensors') ? readSafetensors(buf, path) : readTorchStateDict(buf, path);
  } catch (e) {
    if (e instanceof BgeM3Error) throw e;
    // A malformed file can trip a RangeError/TypeError deep in a reader: report it against the file.
    throw new BgeM3Error('CORRUPT_FILE', `${path}: cannot read it (${(e as Error).message}); re-download it.`, { cause: e });
  }
  const weight = pick(tensors, 'weight');
  const bias = pick(tensors, 'bias');
  if (!weight || !bias) {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${path} must hold a Linear layer's "weight" and "bias"; found ${JSON.stringify([...tensors.keys()])}.`,
    );
  }
  const [out, inp] = weight.shape;
  const ok =
    weight.shape.length === 2 &&
    (hidden === undefined || inp === hidden) &&
    (outFeatures === undefined || out === outFeatures) &&
    bias.shape.length === 1 &&
    bias.shape[0] === out;
  if (!ok) {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${path}: weight ${JSON.stringify(weight.shape)} / bias ${JSON.stringify(bias.shape)} do not fit a Linear layer ` +
        `from the encoder's hidden size ${hidden ?? '?'} to ${outFeatures ?? 'N'} outputs; is this the right model's head file?`,
    );
  }
  return { weight, bias };
}
