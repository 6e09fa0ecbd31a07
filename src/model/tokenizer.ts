/**
 * BGE-M3's tokenizer: `tokenizer.json` (XLM-RoBERTa SentencePiece Unigram) run by
 * `@huggingface/tokenizers`, which reproduces the Rust `tokenizers` ids that FlagEmbedding gets
 * from `AutoTokenizer`. That library has no truncation, so it is done here the way the Rust
 * tokenizer does it for the `<s> $A </s>` template: keep the first `maxLength - 2` tokens of the
 * text, then add `<s>` and `</s>` (so `</s>` always survives truncation).
 */
import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { BgeM3Error } from '../errors.js';
import { PrecompiledNormalizer } from './precompiled-normalizer.js';
import { boundaryChunks, wordBoundaryBefore } from './text-boundaries.js';

export interface SpecialTokenIds {
  bos: number;
  eos: number;
  pad: number;
  unk: number;
}

export class BgeM3Tokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    /** `<s>`, `</s>`, `<pad>`, `<unk>` ids (0, 2, 1, 3 for BGE-M3). */
    readonly special: SpecialTokenIds,
    /** `model_max_length` from tokenizer_config.json (8192 for BGE-M3). */
    readonly modelMaxLength: number,
    /** Number of entries in the vocabulary including added tokens (250002 for BGE-M3). */
    readonly vocabSize: number,
  ) {}

  /** Reads `tokenizer.json` and (optionally) `tokenizer_config.json`. */
  static async load(tokenizerJsonPath: string, tokenizerConfigPath?: string): Promise<BgeM3Tokenizer> {
    const json = await readJson(tokenizerJsonPath, 'the tokenizer (tokenizer.json)');
    const config = tokenizerConfigPath ? await readJson(tokenizerConfigPath, 'the tokenizer config') : {};
    let tokenizer: Tokenizer;
    try {
      tokenizer = createTokenizer(json, config, tokenizerJsonPath);
    } catch (cause) {
      if (cause instanceof BgeM3Error) throw cause;
      throw new BgeM3Error('CORRUPT_FILE', `${tokenizerJsonPath} is not a tokenizer this package can run: ${(cause as Error).message}`, { cause });
    }
    const id = (key: string, fallback: string): number => {
      const raw = config[key];
      const token = typeof raw === 'string' ? raw : typeof raw?.content === 'string' ? raw.content : fallback;
      const value = tokenizer.token_to_id(token);
      if (value === undefined) {
        throw new BgeM3Error('CORRUPT_FILE', `${tokenizerJsonPath} has no id for the special token ${token} (${key}).`);
      }
      return value;
    };
    const special = { bos: id('cls_token', '<s>'), eos: id('eos_token', '</s>'), pad: id('pad_token', '<pad>'), unk: id('unk_token', '<unk>') };
    const maxLen = typeof config.model_max_length === 'number' && config.model_max_length < 1e9 ? config.model_max_length : 8192;
    return new BgeM3Tokenizer(tokenizer, special, maxLen, tokenizer.get_vocab(true).size);
  }

  /**
   * Token ids of one text with `<s>` and `</s>`, truncated to `maxLength` (which counts both).
   * The text is not stripped or otherwise changed first, as in FlagEmbedding.
   */
  encode(text: string, maxLength: number): number[] {
    const ids = this.leadingIds(text, maxLength - 2);
    const keep = Math.min(ids.length, maxLength - 2);
    const out = new Array<number>(keep + 2);
    out[0] = this.special.bos;
    for (let i = 0; i < keep; i++) out[i + 1] = ids[i]!;
    out[keep + 1] = this.special.eos;
    return out;
  }

  /**
   * Ids of at least the first `budget` tokens of `text` (all of them if it has fewer).
   *
   * Truncation keeps only `maxLength - 2` tokens, so a long text is tokenized from a prefix that
   * ends just before a word boundary, doubling the prefix until it yields enough tokens. Words are
   * tokenized independently, so the prefix's ids are exactly the first ids of the whole text. This
   * keeps a book-length input cheap and avoids `@huggingface/tokenizers` overflowing the call stack
   * on inputs of over ~100k tokens. A text without any space (e.g. unsegmented CJK) past that size
   * is cut at a character boundary with a wide margin instead: the segmentation of the kept tokens
   * could then differ only if the Viterbi path reached across the whole margin.
   */
  private leadingIds(text: string, budget: number): number[] {
    for (let cut = Math.max(4 * budget, 4096); cut < text.length; cut *= 2) {
      const at = wordBoundaryBefore(text, cut);
      if (at <= 0) break;
      const ids = this.encodeRaw(text.slice(0, at));
      if (ids.length >= budget) return ids;
    }
    try {
      return this.encodeRaw(text);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      for (let cut = Math.max(8 * budget, 4096); ; cut *= 2) {
        const prefix = [...boundaryChunksUpTo(text, cut)].join('');
        const ids = this.encodeRaw(prefix);
        if (ids.length >= budget + 256 || prefix.length === text.length) return ids;
      }
    }
  }

  private encodeRaw(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** `tokenizer.decode([id])`, as FlagEmbedding's `convert_id_to_token` uses it. */
  decodeOne(id: number): string {
    return this.tokenizer.decode([id]);
  }
}

/**
 * Builds the `@huggingface/tokenizers` tokenizer, with SentencePiece's `Precompiled` normalizer run
 * by {@link PrecompiledNormalizer} (the library only approximates it; see that module). XLM-RoBERTa's
 * normalizer is `Sequence[Precompiled, Replace(" {2,}", " ")]`: the library keeps the steps after
 * `Precompiled`, and the exact `Precompiled` runs first, which is the same order.
 */
function createTokenizer(json: Record<string, any>, config: Record<string, any>, source: string): Tokenizer {
  const normalizer = json.normalizer;
  const steps: any[] | undefined =
    normalizer?.type === 'Sequence' ? normalizer.normalizers : normalizer ? [normalizer] : undefined;
  const first = steps?.[0];
  if (first?.type !== 'Precompiled' || typeof first.precompiled_charsmap !== 'string') {
    return new Tokenizer(json, config);
  }
  const precompiled = new PrecompiledNormalizer(first.precompiled_charsmap, source);
  const rest = steps!.slice(1);
  const tokenizer = new Tokenizer(
    { ...json, normalizer: rest.length === 0 ? null : { type: 'Sequence', normalizers: rest } },
    config,
  );
  // The library calls `this.normalizer(text)` on each piece of text between added tokens, exactly
  // where the Rust tokenizer runs its normalizer.
  const internals = tokenizer as unknown as { normalizer: ((text: string) => string) | null };
  const remaining = internals.normalizer;
  internals.normalizer = remaining
    ? (text: string) => remaining(precompiled.normalize(text))
    : (text: string) => precompiled.normalize(text);
  return tokenizer;
}

async function readJson(path: string, what: string): Promise<Record<string, any>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new BgeM3Error('MISSING_FILE', `Cannot read ${what} at ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new BgeM3Error('CORRUPT_FILE', `${path} is not valid JSON (${(cause as Error).message}); re-download ${what}.`, { cause });
  }
}

/** The leading chunks of `text` (cut at grapheme boundaries) totalling at least `length` code units. */
function* boundaryChunksUpTo(text: string, length: number): Generator<string> {
  let total = 0;
  for (const chunk of boundaryChunks(text)) {
    yield chunk;
    total += chunk.length;
    if (total >= length) return;
  }
}
