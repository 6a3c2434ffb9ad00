// Runs Debian's Orthanc (with its DICOMweb plugin) on loopback with a generated configuration in a temporary
// folder, for development and for the end-to-end test.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ORTHANC_BIN = '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancOptions {
  /** HTTP port; 0 or undefined picks a free one. */
  port?: number;
  /** Storage folder; a temporary folder (removed on stop) when not given. */
  storageDir?: string;
  bin?: string;
  plugin?: string;
}

export interface RunningOrthanc {
  url: string;
  dicomWebUrl: string;
  port: number;
  /** Uploads every file under a folder (or one file): counts of accepted and refused files. */
  upload(path: string): Promise<{ uploaded: string[]; refused: { file: string; reason: string }[] }>;
  stop(): Promise<void>;
  /** Orthanc's own log, for error messages. */
  logText(): string;
}

/** A message saying what is missing, or undefined when Orthanc and its DICOMweb plugin are installed. */
export function orthancMissing(bin = ORTHANC_BIN, plugin = DICOMWEB_PLUGIN): string | undefined {
  const missing = [bin, plugin].filter((p) => !existsSync(p));
  if (missing.length === 0) return undefined;
  return `Orthanc is not installed (${missing.join(', ')} missing): install the Debian packages orthanc and orthanc-dicomweb (.ci/run does)`;
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

function listFiles(path: string): string[] {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? listFiles(join(path, d.name)) : [join(path, d.name)]))
    .sort();
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Orthanc exited with code ${child.exitCode}`);
    try {
      const r = await fetch(`${url}/system`);
      if (r.ok) {
        const plugins = await (await fetch(`${url}/plugins`)).json() as string[];
        if (!plugins.includes('dicom-web')) throw new Error('Orthanc started without its DICOMweb plugin');
        return;
      }
    } catch (err) {
      if (err instanceof Error && /DICOMweb plugin/.test(err.message)) throw err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Orthanc did not answer within ${timeoutMs} ms`);
}

export async function startOrthanc(o: OrthancOptions = {}): Promise<RunningOrthanc> {
  const bin = o.bin ?? ORTHANC_BIN;
  const plugin = o.plugin ?? DICOMWEB_PLUGIN;
  const missing = orthancMissing(bin, plugin);
  if (missing) throw new Error(missing);
  const port = o.port || (await freePort());
  const work = mkdtempSync(join(tmpdir(), 'zerovar-orthanc-'));
  const storage = o.storageDir ?? join(work, 'db');
  const config = {
    Name: 'zerovar-orthanc',
    HttpPort: port,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomServerEnabled: false,
    StorageDirectory: storage,
    IndexDirectory: storage,
    Plugins: [plugin],
    DicomWeb: {
      Enable: true,
      Root: '/dicom-web/',
      EnableWado: true,
      WadoRoot: '/wado',
      Host: `127.0.0.1:${port}`,
      Ssl: false,
    },
  };
  const configFile = join(work, 'orthanc.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const logFile = join(work, 'orthanc.log');
  const logFd = openSync(logFile, 'a');
  const child = spawn(bin, [configFile], { stdio: ['ignore', logFd, logFd] });
  const url = `http://127.0.0.1:${port}`;
  const logText = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(work, { recursive: true, force: true });
  };
  try {
    await waitReady(url, child, 20000);
  } catch (err) {
    const text = logText().split('\n').slice(-20).join('\n');
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${text}`);
  }
  return {
    url,
    port,
    dicomWebUrl: `${url}/dicom-web`,
    logText,
    stop,
    async upload(path) {
      const uploaded: string[] = [];
      const refused: { file: string; reason: string }[] = [];
      for (const file of listFiles(path)) {
        const r = await fetch(`${url}/instances`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/dicom' },
          body: readFileSync(file),
        });
        if (r.ok) uploaded.push(file);
        else refused.push({ file, reason: `HTTP ${r.status} ${(await r.text()).slice(0, 200)}` });
      }
      return { uploaded, refused };
    },
  };
}
