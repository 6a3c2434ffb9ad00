// Viewer benchmark: what a radiologist waits for in the browser. The viewer's own inference Web Worker (the
// webpack-built chunk, served by the viewer host with its cross-origin isolation headers) classifies a real
// full-size chest radiograph and computes its Grad-CAM map, in headless Debian Chromium, on each tfjs backend the
// page offers (wasm, WebGL, WebGPU on a software adapter), for the PRUNED bundle and its UNPRUNED reference side by
// side. Every (backend, bundle) pair gets a fresh worker, so its first request is cold (fetch + checksums + model
// load + the worker's cross-backend verification + first classification and Grad-CAM), the next ones warm.
// Warm requests also classify without the out-of-distribution guard, so the guard's share of a warm
// classification is printed for the bundles that carry one (the released ones).
//
//   node --import tsx tests/bench/viewer.bench.ts [--quick] [--warm=N] [--backends=wasm,webgl,webgpu] [--no-build]
//                                                 [--rounds=N] [--keep] [--page-orders=auto,wasm] [--no-page]
//
// Then the real viewer page (OHIF with our mode, the same image from the embedded folder source, the released
// bundles): the panel's own Total for the first Run on a fresh page and for warm Runs, once with the page's own
// backend choice ('auto') and once per forced order given, beside the worker-only figures.
//
// The bundles come from a quick trainer run (MobileNetV2 0.35 at 224 px, few images, few epochs): its timings are
// those of the real network size, but its pruning is whatever so short a fine-tune leaves. The released bundles
// (models/raw and models/masked, or under $ZEROVAR_MODELS) are benchmarked too when present.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { BackendName } from '../../extension/src/inferenceProtocol.js';
import { buildBundles } from '../../scripts/host/build.js';
import { startHost, type RunningHost } from '../../scripts/host/server.js';
import { dicomToGrey } from '../../trainer/src/data/dicom.js';
import { CHROMIUM, chromiumMissing } from '../e2e/browser.js';
import { projectRoot, sharedPath } from '../helpers/shared.js';
import { bundleStats, trainQuickBundles, type BundleStats } from './viewer-bundles.js';
import { measureInViewer, printPageTable } from './viewer-ohif.js';
import { coldExpression, PAGE_HTML, warmExpression, warmupExpression, type ColdResult, type Timed, type WarmResult } from './viewer-page.js';

interface Options {
  quick: boolean;
  warm: number;
  rounds: number;
  backends: BackendName[];
  build: boolean;
  keep: boolean;
  /** Backend orders for the in-page runs ('auto': the page's own choice); empty with --no-page. */
  pageOrders: string[];
}

function parseOptions(argv: string[]): Options {
  const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = argv.includes('--quick');
  const known = ['wasm', 'webgl', 'webgpu', 'cpu'];
  const backends = (value('backends') ?? 'wasm,webgl,webgpu').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = backends.filter((b) => !known.includes(b));
  if (bad.length) throw new Error(`unknown backend(s) ${bad.join(', ')}; known: ${known.join(', ')}`);
  const int = (name: string, dflt: number) => {
    const v = value(name);
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  return {
    quick,
    warm: int('warm', quick ? 3 : 10),
    rounds: int('rounds', quick ? 1 : 2),
    backends: backends as BackendName[],
    build: !argv.includes('--no-build'),
    keep: argv.includes('--keep'),
    pageOrders: argv.includes('--no-page') ? [] : (value('page-orders') ?? (quick ? 'auto' : 'auto,wasm')).split(',').map((x) => x.trim()).filter(Boolean),
  };
}

/** A full-size CR from the shared DICOM files: the classify path resizes it exactly as for a displayed image. */
const TEST_DICOM = 'cr-mono1-8bit-jpeg-baseline-large.dcm';
/** The software WebGL / WebGPU paths compile shaders on first use; allow them minutes on a slow machine. */
const MEASURE_TIMEOUT_MS = 240_000;
/** Warm requests stop early when they pass this much time (WebGPU on a software adapter takes seconds each). */
const WARM_BUDGET_MS = 30_000;

type ColdOk = Extract<ColdResult, { ok: true }>;

/** One (backend, bundle) pair: its cold figures (median round) and warm requests, or why it failed. */
type Row = { backend: BackendName; bundle: string } & (
  | { ok: true; cold: ColdOk; rounds: number; warm: Timed[] }
  | { ok: false; error: string }
);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);
const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

