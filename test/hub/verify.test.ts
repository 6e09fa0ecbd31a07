/**
 * `verify: true` and `bge-m3-rag verify`: a cache filled from the fake hub is re-hashed against the
 * names of its blobs (sha256 for LFS files, git blob sha1 for small ones); a flipped byte is a
 * CORRUPT_FILE error naming the file, the blob, both hashes and the repair command. Verification is
 * opt-in (hashing BAAI/bge-m3's 2.2 GB model.onnx_data takes seconds on every load): without it the
 * corrupt cache loads as before. A local directory is checked against its SHA256SUMS manifest, or
 * reported as not verifiable.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, linkSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error, BgeM3Model } from '../../src/index.js';
import { formatProgressLine, parseManifest, resolveModelSource, terminalProgress, type DownloadProgress } from '../../src/hub/index.js';
import { TINY_DIR } from '../helpers.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { childEnv, isolateHubEnv, type HubEnv } from './hub-env.js';
import { expectFixtureOutputs } from './model-check.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src', 'cli.ts');
const REPO = 'BAAI/bge-m3';
const DATA = 'onnx/model.onnx_data';

let hub: FakeHub;
let env: HubEnv;

beforeAll(async () => {
  env = isolateHubEnv();
  hub = await startFakeHub();
});
afterAll(async () => {
  await hub?.stop();
  env?.restore();
});

const models: BgeM3Model[] = [];
afterEach(async () => {
  await Promise.all(models.splice(0).map((m) => m.dispose()));
});

async function load(source: string, options: Parameters<typeof BgeM3Model.load>[1] = {}): Promise<BgeM3Model> {
  const model = await BgeM3Model.load(source, { hubUrl: hub.url, onProgress: () => {}, ...options });
  models.push(model);
  return model;
}

const commit = () => hub.repos.get(REPO)!.commit;
const snapshot = (cacheDir: string) => join(cacheDir, 'models--BAAI--bge-m3', 'snapshots', commit());
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A fresh cache holding everything a load of BAAI/bge-m3 needs, fetched from the fake hub. */
async function filledCache(): Promise<string> {
  const cacheDir = env.newCache();
  await resolveModelSource(REPO, { hubUrl: hub.url, cacheDir, onProgress: () => {} });
  return cacheDir;
}

/** The blob a snapshot file links to. */
function blobOf(cacheDir: string, path: string): string {
  return realpathSync(join(snapshot(cacheDir), ...path.split('/')));
}

/** Flips every bit of one byte of `file`, in place (what a bad disk or RAM does). */
function flipByte(file: string, at = 1000): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

/** Process warnings with `code` emitted while `fn` runs. */
async function warningsDuring<T>(code: string, fn: () => Promise<T>): Promise<{ result: T; warnings: string[] }> {
  const warnings: string[] = [];
  const listener = (w: Error & { code?: string }) => {
    if (w.code === code) warnings.push(w.message);
  };
  process.on('warning', listener);
  try {
    const result = await fn();
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    return { result, warnings };
  } finally {
    process.off('warning', listener);
  }
}

