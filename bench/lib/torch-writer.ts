/**
 * Writes a PyTorch `state_dict` file the way `torch.save` does (legacy-free zip format): a stored
 * (uncompressed) zip holding `<archive>/data.pkl` (a protocol-2 pickle of an `OrderedDict` whose
 * values are `torch._utils._rebuild_tensor_v2(...)` calls over persistent storages),
 * `<archive>/byteorder`, one `<archive>/data/<key>` entry per storage and `<archive>/version`.
 * Storage entries are padded to 64-byte alignment with an "FB" extra field, as torch does.
 *
 * Hand-written (no zip or pickle library) because the format subset is tiny and fixed; the reader
 * this must satisfy is `src/model/weights/torch-state-dict.ts`, and the same files open in Python
 * (`torch.load(..., weights_only=True)`).
 */
import { crc32 } from 'node:zlib';
import { writeFileSync } from 'node:fs';

export interface HalfTensor {
  name: string;
  shape: number[];
  /** fp16 bits, row-major. */
  data: Uint16Array;
}

/** Builds a protocol-2 pickle with the handful of opcodes a state_dict needs. */
class PickleWriter {
  private readonly parts: Buffer[] = [Buffer.from([0x80, 0x02])]; // PROTO 2

  private op(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }

  global(module: string, name: string): this {
    this.parts.push(Buffer.from(`c${module}\n${name}\n`, 'latin1'));
    return this;
  }

  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x58; // BINUNICODE
    head.writeUInt32LE(b.length, 1);
    this.parts.push(head, b);
    return this;
  }

  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n); // BININT1
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >>> 8); // BININT2
    const b = Buffer.alloc(5);
    b[0] = 0x4a; // BININT
    b.writeInt32LE(n, 1);
    this.parts.push(b);
    return this;
  }

  tuple(items: number[]): this {
    this.mark();
    for (const i of items) this.int(i);
    return this.op(0x74); // TUPLE
  }

  mark = () => this.op(0x28);
  endTuple = () => this.op(0x74);
  emptyTuple = () => this.op(0x29);
  emptyDict = () => this.op(0x7d);
  reduce = () => this.op(0x52);
  persistentId = () => this.op(0x51); // BINPERSID
  newFalse = () => this.op(0x89);
  setItem = () => this.op(0x73);
  setItems = () => this.op(0x75);
  build = () => this.op(0x62);
  stop = () => this.op(0x2e);

  orderedDict(): this {
    return this.global('collections', 'OrderedDict').emptyTuple().reduce();
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function statePickle(tensors: readonly HalfTensor[]): Buffer {
  const p = new PickleWriter();
  p.orderedDict().mark();
  tensors.forEach((t, key) => {
    const strides = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    p.str(t.name).global('torch._utils', '_rebuild_tensor_v2').mark();
    // Persistent id: ('storage', torch.HalfStorage, key, location, numel)
    p.mark().str('storage').global('torch', 'HalfStorage').str(String(key)).str('cpu').int(t.data.length).endTuple().persistentId();
    p.int(0).tuple(t.shape).tuple(strides).newFalse().orderedDict().endTuple().reduce();
  });
  p.setItems();
  // state_dict()._metadata = {'': {'version': 1}}, restored by BUILD.
  p.emptyDict().str('_metadata').orderedDict().str('').emptyDict().str('version').int(1).setItem().setItem().setItem().build();
  return p.stop().bytes();
}

interface Entry {
  name: string;
  data: Buffer;
  offset: number;
  crc: number;
}

/** Writes `tensors` as a torch.save() file at `path` (archive folder named `archive`). */
export function writeTorchStateDict(path: string, archive: string, tensors: readonly HalfTensor[]): void {
  const files: [string, Buffer][] = [
    [`${archive}/data.pkl`, statePickle(tensors)],
    [`${archive}/byteorder`, Buffer.from('little')],
    ...tensors.map((t, key): [string, Buffer] => [`${archive}/data/${key}`, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]),
    [`${archive}/version`, Buffer.from('3\n')],
  ];
  const out: Buffer[] = [];
  const entries: Entry[] = [];
  let offset = 0;
  for (const [name, data] of files) {
    const nameBytes = Buffer.from(name, 'utf8');
    // Pad with an "FB" extra field so the data starts on a 64-byte boundary.
    const headerEnd = offset + 30 + nameBytes.length;
    const pad = (64 - ((headerEnd + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad, 'Z');
    extra.writeUInt16LE(0x4246, 0);
    extra.writeUInt16LE(pad, 2);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE(0x21, 12); // date: 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    entries.push({ name, data, offset, crc });
    out.push(local, nameBytes, extra, data);
    offset += 30 + nameBytes.length + extra.length + data.length;
  }
  const cdStart = offset;
  for (const e of entries) {
    const nameBytes = Buffer.from(e.name, 'utf8');
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4); // made by
    central.writeUInt16LE(20, 6); // needed
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(e.crc, 16);
    central.writeUInt32LE(e.data.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    // extra, comment, disk, internal attrs, external attrs: 0
    central.writeUInt32LE(e.offset, 42);
    out.push(central, nameBytes);
    offset += 46 + nameBytes.length;
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(offset - cdStart, 12);
  eocd.writeUInt32LE(cdStart, 16);
  out.push(eocd);
  writeFileSync(path, Buffer.concat(out));
}
