/**
 * Progress of long CLI work on stderr: a `cli-progress` bar on a terminal (items done / total,
 * chunks, docs/s, tokens/s, ETA), and a plain line every 5 s when stderr is not a terminal (a log
 * file or CI: no carriage-return redraws piling up). `--quiet` turns both off.
 * `BGE_M3_RAG_PROGRESS_INTERVAL_MS` changes the interval of the plain lines (tests use it).
 */
import cliProgress from 'cli-progress';

export interface ProgressOptions {
  quiet: boolean;
  label: string;
  /** What `done` counts (`files`, `texts`). */
  unit: string;
  /** Known total of `done`, for the bar and the ETA. */
  total?: number;
}

export class Progress {
  private done = 0;
  private chunks = 0;
  private tokens = 0;
  private readonly started = performance.now();
  private bar: cliProgress.SingleBar | undefined;
  private timer: NodeJS.Timeout | undefined;
  private total: number | undefined;

  constructor(private readonly options: ProgressOptions) {
    this.total = options.total;
    if (options.quiet) return;
    if (process.stderr.isTTY) {
      const total = options.total;
      this.bar = new cliProgress.SingleBar(
        {
          format:
            total === undefined
              ? `${options.label} {value} ${options.unit} | {chunks} chunks | {dps} docs/s | {tps} tokens/s | {elapsed}s`
              : `${options.label} [{bar}] {value}/{total} ${options.unit} | {chunks} chunks | {dps} docs/s | {tps} tokens/s | ETA {eta_formatted}`,
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total ?? 0, 0, this.fields());
    } else {
      const every = Number(process.env.BGE_M3_RAG_PROGRESS_INTERVAL_MS) || 5000;
      this.timer = setInterval(() => process.stderr.write(`${this.line()}\n`), every);
      this.timer.unref();
    }
  }

  /** `n` more items done, with `tokens` tokens and `chunks` chunks. */
  tick(n: number, tokens = 0, chunks = n): void {
    this.done += n;
    this.tokens += tokens;
    this.chunks += chunks;
    this.bar?.update(this.done, this.fields());
  }

  /** Chunks encoded so far within the current item(s), shown live. */
  chunkProgress(chunks: number, tokens = 0): void {
    this.chunks += chunks;
    this.tokens += tokens;
    this.bar?.update(this.done, this.fields());
  }

  /** Counts items that needed no work (skipped) without distorting the rates much. */
  skip(n: number): void {
    this.done += n;
    this.bar?.update(this.done, this.fields());
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.bar) {
      this.bar.update(this.done, this.fields());
      this.bar.stop();
      this.bar = undefined;
    }
  }

  private seconds(): number {
    return Math.max((performance.now() - this.started) / 1000, 1e-3);
  }

  private fields() {
    const s = this.seconds();
    return { chunks: this.chunks, dps: (this.chunks / s).toFixed(1), tps: Math.round(this.tokens / s) };
  }

  private line(): string {
    const s = this.seconds();
    const f = this.fields();
    const total = this.total;
    let eta = '';
    if (total !== undefined && this.done > 0 && this.done < total) eta = `, ETA ${Math.round(((total - this.done) * s) / this.done)} s`;
    return `${this.options.label}: ${this.done}${total === undefined ? '' : `/${total}`} ${this.options.unit}, ${f.chunks} chunks, ${f.dps} docs/s, ${f.tps} tokens/s, ${s.toFixed(0)} s elapsed${eta}`;
  }
}
