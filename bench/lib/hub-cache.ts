/**
 * The `bge-m3-rag-hub` system's model source. Users load `BgeM3Model.load('BAAI/bge-m3')` through
 * the Hugging Face hub cache (`models--BAAI--bge-m3/{blobs,snapshots,refs}`, snapshot files being
 * relative symlinks into `blobs/`), not from a plain folder; a bug on that path once made attention
 * fusion fail silently. So the parent serves the generated model as the repo `BAAI/bge-m3` from the
 * tests' fake hub on 127.0.0.1 (the hub's API and a separate-origin CDN, real headers), downloads it
 * once with this package's own downloader (sha256-verified) into a cache under the bench cache
 * folder, and the children then load the repo id from that cache with `offline: true`.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { basename, join, sep } from 'node:path';
import { resolveModelSource, type BgeM3Dtype, type DownloadProgressCallback } from '../../src/index.js';
import { formatBytes, formatProgressLine } from '../../src/hub/index.js';
import { diskFile, fakeRepo, FAKE_TOKEN, startFakeHub, type FakeFile } from '../../test/support/fake-hub.js';
import type { Dtype } from './child-protocol.js';

/** The repo id the children load, as users do. */
export const HUB_REPO = 'BAAI/bge-m3';

/**
 * The package's `dtype` for a bench dtype: `q8` picks `onnx/model_quantized.onnx`, the graph the
 * plain-folder system loads as `graphFile('int8')`.
 */
export const HUB_DTYPES: Readonly<Record<Dtype, BgeM3Dtype>> = { fp32: 'fp32', int8: 'q8' };

/** Files the generator writes for its own bookkeeping: not part of the served repo. */
const NOT_SERVED = new Set(['GENERATED.json']);

/** The hub cache folder for a generated model: `<cacheDir>/hub-cache-<model folder name>`. */
export function hubCacheDir(cacheDir: string, modelDir: string): string {
  return join(cacheDir, `hub-cache-${basename(modelDir)}`);
}

/**
 * The stand-in repo's version: the generated model's creation time, so a regenerated model is a
 * new commit and a cache filled from an earlier one is never taken for it.
 */
function repoVersion(modelDir: string): number {
  return Math.floor(statSync(join(modelDir, 'GENERATED.json')).mtimeMs);
}

/** Every file of the model folder as a fake-hub file served from disk, keyed by its repo path. */
async function standInFiles(modelDir: string): Promise<Record<string, FakeFile>> {
  const paths = (readdirSync(modelDir, { recursive: true }) as string[])
    .filter((p) => statSync(join(modelDir, p)).isFile() && !NOT_SERVED.has(p))
    .map((p) => p.split(sep).join('/'))
    .sort();
  return Object.fromEntries(await Promise.all(paths.map(async (p) => [p, await diskFile(join(modelDir, ...p.split('/')), p)] as const)));
}

/** A download progress callback that logs each file when it is done, and every `everyMs` while it lasts. */
function progressLog(log: (line: string) => void, everyMs = 10_000): DownloadProgressCallback {
  const last = new Map<string, number>();
  return (p) => {
    const now = performance.now();
    if (!last.has(p.file)) last.set(p.file, now);
    if (!p.done && now - last.get(p.file)! < everyMs) return;
    last.set(p.file, now);
    log(`  ${formatProgressLine(p)}`);
  };
}

export interface HubCacheResult {
  /** The hub cache folder (pass as `cacheDir`). */
  dir: string;
  /** Whether this call served the model and downloaded into the cache (false: it was complete). */
  filled: boolean;
  /** Bytes downloaded by this call. */
  downloadedBytes: number;
  seconds: number;
}

/**
 * Makes sure `hubCacheDir(cacheDir, modelDir)` holds `BAAI/bge-m3` for every dtype, so that
 * `BgeM3Model.load('BAAI/bge-m3', { cacheDir, offline: true, dtype })` works: a cache that already
 * serves this model offline is reused as it is; otherwise the model folder is served by a fake hub
 * on 127.0.0.1 and the missing files are downloaded through the package's downloader (resuming an
 * interrupted fill). A cache filled from an earlier generation of the model is deleted first.
 */
export async function ensureHubCache(options: { cacheDir: string; modelDir: string; dtypes: readonly Dtype[]; log: (line: string) => void }): Promise<HubCacheResult> {
  const { modelDir, dtypes, log } = options;
  const dir = hubCacheDir(options.cacheDir, modelDir);
  const version = repoVersion(modelDir);
  const commit = fakeRepo(HUB_REPO, {}, { version }).commit;
  const cached = await Promise.all(
    dtypes.map((d) => resolveModelSource(HUB_REPO, { cacheDir: dir, offline: true, dtype: HUB_DTYPES[d] }).then((r) => r.commit, () => undefined)),
  );
  if (cached.every((c) => c === commit)) return { dir, filled: false, downloadedBytes: 0, seconds: 0 };
  if (cached.some((c) => c !== undefined && c !== commit)) rmSync(dir, { recursive: true, force: true });

  const started = performance.now();
  log(`hub cache: hashing ${modelDir} to serve it as ${HUB_REPO} ...`);
  const hub = await startFakeHub([fakeRepo(HUB_REPO, await standInFiles(modelDir), { version })]);
  let downloadedBytes = 0;
  try {
    log(`hub cache: downloading ${HUB_REPO} (${dtypes.join(', ')}) from ${hub.url} into ${dir} ...`);
    for (const d of dtypes) {
      const r = await resolveModelSource(HUB_REPO, {
        cacheDir: dir,
        hubUrl: hub.url,
        // The stand-in's own token: a real HF_TOKEN from the environment is never sent (nor accepted there).
        token: FAKE_TOKEN,
        offline: false,
        refresh: true,
        dtype: HUB_DTYPES[d],
        onProgress: progressLog(log),
      });
      if (r.commit !== commit) throw new Error(`the hub cache resolved ${HUB_REPO} to commit ${r.commit}, expected ${commit}`);
      downloadedBytes += r.downloaded.reduce((sum, f) => sum + f.bytes, 0);
    }
  } finally {
    await hub.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  log(`hub cache: ${formatBytes(downloadedBytes)} downloaded and verified in ${seconds.toFixed(0)} s`);
  return { dir, filled: true, downloadedBytes, seconds };
}
