/**
 * Run as a child process by the concurrency test: loads a repo from the hub given in argv into
 * the given cache, encodes one text and prints `{ dir, dense }` as JSON on stdout.
 * Usage: node --import tsx load-child.ts <hubUrl> <cacheDir> <repo> <text>
 */
import { BgeM3Model } from '../../../src/index.js';

const [hubUrl, cacheDir, repo, text] = process.argv.slice(2);
const model = await BgeM3Model.load(repo!, { hubUrl, cacheDir, onProgress: () => {} });
const { denseVecs } = await model.encode([text!]);
process.stdout.write(JSON.stringify({ dir: model.dir, dense: Array.from(denseVecs![0]!) }));
await model.dispose();