describe('BgeM3Model.load(repo, { verify: true })', () => {
  it('a clean cache verifies (every file against its blob name: sha256 or git blob sha1) and loads, offline', async () => {
    const cacheDir = await filledCache();
    hub.resetLog();
    const progress: DownloadProgress[] = [];
    const r = await resolveModelSource(REPO, { cacheDir, offline: true, verify: true, onProgress: (p) => progress.push(p) });
    expect(r.verified!.map((c) => [c.path, c.status]).sort()).toEqual(
      ['colbert_linear.pt', 'config.json', 'onnx/Constant_7_attr__value', 'onnx/model.onnx', DATA, 'sparse_linear.pt', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']
        .map((p) => [p, 'ok']),
    );
    const byPath = new Map(r.verified!.map((c) => [c.path, c]));
    expect(byPath.get(DATA)).toMatchObject({ algorithm: 'sha256', recordedBy: 'blob', expected: hub.repos.get(REPO)!.files.get(DATA)!.sha256, commit: commit() });
    expect(byPath.get('config.json')).toMatchObject({ algorithm: 'git-sha1', expected: hub.repos.get(REPO)!.files.get('config.json')!.gitSha1 });
    // Hashing progress goes to onProgress like download progress, marked phase: 'verify'.
    const done = progress.filter((p) => p.phase === 'verify' && p.done && p.file === DATA);
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ repo: REPO, loaded: 2_138_624, total: 2_138_624 });

    await expectFixtureOutputs(await load(REPO, { cacheDir, offline: true, verify: true }));
    expect(hub.connections).toBe(0);
  });

  it('a flipped byte in the cached model.onnx_data: CORRUPT_FILE naming the file, the blob, both hashes and the repair command; without verify it still loads', async () => {
    const cacheDir = await filledCache();
    const blob = blobOf(cacheDir, DATA);
    const expected = hub.repos.get(REPO)!.files.get(DATA)!.sha256;
    expect(blob.endsWith(expected)).toBe(true);
    flipByte(blob);
    const actual = sha256(blob);

    const err = await load(REPO, { cacheDir, offline: true, verify: true }).catch((e) => e);
    expect(err).toBeInstanceOf(BgeM3Error);
    expect(err.code).toBe('CORRUPT_FILE');
    expect(err.message).toContain(`${REPO} ${DATA}`);
    expect(err.message).toContain(blob);
    expect(err.message).toContain(expected);
    expect(err.message).toContain(actual);
    expect(err.message).toContain(`npx bge-m3-rag verify ${REPO} --revision ${commit()} --cache-dir ${cacheDir} --repair`);
    expect(err.message).toContain(`npx bge-m3-rag download ${REPO} --revision ${commit()} --cache-dir ${cacheDir}`);

    // Opt-in: without verify the corrupt weights load (and the vectors are silently different).
    const model = await load(REPO, { cacheDir, offline: true });
    const { denseVecs } = await model.encode(['hello']);
    expect(denseVecs![0]).toHaveLength(model.dim);
  });

  it('a corrupt small file is caught by its git blob sha1, before it is parsed', async () => {
    const cacheDir = await filledCache();
    const blob = blobOf(cacheDir, 'tokenizer.json');
    flipByte(blob, 0); // `{` becomes a byte no JSON parser accepts
    const err = await load(REPO, { cacheDir, offline: true, verify: true }).catch((e) => e);
    expect(err.code).toBe('CORRUPT_FILE');
    expect(err.message).toContain(`${REPO} tokenizer.json in the hub cache is corrupt`);
    expect(err.message).toContain('git blob sha1');
    expect(err.message).toContain(hub.repos.get(REPO)!.files.get('tokenizer.json')!.gitSha1);
  });

  it('files the load downloads are verified by the download and not hashed a second time', async () => {
    const cacheDir = await filledCache();
    rmSync(blobOf(cacheDir, DATA));
    const progress: DownloadProgress[] = [];
    const r = await resolveModelSource(REPO, { hubUrl: hub.url, cacheDir, verify: true, onProgress: (p) => progress.push(p) });
    expect(r.downloaded.map((f) => f.file)).toEqual([DATA]);
    const data = r.verified!.find((c) => c.path === DATA)!;
    expect(data).toMatchObject({ status: 'ok', downloaded: true });
    expect(progress.filter((p) => p.file === DATA).every((p) => p.phase !== 'verify')).toBe(true);
    expect(progress.some((p) => p.file === 'onnx/model.onnx' && p.phase === 'verify')).toBe(true);
  });

  it('a snapshot whose entries are hard links (no symlinks allowed) is checked against the blob with the same inode', async () => {
    const cacheDir = await filledCache();
    const entry = join(snapshot(cacheDir), 'onnx', 'model.onnx_data');
    const blob = blobOf(cacheDir, DATA);
    unlinkSync(entry);
    linkSync(blob, entry);
    const r = await resolveModelSource(REPO, { cacheDir, offline: true, verify: true });
    expect(r.verified!.find((c) => c.path === DATA)).toMatchObject({ status: 'ok', blob });
    flipByte(blob);
    const err = await resolveModelSource(REPO, { cacheDir, offline: true, verify: true }).catch((e) => e);
    expect(err.code).toBe('CORRUPT_FILE');
    expect(err.message).toContain(DATA);
  });

  it('the heads repo is verified too, and the repair command repeats the load\'s dtype and heads', async () => {
    const cacheDir = env.newCache();
    const options = { hubUrl: hub.url, cacheDir, dtype: 'q8' as const, heads: REPO, onProgress: () => {} };
    await resolveModelSource('Xenova/bge-m3', options);
    const r = await resolveModelSource('Xenova/bge-m3', { ...options, offline: true, verify: true });
    expect(r.verified!.filter((c) => c.repo === REPO).map((c) => c.path).sort()).toEqual(['colbert_linear.pt', 'sparse_linear.pt']);
    flipByte(blobOf(cacheDir, 'colbert_linear.pt'), 100);
    const err = await load('Xenova/bge-m3', { ...options, offline: true, verify: true }).catch((e) => e);
    expect(err.code).toBe('CORRUPT_FILE');
    expect(err.message).toContain(`${REPO} colbert_linear.pt in the hub cache is corrupt`);
    const xenova = hub.repos.get('Xenova/bge-m3')!.commit;
    expect(err.message).toContain(`npx bge-m3-rag verify Xenova/bge-m3 --revision ${xenova} --dtype q8 --heads ${REPO} --cache-dir ${cacheDir} --repair`);
    const fixed = await cli(['verify', 'Xenova/bge-m3', '--revision', xenova, '--dtype', 'q8', '--heads', REPO, '--cache-dir', cacheDir, '--repair', '--quiet'], { HF_ENDPOINT: hub.url });
    expect(fixed.stdout).toContain(`REPAIRED   ${REPO} colbert_linear.pt`);
    expect(fixed.code).toBe(0);
    await expectFixtureOutputs(await load('Xenova/bge-m3', { ...options, offline: true, verify: true }));
  });

  it('rejects a non-boolean verify', async () => {
    const err = await resolveModelSource(REPO, { cacheDir: env.newCache(), offline: true, verify: 'yes' as never }).catch((e) => e);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('verify must be true or false');
  });
});

