/**
 * Turns `BgeM3Model.load`'s `source` into a local directory: a directory is used as it is; a hub
 * repo id is served from the hub cache when the cache holds everything the layout needs (no network
 * at all), and otherwise fetched, file by file, into that cache. With `verify`, every file the load
 * will use is re-hashed against its recorded hash (see `verify.ts`) as the layout planner reaches it,
 * so a corrupt graph is reported before it is parsed.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BgeM3Error } from '../errors.js';
import { checkDtype, graphCandidates, type BgeM3Dtype } from '../model/model-files.js';
import { findHeadFile, headFileNames, type HeadName } from '../model/weights/linear-head.js';
import { downloadBlob, type DownloadOptions } from './downloader.js';
import { HubClient, HubHttpError, HubUnreachableError, type RepoListing } from './hub-client.js';
import { checkRepoPath, RepoCache, type CachedFileStatus } from './hub-cache.js';
import { DEFAULT_REVISION, resolveHubSettings, type HubOptions, type HubSettings } from './hub-settings.js';
import { planHeadFiles, planModelFiles, type LayoutPlan, type RepoView } from './layout-plan.js';
import { terminalProgress, type DownloadProgressCallback } from './progress.js';
import { classifySource, repoFolderName } from './repo-id.js';
import { FileVerifier, MANIFEST_NAME, type FileCheck, type VerifyTarget } from './verify.js';

/** Which files of a source to use: the options `BgeM3Model.load` and the CLI share. */
export interface ModelSourceOptions extends HubOptions {
  /**
   * Graph precision: `'fp32'` (default) → `onnx/model.onnx`, `'fp16'` → `onnx/model_fp16.onnx`,
   * `'q8'` → `onnx/model_quantized.onnx` (Xenova/bge-m3 naming; a root-level `model*.onnx` also
   * matches). `modelFile` overrides it.
   */
  dtype?: BgeM3Dtype;
  /**
   * The graph to load, relative to the model directory. Default: `onnx/model.onnx`, else `model.onnx`.
   * E.g. `onnx/model_quantized.onnx` for Xenova/bge-m3's int8 export. Overrides `dtype`.
   */
  modelFile?: string;
  /**
   * A hub repo id or directory to take `colbert_linear.pt` / `sparse_linear.pt` from when the model
   * lacks them, e.g. `{ dtype: 'q8', heads: 'BAAI/bge-m3' }` with source `'Xenova/bge-m3'`.
   */
  heads?: string;
  /**
   * Download progress (bytes, rate, ETA per file), and with `verify` hashing progress (events with
   * `phase: 'verify'`). Default: a progress line on stderr when it is a terminal.
   */
  onProgress?: DownloadProgressCallback;
  /**
   * Before loading, re-hash every file the load will use and compare it with the hash it was
   * recorded under, to catch files that changed on disk after the download (a flipped bit in
   * `model.onnx_data` otherwise loads and gives different, once NaN, vectors). Default false:
   * hashing BAAI/bge-m3's 2.2 GB `model.onnx_data` takes seconds on every load, and downloads are
   * already verified (sha256 / git blob sha1) before they enter the cache.
   *
   * - A hub cache file is checked against the name of the blob it links to (`blobs/<sha256>` for
   *   LFS files, `blobs/<git blob sha1>` for small files). A mismatch is a `CORRUPT_FILE` error that
   *   names the file, the blob, both hashes and the command that downloads it again
   *   (`npx bge-m3-rag verify <repo> --revision <commit> --repair`). Files this load downloaded
   *   were verified by the download and are not hashed twice.
   * - A local directory has no recorded hashes: files are checked against a `SHA256SUMS` manifest in
   *   the directory when there is one (`sha256sum`'s format, paths relative to the directory; a
   *   mismatch is `CORRUPT_FILE`). Files it does not list, or all files without a manifest, are not
   *   verified, and a `BGE_M3_RAG_UNVERIFIED` process warning says which (the load goes on).
   */
  verify?: boolean;
}

export interface ResolveSourceOptions extends ModelSourceOptions {
  /** Ask the hub for the revision's current commit even if the cache can serve it (the CLI's `download`). */
  refresh?: boolean;
  /** Transfer tuning (retries, stall timeout); mostly for tests. */
  download?: Pick<DownloadOptions, 'retries' | 'stallTimeoutMs' | 'retryDelayMs' | 'signal'>;
  /**
   * Verify with this verifier (implies `verify`): its `onChecked` gets every result and a corrupt
   * file is not thrown, and results are reused across calls (the CLI's `verify`, then `--repair`).
   */
  verifier?: FileVerifier;
  /**
   * Called with the required files a repo lacks, just before offline mode fails for them, and (with
   * `verify`) with those a directory lacks (the CLI's `verify`).
   */
  onMissing?: (repo: string, missing: string[]) => void;
}

