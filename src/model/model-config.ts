/**
 * `config.json` and the load-time shape checks: the fields this package reads, checked by type and
 * range, and the tokenizer and config compared with the graph's embedding tables.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BgeM3Error } from '../errors.js';
import { describeValue as describe } from '../shared/checks.js';
import type { BgeM3Tokenizer } from './tokenizer.js';

export interface ModelConfig {
  /** The config.json read, if any. */
  path?: string;
  hidden_size?: number;
  max_position_embeddings?: number;
}

/** Reads the first config.json of `dirs`, checking the fields used here by type and range. */
export async function readConfig(dirs: string[]): Promise<ModelConfig> {
  for (const dir of dirs) {
    const path = join(dir, 'config.json');
    if (!existsSync(path)) continue;
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (cause) {
      throw new BgeM3Error('CORRUPT_FILE', `${path} is not valid JSON: ${(cause as Error).message}`, { cause });
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new BgeM3Error('CORRUPT_FILE', `${path} must hold a JSON object (a transformers model config); got ${describe(json)}.`);
    }
    const config: ModelConfig = { path };
    for (const key of ['hidden_size', 'max_position_embeddings'] as const) {
      const value = (json as Record<string, unknown>)[key];
      if (value === undefined) continue;
      if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 1 << 20) {
        throw new BgeM3Error('CORRUPT_FILE', `${path}: ${key} must be a positive integer (1024 and 8194 for BGE-M3); got ${describe(value)}.`);
      }
      config[key] = value as number;
    }
    return config;
  }
  return {};
}

/**
 * Checks the tokenizer and config.json against the graph's embedding tables (a token id or position
 * past a table would fail every encode inside onnxruntime), and returns the longest input in
 * tokens: the position table is the hard limit (XLM-RoBERTa's positions start at 2); without a
 * config.json, the tokenizer's model_max_length is the best guess.
 */
export function checkModelShape(
  graph: string,
  rows: { word?: number; position?: number },
  tokenizer: BgeM3Tokenizer,
  tokenizerJson: string,
  config: ModelConfig,
): number {
  if (rows.word !== undefined && tokenizer.vocabSize > rows.word) {
    throw new BgeM3Error(
      'CORRUPT_FILE',
      `${tokenizerJson} has ${tokenizer.vocabSize} tokens but the graph ${graph} embeds only ${rows.word}: the tokenizer belongs to another model. Use the tokenizer.json that came with the graph.`,
    );
  }
  if (config.max_position_embeddings !== undefined && rows.position !== undefined && config.max_position_embeddings > rows.position) {
    throw new BgeM3Error(
      'UNKNOWN_LAYOUT',
      `${config.path} claims max_position_embeddings ${config.max_position_embeddings} but the graph ${graph} has ${rows.position} positions: config.json belongs to another model. Use the config.json that came with the graph.`,
    );
  }
  const limit = config.max_position_embeddings !== undefined ? config.max_position_embeddings - 2 : tokenizer.modelMaxLength;
  return rows.position !== undefined ? Math.min(limit, rows.position - 2) : limit;
}
