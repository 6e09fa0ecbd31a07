/**
 * BGE-M3's tokenizer: `tokenizer.json` (XLM-RoBERTa SentencePiece Unigram with the `Precompiled`
 * nmt_nfkc normalizer) run by the Rust Hugging Face `tokenizers` library, the one FlagEmbedding gets
 * from `AutoTokenizer`, through its maintained napi build `@anush008/tokenizers` (fastembed-js).
 *
 * Why native rather than JavaScript: the pure-JS tokenizer took 16-40 s on runs of `\r\n` or
 * zero-width spaces that Rust handles in ~50 ms, overflowed the stack on long unspaced scripts,
 * ran out of memory on multi-MB inputs, and approximated the charsmap with NFKC. Rust is exact by
 * construction, linear, and its `encode` runs on libuv's thread pool, so tokenizing never blocks
 * the event loop.
 *
 * Truncation is done here the way the Rust tokenizer does it for the `<s> $A </s>` template (keep
 * the first `maxLength - 2` tokens, then add `<s>` and `</s>`), but without tokenizing what would be
 * thrown away: see {@link BgeM3Tokenizer.leadingIds}.
 */
import { readFile } from 'node:fs/promises';
import tokenizers from '@anush008/tokenizers';
import { BgeM3Error } from '../errors.js';
import { cutNear, wordBoundaryBefore } from './text-boundaries.js';

type RustTokenizer = InstanceType<typeof tokenizers.Tokenizer>;

export interface SpecialTokenIds {
  bos: number;
  eos: number;
  pad: number;
  unk: number;
}

/** Extra tokens asked for beyond the budget when a text is cut inside a word (see `leadingIds`). */
const CUT_MARGIN_TOKENS = 256;

export class BgeM3Tokenizer {
  private constructor(
    private readonly tokenizer: RustTokenizer,
    /** `<s>`, `</s>`, `<pad>`, `<unk>` ids (0, 2, 1, 3 for BGE-M3). */
    readonly special: SpecialTokenIds,
    /** `model_max_length` from tokenizer_config.json (8192 for BGE-M3). */
    readonly modelMaxLength: number,
    /** Number of entries in the vocabulary including added tokens (250002 for BGE-M3). */
    readonly vocabSize: number,
    /** The Metaspace decoder's replacement character (`▁`), if tokenizer.json's decoder is Metaspace. */
    private readonly metaspace: string | undefined,
  ) {}

  /** Reads `tokenizer.json` and (optionally) `tokenizer_config.json`. */
  static async load(tokenizerJsonPath: string, tokenizerConfigPath?: string): Promise<BgeM3Tokenizer> {
    const json = await readJson(tokenizerJsonPath, 'the tokenizer (tokenizer.json)');
    const config = tokenizerConfigPath ? await readJson(tokenizerConfigPath, 'the tokenizer config') : {};
    let tokenizer: RustTokenizer;
    try {
      tokenizer = tokenizers.Tokenizer.fromString(JSON.stringify(json));
    } catch (cause) {
      throw new BgeM3Error('CORRUPT_FILE', `${tokenizerJsonPath} is not a tokenizer this package can run: ${(cause as Error).message}`, { cause });
    }
    // Truncation and padding are done here, per call; a tokenizer.json may carry its own settings.
    tokenizer.disableTruncation();
    tokenizer.disablePadding();
    const id = (key: string, fallback: string): number => {
      const raw = config[key];
      const token = typeof raw === 'string' ? raw : typeof raw?.content === 'string' ? raw.content : fallback;
      const value = tokenizer.tokenToId(token);
      if (value === null || value === undefined) {
        throw new BgeM3Error('CORRUPT_FILE', `${tokenizerJsonPath} has no id for the special token ${token} (${key}).`);
      }
      return value;
    };
    const special = { bos: id('cls_token', '<s>'), eos: id('eos_token', '</s>'), pad: id('pad_token', '<pad>'), unk: id('unk_token', '<unk>') };
    const maxLen = Number.isInteger(config.model_max_length) && config.model_max_length > 2 && config.model_max_length < 1e9 ? config.model_max_length : 8192;
    const decoder = json.decoder;
    const metaspace = decoder?.type === 'Metaspace' ? (typeof decoder.replacement === 'string' ? decoder.replacement : '\u2581') : undefined;
    return new BgeM3Tokenizer(tokenizer, special, maxLen, tokenizer.getVocabSize(true), metaspace);
  }