/** One file fetched from the hub by a resolve. */
export interface DownloadedFile {
  repo: string;
  file: string;
  bytes: number;
}

export interface ResolvedModelSource {
  /** The directory to load: the source directory, or the snapshot folder in the hub cache. */
  dir: string;
  /** The graph chosen, relative to `dir` (undefined when `dir` is used as given). */
  modelFile?: string;
  /** Directories holding head files the model's own directory lacks (from the `heads` option). */
  headDirs: string[];
  /** For a repo source: the repo id and the commit used. */
  repo?: string;
  commit?: string;
  /** Files downloaded by this call (empty when everything came from the cache). */
  downloaded: DownloadedFile[];
  /**
   * Heads the graph needs (it returns hidden states) that neither the model nor a `heads` source
   * supplied: the model loads dense-only.
   */
  missingHeads: HeadName[];
  /** Why a cached snapshot was used although the hub was asked (it failed; the message says how). */
  fallbackReason?: string;
  /** With `verify`: the result for every file the load uses (`ok`, or `unverified` with the reason). */
  verified?: FileCheck[];
}

interface Context {
  settings: HubSettings;
  onProgress?: DownloadProgressCallback;
  /** The CLI command that would prefetch everything (for offline errors). */
  fetchCommand: string;
  /** Tells the user we wait for another process's download (terminal only). */
  onWait?: (file: string, owner: { pid?: number; host?: string }) => void;
  refresh: boolean;
  download: ResolveSourceOptions['download'];
  downloaded: DownloadedFile[];
  /** Set when a cached snapshot stood in for a failed hub request. */
  fallbackReason?: string;
  /** With `verify`: checks each file a view hands out. */
  verifier?: FileVerifier;
  onMissing?: ResolveSourceOptions['onMissing'];
}

/** A local directory: what exists is present. */
class DirectoryView implements RepoView {
  constructor(
    private readonly dir: string,
    private readonly verifier?: FileVerifier,
  ) {}
  status(path: string): CachedFileStatus {
    return existsSync(join(this.dir, ...path.split('/'))) ? 'present' : 'absent';
  }
  async fetch(path: string): Promise<string> {
    const local = join(this.dir, ...path.split('/'));
    await this.verifier?.check({ repo: this.dir, path, local, root: this.dir });
    return local;
  }
}

/** Nothing cached at all: every file unknown (so a plan lists what would be needed). */
class EmptyView implements RepoView {
  status(): CachedFileStatus {
    return 'unknown';
  }
  async fetch(path: string): Promise<string> {
    throw new Error(`unreachable: ${path} is never present in an empty view`);
  }
}

/** One commit's snapshot in the hub cache, with its `.no_exist` markers. */
class CacheView implements RepoView {
  constructor(
    private readonly cache: RepoCache,
    private readonly commit: string,
    private readonly verifier?: FileVerifier,
  ) {}
  status(path: string): CachedFileStatus {
    return this.cache.status(this.commit, path);
  }
  async fetch(path: string): Promise<string> {
    const local = this.cache.snapshotPath(this.commit, path);
    await this.verifier?.check(cacheTarget(this.cache, this.commit, path, local));
    return local;
  }
}

function cacheTarget(cache: RepoCache, commit: string, path: string, local: string): VerifyTarget {
  return { repo: cache.repo, path, local, root: cache.snapshotDir(commit), commit };
}

/** The hub at one commit: the listing says what exists; fetching downloads into the cache. */
class HubView implements RepoView {
  readonly checkedAbsent = new Set<string>();

  constructor(
    private readonly client: HubClient,
    private readonly cache: RepoCache,
    private readonly listing: RepoListing,
    private readonly ctx: Context,
  ) {}

  status(path: string): CachedFileStatus {
    if (this.listing.files.has(path)) return 'present';
    this.checkedAbsent.add(path);
    return 'absent';
  }

