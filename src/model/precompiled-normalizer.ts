/**
 * SentencePiece's `Precompiled` normalizer (the `nmt_nfkc` character map stored in XLM-RoBERTa's
 * `tokenizer.json`), reproducing the Rust `tokenizers` implementation byte for byte.
 *
 * Written here because `@huggingface/tokenizers` ignores `precompiled_charsmap` and approximates it
 * with `String.prototype.normalize('NFKC')` plus a few replacements. That differs from the Rust
 * tokenizer (which FlagEmbedding uses) on real text: NFKC composes a letter with a following combining
 * mark (Devanagari, Hebrew, Thai marks, accents typed as combining characters), while the charsmap maps
 * grapheme clusters and single characters without composing across them; and CR LF becomes one space.
 *
 * The charsmap is a darts-clone double-array trie over UTF-8 bytes followed by a blob of
 * NUL-terminated replacement strings. Rust's `spm_precompiled::Precompiled::normalize_string`:
 * for each extended grapheme cluster shorter than 6 bytes, the replacement of the *first* trie match
 * (shortest prefix) replaces the whole cluster; otherwise each character is replaced on its own
 * (or kept). The quirks are intentional: they are what the reference tokenizer does.
 */
import { BgeM3Error } from '../errors.js';
import { boundaryChunks } from './text-boundaries.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class PrecompiledNormalizer {
  private readonly trie: Uint32Array;
  private readonly normalized: Uint8Array;
  private readonly segmenter = new Intl.Segmenter('und', { granularity: 'grapheme' });
  private readonly cache = new Map<string, string | null>();
  /** True when every printable ASCII character maps to itself: such text needs no work at all. */
  private readonly asciiIsIdentity: boolean;

  constructor(charsmapBase64: string, source: string) {
    const bytes = Buffer.from(charsmapBase64, 'base64');
    if (bytes.length < 4) throw new BgeM3Error('CORRUPT_FILE', `${source}: precompiled_charsmap is too short.`);
    const trieBytes = bytes.readUInt32LE(0);
    if (trieBytes % 4 !== 0 || 4 + trieBytes > bytes.length) {
      throw new BgeM3Error('CORRUPT_FILE', `${source}: precompiled_charsmap has an invalid trie size.`);
    }
    this.trie = new Uint32Array(trieBytes / 4);
    for (let i = 0; i < this.trie.length; i++) this.trie[i] = bytes.readUInt32LE(4 + i * 4);
    this.normalized = new Uint8Array(bytes.subarray(4 + trieBytes));
    let identity = true;
    for (let c = 0x20; c < 0x7f && identity; c++) identity = this.transform(String.fromCharCode(c)) === null;
    this.asciiIsIdentity = identity;
  }

  /** Normalizes `text` exactly as the Rust `Precompiled` normalizer does. */
  normalize(text: string): string {
    if (this.asciiIsIdentity && /^[\x20-\x7e]*$/.test(text)) return text;
    let out = '';
    for (const chunk of boundaryChunks(text)) out += this.normalizeChunk(chunk);
    return out;
  }

  private normalizeChunk(text: string): string {
    let out = '';
    for (const { segment } of this.segmenter.segment(text)) {
      if (utf8Length(segment) < 6) {
        const whole = this.transform(segment);
        if (whole !== null) {
          out += whole;
          continue;
        }
      }
      for (const char of segment) out += this.transform(char) ?? char;
    }
    return out;
  }

  /** The replacement for the first trie match of `chunk`'s UTF-8 bytes, or null when none matches. */
  private transform(chunk: string): string | null {
    const hit = this.cache.get(chunk);
    if (hit !== undefined) return hit;
    const index = this.firstPrefixMatch(encoder.encode(chunk));
    let result: string | null = null;
    if (index !== undefined) {
      let end = index;
      while (end < this.normalized.length && this.normalized[end] !== 0) end++;
      result = decoder.decode(this.normalized.subarray(index, end));
    }
    if (this.cache.size < 100_000) this.cache.set(chunk, result);
    return result;
  }

  /** darts-clone `commonPrefixSearch`, stopping at the first (shortest) match. */
  private firstPrefixMatch(key: Uint8Array): number | undefined {
    const a = this.trie;
    let pos = 0;
    let unit = a[pos]!;
    pos ^= offset(unit);
    for (const c of key) {
      if (c === 0) break;
      pos ^= c;
      unit = a[pos]!;
      if (label(unit) !== c) return undefined;
      pos ^= offset(unit);
      if (hasLeaf(unit)) return value(a[pos]!);
    }
    return undefined;
  }
}

const hasLeaf = (unit: number) => ((unit >>> 8) & 1) === 1;
const value = (unit: number) => unit & 0x7fffffff;
const label = (unit: number) => (unit & 0x800000ff) >>> 0;
const offset = (unit: number) => (unit >>> 10) << ((unit & (1 << 9)) >>> 6);

function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}
