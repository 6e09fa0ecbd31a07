/**
 * Per-call options for LangChain retrievers. `BaseRetriever.invoke(query, config)` reads only the
 * callback fields of `config` and calls `_getRelevantDocuments(query, runManager)`, so `k`,
 * `filter`, `signal` and `timeout` given per call never reach the retrieval. The retrievers of this
 * package override `invoke` with {@link invokeRetriever}, which does what `BaseRetriever.invoke`
 * does (the same `ensureConfig` normalization, which also turns `timeout` into an `AbortSignal`,
 * and the same retriever callbacks) and hands the normalized config to the retrieval, racing it
 * against the signal as LangChain's runnables do (`raceWithSignal`): an abort rejects at once with
 * the signal's reason, and the encoder stops at its next batch boundary.
 */
import { CallbackManager, parseCallbackConfigArg, type CallbackManagerForRetrieverRun } from '@langchain/core/callbacks/manager';
import type { DocumentInterface } from '@langchain/core/documents';
import type { BaseRetriever } from '@langchain/core/retrievers';
import { ensureConfig, raceWithSignal, type RunnableConfig } from '@langchain/core/runnables';

/** The error LangChain rejects with for an aborted signal (its `getAbortSignalError`). */
export function abortError(signal: AbortSignal): Error {
  if (signal.reason instanceof Error) return signal.reason;
  if (typeof signal.reason === 'string') return new Error(signal.reason);
  return new Error('Aborted');
}

/** `invoke` for a retriever whose retrieval takes the normalized per-call config. */
export async function invokeRetriever<C extends RunnableConfig>(
  retriever: BaseRetriever,
  input: string,
  options: C | undefined,
  retrieve: (query: string, config: C, runManager: CallbackManagerForRetrieverRun | undefined) => Promise<DocumentInterface[]>,
): Promise<DocumentInterface[]> {
  const config = ensureConfig(parseCallbackConfigArg(options)) as C;
  const manager = await CallbackManager.configure(config.callbacks, retriever.callbacks, config.tags, retriever.tags, config.metadata, retriever.metadata, { verbose: retriever.verbose });
  const runManager = await manager?.handleRetrieverStart(retriever.toJSON(), input, config.runId, undefined, undefined, undefined, config.runName);
  try {
    const { signal } = config;
    if (signal?.aborted) throw abortError(signal);
    const results = await raceWithSignal(retrieve(input, config, runManager), signal);
    await runManager?.handleRetrieverEnd(results);
    return results;
  } catch (error) {
    await runManager?.handleRetrieverError(error);
    throw error;
  }
}

/** The given (not undefined) values of `keys` in `config`. */
export function pickDefined<T extends object, K extends keyof T>(config: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (config[key] !== undefined) out[key] = config[key];
  return out;
}
