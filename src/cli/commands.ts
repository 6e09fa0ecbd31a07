/**
 * The commands added to `src/cli.ts`'s `COMMANDS` table: `index`, `search`, `embed`, `rerank`, `bench`.
 * Each one parses its own options, prints its own errors and returns its exit code.
 */
import { benchCommand } from './bench-command.js';
import type { CliCommand } from './common.js';
import { embedCommand } from './embed-command.js';
import { indexCommand } from './index-command.js';
import { rerankCommand } from './rerank-command.js';
import { searchCommand } from './search-command.js';

export const RAG_COMMANDS: Record<string, CliCommand> = {
  index: indexCommand,
  search: searchCommand,
  embed: embedCommand,
  rerank: rerankCommand,
  bench: benchCommand,
};

/** The package version (for `--version`), read from package.json next to dist/ or src/. */
export async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'bge-m3-rag' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}
