/**
 * Loading: layout detection, missing and corrupt files, and the `.pt` reader's refusal to run
 * anything but a plain state_dict. Each failure must be a BgeM3Error naming the file at fault.
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BgeM3Model } from '../../src/index.js';
import { DataType, encodeModel, node, valueInfo } from '../../src/model/onnx-graph.js';
import { copyFixture, TINY_DIR } from '../helpers.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'bge-m3-loading-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

/** A writable copy of the fixture (without the m3/ layout) to break in one way. */
function fixtureCopy(name: string): string {
  return copyFixture(join(tmpRoot, name));
}

describe('loading', () => {
  it('loads dense-only without head files, and names the missing files when sparse/ColBERT are asked for', async () => {
    const dir = fixtureCopy('no-heads');
    rmSync(join(dir, 'colbert_linear.pt'));
    rmSync(join(dir, 'sparse_linear.pt'));
    const model = await BgeM3Model.load(dir);
    try {
      expect((await model.encode(['hello'])).denseVecs![0]).toHaveLength(32);
      await expect(model.encode(['hello'], { returnSparse: true })).rejects.toThrow(/sparse_linear\.pt or sparse_linear\.safetensors/);
      await expect(model.encode(['hello'], { returnColbertVecs: true })).rejects.toThrow(/colbert_linear\.pt/);
      await expect(model.computeScore([['a', 'b']])).rejects.toMatchObject({ code: 'MISSING_FILE' });
    } finally {
      await model.dispose();
    }
  });

  it('names the directory when it does not exist, and the file when the graph or tokenizer is missing', async () => {
    const missing = join(tmpRoot, 'does-not-exist');
    await expect(BgeM3Model.load(missing)).rejects.toThrow(new RegExp(`Model directory ${missing} does not exist`));
    const noGraph = fixtureCopy('no-graph');
    rmSync(join(noGraph, 'onnx'), { recursive: true });
    await expect(BgeM3Model.load(noGraph)).rejects.toThrow(/No ONNX graph in .*no-graph: looked for onnx\/model\.onnx, model\.onnx/);
    const noTokenizer = fixtureCopy('no-tokenizer');
    rmSync(join(noTokenizer, 'tokenizer.json'));
    await expect(BgeM3Model.load(noTokenizer)).rejects.toThrow(/No tokenizer\.json in .*no-tokenizer/);
    await expect(BgeM3Model.load(TINY_DIR, { modelFile: 'onnx/model_fp16.onnx' })).rejects.toThrow(/Check the modelFile option/);
  });

  it('reports a truncated .onnx or external-data file, naming the graph', async () => {
    const dir = fixtureCopy('truncated-onnx');
    truncateSync(join(dir, 'onnx', 'model.onnx'), 1000);
    await expect(BgeM3Model.load(dir)).rejects.toThrow(/onnxruntime cannot load .*truncated-onnx\/onnx\/model\.onnx/);
    const dir2 = fixtureCopy('truncated-data');
    truncateSync(join(dir2, 'onnx', 'model.onnx_data'), 1000);
    await expect(BgeM3Model.load(dir2)).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
  });

  it('rejects a graph whose outputs match no known layout', async () => {
    const dir = fixtureCopy('unknown-layout');
    const graph = encodeModel({
      name: 'not-bge-m3',
      node: [node('Cast', ['input_ids'], ['pooled'], { to: DataType.FLOAT }), node('Identity', ['attention_mask'], ['mask_out'])],
      input: [valueInfo('input_ids', DataType.INT64, ['b', 's']), valueInfo('attention_mask', DataType.INT64, ['b', 's'])],
      output: [valueInfo('pooled', DataType.FLOAT, ['b', 's']), valueInfo('mask_out', DataType.INT64, ['b', 's'])],
    });
    writeFileSync(join(dir, 'model.onnx'), graph);
    await expect(BgeM3Model.load(dir, { modelFile: 'model.onnx' })).rejects.toThrow(
      /model\.onnx has outputs \["pooled","mask_out"\], which match no known BGE-M3 export/,
    );
  });

  it('rejects bad load options', async () => {
    await expect(BgeM3Model.load(TINY_DIR, { threads: 0 })).rejects.toThrow(/threads must be a positive integer/);
    await expect(BgeM3Model.load(TINY_DIR, { maxBatchTokens: -1 })).rejects.toThrow(/maxBatchTokens/);
  });
});
