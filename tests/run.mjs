// Runs the *.test.ts files under tests/ with node's test runner (TypeScript through tsx), tier by tier, cheapest
// first: a tier is the test's folder (tests/unit, tests/heavy, tests/integration, tests/e2e), so a new test is
// in a tier by where it lies, with nothing to register. Node 20's --test does not expand globs or pick up .ts
// files by itself, hence this list.
//   node tests/run.mjs                    every tier
//   node tests/run.mjs --tier unit        one tier (--tier unit,heavy for several); --quick is --tier unit
//   node tests/run.mjs dicom surgery      files whose path contains one of the words, in any tier
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { spawnSync } from 'node:child_process';

/** Cheapest first; a folder not listed here runs after these. */
const TIERS = ['unit', 'heavy', 'integration', 'e2e'];

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const tiers = new Set();
const only = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--quick') tiers.add('unit');
  else if (args[i] === '--tier') for (const t of (args[++i] ?? '').split(',').filter(Boolean)) tiers.add(t);
  else only.push(args[i]);
}
for (const t of tiers) {
  if (!TIERS.includes(t)) {
    console.error(`unknown tier '${t}' (tiers: ${TIERS.join(', ')})`);
    process.exit(1);
  }
}

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}
const tierOf = (p) => p.split(sep)[1];
const rank = (p) => {
  const i = TIERS.indexOf(tierOf(p));
  return i < 0 ? TIERS.length : i;
};
const files = walk(join(root, 'tests'))
  .map((p) => relative(root, p))
  .filter((p) => tiers.size === 0 || tiers.has(tierOf(p)))
  .filter((p) => only.length === 0 || only.some((o) => p.includes(o)))
  .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