describe('units', () => {
  it('verification progress is drawn as "verifying …" and erased when done', () => {
    const p: DownloadProgress = { phase: 'verify', repo: REPO, file: DATA, loaded: 1.1e9, total: 2.27e9, bytesPerSecond: 900e6, etaSeconds: 1.3, resumedFrom: 0, done: false };
    expect(formatProgressLine(p)).toBe(`verifying ${REPO} ${DATA}  1.10 GB / 2.27 GB  48%  900 MB/s  ETA 0:01`);
    const writes: string[] = [];
    const tty = { isTTY: true, columns: 100, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
    const draw = terminalProgress(tty, {})!;
    draw(p);
    draw({ ...p, loaded: p.total!, done: true });
    expect(writes[0]!.startsWith(`\rverifying ${REPO}`)).toBe(true);
    expect(writes[1]).toMatch(/^\r +\r$/);
  });

  it('parses sha256sum manifests (text and binary mode, ./ prefixes, comments) and refuses other lines', () => {
    const h = 'A'.repeat(64);
    const m = parseManifest('/m/SHA256SUMS', `# made by sha256sum\n${h}  ./onnx/model.onnx\n${h} *tokenizer.json\n\n`);
    expect([...m.entries]).toEqual([
      ['onnx/model.onnx', 'a'.repeat(64)],
      ['tokenizer.json', 'a'.repeat(64)],
    ]);
    expect(() => parseManifest('/m/SHA256SUMS', 'deadbeef  x\n')).toThrow(/SHA256SUMS line 1 is not/);
  });
});

describe('hashing is streamed', () => {
  it('a 512 MiB blob is verified with bounded memory (never read into memory at once)', async () => {
    // sha256 of 512 MiB of zero bytes; the blob is a sparse file, so it costs no disk space.
    const ZEROS_512M = '9acca8e8c22201155389f65abbf6bc9723edc7384ead80503839f49dcc56d767';
    const root = join(env.newCache(), 'models--test--big');
    const commit = 'b'.repeat(40);
    mkdirSync(join(root, 'blobs'), { recursive: true });
    mkdirSync(join(root, 'snapshots', commit), { recursive: true });
    writeFileSync(join(root, 'blobs', ZEROS_512M), '');
    truncateSync(join(root, 'blobs', ZEROS_512M), 512 * 1024 * 1024);
    const entry = join(root, 'snapshots', commit, 'model.onnx_data');
    symlinkSync(`../../blobs/${ZEROS_512M}`, entry);
    const code = `
      import { FileVerifier } from './src/hub/verify.ts';
      const v = new FileVerifier({ onChecked: () => {} });
      const c = await v.check({ repo: 'test/big', path: 'model.onnx_data', local: process.env.FILE, root: process.env.ROOT });
      process.stdout.write(JSON.stringify({ status: c.status, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, env: { ...process.env, FILE: entry, ROOT: join(root, 'snapshots', commit) }, timeout: 90_000 }, (e, stdout, stderr) =>
        e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const r = JSON.parse(out) as { status: string; maxRssMiB: number };
    expect(r.status).toBe('ok');
    expect(r.maxRssMiB).toBeLessThan(300);
  });
});

describe('verify: true on a local directory', () => {
  const FILES = ['onnx/model.onnx', 'onnx/model.onnx_data', 'tokenizer.json', 'tokenizer_config.json', 'config.json', 'colbert_linear.pt', 'sparse_linear.pt'];
  function localCopy(): string {
    const dir = join(env.newCache(), 'local-model');
    for (const f of FILES) cpSync(join(TINY_DIR, f), join(dir, f), { recursive: true });
    return dir;
  }

  it('without a SHA256SUMS manifest: nothing can be verified, a warning says so and the model loads', async () => {
    const dir = localCopy();
    const { result, warnings } = await warningsDuring('BGE_M3_RAG_UNVERIFIED', () => load(dir, { verify: true }));
    await expectFixtureOutputs(result);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('nothing could be verified');
    expect(warnings[0]).toContain('onnx/model.onnx_data');
    expect(warnings[0]).toContain('SHA256SUMS');
    expect(warnings[0]).toContain('sha256sum');
  });

  it('with a manifest: listed files are checked (a flipped byte is CORRUPT_FILE naming the manifest), unlisted ones are reported', async () => {
    const dir = localCopy();
    const listed = FILES.filter((f) => f !== 'config.json');
    writeFileSync(join(dir, 'SHA256SUMS'), listed.map((f) => `${sha256(join(dir, f))}  ${f}\n`).join(''));
    const { result, warnings } = await warningsDuring('BGE_M3_RAG_UNVERIFIED', () => resolveModelSource(dir, { verify: true }));
    expect(result.verified!.filter((c) => c.status === 'ok').map((c) => c.path).sort()).toEqual([...listed].sort());
    expect(result.verified!.find((c) => c.path === 'config.json')).toMatchObject({ status: 'unverified' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('1 of 7 files could not be verified: config.json: not listed in');

    flipByte(join(dir, DATA));
    const err = await load(dir, { verify: true }).catch((e) => e);
    expect(err.code).toBe('CORRUPT_FILE');
    expect(err.message).toContain(`${DATA} in ${dir} does not match ${join(dir, 'SHA256SUMS')}`);
    expect(err.message).toContain(sha256(join(dir, DATA)));
  });

  it('the snapshot folder `download` prints, loaded as a directory, is checked against its blobs', async () => {
    const cacheDir = await filledCache();
    const { result, warnings } = await warningsDuring('BGE_M3_RAG_UNVERIFIED', () => resolveModelSource(snapshot(cacheDir), { verify: true }));
    expect(warnings).toEqual([]);
    expect(result.verified!.every((c) => c.status === 'ok' && c.recordedBy === 'blob')).toBe(true);
    expect(result.verified!.length).toBe(9);
  });
});

function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { cwd: ROOT, env: childEnv({ HF_HOME: join(env.home, 'cli'), ...extraEnv }), timeout: 90_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('bge-m3-rag verify', () => {
  it('a clean cache: one ok line per file the load uses, a summary, exit 0, no network', async () => {
    const cacheDir = await filledCache();
    hub.resetLog();
    const r = await cli(['verify', REPO, '--cache-dir', cacheDir], { HF_ENDPOINT: hub.url });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines).toContain(`ok         ${REPO} ${DATA}  sha256 ${hub.repos.get(REPO)!.files.get(DATA)!.sha256}`);
    expect(lines).toContain(`ok         ${REPO} config.json  git blob sha1 ${hub.repos.get(REPO)!.files.get('config.json')!.gitSha1}`);
    expect(lines.at(-1)).toMatch(new RegExp(`^9 file\\(s\\) checked, .* \\(the files a load of BAAI/bge-m3 at commit ${commit().slice(0, 12)} uses\\): 9 ok\\.$`));
    expect(hub.connections).toBe(0);
  });

  it('a corrupt blob: a CORRUPT line with both hashes and the blob, exit 1; --repair downloads it again; --all checks the whole snapshot', async () => {
    const cacheDir = await filledCache();
    const blob = blobOf(cacheDir, DATA);
    const expected = hub.repos.get(REPO)!.files.get(DATA)!.sha256;
    flipByte(blob);
    const actual = sha256(blob);
    const bad = await cli(['verify', REPO, '--cache-dir', cacheDir, '--quiet']);
    expect(bad.code).toBe(1);
    const lines = bad.stdout.trim().split('\n');
    expect(lines).toContain(`CORRUPT    ${REPO} ${DATA}  sha256 expected ${expected}, actual ${actual}  blob ${blob}`);
    expect(lines.filter((l) => l.startsWith('ok '))).toHaveLength(8);
    expect(lines.at(-1)).toMatch(/: 8 ok, 1 corrupt\.$/);
    expect(bad.stderr).toContain(`npx bge-m3-rag verify ${REPO} --cache-dir ${cacheDir} --quiet --revision ${commit()} --repair`);

    const all = await cli(['verify', REPO, '--cache-dir', cacheDir, '--all']);
    expect(all.code).toBe(1);
    expect(all.stdout).toContain(`CORRUPT    ${REPO} ${DATA}`);
    expect(all.stdout).toMatch(/every file of the cached snapshot of BAAI\/bge-m3/);

    hub.resetLog();
    const fixed = await cli(['verify', REPO, '--cache-dir', cacheDir, '--repair', '--quiet'], { HF_ENDPOINT: hub.url });
    expect(fixed.stderr).toBe('');
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain(`REPAIRED   ${REPO} ${DATA}  downloaded again and verified, sha256 ${expected}`);
    expect(fixed.stdout.trim().split('\n').at(-1)).toMatch(/: 8 ok, 1 repaired\.$/);
    expect(sha256(blob)).toBe(expected);
    // Only that file was fetched again.
    expect(hub.contentGets(DATA).length).toBeGreaterThan(0);
    expect(hub.contentGets()).toHaveLength(hub.contentGets(DATA).length);

    const again = await cli(['verify', REPO, '--cache-dir', cacheDir, '--all', '--quiet']);
    expect(again.code).toBe(0);
    expect(again.stdout.trim().split('\n').at(-1)).toMatch(/: 9 ok\.$/);
  });

  it('--all --repair re-downloads a corrupt git file and a blob that is gone', async () => {
    const cacheDir = await filledCache();
    flipByte(blobOf(cacheDir, 'config.json'), 0);
    rmSync(blobOf(cacheDir, 'sparse_linear.pt'));
    const bad = await cli(['verify', REPO, '--cache-dir', cacheDir, '--all']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`CORRUPT    ${REPO} config.json  git blob sha1 expected`);
    expect(bad.stdout).toMatch(/MISSING {4}BAAI\/bge-m3 sparse_linear\.pt {2}it links to a blob that is gone/);
    const fixed = await cli(['verify', REPO, '--cache-dir', cacheDir, '--all', '--repair'], { HF_ENDPOINT: hub.url });
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain(`REPAIRED   ${REPO} config.json`);
    expect(fixed.stdout).toContain(`REPAIRED   ${REPO} sparse_linear.pt`);
    await expectFixtureOutputs(await load(REPO, { cacheDir, offline: true, verify: true }));
  });

  it('files missing from the cache: MISSING lines and exit 1; not cached at all: exit 1', async () => {
    const cacheDir = await filledCache();
    rmSync(join(snapshot(cacheDir), 'onnx', 'model.onnx_data'));
    const r = await cli(['verify', REPO, '--cache-dir', cacheDir, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`MISSING    ${REPO} ${DATA} (external data named by onnx/model.onnx)`);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/1 missing\.$/);
    const fixed = await cli(['verify', REPO, '--cache-dir', cacheDir, '--quiet', '--repair'], { HF_ENDPOINT: hub.url });
    // The blob was still there: the link is restored and the blob hashed, nothing downloaded.
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain(`ok         ${REPO} ${DATA}  sha256`);
    expect(fixed.stdout.trim().split('\n').at(-1)).toMatch(/: 9 ok\.$/);

    const none = await cli(['verify', REPO, '--cache-dir', env.newCache(), '--quiet']);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('MISSING');
  });

  it('a local directory without a manifest: UNVERIFIED lines, exit 1', async () => {
    const dir = join(env.newCache(), 'plain');
    for (const f of ['onnx/model.onnx', 'onnx/model.onnx_data', 'tokenizer.json']) cpSync(join(TINY_DIR, f), join(dir, f), { recursive: true });
    const r = await cli(['verify', dir, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`UNVERIFIED ${dir} onnx/model.onnx  a local directory has no recorded hashes`);
    expect(r.stderr).toContain('SHA256SUMS');
    writeFileSync(join(dir, 'SHA256SUMS'), ['onnx/model.onnx', 'onnx/model.onnx_data', 'tokenizer.json'].map((f) => `${sha256(join(dir, f))} *${f}\n`).join(''));
    const ok = await cli(['verify', dir, '--quiet']);
    expect(ok.stdout).toContain(`ok         ${dir} tokenizer.json  sha256`);
    expect(ok.code).toBe(0);
  });

  it('--help documents it, the top-level help lists it, bad arguments exit 2', async () => {
    const help = await cli(['verify', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: bge-m3-rag verify [repo|dir]');
    for (const flag of ['--revision', '--cache-dir', '--dtype', '--heads', '--all', '--repair', 'SHA256SUMS', 'Exit codes']) expect(help.stdout).toContain(flag);
    const top = await cli(['--help']);
    expect(top.stdout).toMatch(/\n {2}verify {2}/);
    for (const args of [['verify', 'a/b', 'c/d'], ['verify', '--all', '--dtype', 'q8'], ['verify', '--dtype', 'int4'], ['verify', '--bogus'], ['verify', '--revision', '../x']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain('Usage: bge-m3-rag verify');
    }
  });
});
