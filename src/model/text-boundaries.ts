/**
 * Places in a text where it can be cut without changing how the parts before the cut tokenize:
 * grapheme-cluster boundaries (for the normalizer) and word boundaries (for truncation).
 */

/**
 * Characters whose Grapheme_Cluster_Break property is "Other" and that are not Prepend, Extend,
 * SpacingMark, ZWJ, Hangul jamo or regional indicators: printable ASCII, Latin, Greek, Cyrillic,
 * Hebrew and Arabic letters, Devanagari letters, CJK ideographs, kana, CJK punctuation, Hangul
 * syllables. Between two of these, UAX #29 always puts a grapheme-cluster boundary.
 */
export const SIMPLE = /[\x20-\x7e\u00a0-\u00ac\u00ae-\u02ff\u0370-\u03ff\u0400-\u0482\u048a-\u052f\u05d0-\u05ea\u0621-\u064a\u0904-\u0939\u3000-\u3029\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff\uac00-\ud7a3]/;

/**
 * Letters and digits that always start a new grapheme cluster after a space: everything in
 * \p{L}\p{N} except the few that are Extend or SpacingMark (halfwidth voiced sound marks, Thai/Lao AM).
 */
const STARTER = /[\p{L}\p{N}]/u;
const NOT_STARTER = /[\uff9e\uff9f\u0e33\u0eb3]/;
/** BMP characters with Grapheme_Cluster_Break=Prepend (they glue to the next character), and CR. */
const GLUES_FORWARD = /[\r\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u0d4e\ud800-\udfff]/;

/** True when UAX #29 always puts a grapheme-cluster boundary between `text[i - 1]` and `text[i]`. */
function isClusterBoundary(text: string, i: number): boolean {
  const prev = text[i - 1]!;
  const next = text[i]!;
  if (SIMPLE.test(prev) && SIMPLE.test(next)) return true;
  // A space is Grapheme_Cluster_Break=Other: a boundary follows it unless the next character extends it.
  return prev === ' ' && STARTER.test(next) && !NOT_STARTER.test(next);
}

/**
 * An index near `near` where `text` can be cut: the first guaranteed grapheme-cluster boundary in
 * `[near, near + 64)`, else `near` itself moved off the middle of a surrogate pair. (Only used
 * where a margin of tokens absorbs what a cut inside a cluster could change.)
 */
export function cutNear(text: string, near: number): number {
  if (near >= text.length) return text.length;
  for (let i = Math.max(near, 1); i < Math.min(text.length, near + 64); i++) if (isClusterBoundary(text, i)) return i;
  const code = text.charCodeAt(near);
  return code >= 0xdc00 && code <= 0xdfff ? near + 1 : near;
}

/**
 * The largest index `floor < i <= near` such that `text[i]` is an ASCII space preceded by a non-space
 * character that does not glue to what follows it, or -1. Cutting there keeps every word before it
 * whole: the pre-tokenizer (Metaspace) splits words at spaces and the model tokenizes each word on
 * its own, and a grapheme-cluster boundary always falls right before such a space.
 */
export function wordBoundaryBefore(text: string, near: number, floor = 0): number {
  for (let i = Math.min(near, text.length - 1); i > floor; i--) {
    if (text.charCodeAt(i) === 0x20 && text[i - 1] !== ' ' && !GLUES_FORWARD.test(text[i - 1]!)) return i;
  }
  return -1;
}
