/**
 * A cross-process lock file, so two processes loading the same model at once download each blob
 * only once: the second waits for the first and then finds the blob in the cache.
 *
 * Hand-written because Node has no `flock`, and Python's `filelock` scheme (which relies on it)
 * cannot be shared. The lock is an exclusively created file (`open(path, 'wx')`) holding the owner's
 * pid and host; the owner touches it every few seconds, and a lock whose owner is dead (same host) or
 * which has not been touched for `staleMs` is broken. Correctness never depends on the lock: every
 * writer uses its own temporary file and only a verified file is renamed into the cache, so the rare
 * race where two processes break a stale lock together costs a duplicate download, not a corrupt cache.
 */
import { readFileSync, statSync } from 'node:fs';
import { mkdir, open, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

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
}

function readOwner(path: string): LockOwner {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
  } catch {
    return {}; // Being written right now, or garbage: judged by its age alone.
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isStale(path: string, staleMs: number): boolean {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return false; // Gone already: the next attempt to create it decides.
  }
  const owner = readOwner(path);
  if (owner.host === hostname() && typeof owner.pid === 'number' && !isAlive(owner.pid)) return true;
  return Date.now() - mtimeMs > staleMs;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

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
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
      } finally {
        await fh.close();
      }
      return holdLock(path, heartbeatMs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (isStale(path, staleMs)) {
      await unlink(path).catch(() => {});
      continue;
    }
    if (!waited) {
      waited = true;
      options.onWait?.(readOwner(path));
    }
    await sleep(pollMs, options.signal);
  }
}

function holdLock(path: string, heartbeatMs: number): HeldLock {
  const timer = setInterval(() => {
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
      await unlink(path).catch(() => {});
    },
  };
}
