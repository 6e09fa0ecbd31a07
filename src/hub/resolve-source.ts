/**
 * Turns `BgeM3Model.load`'s `source` into a local directory: a directory is used as it is; a hub
 * repo id is served from the hub cache when the cache holds everything the layout needs (no network
 * at all), and otherwise fetched, file by file, into that cache.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
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
  /** Download progress (bytes, rate, ETA per file). Default: a progress line on stderr when it is a terminal. */
  onProgress?: DownloadProgressCallback;
}

export interface ResolveSourceOptions extends ModelSourceOptions {
  /** Ask the hub for the revision's current commit even if the cache can serve it (the CLI's `download`). */
  refresh?: boolean;
  /** Transfer tuning (retries, stall timeout); mostly for tests. */
  download?: Pick<DownloadOptions, 'retries' | 'stallTimeoutMs' | 'retryDelayMs' | 'signal'>;
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
}

/** A local directory: what exists is present. */
class DirectoryView implements RepoView {
  constructor(private readonly dir: string) {}
  status(path: string): CachedFileStatus {
    return existsSync(join(this.dir, ...path.split('/'))) ? 'present' : 'absent';
  }
  async fetch(path: string): Promise<string> {
    return join(this.dir, ...path.split('/'));
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
  ) {}
  status(path: string): CachedFileStatus {
    return this.cache.status(this.commit, path);
  }
  async fetch(path: string): Promise<string> {
    return this.cache.snapshotPath(this.commit, path);
  }
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
    // Content at a commit never changes: a file already in this snapshot needs no request.
    if (this.cache.status(commit, path) === 'present') return this.cache.snapshotPath(commit, path);
    const meta = await this.client.fileMetadata(this.cache.repo, commit, path);
    if (!this.cache.hasBlob(meta.etag, meta.size)) {
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
    return this.cache.linkSnapshot(commit, path, meta.etag);
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
    cached = { dir: cache.snapshotDir(cachedCommit), plan: await planner(new CacheView(cache, cachedCommit)), commit: cachedCommit };
    if (isComplete(cached.plan) && !(ctx.refresh && !settings.offline)) return cached;
  }
  const usable = cached && cached.plan.missing.length === 0 ? cached : undefined;
  if (settings.offline) {
    if (usable) return usable;
    throw offlineError(repo, settings, cached?.plan ?? (await planner(new EmptyView())), what, ctx.fetchCommand);
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
  const src = classifySource(source);
  const downloaded: DownloadedFile[] = [];
  // The context (and the hub settings) is built lazily: a plain directory never needs the hub.
  const terminal = options.onProgress ? undefined : terminalProgress();
  let context: Context | undefined;
  const ctx = (): Context => (context ??= {
    settings: resolveHubSettings(options),
    onProgress: options.onProgress ?? terminal,
    fetchCommand: downloadCommand(src, options, dtype),
    onWait: terminal && ((file, owner) => process.stderr.write(`${file}: waiting for process ${owner.pid ?? '?'}${owner.host ? ` on ${owner.host}` : ''}, which is downloading it\n`)),
    refresh: options.refresh ?? false,
    download: options.download,
    downloaded,
  });
  if (src.kind === 'directory') {
    if (!options.heads) return { dir: src.dir, headDirs: [], downloaded, missingHeads: [] };
    const plan = await planModelFiles(new DirectoryView(src.dir), candidates);
    // A directory that lacks the graph or tokenizer is reported by the loader, with its own message.
    if (plan.missing.length > 0 || !plan.needsHeads || plan.missingHeads.length === 0) {
      return { dir: src.dir, modelFile: plan.graph, headDirs: [], downloaded, missingHeads: [] };
    }
    const headsDir = await resolveHeads(options.heads, plan.missingHeads, ctx());
    return { dir: src.dir, modelFile: plan.graph, headDirs: [headsDir], downloaded, missingHeads: [], fallbackReason: context?.fallbackReason };
  }
  const c = ctx();
  const r = await resolveRepo(src.repo, c, c.settings, (view) => planModelFiles(view, candidates), 'the model');
  const wantsHeads = r.plan.needsHeads && r.plan.missingHeads.length > 0;
  const headDirs = options.heads && wantsHeads ? [await resolveHeads(options.heads, r.plan.missingHeads, c)] : [];
  const missingHeads = wantsHeads && !options.heads ? [...r.plan.missingHeads] : [];
  return { dir: r.dir, modelFile: r.plan.graph, headDirs, repo: src.repo, commit: r.commit, downloaded, missingHeads, fallbackReason: c.fallbackReason };
}

/** `'repo'` if `source` will be resolved as a hub repo (errors are left to `classifySource` later). */
function classifySourceQuiet(source: string): 'repo' | 'directory' | undefined {
  try {
    return classifySource(source).kind;
  } catch {
    return undefined;
  }
}
