/**
 * Reads a `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the raw data. Hand-written: the format is a page long
 * and the npm readers pull in far more than this needs.
 *
 * The header is bounded ({@link MAX_SAFETENSORS_HEADER_BYTES}, {@link MAX_SAFETENSORS_TENSORS})
 * and every tensor's shape and byte range are checked against the file before any data is copied.
 */
import { BgeM3Error } from '../../errors.js';
import { bfloat16ToFloat32, halfToFloat32 } from '../../shared/fp16.js';
import type { WeightTensor } from './tensor.js';

const BYTES: Record<string, number> = { F16: 2, BF16: 2, F32: 4, F64: 8 };

/** The largest JSON header read: 1 MiB (a head's is ~150 bytes; the format itself allows 100 MB). */
export const MAX_SAFETENSORS_HEADER_BYTES = 1 << 20;
/** The most tensors one file may declare (a head has 2). */
export const MAX_SAFETENSORS_TENSORS = 1024;
/** The highest tensor rank accepted (a Linear layer's are 1 and 2). */
const MAX_RANK = 16;

export interface ReadSafetensorsOptions {
  /** Called with every tensor's name and shape before any data is copied or converted. */
  validate?: (shapes: ReadonlyMap<string, readonly number[]>) => void;
}

export function readSafetensors(buf: Buffer, file: string, options: ReadSafetensorsOptions = {}): Map<string, WeightTensor> {
  const corrupt = (what: string): never => {
    throw new BgeM3Error('CORRUPT_FILE', `${file} is not a readable .safetensors file (${what}); re-download it.`);
  };
  if (buf.length < 8) corrupt('shorter than its 8-byte header length');
  const declared = buf.readBigUInt64LE(0);
  if (declared > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) corrupt(`header of ${declared} bytes, more than the ${MAX_SAFETENSORS_HEADER_BYTES}-byte budget`);
  const headerLen = Number(declared);
  if (8 + headerLen > buf.length) corrupt('header runs past the end of the file');
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + headerLen));
  } catch {
    return corrupt('header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) corrupt('header is not a JSON object');
  const base = 8 + headerLen;
  const entries = Object.entries(header).filter(([name]) => name !== '__metadata__');
  if (entries.length > MAX_SAFETENSORS_TENSORS) corrupt(`${entries.length} tensors, more than the ${MAX_SAFETENSORS_TENSORS} budget`);
  const natural = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  const shapes = new Map<string, number[]>();
  for (const [name, info] of entries) {
    if (!info || typeof info !== 'object' || !Array.isArray(info.shape) || info.shape.length > MAX_RANK || !info.shape.every(natural) || !Array.isArray(info.data_offsets) || info.data_offsets.length !== 2 || !info.data_offsets.every(natural)) {
      corrupt(`tensor "${name}" has a malformed header entry`);
    }
    const size = Object.hasOwn(BYTES, info.dtype) ? BYTES[info.dtype] : undefined;
    if (!size) corrupt(`tensor "${name}" has unsupported dtype ${String(info.dtype).slice(0, 20)}`);
    const [start, end] = info.data_offsets;
    if (start > end) corrupt(`tensor "${name}" has a bad byte range`);
    const numel = info.shape.reduce((a, b) => a * b, 1);
    if (end - start !== numel * size! || base + end > buf.length) corrupt(`tensor "${name}" has a bad byte range`);
    shapes.set(name, [...info.shape]);
  }
  options.validate?.(shapes);
  const out = new Map<string, WeightTensor>();
  for (const [name, info] of entries) {
    const [start, end] = info.data_offsets;
    const bytes = new Uint8Array(end - start);
    bytes.set(buf.subarray(base + start, base + end));
    let data: Float32Array;
    if (info.dtype === 'F16') data = halfToFloat32(new Uint16Array(bytes.buffer));
    else if (info.dtype === 'BF16') data = bfloat16ToFloat32(new Uint16Array(bytes.buffer));
    else if (info.dtype === 'F32') data = new Float32Array(bytes.buffer);
    else data = Float32Array.from(new Float64Array(bytes.buffer));
    out.set(name, { shape: shapes.get(name)!, data });
  }
  return out;
}
