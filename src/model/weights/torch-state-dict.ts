/**
 * Reads a PyTorch `state_dict` saved by `torch.save` (a zip holding `data.pkl` and one file per
 * storage) without executing anything from the file.
 *
 * Python's pickle format is a small stack machine whose GLOBAL/REDUCE opcodes normally import and
 * call arbitrary Python callables. Here only the opcodes a state_dict uses are interpreted, and a
 * GLOBAL is resolved only if it is on an allow-list of the few names a state_dict needs
 * (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and the `torch.*Storage` types);
 * any other global is refused with an error. Nothing is `eval`'d, imported or called by name.
 */
import { BgeM3Error } from '../../errors.js';
import { bfloat16ToFloat32, halfToFloat32 } from './fp16.js';
import type { WeightTensor } from './tensor.js';
import { ZipReader } from './zip.js';

const STORAGE_DTYPES: Record<string, 'f16' | 'bf16' | 'f32' | 'f64'> = {
  HalfStorage: 'f16',
  BFloat16Storage: 'bf16',
  FloatStorage: 'f32',
  DoubleStorage: 'f64',
};

/** Markers for the allowed globals: the interpreter only ever "calls" these. */
type AllowedGlobal =
  | { kind: 'OrderedDict' }
  | { kind: 'rebuild_tensor_v2' }
  | { kind: 'storage_type'; dtype: 'f16' | 'bf16' | 'f32' | 'f64'; name: string };

interface StorageRef {
  kind: 'storage';
  dtype: 'f16' | 'bf16' | 'f32' | 'f64';
  key: string;
  numel: number;
}

interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

const MARK = Symbol('mark');

function resolveGlobal(module: string, name: string, file: string): AllowedGlobal {
  if (module === 'collections' && name === 'OrderedDict') return { kind: 'OrderedDict' };
  if (module === 'torch._utils' && name === '_rebuild_tensor_v2') return { kind: 'rebuild_tensor_v2' };
  if (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name)) return { kind: 'storage_type', dtype: STORAGE_DTYPES[name]!, name };
  throw new BgeM3Error(
    'UNSAFE_PICKLE',
    `${file} asks for the Python global "${module}.${name}", which a plain state_dict of tensors never needs; ` +
      `refusing to read it (nothing from the file was executed). Use a state_dict saved with torch.save(module.state_dict()) ` +
      `or a .safetensors file instead.`,
  );
}

/**
 * Interprets `data.pkl`. Returns the top-level object (for a state_dict: a Map of name -> TensorRef).
 * Exported for tests; use {@link readTorchStateDict} to get tensors.
 */
