// The viewer host: one node:http server for the OHIF dist, our bundles and models, the embedded DICOMweb source and
// a same-origin proxy to a PACS. Every answer carries the cross-origin isolation headers (wasm threads need them).
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { DicomWebSource } from './dicomweb.js';
import { MODEL_INDEX_PATH, MODELS_ROOT, modelIndexReader } from './model-index.js';
import { repairMultipartFrames, sanitizeMetadataText } from './viewer-fixes.js';

export const EMBEDDED_ROOT = '/dicom-web';
export const PROXY_ROOT = '/pacs/dicom-web';

export interface HostOptions {
  /** The OHIF `dist` folder. */
  ohifDist: string;
  /** Text served as `/app-config.js`. */
  appConfig: string;
  /** Built bundles, served under `/zerovar/`. */
  bundleDir: string;
  /** Model bundles, served under `/zerovar/models/` with their index at `/zerovar/models/index.json`. */
  modelsDir?: string;
  /** Embedded DICOMweb source, mounted at `/dicom-web`. */
  embedded?: DicomWebSource;
  /** Upstream DICOMweb root proxied at `/pacs/dicom-web`, e.g. `http://127.0.0.1:8042/dicom-web`. */
  dicomweb?: string;
  port?: number;
  host?: string;
  log?: (line: string) => void;
}

export interface RunningHost {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.map': 'application/json', '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg', '.ico': 'image/x-icon', '.gif': 'image/gif',
  '.woff': 'font/woff', '.woff2': 'font/woff2', '.ttf': 'font/ttf', '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml', '.bin': 'application/octet-stream', '.webmanifest': 'application/manifest+json',
};

function isolationHeaders(res: ServerResponse): void {
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

/** Resolves `rel` inside `dir`, refusing paths that climb out of it. */
function safeJoin(dir: string, rel: string): string | undefined {
  const base = resolve(dir);
  const p = normalize(join(base, rel));
  return p === base || p.startsWith(base + sep) ? p : undefined;
}

function sendFile(req: IncomingMessage, res: ServerResponse, file: string, cache: string): boolean {
  if (!existsSync(file)) return false;
  const st = statSync(file);
  if (!st.isFile()) return false;
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': st.size,
    'Cache-Control': cache,
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
  return true;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

/**
 * Forwards a request to the upstream DICOMweb root. JSON answers have the upstream's own absolute URLs
 * (BulkDataURI, RetrieveURL) rewritten to the proxy, so the page never talks to another origin.
 */
function proxy(req: IncomingMessage, res: ServerResponse, url: URL, upstreamRoot: string, log: (l: string) => void): void {
  const upstream = new URL(upstreamRoot.replace(/\/+$/, '') + url.pathname.slice(PROXY_ROOT.length) + url.search);
  const headers: Record<string, string | string[]> = {};
  for (const name of ['accept', 'content-type', 'content-length', 'authorization', 'range']) {
    const v = req.headers[name];
    if (v !== undefined) headers[name] = v;
  }
  const send_ = upstream.protocol === 'https:' ? httpsRequest : httpRequest;
  const up = send_(upstream, { method: req.method, headers }, (upRes) => {
    const type = String(upRes.headers['content-type'] ?? '');
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upRes.headers)) {
      if (v !== undefined && !/^(connection|keep-alive|transfer-encoding|access-control-|content-length$)/i.test(k)) out[k] = v;
    }
    if (/json/i.test(type)) {
      const chunks: Buffer[] = [];
      upRes.on('data', (c: Buffer) => chunks.push(c));
      upRes.on('end', () => {
        const origin = `http://${req.headers.host ?? 'localhost'}`;
        const text = Buffer.concat(chunks).toString('utf8').split(upstreamRoot.replace(/\/+$/, '')).join(origin + PROXY_ROOT);
        res.writeHead(upRes.statusCode ?? 502, out);
        res.end(/\/metadata$/.test(url.pathname) ? sanitizeMetadataText(text) : text);
      });
    } else if (/\/frames\/[^/]+$/.test(url.pathname) && /multipart\/related/i.test(type)) {
      // Frames are buffered so that codestreams OHIF's decoders reject can be repaired (see viewer-fixes.ts).
      const chunks: Buffer[] = [];
      upRes.on('data', (c: Buffer) => chunks.push(c));
      upRes.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(upRes.statusCode ?? 502, out);
        res.end(repairMultipartFrames(body, type) ?? body);
      });
    } else {
      res.writeHead(upRes.statusCode ?? 502, out);
      upRes.pipe(res);
    }
  });
  up.on('error', (err) => {
    log(`proxy error for ${upstream.href}: ${err.message}`);
    if (!res.headersSent) send(res, 502, `DICOMweb upstream unreachable: ${err.message}`);
    else res.destroy();
  });
  req.pipe(up);
}

