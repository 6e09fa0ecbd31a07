/**
 * The defaults users get: attention fused on every load path (the hub cache's symlinks included),
 * visible when it is not; the tokenizer and config.json checked against the graph at load; runtime
 * failures of onnxruntime as BgeM3Errors; tokenization that never blocks the event loop and stops
 * promptly on abort or dispose.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model } from '../../src/index.js';
import { DataType, encodeModel, floatTensor, node, valueInfo } from '../../src/model/onnx-graph.js';
import { copyFixture, largestTimerGap, TINY_DIR } from '../helpers.js';
import { expectFixtureOutputs } from '../hub/model-check.js';
import { isolateHubEnv, type HubEnv } from '../hub/hub-env.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'bge-m3-defaults-'));
let hub: FakeHub;
let env: HubEnv;
let cacheDir: string;

beforeAll(async () => {
  env = isolateHubEnv();
  hub = await startFakeHub();
  cacheDir = env.newCache();
  // Fill the cache the way users do: the downloader, from a hub (here a stand-in on 127.0.0.1).
  const model = await BgeM3Model.load('BAAI/bge-m3', { cacheDir, hubUrl: hub.url });
  await model.dispose();
});
afterAll(async () => {
  await hub?.stop();
  env?.restore();
  rmSync(tmpRoot, { recursive: true, force: true });
});

const CHILD = fileURLToPath(new URL('../support/peak-memory-child.ts', import.meta.url));
function measure(args: string[]): { maxRssMiB: number; fusedLayers: number; seconds: number } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', CHILD, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out);
}

describe('attention fusion on every load path', () => {
  it('is active for a repo id loaded from the hub cache (symlinks into blobs/, two external-data files)', async () => {
    const model = await BgeM3Model.load('BAAI/bge-m3', { cacheDir, offline: true });
    try {
      expect(model.info.attention).toEqual({ fused: true, layers: 2 });
      expect(model.info.graph).toMatch(/snapshots/);
      await expectFixtureOutputs(model);
    } finally {
      await model.dispose();
    }
  });

  it('is active for a modelFile whose graph and data are symlinks to files of other names elsewhere, or a link to the graph', async () => {
    const dir = copyFixture(join(tmpRoot, 'linked'));
    const store = join(tmpRoot, 'store');
    mkdirSync(store);
    for (const f of ['model.onnx', 'model.onnx_data']) {
      renameSync(join(dir, 'onnx', f), join(store, `${f}.blob`));
      symlinkSync(relative(join(dir, 'onnx'), join(store, `${f}.blob`)), join(dir, 'onnx', f));
    }
    // A link to a graph whose external data sits beside the real file.
    const real = join(tmpRoot, 'real');
    mkdirSync(real);
    for (const f of ['model.onnx', 'model.onnx_data']) cpSync(join(TINY_DIR, 'onnx', f), join(real, f));
    symlinkSync(join(real, 'model.onnx'), join(dir, 'linked.onnx'));
    for (const modelFile of ['onnx/model.onnx', 'linked.onnx']) {
      const model = await BgeM3Model.load(dir, { modelFile });
      try {
        expect(model.info.attention.layers, modelFile).toBe(2);
        await expectFixtureOutputs(model);
      } finally {
        await model.dispose();
      }
    }
  });

  it('is active for a graph in a plain directory', async () => {
    const model = await BgeM3Model.load(TINY_DIR);
    try {
      expect(model.info.attention).toEqual({ fused: true, layers: 2 });
      await expectFixtureOutputs(model);
    } finally {
      await model.dispose();
    }
  });

  it('keeps peak memory for a long text within 1.3x of the plain directory', () => {
    // Unfused, one 8,192-token text takes 2-3 GB on the tiny model; fused, about 0.2 GB.
    const plain = measure([TINY_DIR, '8192']);
    const cached = measure(['BAAI/bge-m3', cacheDir, '8192']);
    expect(plain.fusedLayers).toBe(2);
    expect(cached.fusedLayers).toBe(2);
    expect(cached.maxRssMiB).toBeLessThan(plain.maxRssMiB * 1.3);
  });

  it('says why when it cannot apply: model.info and one warning', async () => {
    // An "encoder" without attention: input_ids -> embedding table -> last_hidden_state.
    const dir = copyFixture(join(tmpRoot, 'no-attention'));
    const table = new Float32Array(8002 * 32).map((_, i) => Math.sin(i));
    writeFileSync(join(dir, 'plain.onnx'), encodeModel({
      name: 'no_attention',
      node: [node('Gather', ['table', 'input_ids'], ['last_hidden_state'])],
      initializer: [floatTensor('table', [8002, 32], table)],
      input: [valueInfo('input_ids', DataType.INT64, ['b', 's']), valueInfo('attention_mask', DataType.INT64, ['b', 's'])],
      output: [valueInfo('last_hidden_state', DataType.FLOAT, ['b', 's', 32])],
    }));
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const model = await BgeM3Model.load(dir, { modelFile: 'plain.onnx' });
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    try {
      expect(model.info.attention).toMatchObject({ fused: false, layers: 0, reason: expect.stringMatching(/no exported attention pattern/) });
      const ours = warnings.filter((w) => (w as Error & { code?: string }).code === 'BGE_M3_RAG_ATTENTION_NOT_FUSED');
      expect(ours).toHaveLength(1);
      expect(ours[0]!.message).toMatch(/plain\.onnx runs with unfused attention/);
      // fuseAttention: false is a choice, not a surprise: no warning, the reason still recorded.
      const quiet: Error[] = [];
      process.on('warning', (w) => quiet.push(w));
      const off = await BgeM3Model.load(TINY_DIR, { fuseAttention: false });
      await new Promise((r) => setImmediate(r));
      expect(quiet.filter((w) => (w as Error & { code?: string }).code === 'BGE_M3_RAG_ATTENTION_NOT_FUSED')).toHaveLength(0);
      expect(off.info.attention).toMatchObject({ fused: false, reason: expect.stringMatching(/turned off/) });
      await off.dispose();
    } finally {
      process.removeAllListeners('warning');
      await model.dispose();
    }
  });
});

describe('model files checked against the graph at load', () => {
  it('refuses a tokenizer.json with more tokens than the graph embeds, naming both files', async () => {
    const dir = copyFixture(join(tmpRoot, 'big-vocab'));
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    for (let id = 8002; id < 8010; id++) {
      json.added_tokens.push({ id, content: `<extra_${id}>`, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    }
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    const err = await BgeM3Model.load(dir).catch((e) => e);
    expect(err).toMatchObject({ code: 'CORRUPT_FILE' });
    expect(err.message).toMatch(/tokenizer\.json has 8010 tokens but the graph .*model\.onnx embeds only 8002/);
  });

  it('refuses a config.json claiming more positions than the graph has, naming both files', async () => {
    const dir = copyFixture(join(tmpRoot, 'long-config'));
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: 16386 }));
    rmSync(join(dir, 'onnx', 'config.json'));
    const err = await BgeM3Model.load(dir).catch((e) => e);
    expect(err).toMatchObject({ code: 'UNKNOWN_LAYOUT' });
    expect(err.message).toMatch(/config\.json claims max_position_embeddings 16386 but the graph .*model\.onnx has 8194 positions/);
  });

  it('refuses a config.json whose fields have the wrong type with CORRUPT_FILE (not a TypeError)', async () => {
    for (const [name, content] of [['null-hidden', '{"hidden_size": null}'], ['not-object', 'null'], ['string-positions', '{"max_position_embeddings": "8194"}']] as const) {
      const dir = copyFixture(join(tmpRoot, name));
      writeFileSync(join(dir, 'config.json'), content);
      await expect(BgeM3Model.load(dir), name).rejects.toMatchObject({ name: 'BgeM3Error', code: 'CORRUPT_FILE', message: expect.stringMatching(/config\.json/) });
    }
  });

  it('wraps an onnxruntime failure during encode in a BgeM3Error with the batch shape', async () => {
    // The table hides behind an Identity, so the load check cannot see it has only 10 rows.
    const dir = copyFixture(join(tmpRoot, 'short-table'));
    writeFileSync(join(dir, 'short.onnx'), encodeModel({
      name: 'short_table',
      node: [node('Identity', ['input_ids'], ['ids']), node('Gather', ['table', 'ids'], ['last_hidden_state'])],
      initializer: [floatTensor('table', [10, 32], new Float32Array(320).fill(0.5))],
      input: [valueInfo('input_ids', DataType.INT64, ['b', 's']), valueInfo('attention_mask', DataType.INT64, ['b', 's'])],
      output: [valueInfo('last_hidden_state', DataType.FLOAT, ['b', 's', 32])],
    }));
    const model = await BgeM3Model.load(dir, { modelFile: 'short.onnx', fuseAttention: false });
    try {
      const err = await model.encode(['Hello world, a few tokens past id ten']).catch((e) => e);
      expect(err).toMatchObject({ name: 'BgeM3Error', code: 'INFERENCE_FAILED' });
      expect(err.message).toMatch(/batch of 1 text\(s\) × \d+ tokens with .*short\.onnx/);
      // The model stays usable for inputs the graph can take.
      expect((await model.encode([''])).denseVecs).toHaveLength(1);
    } finally {
      await model.dispose();
    }
  });
});

describe('tokenization off the event loop', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(() => model?.dispose());

  it('keeps the event loop responsive on pathological texts (zero-width spaces, CRLF runs, lone surrogates, base64)', async () => {
    const texts = [
      '\u200b'.repeat(1 << 20),
      '\r\n'.repeat(1 << 19),
      '\ud800'.repeat(1 << 19),
      Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 2654435761) >>> 24)).toString('base64'),
      'ภาษาไทยเป็นภาษาราชการ'.repeat(30_000),
    ];
    let out: Awaited<ReturnType<BgeM3Model['encode']>> | undefined;
    const gap = await largestTimerGap(async () => {
      out = await model.encode(texts, { maxLength: 512 });
    });
    expect(out!.denseVecs).toHaveLength(texts.length);
    // Today's main froze for 10 s on 64k zero-width spaces; the target is ~50 ms.
    expect(gap).toBeLessThan(250);
  });

  it('stops tokenizing promptly when the signal aborts', async () => {
    const texts = Array.from({ length: 40 }, (_, i) => `${i}${'\u200b'.repeat(1 << 20)}`);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const t0 = performance.now();
    await expect(model.encode(texts, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - t0).toBeLessThan(100 + 150);
    // The model stays usable.
    expect((await model.encode(['still works'])).denseVecs).toHaveLength(1);
  });

  it('dispose stops encodes in progress promptly with DISPOSED', async () => {
    const own = await BgeM3Model.load(TINY_DIR);
    const texts = Array.from({ length: 40 }, (_, i) => `${i}${'\u200b'.repeat(1 << 20)}`);
    const running = own.encode(texts).then(
      () => 'finished',
      (e) => e,
    );
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await own.dispose();
    const result = await running;
    expect(performance.now() - t0).toBeLessThan(150);
    expect(result).toMatchObject({ code: 'DISPOSED' });
  });
});
