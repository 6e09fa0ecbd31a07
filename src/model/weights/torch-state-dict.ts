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
import { bfloat16ToFloat32, halfToFloat32 } from '../../shared/fp16.js';
import type { WeightTensor } from './tensor.js';
import { DEFAULT_ZIP_LIMITS, ZipReader, type ZipLimits } from './zip.js';

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

/**
 * Resource budgets of the pickle interpreter. A hostile `data.pkl` of a few hundred bytes can
 * otherwise build exponentially large nested containers out of memo references ("billion
 * laughs"), push millions of MARKs, or hide a huge string; each budget is checked as the opcode
 * runs, and exceeding one throws CORRUPT_FILE naming the file and the budget, in microseconds.
 *
 * Measured on pickles byte-identical to what `torch.save` writes for BGE-M3's real heads
 * (colbert_linear: weight [1024, 1024] + bias [1024], 297 bytes; sparse_linear: [1, 1024] + [1],
 * 292 bytes; the same writer reproduces the test fixture's 290-byte pickle exactly, and a test
 * checks these numbers on the fixture): 94 opcodes, 28 memo entries, at most 12 values on the
 * stack, MARKs nested 3 deep, 38 container elements in all, no object expanding to more than 11
 * elements, the longest string or GLOBAL line 18 bytes ('_rebuild_tensor_v2'), 2 tensors of
 * rank <= 2. Every cap below is >= 100x that (enough for state_dicts of a few dozen tensors).
 */
export interface PickleBudgets {
  /** Bytes of data.pkl (real: 297 / 292). */
  pickleBytes: number;
  /** Opcodes executed (real: 94). */
  opcodes: number;
  /** Distinct memo entries (real: 28). */
  memo: number;
  /** Values on the stack at once, all MARK frames together (real: 12). */
  stackDepth: number;
  /** MARKs open at once (real: 3). */
  markDepth: number;
  /** Elements put into tuples, lists and dicts in all (real: 38). */
  elements: number;
  /** Elements any one object expands to, counting a shared (memoized) object each time it appears (real: 11). */
  expanded: number;
  /** Bytes of one string, byte string or GLOBAL line (real: 18). */
  stringBytes: number;
  /** Dimensions of one tensor (real: 2). */
  rank: number;
}

export const PICKLE_BUDGETS: Readonly<PickleBudgets> = {
  pickleBytes: 1 << 20, // 1 MiB (3530x)
  opcodes: 16_384, // 174x
  memo: 4096, // 146x
  stackDepth: 2048, // 170x
  markDepth: 512, // 170x
  elements: 8192, // 215x (each element is pushed by an opcode, so this must stay below `opcodes` to mean anything)
  expanded: 65_536, // 5957x
  stringBytes: 16_384, // 910x
  rank: 16, // 8x: not a resource, just a sanity bound (a Linear layer's tensors have rank 1 and 2)
};

/** What one run of the interpreter used, for tests and for documenting {@link PICKLE_BUDGETS}. */
export interface PickleUsage {
  pickleBytes: number;
  opcodes: number;
  memo: number;
  stackDepth: number;
  markDepth: number;
  elements: number;
  expanded: number;
  stringBytes: number;
}

/** Opcodes that construct or call objects by name in a full unpickler: refused as unsafe, not merely unsupported. */
const UNSAFE_OPCODES: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x50: 'PERSID',
};

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

const natural = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const isKey = (x: unknown): x is string | number | boolean | null =>
  x === null || typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';

/**
 * Interprets `data.pkl`. Returns the top-level object (for a state_dict: a Map of name -> TensorRef).
 * Exported for tests; use {@link readTorchStateDict} to get tensors.
 */
export function unpickleStateDict(pkl: Buffer, file: string, budgets: Readonly<PickleBudgets> = PICKLE_BUDGETS): unknown {
  return unpickleWithUsage(pkl, file, budgets).value;
}

