/** A dense float32 tensor read from a weights file (row-major). */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

/** The weights of one `torch.nn.Linear` layer: `weight` is `[out, in]`, `bias` is `[out]`. */
export interface LinearWeights {
  weight: WeightTensor;
  bias: WeightTensor;
}
