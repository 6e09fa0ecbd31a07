/**
 * The files `bge-m3-rag index` reads: discovery (files, folders recursively, glob patterns) and text
 * extraction per type. `.txt`/`.md` as they are, `.html` to text (html-to-text), `.json` (an object or
 * an array of them) and `.jsonl` (one object per line) with the text in `--text-field` and the other
 * fields as metadata, `.csv` (a header row; the text column is `--text-field`, the other columns
 * metadata), `.pdf` (text per page with unpdf, the serverless build of Mozilla's PDF.js).
 * The parsers are imported when a file of their type is read, so other commands never load them.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { CliError } from './common.js';

export const EXTENSIONS = ['txt', 'md', 'markdown', 'html', 'htm', 'json', 'jsonl', 'ndjson', 'csv', 'pdf'] as const;

const GLOB_CHARS = /[*?[\]{}]/;

export interface Discovered {
  /** Paths relative to the working directory, `/`-separated, sorted. */
  files: string[];
  /** Whether a recorded source is in the scope of the given paths (so its absence means it was removed). */
  inScope(source: string): boolean;
}

const toPosix = (p: string) => p.split(sep).join('/');

/** How a file is recorded: relative to the working directory when inside it, else absolute. */
function sourcePath(cwd: string, abs: string): string {
  const rel = relative(cwd, abs);
  return toPosix(rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? abs : rel);
}

/** Lists the supported files the arguments name (a missing path is an error). */
export async function discover(paths: string[], cwd = process.cwd()): Promise<Discovered> {
  const { glob } = await import('tinyglobby');
  const picomatch = (await import('picomatch')).default;
  const files = new Set<string>();
  const matchers: ((source: string) => boolean)[] = [];
  const pattern = `**/*.{${EXTENSIONS.join(',')}}`;
  const ignore = ['**/node_modules/**', '**/.git/**'];
  for (const arg of paths) {
    if (GLOB_CHARS.test(arg)) {
      const found = await glob(arg, { cwd, onlyFiles: true, ignore, expandDirectories: false });
      for (const f of found) if (isSupported(f)) files.add(sourcePath(cwd, resolve(cwd, f)));
      const normalized = sourcePath(cwd, resolve(cwd, arg.replace(/[/\\]+$/, '')));
      const isMatch = picomatch(normalized);
      matchers.push((s) => isMatch(s));
      continue;
    }
    const abs = resolve(cwd, arg);
    let info;
    try {
      info = await stat(abs);
    } catch {
      throw new CliError(`Cannot read ${arg}: no such file or folder.`);
    }
    const rel = sourcePath(cwd, abs);
    if (info.isDirectory()) {
      const found = await glob(pattern, { cwd: abs, onlyFiles: true, ignore, caseSensitiveMatch: false });
      for (const f of found) files.add(sourcePath(cwd, resolve(abs, f)));
      const prefix = rel === '.' ? '' : `${rel}/`;
      matchers.push((s) => s.startsWith(prefix) && (prefix !== '' || !s.startsWith('/')));
    } else {
      if (!isSupported(abs)) throw new CliError(`Cannot index ${arg}: unsupported file type (supported: ${EXTENSIONS.map((e) => `.${e}`).join(', ')}).`);
      files.add(rel);
      matchers.push((s) => s === rel);
    }
  }
  return { files: [...files].sort(), inScope: (s) => matchers.some((m) => m(s)) };
}

function isSupported(file: string): boolean {
  const ext = file.toLowerCase().split('.').pop() ?? '';
  return (EXTENSIONS as readonly string[]).includes(ext);
}

/** One document of a file (the whole file, or one JSON/JSONL/CSV record). */
export interface SourceRecord {
  text: string;
  /** Fields other than the text (records), or what the extractor knows (PDF pages). */
  metadata: Record<string, unknown>;
  /** For a PDF: the character offset where each page starts in `text`. */
  pageStarts?: number[];
}

export interface ExtractOptions {
  textField: string;
}

/** The documents of one file. Bad content is an error naming the file (and the line or record). */
export async function extract(file: string, bytes: Buffer, options: ExtractOptions): Promise<SourceRecord[]> {
  const ext = file.toLowerCase().split('.').pop();
  const text = () => bytes.toString('utf8').replace(/^\uFEFF/, '');
  switch (ext) {
    case 'txt':
    case 'md':
    case 'markdown':
      return [{ text: text(), metadata: {} }];
    case 'html':
    case 'htm': {
      const { convert } = await import('html-to-text');
      return [{ text: convert(text(), { wordwrap: false, selectors: [{ selector: 'a', options: { ignoreHref: true } }, { selector: 'img', format: 'skip' }] }), metadata: {} }];
    }
    case 'json': {
      let value: unknown;
      try {
        value = JSON.parse(text());
      } catch (e) {
        throw new CliError(`${file}: not valid JSON (${(e as Error).message}).`);
      }
      const items = Array.isArray(value) ? value : [value];
      return items.map((item, i) => record(item, options.textField, `${file}: record ${i + 1}`, { record: i + 1 }));
    }
    case 'jsonl':
    case 'ndjson': {
      const out: SourceRecord[] = [];
      const lines = text().split(/\r?\n/);
      for (const [i, line] of lines.entries()) {
        if (line.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (e) {
          throw new CliError(`${file}:${i + 1}: not valid JSON (${(e as Error).message}).`);
        }
        out.push(record(value, options.textField, `${file}:${i + 1}`, { line: i + 1 }));
      }
      return out;
    }
    case 'csv': {
      const { parse } = await import('csv-parse/sync');
      let rows: Record<string, string>[];
      try {
        rows = parse(bytes, { columns: true, bom: true, skip_empty_lines: true, relax_column_count: true }) as Record<string, string>[];
      } catch (e) {
        throw new CliError(`${file}: not valid CSV (${(e as Error).message}).`);
      }
      if (rows.length > 0 && !(options.textField in rows[0]!)) {
        throw new CliError(`${file}: no "${options.textField}" column (columns: ${Object.keys(rows[0]!).join(', ')}). Name the text column with --text-field.`);
      }
      return rows.map((row, i) => {
        const { [options.textField]: body, ...rest } = row;
        return { text: body ?? '', metadata: { ...rest, row: i + 1 } };
      });
    }
    case 'pdf': {
      const { extractText, getDocumentProxy } = await import('unpdf');
      let pages: string[];
      try {
        const pdf = await getDocumentProxy(new Uint8Array(bytes));
        pages = (await extractText(pdf, { mergePages: false })).text as string[];
      } catch (e) {
        throw new CliError(`${file}: cannot read the PDF (${(e as Error).message}).`);
      }
      const pageStarts: number[] = [];
      let body = '';
      for (const page of pages) {
        if (body) body += '\n\n';
        pageStarts.push(body.length);
        body += page;
      }
      return [{ text: body, metadata: { pages: pages.length }, pageStarts }];
    }
    default:
      throw new CliError(`Cannot index ${file}: unsupported file type.`);
  }
}

function record(value: unknown, textField: string, where: string, extra: Record<string, unknown>): SourceRecord {
  if (typeof value === 'string') return { text: value, metadata: extra };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CliError(`${where}: expected an object with a "${textField}" field; got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}.`);
  }
  const { [textField]: body, ...rest } = value as Record<string, unknown>;
  if (typeof body !== 'string') throw new CliError(`${where}: no string "${textField}" field (name the text field with --text-field).`);
  return { text: body, metadata: { ...rest, ...extra } };
}

/** Reads a file (an unreadable file is an error that names it). */
export async function readSource(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new CliError(`Cannot read ${file}: ${(e as Error).message}`);
  }
}