/** {@link unpickleStateDict}, also returning what the run used of each budget. */
export function unpickleWithUsage(pkl: Buffer, file: string, budgets: Readonly<PickleBudgets> = PICKLE_BUDGETS): { value: unknown; usage: PickleUsage } {
  const usage: PickleUsage = { pickleBytes: pkl.length, opcodes: 0, memo: 0, stackDepth: 0, markDepth: 0, elements: 0, expanded: 0, stringBytes: 0 };
  /** Values; `marks` holds the stack length at each open MARK (Python's metastack, flattened). */
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  /** Expanded sizes of the containers built here (a container counts 1 plus its elements' sizes). */
  const sizes = new WeakMap<object, number>();
  let pos = 0;
  let opStart = 0;
  const fail = (what: string): never => {
    throw new BgeM3Error('CORRUPT_FILE', `${file}: cannot read its pickle (${what} at byte ${opStart}); re-download the file.`);
  };
  const over = (budget: keyof PickleBudgets, detail: string): never => {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${file}: its pickle exceeds the ${budget} budget (${detail}, at byte ${opStart}); a state_dict of a few tensors needs ` +
        `a small fraction of it, so the file is corrupt or hostile. Refusing to read it (nothing from the file was executed).`,
    );
  };
  if (pkl.length > budgets.pickleBytes) over('pickleBytes', `${pkl.length} bytes, at most ${budgets.pickleBytes}`);
  const need = (n: number) => {
    if (pos + n > pkl.length) fail('unexpected end of data');
  };
  const u8 = () => (need(1), pkl[pos++]!);
  const u16 = () => (need(2), (pos += 2), pkl.readUInt16LE(pos - 2));
  const u32 = () => (need(4), (pos += 4), pkl.readUInt32LE(pos - 4));
  const i32 = () => (need(4), (pos += 4), pkl.readInt32LE(pos - 4));
  const bytes = (n: number) => (need(n), (pos += n), pkl.subarray(pos - n, pos));
  const text = (n: number, encoding: 'utf8' | 'latin1') => {
    if (n > budgets.stringBytes) over('stringBytes', `a ${n}-byte string, at most ${budgets.stringBytes}`);
    usage.stringBytes = Math.max(usage.stringBytes, n);
    return bytes(n).toString(encoding);
  };
  const blob = (n: number) => {
    if (n > budgets.stringBytes) over('stringBytes', `${n} bytes, at most ${budgets.stringBytes}`);
    usage.stringBytes = Math.max(usage.stringBytes, n);
    return Buffer.from(bytes(n));
  };
  const line = () => {
    const end = pkl.indexOf(0x0a, pos);
    if (end < 0 || end - pos > budgets.stringBytes) {
      if (end < 0) fail('unterminated line');
      over('stringBytes', `a ${end - pos}-byte line, at most ${budgets.stringBytes}`);
    }
    usage.stringBytes = Math.max(usage.stringBytes, end - pos);
    const s = pkl.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const base = () => (marks.length > 0 ? marks[marks.length - 1]! : 0);
  const push = (v: unknown) => {
    if (stack.length >= budgets.stackDepth) over('stackDepth', `more than ${budgets.stackDepth} values on the stack`);
    stack.push(v);
    if (stack.length > usage.stackDepth) usage.stackDepth = stack.length;
  };
  const pop = (): unknown => (stack.length <= base() ? fail('stack underflow') : stack.pop());
  const top = (): unknown => (stack.length <= base() ? fail('stack underflow') : stack[stack.length - 1]);
  const popMark = (): unknown[] => {
    if (marks.length === 0) fail('MARK not found');
    return stack.splice(marks.pop()!);
  };
  const sizeOf = (v: unknown): number => (typeof v === 'object' && v !== null ? (sizes.get(v) ?? 1) : 1);
  /** Records that `items` were put into `container` (new or existing), within the element budgets. */
  const grow = <T extends object>(container: T, items: readonly unknown[]): T => {
    usage.elements += items.length;
    if (usage.elements > budgets.elements) over('elements', `more than ${budgets.elements} container elements in all`);
    let size = sizes.get(container) ?? 1;
    for (const v of items) size += sizeOf(v);
    if (size > budgets.expanded) over('expanded', `an object expanding to more than ${budgets.expanded} elements (nested shared containers?)`);
    sizes.set(container, size);
    if (size > usage.expanded) usage.expanded = size;
    return container;
  };
  const tuple = (items: unknown[]) => grow(items, items);
  const setItems = (target: unknown, kv: readonly unknown[]) => {
    if (!(target instanceof Map)) return fail('SETITEM on a non-dict');
    if (kv.length % 2 !== 0) fail('SETITEMS with an odd number of items');
    grow(target, kv);
    for (let i = 0; i + 1 < kv.length; i += 2) {
      const k = kv[i];
      if (!isKey(k)) fail('a dict key that is not a string or number');
      target.set(k, kv[i + 1]);
    }
  };
  const appendItems = (target: unknown, items: readonly unknown[]) => {
    if (!Array.isArray(target)) return fail('APPEND to a non-list');
    grow(target, items);
    for (const v of items) target.push(v);
  };
  const memoPut = (k: number) => {
    const v = top();
    if (!memo.has(k) && memo.size >= budgets.memo) over('memo', `more than ${budgets.memo} memo entries`);
    memo.set(k, v);
    usage.memo = memo.size;
  };
  const memoGet = (k: number) => {
    if (!memo.has(k)) fail('BINGET of an unknown memo key');
    push(memo.get(k));
  };
  const call = (fn: unknown, args: unknown): unknown => {
    const g = fn as AllowedGlobal | undefined;
    if (!Array.isArray(args)) return fail('REDUCE arguments are not a tuple');
    if (g?.kind === 'OrderedDict') {
      if (args.length !== 0) fail('OrderedDict called with arguments');
      return new Map();
    }
    if (g?.kind === 'rebuild_tensor_v2') {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      const [storage, offset, shape, stride] = args as [StorageRef, unknown, unknown, unknown];
      const dims = (x: unknown): x is number[] => Array.isArray(x) && x.length <= budgets.rank && x.every(natural);
      if ((storage as StorageRef | undefined)?.kind !== 'storage' || !natural(offset) || !dims(shape) || !dims(stride) || shape.length !== stride.length) {
        fail(`malformed _rebuild_tensor_v2 arguments (want a storage, an offset and size/stride tuples of at most ${budgets.rank} naturals)`);
      }
      return { kind: 'tensor', storage, offset: offset as number, shape: [...(shape as number[])], stride: [...(stride as number[])] } satisfies TensorRef;
    }
    return fail('REDUCE on something that is not callable');
  };

  for (;;) {
    opStart = pos;
    if (++usage.opcodes > budgets.opcodes) over('opcodes', `more than ${budgets.opcodes} opcodes`);
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: bytes(8); break; // FRAME
      case 0x2e: { // STOP '.'
        const v = pop();
        if (stack.length !== 0 || marks.length !== 0) fail('STOP with values or MARKs left on the stack');
        return { value: v, usage };
      }
      case 0x28: // MARK '('
        if (marks.length >= budgets.markDepth) over('markDepth', `more than ${budgets.markDepth} MARKs open`);
        marks.push(stack.length);
        if (marks.length > usage.markDepth) usage.markDepth = marks.length;
        break;
      case 0x63: { const module = line(); const name = line(); push(resolveGlobal(module, name, file)); break; } // GLOBAL 'c'
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL of something that is not two strings');
        push(resolveGlobal(module as string, name as string, file));
        break;
      }
      case 0x7d: push(new Map()); break; // EMPTY_DICT '}'
      case 0x5d: push([]); break; // EMPTY_LIST ']'
      case 0x29: push([]); break; // EMPTY_TUPLE ')'
      case 0x74: push(tuple(popMark())); break; // TUPLE 't'
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; } // TUPLE3
      case 0x71: memoPut(u8()); break; // BINPUT 'q'
      case 0x72: memoPut(u32()); break; // LONG_BINPUT 'r'
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x68: memoGet(u8()); break; // BINGET 'h'
      case 0x6a: memoGet(u32()); break; // LONG_BINGET 'j'
      case 0x58: push(text(u32(), 'utf8')); break; // BINUNICODE 'X'
      case 0x8c: push(text(u8(), 'utf8')); break; // SHORT_BINUNICODE
      case 0x8d: { const n = bytes(8).readBigUInt64LE(); push(text(n > BigInt(budgets.stringBytes) ? Infinity : Number(n), 'utf8')); break; } // BINUNICODE8
      case 0x55: push(text(u8(), 'latin1')); break; // SHORT_BINSTRING 'U'
      case 0x54: push(text(u32(), 'latin1')); break; // BINSTRING 'T'
      case 0x43: push(blob(u8())); break; // SHORT_BINBYTES 'C'
      case 0x42: push(blob(u32())); break; // BINBYTES 'B'
      case 0x4b: push(u8()); break; // BININT1 'K'
      case 0x4d: push(u16()); break; // BININT2 'M'
      case 0x4a: push(i32()); break; // BININT 'J'
      case 0x8a: { // LONG1
        const n = u8();
        if (n > 8) fail(`a ${n}-byte LONG1 integer, larger than any size or offset`);
        const b = bytes(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        push(Number(v));
        break;
      }
      case 0x47: push(bytes(8).readDoubleBE()); break; // BINFLOAT 'G'
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4e: push(null); break; // NONE 'N'
      case 0x51: { // BINPERSID 'Q': ('storage', storage_type, key, location, numel)
        const pid = pop();
        const p = Array.isArray(pid) ? pid : [];
        const type = p[1] as AllowedGlobal | undefined;
        if (p.length !== 5 || p[0] !== 'storage' || type?.kind !== 'storage_type' || typeof p[2] !== 'string' || typeof p[3] !== 'string' || !natural(p[4])) {
          fail('unexpected persistent id (want a storage reference)');
        }
        push({ kind: 'storage', dtype: (type as { dtype: StorageRef['dtype'] }).dtype, key: p[2] as string, numel: p[4] as number } satisfies StorageRef);
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); push(call(fn, args)); break; } // REDUCE 'R'
      case 0x62: { pop(); if (!(top() instanceof Map)) fail('BUILD on something that is not a dict'); break; } // BUILD 'b': the state (a state_dict's _metadata) is not needed
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM 's'
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS 'u'
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND 'a'
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS 'e'
      default:
        if (Object.hasOwn(UNSAFE_OPCODES, op)) {
          throw new BgeM3Error(
            'UNSAFE_PICKLE',
            `${file}: its pickle uses ${UNSAFE_OPCODES[op]} (opcode 0x${op.toString(16)} at byte ${opStart}), which builds Python objects by name; ` +
              `a plain state_dict never needs it. Refusing to read it (nothing from the file was executed).`,
          );
        }
        fail(`unsupported pickle opcode 0x${op.toString(16)}`);
    }
  }
}

const DTYPE_BYTES = { f16: 2, bf16: 2, f32: 4, f64: 8 } as const;

function storageToFloat32(raw: Buffer, dtype: StorageRef['dtype']): Float32Array {
  // Zip entries are not guaranteed to start at an aligned offset: copy only when this one does not.
  const width = DTYPE_BYTES[dtype];
  let aligned: Uint8Array = raw;
  if (dtype === 'f32' || raw.byteOffset % width !== 0) {
    // f32 is copied in any case: the result must not alias the file's buffer.
    aligned = new Uint8Array(raw.length);
    aligned.set(raw);
  }
  const n = raw.length / width;
  switch (dtype) {
    case 'f16': return halfToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, n));
    case 'bf16': return bfloat16ToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, n));
    case 'f32': return new Float32Array(aligned.buffer, aligned.byteOffset, n);
    case 'f64': return Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, n));
  }
}

export interface ReadStateDictOptions {
  /**
   * Called with every tensor's name and shape once the pickle is read and before any storage is
   * inflated or converted, so a caller that knows the shapes it needs can refuse a file early.
   */
  validate?: (shapes: ReadonlyMap<string, readonly number[]>) => void;
  /** Pickle budgets (default {@link PICKLE_BUDGETS}). */
  budgets?: Readonly<PickleBudgets>;
  /** Zip budgets (default {@link DEFAULT_ZIP_LIMITS}). */
  zipLimits?: Readonly<ZipLimits>;
}

/** Elements of the storage a view reaches: its last element + 1 (0 for an empty view). */
function viewExtent(t: TensorRef): number {
  if (t.shape.some((n) => n === 0)) return 0;
  let last = t.offset;
  t.shape.forEach((n, d) => (last += (n - 1) * t.stride[d]!));
  return last + 1;
}

/** Reads every tensor of a `torch.save`d state_dict as float32, keyed by parameter name. */
export function readTorchStateDict(buf: Buffer, file: string, options: ReadStateDictOptions = {}): Map<string, WeightTensor> {
  const budgets = options.budgets ?? PICKLE_BUDGETS;
  const zip = new ZipReader(buf, file, options.zipLimits ?? DEFAULT_ZIP_LIMITS);
  const pklName = [...zip.entries.keys()].find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (!pklName) {
    throw new BgeM3Error('CORRUPT_FILE', `${file} is a zip but holds no data.pkl: not a torch.save() file.`);
  }
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const byteorder = zip.entries.has(`${prefix}byteorder`) ? zip.read(`${prefix}byteorder`, 16).toString() : 'little';
  if (byteorder !== 'little') {
    throw new BgeM3Error('CORRUPT_FILE', `${file} was saved on a big-endian machine; re-save it on a little-endian one.`);
  }
  const pklEntry = zip.entries.get(pklName)!;
  if (pklEntry.size > budgets.pickleBytes) {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${file}: its pickle exceeds the pickleBytes budget (${pklName} declares ${pklEntry.size} bytes, at most ${budgets.pickleBytes}); refusing to inflate it.`,
    );
  }
  const root = unpickleStateDict(zip.read(pklName, budgets.pickleBytes), file, budgets);
  if (!(root instanceof Map)) {
    throw new BgeM3Error('CORRUPT_FILE', `${file} does not hold a state_dict (a dict of tensors).`);
  }
  // Everything below is checked from the pickle alone, before a storage is inflated.
  const tensors = new Map<string, TensorRef>();
  for (const [name, value] of root) {
    const t = value as TensorRef;
    if (t?.kind !== 'tensor') continue;
    checkView(t, file, String(name));
    tensors.set(String(name), t);
  }
  options.validate?.(new Map([...tensors].map(([name, t]) => [name, t.shape])));
  const needed = new Map<string, { ref: StorageRef; extent: number }>();
  for (const [name, t] of tensors) {
    const seen = needed.get(t.storage.key);
    if (seen && (seen.ref.dtype !== t.storage.dtype || seen.ref.numel !== t.storage.numel)) {
      throw new BgeM3Error('CORRUPT_FILE', `${file}: tensor "${name}" declares storage ${t.storage.key} with another dtype or size than an earlier tensor; the file is corrupt.`);
    }
    needed.set(t.storage.key, { ref: t.storage, extent: Math.max(seen?.extent ?? 0, viewExtent(t)) });
  }
  for (const { ref, extent } of needed.values()) {
    const entryName = `${prefix}data/${ref.key}`;
    const entry = zip.entries.get(entryName);
    if (!entry) throw new BgeM3Error('CORRUPT_FILE', `${file}: storage ${ref.key} (zip entry "${entryName}") is missing; re-download the file.`);
    const bytes = ref.numel * DTYPE_BYTES[ref.dtype];
    if (entry.size !== bytes) {
      throw new BgeM3Error('CORRUPT_FILE', `${file}: storage ${ref.key} has ${entry.size} bytes, expected ${ref.numel} elements (${bytes} bytes).`);
    }
    if (ref.numel > extent) {
      throw new BgeM3Error(
        'CORRUPT_FILE',
        `${file}: storage ${ref.key} holds ${ref.numel} elements but its tensors use only ${extent}; refusing to inflate a storage ` +
          `larger than the tensors declared over it (save the state_dict of contiguous tensors, e.g. after .clone()).`,
      );
    }
  }
  const storages = new Map<string, Float32Array>();
  const out = new Map<string, WeightTensor>();
  for (const [name, t] of tensors) {
    let storage = storages.get(t.storage.key);
    if (!storage) {
      const raw = zip.read(`${prefix}data/${t.storage.key}`);
      storage = storageToFloat32(raw, t.storage.dtype);
      storages.set(t.storage.key, storage);
    }
    out.set(name, { shape: t.shape, data: gather(storage, t, file) });
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
  const rank = t.shape.length;
  let expected = 1;
  let contiguous = true;
  for (let d = rank - 1; d >= 0; d--) {
    if (t.shape[d]! !== 1 && t.stride[d]! !== expected) contiguous = false;
    expected *= t.shape[d]!;
  }
  if (contiguous && t.offset + numel <= storage.length) {
    // The usual case (every tensor of a real head): no element-wise copy.
    return t.offset === 0 && numel === storage.length ? storage : storage.slice(t.offset, t.offset + numel);
  }
  const out = new Float32Array(numel);
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
