/**
 * The Hugging Face hub cache, laid out exactly as Python's `huggingface_hub` lays it out, so a model
 * fetched by either is reused by the other:
 *
 * ```
 * <cacheDir>/models--BAAI--bge-m3/
 *   blobs/<etag>                      file contents; etag = sha256 (LFS files) or git blob sha1
 *   snapshots/<commit>/<path>         relative symlink to ../../blobs/<etag> (deeper for sub-folders)
 *   refs/<revision>                   the commit a branch or tag pointed at (no newline)
 *   .no_exist/<commit>/<path>         empty marker: the file is known to be absent at that commit
 * <cacheDir>/.locks/models--BAAI--bge-m3/<etag>.bge-m3-rag.lock
 * ```
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { BgeM3Error } from '../errors.js';
import { repoFolderName } from './repo-id.js';
import { writeAtomically } from '../shared/atomic-write.js';

/** A commit hash as the hub writes it. */
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** A blob's name: the etag the hub sends, a git blob sha1 (40 hex) or an LFS sha256 (64 hex). */
export const BLOB_ETAG = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** What the cache knows about one file of one commit. */
export type CachedFileStatus = 'present' | 'absent' | 'unknown';

/** A unique suffix for temporary names, so concurrent processes never write the same file. */
export function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Checks a repo-relative path before it becomes a path on disk (no absolute paths, no `..`). */
export function checkRepoPath(path: string, what: string, code: 'CORRUPT_FILE' | 'INVALID_ARGUMENT' = 'CORRUPT_FILE'): string {
  const parts = typeof path === 'string' ? path.split('/') : [];
  if (typeof path !== 'string' || path.length === 0 || path.startsWith('/') || /[\\\0]/.test(path) || /^[A-Za-z]:/.test(path) || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new BgeM3Error(code, `${what} names the file ${JSON.stringify(path)}, which is not a plain relative path inside the repository; refusing to use it.`);
  }
  return path;
}

/** A single path segment that is safe as a file name in the cache (no separators, not `.`/`..`). */
function checkName(name: string, what: string): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || /^[A-Za-z]:/.test(name)) {
    throw new BgeM3Error('CORRUPT_FILE', `${what} ${JSON.stringify(String(name).slice(0, 100))} is not a plain file name; refusing to use it as a path in the hub cache.`);
  }
  return name;
}


/** One repo's folder in the hub cache. */
export class RepoCache {
  /** `<cacheDir>/models--org--name`. */
  readonly root: string;

  constructor(
    readonly cacheDir: string,
    readonly repo: string,
  ) {
    this.root = join(cacheDir, repoFolderName(repo));
  }

  blobPath(etag: string): string {
    return join(this.root, 'blobs', checkName(etag, 'The blob etag'));
  }

  snapshotDir(commit: string): string {
    return join(this.root, 'snapshots', checkName(commit, 'The commit'));
  }

  snapshotPath(commit: string, path: string): string {
    return join(this.snapshotDir(commit), ...checkRepoPath(path, 'The hub cache lookup').split('/'));
  }

  lockPath(etag: string): string {
    // Python's filelock keeps `<etag>.lock` files forever; a name of our own never collides with them.
    return join(this.cacheDir, '.locks', repoFolderName(this.repo), `${checkName(etag, 'The blob etag')}.bge-m3-rag.lock`);
  }

  /** `.no_exist/<commit>/<path>`, huggingface_hub's marker of a file known to be absent. */
  private absentMarker(commit: string, path: string): string {
    return join(this.root, '.no_exist', checkName(commit, 'The commit'), ...checkRepoPath(path, 'The hub cache lookup').split('/'));
  }

  /** The commit `revision` resolves to in this cache: itself for a commit hash, else `refs/<revision>`. */
  commitFor(revision: string): string | undefined {
    if (COMMIT_HASH.test(revision)) return revision;
    const ref = join(this.root, 'refs', ...revision.split('/'));
    try {
      const commit = readFileSync(ref, 'utf8').trim();
      return COMMIT_HASH.test(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records `revision -> commit` (only when it changed: the cache may be read-only otherwise). */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit || this.commitFor(revision) === commit) return;
    await writeAtomically(join(this.root, 'refs', ...revision.split('/')), (fh) => fh.writeFile(commit));
  }

  /** `present` if the snapshot has the file (a dangling link is not), `absent` if marked so, else `unknown`. */
  status(commit: string, path: string): CachedFileStatus {
    if (existsSync(this.snapshotPath(commit, path))) return 'present';
    if (existsSync(this.absentMarker(commit, path))) return 'absent';
    return 'unknown';
  }

  /** Writes huggingface_hub's `.no_exist` marker: the file is known not to exist at this commit. */
  async markAbsent(commit: string, path: string): Promise<void> {
    const marker = this.absentMarker(commit, path);
    if (existsSync(marker)) return;
    await mkdir(dirname(marker), { recursive: true });
    await writeFile(marker, '');
  }

  /** Whether a complete blob is cached (size checked when known). */
  hasBlob(etag: string, size?: number): boolean {
    try {
      const st = statSync(this.blobPath(etag));
      return st.isFile() && (size === undefined || st.size === size);
    } catch {
      return false;
    }
  }

  /** Unfinished downloads of this blob left by earlier (crashed or interrupted) runs of this package. */
  async partials(etag: string): Promise<string[]> {
    const dir = join(this.root, 'blobs');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    // `<etag>.incomplete` (no suffix) is Python's, guarded by its own lock: leave it alone.
    return names.filter((n) => n.startsWith(`${etag}.`) && n.endsWith('.incomplete') && n !== `${etag}.incomplete`).map((n) => join(dir, n));
  }

  /**
   * Points `snapshots/<commit>/<path>` at `blobs/<etag>` with a relative symlink (what Python does),
   * replacing any stale entry atomically. Where symlinks are not allowed (Windows without developer
   * mode) a hard link, else a copy, stands in.
   */
  async linkSnapshot(commit: string, path: string, etag: string): Promise<string> {
    const dst = this.snapshotPath(commit, path);
    const blob = this.blobPath(etag);
    await mkdir(dirname(dst), { recursive: true });
    const tmp = `${dst}.${uniqueSuffix()}.tmp`;
    try {
      await symlink(relative(dirname(dst), blob), tmp);
    } catch {
      try {
        await link(blob, tmp);
      } catch {
        await copyFile(blob, tmp);
      }
    }
    try {
      await rename(tmp, dst);
    } catch (cause) {
      await unlink(tmp).catch(() => {});
      // Another process may have linked the same file a moment ago: fine if it points at our blob.
      if (!sameFile(dst, blob)) throw cause;
    }
    return dst;
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    lstatSync(a);
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.ino === sb.ino && sa.dev === sb.dev;
  } catch {
    return false;
  }
}
