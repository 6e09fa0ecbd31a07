/**
 * Reads from an `.onnx` file the two facts a download plan needs, without loading the model:
 * which external-data files its tensors live in (BAAI/bge-m3's graph names `model.onnx_data` and
 * `Constant_7_attr__value`), and the graph's output names (to know whether head files are needed).
 *
 * A hand-written walk over the protobuf wire format with positional reads, because decoding with
 * `onnx-proto` would need the whole file in memory, and an fp16 graph with inline weights is over
 * 1 GB: here every tensor's bytes are skipped, never read.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { BgeM3Error } from '../../errors.js';
import { checkRepoPath } from './hub-cache.js';

export interface GraphInfo {
  /** External-data files, relative to the graph's folder, in order of first use. */
  externalData: string[];
  /** The main graph's output names. */
  outputs: string[];
}

// Field numbers from onnx.proto (checked against onnx-proto's generated code).
const MODEL_GRAPH = 7;
const MODEL_FUNCTIONS = 25;
const FUNCTION_NODE = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_OUTPUT = 12;
const GRAPH_SPARSE_INITIALIZER = 15;
const NODE_ATTRIBUTE = 5;
const ATTR_T = 5;
const ATTR_G = 6;
const ATTR_TENSORS = 10;
const ATTR_GRAPHS = 11;
const ATTR_SPARSE_TENSOR = 22;
const ATTR_SPARSE_TENSORS = 23;
const SPARSE_VALUES = 1;
const SPARSE_INDICES = 2;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const DATA_LOCATION_EXTERNAL = 1;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const VALUE_INFO_NAME = 1;

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

/** Yields the fields of the message in `[start, end)`; varints are decoded, length-delimited fields given as ranges. */
async function* fields(src: FileBytes, start: number, end: number): AsyncGenerator<Field> {
  let pos = start;
  const varint = async (): Promise<number> => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw src.corrupt('a varint runs past its message');
      const b = await src.byte(pos++);
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw src.corrupt('a varint is longer than 10 bytes');
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

class Walker {
  readonly external: string[] = [];
  readonly outputs: string[] = [];

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
      if (f.field === GRAPH_NODE) await this.node(f.start, f.end);
      else if (f.field === GRAPH_INITIALIZER) await this.tensor(f.start, f.end);
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

  private async node(start: number, end: number): Promise<void> {
    for await (const f of fields(this.src, start, end)) {
      if (f.wire === 2 && f.field === NODE_ATTRIBUTE) await this.attribute(f.start, f.end);
    }
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

  private async tensor(start: number, end: number): Promise<void> {
    let external = false;
    let location: string | undefined;
    for await (const f of fields(this.src, start, end)) {
      if (f.field === TENSOR_DATA_LOCATION && f.wire === 0) external = f.value === DATA_LOCATION_EXTERNAL;
      else if (f.field === TENSOR_EXTERNAL_DATA && f.wire === 2) {
        const key = await this.stringField(f.start, f.end, ENTRY_KEY);
        if (key === 'location') location = await this.stringField(f.start, f.end, ENTRY_VALUE);
      }
    }
    if (!external) return;
    if (!location) throw this.src.corrupt('a tensor stored externally names no location');
    const normalized = location.replace(/^\.\//, '');
    checkRepoPath(normalized, 'An ONNX external-data reference');
    if (!this.external.includes(normalized)) this.external.push(normalized);
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
    return { externalData: walker.external, outputs: walker.outputs };
  } finally {
    await fh.close();
  }
}