  async fetch(path: string): Promise<string> {
    const { commit } = this.listing;
    const verifier = this.ctx.verifier;
    // Content at a commit never changes: a file already in this snapshot needs no request.
    if (this.cache.status(commit, path) === 'present') {
      const local = this.cache.snapshotPath(commit, path);
      await verifier?.check(cacheTarget(this.cache, commit, path, local));
      return local;
    }
    const meta = await this.client.fileMetadata(this.cache.repo, commit, path);
    let fresh = false;
    if (!this.cache.hasBlob(meta.etag, meta.size)) {
      fresh = true;
      await downloadBlob(this.cache, meta, { repo: this.cache.repo, file: path }, {
        ...this.ctx.download,
        headersFor: (url, extra) => this.client.headersFor(url, extra),
        onProgress: this.ctx.onProgress,
        hubOrigin: new URL(this.ctx.settings.hubUrl).origin,
        relocate: async () => (await this.client.fileMetadata(this.cache.repo, commit, path)).location,
        onWait: this.ctx.onWait && ((owner) => this.ctx.onWait!(`${this.cache.repo} ${path}`, owner)),
      });
      this.ctx.downloaded.push({ repo: this.cache.repo, file: path, bytes: meta.size ?? 0 });
    }
    const local = await this.cache.linkSnapshot(commit, path, meta.etag);
    if (verifier) {
      // Just downloaded: verified before it entered blobs/. A blob cached earlier (another commit) is hashed.
      const target = cacheTarget(this.cache, commit, path, local);
      if (fresh) verifier.trust(target, meta.etag, this.cache.blobPath(meta.etag));
      else await verifier.check(target);
    }
    return local;
  }

  /** Records the files found absent as huggingface_hub does, so later offline runs know. */
  async markAbsences(): Promise<void> {
    for (const path of this.checkedAbsent) await this.cache.markAbsent(this.listing.commit, path);
  }
}

const isComplete = (plan: LayoutPlan) => plan.missing.length === 0 && plan.unknown.length === 0;

/**
 * Whether a cached snapshot may stand in after this hub failure, as in huggingface_hub: an
 * unreachable hub or any HTTP error (5xx, 401/403, a repo it will not show) except the answers that
 * say the revision or file does not exist.
 */
function cacheMayServe(e: unknown): e is HubUnreachableError | HubHttpError {
  return e instanceof HubUnreachableError || (e instanceof HubHttpError && e.kind === 'other');
}

/**
 * Resolves a repo to its snapshot folder: from the cache alone when it knows every file the plan
 * needs, else from the hub (unless offline). If the hub cannot be reached but the cache has every
 * required file, the cache is used.
 */
async function resolveRepo(
  repo: string,
  ctx: Context,
  settings: HubSettings,
  planner: (view: RepoView) => Promise<LayoutPlan>,
  what: string,
): Promise<{ dir: string; plan: LayoutPlan; commit: string }> {
  const cache = new RepoCache(settings.cacheDir, repo);
  const cachedCommit = cache.commitFor(settings.revision);
  let cached: { dir: string; plan: LayoutPlan; commit: string } | undefined;
  if (cachedCommit && existsSync(cache.snapshotDir(cachedCommit))) {
    cached = { dir: cache.snapshotDir(cachedCommit), plan: await planner(new CacheView(cache, cachedCommit, ctx.verifier)), commit: cachedCommit };
    if (isComplete(cached.plan) && !(ctx.refresh && !settings.offline)) return cached;
  }
  const usable = cached && cached.plan.missing.length === 0 ? cached : undefined;
  if (settings.offline) {
    if (usable) return usable;
    const plan = cached?.plan ?? (await planner(new EmptyView()));
    ctx.onMissing?.(repo, plan.missing.length ? plan.missing : [`the files of ${what}`]);
    throw offlineError(repo, settings, plan, what, ctx.fetchCommand);
  }
  const client = new HubClient(settings);
  let listing: RepoListing;
  let plan: LayoutPlan;
  try {
    listing = await client.listRepo(repo, settings.revision);
    const view = new HubView(client, cache, listing, ctx);
    plan = await planner(view);
    await view.markAbsences();
  } catch (e) {
    if (usable && cacheMayServe(e)) {
      ctx.fallbackReason = `${repo}: ${e.message} Using the cached snapshot ${usable.commit.slice(0, 12)} instead.`;
      return usable;
    }
    throw e;
  }
  if (plan.missing.length > 0) throw missingOnHub(repo, settings.revision, listing, plan, what);
  // Only now that every file of the commit is in the cache may the revision point at it: a ref
  // written earlier would hide a complete older snapshot behind an interrupted download.
  await cache.writeRef(settings.revision, listing.commit);
  return { dir: cache.snapshotDir(listing.commit), plan, commit: listing.commit };
}

