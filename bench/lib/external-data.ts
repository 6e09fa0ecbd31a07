/**
 * Streams initializer bytes into an ONNX external-data file (`model.onnx_data`) and returns the
 * TensorProtos that point at them, so a multi-GB model is written chunk by chunk and never held
 * in memory. Large tensors start on 64 KiB boundaries (the allocation granularity onnx's own
 * external-data converter aligns to, so runtimes can memory-map them); small ones stay inline in
 * the graph, as exporters do.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { externalTensor, type TensorProto } from '../../src/model/onnx-graph.js';

/** Tensors smaller than this are stored inside the graph file. */
const INLINE_BELOW = 1024;
const ALIGN_LARGE_FROM = 1 << 20;
const ALIGN_LARGE = 1 << 16;
const ALIGN_SMALL = 64;

export class ExternalDataWriter {
  private readonly fd: number;
  private offset = 0;
  /** Bytes written to the data file so far. */
  get bytesWritten(): number {
    return this.offset;
  }

  constructor(
    readonly path: string,
    private readonly onWrite: (bytes: number) => void = () => {},
  ) {
    this.fd = openSync(path, 'w');
  }

  /**
   * Stores one tensor from its byte chunks (in row-major order, `byteLength` in total) and returns
   * its TensorProto.
   */
  tensor(name: string, dims: number[], dataType: number, byteLength: number, chunks: Iterable<ArrayBufferView>): TensorProto {
    if (byteLength < INLINE_BELOW) {
      const raw = new Uint8Array(byteLength);
      let at = 0;
      for (const c of chunks) {
        raw.set(new Uint8Array(c.buffer, c.byteOffset, c.byteLength), at);
        at += c.byteLength;
      }
      if (at !== byteLength) throw new Error(`${name}: wrote ${at} bytes, declared ${byteLength}`);
      return { name, dims, dataType, rawData: raw };
    }
    const align = byteLength >= ALIGN_LARGE_FROM ? ALIGN_LARGE : ALIGN_SMALL;
    const start = Math.ceil(this.offset / align) * align;
    let at = start;
    for (const c of chunks) {
      const bytes = new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done, at + done);
      at += bytes.length;
      this.onWrite(bytes.length);
    }
    if (at - start !== byteLength) throw new Error(`${name}: wrote ${at - start} bytes, declared ${byteLength}`);
    this.offset = at;
    return externalTensor(name, dims, dataType, basename(this.path), start, byteLength);
  }

  close(): void {
    closeSync(this.fd);
  }
}
