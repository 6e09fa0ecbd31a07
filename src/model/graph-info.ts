/**
 * Reads from an `.onnx` file the facts a download plan and a load check need, without loading the
 * model: which external-data files its tensors live in (BAAI/bge-m3's graph names `model.onnx_data`
 * and `Constant_7_attr__value`), the graph's output names (to know whether head files are needed),
 * and the rows of its embedding tables (to check the tokenizer and config.json against them).
 *
 * A hand-written walk over the protobuf wire format with positional reads, because decoding with
 * `onnx-proto` would need the whole file in memory, and an fp16 graph with inline weights is over
 * 1 GB: here every tensor's bytes are skipped, never read.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { BgeM3Error } from '../errors.js';
import { checkRepoPath } from '../hub/hub-cache.js';

export interface GraphInfo {
  /** External-data files, relative to the graph's folder, in order of first use. */
  externalData: string[];
  /** The main graph's output names. */
  outputs: string[];
  /**
   * Rows of the embedding tables, when the graph has them as plain initializers read by `Gather`:
   * `word` (indexed by `input_ids`: the vocabulary the graph accepts) and `position` (the widest other
   * table of the same width). Undefined where the graph stores them otherwise (e.g. quantized).
   */
  embeddingRows: { word?: number; position?: number };
}

// Field numbers from onnx.proto (checked against onnx-proto's generated code).
export const MODEL_GRAPH = 7;
export const MODEL_FUNCTIONS = 25;
export const FUNCTION_NODE = 7;
export const GRAPH_NODE = 1;
export const GRAPH_INITIALIZER = 5;
const GRAPH_OUTPUT = 12;
export const GRAPH_SPARSE_INITIALIZER = 15;
export const NODE_ATTRIBUTE = 5;
export const ATTR_T = 5;
export const ATTR_G = 6;
export const ATTR_TENSORS = 10;
export const ATTR_GRAPHS = 11;
export const ATTR_SPARSE_TENSOR = 22;
export const ATTR_SPARSE_TENSORS = 23;
export const SPARSE_VALUES = 1;
export const SPARSE_INDICES = 2;
export const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const DATA_LOCATION_EXTERNAL = 1;
export const ENTRY_KEY = 1;
export const ENTRY_VALUE = 2;
const VALUE_INFO_NAME = 1;
const NODE_INPUT = 1;
const NODE_OP_TYPE = 4;
const TENSOR_DIMS = 1;
const TENSOR_NAME = 8;

const WINDOW = 1 << 16;

/** Buffered positional reads: many small reads near each other cost one `read` call. */
class FileBytes {
  private buf = Buffer.alloc(0);
  private bufStart = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly path: string,
  ) {}

  async byte(pos: number): Promise<number> {
    if (pos < this.bufStart || pos >= this.bufStart + this.buf.length) await this.fill(pos, 1);
    return this.buf[pos - this.bufStart]!;
  }

  async bytes(pos: number, len: number): Promise<Buffer> {
    if (pos < this.bufStart || pos + len > this.bufStart + this.buf.length) await this.fill(pos, len);
    return this.buf.subarray(pos - this.bufStart, pos - this.bufStart + len);
  }

  private async fill(pos: number, len: number): Promise<void> {
    if (pos + len > this.size) throw this.corrupt('it ends in the middle of a field');
    const n = Math.min(Math.max(len, WINDOW), this.size - pos);
    const buf = Buffer.alloc(n);
    const { bytesRead } = await this.fh.read(buf, 0, n, pos);
    this.buf = buf.subarray(0, bytesRead);
    this.bufStart = pos;
  }

  corrupt(why: string): BgeM3Error {
    return new BgeM3Error('CORRUPT_FILE', `${this.path} is not a readable ONNX model (${why}); delete it so it is downloaded again.`);
  }
}

type Field = { field: number; wire: 0; value: number } | { field: number; wire: 2; start: number; end: number };

/** Decodes the varint at `pos` (inside a message ending at `end`): its value and the position after it. */
async function readVarint(src: FileBytes, pos: number, end: number): Promise<[value: number, next: number]> {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw src.corrupt('a varint runs past its message');
    const b = await src.byte(pos++);
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
  throw src.corrupt('a varint is longer than 10 bytes');
}

/** Yields the fields of the message in `[start, end)`; varints are decoded, length-delimited fields given as ranges. */
async function* fields(src: FileBytes, start: number, end: number): AsyncGenerator<Field> {
  let pos = start;
  const varint = async (): Promise<number> => {
    const [value, next] = await readVarint(src, pos, end);
    pos = next;
    return value;
  };
  while (pos < end) {
    const tag = await varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) yield { field, wire, value: await varint() };
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = await varint();
      if (pos + len > end) throw src.corrupt(`field ${field} is longer than its message`);
      const fieldStart = pos;
      pos += len;
      yield { field, wire, start: fieldStart, end: fieldStart + len };
    } else throw src.corrupt(`unsupported wire type ${wire}`);
  }
  if (pos !== end) throw src.corrupt('a message overruns its length');
}

/** The varints packed in `[start, end)` (a packed repeated integer field). */
async function* varints(src: FileBytes, start: number, end: number): AsyncGenerator<number> {
  for (let pos = start; pos < end; ) {
    const [value, next] = await readVarint(src, pos, end);
    pos = next;
    yield value;
  }
}

class Walker {
  readonly external: string[] = [];
  readonly outputs: string[] = [];
  /** Main-graph initializers: name -> dims. */
  readonly initializerDims = new Map<string, number[]>();
  /** Main-graph Gather nodes: [data, indices]. */
  readonly gathers: [string, string][] = [];

  constructor(private readonly src: FileBytes) {}

