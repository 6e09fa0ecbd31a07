/**
 * Re-checks model files already on disk against the hash they were recorded under, to catch files
 * that changed after they were downloaded (a bit flip in `model.onnx_data` loads fine and gives
 * wrong, once NaN, vectors):
 * - a file in the hub cache is a snapshot entry linking to `blobs/<etag>`; the etag is the hash the
 *   downloader checked before the blob entered the cache: sha256 (64 hex, LFS files) or the git blob
 *   sha1 `sha1("blob <size>\0" + bytes)` (40 hex, small files). Where symlinks were not allowed the
 *   entry is a hard link to the blob, found by its inode;
 * - a plain local directory has no recorded hashes, unless it holds a `SHA256SUMS` manifest
 *   (`sha256sum`'s output format, paths relative to the directory): listed files are checked against
 *   it, and anything else is reported as unverified (never as good).
 *
 * Hashing streams the file through the downloader's own hashing code (`newVerifier`/`hashPrefix`):
 * memory stays at one chunk whatever the size, and progress is reported with `phase: 'verify'`.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BgeM3Error } from '../errors.js';
import { hashPrefix, newVerifier } from './downloader.js';
import { BLOB_ETAG, COMMIT_HASH, type RepoCache } from './hub-cache.js';
import { RateMeter, type DownloadProgressCallback } from './progress.js';

/** The manifest a local model directory may hold: `sha256sum`'s output, paths relative to the directory. */
export const MANIFEST_NAME = 'SHA256SUMS';

/** A file to verify. */
export interface VerifyTarget {
  /** The hub repo id (hub cache), or the directory (a local source), the file belongs to. */
  repo: string;
  /** The file's path inside the repo or directory, with `/` separators, e.g. `onnx/model.onnx_data`. */
  path: string;
  /** The file on disk (a snapshot entry, or a file of the directory). */
  local: string;
  /** The snapshot folder or the directory: where a `SHA256SUMS` manifest is looked for. */
  root: string;
  /** The commit of the snapshot, for a hub cache file. */
  commit?: string;
}

/** `ok`: matches its recorded hash; `corrupt`: does not; `missing`: gone (a link whose blob was deleted); `unverified`: no recorded hash. */
export type FileStatus = 'ok' | 'corrupt' | 'missing' | 'unverified';

/** The result of verifying one file. */
export interface FileCheck extends VerifyTarget {
  status: FileStatus;
  /** The file's size. */
  bytes: number;
  /** The hash compared: sha256, or the git blob sha1. */
  algorithm?: 'sha256' | 'git-sha1';
  /** The recorded hash (the blob's name, or the manifest's entry). */
  expected?: string;
  /** The hash of the bytes on disk now. */
  actual?: string;
  /** Where `expected` comes from: the blob's name in the hub cache, or the directory's manifest. */
  recordedBy?: 'blob' | 'manifest';
  /** The blob in the hub cache (`…/blobs/<etag>`). */
  blob?: string;
  /** The manifest file, when `recordedBy` is `'manifest'`. */
  manifest?: string;
  /** `true` when the file was downloaded (and so verified) by this run rather than hashed again. */
  downloaded?: boolean;
  /** Why a file is `missing` or `unverified`. */
  reason?: string;
}

interface Recorded {
  algorithm: 'sha256' | 'git-sha1';
  expected: string;
  recordedBy: 'blob' | 'manifest';
  blob?: string;
  manifest?: string;
}

type Manifest = { path: string; entries: Map<string, string> };

/** Parses a `SHA256SUMS` file (`<sha256>  <path>` or `<sha256> *<path>` per line; `#` comments). */
export function parseManifest(path: string, text: string): Manifest {
  const entries = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) {
      throw new BgeM3Error(
        'CORRUPT_FILE',
        `${path} line ${i + 1} is not "<sha256>  <path>" (sha256sum's format): ${JSON.stringify(line.slice(0, 120))}. ` +
          `Write it with e.g. \`cd <model dir> && sha256sum onnx/* *.json *.pt > ${MANIFEST_NAME}\`.`,
      );
    }
    entries.set(m[2]!.replace(/\\/g, '/').replace(/^(\.\/)+/, ''), m[1]!.toLowerCase());
  });
  return { path, entries };
}

