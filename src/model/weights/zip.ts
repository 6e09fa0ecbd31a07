/**
 * A minimal reader for the zip container that `torch.save` writes (stored entries, optionally
 * ZIP64). Hand-written because the files are small, the format subset is tiny and a general zip
 * library would add a dependency for ~100 lines; every entry's CRC-32 is checked so a corrupt
 * byte is reported instead of silently producing wrong weights.
 *
 * Inflated bytes are bounded three ways, so a small file cannot expand into gigabytes (a deflated
 * run of zeros shrinks ~1000x): every entry's declared size must be at most
 * {@link MAX_ZIP_ENTRY_BYTES} and the declared sizes of the whole archive at most
 * {@link MAX_ZIP_TOTAL_BYTES} (both refused before anything is inflated); and deflate runs with
 * `maxOutputLength` set to the declared size, so a header that lies cannot inflate more.
 */
import { inflateRawSync, crc32 } from 'node:zlib';
import { BgeM3Error } from '../../errors.js';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  crc: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/**
 * The largest entry (once inflated) of a head file: 64 MiB. BGE-M3's real heads are ~2 MB in all
 * (colbert_linear: fp16 storages of 1024x1024 and 1024 elements, 2,097,152 + 2,048 bytes;
 * sparse_linear: 2,048 + 2 bytes), so this is 32x the largest real entry, and room for a
 * 4096-wide head in fp32.
 */
export const MAX_ZIP_ENTRY_BYTES = 64 * 1024 * 1024;
/** The largest total of the declared (inflated) sizes of all entries of one archive: 128 MiB. */
export const MAX_ZIP_TOTAL_BYTES = 128 * 1024 * 1024;
/** The most entries an archive may list: a torch.save file has 3-4 plus one per storage (4 and 5 for BGE-M3's heads). */
export const MAX_ZIP_ENTRIES = 1024;

export interface ZipLimits {
  maxEntryBytes: number;
  maxTotalBytes: number;
  maxEntries: number;
}

export const DEFAULT_ZIP_LIMITS: Readonly<ZipLimits> = {
  maxEntryBytes: MAX_ZIP_ENTRY_BYTES,
  maxTotalBytes: MAX_ZIP_TOTAL_BYTES,
  maxEntries: MAX_ZIP_ENTRIES,
};