/**
 * STOW-RS to the embedded folder source: refused, since the folder is served read-only (shared data); the panel
 * already says saving is unavailable there (its data source has dicomUploadEnabled false).
 */
function refuseEmbeddedStore(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.setHeader('Allow', 'GET, HEAD');
  send(res, 405, 'the embedded DICOM folder source is read-only: store reports in a PACS (start with --dicomweb URL)');
}

export function createHostHandler(o: HostOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const log = o.log ?? (() => {});
  const indexHtml = join(o.ohifDist, 'index.html');
  const modelIndex = o.modelsDir ? modelIndexReader(o.modelsDir) : undefined;
  return (req, res) => {
    isolationHeaders(res);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://host.invalid');
    } catch {
      return send(res, 400, 'bad request');
    }
    const path = decodeURIComponent(url.pathname);
    try {
      if (path === PROXY_ROOT || path.startsWith(PROXY_ROOT + '/')) {
        if (!o.dicomweb) return send(res, 404, 'no PACS configured (start with --dicomweb URL)');
        return proxy(req, res, url, o.dicomweb, log);
      }
      if (path === EMBEDDED_ROOT || path.startsWith(EMBEDDED_ROOT + '/')) {
        if (req.method === 'POST') return refuseEmbeddedStore(req, res);
        if (!o.embedded) return send(res, 404, 'no embedded DICOM folder configured (start with --dicom DIR)');
        return o.embedded.handle(req, res, url);
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
      if (path === '/app-config.js') return send(res, 200, o.appConfig, TYPES['.js']);
      if (path === MODEL_INDEX_PATH) {
        if (!modelIndex) return send(res, 404, 'no models folder');
        return send(res, 200, JSON.stringify(modelIndex()), TYPES['.json']);
      }
      if (path.startsWith(MODELS_ROOT)) {
        const file = o.modelsDir && safeJoin(o.modelsDir, path.slice(MODELS_ROOT.length));
        if (file && sendFile(req, res, file, 'no-cache')) return;
        return send(res, 404, 'not found');
      }
      if (path.startsWith('/zerovar/')) {
        const file = safeJoin(o.bundleDir, path.slice('/zerovar/'.length));
        if (file && sendFile(req, res, file, 'no-cache')) return;
        return send(res, 404, 'not found');
      }
      const file = safeJoin(o.ohifDist, path.slice(1));
      if (file && path !== '/' && sendFile(req, res, file, 'public, max-age=3600')) return;
      // The viewer is a single-page app: routes such as /zerovar-chest are answered with index.html.
      if (extname(path) === '' || path === '/') {
        if (sendFile(req, res, indexHtml, 'no-cache')) return;
      }
      return send(res, 404, 'not found');
    } catch (err) {
      log(`error serving ${path}: ${err instanceof Error ? err.stack : String(err)}`);
      if (!res.headersSent) send(res, 500, 'internal error');
      else res.destroy();
    }
  };
}

/** Starts the host; port 0 picks a free port. */
export function startHost(o: HostOptions): Promise<RunningHost> {
  const server = createServer(createHostHandler(o));
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 3000, o.host ?? '127.0.0.1', () => {
      server.off('error', fail);
      const port = (server.address() as AddressInfo).port;
      const host = o.host && o.host !== '127.0.0.1' && o.host !== '0.0.0.0' ? o.host : 'localhost';
      ok({
        server,
        port,
        url: `http://${host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
