/**
 * The README's vector store, per-call options and sparse export snippets compile as written: each
 * `ts` block of those sections is type-checked with the TypeScript compiler API, as a module of its
 * own (imports and every variable defined), against the sources (the tsconfig's `paths` map
 * `bge-m3-rag`, `bge-m3-rag/langchain`, … to `src/`).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SECTIONS = [
  '### LangChain.js vector store',
  '### Per-call options (LangChain.js retrievers)',
  '### LlamaIndex.TS vector store',
  '### Sparse vectors in other databases',
  '### Stored multi-vectors',
];

/** The `ts` code blocks of the README section whose heading starts with `heading`. */
function snippets(readme: string, heading: string): string[] {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) return [];
  let end = lines.findIndex((l, i) => i > start && /^#{1,3} /.test(l));
  if (end < 0) end = lines.length;
  const section = lines.slice(start + 1, end).join('\n');
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function typeCheck(files: Map<string, string>): string[] {
  const configPath = join(ROOT, 'tsconfig.json');
  const { config } = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, ROOT, undefined, configPath);
  // Snippets are examples: unused names are fine; everything else is as strict as the sources.
  const options: ts.CompilerOptions = { ...parsed.options, noEmit: true, noUnusedLocals: false, noUnusedParameters: false };
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (f) => files.has(f) || fileExists.call(host, f);
  host.readFile = (f) => files.get(f) ?? readFile.call(host, f);
  host.getSourceFile = (f, lang, onError, create) => {
    const text = files.get(f);
    return text !== undefined ? ts.createSourceFile(f, text, lang, true) : getSourceFile.call(host, f, lang, onError, create);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file && files.has(d.file.fileName))
    .map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
      return `${d.file!.fileName.slice(ROOT.length + 1)}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
}

describe('README snippets', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  it.each(SECTIONS)('the section "%s" has ts snippets', (heading) => {
    expect(snippets(readme, heading).length).toBeGreaterThan(0);
  });

  it('every snippet of those sections type-checks against the sources', () => {
    const files = new Map<string, string>();
    SECTIONS.forEach((heading, s) =>
      snippets(readme, heading).forEach((code, i) => {
        // Under test/ so that node_modules and the tsconfig paths resolve as for the tests.
        files.set(join(ROOT, 'test', 'retrievers', `__readme_snippet_${s}_${i}.ts`), code);
      }),
    );
    expect(typeCheck(files)).toEqual([]);
  }, 120_000);

  it('the checker does catch a broken snippet', () => {
    const broken = new Map([[join(ROOT, 'test', 'retrievers', '__readme_snippet_broken.ts'), "import { BgeM3VectorStore } from 'bge-m3-rag/langchain';\nconst store = new BgeM3VectorStore(undefinedEmbeddings);\n"]]);
    const errors = typeCheck(broken);
    expect(errors.join('\n')).toMatch(/Cannot find name 'undefinedEmbeddings'/);
  }, 120_000);
});
