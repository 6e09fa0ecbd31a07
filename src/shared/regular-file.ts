/**
 * The one gate every model file passes before it is opened (head files, tokenizer.json,
 * tokenizer_config.json, config.json, the .onnx graph and its external data): it must be a regular
 * file (not a FIFO, device, socket or directory, which would block, read forever or fail with a raw
 * EISDIR), no larger than its cap, and reached through symlinks that stay inside its model
 * directory. The one exception is the Hugging Face cache: a snapshot's files
 * (`models--org--name/snapshots/<commit>/…`) are relative symlinks into `../../blobs/`, and blobs of
 * that same repo folder are accepted. Every file-system error becomes a `BgeM3Error` naming the file.
 */
import { constants, lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { BgeM3Error } from '../errors.js';

export interface ModelFileRule {
  /** The model directory the file belongs to: its symlinks must resolve inside it (or its hub repo's blobs/). */
  root: string;
  /** What the file is, for messages ("the ColBERT head", "the tokenizer (tokenizer.json)"). */
  what: string;
  /** The largest size accepted, in bytes; a larger file is refused before it is read. */
  maxBytes?: number;
  /**
   * Symlinks may resolve anywhere: only for a file the caller named explicitly (the `modelFile`
   * option). The file must still be a regular file within `maxBytes`.
   */
  anywhere?: boolean;
}

export interface CheckedModelFile {
  /** The path as given. */
  path: string;
  /** The path with every symlink resolved. */
  realPath: string;
  size: number;
  dev: number;
  ino: number;
}

const MiB = 1024 * 1024;

function formatBytes(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${n} bytes`;
}

/** What a non-regular file is, in words. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symlink';
  return 'not a regular file';
}

/** Turns a file-system error on `path` into a BgeM3Error with a code, the path and the errno. */
export function fileSystemError(path: string, what: string, cause: unknown): BgeM3Error {
  if (cause instanceof BgeM3Error) return cause;
  const errno = (cause as NodeJS.ErrnoException)?.code;
  const message = (cause as Error)?.message ?? String(cause);
  switch (errno) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new BgeM3Error('MISSING_FILE', `${path} (${what}) does not exist (${errno}); re-download the model.`, { cause });
    case 'EACCES':
    case 'EPERM':
      return new BgeM3Error('MISSING_FILE', `${path} (${what}) cannot be read: permission denied (${errno}). Check its permissions.`, { cause });
    case 'ELOOP':
      return new BgeM3Error('CORRUPT_FILE', `${path} (${what}) is a symlink loop (${errno}); replace it with the real file.`, { cause });
    case 'EISDIR':
      return new BgeM3Error('CORRUPT_FILE', `${path} (${what}) is a directory, not a file (${errno}).`, { cause });
    default:
      return new BgeM3Error('CORRUPT_FILE', `${path} (${what}) cannot be read: ${message}${errno && !message.includes(errno) ? ` (${errno})` : ''}.`, { cause });
  }
}

/** Whether `p` is `folder` or inside it (both absolute, symlink-free). */
function within(folder: string, p: string): boolean {
  const rel = relative(folder, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** `<cache>/models--org--name/snapshots/<commit>[/…]`: group 1 is the repo folder. */
const HUB_SNAPSHOT = /^(.*[\\/](?:models|datasets|spaces)--[^\\/]+)[\\/]snapshots[\\/][^\\/]+(?:[\\/].*)?$/;

/** The folders a file of `root` may resolve into: the root (as given and resolved) and, in the hub cache, its repo's blobs/. */
function allowedFolders(root: string): string[] {
  const out = new Set<string>();
  const lexical = resolve(root);
  let real: string | undefined;
  try {
    real = realpathSync.native(lexical);
  } catch {
    // An unreadable root: the file's own check reports the problem.
  }
  for (const r of [lexical, real]) {
    if (r === undefined) continue;
    out.add(r);
    const m = HUB_SNAPSHOT.exec(r);
    if (!m) continue;
    const blobs = join(m[1]!, 'blobs');
    out.add(blobs);
    try {
      out.add(realpathSync.native(blobs));
    } catch {
      // No blobs/ folder: nothing resolves into it.
    }
  }
  return [...out];
}

/**
 * Checks `path` without opening it: a regular file (after symlinks), within `rule.maxBytes`,
 * resolving inside `rule.root` (or the hub repo's blobs/). Throws a BgeM3Error saying why not.
 */
export function checkModelFile(path: string, rule: ModelFileRule): CheckedModelFile {
  let link: Stats;
  try {
    link = lstatSync(path);
  } catch (cause) {
    throw fileSystemError(path, rule.what, cause);
  }
  let realPath: string;
  let st: Stats;
  try {
    realPath = realpathSync.native(path);
    st = statSync(realPath);
  } catch (cause) {
    const errno = (cause as NodeJS.ErrnoException)?.code;
    if (link.isSymbolicLink() && (errno === 'ENOENT' || errno === 'ENOTDIR')) {
      throw new BgeM3Error('MISSING_FILE', `${path} (${rule.what}) is a symlink to a file that does not exist (${errno}); re-download the model.`, { cause });
    }
    throw fileSystemError(path, rule.what, cause);
  }
  const via = realPath !== resolve(path) ? ` (it resolves to ${realPath})` : '';
  if (!st.isFile()) {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${path} (${rule.what}) is ${kindOf(st)}${via}, not a regular file; refusing to open it. Put the real file there.`,
    );
  }
  if (!rule.anywhere && !allowedFolders(rule.root).some((f) => within(f, realPath))) {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${path} (${rule.what}) resolves to ${realPath}, outside the model directory ${resolve(rule.root)}; refusing to follow it. ` +
        `Copy the file into the model directory instead of linking to it.`,
    );
  }
  if (rule.maxBytes !== undefined && st.size > rule.maxBytes) {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${path} (${rule.what}) is ${formatBytes(st.size)}, more than the ${formatBytes(rule.maxBytes)} such a file can be; refusing to read it.`,
    );
  }
  return { path, realPath, size: st.size, dev: st.dev, ino: st.ino };
}

/**
 * Reads a model file that passes {@link checkModelFile}. The resolved path is opened non-blocking
 * and without following a symlink, and the open file is checked again (a regular file, the same
 * one, within the cap), so a file swapped after the check cannot block or grow the read.
 */
export async function readModelFile(path: string, rule: ModelFileRule): Promise<Buffer> {
  const checked = checkModelFile(path, rule);
  const flags = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0);
  let fh;
  try {
    fh = await open(checked.realPath, flags);
  } catch (cause) {
    throw fileSystemError(path, rule.what, cause);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.dev !== checked.dev || st.ino !== checked.ino) {
      throw new BgeM3Error('CORRUPT_FILE', `${path} (${rule.what}) changed while it was being opened (now ${kindOf(st)}); try again.`);
    }
    if (rule.maxBytes !== undefined && st.size > rule.maxBytes) {
      throw new BgeM3Error('CORRUPT_FILE', `${path} (${rule.what}) is ${formatBytes(st.size)}, more than the ${formatBytes(rule.maxBytes)} such a file can be; refusing to read it.`);
    }
    const buf = Buffer.allocUnsafe(st.size);
    let done = 0;
    while (done < st.size) {
      const { bytesRead } = await fh.read(buf, done, st.size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done !== st.size) {
      throw new BgeM3Error('CORRUPT_FILE', `${path} (${rule.what}) shrank from ${st.size} to ${done} bytes while it was being read; try again.`);
    }
    return buf;
  } catch (cause) {
    throw fileSystemError(path, rule.what, cause);
  } finally {
    await fh.close();
  }
}
