/**
 * `npm run bench:generate -- [--layers 24] [--seed 42] [--variants fp32,int8] [--out DIR]`
 *
 * Writes (or finds in the cache) the random-weight model with BGE-M3's architecture and file
 * layout that the benchmark runs on, and prints its folder. `npm run bench` calls the same code on
 * first use, so running this first is optional.
 */
import { parseArgs } from 'node:util';
import { ensureModel, generateModel } from './lib/model-generator.js';
import { BENCH_MODELS_DIR } from './lib/paths.js';
import type { ModelVariant } from './lib/xlmr-graph.js';
import { BGE_M3_SHAPE, TINY_SHAPE } from './lib/xlmr-shape.js';

const { values } = parseArgs({
  options: {
    layers: { type: 'string' },
    seed: { type: 'string', default: '42' },
    variants: { type: 'string', default: 'fp32,int8' },
    tiny: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`Usage: npm run bench:generate -- [options]
  --layers N        encoder layers (default 24, BGE-M3's)
  --seed S          weight seed (default 42)
  --variants LIST   fp32,int8 (default both)
  --tiny            the conformance fixture's shape (hidden 32, 2 layers) instead of BGE-M3's
  --out DIR         write exactly here instead of the cache folder ${BENCH_MODELS_DIR}`);
  process.exit(0);
}

const base = values.tiny ? TINY_SHAPE : BGE_M3_SHAPE;
const shape = { ...base, layers: values.layers ? Number(values.layers) : base.layers };
const seed = Number(values.seed);
const variants = values.variants.split(',').map((v) => v.trim()) as ModelVariant[];
if (!Number.isInteger(shape.layers) || shape.layers < 1) throw new Error(`--layers must be a positive integer; got ${values.layers}`);
if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer; got ${values.seed}`);
for (const v of variants) if (v !== 'fp32' && v !== 'int8') throw new Error(`--variants: unknown variant "${v}" (use fp32, int8)`);

const log = (line: string) => console.error(line);
if (values.out) {
  const started = Date.now();
  generateModel(values.out, { shape, seed, variants, log });
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(values.out);
} else {
  const { dir, generated, seconds } = ensureModel({ cacheDir: BENCH_MODELS_DIR, shape, seed, variants, log });
  log(generated ? `done in ${seconds.toFixed(1)} s` : 'already generated');
  console.log(dir);
}