  /**
   * Token ids of one text with `<s>` and `</s>`, truncated to `maxLength` (which counts both).
   * The text is not stripped or otherwise changed first, as in FlagEmbedding.
   */
  async encode(text: string, maxLength: number): Promise<number[]> {
    const ids = await this.leadingIds(text, maxLength - 2);
    const keep = Math.min(ids.length, maxLength - 2);
    const out = new Array<number>(keep + 2);
    out[0] = this.special.bos;
    for (let i = 0; i < keep; i++) out[i + 1] = ids[i]!;
    out[keep + 1] = this.special.eos;
    return out;
  }

  /**
   * Ids of at least the first `budget` tokens of `text` (all of them if it has fewer), tokenizing a
   * prefix of the text, grown until it yields enough tokens: a book, a log or a data dump costs
   * about what its kept part costs, and a text with almost no tokens about one pass over it.
   *
   * The prefix ends just before a word boundary when there is one in the second half of the
   * prefix: words are tokenized independently (the Metaspace pre-tokenizer splits at spaces), so
   * its ids are exactly the first ids of the whole text. Where there is none (unspaced scripts,
   * base64), it ends at a grapheme boundary and must yield {@link CUT_MARGIN_TOKENS} more tokens
   * than needed: the segmentation of the kept tokens could then differ only if the Unigram Viterbi
   * path reached across the whole margin. A prefix that grows to the whole text is exact.
   */
  private async leadingIds(text: string, budget: number): Promise<number[]> {
    for (let cut = Math.max(4 * budget, 4096); cut < text.length; ) {
      const at = wordBoundaryBefore(text, cut, cut >> 1);
      const exact = at > 0;
      const ids = await this.encodeRaw(text.slice(0, exact ? at : cutNear(text, cut)));
      const needed = exact ? budget : budget + CUT_MARGIN_TOKENS;
      if (ids.length >= needed) return ids;
      // Grow to where the tokens so far predict enough (with a quarter to spare), at least doubling:
      // a text that normalizes almost to nothing (runs of spaces, zero-width or unknown characters)
      // goes straight to its whole length instead of being tokenized again at every doubling.
      cut = ids.length > 0 ? Math.max(2 * cut, Math.ceil(((cut * needed) / ids.length) * 1.25)) : Infinity;
    }
    return this.encodeRaw(text);
  }

  private async encodeRaw(text: string): Promise<number[]> {
    return (await this.tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
  }

  /**
   * `tokenizer.decode([id])`, as FlagEmbedding's `convert_id_to_token` uses it: the token's text
   * with the Metaspace decoder applied (`▁` → space, the leading space of the first token dropped).
   * Written out because the native `decode` is asynchronous and this runs per weight, for display.
   */
  decodeOne(id: number): string {
    const token = this.tokenizer.idToToken(id) ?? '';
    if (this.metaspace === undefined) return token;
    const text = token.split(this.metaspace).join(' ');
    return text.startsWith(' ') ? text.slice(1) : text;
  }
}

async function readJson(path: string, what: string): Promise<Record<string, any>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new BgeM3Error('MISSING_FILE', `Cannot read ${what} at ${path}: ${(cause as Error).message}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new BgeM3Error('CORRUPT_FILE', `${path} is not valid JSON (${(cause as Error).message}); re-download ${what}.`, { cause });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new BgeM3Error('CORRUPT_FILE', `${path} must hold a JSON object; re-download ${what}.`);
  }
  return json as Record<string, any>;
}
