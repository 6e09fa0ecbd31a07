/**
 * Smoke tests of the runnable examples on the fixture model, as a user runs them
 * (`node --import tsx examples/<name>.ts --model <dir>`, importing the built package by name):
 * they exit 0, print the three reranked passages best first, and the printed scores are the
 * engine's `computeScore` for those passages.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KNOWLEDGE_BASE } from '../../examples/knowledge-base.js';
import { BgeM3Model } from '../../src/index.js';
import { TINY_DIR } from '../helpers.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function runExample(name: string, query: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join('examples', name), '--model', TINY_DIR, '--query', query], {
    cwd: ROOT,
    timeout: 60_000,
  });
  return stdout;
}

/** `1. [0.1234] Title ...` lines → title and score. */
function rankedLines(stdout: string): { title: string; score: number }[] {
  return [...stdout.matchAll(/^\d+\. \[(-?\d+\.\d+)\] (.+?)(?: \(.*\))?$/gm)].map((m) => ({ score: Number(m[1]), title: m[2]! }));
}

describe('examples (fixture model)', () => {
  let model: BgeM3Model;
  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'langchain.js'))) throw new Error('dist/ is missing: run `npm run build` before the example tests.');
    model = await BgeM3Model.load(TINY_DIR);
  });
  afterAll(async () => {
    await model?.dispose();
  });

  async function expectComputeScores(query: string, ranked: { title: string; score: number }[]) {
    const texts = ranked.map((r) => KNOWLEDGE_BASE.find((d) => d.title === r.title)!.text);
    const s = await model.computeScore(
      texts.map((t) => [query, t] as [string, string]),
      { weightsForDifferentModes: [0.4, 0.2, 0.4] },
    );
    ranked.forEach((r, i) => expect(Math.abs(r.score - s['colbert+sparse+dense'][i]!)).toBeLessThanOrEqual(6e-5)); // printed to 4 decimals
    for (let i = 1; i < ranked.length; i++) expect(ranked[i]!.score).toBeLessThanOrEqual(ranked[i - 1]!.score);
  }

  it('langchain-rag.ts: retrieve, rerank to 3, answer with the labelled LLM stand-in', async () => {
    const query = 'What does the M3 reranker combine?';
    const stdout = await runExample('langchain-rag.ts', query);
    const ranked = rankedLines(stdout);
    expect(ranked).toHaveLength(3);
    await expectComputeScores(query, ranked);
    expect(stdout).toMatch(/^Answer: \[LLM stand-in\] Based on the top-ranked context: .+$/m);
  });

  it('llamaindex-query-engine.ts: query engine with BgeM3Rerank, MockLLM as the stand-in', async () => {
    const query = 'Which languages does BGE-M3 support?';
    const stdout = await runExample('llamaindex-query-engine.ts', query);
    const ranked = rankedLines(stdout);
    expect(ranked).toHaveLength(3);
    await expectComputeScores(query, ranked);
    expect(stdout).toMatch(/^Answer \(\[LLM stand-in\] MockLLM\): .+$/m);
  });
});
