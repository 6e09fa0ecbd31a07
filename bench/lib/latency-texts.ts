/**
 * Texts of the latency benchmark, deterministic in a seed, from the conformance fixture's
 * multilingual texts (UI strings in 27 languages and two long multilingual documents):
 *
 * - queries: distinct short texts of 5-15 tokens (counting `<s>` and `</s>`), in many languages;
 * - documents: passages of 100-300 tokens, sentences of the pool joined until a target length
 *   drawn uniformly in that range is reached (then cut at a word boundary to fit).
 *
 * Token counts come from the model's tokenizer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BgeM3Tokenizer } from '../../src/model/tokenizer.js';
import { FIXTURE_DIR } from './model-generator.js';
import { Xoshiro128 } from './prng.js';

const clean = (s: string) => s.replace(/[\u0000-\u001f]/g, ' ').replace(/ {2,}/g, ' ').trim();

/** The fixture's texts: short ones as they are, long ones cut into 40-100 character pieces at spaces. */
function pools(): { short: string[]; pieces: string[] } {
  const expected = JSON.parse(readFileSync(join(FIXTURE_DIR, 'expected.json'), 'utf8')) as { texts: { text: string }[] };
  const short = new Set<string>();
  const pieces = new Set<string>();
  for (const { text } of expected.texts) {
    const t = clean(text);
    if (t.length === 0) continue;
    if (t.length <= 120) {
      short.add(t);
      pieces.add(t);
      continue;
    }
    let start = 0;
    while (start < t.length) {
      let end = Math.min(t.length, start + 40 + ((start * 7919) % 60));
      const space = t.indexOf(' ', end);
      end = space < 0 ? t.length : space;
      const piece = t.slice(start, end).trim();
      if (piece.length > 3) pieces.add(piece);
      start = end + 1;
    }
  }
  return { short: [...short], pieces: [...pieces] };
}

function shuffle<T>(items: T[], rng: Xoshiro128): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.nextUint32() % (i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export interface LatencyTexts {
  queries: string[];
  queryTokens: number[];
  documents: string[];
  documentTokens: number[];
}

/**
 * `queries` distinct queries of 5-15 tokens and `documents` passages of 100-300 tokens. When the
 * fixture has too few short texts in range, pairs of them are joined (still within 5-15 tokens).
 */
export async function buildLatencyTexts(tokenizer: BgeM3Tokenizer, counts: { queries: number; documents: number }, seed: number): Promise<LatencyTexts> {
  const count = async (s: string) => (await tokenizer.encode(s, 1 << 20)).length;
  const { short, pieces } = pools();
  const rng = new Xoshiro128(seed, 'latency-texts');
  const queries: string[] = [];
  const queryTokens: number[] = [];
  const seen = new Set<string>();
  const take = async (q: string) => {
    if (seen.has(q)) return;
    const n = await count(q);
    if (n < 5 || n > 15) return;
    seen.add(q);
    queries.push(q);
    queryTokens.push(n);
  };
  for (const q of shuffle([...short], rng)) {
    if (queries.length >= counts.queries) break;
    await take(q);
  }
  const shortOnes = short.filter((s) => s.length < 30);
  for (let guard = 0; queries.length < counts.queries && guard < 100_000; guard++) {
    const a = shortOnes[rng.nextUint32() % shortOnes.length]!;
    const b = shortOnes[rng.nextUint32() % shortOnes.length]!;
    if (a !== b) await take(`${a} ${b}`);
  }
  if (queries.length < counts.queries) throw new Error(`only ${queries.length} distinct queries of 5-15 tokens could be built`);

  const documents: string[] = [];
  const documentTokens: number[] = [];
  for (let d = 0; d < counts.documents; d++) {
    const target = 100 + (rng.nextUint32() % 201);
    let text = pieces[rng.nextUint32() % pieces.length]!;
    while ((await count(text)) < target) text += ` ${pieces[rng.nextUint32() % pieces.length]!}`;
    // Cut back at word boundaries to at most 300 tokens.
    let n = await count(text);
    while (n > 300) {
      const cut = text.lastIndexOf(' ');
      if (cut <= 0) break;
      text = text.slice(0, cut);
      n = await count(text);
    }
    documents.push(text);
    documentTokens.push(n);
  }
  return { queries, queryTokens, documents, documentTokens };
}
