/**
 * The benchmark's three workloads, built deterministically from a seed out of the conformance
 * fixture's multilingual texts (UI strings in 27 languages and two long multilingual documents):
 *
 * - `mixed`: many short texts (queries, titles, UI strings), some paragraphs and a few documents
 *   of a couple of thousand characters, shuffled: what a user indexes.
 * - `uniform128`: passages of exactly 128 tokens (counting `<s>` and `</s>`).
 * - `long8192`: one document of exactly 8192 tokens, BGE-M3's maximum.
 *
 * Token counts come from the model's own tokenizer, so every system is credited with the same
 * number of real (non-padding) tokens. Texts contain no newlines, so LangChain's `stripNewLines`
 * does not change what transformers.js sees.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BgeM3Tokenizer } from '../../src/model/tokenizer.js';
import { FIXTURE_DIR } from './model-generator.js';
import { Xoshiro128 } from './prng.js';

export const WORKLOAD_NAMES = ['mixed', 'uniform128', 'long8192'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

export interface Workload {
  name: WorkloadName;
  description: string;
  texts: string[];
  /** Token count of each text (with `<s>`/`</s>`, after truncation to 8192). */
  lengths: number[];
  /** Sum of `lengths`. */
  tokens: number;
}

export interface WorkloadSizes {
  mixed: { short: number; paragraphs: number; documents: number; documentChars: [number, number] };
  uniform128: { passages: number };
  long8192: { tokens: number };
}

/**
 * Sized so that the full run stays under 30 minutes on a 2-core machine, including
 * transformers.js's padded batch: LangChain pads the whole mixed corpus to its longest document,
 * and onnxruntime then holds two `[texts, 16, longest, longest]` float32 score tensors per layer,
 * so with ~95 texts the documents are kept under ~2,000 characters (~800 tokens with this
 * tokenizer): ~3.7 GB per score tensor and a ~14 GB peak for transformers.js, where 4,000-character
 * documents would need ~50 GB. Most texts are short, as in a real corpus of titles, questions and
 * snippets; that is also where batching pays (see bench/README.md).
 */
export const FULL_SIZES: WorkloadSizes = {
  mixed: { short: 80, paragraphs: 12, documents: 3, documentChars: [1700, 2000] },
  uniform128: { passages: 64 },
  long8192: { tokens: 8192 },
};

/** `--quick`: seconds per system on a 4-layer model. */
export const QUICK_SIZES: WorkloadSizes = {
  mixed: { short: 12, paragraphs: 4, documents: 1, documentChars: [1500, 1800] },
  uniform128: { passages: 8 },
  long8192: { tokens: 2048 },
};

interface FixtureText {
  text: string;
}

/** Sentences to build texts from: the fixture's short texts plus its long documents cut at spaces. */
function sentencePool(): string[] {
  const expected = JSON.parse(readFileSync(join(FIXTURE_DIR, 'expected.json'), 'utf8')) as { texts: FixtureText[] };
  const clean = (s: string) => s.replace(/[\u0000-\u001f]/g, ' ').replace(/ {2,}/g, ' ').trim();
  const pool = new Set<string>();
  for (const { text } of expected.texts) {
    const t = clean(text);
    if (t.length === 0) continue;
    if (t.length <= 120) {
      pool.add(t);
      continue;
    }
    // Long fixture documents: cut into 40-100 character pieces at spaces.
    let start = 0;
    while (start < t.length) {
      let end = Math.min(t.length, start + 40 + ((start * 7919) % 60));
      const space = t.indexOf(' ', end);
      end = space < 0 ? t.length : space;
      const piece = t.slice(start, end).trim();
      if (piece.length > 3) pool.add(piece);
      start = end + 1;
    }
  }
  return [...pool];
}

class Picker {
  private readonly rng: Xoshiro128;
  constructor(
    seed: number,
    stream: string,
    private readonly pool: string[],
  ) {
    this.rng = new Xoshiro128(seed, stream);
  }
  int(min: number, max: number): number {
    return min + (this.rng.nextUint32() % (max - min + 1));
  }
  sentence(): string {
    return this.pool[this.rng.nextUint32() % this.pool.length]!;
  }
  /** Sentences joined with spaces until `chars` characters are reached. */
  text(chars: number): string {
    let out = this.sentence();
    while (out.length < chars) out += ` ${this.sentence()}`;
    return out;
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.rng.nextUint32() % (i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/**
 * The longest word-prefix of `source` with exactly `tokens` tokens (then padded with one-token
 * words if the prefix lands one or two short because a word spans several tokens).
 */
export async function textWithTokens(tokenizer: BgeM3Tokenizer, source: string, tokens: number): Promise<string> {
  const count = async (s: string) => (await tokenizer.encode(s, 1 << 20)).length;
  const words = source.split(' ');
  // Binary search the number of words: token counts grow monotonically with words.
  let lo = 1;
  let hi = words.length;
  if ((await count(source)) < tokens) throw new Error(`source text has fewer than ${tokens} tokens`);
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((await count(words.slice(0, mid).join(' '))) <= tokens) lo = mid;
    else hi = mid - 1;
  }
  let text = words.slice(0, lo).join(' ');
  for (let guard = 0; (await count(text)) < tokens && guard < 64; guard++) {
    const current = await count(text);
    let filler: string | undefined;
    for (const w of ['a', 'o', 'e', 'i', 'y']) {
      if ((await count(`${text} ${w}`)) === current + 1) {
        filler = w;
        break;
      }
    }
    if (!filler) break;
    text = `${text} ${filler}`;
  }
  const got = await count(text);
  if (got !== tokens) throw new Error(`could not build a text of exactly ${tokens} tokens (got ${got})`);
  return text;
}

async function finish(name: WorkloadName, description: string, texts: string[], tokenizer: BgeM3Tokenizer): Promise<Workload> {
  const lengths = await Promise.all(texts.map(async (t) => (await tokenizer.encode(t, 8192)).length));
  return { name, description, texts, lengths, tokens: lengths.reduce((a, b) => a + b, 0) };
}

export async function buildWorkload(name: WorkloadName, tokenizer: BgeM3Tokenizer, sizes: WorkloadSizes, seed: number): Promise<Workload> {
  const pool = sentencePool();
  const pick = new Picker(seed, name, pool);
  switch (name) {
    case 'mixed': {
      const s = sizes.mixed;
      const texts = [
        ...Array.from({ length: s.short }, () => (pick.int(0, 3) === 0 ? `${pick.sentence()} ${pick.sentence()}` : pick.sentence())),
        ...Array.from({ length: s.paragraphs }, () => pick.text(pick.int(250, 700))),
        ...Array.from({ length: s.documents }, () => pick.text(pick.int(s.documentChars[0], s.documentChars[1]))),
      ];
      return finish(
        'mixed',
        `${s.short} short texts, ${s.paragraphs} paragraphs (250-700 chars), ${s.documents} documents (${s.documentChars.join('-')} chars), shuffled`,
        pick.shuffle(texts),
        tokenizer,
      );
    }
    case 'uniform128': {
      const texts: string[] = [];
      for (let i = 0; i < sizes.uniform128.passages; i++) texts.push(await textWithTokens(tokenizer, pick.text(1200), 128));
      return finish('uniform128', `${texts.length} passages of exactly 128 tokens`, texts, tokenizer);
    }
    case 'long8192': {
      const n = sizes.long8192.tokens;
      const text = await textWithTokens(tokenizer, pick.text(n * 4), n);
      return finish('long8192', `one document of exactly ${n} tokens`, [text], tokenizer);
    }
  }
}
