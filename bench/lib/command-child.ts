/**
 * Long-lived child processes that take commands, for measurements that must interleave with the
 * parent's own (A B A B …) while running in another process (transformers.js's onnxruntime-node
 * must not share a process with this package's).
 *
 * The parent starts the child with a JSON config as its last argument (as `child-protocol.ts`
 * does), writes one JSON command per line on its stdin, and reads one `@@bench {json}` reply per
 * command on its stdout (`{ type: 'reply', id, ok, value | error }`); anything else the child
 * prints is passed through to the parent's stderr. The child handles commands one at a time, in
 * order, and times its own work (so the pipe's latency is not in its numbers).
 *
 * Kept free of onnxruntime imports: transformers.js's child imports it too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { MESSAGE_PREFIX } from './child-protocol.js';

export interface Command {
  cmd: string;
  [key: string]: unknown;
}

type Reply = { type: 'reply'; id: number; ok: true; value: unknown } | { type: 'reply'; id: number; ok: false; error: string };

function send(message: unknown): void {
  process.stdout.write(`${MESSAGE_PREFIX}${JSON.stringify(message)}\n`);
}

/**
 * Child side: answers each command line on stdin with `handle(command)`'s value, in order; exits
 * when stdin closes or on `{ cmd: 'exit' }`. `ready` (e.g. the model load) runs first and its
 * value is sent as the reply to id -1.
 */
export function serveCommands(ready: () => Promise<unknown>, handle: (command: Command) => Promise<unknown>): void {
  let queue: Promise<void> = ready().then(
    (value) => send({ type: 'reply', id: -1, ok: true, value } satisfies Reply),
    (e: unknown) => {
      send({ type: 'reply', id: -1, ok: false, error: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) } satisfies Reply);
      process.exit(1);
    },
  );
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    const { id, ...command } = JSON.parse(line) as Command & { id: number };
    queue = queue.then(async () => {
      if (command.cmd === 'exit') {
        send({ type: 'reply', id, ok: true, value: null } satisfies Reply);
        process.exit(0);
      }
      try {
        send({ type: 'reply', id, ok: true, value: await handle(command as Command) } satisfies Reply);
      } catch (e) {
        send({ type: 'reply', id, ok: false, error: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) } satisfies Reply);
      }
    });
  });
  lines.on('close', () => {
    void queue.then(() => process.exit(0));
  });
}

/** Parent side: one running command child. */
export class CommandChild {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: string | undefined;

  private constructor(private readonly child: ChildProcess) {}

  /**
   * Starts `script` under tsx (`node --import tsx script config`) from `cwd` and waits for its
   * `ready` reply, whose value is returned.
   */
  static async start<T = unknown>(script: string, config: unknown, options: { cwd: string; env?: NodeJS.ProcessEnv; label?: string }): Promise<{ child: CommandChild; ready: T }> {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script, JSON.stringify(config)], {
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, ...options.env },
    });
    const child = new CommandChild(proc);
    const label = options.label ?? script;
    const readyPromise = new Promise<unknown>((resolve, reject) => child.pending.set(-1, { resolve, reject }));
    let buffered = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith(MESSAGE_PREFIX)) {
          const reply = JSON.parse(line.slice(MESSAGE_PREFIX.length)) as Reply;
          const p = child.pending.get(reply.id);
          if (!p) continue;
          child.pending.delete(reply.id);
          if (reply.ok) p.resolve(reply.value);
          else p.reject(new Error(`${label}: ${reply.error}`));
        } else if (line.trim()) process.stderr.write(`    [${label}] ${line}\n`);
      }
    });
    proc.on('exit', (code, signal) => {
      child.exited = `exited with ${signal ?? `code ${code}`}`;
      for (const p of child.pending.values()) p.reject(new Error(`${label} ${child.exited}`));
      child.pending.clear();
    });
    return { child, ready: (await readyPromise) as T };
  }

  /** Sends one command and waits for its reply. */
  request<T = unknown>(command: Command): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`the child ${this.exited}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  }

  /** Asks the child to exit and waits for it (killing it after `timeoutMs`). */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.request({ cmd: 'exit' }).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await done;
    clearTimeout(timer);
  }

  /** The child's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }
}
