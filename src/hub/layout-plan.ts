/**
 * Which files a BGE-M3 layout needs, decided from what a repo actually holds rather than from a
 * fixed list: the graph for the dtype (first candidate present), every external-data file that graph
 * names, the tokenizer, the small config files that exist, and the head files only when the graph
 * returns hidden states (`last_hidden_state`) rather than the heads' outputs.
 *
 * The same planner runs against three views of a repo: a local directory, the hub cache (where a
 * file may also be "unknown": never looked up), and the hub itself (where fetching downloads).
 */
import { posix } from 'node:path';
import { headFileNames, type HeadName } from '../model/weights/linear-head.js';
import { readGraphInfo } from '../model/graph-info.js';
import type { CachedFileStatus } from './hub-cache.js';

/** A repo as seen from somewhere: what is there, and a way to get a file onto disk. */
export interface RepoView {
  /** `present`, `absent`, or (cache only) `unknown`. */
  status(path: string): CachedFileStatus;
  /** A local path to the file (downloading it if this view is the hub). Only called for present files. */
  fetch(path: string): Promise<string>;
}

export interface LayoutPlan {
  /** The graph chosen, relative to the repo root. */
  graph?: string;
  /** The graph returns hidden states, so the heads come from `colbert_linear`/`sparse_linear` files. */
  needsHeads: boolean;
  /** Heads needed but not present in this view (a `heads` source may supply them). */
  missingHeads: HeadName[];
  /** Required files that are not present, each with the reason it is needed. */
  missing: string[];
  /** Optional files whose presence this view does not know (a cache that never looked them up). */
  unknown: string[];
  /** Every file the plan resolved to a local path, relative to the repo root. */
  files: string[];
}

/** Files used when present: transformers and Python tools read them; only `tokenizer.json` is required. */
export const OPTIONAL_FILES = ['config.json', 'tokenizer_config.json', 'special_tokens_map.json'];

export const HEADS: readonly HeadName[] = ['colbert_linear', 'sparse_linear'];

function emptyPlan(): LayoutPlan {
  return { needsHeads: false, missingHeads: [], missing: [], unknown: [], files: [] };
}

/** The first present candidate; `unknown` lists the candidates before it this view cannot rule out. */
function pick(view: RepoView, candidates: readonly string[]): { path?: string; unknown: string[] } {
  const unknown: string[] = [];
  for (const c of candidates) {
    const s = view.status(c);
    if (s === 'present') return { path: c, unknown };
    if (s === 'unknown') unknown.push(c);
  }
  return { unknown };
}

function inDirs(dirs: readonly string[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of dirs) for (const n of names) out.push(d ? `${d}/${n}` : n);
  return [...new Set(out)];
}

async function take(view: RepoView, plan: LayoutPlan, path: string): Promise<string> {
  const local = await view.fetch(path);
  if (!plan.files.includes(path)) plan.files.push(path);
  return local;
}

/** Plans the files of a full model layout (graph, external data, tokenizer, configs, heads). */
export async function planModelFiles(view: RepoView, graphCandidates: readonly string[]): Promise<LayoutPlan> {
  const plan = emptyPlan();
  const g = pick(view, graphCandidates);
  plan.unknown.push(...g.unknown);
  const graphDir = g.path ? posix.dirname(g.path).replace(/^\.$/, '') : '';
  const dirs = graphDir ? ['', graphDir] : [''];
  if (!g.path) {
    plan.missing.push(`${graphCandidates.join(' or ')} (the ONNX graph) and the external-data files it names`);
  } else {
    plan.graph = g.path;
    const info = await readGraphInfo(await take(view, plan, g.path));
    for (const rel of info.externalData) {
      const path = graphDir ? `${graphDir}/${rel}` : rel;
      if (view.status(path) === 'present') await take(view, plan, path);
      else plan.missing.push(`${path} (external data named by ${g.path})`);
    }
    plan.needsHeads = info.outputs.includes('last_hidden_state');
  }
  const tok = pick(view, inDirs(dirs, ['tokenizer.json']));
  if (tok.path) await take(view, plan, tok.path);
  else plan.missing.push('tokenizer.json');
  for (const name of OPTIONAL_FILES) {
    const o = pick(view, inDirs(dirs, [name]));
    plan.unknown.push(...o.unknown);
    if (o.path) await take(view, plan, o.path);
  }
  // Without a graph the layout is unknown: look for heads anyway, so an offline error lists them.
  if (plan.needsHeads || !g.path) {
    for (const head of HEADS) {
      const h = pick(view, inDirs(dirs, headFileNames(head)));
      plan.unknown.push(...h.unknown);
      if (h.path) await take(view, plan, h.path);
      else plan.missingHeads.push(head);
    }
  }
  return plan;
}

/** Plans only head files (for the `heads` option's repo): each requested head is required. */
export async function planHeadFiles(view: RepoView, heads: readonly HeadName[]): Promise<LayoutPlan> {
  const plan = emptyPlan();
  plan.needsHeads = true;
  for (const head of heads) {
    const h = pick(view, headFileNames(head));
    if (h.path) await take(view, plan, h.path);
    else {
      plan.missingHeads.push(head);
      plan.missing.push(headFileNames(head).join(' or '));
    }
  }
  return plan;
}