export function unpickleStateDict(pkl: Buffer, file: string): unknown {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const fail = (what: string): never => {
    throw new BgeM3Error('CORRUPT_FILE', `${file}: cannot read its pickle (${what} at byte ${pos}); re-download the file.`);
  };
  const need = (n: number) => {
    if (pos + n > pkl.length) fail('unexpected end of data');
  };
  const u8 = () => (need(1), pkl[pos++]!);
  const u16 = () => (need(2), (pos += 2), pkl.readUInt16LE(pos - 2));
  const u32 = () => (need(4), (pos += 4), pkl.readUInt32LE(pos - 4));
  const i32 = () => (need(4), (pos += 4), pkl.readInt32LE(pos - 4));
  const bytes = (n: number) => (need(n), (pos += n), pkl.subarray(pos - n, pos));
  const line = () => {
    const end = pkl.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated line');
    const s = pkl.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = () => (stack.length === 0 ? fail('stack underflow') : stack.pop());
  const popMark = (): unknown[] => {
    const items: unknown[] = [];
    for (;;) {
      if (stack.length === 0) fail('MARK not found');
      const v = stack.pop();
      if (v === MARK) return items.reverse();
      items.push(v);
    }
  };
  const setItem = (target: unknown, key: unknown, value: unknown) => {
    if (target instanceof Map) target.set(key, value);
    else fail('SETITEM on a non-dict');
  };
  const call = (fn: unknown, args: unknown): unknown => {
    const g = fn as AllowedGlobal;
    if (!Array.isArray(args)) fail('REDUCE arguments are not a tuple');
    const a = args as unknown[];
    if (g?.kind === 'OrderedDict') return new Map();
    if (g?.kind === 'rebuild_tensor_v2') {
      const [storage, offset, shape, stride] = a as [StorageRef, number, number[], number[]];
      if ((storage as StorageRef)?.kind !== 'storage' || !Array.isArray(shape) || !Array.isArray(stride)) {
        fail('malformed _rebuild_tensor_v2 arguments');
      }
      return { kind: 'tensor', storage, offset, shape, stride } satisfies TensorRef;
    }
    return fail('REDUCE on something that is not callable');
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: bytes(8); break; // FRAME
      case 0x2e: return pop(); // STOP '.'
      case 0x28: stack.push(MARK); break; // MARK '('
      case 0x63: { const module = line(); const name = line(); stack.push(resolveGlobal(module, name, file)); break; } // GLOBAL 'c'
      case 0x93: { const name = pop(); const module = pop(); stack.push(resolveGlobal(String(module), String(name), file)); break; } // STACK_GLOBAL
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT '}'
      case 0x5d: stack.push([]); break; // EMPTY_LIST ']'
      case 0x29: stack.push([]); break; // EMPTY_TUPLE ')'
      case 0x74: stack.push(popMark()); break; // TUPLE 't'
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x71: memo.set(u8(), stack[stack.length - 1]); break; // BINPUT 'q'
      case 0x72: memo.set(u32(), stack[stack.length - 1]); break; // LONG_BINPUT 'r'
      case 0x94: memo.set(memo.size, stack[stack.length - 1]); break; // MEMOIZE
      case 0x68: { const k = u8(); if (!memo.has(k)) fail('BINGET of an unknown memo key'); stack.push(memo.get(k)); break; } // BINGET 'h'
      case 0x6a: { const k = u32(); if (!memo.has(k)) fail('LONG_BINGET of an unknown memo key'); stack.push(memo.get(k)); break; } // LONG_BINGET 'j'
      case 0x58: { const n = u32(); stack.push(bytes(n).toString('utf8')); break; } // BINUNICODE 'X'
      case 0x8c: { const n = u8(); stack.push(bytes(n).toString('utf8')); break; } // SHORT_BINUNICODE
      case 0x8d: { const n = Number(bytes(8).readBigUInt64LE()); stack.push(bytes(n).toString('utf8')); break; } // BINUNICODE8
      case 0x55: { const n = u8(); stack.push(bytes(n).toString('latin1')); break; } // SHORT_BINSTRING 'U'
      case 0x54: { const n = u32(); stack.push(bytes(n).toString('latin1')); break; } // BINSTRING 'T'
      case 0x43: { const n = u8(); stack.push(Buffer.from(bytes(n))); break; } // SHORT_BINBYTES 'C'
      case 0x42: { const n = u32(); stack.push(Buffer.from(bytes(n))); break; } // BINBYTES 'B'
      case 0x4b: stack.push(u8()); break; // BININT1 'K'
      case 0x4d: stack.push(u16()); break; // BININT2 'M'
      case 0x4a: stack.push(i32()); break; // BININT 'J'
      case 0x8a: { // LONG1
        const n = u8();
        const b = bytes(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(Number(v));
        break;
      }
      case 0x47: stack.push(bytes(8).readDoubleBE()); break; // BINFLOAT 'G'
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4e: stack.push(null); break; // NONE 'N'
      case 0x51: { // BINPERSID 'Q': ('storage', storage_type, key, location, numel)
        const pid = pop() as unknown[];
        const type = pid?.[1] as AllowedGlobal | undefined;
        if (!Array.isArray(pid) || pid[0] !== 'storage' || type?.kind !== 'storage_type') fail('unexpected persistent id');
        stack.push({ kind: 'storage', dtype: (type as { dtype: StorageRef['dtype'] }).dtype, key: String(pid[2]), numel: Number(pid[4]) } satisfies StorageRef);
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args)); break; } // REDUCE 'R'
      case 0x62: pop(); break; // BUILD 'b': state (e.g. the state_dict's _metadata) is not needed
      case 0x73: { const v = pop(); const k = pop(); setItem(stack[stack.length - 1], k, v); break; } // SETITEM 's'
      case 0x75: { // SETITEMS 'u'
        const items = popMark();
        const target = stack[stack.length - 1];
        for (let i = 0; i + 1 < items.length; i += 2) setItem(target, items[i], items[i + 1]);
        break;
      }
      case 0x61: { const v = pop(); const list = stack[stack.length - 1]; if (!Array.isArray(list)) fail('APPEND to a non-list'); (list as unknown[]).push(v); break; } // APPEND 'a'
      case 0x65: { const items = popMark(); const list = stack[stack.length - 1]; if (!Array.isArray(list)) fail('APPENDS to a non-list'); (list as unknown[]).push(...items); break; } // APPENDS 'e'
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)}`);
    }
  }
}

const DTYPE_BYTES = { f16: 2, bf16: 2, f32: 4, f64: 8 } as const;

function storageToFloat32(raw: Buffer, dtype: StorageRef['dtype']): Float32Array {
  // Copy into an aligned buffer: zip entries are not guaranteed to start at an aligned offset.
  const aligned = new Uint8Array(raw.length);
  aligned.set(raw);
  switch (dtype) {
    case 'f16': return halfToFloat32(new Uint16Array(aligned.buffer));
    case 'bf16': return bfloat16ToFloat32(new Uint16Array(aligned.buffer));
    case 'f32': return new Float32Array(aligned.buffer);
    case 'f64': return Float32Array.from(new Float64Array(aligned.buffer));
  }
}

/** Reads every tensor of a `torch.save`d state_dict as float32, keyed by parameter name. */
export function readTorchStateDict(buf: Buffer, file: string): Map<string, WeightTensor> {
  const zip = new ZipReader(buf, file);
  const pklName = [...zip.entries.keys()].find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (!pklName) {
    throw new BgeM3Error('CORRUPT_FILE', `${file} is a zip but holds no data.pkl: not a torch.save() file.`);
  }
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const byteorder = zip.entries.has(`${prefix}byteorder`) ? zip.read(`${prefix}byteorder`).toString() : 'little';
  if (byteorder !== 'little') {
    throw new BgeM3Error('CORRUPT_FILE', `${file} was saved on a big-endian machine; re-save it on a little-endian one.`);
  }
  const root = unpickleStateDict(zip.read(pklName), file);
  if (!(root instanceof Map)) {
    throw new BgeM3Error('CORRUPT_FILE', `${file} does not hold a state_dict (a dict of tensors).`);
  }
  const storages = new Map<string, Float32Array>();
  const out = new Map<string, WeightTensor>();
  for (const [name, value] of root) {
    const t = value as TensorRef;
    if (t?.kind !== 'tensor') continue;
    let storage = storages.get(t.storage.key);
    if (!storage) {
      const raw = zip.read(`${prefix}data/${t.storage.key}`);
      if (raw.length !== t.storage.numel * DTYPE_BYTES[t.storage.dtype]) {
        throw new BgeM3Error('CORRUPT_FILE', `${file}: storage ${t.storage.key} has ${raw.length} bytes, expected ${t.storage.numel} elements.`);
      }
      storage = storageToFloat32(raw, t.storage.dtype);
      storages.set(t.storage.key, storage);
    }
    checkView(t, file, String(name));
    out.set(String(name), { shape: t.shape, data: gather(storage, t, file) });
  }
  return out;
}

/**
 * Refuses a tensor view that does not fit inside its storage before anything is allocated: shape,
 * stride and offset come from the file, and a view with zero strides over a one-element storage
 * would otherwise make `gather` allocate and fill an arbitrarily large array.
 */
function checkView(t: TensorRef, file: string, name: string): void {
  const natural = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  const ok =
    t.shape.length === t.stride.length && t.shape.every(natural) && t.stride.every(natural) && natural(t.offset);
  const numel = ok ? t.shape.reduce((a, b) => a * b, 1) : 0;
  let last = t.offset;
  if (ok) t.shape.forEach((n, d) => (last += n > 0 ? (n - 1) * t.stride[d]! : 0));
  if (!ok || numel > t.storage.numel || (numel > 0 && last >= t.storage.numel)) {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${file}: tensor "${name}" (shape ${JSON.stringify(t.shape)}, stride ${JSON.stringify(t.stride)}, offset ${t.offset}) ` +
        `does not fit in its storage of ${t.storage.numel} elements; the file is corrupt.`,
    );
  }
}

/** Copies a (possibly strided) view out of its storage into a contiguous row-major array. */
function gather(storage: Float32Array, t: TensorRef, file: string): Float32Array {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(numel);
  const rank = t.shape.length;
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < numel; i++) {
    let src = t.offset;
    for (let d = 0; d < rank; d++) src += index[d]! * t.stride[d]!;
    if (src >= storage.length) throw new BgeM3Error('CORRUPT_FILE', `${file}: a tensor view runs past its storage.`);
    out[i] = storage[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d]! < t.shape[d]!) break;
      index[d] = 0;
    }
  }
  return out;
}
