// `zerovar predict`: the parsed options mapped onto predictFiles, a progress bar on stderr, and the result
// printed as JSON, CSV or a table (to stdout, or atomically to --out).
import { mkdir } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { predictFiles, predictionsToCsv, type PredictResult } from '../train/predict.js';
import { Progress } from '../train/progress.js';

export type PredictFormat = 'json' | 'csv' | 'table';

/** --json / --csv, else what --out's extension says (.csv: CSV, anything else: JSON), else the table. */
export function predictFormat(o: { json?: unknown; csv?: unknown; out?: unknown }): PredictFormat {
  if (o.json) return 'json';
  if (o.csv) return 'csv';
  if (typeof o.out === 'string') return extname(o.out).toLowerCase() === '.csv' ? 'csv' : 'json';
  return 'table';
}

/** A plain table for a terminal: the file, the prediction with its probability, the guard's verdict. */
export function predictionTable(r: PredictResult): string {
  const rows = r.results.map((x) => [
    x.file,
    x.predicted,
    (x.probabilities[x.predicted] ?? NaN).toFixed(3),
    x.outOfDistribution === null ? '-' : x.outOfDistribution ? `yes (${x.oodScore?.toFixed(1)} > ${x.oodThreshold?.toFixed(1)})` : 'no',
  ]);
  const head = ['file', 'predicted', 'p', 'out of distribution'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((v, c) => (c === row.length - 1 ? v : v.padEnd(widths[c]))).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

export async function runPredict(o: Record<string, unknown>): Promise<void> {
  const format = predictFormat(o);
  const quiet = Boolean(o.quiet);
  let bar: Progress | undefined;
  let shown = 0;
  const r = await predictFiles({
    bundle: String(o.bundle),
    inputs: (o.input as string[]).map(String),
    backend: (o.backend as 'auto' | 'wasm' | 'cpu') ?? 'auto',
    batchSize: o.batchSize as number | undefined,
    attentionDir: o.attention as string | undefined,
    onProgress: quiet
      ? undefined
      : (done, total) => {
          bar ??= new Progress('predict', total);
          if (done > shown) bar.tick(done - shown);
          shown = done;
        },
  });
  const err = (s: string) => process.stderr.write(`${s}\n`);
  if (!r.guard) err(`bundle '${r.name}' has no out-of-distribution guard: outOfDistribution is null for every file`);
  for (const s of r.skipped) err(`skipped ${s.file}: ${s.reason}`);
  for (const w of r.warnings) err(w);
  if (r.ignored > 0 && !quiet) err(`left out ${r.ignored} file(s) that are not PNG, JPEG or DICOM images`);

  const text =
    format === 'json' ? JSON.stringify(r, null, 2) + '\n' : format === 'csv' ? predictionsToCsv(r) : r.results.length ? predictionTable(r) : '';
  if (typeof o.out === 'string') {
    await mkdir(dirname(o.out), { recursive: true });
    await writeFileAtomic(o.out, text);
    if (!quiet) err(`${r.results.length} prediction(s) written to ${o.out}`);
  } else process.stdout.write(text);

  if (r.results.length === 0) {
    throw new Error(r.skipped.length ? `no image could be scored (${r.skipped.length} skipped)` : `no images found in ${(o.input as string[]).join(', ')}`);
  }
}