function offlineError(repo: string, settings: HubSettings, plan: LayoutPlan, what: string, fetchCommand: string): BgeM3Error {
  const missing = plan.missing.length ? plan.missing : [`the files of ${what}`];
  return new BgeM3Error(
    'MISSING_FILE',
    `Offline mode (offline: true or HF_HUB_OFFLINE=1) and the hub cache ${settings.cacheDir} lacks ${repo} (revision ${settings.revision}) files: ` +
      `${missing.join('; ')}. To fetch them, run \`${fetchCommand}\` on a machine with network and copy the ${repoFolderName(repo)} ` +
      `folder (and that of any heads repo) from its cache into ${settings.cacheDir}; or allow network access (offline: false, unset HF_HUB_OFFLINE).`,
  );
}

/** The `bge-m3-rag download` command that prefetches what this resolve needs. */
function downloadCommand(source: ReturnType<typeof classifySource>, options: ResolveSourceOptions, dtype: BgeM3Dtype): string {
  const args = ['npx bge-m3-rag download'];
  if (source.kind === 'repo') {
    args.push(source.repo);
    if (options.modelFile === undefined && dtype !== 'fp32') args.push(`--dtype ${dtype}`);
    if (options.revision && options.revision !== DEFAULT_REVISION) args.push(`--revision ${options.revision}`);
    if (options.heads) args.push(`--heads ${options.heads}`);
  } else if (options.heads) {
    args.push(options.heads); // a local model taking its heads from a repo: fetch that repo
  }
  if (options.cacheDir) args.push(`--cache-dir ${options.cacheDir}`);
  return args.join(' ');
}

function missingOnHub(repo: string, revision: string, listing: RepoListing, plan: LayoutPlan, what: string): BgeM3Error {
  const graphs = [...listing.files].filter((f) => f.endsWith('.onnx'));
  const hint = plan.graph
    ? ''
    : ` ONNX graphs in the repo: ${graphs.length ? graphs.join(', ') : 'none'}.` +
      (graphs.length ? ' Choose another dtype, or pass modelFile.' : ' Use a repo with an ONNX export, e.g. BAAI/bge-m3.');
  return new BgeM3Error(
    'MISSING_FILE',
    `${repo} (revision ${revision}, commit ${listing.commit.slice(0, 12)}) lacks ${what === 'the model' ? 'files the model needs' : `the ${what}`}: ${plan.missing.join('; ')}.${hint}`,
  );
}

async function resolveHeads(heads: string, needed: HeadName[], ctx: Context): Promise<string> {
  const source = classifySource(heads, 'heads');
  if (source.kind === 'directory') {
    const lacking = needed.filter((h) => !findHeadFile(h, [source.dir]));
    if (lacking.length === needed.length) {
      throw new BgeM3Error(
        'MISSING_FILE',
        `The heads directory ${source.dir} has none of ${needed.flatMap((h) => headFileNames(h)).join(', ')}; pass a folder or repo (e.g. "BAAI/bge-m3") that has them.`,
      );
    }
    for (const h of needed) {
      const local = findHeadFile(h, [source.dir]);
      if (local) await ctx.verifier?.check({ repo: source.dir, path: basename(local), local, root: source.dir });
    }
    return source.dir;
  }
  // The `revision` option names the model repo's revision; the heads repo is taken at its default branch.
  const settings = { ...ctx.settings, revision: DEFAULT_REVISION };
  const r = await resolveRepo(source.repo, ctx, settings, (view) => planHeadFiles(view, needed), `head files (${needed.join(', ')})`);
  return r.dir;
}

/**
 * Resolves `source` (a local directory or a hub repo id; default `BAAI/bge-m3`) to local files,
 * downloading what the cache lacks. See {@link ResolveSourceOptions}.
 */
