/**
 * Seeded robustness suite (a few seconds in `npm test`; `npm run fuzz` runs it longer with
 * FUZZ_SCALE, e.g. FUZZ_SCALE=20, and FUZZ_SEED for other seeds):
 * - random texts and options through `encode` give results or BgeM3Errors, never anything else;
 * - random mutations of a saved index load identically or are refused (CORRUPT_FILE / INCOMPATIBLE_INDEX);
 * - concurrency: parallel encodes equal serial ones; searches during adds and deletes see the index
 *   before or after each change; `dispose` during encodes ends every call promptly;
 * - a child process killed at random points of `save`, many times: the last good save always loads
 *   and equals what was saved.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error, BgeM3Model, HYBRID_INDEX_FILE, MemoryHybridIndex } from '../../src/index.js';
import { TINY_DIR } from '../helpers.js';
import { randomCorpus, randomDense, randomSparse, rng } from '../support/random-corpus.js';

const SCALE = Math.max(1, Number(process.env.FUZZ_SCALE ?? 1));
const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const work = mkdtempSync(join(tmpdir(), 'bge-m3-fuzz-'));
let model: BgeM3Model;
beforeAll(async () => {
  model = await BgeM3Model.load(TINY_DIR);
});
afterAll(async () => {
  await model?.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** A random string mixing scripts, controls, lone surrogates, long runs and special-token text. */
function randomText(rand: () => number): string {
  const pieces = ['hello', ' ', '  ', '\r\n', '\u200b', '\ud800', '\udc00', '😀', '東京', 'ภาษา', '</s>', '<s>', '<pad>', '\u0000', 'é', 'e\u0301', '\t', 'x'.repeat(50)];
  let s = '';
  for (let i = Math.floor(rand() * 40); i > 0; i--) {
    if (rand() < 0.5) s += pieces[Math.floor(rand() * pieces.length)]!;
    else s += String.fromCodePoint(Math.floor(rand() * 0x10ffff) & ~(rand() < 0.9 ? 0x1ff800 : 0));
    if (rand() < 0.02) s += s.repeat(1 + Math.floor(rand() * 50)); // occasional long runs
  }
  return s;
}

describe('fuzz', () => {
  it('encode: random texts and options give results or BgeM3Errors only', async () => {
    const rand = rng(SEED);
    for (let round = 0; round < 20 * SCALE; round++) {
      const texts = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => randomText(rand));
      const options: Record<string, unknown> = {
        maxLength: [undefined, 2, 3, 16, 512, 0, -1, 1.5, 9000, 'x'][Math.floor(rand() * 10)],
        batchSize: [undefined, 1, 2, 256, 0][Math.floor(rand() * 5)],
        returnSparse: rand() < 0.5,
        returnColbertVecs: rand() < 0.5,
      };
      try {
        const out = await model.encode(texts, options);
        expect(out.denseVecs).toHaveLength(texts.length);
        for (const v of out.denseVecs!) expect(v.every(Number.isFinite)).toBe(true);
      } catch (e) {
        expect(e, `round ${round}: ${(e as Error).message}`).toBeInstanceOf(BgeM3Error);
      }
    }
  });

  it('load: random mutations of a saved index load identically or are refused', async () => {
    const rand = rng(SEED + 1);
    const index = new MemoryHybridIndex({ dim: 8 });
    index.addEncoded(randomCorpus(rand, 40, 8, 200, 10));
    const dir = join(work, 'mutate');
    await index.save(dir);
    const file = join(dir, HYBRID_INDEX_FILE);
    const original = readFileSync(file);
    const query = { dense: randomDense(rand, 8), sparse: randomSparse(rand, 200, 5) };
    const want = await index.searchEncoded(query, { k: 10 });
    let refused = 0;
    for (let round = 0; round < 60 * SCALE; round++) {
      const bytes = Buffer.from(original);
      const kind = rand();
      let mutated: Buffer;
      if (kind < 0.4) {
        for (let i = 1 + Math.floor(rand() * 4); i > 0; i--) {
          const at = Math.floor(rand() * bytes.length);
          bytes[at] = bytes[at]! ^ (1 << Math.floor(rand() * 8));
        }
        mutated = bytes;
      } else if (kind < 0.7) mutated = bytes.subarray(0, Math.floor(rand() * bytes.length));
      else mutated = Buffer.concat([bytes, Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)))]);
      writeFileSync(file, mutated);
      try {
        const loaded = await MemoryHybridIndex.load(dir);
        expect(await loaded.searchEncoded(query, { k: 10 })).toEqual(want);
      } catch (e) {
        expect(e, `round ${round}`).toBeInstanceOf(BgeM3Error);
        expect(['CORRUPT_FILE', 'INCOMPATIBLE_INDEX']).toContain((e as BgeM3Error).code);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
  });
});

