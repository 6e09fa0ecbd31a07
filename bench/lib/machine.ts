/** What the benchmark's result files record about the machine and the libraries (shared by bench/run.ts and bench/latency.ts). */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

const require = createRequire(import.meta.url);

/** onnxruntime-node's version as this package resolves it. */
export function onnxruntimeVersion(): string {
  return (JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
}

export function machineInfo(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGB: Math.round(totalmem() / 2 ** 30),
    os: `${process.platform} ${release()}`,
    node: process.versions.node,
    onnxruntime: onnxruntimeVersion(),
    ...extra,
    date: new Date().toISOString(),
  };
}

/** The 1-, 5- and 15-minute load averages, rounded. */
export function loadAverages(): [number, number, number] {
  return loadavg().map((v) => Math.round(v * 100) / 100) as [number, number, number];
}
