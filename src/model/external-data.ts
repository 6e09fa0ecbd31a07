/**
 * Points the external-data references of an in-memory ONNX model at the real files.
 *
 * A graph loaded from bytes resolves its external-data `location`s against one folder
 * (`model_external_initializers_file_folder_path`), and onnxruntime (1.30) refuses any location
 * whose resolved path leaves that folder. In the Hugging Face cache the snapshot's files are
 * symlinks into `blobs/`, so `onnx/model.onnx_data` resolves outside `onnx/` and the attention-fused
 * graph would be refused. Rewriting each location to its real path, relative to the deepest folder
 * that holds all of them, loads the same bytes on every layout: a plain directory (nothing changes),
 * the hub cache (folder `blobs/`, locations the blob names), a user's symlinked `modelFile`.
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import onnxProto from 'onnx-proto';
import { BgeM3Error } from '../errors.js';

const { onnx } = onnxProto;
type IModelProto = onnxProto.onnx.IModelProto;
type IGraphProto = onnxProto.onnx.IGraphProto;
type ITensorProto = onnxProto.onnx.ITensorProto;

/** Every tensor of the model that keeps its bytes in an external-data file (subgraphs included). */
function externalTensors(model: IModelProto): ITensorProto[] {
  const out: ITensorProto[] = [];
  const visitTensor = (t: ITensorProto | null | undefined) => {
    if (t && t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) out.push(t);
  };
  const visitGraph = (g: IGraphProto | null | undefined) => {
    if (!g) return;
    g.initializer?.forEach(visitTensor);
    for (const s of g.sparseInitializer ?? []) {
      visitTensor(s.values);
      visitTensor(s.indices);
    }
    for (const n of g.node ?? []) {
      for (const a of n.attribute ?? []) {
        visitTensor(a.t);
        a.tensors?.forEach(visitTensor);
        if (a.sparseTensor) {
          visitTensor(a.sparseTensor.values);
          visitTensor(a.sparseTensor.indices);
        }
        visitGraph(a.g);
        a.graphs?.forEach(visitGraph);
      }
    }
  };
  visitGraph(model.graph);
  for (const f of model.functions ?? []) {
    for (const n of f.node ?? []) for (const a of n.attribute ?? []) visitTensor(a.t);
  }
  return out;
}

/** The deepest folder containing every path (all absolute). */
function commonFolder(paths: string[]): string {
  let folder = dirname(paths[0]!);
  const inside = (p: string) => {
    const rel = relative(folder, p);
    return rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  };
  for (const p of paths) while (!inside(p)) folder = dirname(folder);
  return folder;
}

/**
 * Rewrites every external-data location of the model read from `graph` (relative to the graph's
 * folder, as exported) to the real file's path relative to the returned folder. Returns the graph's
 * folder itself when the model has no external data.
 */
export function relocateExternalData(model: IModelProto, graph: string): string {
  const graphDir = dirname(graph);
  // As exported, locations are relative to the graph's folder; for a graph reached through a
  // symlink, the folder of the real file is the other candidate.
  const folders = [graphDir];
  try {
    const realDir = dirname(realpathSync(graph));
    if (realDir !== graphDir) folders.push(realDir);
  } catch {
    // The graph itself is unreadable: onnxruntime reports it.
  }
  const tensors = externalTensors(model);
  const locationOf = (t: ITensorProto) => t.externalData?.find((e) => e.key === 'location');
  const real = new Map<string, string>();
  for (const t of tensors) {
    const entry = locationOf(t);
    if (!entry?.value || real.has(entry.value)) continue;
    const found = folders.map((f) => join(f, entry.value!)).find((p) => existsSync(p));
    if (!found) {
      throw new BgeM3Error(
        'MISSING_FILE',
        `${graph} keeps tensor ${t.name} in ${entry.value}, which is not in ${folders.join(' or ')}; copy that file beside the graph or re-download the model.`,
      );
    }
    real.set(entry.value, realpathSync(found));
  }
  if (real.size === 0) return graphDir;
  const folder = commonFolder([...real.values()]);
  for (const t of tensors) {
    const entry = locationOf(t);
    if (entry?.value) entry.value = relative(folder, real.get(entry.value)!);
  }
  return folder;
}