const MiB = 1024 * 1024;
const fmt = (n: number) => (n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${n} bytes`);

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  /** Bytes inflated (or copied out) so far, against `limits.maxTotalBytes`. */
  private produced = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly file: string,
    private readonly limits: Readonly<ZipLimits> = DEFAULT_ZIP_LIMITS,
  ) {
    this.readCentralDirectory();
    let total = 0;
    for (const e of this.entries.values()) {
      if (e.size > limits.maxEntryBytes) this.tooLarge(e.name, e.size, limits.maxEntryBytes);
      total += e.size;
    }
    if (total > limits.maxTotalBytes) {
      throw new BgeM3Error(
        'CORRUPT_FILE',
        `${this.file}: its zip entries declare ${fmt(total)} in all, more than the ${fmt(limits.maxTotalBytes)} budget of a head file ` +
          `(BGE-M3's are ~2 MB); refusing to inflate it.`,
      );
    }
  }

  private tooLarge(name: string, size: number, cap: number): never {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${this.file}: zip entry "${name}" declares ${fmt(size)}, more than the ${fmt(cap)} budget of a head file's entry ` +
        `(BGE-M3's are ~2 MB); refusing to inflate it.`,
    );
  }

  private corrupt(what: string): never {
    throw new BgeM3Error('CORRUPT_FILE', `${this.file} is not a readable zip archive (${what}); re-download the file.`);
  }

  private readCentralDirectory(): void {
    const b = this.buf;
    let eocd = -1;
    for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 0xffff); i--) {
      if (b.readUInt32LE(i) === EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) this.corrupt('no end-of-central-directory record: truncated or not a zip');
    let count = b.readUInt16LE(eocd + 10);
    let cdOffset = b.readUInt32LE(eocd + 16);
    if (eocd >= 20 && b.readUInt32LE(eocd - 20) === ZIP64_LOCATOR) {
      const z64 = Number(b.readBigUInt64LE(eocd - 20 + 8));
      if (z64 + 56 > b.length || b.readUInt32LE(z64) !== ZIP64_EOCD) this.corrupt('bad ZIP64 record');
      count = Number(b.readBigUInt64LE(z64 + 32));
      cdOffset = Number(b.readBigUInt64LE(z64 + 48));
    }
    if (!Number.isSafeInteger(count) || count > this.limits.maxEntries) {
      throw new BgeM3Error('CORRUPT_FILE', `${this.file}: the zip lists ${count} entries, more than the ${this.limits.maxEntries} budget of a head file; refusing it.`);
    }
    let p = cdOffset;
    for (let n = 0; n < count; n++) {
      if (p + 46 > b.length || b.readUInt32LE(p) !== CENTRAL) this.corrupt('bad central directory entry');
      const method = b.readUInt16LE(p + 10);
      const crc = b.readUInt32LE(p + 16);
      let compressedSize = b.readUInt32LE(p + 20);
      let size = b.readUInt32LE(p + 24);
      const nameLen = b.readUInt16LE(p + 28);
      const extraLen = b.readUInt16LE(p + 30);
      const commentLen = b.readUInt16LE(p + 32);
      let localHeaderOffset = b.readUInt32LE(p + 42);
      const name = b.toString('utf8', p + 46, p + 46 + nameLen);
      // ZIP64 extra field: the 64-bit values appear in this order, only for fields set to 0xffffffff.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = b.readUInt16LE(e);
        const len = b.readUInt16LE(e + 2);
        if (e + 4 + len > extraEnd) this.corrupt('bad extra field');
        if (id === 0x0001) {
          let q = e + 4;
          const need = (size === 0xffffffff ? 8 : 0) + (compressedSize === 0xffffffff ? 8 : 0) + (localHeaderOffset === 0xffffffff ? 8 : 0);
          if (need > len) this.corrupt('ZIP64 extra field too short');
          if (size === 0xffffffff) (size = Number(b.readBigUInt64LE(q))), (q += 8);
          if (compressedSize === 0xffffffff) (compressedSize = Number(b.readBigUInt64LE(q))), (q += 8);
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(b.readBigUInt64LE(q));
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, crc, localHeaderOffset });
      p = extraEnd + commentLen;
    }
  }

  /**
   * The bytes of one entry, CRC-checked. `maxBytes` (default: the per-entry budget) caps what this
   * entry may declare, checked before inflating.
   */
  read(name: string, maxBytes: number = this.limits.maxEntryBytes): Buffer {
    const entry = this.entries.get(name);
    if (!entry) this.corrupt(`entry "${name}" is missing`);
    const cap = Math.min(maxBytes, this.limits.maxEntryBytes);
    if (entry.size > cap) this.tooLarge(name, entry.size, cap);
    if (this.produced + entry.size > this.limits.maxTotalBytes) {
      throw new BgeM3Error('CORRUPT_FILE', `${this.file}: reading "${name}" would take the archive past its ${fmt(this.limits.maxTotalBytes)} budget; refusing it.`);
    }
    this.produced += entry.size;
    const b = this.buf;
    const h = entry.localHeaderOffset;
    if (h + 30 > b.length || b.readUInt32LE(h) !== LOCAL) this.corrupt(`bad local header for "${name}"`);
    const start = h + 30 + b.readUInt16LE(h + 26) + b.readUInt16LE(h + 28);
    const end = start + entry.compressedSize;
    if (end > b.length) this.corrupt(`entry "${name}" runs past the end of the file`);
    const raw = b.subarray(start, end);
    let data: Buffer;
    if (entry.method === 0) data = raw;
    else if (entry.method === 8) {
      try {
        // Capped at the declared size (itself within the budget), so a lying header cannot inflate more.
        data = inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) });
      } catch {
        return this.corrupt(`entry "${name}" does not inflate to its declared ${entry.size} bytes`);
      }
    }
    else this.corrupt(`entry "${name}" uses unsupported compression method ${entry.method}`);
    if (data.length !== entry.size) this.corrupt(`entry "${name}" has ${data.length} bytes, expected ${entry.size}`);
    if (crc32(data) !== entry.crc) this.corrupt(`CRC-32 mismatch in entry "${name}"`);
    return data;
  }
}
