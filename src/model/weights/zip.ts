/**
 * A minimal reader for the zip container that `torch.save` writes (stored entries, optionally
 * ZIP64). Hand-written because the files are small, the format subset is tiny and a general zip
 * library would add a dependency for ~100 lines; every entry's CRC-32 is checked so a corrupt
 * byte is reported instead of silently producing wrong weights.
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
/** BGE-M3's heads are ~2 MB; no entry of a weights file this package reads comes near 1 GiB. */
const MAX_ENTRY_BYTES = 1 << 30;

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();

  constructor(
    private readonly buf: Buffer,
    private readonly file: string,
  ) {
    this.readCentralDirectory();
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

  /** The bytes of one entry, CRC-checked. */
  read(name: string): Buffer {
    const entry = this.entries.get(name);
    if (!entry) this.corrupt(`entry "${name}" is missing`);
    const b = this.buf;
    const h = entry.localHeaderOffset;
    if (h + 30 > b.length || b.readUInt32LE(h) !== LOCAL) this.corrupt(`bad local header for "${name}"`);
    const start = h + 30 + b.readUInt16LE(h + 26) + b.readUInt16LE(h + 28);
    const end = start + entry.compressedSize;
    if (end > b.length) this.corrupt(`entry "${name}" runs past the end of the file`);
    const raw = b.subarray(start, end);
    let data: Buffer;
    if (entry.size > MAX_ENTRY_BYTES) this.corrupt(`entry "${name}" declares ${entry.size} bytes, more than a head file can hold`);
    if (entry.method === 0) data = raw;
    else if (entry.method === 8) {
      try {
        // Capped at the declared size, so a zip bomb cannot inflate past it.
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
