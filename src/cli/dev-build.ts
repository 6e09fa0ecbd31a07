/**
 * Development helper behind two package.json scripts (not part of the built package):
 *
 *   node --import tsx src/cli/dev-build.ts --if-stale   # `npm run demo`: build only when dist/ is out of date
 *   node --import tsx src/cli/dev-build.ts --prepare    # `prepare`: see below
 *
 * dist/ is current when every entry file exists and is newer than everything under src/ and than
 * package.json, tsup.config.ts and tsconfig.json. A full `tsup` build takes ~15 s on 2 cores, so the
 * demo does not pay it on every run.
 *
 * `prepare` runs on `npm install` (no arguments) in a clone, when npm installs this package from a
 * git URL, and before `npm pack` / `npm publish`: it builds unless dist/ is current (pack and publish
 * always build). On `npm ci` it does nothing: CI and the README's set-up command run `npm run build`
 * right after `npm ci`, and building twice would cost ~15 s.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRIES = ['index.js', 'index.cjs', 'langchain.js', 'llamaindex.js', 'postgres.js', 'cli.js', 'inference-worker.js'];
const INPUTS = ['package.json', 'tsup.config.ts', 'tsconfig.json'];

function newest(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let max = s.mtimeMs;
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

export function distIsCurrent(root = ROOT): boolean {
  let built: number;
  try {
    built = Math.min(...ENTRIES.map((f) => statSync(join(root, 'dist', f)).mtimeMs));
  } catch {
    return false; // an entry is missing
  }
  const inputs = Math.max(newest(join(root, 'src')), ...INPUTS.map((f) => statSync(join(root, f)).mtimeMs));
  return built > inputs;
}

function build(): number {
  const tsup = join(ROOT, 'node_modules', 'tsup', 'dist', 'cli-default.js');
  const r = spawnSync(process.execPath, [tsup, '--silent'], { cwd: ROOT, stdio: 'inherit' });
  return r.status ?? 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const mode = process.argv[2];
  const npmCommand = process.env.npm_command;
  if (mode === '--prepare' && npmCommand === 'ci') process.exit(0);
  const always = mode === '--prepare' && (npmCommand === 'pack' || npmCommand === 'publish');
  if (!always && distIsCurrent()) process.exit(0);
  if (mode === '--if-stale') process.stderr.write('dist/ is older than the sources: building (tsup)…\n');
  process.exit(build());
}
