/**
 * The small onnxruntime sessions the indexes score with (the dense scan's MatMul, stored MaxSim):
 * graphs built in memory (no model file), holding no data (matrices are inputs), created on first
 * use and shared by every index in the process, one per graph and thread setting.
 */
import * as ort from 'onnxruntime-node';
import { withoutSpinning } from '../model/heads.js';

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/**
 * The session for `graph` (built by `build` on first use) with `threads` intra-op threads (default:
 * onnxruntime's choice, the physical cores). A failed creation is forgotten, so a later call retries.
 */
export function scoringSession(name: string, build: () => Uint8Array, threads?: number): Promise<ort.InferenceSession> {
  const key = `${name}\u0000${threads ?? ''}`;
  let session = sessions.get(key);
  if (!session) {
    // No spin-waiting after a run: these sessions run right after a query encode (whose threads
    // still spin) and before the next one. Measured on the full-shape model, 20 stored int8
    // documents scored right after the query's encode: p50 30 ms with spinning, 20 ms without
    // (fp16 19 ms either way).
    session = ort.InferenceSession.create(
      build(),
      withoutSpinning({
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        interOpNumThreads: 1,
        ...(threads ? { intraOpNumThreads: threads } : {}),
      }),
    );
    session.catch(() => sessions.delete(key));
    sessions.set(key, session);
  }
  return session;
}