export async function resolveModelSource(source = 'BAAI/bge-m3', options: ResolveSourceOptions = {}): Promise<ResolvedModelSource> {
  const dtype = checkDtype(options.dtype);
  const candidates = graphCandidates({ modelFile: options.modelFile, dtype });
  if (options.modelFile !== undefined && classifySourceQuiet(source) === 'repo') {
    // A repo's graph path becomes a path in the hub cache (snapshots/, .no_exist/): it must stay inside.
    try {
      checkRepoPath(candidates[0]!, 'The modelFile option', 'INVALID_ARGUMENT');
    } catch (e) {
      throw new BgeM3Error('INVALID_ARGUMENT', `${(e as Error).message} Pass the graph's path inside the repo, e.g. "onnx/model.onnx".`);
    }
  }
  if (options.heads !== undefined && (typeof options.heads !== 'string' || options.heads.length === 0)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `heads must be a hub repo id (e.g. "BAAI/bge-m3") or a directory; got ${JSON.stringify(options.heads)}.`);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new BgeM3Error('INVALID_ARGUMENT', `onProgress must be a function; got ${typeof options.onProgress}.`);
  }
  if (options.verify !== undefined && typeof options.verify !== 'boolean') {
    throw new BgeM3Error('INVALID_ARGUMENT', `verify must be true or false; got ${typeof options.verify}.`);
  }
  const src = classifySource(source);
  const downloaded: DownloadedFile[] = [];
  // The context (and the hub settings) is built lazily: a plain directory never needs the hub.
  const terminal = options.onProgress ? undefined : terminalProgress();
  let modelCommit: string | undefined;
  const verifier =
    options.verifier ??
    (options.verify
      ? new FileVerifier({ onProgress: options.onProgress ?? terminal, repairHint: (check) => repairHint(check, src, options, dtype, modelCommit) })
      : undefined);
  let context: Context | undefined;
  const ctx = (): Context => (context ??= {
    settings: resolveHubSettings(options),
    onProgress: options.onProgress ?? terminal,
    fetchCommand: downloadCommand(src, options, dtype),
    onWait: terminal && ((file, owner) => process.stderr.write(`${file}: waiting for process ${owner.pid ?? '?'}${owner.host ? ` on ${owner.host}` : ''}, which is downloading it\n`)),
    refresh: options.refresh ?? false,
    download: options.download,
    downloaded,
    verifier,
    onMissing: options.onMissing,
  });
  const finish = (result: ResolvedModelSource): ResolvedModelSource => {
    if (!verifier) return result;
    const checks = verifier.checks;
    if (!options.verifier) warnUnverified(checks);
    return { ...result, verified: checks };
  };
  if (src.kind === 'directory') {
    if (!options.heads) {
      // Only to know which files the load will use: the loader picks the same ones.
      const plan = verifier ? await planModelFiles(new DirectoryView(src.dir, verifier), candidates) : undefined;
      if (plan?.missing.length) options.onMissing?.(src.dir, plan.missing);
      const modelFile = plan?.graph;
      return finish({ dir: src.dir, ...(modelFile ? { modelFile } : {}), headDirs: [], downloaded, missingHeads: [] });
    }
    const plan = await planModelFiles(new DirectoryView(src.dir, verifier), candidates);
    if (verifier && plan.missing.length) options.onMissing?.(src.dir, plan.missing);
    // A directory that lacks the graph or tokenizer is reported by the loader, with its own message.
    if (plan.missing.length > 0 || !plan.needsHeads || plan.missingHeads.length === 0) {
      return finish({ dir: src.dir, modelFile: plan.graph, headDirs: [], downloaded, missingHeads: [] });
    }
    const headsDir = await resolveHeads(options.heads, plan.missingHeads, ctx());
    return finish({ dir: src.dir, modelFile: plan.graph, headDirs: [headsDir], downloaded, missingHeads: [], fallbackReason: context?.fallbackReason });
  }
  const c = ctx();
  const r = await resolveRepo(src.repo, c, c.settings, (view) => planModelFiles(view, candidates), 'the model');
  modelCommit = r.commit;
  const wantsHeads = r.plan.needsHeads && r.plan.missingHeads.length > 0;
  const headDirs = options.heads && wantsHeads ? [await resolveHeads(options.heads, r.plan.missingHeads, c)] : [];
  const missingHeads = wantsHeads && !options.heads ? [...r.plan.missingHeads] : [];
  return finish({ dir: r.dir, modelFile: r.plan.graph, headDirs, repo: src.repo, commit: r.commit, downloaded, missingHeads, fallbackReason: c.fallbackReason });
}

/** A word for a shell command line, quoted when it needs to be. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./~-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The CLI flags that make `verify` / `download` choose the files this resolve chose. */
function layoutFlags(options: ResolveSourceOptions, dtype: BgeM3Dtype): string {
  const args: string[] = [];
  if (options.modelFile === undefined && dtype !== 'fp32') args.push(`--dtype ${dtype}`);
  if (options.heads) args.push(`--heads ${shellWord(options.heads)}`);
  if (options.cacheDir) args.push(`--cache-dir ${shellWord(options.cacheDir)}`);
  return args.map((a) => ` ${a}`).join('');
}

