/**
 * The benchmark harness, without timing anything: workloads are deterministic with exact token
 * counts, the report arithmetic (roofline, ratios, targets) is right, peak RSS can be reset per
 * workload, and `bench/run.ts --tiny` runs end to end (model generation, the hub cache filled from
 * the local hub stand-in, child processes, results files whose rows follow the `latest.json` contract).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentRssMB, peakRssMB, resetPeakRss } from '../../bench/lib/child-protocol.js';
import { REPO_DIR } from '../../bench/lib/paths.js';
import { addRatios, checkTargets, rooflineTokensPerSecond, toMarkdown, type BenchResults, type ResultRow } from '../../bench/lib/report.js';
import { buildWorkload, FULL_SIZES, QUICK_SIZES, textWithTokens } from '../../bench/lib/workloads.js';
import { BGE_M3_SHAPE, encoderFlops } from '../../bench/lib/xlmr-shape.js';
import { BgeM3Tokenizer } from '../../src/model/tokenizer.js';
import { TINY_DIR } from '../helpers.js';

let tokenizer: BgeM3Tokenizer;
beforeAll(async () => {
  tokenizer = await BgeM3Tokenizer.load(join(TINY_DIR, 'tokenizer.json'), join(TINY_DIR, 'tokenizer_config.json'));
});

describe('workloads', () => {
  it('are deterministic in the seed, with exact token counts', async () => {
    const a = await buildWorkload('mixed', tokenizer, FULL_SIZES, 42);
    const b = await buildWorkload('mixed', tokenizer, FULL_SIZES, 42);
    const c = await buildWorkload('mixed', tokenizer, FULL_SIZES, 43);
    expect(b.texts).toEqual(a.texts);
    expect(c.texts).not.toEqual(a.texts);
    expect(a.texts).toHaveLength(FULL_SIZES.mixed.short + FULL_SIZES.mixed.paragraphs + FULL_SIZES.mixed.documents);
    expect(a.lengths).toEqual(await Promise.all(a.texts.map(async (t) => (await tokenizer.encode(t, 8192)).length)));
    expect(a.tokens).toBe(a.lengths.reduce((x, y) => x + y, 0));
    expect(a.texts.every((t) => !t.includes('\n'))).toBe(true);
    // Mixed lengths: many short texts, some paragraphs, documents of a couple of thousand characters.
    expect(a.lengths.filter((l) => l < 64).length).toBeGreaterThanOrEqual(FULL_SIZES.mixed.short * 0.9);
    expect(a.texts.filter((t) => t.length >= FULL_SIZES.mixed.documentChars[0]).length).toBe(FULL_SIZES.mixed.documents);
  });

  it('uniform128 and long8192 have exactly the announced token counts', async () => {
    const u = await buildWorkload('uniform128', tokenizer, QUICK_SIZES, 1);
    expect(u.lengths).toEqual(new Array(QUICK_SIZES.uniform128.passages).fill(128));
    const l = await buildWorkload('long8192', tokenizer, FULL_SIZES, 1);
    expect(l.lengths).toEqual([8192]);
    const source = 'Привет мир, hello world! '.repeat(40);
    for (const n of [7, 50, 101]) expect(await tokenizer.encode(await textWithTokens(tokenizer, source, n), 1 << 20)).toHaveLength(n);
  });
});

describe('report arithmetic', () => {
  const rates = {
    linear: { fp32: { hh: 100e9, hf: 100e9, fh: 100e9 }, int8: { hh: 250e9, hf: 250e9, fh: 250e9 } },
    attention: { '128': 50e9, '512': 60e9, '2048': 80e9 },
  };

  it('roofline = tokens / (linear FLOPs / linear rate + attention FLOPs / attention rate)', () => {
    const lengths = [128, 2000];
    const { linear: l1, attention: a1 } = encoderFlops(BGE_M3_SHAPE, 128);
    const { linear: l2, attention: a2 } = encoderFlops(BGE_M3_SHAPE, 2000);
    const seconds = (l1 + l2) / 100e9 + a1 / 50e9 + a2 / 80e9;
    expect(rooflineTokensPerSecond(BGE_M3_SHAPE, lengths, rates, 'fp32')).toBeCloseTo(2128 / seconds, 6);
    // ~0.6 GFLOP per token of linear layers (the figure), 2·L²·H·4·layers for attention.
    expect(encoderFlops(BGE_M3_SHAPE, 1).linear / 1e9).toBeCloseTo(0.604, 3);
    expect(encoderFlops(BGE_M3_SHAPE, 1000).attention).toBe(24 * 4 * 1000 * 1000 * 1024);
  });

  const row = (system: ResultRow['system'], dtype: ResultRow['dtype'], outputs: ResultRow['outputs'], tps: number, workload: ResultRow['workload'] = 'mixed', rss = 2000): ResultRow => ({
    workload,
    system,
    dtype,
    outputs,
    tokensPerSecond: tps,
    peakRssMB: rss,
    tokens: 1000,
    texts: 10,
  });

  it('ratios and targets come from the matching rows', () => {
    const rows = [
      row('bge-m3-rag', 'fp32', 'dense', 600),
      row('bge-m3-rag', 'fp32', 'all', 570),
      row('bge-m3-rag', 'int8', 'dense', 1200),
      row('ort-floor', 'fp32', 'dense', 620),
      row('transformers.js-single', 'fp32', 'dense', 500),
      row('transformers.js-batch', 'fp32', 'dense', 60),
      row('roofline', 'fp32', 'dense', 800),
      { ...row('bge-m3-rag', 'fp32', 'dense', 300, 'long8192', 11000), tokens: 8192, texts: 1 },
    ];
    addRatios(rows);
    expect(rows[0]!.ratios).toEqual({ vsFloor: 600 / 620, vsTransformersJsSingle: 1.2, vsTransformersJsBatch: 10, ofRoofline: 0.75 });
    expect(rows[1]!.ratios!.vsDenseOnly).toBeCloseTo(0.95, 10);
    expect(rows[2]!.ratios!.vsFp32).toBe(2);
    const targets = checkTargets(rows);
    expect(targets.map((t) => t.pass)).toEqual([true, true, true, true, true, false]);
    expect(targets[5]!.actual).toBe(11000);
    const results: BenchResults = { machine: { cpu: 'test', cores: 2, memoryGB: 8, node: '20', onnxruntime: '1.30.0', date: 'today' }, settings: { model: 'm' }, rows, skipped: [], targets };
    const md = toMarkdown(results, { mixed: 'a mix' });
    expect(md).toContain('### mixed: a mix (1000 tokens, 10 texts)');
    expect(md).toContain('| bge-m3-rag | fp32 | dense | 600.0 | 0.97x | 1.20x | 10.00x | 75% | 2000 |');
    expect(md).toContain('| 8192-token document, peak RSS (fp32), MB | ≤ 9537 | 11000 | FAIL |');
  });
});

describe('peak RSS per workload', () => {
  it('can be reset to the current RSS (Linux clear_refs), then follows new allocations', () => {
    if (!resetPeakRss()) return; // not Linux: peaks are cumulative, documented as an upper bound
    // Right after the reset the peak is the current RSS; in a shared test process the garbage collector
    // or other files' leftover threads may release memory in between, so allow some slack downwards.
    const gap = peakRssMB() - currentRssMB();
    expect(gap).toBeGreaterThan(-20);
    expect(gap).toBeLessThan(100);
    const before = peakRssMB();
    const big = new Uint8Array(200e6).fill(1);
    expect(peakRssMB() - before).toBeGreaterThan(150);
    expect(big[123]).toBe(1);
  });
});

describe('bench/run.ts --tiny, end to end', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bge-m3-bench-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('generates the model, fills the hub cache, runs each system in a child process and writes results with the contract rows', () => {
    const tsx = createRequire(import.meta.url).resolve('tsx/cli');
    const r = spawnSync(
      process.execPath,
      [tsx, join(REPO_DIR, 'bench/run.ts'), '--tiny', '--systems', 'bge-m3-rag,bge-m3-rag-hub,ort-floor,roofline', '--results-dir', join(dir, 'results'), '--cache-dir', join(dir, 'cache')],
      { encoding: 'utf8', timeout: 180_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('workload');
    const json = JSON.parse(readFileSync(join(dir, 'results/tiny.json'), 'utf8')) as BenchResults;
    expect(existsSync(join(dir, 'results/tiny.md'))).toBe(true);
    expect(json.machine).toMatchObject({ cores: expect.any(Number), node: process.versions.node });
    for (const row of json.rows) {
      expect(['mixed', 'uniform128', 'long8192']).toContain(row.workload);
      expect(['bge-m3-rag', 'bge-m3-rag-hub', 'ort-floor', 'transformers.js-batch', 'transformers.js-single', 'roofline']).toContain(row.system);
      expect(['fp32', 'int8']).toContain(row.dtype);
      expect(['dense', 'all']).toContain(row.outputs);
      expect(row.tokensPerSecond).toBeGreaterThan(0);
      expect(typeof row.peakRssMB).toBe('number');
    }
    const has = (w: string, s: string, d: string, o: string) => json.rows.some((x) => x.workload === w && x.system === s && x.dtype === d && x.outputs === o);
    for (const w of ['mixed', 'uniform128']) {
      for (const d of ['fp32', 'int8']) {
        expect(has(w, 'bge-m3-rag', d, 'dense') && has(w, 'bge-m3-rag', d, 'all') && has(w, 'ort-floor', d, 'dense') && has(w, 'roofline', d, 'dense')).toBe(true);
      }
    }
    expect(has('long8192', 'bge-m3-rag', 'fp32', 'dense') && has('long8192', 'ort-floor', 'fp32', 'dense')).toBe(true);
    // The repo id through the hub cache, beside the plain folder: fp32 and int8 dense, mixed and the long document.
    for (const w of ['mixed', 'long8192']) for (const d of ['fp32', 'int8']) expect(has(w, 'bge-m3-rag-hub', d, 'dense'), `${w} ${d}`).toBe(true);
    expect(json.rows.some((x) => x.system === 'bge-m3-rag-hub' && x.workload === 'uniform128')).toBe(false);
    const hubCache = String(json.settings.hubCacheDir);
    expect(hubCache.startsWith(join(dir, 'cache', 'hub-cache-'))).toBe(true);
    expect(existsSync(join(hubCache, 'models--BAAI--bge-m3/refs/main'))).toBe(true);
    // Both sources record the attention fusion, and it is the same.
    for (const row of json.rows.filter((x) => x.system.startsWith('bge-m3-rag'))) expect(row.attention).toEqual({ fused: true, layers: 2 });
    expect(readFileSync(join(dir, 'results/tiny.md'), 'utf8')).toMatch(/\| bge-m3-rag-hub \| fp32 \| dense \| [\d.]+ \|.*\| 2 layers \|/);
    expect(json.targets).toHaveLength(6);
  });
});