  async model(start: number, end: number): Promise<void> {
    for await (const f of fields(this.src, start, end)) {
      if (f.wire !== 2) continue;
      if (f.field === MODEL_GRAPH) await this.graph(f.start, f.end, true);
      else if (f.field === MODEL_FUNCTIONS) await this.nodesOf(f.start, f.end, FUNCTION_NODE);
    }
  }

  private async graph(start: number, end: number, main: boolean): Promise<void> {
    for await (const f of fields(this.src, start, end)) {
      if (f.wire !== 2) continue;
      if (f.field === GRAPH_NODE) await this.node(f.start, f.end, main);
      else if (f.field === GRAPH_INITIALIZER) await this.tensor(f.start, f.end, main);
      else if (f.field === GRAPH_SPARSE_INITIALIZER) await this.sparse(f.start, f.end);
      else if (f.field === GRAPH_OUTPUT && main) {
        const name = await this.stringField(f.start, f.end, VALUE_INFO_NAME);
        if (name !== undefined) this.outputs.push(name);
      }
    }
  }

  private async nodesOf(start: number, end: number, nodeField: number): Promise<void> {
    for await (const f of fields(this.src, start, end)) {
      if (f.wire === 2 && f.field === nodeField) await this.node(f.start, f.end);
    }
  }

  private async node(start: number, end: number, main = false): Promise<void> {
    const inputs: string[] = [];
    let opType: string | undefined;
    for await (const f of fields(this.src, start, end)) {
      if (f.wire !== 2) continue;
      if (f.field === NODE_ATTRIBUTE) await this.attribute(f.start, f.end);
      else if (main && f.field === NODE_INPUT) inputs.push(await this.text(f));
      else if (main && f.field === NODE_OP_TYPE) opType = await this.text(f);
    }
    if (opType === 'Gather' && inputs.length >= 2) this.gathers.push([inputs[0]!, inputs[1]!]);
  }

  private async attribute(start: number, end: number): Promise<void> {
    for await (const f of fields(this.src, start, end)) {
      if (f.wire !== 2) continue;
      if (f.field === ATTR_T || f.field === ATTR_TENSORS) await this.tensor(f.start, f.end);
      else if (f.field === ATTR_G || f.field === ATTR_GRAPHS) await this.graph(f.start, f.end, false);
      else if (f.field === ATTR_SPARSE_TENSOR || f.field === ATTR_SPARSE_TENSORS) await this.sparse(f.start, f.end);
    }
  }

  private async sparse(start: number, end: number): Promise<void> {
    for await (const f of fields(this.src, start, end)) {
      if (f.wire === 2 && (f.field === SPARSE_VALUES || f.field === SPARSE_INDICES)) await this.tensor(f.start, f.end);
    }
  }

  private async tensor(start: number, end: number, main = false): Promise<void> {
    let external = false;
    let location: string | undefined;
    let name: string | undefined;
    const dims: number[] = [];
    for await (const f of fields(this.src, start, end)) {
      if (main && f.field === TENSOR_NAME && f.wire === 2) name = await this.text(f);
      else if (main && f.field === TENSOR_DIMS) {
        if (f.wire === 0) dims.push(f.value);
        else for await (const d of varints(this.src, f.start, f.end)) dims.push(d);
      } else if (f.field === TENSOR_DATA_LOCATION && f.wire === 0) external = f.value === DATA_LOCATION_EXTERNAL;
      else if (f.field === TENSOR_EXTERNAL_DATA && f.wire === 2) {
        const key = await this.stringField(f.start, f.end, ENTRY_KEY);
        if (key === 'location') location = await this.stringField(f.start, f.end, ENTRY_VALUE);
      }
    }
    if (name !== undefined) this.initializerDims.set(name, dims);
    if (!external) return;
    if (!location) throw this.src.corrupt('a tensor stored externally names no location');
    const normalized = location.replace(/^\.\//, '');
    checkRepoPath(normalized, 'An ONNX external-data reference');
    if (!this.external.includes(normalized)) this.external.push(normalized);
  }

  private async text(f: Field & { wire: 2 }): Promise<string> {
    return (await this.src.bytes(f.start, f.end - f.start)).toString('utf8');
  }

  /** See {@link GraphInfo.embeddingRows}. */
  embeddingRows(): GraphInfo['embeddingRows'] {
    const tables = this.gathers
      .map(([data, indices]) => ({ indices, dims: this.initializerDims.get(data) }))
      .filter((t): t is { indices: string; dims: number[] } => t.dims?.length === 2);
    const word = tables.find((t) => t.indices === 'input_ids');
    if (!word) return {};
    const others = tables.filter((t) => t !== word && t.dims[1] === word.dims[1]).map((t) => t.dims[0]!);
    return { word: word.dims[0], position: others.length > 0 ? Math.max(...others) : undefined };
  }

  private async stringField(start: number, end: number, wanted: number): Promise<string | undefined> {
    for await (const f of fields(this.src, start, end)) {
      if (f.wire === 2 && f.field === wanted) return (await this.src.bytes(f.start, f.end - f.start)).toString('utf8');
    }
    return undefined;
  }
}

/** Reads the external-data file names and output names of the ONNX graph at `path`. */
export async function readGraphInfo(path: string): Promise<GraphInfo> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (cause) {
    throw new BgeM3Error('MISSING_FILE', `Cannot open the ONNX graph ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    const { size } = await fh.stat();
    const walker = new Walker(new FileBytes(fh, size, path));
    await walker.model(0, size);
    return { externalData: walker.external, outputs: walker.outputs, embeddingRows: walker.embeddingRows() };
  } finally {
    await fh.close();
  }
}
