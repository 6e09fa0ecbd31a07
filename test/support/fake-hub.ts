/**
 * A Hugging Face hub on 127.0.0.1 for tests: real HTTP servers (the hub and a separate-origin "CDN")
 * serving the conformance fixture as repos, in the hub's URL layout and with the headers the hub
 * sends, plus fault injection and a log of every request and connection.
 *
 * What is mimicked (huggingface_hub `file_download.py` / `hf_api.py`, hub behaviour):
 * - `GET /api/models/{org}/{name}/revision/{rev}` → `{ id, sha, siblings: [{ rfilename }] }`
 *   (with `?blobs=true`, sizes and LFS oids too);
 * - `HEAD|GET /{org}/{name}/resolve/{rev}/{path}`: small (git) files → 200 with `ETag: "<git sha1>"`,
 *   `Content-Length`, `X-Repo-Commit`, Range support; LFS files → 302 to the CDN with
 *   `X-Linked-Etag: "<sha256>"`, `X-Linked-Size`, `X-Repo-Commit` and the pointer file's `ETag`;
 * - the CDN (another port, so another origin) serves `/{sha256}?X-Amz-Signature=…` with Range
 *   support and, like S3 pre-signed URLs, rejects requests that carry an `Authorization` header;
 * - errors carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`) and
 *   `X-Error-Message`; an unknown or private repo without a valid token answers 401, as the hub does.
 *
 * Files are held in memory, or (see {@link diskFile}) served from disk: a Buffer cannot be hashed
 * past 2 GiB, and the benchmark serves BGE-M3's 2.2 GB `model.onnx_data`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { TINY_DIR, TINY_M3_DIR } from '../helpers.js';

const { onnx } = onnxProto;

export interface FakeFile {
  /** The content (empty when it is served from {@link FakeFile.path}). */
  data: Buffer;
  /** A local file to serve the content from instead of `data` (no faults apply to it). */
  path?: string;
  /** Bytes of content. */
  size: number;
  lfs: boolean;
  sha256: string;
  gitSha1: string;
}

export interface FakeRepo {
  id: string;
  commit: string;
  files: Map<string, FakeFile>;
  /** Requests need `Authorization: Bearer <token>`. */
  token?: string;
}

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  range?: string;
  authorization?: string;
  /** When the request arrived and when its response ended (performance.now() ms). */
  at: number;
  end?: number;
}

/** Faults, each applied to matching responses while its `times` lasts (default: always). */
export interface Faults {
  /** Serve this file with one byte flipped (index into the file). */
  corrupt?: { file: string; byte: number; times?: number };
  /** Drop the connection after sending this many bytes of the body. */
  drop?: { file: string; afterBytes: number; times?: number };
  /** Send this file slowly: `chunk` bytes every `everyMs`. */
  throttle?: { file: string; chunk: number; everyMs: number };
  /** Ignore `Range` headers for this file (answer 200 with the whole file, as some proxies do). */
  ignoreRange?: { file: string };
  /** Send this (raw, e.g. malicious) ETag for the file instead of its sha256 / git sha1. */
  etag?: { file: string; value: string };
  /** Answer requests whose URL matches with this status (and an optional X-Error-Code), after letting `skip` through. */
  status?: { match: RegExp; status: number; errorCode?: string; times?: number; skip?: number };
}

export const FAKE_TOKEN = 'hf_fake_token_for_tests';
const LFS_PATTERN = /\.(onnx|onnx_data|pt|bin|safetensors|model)$|(^|\/)Constant_[^/]*$/;

