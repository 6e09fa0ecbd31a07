/**
 * What the `index`, `search`, `embed` and `rerank` commands share: the model options
 * (`--model`, `--dtype`, `--threads`, `--offline`), argument parsing, error reporting with exit
 * codes, and loading the model with a message that says what to do when the hub is out of reach.
 *
 * Exit codes: 0 success, 1 the command failed, 2 usage error, 130 interrupted (SIGINT).
 */
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BgeM3Error } from '../errors.js';
import { BgeM3Model } from '../model/bge-m3-model.js';
import { DTYPES, type BgeM3Dtype } from '../model/model-files.js';

export const PROGRAM = 'bge-m3-rag';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

/** A failure the user can act on: printed as `bge-m3-rag <command>: <message>` (no stack trace). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
  }
}

/** Wrong arguments: the message and the command's usage are printed, exit 2. */
export class CliUsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
  }
}

export interface CliCommand {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

/** The options every model-using command takes. */
export const MODEL_OPTIONS = {
  model: { type: 'string' },
  dtype: { type: 'string' },
  threads: { type: 'string' },
  offline: { type: 'boolean', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export const MODEL_USAGE = `Model options (every command):
  --model <dir|repo>     a local BGE-M3 export or a hub repo id (default: BAAI/bge-m3, from the
                         Hugging Face cache, downloaded once)
  --dtype <fp32|fp16|q8> graph precision (default: fp32)
  --threads <n>          onnxruntime threads (default: onnxruntime's choice)
  --offline              never use the network (same as HF_HUB_OFFLINE=1)
  -q, --quiet            no progress output
  -h, --help             show this help

Exit codes: 0 success, 1 failure (missing file, bad input, model or database error),
2 usage error, 130 interrupted (Ctrl-C).`;

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliUsageError((e as Error).message);
  }
}

export function intOption(value: string | undefined, flag: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliUsageError(`${flag} must be an integer ≥ ${min}; got "${value}"`);
  return n;
}

export interface ModelFlags {
  model?: string;
  dtype?: string;
  threads?: string;
  offline?: boolean;
}

/** Checks the model flags (usage errors before any slow work). */
export function checkModelFlags(values: ModelFlags): void {
  if (values.dtype !== undefined && !(DTYPES as readonly string[]).includes(values.dtype)) {
    throw new CliUsageError(`--dtype must be one of ${DTYPES.join(', ')}; got "${values.dtype}"`);
  }
  intOption(values.threads, '--threads', 1);
  if (values.model !== undefined && values.model.trim() === '') throw new CliUsageError('--model needs a value; got an empty string');
}

const NO_HUB_HINT =
  'Without access to the Hugging Face hub, pass a local model folder with --model <dir> (e.g. one copied from a machine ' +
  'that ran `npx bge-m3-rag download`), or follow the air-gapped recipe in the README ("Air-gapped machines": copy ' +
  'the hub cache and set HF_HUB_OFFLINE=1).';

/** Loads the model the flags name; a hub failure becomes a message that says what to do. */
export async function loadModel(values: ModelFlags, quiet: boolean): Promise<BgeM3Model> {
  checkModelFlags(values);
  const source = values.model ?? 'BAAI/bge-m3';
  try {
    return await BgeM3Model.load(source, {
      dtype: values.dtype as BgeM3Dtype | undefined,
      threads: values.threads === undefined ? undefined : Number(values.threads),
      ...(values.offline ? { offline: true } : {}),
      ...(quiet ? { onProgress: () => {} } : {}),
    });
  } catch (e) {
    if (e instanceof BgeM3Error && (e.code === 'DOWNLOAD_FAILED' || (e.code === 'MISSING_FILE' && !existsSync(source)))) {
      throw new CliError(`Cannot load the model "${source}": ${e.message}\n${NO_HUB_HINT}`);
    }
    throw e;
  }
}

/** Prints an error the way every command does and returns the exit code. */
export function reportError(command: string, usage: string, e: unknown): number {
  if (e instanceof CliUsageError) {
    process.stderr.write(`${PROGRAM} ${command}: ${e.message}\n\n${usage}\n`);
    return EXIT_USAGE;
  }
  if (e instanceof CliError) {
    process.stderr.write(`${PROGRAM} ${command}: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof BgeM3Error) {
    process.stderr.write(`${PROGRAM} ${command}: ${e.message}\n`);
    return e.code === 'INVALID_ARGUMENT' ? EXIT_USAGE : EXIT_FAILURE;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && typeof err.message === 'string' && /^E[A-Z]+$/.test(err.code)) {
    // File system and network errors (ENOENT, EACCES, ECONNREFUSED, …): the message names the path or address.
    process.stderr.write(`${PROGRAM} ${command}: ${err.message}\n`);
    return EXIT_FAILURE;
  }
  process.stderr.write(`${PROGRAM} ${command}: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT_FAILURE;
}

/** Wraps a command body: errors become messages and exit codes. */
export function command(name: string, summary: string, usage: string, body: (args: string[]) => Promise<number>): CliCommand {
  return {
    summary,
    usage,
    run: async (args) => {
      try {
        return await body(args);
      } catch (e) {
        return reportError(name, usage, e);
      }
    },
  };
}

/** Writes to stdout, waiting when its buffer is full (bounded memory when piped to a slow reader). */
export function writeOut(text: string): Promise<void> | void {
  if (!process.stdout.write(text)) {
    return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
  }
}

/** A snippet of a text for one line of a table. */
export function snippet(text: string, width = 80): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}