/** The hub cache blob a snapshot entry is: its symlink target, or (hard-link fallback) the blob sharing its inode. */
function blobOf(local: string, st: Stats): { etag: string; blob: string } | undefined {
  let real: string;
  try {
    real = realpathSync(local);
  } catch {
    return undefined;
  }
  if (BLOB_ETAG.test(basename(real)) && basename(dirname(real)) === 'blobs') return { etag: basename(real), blob: real };
  if (st.nlink < 2) return undefined;
  // `<root>/snapshots/<commit>/<path>` hard-linked to `<root>/blobs/<etag>`.
  for (let d = dirname(local), up = 0; up < 32 && dirname(d) !== d; d = dirname(d), up++) {
    if (!COMMIT_HASH.test(basename(d)) || basename(dirname(d)) !== 'snapshots') continue;
    const blobs = join(dirname(dirname(d)), 'blobs');
    let names: string[];
    try {
      names = readdirSync(blobs);
    } catch {
      return undefined;
    }
    for (const name of names) {
      if (!BLOB_ETAG.test(name)) continue;
      try {
        const b = statSync(join(blobs, name));
        if (b.ino === st.ino && b.dev === st.dev) return { etag: name, blob: join(blobs, name) };
      } catch {
        // Deleted meanwhile.
      }
    }
    return undefined;
  }
  return undefined;
}

/** Whether the file is (or links into) a hub cache snapshot: then a missing blob link is what to report. */
function inSnapshot(local: string): boolean {
  for (let d = dirname(local), up = 0; up < 32 && dirname(d) !== d; d = dirname(d), up++) {
    if (COMMIT_HASH.test(basename(d)) && basename(dirname(d)) === 'snapshots') return true;
  }
  return false;
}