function gitSha1(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export function fakeFile(data: Buffer | string, lfs?: boolean, path = ''): FakeFile {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { data: buf, size: buf.length, lfs: lfs ?? LFS_PATTERN.test(path), sha256: createHash('sha256').update(buf).digest('hex'), gitSha1: gitSha1(buf) };
}

/**
 * A file served from disk without reading it into memory (any size), hashed by streaming it once.
 * `repoPath` (its path in the repo) decides whether it is an LFS file, as in {@link fakeFile}.
 */
export async function diskFile(file: string, repoPath: string, lfs?: boolean): Promise<FakeFile> {
  const size = statSync(file).size;
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1').update(`blob ${size}\0`);
  for await (const chunk of createReadStream(file)) {
    sha256.update(chunk as Buffer);
    sha1.update(chunk as Buffer);
  }
  return { data: Buffer.alloc(0), path: file, size, lfs: lfs ?? LFS_PATTERN.test(repoPath), sha256: sha256.digest('hex'), gitSha1: sha1.digest('hex') };
}

/** A repo of `files` (path → content, or a {@link diskFile}); its commit changes with `version`. */
export function fakeRepo(id: string, files: Record<string, Buffer | string | FakeFile>, extra: { token?: string; version?: number } = {}): FakeRepo {
  const map = new Map<string, FakeFile>();
  for (const [path, data] of Object.entries(files)) {
    map.set(path, typeof data === 'string' || Buffer.isBuffer(data) ? fakeFile(data, undefined, path) : data);
  }
  const commit = createHash('sha1').update(`${id}@${extra.version ?? 1}`).digest('hex');
  return { id, commit, files: map, token: extra.token };
}

// --- fixture repos ----------------------------------------------------------------------------

const read = (dir: string, name: string) => readFileSync(join(dir, name));

/**
 * The fixture's encoder graph with one Constant node's value moved to an external file named
 * `Constant_7_attr__value`, exactly the shape of BAAI/bge-m3's `onnx/` export (whose graph names
 * both `model.onnx_data` and `Constant_7_attr__value`).
 */
function baaiStyleGraph(): { graph: Buffer; constant: Buffer } {
  const model = onnx.ModelProto.decode(read(TINY_DIR, 'onnx/model.onnx'));
  const node = model.graph!.node!.find((n) => n.opType === 'Constant' && n.attribute?.[0]?.t?.rawData?.length)!;
  const t = node.attribute![0]!.t!;
  const constant = Buffer.from(t.rawData!);
  t.rawData = new Uint8Array(0);
  t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  t.externalData = [
    { key: 'location', value: 'Constant_7_attr__value' },
    { key: 'offset', value: '0' },
    { key: 'length', value: String(constant.length) },
  ];
  return { graph: Buffer.from(onnx.ModelProto.encode(model).finish()), constant };
}

/** The fixture's encoder graph with its external data inlined (a single self-contained file). */
export function inlinedGraph(): Buffer {
  const model = onnx.ModelProto.decode(read(TINY_DIR, 'onnx/model.onnx'));
  const data = read(TINY_DIR, 'onnx/model.onnx_data');
  for (const t of model.graph!.initializer!) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entry = (k: string) => t.externalData!.find((e) => e.key === k)?.value;
    const offset = Number(entry('offset') ?? 0);
    const length = Number(entry('length') ?? data.length - offset);
    t.rawData = data.subarray(offset, offset + length);
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    t.externalData = [];
  }
  return Buffer.from(onnx.ModelProto.encode(model).finish());
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'sentencepiece.bpe.model', 'config.json'];

/**
 * The repos the fake hub serves by default:
 * - `BAAI/bge-m3`: the real repo's layout (root tokenizer/config, `.pt` heads, `onnx/` graph with two
 *   external-data files, a 64 kB decoy `pytorch_model.bin` that must never be fetched);
 * - `Xenova/bge-m3`: `onnx/model.onnx(+_data)`, `onnx/model_fp16.onnx`, `onnx/model_quantized.onnx`
 *   (self-contained copies of the fixture graph), no heads;
 * - `test-org/bge-m3-m3`: heads inside a root `model.onnx` (aapot/gpahal layout), no `.pt` files;
 * - `test-org/private-bge-m3`: like BAAI/bge-m3 but needs {@link FAKE_TOKEN}.
 */
export function fixtureRepos(): FakeRepo[] {
  const { graph, constant } = baaiStyleGraph();
  const tokenizer = Object.fromEntries(TOKENIZER_FILES.map((f) => [f, read(TINY_DIR, f)]));
  const baaiFiles = {
    ...tokenizer,
    'README.md': '# bge-m3 (test fixture)\n',
    'colbert_linear.pt': read(TINY_DIR, 'colbert_linear.pt'),
    'sparse_linear.pt': read(TINY_DIR, 'sparse_linear.pt'),
    'pytorch_model.bin': Buffer.alloc(65_536, 7),
    'onnx/model.onnx': graph,
    'onnx/model.onnx_data': read(TINY_DIR, 'onnx/model.onnx_data'),
    'onnx/Constant_7_attr__value': constant,
  };
  const inlined = inlinedGraph();
  return [
    fakeRepo('BAAI/bge-m3', baaiFiles),
    fakeRepo('Xenova/bge-m3', {
      ...tokenizer,
      'onnx/model.onnx': read(TINY_DIR, 'onnx/model.onnx'),
      'onnx/model.onnx_data': read(TINY_DIR, 'onnx/model.onnx_data'),
      'onnx/model_fp16.onnx': inlined,
      'onnx/model_quantized.onnx': inlined,
    }),
    fakeRepo('test-org/bge-m3-m3', {
      ...Object.fromEntries(TOKENIZER_FILES.map((f) => [f, read(TINY_M3_DIR, f)])),
      'model.onnx': read(TINY_M3_DIR, 'model.onnx'),
    }),
    fakeRepo('test-org/private-bge-m3', baaiFiles, { token: FAKE_TOKEN }),
  ];
}

