/**
 * `bge-m3-rag download` as a child process, with HF_ENDPOINT pointing at the fake hub and a temporary
 * HF_HOME: it fills the standard cache, is idempotent, and the air-gapped recipe (copy the cache,
 * load offline) works. Usage errors exit 2, failures exit 1, each with a clear message.
 */
import { execFile } from 'node:child_process';
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Model } from '../../src/index.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { childEnv, isolateHubEnv, type HubEnv } from './hub-env.js';
import { expectFixtureOutputs } from './model-check.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src', 'cli.ts');

let hub: FakeHub;
let env: HubEnv;
let hfHome: string;

beforeAll(async () => {
  env = isolateHubEnv();
  hub = await startFakeHub();
  hfHome = join(env.newCache(), 'hf-home');
});
afterAll(async () => {
  await hub?.stop();
  env?.restore();
});

function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { cwd: ROOT, env: childEnv({ HF_ENDPOINT: hub.url, HF_HOME: hfHome, ...extraEnv }), timeout: 90_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('bge-m3-rag download', () => {
  it('fetches BAAI/bge-m3 (the default) into $HF_HOME/hub and prints the snapshot folder', async () => {
    hub.resetLog();
    const r = await cli(['download']);
    expect(r.stderr).toContain('Downloaded 9 file(s)');
    expect(r.code).toBe(0);
    const snapshot = join(hfHome, 'hub', 'models--BAAI--bge-m3', 'snapshots', hub.repos.get('BAAI/bge-m3')!.commit);
    expect(r.stdout.trim()).toBe(snapshot);
    expect(readdirSync(snapshot).sort()).toEqual(['colbert_linear.pt', 'config.json', 'onnx', 'sparse_linear.pt', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect(hub.contentGets('pytorch_model.bin')).toHaveLength(0);
  });

  it('a second run checks the hub for a newer commit but downloads nothing', async () => {
    hub.resetLog();
    const r = await cli(['download', 'BAAI/bge-m3']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Everything was already in the cache.');
    expect(hub.requests.filter((q) => q.url.startsWith('/api/'))).toHaveLength(1);
    expect(hub.contentGets()).toHaveLength(0);
  });

  it('air-gapped recipe: copy the cache elsewhere and load it offline, with no hub at all', async () => {
    const target = join(env.newCache(), 'copied-hub-cache');
    cpSync(join(hfHome, 'hub'), target, { recursive: true, verbatimSymlinks: true });
    await hub.stop();
    try {
      process.env.HF_HUB_OFFLINE = '1';
      process.env.HF_HUB_CACHE = target;
      const model = await BgeM3Model.load('BAAI/bge-m3');
      try {
        await expectFixtureOutputs(model);
        expect(model.dir.startsWith(target)).toBe(true);
      } finally {
        await model.dispose();
      }
    } finally {
      delete process.env.HF_HUB_OFFLINE;
      delete process.env.HF_HUB_CACHE;
      hub = await startFakeHub(); // a fresh server for the tests below
    }
  });

  it('--dtype q8 --heads BAAI/bge-m3 --cache-dir D: prints the model and heads folders', async () => {
    const cacheDir = env.newCache();
    const r = await cli(['download', 'Xenova/bge-m3', '--dtype', 'q8', '--heads', 'BAAI/bge-m3', '--cache-dir', cacheDir, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const [model, heads] = r.stdout.trim().split('\n');
    expect(model).toBe(join(cacheDir, 'models--Xenova--bge-m3', 'snapshots', hub.repos.get('Xenova/bge-m3')!.commit));
    expect(heads).toBe(join(cacheDir, 'models--BAAI--bge-m3', 'snapshots', hub.repos.get('BAAI/bge-m3')!.commit));
    expect(readdirSync(join(model!, 'onnx'))).toEqual(['model_quantized.onnx']);
  });

  it('--help and a bare invocation print usage', async () => {
    const help = await cli(['download', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: bge-m3-rag download [repo]');
    expect(help.stdout).toContain('--dtype <fp32|fp16|q8>');
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Commands:\n {2}download/);
    const bare = await cli([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe(''); // a usage error: the usage goes to stderr
    expect(bare.stderr).toContain('Usage: bge-m3-rag <command>');
  });

  it('usage errors exit 2 with a message', async () => {
    const unknown = await cli(['fetch']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "fetch"');
    const dtype = await cli(['download', '--dtype', 'int4']);
    expect(dtype.code).toBe(2);
    expect(dtype.stderr).toContain('--dtype must be one of fp32, fp16, q8; got "int4"');
    const option = await cli(['download', '--bogus']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("Unknown option '--bogus'");
  });

  it('option errors name the flag the user typed', async () => {
    const endpoint = await cli(['download', '--endpoint', 'ftp://mirror']);
    expect(endpoint.code).toBe(2);
    expect(endpoint.stderr).toContain('--endpoint (or HF_ENDPOINT) must be an http(s) URL');
    const revision = await cli(['download', '--revision', '../etc']);
    expect(revision.code).toBe(2);
    expect(revision.stderr).toContain('--revision "../etc" is not a valid branch');
    const cacheDir = await cli(['download', '--cache-dir', '']);
    expect(cacheDir.code).toBe(2);
    expect(cacheDir.stderr).toContain('--cache-dir needs a value');
    for (const r of [endpoint, revision, cacheDir]) expect(r.stderr).not.toMatch(/\b(hubUrl|cacheDir)\b/);
  });

  it('HF_HUB_OFFLINE=1 is respected: checks the cache and prints its folder, or exits 1, without connecting', async () => {
    hub.resetLog();
    const ok = await cli(['download'], { HF_HUB_OFFLINE: '1' });
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim()).toBe(join(hfHome, 'hub', 'models--BAAI--bge-m3', 'snapshots', hub.repos.get('BAAI/bge-m3')!.commit));
    expect(ok.stderr).toContain('Offline mode (HF_HUB_OFFLINE)');
    const missing = await cli(['download', '--cache-dir', env.newCache()], { HF_HUB_OFFLINE: '1' });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('Offline mode (offline: true or HF_HUB_OFFLINE=1)');
    expect(hub.connections).toBe(0);
  });

  it('a graph without heads and no --heads: says the model will be dense-only and how to get the heads', async () => {
    const r = await cli(['download', 'Xenova/bge-m3', '--dtype', 'q8', '--cache-dir', env.newCache()]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Xenova/bge-m3 has no head files (colbert_linear.pt, sparse_linear.pt)');
    expect(r.stderr).toContain('dense-only');
    expect(r.stderr).toContain('--heads BAAI/bge-m3');
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('a repo that does not exist exits 1 with the hub error', async () => {
    const r = await cli(['download', 'nobody/nothing', '--cache-dir', env.newCache()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Repository "nobody/nothing" was not found');
  });
});
