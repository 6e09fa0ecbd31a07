/**
 * Entry point of the inference worker thread (see `inference-backend.ts`): it owns the model's
 * onnxruntime sessions, so their synchronous runs never block the application's event loop.
 */
import { parentPort } from 'node:worker_threads';
import { serveBatchRunner } from './inference-backend.js';

if (!parentPort) throw new Error('inference-worker must run as a worker thread.');
serveBatchRunner(parentPort);
