import { cpSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The conformance fixture: a tiny BGE-M3 with the real file layouts (see its README). */
export const TINY_DIR = fileURLToPath(new URL('./fixtures/bge-m3-tiny', import.meta.url));
/** A writable copy of the fixture's encoder layout (without m3/ and expected.json) at `dest`, to break or edit. */
export function copyFixture(dest: string): string {
  cpSync(TINY_DIR, dest, { recursive: true, filter: (src) => !src.includes('/m3') && !src.endsWith('expected.json') });
  return dest;
}

/** The same model with the heads inside the graph (aapot/gpahal layout). */
export const TINY_M3_DIR = fileURLToPath(new URL('./fixtures/bge-m3-tiny/m3', import.meta.url));

export interface ExpectedText {
  text: string;
  max_length: number;
  input_ids: number[];
  dense: number[];
  lexical_weights: Record<string, number>;
  colbert_vecs: number[][];
}

export interface ExpectedPair {
  query: number;
  passage: number;
  dense: number;
  sparse: number;
  colbert: number;
  'sparse+dense': number;
  'colbert+sparse+dense': number;
}

export interface Expected {
  weights: [number, number, number];
  texts: ExpectedText[];
  pairs: ExpectedPair[];
}

let cached: Expected | undefined;
export function loadExpected(): Expected {
  cached ??= JSON.parse(readFileSync(`${TINY_DIR}/expected.json`, 'utf8')) as Expected;
  return cached;
}

/** The fixture README's tolerance: every number to 1e-4 absolute. */
export const TOL = 1e-4;

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Largest gap between ticks of a 5 ms timer while `work` runs (how long the event loop was blocked). */
export async function largestTimerGap(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let gap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(gap, performance.now() - last);
}
