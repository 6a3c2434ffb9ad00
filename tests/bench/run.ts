// `npm run bench`: runs every tests/bench/*.bench.ts in turn (the trainer's today; a viewer benchmark is added
// by dropping a `viewer.bench.ts` beside it). Arguments after the optional name filters go to each benchmark:
//   npm run bench                     all benchmarks
//   npm run bench -- trainer --quick  only files whose name contains "trainer", with --quick
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('-'));
const passOn = args.filter((a) => a.startsWith('-'));
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matched ${filters.join(', ')}`);
  process.exit(1);
}
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, f), ...passOn], { stdio: 'inherit' });
  console.log(`=== ${f}: ${r.status === 0 ? 'done' : `failed (exit ${r.status ?? r.signal})`} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
