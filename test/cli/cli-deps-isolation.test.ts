/**
 * The CLI's own dependencies (progress bar, globs, HTML/CSV/PDF parsers) stay out of the library's
 * import path: importing `bge-m3-rag` (the sources through tsx, and the built `dist/` when it is
 * there) never resolves them. Each check runs in a child process so the module graph starts empty.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI_DEPS = /[\\/]node_modules[\\/](cli-progress|tinyglobby|picomatch|html-to-text|csv-parse|unpdf)[\\/]/;
const tmp = mkdtempSync(join(tmpdir(), 'bge-m3-rag-cli-deps-'));

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function hooks(): { log: string; register: string } {
  const log = join(tmp, `resolved-${Math.random().toString(36).slice(2)}.txt`);
  const file = join(tmp, 'hooks.mjs');
  writeFileSync(log, '');
  writeFileSync(
    file,
    `import { appendFileSync } from 'node:fs';
     let log;
     export function initialize(data) { log = data.log; }
     export async function resolve(specifier, context, next) {
       const result = await next(specifier, context);
       appendFileSync(log, result.url + '\\n');
       return result;
     }`,
  );
  return { log, register: `register(${JSON.stringify(pathToFileURL(file).href)}, { data: { log: ${JSON.stringify(log)} } });` };
}

async function check(entry: string, args: string[]): Promise<{ afterLibrary: string[]; afterCli: number }> {
  const h = hooks();
  const { stdout } = await run(
    process.execPath,
    [
      ...args,
      '--input-type=module',
      '-e',
      `import { register } from 'node:module';
       import { readFileSync } from 'node:fs';
       ${h.register}
       const loaded = () => readFileSync(${JSON.stringify(h.log)}, 'utf8').split('\\n').filter((u) => ${CLI_DEPS}.test(u));
       await import(${JSON.stringify(entry)});
       const afterLibrary = loaded();
       // The detection itself works: the CLI's modules and their parsers resolve these packages.
       await import('cli-progress'); await import('unpdf'); await import('csv-parse/sync'); await import('html-to-text'); await import('tinyglobby');
       console.log(JSON.stringify({ afterLibrary, afterCli: loaded().length }));`,
    ],
    { cwd: ROOT, timeout: 60_000 },
  );
  return JSON.parse(stdout);
}

describe('CLI dependencies stay out of the library', () => {
  it('importing the library sources resolves none of them', async () => {
    const r = await check(pathToFileURL(join(ROOT, 'src', 'index.ts')).href, ['--import', 'tsx']);
    expect(r.afterLibrary).toEqual([]);
    expect(r.afterCli).toBeGreaterThan(0);
  });

  it.skipIf(!existsSync(join(ROOT, 'dist', 'index.js')))('import("bge-m3-rag") (dist/) resolves none of them', async () => {
    const r = await check('bge-m3-rag', []);
    expect(r.afterLibrary).toEqual([]);
    expect(r.afterCli).toBeGreaterThan(0);
    expect(readFileSync(join(ROOT, 'dist', 'index.js'), 'utf8')).not.toMatch(CLI_DEPS);
  });
});
