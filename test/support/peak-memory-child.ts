/**
 * Child process for memory comparisons: loads a model (a directory, or a repo id from a cache in
 * offline mode), encodes one long text and prints `{ maxRssMiB, fusedLayers, seconds }` as JSON.
 * Usage: node --import tsx peak-memory-child.ts <source> [cacheDir] <tokens>
 */
import { BgeM3Model } from '../../src/index.js';
import { loadExpected } from '../helpers.js';

const [source, maybeCache, maybeTokens] = process.argv.slice(2);
const cacheDir = maybeTokens ? maybeCache : undefined;
const tokens = Number(maybeTokens ?? maybeCache);
const model = await BgeM3Model.load(source!, cacheDir ? { cacheDir, offline: true } : {});
const long = loadExpected().texts.reduce((a, b) => (b.input_ids.length > a.input_ids.length ? b : a)).text;
const text = `${long} `.repeat(Math.ceil((tokens * 1.2) / 5000));
const t0 = performance.now();
const out = await model.encode([text], { maxLength: tokens });
const seconds = (performance.now() - t0) / 1000;
if (out.denseVecs![0]!.length !== model.dim) throw new Error('no dense vector');
process.stdout.write(JSON.stringify({ maxRssMiB: process.resourceUsage().maxRSS / 1024, fusedLayers: model.info.attention.layers, seconds }));
await model.dispose();