// --- the servers ------------------------------------------------------------------------------

export class FakeHub {
  readonly requests: LoggedRequest[] = [];
  /** TCP connections accepted by either server since start (or the last `resetLog`). */
  connections = 0;
  faults: Faults = {};
  readonly repos = new Map<string, FakeRepo>();
  private hub!: Server;
  private cdn!: Server;
  url = '';
  cdnUrl = '';

  constructor(repos: FakeRepo[] = fixtureRepos()) {
    for (const r of repos) this.repos.set(r.id, r);
  }

  async start(): Promise<this> {
    this.hub = createServer((req, res) => this.handleHub(req, res));
    this.cdn = createServer((req, res) => this.handleCdn(req, res));
    for (const s of [this.hub, this.cdn]) s.on('connection', () => this.connections++);
    this.url = `http://127.0.0.1:${await listen(this.hub)}`;
    this.cdnUrl = `http://127.0.0.1:${await listen(this.cdn)}`;
    return this;
  }

  /** Stops both servers and cuts open keep-alive connections. */
  async stop(): Promise<void> {
    await Promise.all(
      [this.hub, this.cdn].map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s.listening) return resolve();
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }

  resetLog(): void {
    this.requests.length = 0;
    this.connections = 0;
  }

  /** Requests that fetched file bytes (GETs of a resolve URL answered 200, or of the CDN). */
  contentGets(file?: string): LoggedRequest[] {
    return this.requests.filter((r) => {
      if (r.method !== 'GET' || r.url.startsWith('/api/')) return false;
      if (!file) return true;
      if (r.server === 'hub') return r.url.endsWith(`/${file}`);
      return [...this.repos.values()].some((repo) => {
        const f = repo.files.get(file);
        return f?.lfs && r.url.startsWith(`/${f.sha256}`);
      });
    });
  }

  private log(server: 'hub' | 'cdn', req: IncomingMessage, res: ServerResponse): void {
    const entry: LoggedRequest = { server, method: req.method ?? '', url: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization, at: performance.now() };
    this.requests.push(entry);
    res.on('close', () => (entry.end = performance.now()));
  }

  private statusFault(req: IncomingMessage, res: ServerResponse): boolean {
    const f = this.faults.status;
    if (!f || !f.match.test(req.url ?? '') || (f.times !== undefined && f.times <= 0)) return false;
    if (f.skip) {
      f.skip--;
      return false;
    }
    if (f.times !== undefined) f.times--;
    error(res, f.status, f.errorCode, `Injected ${f.status}`);
    return true;
  }

