/**
 * The shape of an XLM-RoBERTa encoder as BGE-M3 uses it, and the two configurations the benchmark
 * generator writes: BGE-M3's full shape and the conformance fixture's tiny one.
 */
export interface XlmrShape {
  /** Hidden size (and dense-vector width). */
  hidden: number;
  /** Transformer layers. */
  layers: number;
  /** Attention heads; `hidden` must divide evenly. */
  heads: number;
  /** Feed-forward (intermediate) size. */
  ffn: number;
  /** Vocabulary size (rows of the word-embedding table). */
  vocab: number;
  /** Rows of the position-embedding table: max tokens + 2 (RoBERTa's padding offset). */
  maxPositions: number;
  /** Pad token id, which is also the position padding index. */
  paddingIdx: number;
  /** LayerNorm epsilon. */
  eps: number;
}

/** BAAI/bge-m3's encoder: XLM-RoBERTa large with 8k positions. */
export const BGE_M3_SHAPE: XlmrShape = {
  hidden: 1024,
  layers: 24,
  heads: 16,
  ffn: 4096,
  vocab: 250002,
  maxPositions: 8194,
  paddingIdx: 1,
  eps: 1e-5,
};

/** The conformance fixture's shape (`test/fixtures/bge-m3-tiny/config.json`). */
export const TINY_SHAPE: XlmrShape = {
  hidden: 32,
  layers: 2,
  heads: 4,
  ffn: 64,
  vocab: 8002,
  maxPositions: 8194,
  paddingIdx: 1,
  eps: 1e-5,
};

/** Hugging Face `config.json` for a shape (what transformers.js and this package read). */
export function hfConfig(shape: XlmrShape): Record<string, unknown> {
  return {
    architectures: ['XLMRobertaModel'],
    model_type: 'xlm-roberta',
    hidden_size: shape.hidden,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads,
    intermediate_size: shape.ffn,
    hidden_act: 'gelu',
    max_position_embeddings: shape.maxPositions,
    position_embedding_type: 'absolute',
    type_vocab_size: 1,
    vocab_size: shape.vocab,
    layer_norm_eps: shape.eps,
    pad_token_id: shape.paddingIdx,
    bos_token_id: 0,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
}

/** Matrix-multiply FLOPs of one sequence of `tokens` through the encoder (2 per multiply-add). */
export function encoderFlops(shape: XlmrShape, tokens: number): { linear: number; attention: number } {
  const { hidden: h, ffn: f, layers } = shape;
  // Q, K, V, O projections (4·h·h) and the two FFN matrices (2·h·f) per token and layer.
  const linear = layers * 2 * tokens * (4 * h * h + 2 * h * f);
  // Q·Kᵀ and softmax·V: tokens² · h multiply-adds each, per layer.
  const attention = layers * 2 * 2 * tokens * tokens * h;
  return { linear, attention };
}