describe('concurrency', () => {
  it('parallel encodes equal serial ones', async () => {
    const rand = rng(SEED + 2);
    const calls = Array.from({ length: 6 }, () => Array.from({ length: 1 + Math.floor(rand() * 8) }, () => randomText(rand)));
    const opts = { returnSparse: true, returnColbertVecs: true, maxLength: 256 };
    const serial = [];
    for (const texts of calls) serial.push(await model.encode(texts, opts));
    const parallel = await Promise.all(calls.map((texts) => model.encode(texts, opts)));
    expect(parallel).toEqual(serial);
  });

  it('searches during adds and deletes see the index before or after each change', async () => {
    const rand = rng(SEED + 3);
    const index = new MemoryHybridIndex({ dim: 8 });
    const batches = Array.from({ length: 8 }, (_, i) => randomCorpus(rand, 25, 8, 100, 6, `b${i}-`));
    const seen = new Set<number>();
    const searches = (async () => {
      for (let i = 0; i < 40; i++) {
        seen.add((await index.searchEncoded({ dense: randomDense(rand, 8), sparse: {} }, { k: 1000, candidates: 1000 })).length);
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (const [i, docs] of batches.entries()) {
      index.addEncoded(docs);
      if (i % 3 === 2) await index.delete(docs.map((d) => d.id));
      await new Promise((r) => setImmediate(r));
    }
    await searches;
    for (const n of seen) expect(n % 25).toBe(0);
  });

  it('dispose during encodes ends every call promptly, with results or DISPOSED', async () => {
    const own = await BgeM3Model.load(TINY_DIR);
    const rand = rng(SEED + 4);
    const calls = Array.from({ length: 8 }, () => own.encode(Array.from({ length: 20 }, () => randomText(rand) + ' long '.repeat(300))).then(
      () => 'ok',
      (e) => e,
    ));
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    await own.dispose();
    const outcomes = await Promise.all(calls);
    expect(performance.now() - t0).toBeLessThan(5000);
    for (const o of outcomes) if (o !== 'ok') expect(o).toMatchObject({ code: 'DISPOSED' });
  });
});

describe('kill during save', () => {
  it('a child killed at random points of save, many times: the last good save always loads, equal to what was saved', async () => {
    const dir = join(work, 'killed');
    const script = join(work, 'save-loop.mts');
    writeFileSync(
      script,
      `import { MemoryHybridIndex } from ${JSON.stringify(pathToFileURL(resolve('src/stores/memory/memory-hybrid-index.ts')).href)};
const [dir, round] = process.argv.slice(2);
const dim = 64, n = 4000 + 500 * Number(round);
const index = new MemoryHybridIndex({ dim });
index.addEncoded(Array.from({ length: n }, (_, i) => ({ id: 'r' + round + '-' + i, text: 'doc ' + i, dense: Array.from({ length: dim }, (_, j) => Math.sin(i + j + Number(round))), sparse: { [String(i % 997)]: 1 } })));
process.stdout.write('READY\\n');
for (;;) await index.save(dir);
`,
    );
    const rand = rng(SEED + 5);
    let lastSaved: number | undefined;
    for (let round = 0; round < 6 * SCALE; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', script, dir, String(round)], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((ok) => child.stdout.once('data', () => ok()));
      await new Promise((r) => setTimeout(r, 50 + rand() * 400));
      await new Promise<void>((ok) => {
        child.once('exit', () => ok());
        child.kill('SIGKILL');
      });
      let loaded: MemoryHybridIndex | undefined;
      try {
        loaded = await MemoryHybridIndex.load(dir);
      } catch (e) {
        // Killed before its first save completed, with nothing saved earlier: there is no file yet.
        expect(lastSaved, `round ${round}: ${(e as Error).message}`).toBeUndefined();
        expect(e).toMatchObject({ code: 'MISSING_FILE' });
        continue;
      }
      // Whole: one round's complete index (this round's, or the previous one's if no save finished).
      const r = loaded.has(`r${round}-0`) ? round : lastSaved!;
      expect(r, `round ${round}`).toBeDefined();
      expect(loaded.size).toBe(4000 + 500 * r);
      expect(loaded.get(`r${r}-${loaded.size - 1}`)?.text).toBe(`doc ${loaded.size - 1}`);
      lastSaved = r;
    }
  }, 120_000);
});

