/**
 * `npm run bench:tokenizer`: tokenization time per MB of UTF-8 text for the input classes that were
 * pathological for the earlier pure-JS tokenizer (runs that normalize to nothing, lone surrogates,
 * unspaced scripts, base64), through `model.tokenize` (truncation to 8,192 tokens, as every public
 * path does), beside the Rust tokenizer tokenizing the whole text. Targets: <= 1 s per MB, within
 * 5x the Rust tokenizer. Never part of npm test.
 */
import tk from '@anush008/tokenizers';
import { BgeM3Model } from '../src/index.js';
import { FIXTURE_DIR } from './lib/model-generator.js';

const model = await BgeM3Model.load(FIXTURE_DIR);
const rust = tk.Tokenizer.fromFile(`${FIXTURE_DIR}/tokenizer.json`);
const MB = 1 << 20;
const classes: Record<string, (n: number) => string> = {
  crlf: (n) => '\r\n'.repeat(n / 2), zwsp: (n) => '\u200b'.repeat(n / 3), surrogates: (n) => '\ud800'.repeat(n / 3),
  thai: (n) => 'ภาษาไทยเป็นภาษาราชการ'.repeat(n / 63), base64: (n) => Buffer.from(Array.from({ length: (n * 3) / 4 }, (_, i) => (i * 2654435761) >>> 24)).toString('base64'),
  english: (n) => 'The quick brown fox jumps over the lazy dog. '.repeat(n / 45), cjk: (n) => '東京は日本の首都です。'.repeat(n / 33),
  spaces: (n) => ' '.repeat(n), emoji: (n) => '👋🏽'.repeat(n / 8),
};
console.log('class        size(UTF-8)  ours ms  ms/MB  rust-full ms  ratio');
for (const size of [1, 4]) for (const [name, make] of Object.entries(classes)) {
  const text = make(size * MB);
  const bytes = Buffer.byteLength(text) / MB;
  const t0 = performance.now();
  const [ids] = await model.tokenize([text]);
  const ms = performance.now() - t0;
  const t1 = performance.now();
  await rust.encode(text, null, { addSpecialTokens: false });
  const rms = performance.now() - t1;
  console.log(`${name.padEnd(11)} ${bytes.toFixed(1).padStart(5)} MB ${ms.toFixed(0).padStart(8)} ${(ms / bytes).toFixed(0).padStart(6)} ${rms.toFixed(0).padStart(12)} ${(ms / rms).toFixed(2).padStart(6)}  (${ids!.length} ids)`);
}
await model.dispose();
