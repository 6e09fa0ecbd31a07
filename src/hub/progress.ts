/**
 * Download (and verification) progress: the event passed to `onProgress`, a rate/ETA meter, and a
 * one-line renderer for stderr when it is a terminal.
 */
import { envFlag } from './hub-settings.js';

/**
 * One file's download progress, reported about ten times a second and once when it ends. With the
 * `verify` option, re-hashing a file already on disk reports the same events with `phase: 'verify'`.
 */
export interface DownloadProgress {
  /**
   * `'verify'` while a file already on disk is re-hashed for the `verify` option (`loaded` = bytes
   * hashed so far); absent (or `'download'`) for a download.
   */
  phase?: 'download' | 'verify';
  /** The repo the file comes from, e.g. `BAAI/bge-m3` (for a local directory being verified: the directory). */
  repo: string;
  /** The file's path in the repo, e.g. `onnx/model.onnx_data`. */
  file: string;
  /** Bytes of this file on disk so far, including any resumed part. */
  loaded: number;
  /** The file's size, when the hub told it. */
  total?: number;
  /** Recent transfer rate (bytes per second, over the last few seconds). */
  bytesPerSecond: number;
  /** Estimated seconds left, when `total` and a rate are known. */
  etaSeconds?: number;
  /** Bytes that were already on disk when this download (re)started: the resumed part. */
  resumedFrom: number;
  /** `true` on the last event for the file (downloaded: it is verified and in the cache; verify: it is hashed). */
  done: boolean;
}

export type DownloadProgressCallback = (progress: DownloadProgress) => void;

/** Bytes per second over a sliding window of recent samples. */
export class RateMeter {
  private samples: { t: number; bytes: number }[] = [];

  constructor(private readonly windowMs = 5_000) {}

  /** Records that `bytes` (cumulative) had arrived at time `t` (ms). */
  add(bytes: number, t = performance.now()): void {
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0]!.t > this.windowMs) this.samples.shift();
  }

  get bytesPerSecond(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t <= first.t) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** `2.27 GB`: decimal units, as the hub's web pages show sizes. */
export function formatBytes(bytes: number): string {
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${UNITS[u]}`;
}

function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** `BAAI/bge-m3 onnx/model.onnx_data  512 MB / 2.27 GB  22%  35.2 MB/s  ETA 0:50`. */
export function formatProgressLine(p: DownloadProgress): string {
  const size = p.total !== undefined ? `${formatBytes(p.loaded)} / ${formatBytes(p.total)}` : formatBytes(p.loaded);
  const pct = p.total ? `  ${Math.floor((100 * p.loaded) / p.total)}%` : '';
  const verb = p.phase === 'verify' ? 'verifying ' : '';
  if (p.done) return `${verb}${p.repo} ${p.file}  ${size}  done`;
  const rate = p.bytesPerSecond > 0 ? `  ${formatBytes(p.bytesPerSecond)}/s` : '';
  const eta = p.etaSeconds !== undefined ? `  ETA ${formatEta(p.etaSeconds)}` : '';
  return `${verb}${p.repo} ${p.file}  ${size}${pct}${rate}${eta}`;
}

/**
 * A renderer that redraws one line per file on `stream`, or `undefined` when the stream is not a
 * terminal or `HF_HUB_DISABLE_PROGRESS_BARS` is set (huggingface_hub's switch). A finished download
 * keeps its line; a finished verification is erased (its result is an error or the CLI's own line).
 */
export function terminalProgress(
  stream: NodeJS.WriteStream = process.stderr,
  env: Record<string, string | undefined> = process.env,
): DownloadProgressCallback | undefined {
  if (!stream.isTTY || envFlag(env.HF_HUB_DISABLE_PROGRESS_BARS)) return undefined;
  return (p) => {
    const width = Math.max(20, (stream.columns || 100) - 1);
    if (p.done && p.phase === 'verify') {
      stream.write(`\r${' '.repeat(width)}\r`);
      return;
    }
    const line = formatProgressLine(p).slice(0, width);
    stream.write(`\r${line.padEnd(width)}${p.done ? '\n' : ''}`);
  };
}
