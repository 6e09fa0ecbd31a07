/**
 * A cross-process lock file, so two processes loading the same model at once download each blob
 * only once: the second waits for the first and then finds the blob in the cache.
 *
 * Hand-written because Node has no `flock`, and Python's `filelock` scheme (which relies on it)
 * cannot be shared. The lock is an exclusively created file (`open(path, 'wx')`) holding the owner's
 * pid, host and a random token; the owner touches it every few seconds. A lock is broken only when
 * its owner is known dead (same host, pid gone) or, for an owner on another host (or an unreadable
 * lock), when it has not been touched for `staleMs`; a live owner on this host is never judged stale,
 * however long it takes. Breaking renames the lock aside first and checks it is still the one judged
 * stale; releasing removes the lock only if it still carries the owner's token. Correctness never
 * depends on the lock alone: every writer uses its own temporary file and only a file verified on
 * disk is renamed into the cache, so a lock race costs a duplicate download, not a corrupt cache.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { sleep } from '../shared/sleep.js';

export interface FileLockOptions {
  /** A lock untouched for this long is considered abandoned. Default 30 s. */
  staleMs?: number;
  /** How often the owner touches its lock. Default 5 s. */
  heartbeatMs?: number;
  /** How often a waiter looks again. Default 100 ms. */
  pollMs?: number;
  /** Checked while waiting: when it returns true the wait ends without taking the lock. */
  isDone?: () => boolean;
  /** Called once when the lock is found held by another live process. */
  onWait?: (owner: { pid?: number; host?: string }) => void;
  signal?: AbortSignal;
}

/** A held lock; `release()` is idempotent. */
export interface HeldLock {
  release(): Promise<void>;
}

interface LockOwner {
  pid?: number;
  host?: string;
  token?: string;
}

function parseOwner(text: string): LockOwner {
  try {
    const o = JSON.parse(text) as LockOwner;
    return o && typeof o === 'object' ? o : {};
  } catch {
    return {}; // Being written right now, or garbage: judged by its age alone.
  }
}

function readRaw(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readOwner(path: string): LockOwner {
  return parseOwner(readRaw(path) ?? '');
}

/** Whether a process with this pid runs on this machine. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The lock's content if it is abandoned, else undefined. An owner on this host is judged by its pid
 * alone (alive: never stale, however old the lock; dead: stale at once); an owner elsewhere, or an
 * unreadable lock, by the time since it was last touched.
 */
function staleContent(path: string, staleMs: number): string | undefined {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return undefined; // Gone already: the next attempt to create it decides.
  }
  const raw = readRaw(path);
  if (raw === undefined) return undefined;
  const owner = parseOwner(raw);
  if (owner.host === hostname() && typeof owner.pid === 'number' && Number.isInteger(owner.pid) && owner.pid > 0) {
    return isAlive(owner.pid) ? undefined : raw;
  }
  return Date.now() - mtimeMs > staleMs ? raw : undefined;
}

/**
 * Removes the lock at `path` only if it still holds `expected`: it is renamed aside first (atomic, so
 * no one else can take or break it meanwhile), then checked; a lock that changed in between (a new
 * owner took it) is put back.
 */
async function removeIf(path: string, expected: (raw: string) => boolean): Promise<void> {
  const aside = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.removing`;
  try {
    await rename(path, aside);
  } catch {
    return; // Gone already.
  }
  let raw: string;
  try {
    raw = await readFile(aside, 'utf8');
  } catch {
    raw = '';
  }
  if (!expected(raw)) {
    // Not the lock we meant: restore it unless someone has created a new one meanwhile.
    await link(aside, path).catch(() => {});
  }
  await unlink(aside).catch(() => {});
}

/**
 * Takes the lock at `path`, waiting while another live process holds it. Resolves to `undefined`
 * (without the lock) if `isDone()` becomes true while waiting.
 */
export async function acquireFileLock(path: string, options: FileLockOptions = {}): Promise<HeldLock | undefined> {
  const staleMs = options.staleMs ?? 30_000;
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  const pollMs = options.pollMs ?? 100;
  await mkdir(dirname(path), { recursive: true });
  let waited = false;
  for (;;) {
    options.signal?.throwIfAborted();
    if (options.isDone?.()) return undefined;
    const token = randomBytes(12).toString('hex');
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), token, since: new Date().toISOString() }));
      } finally {
        await fh.close();
      }
      return holdLock(path, token, heartbeatMs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const stale = staleContent(path, staleMs);
    if (stale !== undefined) {
      await removeIf(path, (raw) => raw === stale);
      continue;
    }
    if (!waited) {
      waited = true;
      options.onWait?.(readOwner(path));
    }
    await sleep(pollMs, options.signal);
  }
}

const isOwnedBy = (token: string) => (raw: string) => parseOwner(raw).token === token;

function holdLock(path: string, token: string, heartbeatMs: number): HeldLock {
  const owned = isOwnedBy(token);
  const timer = setInterval(() => {
    // Touch only our own lock (a lock broken and retaken by another process is not ours to refresh).
    if (!owned(readRaw(path) ?? '')) return;
    const now = new Date();
    utimes(path, now, now).catch(() => {});
  }, heartbeatMs);
  timer.unref();
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      // Only our own lock: another process's (after ours was broken) stays.
      if (owned(readRaw(path) ?? '')) await removeIf(path, owned);
    },
  };
}
