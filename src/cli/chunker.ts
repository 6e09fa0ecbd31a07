/**
 * Token-aware chunking with the model's own tokenizer (`tokenizer.json` run by the Rust Hugging Face
 * `tokenizers` library, the same one `BgeM3Model` uses): a text becomes windows of at most
 * `chunkTokens - 2` tokens (so a chunk with `<s>` and `</s>` fits `chunkTokens`), consecutive windows
 * sharing `overlap` tokens. A chunk is the exact character span of its tokens in the text, and its
 * `start`/`end` are UTF-16 offsets into the text (what `String.prototype.slice` takes).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tokenizers from '@anush008/tokenizers';
import { CliError } from './common.js';

type RustTokenizer = InstanceType<typeof tokenizers.Tokenizer>;

export interface Chunk {
  text: string;
  start: number;
  end: number;
  tokens: number;
}

export class Chunker {
  private constructor(
    private readonly tokenizer: RustTokenizer,
    readonly chunkTokens: number,
    readonly overlap: number,
  ) {}

  static async load(modelDir: string, chunkTokens: number, overlap: number): Promise<Chunker> {
    const path = join(modelDir, 'tokenizer.json');
    let json: string;
    try {
      json = await readFile(path, 'utf8');
    } catch (e) {
      throw new CliError(`Cannot read the tokenizer ${path}: ${(e as Error).message}`);
    }
    const tokenizer = tokenizers.Tokenizer.fromString(json);
    tokenizer.disableTruncation();
    tokenizer.disablePadding();
    return new Chunker(tokenizer, chunkTokens, overlap);
  }

  async chunk(text: string): Promise<Chunk[]> {
    if (text.trim() === '') return [];
    const encoding = await this.tokenizer.encode(text, null, { addSpecialTokens: false });
    const offsets = encoding.getOffsets();
    if (offsets.length === 0) return [];
    // The Rust offsets count Unicode code points; map them to UTF-16 indices when the text has
    // characters outside the BMP (each takes two UTF-16 units).
    const toUtf16 = codePointToUtf16(text);
    const size = this.chunkTokens - 2;
    const step = size - this.overlap;
    const chunks: Chunk[] = [];
    for (let first = 0; first < offsets.length; first += step) {
      const last = Math.min(first + size, offsets.length) - 1;
      const start = toUtf16(offsets[first]![0]!);
      const end = toUtf16(offsets[last]![1]!);
      chunks.push({ text: text.slice(start, end), start, end, tokens: last - first + 1 });
      if (last === offsets.length - 1) break;
    }
    return chunks;
  }
}

function codePointToUtf16(text: string): (cp: number) => number {
  // eslint-disable-next-line no-control-regex
  if (!/[\ud800-\udfff]/.test(text)) return (cp) => cp;
  const map: number[] = [];
  let u = 0;
  for (const ch of text) {
    map.push(u);
    u += ch.length;
  }
  map.push(u);
  return (cp) => map[Math.min(cp, map.length - 1)]!;
}