/** An identity of the bytes a path points at, so a result is reused only for the same, unchanged file. */
function identity(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

export interface FileVerifierOptions {
  /** Hashing progress (`phase: 'verify'`), as downloads report theirs. */
  onProgress?: DownloadProgressCallback;
  /**
   * Each new result, as it is known. When given, a corrupt file is reported here and not thrown
   * (the CLI lists every file); otherwise {@link FileVerifier.check} throws `CORRUPT_FILE`.
   */
  onChecked?: (check: FileCheck) => void;
  /** How to repair a corrupt hub cache file (the commands that download it again), for the error. */
  repairHint?: (check: FileCheck) => string;
}

/**
 * Verifies files one at a time, remembering each result: a file checked before (same inode, size
 * and mtime) is not hashed again, and a file this run downloaded is recorded as verified.
 */
export class FileVerifier {
  private readonly results = new Map<string, { id: string; check: FileCheck }>();
  private readonly manifests = new Map<string, Manifest | null>();

  constructor(private readonly options: FileVerifierOptions = {}) {}

  /** The latest result for every file checked so far. */
  get checks(): FileCheck[] {
    return [...this.results.values()].map((r) => r.check);
  }

  /** Records a file this run downloaded: the downloader verified it against `etag` just now. */
  trust(target: VerifyTarget, etag: string, blob: string): void {
    let st: Stats;
    try {
      st = statSync(target.local);
    } catch {
      return;
    }
    const algorithm = etag.length === 64 ? 'sha256' : 'git-sha1';
    const check: FileCheck = { ...target, status: 'ok', bytes: st.size, algorithm, expected: etag, actual: etag, recordedBy: 'blob', blob, downloaded: true };
    this.results.set(target.local, { id: identity(st), check });
    this.options.onChecked?.(check);
  }

  /**
   * Hashes `target.local` and compares it with its recorded hash. A corrupt file throws
   * `CORRUPT_FILE` (unless `onChecked` was given); an unverifiable one is only recorded.
   */
  async check(target: VerifyTarget): Promise<FileCheck> {
    let st: Stats | undefined;
    try {
      st = statSync(target.local);
    } catch {
      st = undefined;
    }
    const prior = this.results.get(target.local);
    if (st && prior && prior.id === identity(st)) return prior.check;
    const check = st ? await this.hash(target, st) : missing(target);
    this.results.set(target.local, { id: st ? identity(st) : 'missing', check });
    this.options.onChecked?.(check);
    if (check.status === 'corrupt' && !this.options.onChecked) throw corruptFileError(check, this.options.repairHint?.(check));
    return check;
  }

  private manifest(root: string): Manifest | undefined {
    if (!this.manifests.has(root)) {
      const path = join(root, MANIFEST_NAME);
      this.manifests.set(root, existsSync(path) ? parseManifest(path, readFileSync(path, 'utf8')) : null);
    }
    return this.manifests.get(root) ?? undefined;
  }

  private recorded(target: VerifyTarget, st: Stats): Recorded | string {
    const b = blobOf(target.local, st);
    if (b) {
      const algorithm = b.etag.length === 64 ? 'sha256' : 'git-sha1';
      return { algorithm, expected: b.etag, recordedBy: 'blob', blob: b.blob };
    }
    const manifest = this.manifest(target.root);
    const expected = manifest?.entries.get(target.path);
    if (manifest && expected) return { algorithm: 'sha256', expected, recordedBy: 'manifest', manifest: manifest.path };
    if (inSnapshot(target.local)) return 'a snapshot entry that is not a link to a blob of the hub cache (copied in by hand?), so there is no recorded hash';
    return manifest
      ? `not listed in ${manifest.path}`
      : `a local directory has no recorded hashes (no ${MANIFEST_NAME} manifest in ${target.root})`;
  }

  private async hash(target: VerifyTarget, st: Stats): Promise<FileCheck> {
    const rec = this.recorded(target, st);
    if (typeof rec === 'string') return { ...target, status: 'unverified', bytes: st.size, reason: rec };
    const verifier = newVerifier(rec.expected, st.size);
    if (verifier.kind === 'none') return { ...target, status: 'unverified', bytes: st.size, reason: `the recorded hash ${rec.expected} has an unknown shape` };
    const report = this.reporter(target, st.size);
    await hashPrefix(target.local, st.size, verifier.hash, report);
    if (st.size === 0) report(0); // hashPrefix reads nothing: still end the progress
    const actual = verifier.hash.digest('hex');
    return { ...target, ...rec, status: actual === rec.expected ? 'ok' : 'corrupt', bytes: st.size, actual };
  }

  private reporter(target: VerifyTarget, total: number): (hashed: number) => void {
    const onProgress = this.options.onProgress;
    if (!onProgress) return () => {};
    const rate = new RateMeter();
    let last = 0;
    const emit = (loaded: number, done: boolean) => {
      const now = performance.now();
      rate.add(loaded, now);
      const bps = rate.bytesPerSecond;
      onProgress({
        phase: 'verify',
        repo: target.repo,
        file: target.path,
        loaded,
        total,
        bytesPerSecond: bps,
        etaSeconds: bps > 0 ? (total - loaded) / bps : undefined,
        resumedFrom: 0,
        done,
      });
    };
    emit(0, false);
    return (hashed) => {
      const done = hashed >= total;
      const now = performance.now();
      if (!done && now - last < 100) return;
      last = now;
      emit(hashed, done);
    };
  }
}

function missing(target: VerifyTarget): FileCheck {
  let reason = 'the file is gone';
  try {
    if (lstatSync(target.local).isSymbolicLink()) reason = `it links to a blob that is gone (${realTarget(target.local)})`;
  } catch {
    // Not even the entry is there.
  }
  return { ...target, status: 'missing', bytes: 0, reason };
}

function realTarget(link: string): string {
  try {
    return join(dirname(link), readlinkSync(link));
  } catch {
    return link;
  }
}

const ALGORITHM_NAMES = { sha256: 'sha256', 'git-sha1': 'git blob sha1' } as const;

/** The `CORRUPT_FILE` error for a file whose bytes no longer match their recorded hash. */
export function corruptFileError(c: FileCheck, repairHint?: string): BgeM3Error {
  const algo = ALGORITHM_NAMES[c.algorithm ?? 'sha256'];
  if (c.recordedBy === 'manifest') {
    return new BgeM3Error(
      'CORRUPT_FILE',
      `${c.path} in ${c.root} does not match ${c.manifest}: its sha256 is ${c.actual}, the manifest records ${c.expected}. ` +
        'The file changed after the manifest was written (a failing disk or RAM, a bit flip, an edit); loading it would give wrong vectors. ' +
        `Restore it from a good copy (or, if it was changed on purpose, update ${MANIFEST_NAME}).`,
    );
  }
  return new BgeM3Error(
    'CORRUPT_FILE',
    `${c.repo} ${c.path} in the hub cache is corrupt: its blob ${c.blob} is named by the ${algo} its content had when it was downloaded and verified ` +
      `(expected ${c.expected}), but the content now hashes to ${c.actual}. The file changed on disk after the download (a failing disk or RAM, ` +
      'a bit flip, another program writing into the cache); loading it would give wrong (even NaN) vectors.' +
      (repairHint ? ` ${repairHint}` : ` Delete ${c.blob} and load again with network access to download it again.`),
  );
}

/** Every file of a cached snapshot (what `verify --all` checks), dangling links included. */
export function snapshotTargets(cache: RepoCache, commit: string): VerifyTarget[] {
  const root = cache.snapshotDir(commit);
  const out: VerifyTarget[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const local = join(dir, name);
      const path = prefix ? `${prefix}/${name}` : name;
      const st = lstatSync(local);
      if (st.isDirectory()) walk(local, path);
      else if (!name.endsWith('.tmp')) out.push({ repo: cache.repo, path, local, root, commit });
    }
  };
  walk(root, '');
  return out;
}

