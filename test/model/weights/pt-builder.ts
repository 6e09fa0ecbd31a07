/**
 * Builds `.pt` files for tests, byte by byte: a pickle writer with the opcodes a state_dict uses
 * (plus whatever a hostile file might), the state_dict pickle `torch.save` writes (byte-identical
 * to the fixture's heads), and a minimal zip writer whose entries may be deflated or carry a
 * declared size and CRC that differ from their bytes.
 */
import { writeFileSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';

/** A pickle assembled from opcodes. */
export class Pickle {
  private readonly parts: Buffer[] = [];

  op(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }

  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

  proto(v = 2) { return this.op(0x80, v); }
  global(module: string, name: string) { return this.raw(Buffer.from(`c${module}\n${name}\n`, 'latin1')); }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x58; // BINUNICODE
    head.writeUInt32LE(b.length, 1);
    return this.raw(Buffer.concat([head, b]));
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >>> 8);
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    return this.raw(b);
  }
  put(k: number) { return k < 256 ? this.op(0x71, k) : this.longPut(k); }
  longPut(k: number) { const b = Buffer.alloc(5); b[0] = 0x72; b.writeUInt32LE(k, 1); return this.raw(b); }
  get(k: number) { return this.op(0x68, k); }
  mark() { return this.op(0x28); }
  tuple() { return this.op(0x74); }
  tuple1() { return this.op(0x85); }
  tuple2() { return this.op(0x86); }
  emptyTuple() { return this.op(0x29); }
  emptyList() { return this.op(0x5d); }
  emptyDict() { return this.op(0x7d); }
  reduce() { return this.op(0x52); }
  persid() { return this.op(0x51); }
  newFalse() { return this.op(0x89); }
  none() { return this.op(0x4e); }
  setItem() { return this.op(0x73); }
  setItems() { return this.op(0x75); }
  appends() { return this.op(0x65); }
  build() { return this.op(0x62); }
  stackGlobal() { return this.op(0x93); }
  stop() { return this.op(0x2e); }

  repeat(n: number, f: (p: this, i: number) => void): this {
    for (let i = 0; i < n; i++) f(this, i);
    return this;
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export interface TensorSpec {
  name: string;
  shape: number[];
  /** Elements of the storage (default: the shape's product). */
  numel?: number;
  /** Default 'HalfStorage'. */
  storage?: string;
}

/** The pickle `torch.save(linear.state_dict())` writes (protocol 2, with its BINPUTs): byte-identical to the fixture's. */
export function statePickle(tensors: readonly TensorSpec[]): Buffer {
  const p = new Pickle().proto(2).global('collections', 'OrderedDict').put(0).emptyTuple().reduce().put(1).mark();
  let memo = 2;
  const storageMemo = new Map<string, number>();
  let rebuild: number | undefined;
  let storageStr: number | undefined;
  let cpu: number | undefined;
  tensors.forEach((t, key) => {
    const strides = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    p.str(t.name).put(memo++);
    if (rebuild === undefined) p.global('torch._utils', '_rebuild_tensor_v2').put((rebuild = memo++));
    else p.get(rebuild);
    p.mark().mark();
    if (storageStr === undefined) p.str('storage').put((storageStr = memo++));
    else p.get(storageStr);
    const type = t.storage ?? 'HalfStorage';
    if (!storageMemo.has(type)) p.global('torch', type).put(storageMemo.set(type, memo++).get(type)!);
    else p.get(storageMemo.get(type)!);
    p.str(String(key)).put(memo++);
    if (cpu === undefined) p.str('cpu').put((cpu = memo++));
    else p.get(cpu);
    p.int(t.numel ?? t.shape.reduce((a, b) => a * b, 1)).tuple().put(memo++).persid().int(0);
    const dims = (ds: number[]) => {
      if (ds.length === 1) p.int(ds[0]!).tuple1();
      else if (ds.length === 2) p.int(ds[0]!).int(ds[1]!).tuple2();
      else { p.mark(); ds.forEach((d) => p.int(d)); p.tuple(); }
      p.put(memo++);
    };
    dims(t.shape);
    dims(strides);
    p.newFalse().get(0).emptyTuple().reduce().put(memo++).tuple().put(memo++).reduce().put(memo++);
  });
  p.setItems().emptyDict().put(memo++).str('_metadata').put(memo++).get(0).emptyTuple().reduce().put(memo++);
  p.str('').put(memo++).emptyDict().put(memo++).str('version').put(memo++).int(1).setItem().setItem().setItem().build();
  return p.stop().bytes();
}

export interface ZipEntrySpec {
  name: string;
  /** The bytes stored in the archive (already compressed when `method` is 8 and `compressed` is true). */
  data: Buffer;
  /** 0 stored (default), 8 deflated: `data` is deflated here unless `compressed`. */
  method?: 0 | 8;
  compressed?: boolean;
  /** The size written in the headers (default: the real inflated size). */
  declaredSize?: number;
  /** The CRC-32 written in the headers (default: computed). */
  crc?: number;
}

/** Writes a minimal zip archive (no ZIP64) at `path`. */
export function writeZip(path: string, entries: readonly ZipEntrySpec[]): void {
  const out: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const method = e.method ?? 0;
    const stored = method === 8 && !e.compressed ? deflateRawSync(e.data) : e.data;
    const size = e.declaredSize ?? (method === 8 && e.compressed ? 0 : e.data.length);
    const crc = e.crc ?? crc32(e.data);
    const name = Buffer.from(e.name, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt16LE(0x21, 14);
    cd.writeUInt32LE(crc >>> 0, 16);
    cd.writeUInt32LE(stored.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    out.push(local, name, stored);
    central.push(cd, name);
    offset += 30 + name.length + stored.length;
  }
  const cdSize = central.reduce((a, b) => a + b.length, 0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(offset, 16);
  writeFileSync(path, Buffer.concat([...out, ...central, eocd]));
}

/** Writes a `.pt` at `path`: `archive/data.pkl` (`pkl`), `archive/byteorder`, `archive/data/<key>` for each storage, `archive/version`. */
export function writePt(path: string, pkl: Buffer | ZipEntrySpec, storages: Record<string, Buffer | ZipEntrySpec> = {}, archive = 'archive'): void {
  const entry = (name: string, v: Buffer | ZipEntrySpec): ZipEntrySpec => (Buffer.isBuffer(v) ? { name, data: v } : { ...v, name });
  writeZip(path, [
    entry(`${archive}/data.pkl`, pkl),
    { name: `${archive}/byteorder`, data: Buffer.from('little') },
    ...Object.entries(storages).map(([key, v]) => entry(`${archive}/data/${key}`, v)),
    { name: `${archive}/version`, data: Buffer.from('3\n') },
  ]);
}

/** fp16 bits of small deterministic values (|x| < 0.1). */
export function halfData(n: number): Buffer {
  const b = Buffer.alloc(2 * n);
  for (let i = 0; i < n; i++) b.writeUInt16LE(0x2000 + (i % 512), 2 * i); // ~0.0078 .. 0.0156
  return b;
}