/** How to repair a corrupt hub cache file: the `verify --repair` command, or deleting the blob and downloading again. */
function repairHint(check: FileCheck, src: ReturnType<typeof classifySource>, options: ResolveSourceOptions, dtype: BgeM3Dtype, modelCommit: string | undefined): string {
  const flags = layoutFlags(options, dtype);
  if (src.kind === 'repo') {
    const commit = check.repo === src.repo ? check.commit : modelCommit;
    const revision = commit ?? (options.revision && options.revision !== DEFAULT_REVISION ? options.revision : undefined);
    const rev = revision ? ` --revision ${shellWord(revision)}` : '';
    return (
      `To repair it, run \`npx bge-m3-rag verify ${src.repo}${rev}${flags} --repair\` (it deletes the corrupt blob and downloads the file again), ` +
      `or delete ${check.blob} and run \`npx bge-m3-rag download ${src.repo}${rev}${flags}\`.`
    );
  }
  return (
    `To repair it, run \`npx bge-m3-rag verify ${shellWord(src.dir)}${flags} --repair\` (it deletes the corrupt blob and downloads the file again), ` +
    `or delete ${check.blob} and load again with network access.`
  );
}

/** `verify: true` promised a check: say which files had no recorded hash to check against. */
function warnUnverified(checks: FileCheck[]): void {
  const unverified = checks.filter((c) => c.status === 'unverified');
  if (unverified.length === 0) return;
  const all = unverified.length === checks.length;
  const dirs = [...new Set(unverified.filter((c) => c.commit === undefined).map((c) => c.root))];
  const byReason = new Map<string, string[]>();
  for (const c of unverified) {
    const reason = c.reason ?? 'no recorded hash';
    byReason.set(reason, [...(byReason.get(reason) ?? []), c.path]);
  }
  process.emitWarning(
    `bge-m3-rag: verify: ${all ? 'nothing could be verified' : `${unverified.length} of ${checks.length} files could not be verified`}: ` +
      [...byReason].map(([reason, paths]) => `${paths.join(', ')}: ${reason}`).join('; ') +
      '. The model loads as it is.' +
      (dirs.length ? ` To have a local directory checked, write a ${MANIFEST_NAME} manifest in it, e.g. \`cd ${shellWord(dirs[0]!)} && sha256sum onnx/* *.json *.pt > ${MANIFEST_NAME}\`, while its files are known to be good.` : ''),
    { code: 'BGE_M3_RAG_UNVERIFIED' },
  );
}

export interface RefetchOptions extends HubOptions {
  onProgress?: DownloadProgressCallback;
  /** Records the downloaded files as verified (the CLI's `verify --repair`). */
  verifier?: FileVerifier;
  download?: ResolveSourceOptions['download'];
}

/**
 * Downloads `paths` of `repo` at `commit` into the cache again, for files whose blob was deleted
 * (`verify --repair`). Files still present in the snapshot are left alone.
 */
export async function refetchFiles(repo: string, commit: string, paths: readonly string[], options: RefetchOptions = {}): Promise<DownloadedFile[]> {
  const settings = resolveHubSettings({ ...options, revision: commit });
  if (settings.offline) {
    throw new BgeM3Error(
      'DOWNLOAD_FAILED',
      `Offline mode (offline: true or HF_HUB_OFFLINE=1): cannot download ${repo} ${paths.join(', ')} again. Unset HF_HUB_OFFLINE, or copy the files from a good cache.`,
    );
  }
  const ctx: Context = {
    settings,
    onProgress: options.onProgress ?? terminalProgress(),
    fetchCommand: `npx bge-m3-rag download ${repo} --revision ${commit}`,
    refresh: false,
    download: options.download,
    downloaded: [],
    verifier: options.verifier,
  };
  const client = new HubClient(settings);
  const cache = new RepoCache(settings.cacheDir, repo);
  const listing = await client.listRepo(repo, commit);
  const view = new HubView(client, cache, listing, ctx);
  for (const path of paths) {
    if (!listing.files.has(path)) {
      throw new BgeM3Error('MISSING_FILE', `${repo} at commit ${commit.slice(0, 12)} has no file ${path} on the hub (${settings.hubUrl}), so it cannot be downloaded again.`);
    }
    await view.fetch(path);
  }
  return ctx.downloaded;
}

/** `'repo'` if `source` will be resolved as a hub repo (errors are left to `classifySource` later). */
function classifySourceQuiet(source: string): 'repo' | 'directory' | undefined {
  try {
    return classifySource(source).kind;
  } catch {
    return undefined;
  }
}
