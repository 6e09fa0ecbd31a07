/** Dense vectors as the frameworks want them (`number[]`), straight from the engine: no math here. */
import type { BgeM3Model } from '../model/bge-m3-model.js';

export interface DenseOptions {
  batchSize: number;
  maxLength?: number;
  onProgress?: (progress: { done: number; total: number }) => void;
}

/** Encodes texts (dense only) and converts each `Float32Array` to a plain array. */
export async function embedDense(model: BgeM3Model, texts: string[], options: DenseOptions): Promise<number[][]> {
  if (texts.length === 0) return [];
  const { denseVecs } = await model.encode(texts, {
    returnDense: true,
    batchSize: options.batchSize,
    maxLength: options.maxLength,
    onProgress: options.onProgress,
  });
  return denseVecs!.map((v) => Array.from(v));
}