async function withTimeout<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error(`${what} took longer than ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function launch(profile: string): Promise<{ context: BrowserContext; page: Page }> {
  // The end-to-end test's flags, plus the ones that give WebGPU a (software) adapter on a machine without a GPU.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}

function workerChunk(): string {
  const dir = join(projectRoot, 'dist', 'zerovar', 'chunks');
  const name = existsSync(dir) ? readdirSync(dir).find((f) => /^zerovar-inference\.[0-9a-f]+\.js$/.test(f)) : undefined;
  if (!name) throw new Error('dist/zerovar/chunks has no zerovar-inference chunk: run npm run build (or drop --no-build)');
  return `/zerovar/chunks/${name}`;
}

/** What the page can offer, before any worker runs: WebGPU needs an adapter, WebGL a context. */
async function pageCapabilities(page: Page): Promise<{ isolated: boolean; webgpu: string; webgl: string }> {
  return (await page.evaluate(`(async () => {
    let webgpu = 'no navigator.gpu';
    if (navigator.gpu) {
      try {
        const a = await navigator.gpu.requestAdapter();
        webgpu = a ? 'adapter: ' + ((a.info && (a.info.description || a.info.vendor + ' ' + a.info.architecture)) || 'unnamed') : 'no adapter';
      } catch (e) { webgpu = 'requestAdapter failed: ' + e.message; }
    }
    const gl = document.createElement('canvas').getContext('webgl2');
    const dbg = gl && gl.getExtension('WEBGL_debug_renderer_info');
    const webgl = gl ? 'WebGL2: ' + (dbg ? gl.getParameter(dbg.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)) : 'no WebGL2 context';
    return { isolated: self.crossOriginIsolated, webgpu, webgl };
  })()`)) as { isolated: boolean; webgpu: string; webgl: string };
}

function printTable(rows: Row[]): void {
  const head = ['backend', 'bundle', 'init', 'load+verify', 'classify 1st', 'cold total', 'classify warm', 'Grad-CAM 1st',
    'Grad-CAM warm', 'first answer', 'round trip warm', 'n warm'];
  const lines: string[][] = [head];
  for (const r of rows) {
    if (!r.ok) {
      lines.push([r.backend, r.bundle, `failed: ${r.error.slice(0, 160)}`]);
      continue;
    }
    const { init, initWallMs, cold } = r.cold;
    lines.push([
      r.backend, r.bundle, ms(init.ms), ms(cold.loadMs), ms(cold.classifyMs), ms(cold.loadMs + cold.classifyMs),
      ms(median(r.warm.map((w) => w.classifyMs))), ms(cold.explainMs), ms(median(r.warm.map((w) => w.explainMs))),
      ms(initWallMs + cold.wallMs), ms(median(r.warm.map((w) => w.wallMs))), String(r.warm.length),
    ]);
  }
  const full = lines.filter((l) => l.length === head.length);
  const widths = head.map((_, i) => Math.max(...full.map((l) => l[i].length)));
  for (const l of lines) {
    console.log(l.length === head.length ? l.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') : l.join('  '));
  }
}

/** Time ratios pruned / unpruned per backend (below 1: the pruned bundle is faster). */
function printRatios(rows: Row[], backends: BackendName[]): void {
  console.log('\nPruned / unpruned time (< 1: the pruned bundle is faster; x = speed-up):');
  type Ok = Extract<Row, { ok: true }>;
  const find = (b: BackendName, name: string) => rows.find((x): x is Ok => x.backend === b && x.bundle === name && x.ok);
  const ratio = (x: number, y: number) => `${(x / y).toFixed(2)} (x${(y / x).toFixed(2)})`;
  const warmC = (r: Ok) => median(r.warm.map((w) => w.classifyMs));
  const warmE = (r: Ok) => median(r.warm.map((w) => w.explainMs));
  for (const b of backends) {
    const p = find(b, 'pruned');
    const u = find(b, 'unpruned');
    if (!p || !u) {
      console.log(`  ${b.padEnd(7)} -`);
      continue;
    }
    const [pc, uc] = [p.cold.cold, u.cold.cold];
    console.log(
      `  ${b.padEnd(7)} cold total ${ratio(pc.loadMs + pc.classifyMs, uc.loadMs + uc.classifyMs)}  load+verify ${ratio(pc.loadMs, uc.loadMs)}` +
        `  classify warm ${ratio(warmC(p), warmC(u))}  Grad-CAM 1st ${ratio(pc.explainMs, uc.explainMs)}  Grad-CAM warm ${ratio(warmE(p), warmE(u))}`,
    );
  }
}

/**
 * The out-of-distribution guard's share of the warm classification: each warm request also classified the image
 * without the guard (`unguardedMs`); the guard is what the guarded classification took beyond that and beyond
 * a masked bundle's segmentation. A raw bundle's guard reads the classifier's own pass (one pooled output and
 * a distance); a masked bundle's looks at the unmasked image, a network pass of its own.
 */
function printGuard(rows: Row[]): void {
  console.log('\nOut-of-distribution guard, warm (medians): guard = classify - segmentation - classify without the guard:');
  for (const r of rows) {
    if (!r.ok) continue;
    const tag = `  ${r.backend.padEnd(7)} ${r.bundle.padEnd(16)}`;
    const guarded = r.warm.filter((w) => w.ood && w.unguardedMs !== undefined);
    if (!r.cold.cold.ood || guarded.length === 0) {
      console.log(`${tag} no guard in this bundle`);
      continue;
    }
    const classify = median(guarded.map((w) => w.classifyMs));
    const guard = median(guarded.map((w) => Math.max(0, w.classifyMs - w.segmentMs - (w.unguardedMs ?? 0))));
    const v = r.cold.cold.ood;
    console.log(`${tag} classify ${ms(classify)}, without the guard ${ms(median(guarded.map((w) => w.unguardedMs ?? 0)))}, ` +
      `guard ${ms(guard)} (${((100 * guard) / classify).toFixed(0)} % of the classification); ` +
      `test image ${v.flagged ? 'flagged' : 'accepted'} (score ${v.score.toFixed(0)}, limit ${v.threshold.toFixed(0)})`);
  }
}

function printBundles(stats: Record<string, BundleStats>): void {
  console.log('\nBundles:');
  for (const [label, s] of Object.entries(stats)) {
    const units = s.unitsBefore !== undefined && s.unitsAfter !== undefined ? `, units ${s.unitsAfter}/${s.unitsBefore}` : '';
    console.log(`  ${label.padEnd(15)} ${s.name}: ${mb(s.bytes)}, ${s.params.toLocaleString('en-US')} weights${s.segmenterParams ? ` (${s.segmenterParams.toLocaleString('en-US')} in its lung segmenter)` : ''}, ${s.features} features to the classifier, ${s.inputSize} px${units}`);
  }
  const p = stats.pruned;
  const u = stats.unpruned;
  if (p && u) {
    console.log(`  pruned / unpruned: size ${(p.bytes / u.bytes).toFixed(3)}, weights ${(p.params / u.params).toFixed(3)}, features ${p.features}/${u.features}`);
  }
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  const dataset = sharedPath('data', 'covid19-radiography-subset');
  const weights = sharedPath('weights', 'mobilenet_v2_0.35_224_notop');
  const dicom = sharedPath('dicom', TEST_DICOM);

  const t0 = performance.now();
  if (o.build) {
    console.log('building the extension (webpack) ...');
    await buildBundles(projectRoot);
  }
  const workerUrl = workerChunk();

  const tmp = mkdtempSync(join(tmpdir(), 'zerovar-viewer-bench-'));
  let host: RunningHost | undefined;
  let context: BrowserContext | undefined;
  try {
    const limit = o.quick ? 40 : 60;
    const epochs = o.quick ? 2 : 3;
    console.log(`training quick bundles: MobileNetV2 0.35 at 224 px, ${limit} images per class, ${epochs} epochs ...`);
    const tTrain = performance.now();
    const exp = trainQuickBundles(projectRoot, { dataset, weights, experimentsDir: join(tmp, 'experiments'), limit, epochs });
    console.log(`  done in ${((performance.now() - tTrain) / 1000).toFixed(0)} s`);

    const models = join(tmp, 'models');
    mkdirSync(models);
    symlinkSync(join(exp, 'bundle'), join(models, 'pruned'));
    symlinkSync(join(exp, 'bundle-unpruned'), join(models, 'unpruned'));
    const bundles = ['pruned', 'unpruned'];
    // The released bundles, found as the end-to-end test finds them: the project's models/ or $ZEROVAR_MODELS.
    const releasedDir = resolve(process.env.ZEROVAR_MODELS ?? join(projectRoot, 'models'));
    for (const variant of ['raw', 'masked']) {
      if (!existsSync(join(releasedDir, variant, 'manifest.json'))) continue;
      symlinkSync(join(releasedDir, variant), join(models, `released-${variant}`));
      bundles.push(`released-${variant}`);
    }
    const stats: Record<string, BundleStats> = {};
    for (const b of bundles) stats[b] = bundleStats(join(models, b));

    const grey = await dicomToGrey(new Uint8Array(readFileSync(dicom)));
    const site = join(tmp, 'site');
    mkdirSync(site);
    writeFileSync(join(site, 'index.html'), PAGE_HTML);
    writeFileSync(join(site, 'image.bin'), grey.data);

    host = await startHost({ ohifDist: site, appConfig: '', bundleDir: join(projectRoot, 'dist', 'zerovar'), modelsDir: models, port: 0 });
    const launched = await launch(join(tmp, 'profile'));
    context = launched.context;
    const page = launched.page;
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${host.url}/`);
    const caps = await pageCapabilities(page);
    const version = context.browser()?.version() ?? (await page.evaluate('navigator.userAgent'));
    console.log(`\nChromium ${version}, headless; crossOriginIsolated: ${caps.isolated}; ${caps.webgl}; WebGPU: ${caps.webgpu}`);
    console.log(`test image: ${TEST_DICOM}, ${grey.width} x ${grey.height} (8-bit displayed image), Grad-CAM map 256 px`);
    console.log(`worker: ${workerUrl}; warm requests per bundle: ${o.warm} (fewer when they pass ${WARM_BUDGET_MS / 1000} s); rounds: ${o.rounds}\n`);

    const rows: Row[] = [];
    const unusable: string[] = [];
    const target = (backend: BackendName) => ({ workerUrl, wasmPath: '/zerovar/', backend });
    const image = { imageUrl: '/image.bin', width: grey.width, height: grey.height, camSize: 256 };
    const evaluate = async <T>(expression: string, what: string): Promise<T> => {
      try {
        return (await withTimeout(page.evaluate(expression), MEASURE_TIMEOUT_MS, what)) as T;
      } catch (e) {
        await page.reload(); // ends any worker still running
        return { ok: false, stage: 'classify', error: e instanceof Error ? e.message : String(e) } as T;
      }
    };
    for (const backend of o.backends) {
      // Fetches and compiles the worker script and the wasm binary once, so the first bundle measured on this
      // backend does not pay for what the next one would get from the cache.
      const warmup = await evaluate<{ ok: boolean; error?: string }>(warmupExpression(target(backend)), `${backend} initialisation`);
      if (!warmup.ok) {
        unusable.push(`${backend}: ${warmup.error}`);
        console.log(`${backend}: unusable (${warmup.error})`);
        continue;
      }
      const colds = new Map<string, ColdOk[]>(bundles.map((b) => [b, []]));
      const failed = new Map<string, string>();
      for (let round = 0; round < o.rounds; round++) {
        // Alternate the order between rounds: a backend may keep compiled shaders from one worker to the next.
        const order = round % 2 === 0 ? bundles : [...bundles].reverse();
        for (const bundle of order.filter((b) => !failed.has(b))) {
          let r = await evaluate<ColdResult>(coldExpression({ ...target(backend), ...image, modelUrl: `/zerovar/models/${bundle}/` }), `${backend} / ${bundle}`);
          if (r.ok && r.cold.backend !== backend) r = { ok: false, stage: 'classify', error: `ran on ${r.cold.backend} instead` };
          const tag = `${backend} / ${bundle}${o.rounds > 1 ? ` (round ${round + 1})` : ''}`;
          if (!r.ok && /Instance dropped|GPU (process|device) (was )?lost/i.test(r.error)) {
            r = { ...r, error: `${r.error} (Chromium's GPU process went away during the request)` };
          }
          if (!r.ok) {
            failed.set(bundle, `${r.stage}: ${r.error}`);
            console.log(`${tag}: failed at ${r.stage}: ${r.error}`);
            continue;
          }
          colds.get(bundle)!.push(r);
          const c = r.cold;
          console.log(`${tag}: cold ${ms(c.loadMs)} load+verify + ${ms(c.classifyMs)} classify + ${ms(c.explainMs)} Grad-CAM; ` +
            `${c.className} p=${Math.max(...c.probabilities).toFixed(3)}`);
        }
      }
      const usable = bundles.filter((b) => !failed.has(b));
      let warm: WarmResult = { ok: true, warm: {} };
      if (usable.length) {
        warm = await evaluate<WarmResult>(
          warmExpression({ ...target(backend), ...image, modelUrls: usable.map((b) => `/zerovar/models/${b}/`), count: o.warm, budgetMs: WARM_BUDGET_MS }),
          `${backend} warm requests`,
        );
        if (!warm.ok) console.log(`${backend} warm requests: failed at ${warm.stage}: ${warm.error}`);
      }
      for (const bundle of bundles) {
        const err = failed.get(bundle) ?? (warm.ok ? undefined : `warm ${warm.stage}: ${warm.error}`);
        const list = colds.get(bundle)!;
        if (err || !warm.ok) {
          rows.push({ backend, bundle, ok: false, error: err ?? 'no warm result' });
          continue;
        }
        // The round with the median cold total stands for the cold figures.
        const sorted = [...list].sort((a, b) => a.cold.loadMs + a.cold.classifyMs - (b.cold.loadMs + b.cold.classifyMs));
        rows.push({ backend, bundle, ok: true, cold: sorted[(sorted.length - 1) >> 1], rounds: list.length, warm: warm.warm[`/zerovar/models/${bundle}/`] ?? [] });
      }
    }

    console.log(`\nViewer inference in Chromium ${version}. Worker-reported times: init = backend selection and check;` +
      ' cold total = load+verify (fetch, sha256, model load, check against the cpu backend on GPU backends) + first classification.' +
      ' Seen by the page: first answer = fresh worker to first result with its Grad-CAM map; round trip warm = one warm request.' +
      ' Warm figures are medians.');
    printTable(rows);
    printRatios(rows, o.backends);
    printGuard(rows);
    printBundles(stats);
    const released = ['raw', 'masked'].every((v) => existsSync(join(releasedDir, v, 'manifest.json')));
    if (o.pageOrders.length && released) {
      console.log(`\nthe viewer page: ${o.pageOrders.join(', ')} (released bundles, ${TEST_DICOM}) ...`);
      printPageTable(await measureInViewer({ context, projectRoot, modelsDir: releasedDir, dicomFile: dicom, orders: o.pageOrders, warm: o.warm }));
    } else if (o.pageOrders.length) {
      console.log(`\nthe viewer page: skipped (no released raw and masked bundles in ${releasedDir})`);
    }
    if (unusable.length) console.log(`\nUnusable backends:\n  ${unusable.join('\n  ')}`);
    if (pageErrors.length) console.log(`\nPage errors:\n  ${pageErrors.join('\n  ')}`);
    console.log(
      '\nNote: pruned and unpruned come from a quick trainer run (MobileNetV2 0.35, 224 px, a few epochs on a subset):' +
        ' the network size and input are the real ones, the amount pruned is what so short a fine-tune leaves.' +
        (bundles.some((b) => b.startsWith('released-'))
          ? ` released-* are the bundles in ${releasedDir} (fully trained; a masked one also runs its lung segmenter).`
          : ` The full-size figures come from the released bundles (${releasedDir}/raw, masked: not present here).`),
    );
    console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);

    // wasm is the backend every browser has: it must work. WebGL / WebGPU on a software renderer are reported.
    const wasmFailed = rows.filter((r) => r.backend === 'wasm' && !r.ok);
    const measured = rows.filter((r) => r.ok);
    if (measured.length === 0) return fail('no backend gave a result');
    if (wasmFailed.length) return fail(`wasm failed for ${wasmFailed.map((r) => r.bundle).join(', ')}`);
    if (o.keep) console.log(`kept ${tmp}`);
    return 0;
  } finally {
    await context?.close().catch(() => undefined);
    await host?.close();
    if (!o.keep) rmSync(tmp, { recursive: true, force: true });
  }
}

function fail(why: string): number {
  console.error(`viewer benchmark failed: ${why}`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`viewer benchmark failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    process.exit(1);
  },
);
