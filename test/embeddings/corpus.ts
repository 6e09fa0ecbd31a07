/**
 * A small corpus for the adapter tests, taken from the fixture's texts (the fixture model has random
 * weights, so results are checked against direct engine calls, not against meaning).
 */
import { loadExpected } from '../helpers.js';

const texts = loadExpected().texts.map((t) => t.text);

export const QUERY = texts[0]!; // 'What is BGE M3?'
export const CORPUS: string[] = [2, 3, 1, 6, 7, 8, 13, 43, 59, 83, 107, 47].map((i) => texts[i]!);
export const OTHER_QUERY = texts[1]!; // 'Defination of BM25'
