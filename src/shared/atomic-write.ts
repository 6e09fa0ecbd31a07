/**
 * Atomic file replacement, the one way this package writes a file that others read (saved indexes,
 * hub-cache refs): the bytes go to a temporary file in the same directory, which is fsynced and
 * renamed over the target, then the directory is fsynced; a crash, a full disk or an abort leaves
 * the previous file as it was.
 *
 * Temporary files are named `.<name>.<host>.<pid>.<random>.tmp` so that leftovers of a process
 * killed mid-write can be removed safely later ({@link removeStaleTempFiles}): only this host's,
 * only a dead pid's, never this process's own.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

let cachedHostTag: string | undefined;

/**
 * 8 hex digits naming where a temporary file's `<pid>` means something: a hash of the host name,
 * the machine id (if readable) and the PID namespace (if readable). Two processes with the same tag
 * share one PID space, so a dead `<pid>` with this tag is a writer that can no longer finish; a
 * file with another tag (another machine on a shared file system, another container) is never
 * touched. Stable across reboots of the same machine, so leftovers of a crash are still cleaned.
 */
export function hostTag(): string {
  if (cachedHostTag === undefined) {
    const parts = [hostname()];
    try {
      parts.push(readFileSync('/etc/machine-id', 'utf8').trim());
    } catch {
      parts.push('');
    }
    try {
      parts.push(readlinkSync('/proc/self/ns/pid'));
    } catch {
      parts.push('');
    }
    cachedHostTag = createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 8);
  }
  return cachedHostTag;
}

function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${hostTag()}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive but someone else's. Anything but "no such process" counts as alive.
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes the temporary files that saves of `path` killed mid-write left behind: names of the form
 * `.<name>.<this host's tag>.<pid>.<random>.tmp` whose `<pid>` is not this process and not alive.
 * Best effort (errors are ignored); returns the names removed.
 */
export async function removeStaleTempFiles(path: string): Promise<string[]> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.${hostTag()}.`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^([1-9]\d{0,9})\.[0-9a-f]{12}\.tmp$/.exec(name.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    try {
      if (!(await lstat(join(dir, name))).isFile()) continue;
      await unlink(join(dir, name));
      removed.push(name);
    } catch {
      /* gone already, or not ours to remove */
    }
  }
  return removed;
}

export interface AtomicWriteOptions {
  /**
   * Name the temporary file after this path (same directory) instead of `path`: for files whose
   * names change on every write (a killed write's leftovers are then still found by this name).
   */
  tempBase?: string;
}

/**
 * Replaces `path` with what `write` writes to the handle it is given (temp file, fsync, rename,
 * directory fsync). Stale temporary files of earlier writes of `path` are removed first. If `write`
 * throws, the temporary file is removed and `path` is untouched.
 */
export async function writeAtomically(path: string, write: (fh: FileHandle) => Promise<void>, options: AtomicWriteOptions = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const base = options.tempBase ?? path;
  await removeStaleTempFiles(base);
  const tmp = tempPath(base);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx');
    await write(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
  // Make the rename itself durable; not every platform can fsync a directory.
  try {
    const dir = await open(dirname(path), 'r');
    await dir.sync().catch(() => {});
    await dir.close();
  } catch {
    /* best effort */
  }
}
