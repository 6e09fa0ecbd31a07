/**
 * A bounded top-k selection over (score, row) pairs: a binary min-heap of the k best seen so far, in
 * typed arrays (no object per entry). "Better" means a higher score, and for equal scores a lower
 * row (earlier insertion), so every ranking in the index is deterministic and matches a stable sort.
 */
export class TopK {
  private readonly scores: Float64Array;
  private readonly rows: Int32Array;
  private n = 0;

  constructor(readonly capacity: number) {
    this.scores = new Float64Array(Math.max(capacity, 0));
    this.rows = new Int32Array(Math.max(capacity, 0));
  }

  get size(): number {
    return this.n;
  }

  /** True when the heap is full and `score` could not enter it (cheap pre-check before costly work). */
  rejects(score: number): boolean {
    return this.n === this.capacity && (this.capacity === 0 || score < this.scores[0]!);
  }

  /** The worst score kept, or -Infinity while the heap is not full. */
  threshold(): number {
    return this.n === this.capacity && this.capacity > 0 ? this.scores[0]! : -Infinity;
  }

  push(score: number, row: number): void {
    if (this.capacity === 0) return;
    if (this.n < this.capacity) {
      let i = this.n++;
      // Sift up: the root holds the worst entry.
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!worse(score, row, this.scores[parent]!, this.rows[parent]!)) break;
        this.scores[i] = this.scores[parent]!;
        this.rows[i] = this.rows[parent]!;
        i = parent;
      }
      this.scores[i] = score;
      this.rows[i] = row;
      return;
    }
    if (!worse(this.scores[0]!, this.rows[0]!, score, row)) return;
    this.siftDown(score, row);
  }

  /** The kept entries, best first. */
  sorted(): { score: number; row: number }[] {
    const out = new Array<{ score: number; row: number }>(this.n);
    for (let i = 0; i < this.n; i++) out[i] = { score: this.scores[i]!, row: this.rows[i]! };
    return out.sort(compareEntries);
  }

  private siftDown(score: number, row: number): void {
    const n = this.n;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && worse(this.scores[r]!, this.rows[r]!, this.scores[l]!, this.rows[l]!)) c = r;
      if (!worse(this.scores[c]!, this.rows[c]!, score, row)) break;
      this.scores[i] = this.scores[c]!;
      this.rows[i] = this.rows[c]!;
      i = c;
    }
    this.scores[i] = score;
    this.rows[i] = row;
  }
}

/** Is (sa, ra) ranked below (sb, rb)? */
function worse(sa: number, ra: number, sb: number, rb: number): boolean {
  return sa < sb || (sa === sb && ra > rb);
}

/** Best first: higher score, then lower row. */
export function compareEntries(a: { score: number; row: number }, b: { score: number; row: number }): number {
  return b.score - a.score || a.row - b.row;
}
