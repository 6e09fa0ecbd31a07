#!/usr/bin/env node
/**
 * The `bge-m3-rag` command line. Commands live in the `COMMANDS` table so more can be added
 * (`embed`, `search`, …) without touching the dispatcher.
 *
 * Exit codes: 0 success, 1 the command failed (download error, missing or corrupt file), 2 usage error.
 */
import { existsSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BgeM3Error } from './errors.js';
import { DTYPES, type BgeM3Dtype } from './model/model-files.js';
import { RepoCache } from './hub/hub-cache.js';
import { envFlag, resolveHubSettings } from './hub/hub-settings.js';
import { formatBytes, terminalProgress } from './hub/progress.js';
import { classifySource } from './hub/repo-id.js';
import { refetchFiles, resolveModelSource, type ResolveSourceOptions } from './hub/resolve-source.js';
import { FileVerifier, formatCheckLine, MANIFEST_NAME, snapshotTargets, type FileCheck } from './hub/verify.js';
import { packageVersion, RAG_COMMANDS } from './cli/commands.js';

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
and set HF_HUB_OFFLINE=1 there.

Files that change on disk later (a failing disk, a bit flip) are not caught by the download's
check: run \`${PROGRAM} verify\` to re-hash the cache, or load with { verify: true }.`;

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

const VERIFY_USAGE = `Usage: ${PROGRAM} verify [repo|dir] [options]

Re-hashes model files already on disk and compares each with the hash it was recorded under, to
catch files that changed after the download (a failing disk or RAM, a bit flip, another program
writing into the cache): such files load and give wrong vectors. Never connects to the hub (except
with --repair). Hashing BAAI/bge-m3's 2.2 GB model.onnx_data takes a few seconds.

Which files: those a load with the same --dtype / --heads would use (the graph, its external data,
the tokenizer and config files, the head files). With --all: every file of the cached snapshot,
including files other tools (Python) downloaded.

Recorded hashes: a hub cache file is checked against the name of the blob it links to (sha256 for
LFS files, git blob sha1 for small files). A local directory has none, unless it holds a
${MANIFEST_NAME} manifest (sha256sum's format, paths relative to the directory; write it with
\`sha256sum onnx/* *.json *.pt > ${MANIFEST_NAME}\` while the files are good); other files are UNVERIFIED.

Output (stdout): one line per file, "ok", "CORRUPT" (expected and actual hash, the blob),
"MISSING", "UNVERIFIED" (why) or, after --repair, "REPAIRED"; then a summary line.

Arguments:
  repo|dir               hub repo id or model directory (default: BAAI/bge-m3)

Options:
  --dtype <fp32|fp16|q8> the graph a load would use (default: fp32)
  --revision <rev>       branch, tag or commit in the cache (default: main)
  --cache-dir <dir>      hub cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub,
                         else ~/.cache/huggingface/hub)
  --heads <repo|dir>     also verify the head files a load would take from there
  --all                  every file of the cached snapshot (not with --dtype / --heads)
  --repair               delete corrupt blobs and download them (and missing files) again,
                         at the same commit; needs network
  --endpoint <url>       hub URL for --repair (default: $HF_ENDPOINT, else https://huggingface.co)
  --quiet                no progress line
  -h, --help             show this help

Exit codes: 0 every file matched its recorded hash (or was repaired), 1 a file is corrupt, missing
or could not be verified, 2 bad arguments.`;

const verifyOptions = { ...downloadOptions, all: { type: 'boolean', default: false }, repair: { type: 'boolean', default: false } } as const satisfies ParseArgsConfig['options'];

/** Which files, for the summary line. */
function verifyScope(source: string, values: { dtype?: string; heads?: string; all?: boolean }, commit: string | undefined): string {
  const at = commit ? ` at commit ${commit.slice(0, 12)}` : '';
  if (values.all) return `every file of the cached snapshot of ${source}${at}`;
  const how = [values.dtype && `dtype ${values.dtype}`, values.heads && `heads ${values.heads}`].filter(Boolean).join(', ');
  return `the files a load of ${source}${how ? ` (${how})` : ''}${at} uses`;
}

