#!/usr/bin/env node
/**
 * The `bge-m3-rag` command line. Commands live in the `COMMANDS` table so more can be added
 * (`embed`, `search`, …) without touching the dispatcher.
 *
 * Exit codes: 0 success, 1 the command failed (download error, missing file), 2 usage error.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BgeM3Error } from './errors.js';
import { DTYPES, type BgeM3Dtype } from './model/model-files.js';
import { envFlag } from './hub/hub-settings.js';
import { formatBytes } from './hub/progress.js';
import { resolveModelSource } from './hub/resolve-source.js';

const PROGRAM = 'bge-m3-rag';

/** Wrong arguments: print the message and the command's usage, exit 2. */
class UsageError extends Error {}

interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const DOWNLOAD_USAGE = `Usage: ${PROGRAM} download [repo] [options]

Fetches a BGE-M3 model from the Hugging Face hub into the hub cache (shared with Python's
huggingface_hub), so later loads need no network. Only the files the model's layout needs are
downloaded (for BAAI/bge-m3 about 2.3 GB), verified against the hub's sha256, and resumed if cut off.

Arguments:
  repo                   hub repo id (default: BAAI/bge-m3)

Options:
  --dtype <fp32|fp16|q8> graph precision: onnx/model.onnx, onnx/model_fp16.onnx or
                         onnx/model_quantized.onnx (default: fp32)
  --revision <rev>       branch, tag or commit (default: main)
  --cache-dir <dir>      hub cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub,
                         else ~/.cache/huggingface/hub)
  --heads <repo|dir>     also fetch colbert_linear.pt / sparse_linear.pt from this repo when
                         the model repo lacks them (e.g. --heads BAAI/bge-m3 for Xenova/bge-m3)
  --endpoint <url>       hub URL (default: $HF_ENDPOINT, else https://huggingface.co)
  --quiet                no progress output
  -h, --help             show this help

Environment: HF_TOKEN (token for private/gated repos), HF_ENDPOINT, HF_HOME, HF_HUB_CACHE,
HF_HUB_OFFLINE=1 (no network: only check that the cache holds the model, and print its folder).

Air-gapped machines: run this where there is network, copy the cache folder
(<cache>/models--BAAI--bge-m3) to the same place on the target (or point HF_HUB_CACHE at the copy),
and set HF_HUB_OFFLINE=1 there.`;

const downloadOptions = {
  dtype: { type: 'string' },
  revision: { type: 'string' },
  'cache-dir': { type: 'string' },
  heads: { type: 'string' },
  endpoint: { type: 'string' },
  quiet: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

async function download(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, downloadOptions);
  if (values.help) {
    process.stdout.write(`${DOWNLOAD_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`download takes one repo, got ${positionals.length}: ${positionals.join(' ')}`);
  if (values.dtype !== undefined && !(DTYPES as readonly string[]).includes(values.dtype)) {
    throw new UsageError(`--dtype must be one of ${DTYPES.join(', ')}; got "${values.dtype}"`);
  }
  for (const flag of ['revision', 'cache-dir', 'heads', 'endpoint'] as const) {
    if (values[flag] !== undefined && values[flag].trim() === '') throw new UsageError(`--${flag} needs a value; got an empty string`);
  }
  const repo = positionals[0] ?? 'BAAI/bge-m3';
  const started = performance.now();
  // HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1) is respected: the cache is checked, nothing fetched.
  const offline = envFlag(process.env.HF_HUB_OFFLINE) || envFlag(process.env.TRANSFORMERS_OFFLINE);
  let result;
  try {
    result = await resolveModelSource(repo, {
      dtype: values.dtype as BgeM3Dtype | undefined,
      revision: values.revision,
      cacheDir: values['cache-dir'],
      heads: values.heads,
      hubUrl: values.endpoint,
      // A prefetch asks the hub for the revision's current commit even if an older one is cached.
      refresh: true,
      ...(values.quiet ? { onProgress: () => {} } : {}),
    });
  } catch (e) {
    throw e instanceof BgeM3Error && e.code === 'INVALID_ARGUMENT' ? new UsageError(withFlagNames(e.message)) : e;
  }
  const bytes = result.downloaded.reduce((n, f) => n + f.bytes, 0);
  const seconds = (performance.now() - started) / 1000;
  if (!values.quiet) {
    if (result.fallbackReason) process.stderr.write(`Warning: could not check the hub for a newer commit. ${result.fallbackReason}\n`);
    process.stderr.write(
      result.downloaded.length
        ? `Downloaded ${result.downloaded.length} file(s), ${formatBytes(bytes)}, in ${seconds.toFixed(1)} s.\n`
        : offline
          ? 'Offline mode (HF_HUB_OFFLINE): everything the model needs is in the cache.\n'
          : 'Everything was already in the cache.\n',
    );
  }
  if (result.missingHeads.length > 0) {
    // Not an error (the model loads dense-only), but the user should know before going offline.
    process.stderr.write(
      `Note: ${repo} has no head files (${result.missingHeads.map((h) => `${h}.pt`).join(', ')}), so the model will be dense-only ` +
        '(no sparse or ColBERT vectors). To fetch them, add --heads BAAI/bge-m3.\n',
    );
  }
  // stdout: the folder to load, one per line (model first, then any heads folder), for scripts.
  process.stdout.write(`${[result.dir, ...result.headDirs].join('\n')}\n`);
  return 0;
}

const COMMANDS: Record<string, Command> = {
  download: { summary: 'fetch a model into the Hugging Face cache (for offline use)', usage: DOWNLOAD_USAGE, run: download },
};

function mainUsage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return (
    `Usage: ${PROGRAM} <command> [options]\n\nCommands:\n` +
    Object.entries(COMMANDS)
      .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
      .join('\n') +
    `\n\nRun "${PROGRAM} <command> --help" for a command's options.`
  );
}

/** Library option names in a message, as the flags the user typed. */
const FLAG_NAMES: Record<string, string> = { cacheDir: '--cache-dir', hubUrl: '--endpoint', revision: '--revision', dtype: '--dtype', heads: '--heads' };

function withFlagNames(message: string): string {
  // The library's INVALID_ARGUMENT messages start with the option's name.
  return message.replace(/^(cacheDir|hubUrl|revision|dtype|heads)\b/, (name) => FLAG_NAMES[name]!);
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Runs the CLI with `argv` (without `node` and the script) and returns the exit code. */
async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    // No command is a usage error: usage to stderr, exit 2.
    process.stderr.write(`${mainUsage()}\n`);
    return 2;
  }
  if (name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(`${mainUsage()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`${PROGRAM}: unknown command "${name}".\n\n${mainUsage()}\n`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${PROGRAM} ${name}: ${e.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (e instanceof BgeM3Error) {
      process.stderr.write(`${PROGRAM} ${name}: ${e.message}\n`);
      return e.code === 'INVALID_ARGUMENT' ? 2 : 1;
    }
    process.stderr.write(`${PROGRAM} ${name}: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${PROGRAM}: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
