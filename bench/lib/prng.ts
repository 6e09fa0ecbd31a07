/**
 * A fast, seeded pseudo-random generator for the benchmark model's weights.
 *
 * xoshiro128** (Blackman & Vigna): four 32-bit words of state, a few integer operations per
 * output, so filling the ~570 M weights of a full-size BGE-M3 takes seconds in plain JS. Each
 * tensor gets its own stream, seeded from the global seed and the tensor's name, so any tensor can
 * be regenerated on its own (the int8 variant, the tests' float64 reference) without generating
 * the ones before it. Hand-written because it is 30 lines and must be bit-stable across versions.
 */

/** 32-bit FNV-1a of a string: mixes a tensor name into its stream's seed. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32: expands one 32-bit seed into well-mixed state words. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = '') {
    const mix = splitmix32((seed ^ fnv1a(stream)) >>> 0);
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1; // the all-zero state is a fixed point
  }

  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /**
   * Fills `out` with values uniform in `[center - halfWidth, center + halfWidth)`. Values are
   * computed in float64 and rounded once when stored.
   */
  fillUniform(out: Float32Array | Float64Array, center: number, halfWidth: number): void {
    const scale = (2 * halfWidth) / 4294967296;
    const base = center - halfWidth;
    for (let i = 0; i < out.length; i++) out[i] = base + this.nextUint32() * scale;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * mulberry32: a tiny seeded generator of floats in [0, 1) for synthetic corpora (the hybrid-index
 * benchmark and the retriever property tests), so failures and results are reproducible from a seed.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
