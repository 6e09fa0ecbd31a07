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
const CHUNK = 256;

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
 * Splits text at guaranteed grapheme boundaries into pieces of about {@link CHUNK} code units.
 * Needed because V8's `Intl.Segmenter` takes quadratic time on long strings (100k characters:
 * ~15 s on Node 20); segmenting the pieces separately gives the same clusters in linear time.
 */
export function* boundaryChunks(text: string): Generator<string> {
  let start = 0;
  let i = CHUNK;
  while (i < text.length) {
    if (isClusterBoundary(text, i)) {
      yield text.slice(start, i);
      start = i;
      i += CHUNK;
    } else {
      i++;
    }
  }
  yield text.slice(start);
}

/**
 * The largest index `i <= near` such that `text[i]` is an ASCII space preceded by a non-space
 * character that does not glue to what follows it, or -1. Cutting there keeps every word before it
 * whole: the pre-tokenizer (Metaspace) splits words at spaces and the model tokenizes each word on
 * its own, and a grapheme-cluster boundary always falls right before such a space.
 */
export function wordBoundaryBefore(text: string, near: number): number {
  for (let i = Math.min(near, text.length - 1); i > 0; i--) {
    if (text.charCodeAt(i) === 0x20 && text[i - 1] !== ' ' && !GLUES_FORWARD.test(text[i - 1]!)) return i;
  }
  return -1;
}