  private handleHub(req: IncomingMessage, res: ServerResponse): void {
    this.log('hub', req, res);
    if (this.statusFault(req, res)) return;
    const url = new URL(req.url ?? '/', this.url);
    const parts = url.pathname.split('/').map(decodeURIComponent);
    // /api/models/{org}/{name}/revision/{rev}
    if (parts[1] === 'api' && parts[2] === 'models' && parts[5] === 'revision' && parts.length === 7) {
      const repo = this.authorize(req, res, `${parts[3]}/${parts[4]}`);
      if (!repo) return;
      if (!this.revisionOk(repo, parts[6]!, res)) return;
      const blobs = url.searchParams.get('blobs') === 'true';
      const siblings = [...repo.files].map(([rfilename, f]) =>
        blobs ? { rfilename, size: f.size, blobId: f.lfs ? lfsPointerSha(f) : f.gitSha1, ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.size, pointerSize: lfsPointer(f).length } } : {}) } : { rfilename },
      );
      const body = JSON.stringify({ _id: repo.commit.slice(0, 24), id: repo.id, modelId: repo.id, sha: repo.commit, private: !!repo.token, siblings });
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    // /{org}/{name}/resolve/{rev}/{path...}
    if (parts[3] === 'resolve' && parts.length >= 6) {
      const repo = this.authorize(req, res, `${parts[1]}/${parts[2]}`);
      if (!repo) return;
      if (!this.revisionOk(repo, parts[4]!, res)) return;
      const path = parts.slice(5).join('/');
      const file = repo.files.get(path);
      if (!file) {
        res.setHeader('x-repo-commit', repo.commit);
        error(res, 404, 'EntryNotFound', `${path} does not exist on "main"`);
        return;
      }
      res.setHeader('x-repo-commit', repo.commit);
      const forced = this.faults.etag?.file === path ? this.faults.etag.value : undefined;
      if (file.lfs) {
        const pointer = lfsPointer(file);
        res.writeHead(302, {
          location: `${this.cdnUrl}/${file.sha256}?X-Amz-Signature=fake&response-content-disposition=${encodeURIComponent(`attachment; filename="${path.split('/').pop()}"`)}`,
          etag: `"${gitSha1(pointer)}"`,
          'x-linked-etag': `"${forced ?? file.sha256}"`,
          'x-linked-size': String(file.size),
          'content-length': '0',
        });
        res.end();
        return;
      }
      this.sendBody(req, res, file, path, `"${forced ?? file.gitSha1}"`);
      return;
    }
    error(res, 404, undefined, 'Not found');
  }

  private handleCdn(req: IncomingMessage, res: ServerResponse): void {
    this.log('cdn', req, res);
    if (this.statusFault(req, res)) return;
    if (req.headers.authorization) {
      // S3 pre-signed URLs refuse a second authentication mechanism.
      res.writeHead(400, { 'content-type': 'application/xml' });
      res.end('<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>');
      return;
    }
    const url = new URL(req.url ?? '/', this.cdnUrl);
    if (!url.searchParams.get('X-Amz-Signature')) return error(res, 403, undefined, 'AccessDenied');
    const sha = url.pathname.slice(1);
    for (const repo of this.repos.values()) {
      for (const [path, file] of repo.files) {
        if (file.lfs && file.sha256 === sha) return this.sendBody(req, res, file, path, `"${sha}"`);
      }
    }
    error(res, 404, undefined, 'NoSuchKey');
  }

  /** The repo if the request may see it; otherwise answers as the hub does and returns undefined. */
  private authorize(req: IncomingMessage, res: ServerResponse, id: string): FakeRepo | undefined {
    const repo = this.repos.get(id);
    const auth = req.headers.authorization;
    const validToken = auth === `Bearer ${FAKE_TOKEN}`;
    if (auth && !validToken) {
      error(res, 401, undefined, 'Invalid credentials in Authorization header');
      return undefined;
    }
    if (!repo || (repo.token && !validToken)) {
      // Anonymous callers cannot tell "missing" from "private": both are 401 RepoNotFound.
      error(res, validToken ? 404 : 401, 'RepoNotFound', 'Repository not found');
      return undefined;
    }
    return repo;
  }

  private revisionOk(repo: FakeRepo, rev: string, res: ServerResponse): boolean {
    if (rev === 'main' || rev === repo.commit) return true;
    error(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    return false;
  }

  private sendBody(req: IncomingMessage, res: ServerResponse, file: FakeFile, path: string, etag: string): void {
    const size = file.size;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = this.faults.ignoreRange?.file === path ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]));
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      status = 206;
    }
    const headers: Record<string, string> = {
      etag,
      'accept-ranges': 'bytes',
      'content-length': String(end - start + 1),
      'content-type': 'application/octet-stream',
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return void res.end();
    if (file.path && size > 0) {
      createReadStream(file.path, { start, end }).on('error', () => res.destroy()).pipe(res);
      return;
    }

    let body = file.data.subarray(start, end + 1);
    const corrupt = this.faults.corrupt;
    if (corrupt?.file === path && (corrupt.times ?? 1) > 0 && corrupt.byte >= start && corrupt.byte <= end) {
      if (corrupt.times !== undefined) corrupt.times--;
      body = Buffer.from(body);
      body[corrupt.byte - start] = body[corrupt.byte - start]! ^ 0xff;
    }
    const drop = this.faults.drop;
    if (drop?.file === path && (drop.times ?? 1) > 0) {
      if (drop.times !== undefined) drop.times--;
      const cut = Math.max(0, Math.min(body.length, drop.afterBytes - start));
      res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    const throttle = this.faults.throttle;
    if (throttle?.file === path) {
      let pos = 0;
      const tick = () => {
        if (res.destroyed) return;
        const next = body.subarray(pos, pos + throttle.chunk);
        pos += next.length;
        if (pos >= body.length) return void res.end(next);
        res.write(next);
        setTimeout(tick, throttle.everyMs);
      };
      tick();
      return;
    }
    res.end(body);
  }
}

function lfsPointer(f: FakeFile): Buffer {
  return Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${f.sha256}\nsize ${f.size}\n`);
}

function lfsPointerSha(f: FakeFile): string {
  return gitSha1(lfsPointer(f));
}

function error(res: ServerResponse, status: number, code: string | undefined, message: string): void {
  const body = JSON.stringify({ error: message });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-error-message': message,
    ...(code ? { 'x-error-code': code } : {}),
  });
  res.end(body);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Starts a fake hub serving {@link fixtureRepos} (or the given repos). */
export function startFakeHub(repos?: FakeRepo[]): Promise<FakeHub> {
  return new FakeHub(repos).start();
}