const LABELS: Record<FileStatus, string> = { ok: 'ok', corrupt: 'CORRUPT', missing: 'MISSING', unverified: 'UNVERIFIED' };

/**
 * One line per file, as `bge-m3-rag verify` prints it:
 * `ok         BAAI/bge-m3 onnx/model.onnx  sha256 <hash>`,
 * `CORRUPT    BAAI/bge-m3 onnx/model.onnx_data  sha256 expected <hash>, actual <hash>  blob <path>`,
 * `MISSING …  <reason>`, `UNVERIFIED …  <reason>`, `REPAIRED …  downloaded again, sha256 <hash>`.
 */
export function formatCheckLine(c: FileCheck): string {
  const label = c.downloaded ? 'REPAIRED' : LABELS[c.status];
  const algo = c.algorithm ? ALGORITHM_NAMES[c.algorithm] : '';
  const detail =
    c.downloaded
      ? `downloaded again and verified, ${algo} ${c.expected}`
      : c.status === 'ok'
        ? `${algo} ${c.expected}${c.recordedBy === 'manifest' ? ` (${MANIFEST_NAME})` : ''}`
        : c.status === 'corrupt'
          ? `${algo} expected ${c.expected}, actual ${c.actual}  ${c.recordedBy === 'manifest' ? `manifest ${c.manifest}` : `blob ${c.blob}`}`
          : (c.reason ?? '');
  return `${label.padEnd(10)} ${c.repo} ${c.path}  ${detail}`;
}
