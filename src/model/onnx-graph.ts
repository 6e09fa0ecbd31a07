/**
 * Small helpers to build ONNX graphs in memory with `onnx-proto` (the ONNX protobuf schema compiled
 * for protobufjs). Used for the heads graph at load time and by the benchmark's model generator.
 */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export const DataType = onnx.TensorProto.DataType;

/** An attribute value for {@link node}: numbers are ints unless listed in `floatAttrs`. */
type AttrValue = number | number[] | string;

/** A NodeProto: `node('Gemm', ['x', 'w'], ['y'], { transB: 1 })`. */
export function node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, options: { domain?: string; floatAttrs?: string[]; name?: string } = {}): NodeProto {
  const attribute = Object.entries(attrs).map(([name, value]) => {
    if (typeof value === 'string') return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) };
    if (Array.isArray(value)) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: value };
    if (options.floatAttrs?.includes(name)) return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value };
    return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
  });
  return { opType, input: inputs, output: outputs, attribute, domain: options.domain ?? '', name: options.name ?? outputs[0] };
}

/** A float32 initializer with its data inline. */
export function floatTensor(name: string, dims: number[], data: Float32Array): TensorProto {
  return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** An int64 initializer with its data inline. */
export function int64Tensor(name: string, dims: number[], values: number[]): TensorProto {
  return { name, dims, dataType: DataType.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) };
}

/** A graph input/output declaration; string dims are symbolic (dynamic). */
export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Serializes a graph into ModelProto bytes (IR 8, default opset 17 plus any extra domains). */
export function encodeModel(graph: onnxProto.onnx.IGraphProto, extraOpsets: { domain: string; version: number }[] = []): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'bge-m3-rag',
    opsetImport: [{ domain: '', version: 17 }, ...extraOpsets],
    graph,
  }).finish();
}

/**
 * An initializer whose bytes live in an external-data file next to the graph (`location` is
 * relative to the graph's folder), as exports larger than protobuf's 2 GB limit store them.
 */
export function externalTensor(name: string, dims: number[], dataType: number, location: string, offset: number, length: number): TensorProto {
  return {
    name,
    dims,
    dataType,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  };
}
