/**
 * A least-recently-used cache of passage encodings, bounded by an estimate of the bytes it holds.
 *
 * Hand-written rather than `lru-cache`: the reranker needs (a) byte accounting over typed arrays and
 * lexical-weight dicts and (b) to look up many keys first and encode all misses in ONE batched
 * `encode` call; a per-key fetch method would encode passages one at a time and lose batching.
 * A `Map` keeps insertion order, which is all an LRU needs.
 */
import type { LexicalWeights } from '../scores.js';

/** The three BGE-M3 outputs of one text. */
export interface TextEncoding {
  dense: Float32Array;
  sparse: LexicalWeights;
  colbert: Float32Array[];
}

/** Counters for observing the cache (tests, tuning `cacheMaxBytes`). */
export interface PassageCacheStats {
  /** Encodings held now. */
  entries: number;
  /** Estimated bytes held now (never above `maxBytes`). */
  bytes: number;
  /** The bound. */
  maxBytes: number;
  /** Lookups answered from the cache. */
  hits: number;
  /** Lookups that needed an encode. */
  misses: number;
  /** Entries dropped to stay under `maxBytes`. */
  evictions: number;
}

// Rough V8 costs, so the bound tracks real memory rather than only the float payload:
// a typed-array view object, and one lexical-weight entry (hash slot + number + key string header).
const TYPED_ARRAY_OVERHEAD = 64;
const SPARSE_ENTRY_OVERHEAD = 48;
const ENTRY_OVERHEAD = 128;

/** Estimated bytes one cached encoding occupies, including its key. */
export function encodingBytes(key: string, e: TextEncoding): number {
  let bytes = ENTRY_OVERHEAD + 2 * key.length;
  bytes += e.dense.byteLength + TYPED_ARRAY_OVERHEAD;
  for (const row of e.colbert) bytes += row.byteLength + TYPED_ARRAY_OVERHEAD;
  for (const id in e.sparse) bytes += SPARSE_ENTRY_OVERHEAD + 2 * id.length;
  return bytes;
}

export class PassageCache {
  private readonly map = new Map<string, { value: TextEncoding; bytes: number }>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly maxBytes: number) {}

  /** Returns the encoding and marks it most recently used, or `undefined` (counted as a miss). */
  get(key: string): TextEncoding | undefined {
    const entry = this.map.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  /** Stores an encoding, evicting the least recently used ones; an entry larger than the bound is not kept. */
  set(key: string, value: TextEncoding): void {
    const bytes = encodingBytes(key, value);
    this.delete(key);
    if (bytes > this.maxBytes) return;
    this.map.set(key, { value, bytes });
    this.bytes += bytes;
    for (const [oldKey, old] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(oldKey);
      this.bytes -= old.bytes;
      this.evictions++;
    }
  }

  delete(key: string): void {
    const entry = this.map.get(key);
    if (!entry) return;
    this.map.delete(key);
    this.bytes -= entry.bytes;
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  stats(): PassageCacheStats {
    return {
      entries: this.map.size,
      bytes: this.bytes,
      maxBytes: this.maxBytes,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
    };
  }
}