async function verify(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, verifyOptions);
  if (values.help) {
    process.stdout.write(`${VERIFY_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`verify takes one repo or directory, got ${positionals.length}: ${positionals.join(' ')}`);
  if (values.dtype !== undefined && !(DTYPES as readonly string[]).includes(values.dtype)) {
    throw new UsageError(`--dtype must be one of ${DTYPES.join(', ')}; got "${values.dtype}"`);
  }
  for (const flag of ['revision', 'cache-dir', 'heads', 'endpoint'] as const) {
    if (values[flag] !== undefined && values[flag].trim() === '') throw new UsageError(`--${flag} needs a value; got an empty string`);
  }
  if (values.all && (values.dtype !== undefined || values.heads !== undefined)) {
    throw new UsageError('--all verifies every cached file of the repo; --dtype and --heads choose files and cannot be combined with it');
  }
  const source = positionals[0] ?? 'BAAI/bge-m3';
  const src = classifySource(source);
  if (values.all && src.kind === 'directory') throw new UsageError(`--all verifies a snapshot in the hub cache; ${src.dir} is a directory (without --all, the files a load uses are verified)`);
  let settings;
  try {
    settings = resolveHubSettings({ revision: values.revision, cacheDir: values['cache-dir'], hubUrl: values.endpoint });
  } catch (e) {
    throw e instanceof BgeM3Error && e.code === 'INVALID_ARGUMENT' ? new UsageError(withFlagNames(e.message)) : e;
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const progress = values.quiet ? undefined : terminalProgress();
  const verifier = new FileVerifier({ onProgress: progress, onChecked: (c) => out(formatCheckLine(c)) });
  let missing: { repo: string; file: string }[] = [];
  const onMissing = (repo: string, list: string[]) => {
    for (const m of list) {
      missing.push({ repo, file: m });
      out(`${'MISSING'.padEnd(10)} ${repo} ${m}`);
    }
  };
  const cache = src.kind === 'repo' ? new RepoCache(settings.cacheDir, src.repo) : undefined;
  let commit = cache?.commitFor(settings.revision);
  const hub = { cacheDir: values['cache-dir'], hubUrl: values.endpoint };
  const resolveOptions: ResolveSourceOptions = { ...hub, revision: values.revision, dtype: values.dtype as BgeM3Dtype | undefined, heads: values.heads, verifier, onMissing, onProgress: () => {} };
  let failure: string | undefined;
  /** Runs a resolve that verifies; an error after a corrupt file (e.g. an unreadable graph) is reported, not thrown. */
  const run = async (options: ResolveSourceOptions) => {
    try {
      const r = await resolveModelSource(source, options);
      commit = r.commit ?? commit;
    } catch (e) {
      if (e instanceof BgeM3Error && e.code === 'MISSING_FILE' && missing.length > 0) return;
      if (e instanceof BgeM3Error && e.code === 'INVALID_ARGUMENT') throw new UsageError(withFlagNames(e.message));
      if (e instanceof BgeM3Error && verifier.checks.some((c) => c.status !== 'ok')) failure = e.message;
      else throw e;
    }
  };
  const offline = envFlag(process.env.HF_HUB_OFFLINE) || envFlag(process.env.TRANSFORMERS_OFFLINE);

  // Pass 1: only what is on disk, never the network.
  if (values.all) {
    if (!commit || !existsSync(cache!.snapshotDir(commit))) {
      out(`${'MISSING'.padEnd(10)} ${src.kind === 'repo' ? src.repo : source} (revision ${settings.revision}) is not in the hub cache ${settings.cacheDir}`);
      process.stderr.write(`To fetch it: npx ${PROGRAM} download ${source}${values.revision ? ` --revision ${values.revision}` : ''}${values['cache-dir'] ? ` --cache-dir ${values['cache-dir']}` : ''}\n`);
      return 1;
    }
    for (const target of snapshotTargets(cache!, commit)) await verifier.check(target);
  } else {
    await run({ ...resolveOptions, offline: true });
  }

  const broken = () => verifier.checks.filter((c) => (c.status === 'corrupt' && c.recordedBy === 'blob') || c.status === 'missing');
  if (values.repair && (broken().length > 0 || missing.length > 0)) {
    if (offline) {
      failure = 'cannot repair in offline mode (HF_HUB_OFFLINE is set): unset it, or copy the files from a good cache.';
    } else {
      const again = broken();
      // The corrupt blob goes first: a download never replaces a blob that is already there.
      for (const c of again) if (c.status === 'corrupt' && c.blob) await unlink(c.blob).catch(() => {});
      if (values.all) {
        await refetchFiles(src.kind === 'repo' ? src.repo : source, commit!, again.map((c) => c.path), { ...hub, verifier, onProgress: progress ?? (() => {}) });
      } else {
        missing = [];
        failure = undefined;
        // The same commit, so the repair restores what was verified rather than a newer revision.
        await run({ ...resolveOptions, revision: commit ?? values.revision, offline: false, onProgress: progress ?? (() => {}) });
      }
    }
  }

  const checks = verifier.checks;
  const repaired = checks.filter((c) => c.downloaded).length;
  const count = (s: FileCheck['status']) => checks.filter((c) => c.status === s).length;
  const [corrupt, gone, unverified] = [count('corrupt'), count('missing') + missing.length, count('unverified')];
  const bytes = checks.reduce((n, c) => n + (c.downloaded ? 0 : c.bytes), 0);
  const parts = [`${count('ok') - repaired} ok`, repaired && `${repaired} repaired`, corrupt && `${corrupt} corrupt`, gone && `${gone} missing`, unverified && `${unverified} unverified`].filter(Boolean);
  out(`${checks.length} file(s) checked, ${formatBytes(bytes)} (${verifyScope(source, values, commit)}): ${parts.join(', ')}.`);
  if (failure) process.stderr.write(`${PROGRAM} verify: ${failure}\n`);
  // What a download can fix: hub cache files (not a local directory's own files).
  const repairable = broken().length > 0 || missing.some((m) => src.kind === 'repo' || m.repo !== src.dir);
  if (repairable && !values.repair) {
    const shell = (w: string) => (/^[\w@%+=:,./~-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);
    const cmd = [PROGRAM, 'verify', ...args.map(shell), ...(commit && !values.revision && src.kind === 'repo' ? ['--revision', commit] : []), '--repair'];
    process.stderr.write(`To download the corrupt or missing files again: npx ${cmd.join(' ')}\n`);
  }
  if (unverified > 0) {
    process.stderr.write(`UNVERIFIED files have no recorded hash to check against; for a local directory, write a ${MANIFEST_NAME} manifest (see --help).\n`);
  }
  // Nothing checked (an empty snapshot) is no proof of anything.
  return corrupt + gone + unverified === 0 && checks.length > 0 && !failure ? 0 : 1;
}

const COMMANDS: Record<string, Command> = {
  download: { summary: 'fetch a model into the Hugging Face cache (for offline use)', usage: DOWNLOAD_USAGE, run: download },
  verify: { summary: 're-hash cached model files against their recorded sha256 / git sha1 (find corrupt files)', usage: VERIFY_USAGE, run: verify },
  // index, search, embed, rerank (src/cli/): each prints its own errors and returns its exit code.
  ...RAG_COMMANDS,
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
  if (name === '-v' || name === '--version') {
    process.stdout.write(`${await packageVersion()}\n`);
    return 0;
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
