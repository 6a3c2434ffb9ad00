// `zerovar --help` loads no tfjs: the defaults it shows are plain data. Walks the CLI's static runtime imports
// (type-only imports are erased; dynamic import() is what the commands load when they run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

function staticImports(file: string): string[] {
  const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\s+(type\s)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm)) if (!m[1]) out.push(m[2] as string);
  for (const m of code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) out.push(m[1] as string);
  return out;
}

function reached(entry: string): Map<string, string> {
  const packages = new Map<string, string>();
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length) {
    const file = stack.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of staticImports(file)) {
      if (!spec.startsWith('.')) {
        packages.set(spec, relative(root, file));
        continue;
      }
      const base = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      assert.ok(existsSync(base), `${relative(root, file)} imports ${spec}, which does not exist`);
      stack.push(base);
    }
  }
  return packages;
}

test('the CLI entry reaches no tfjs before a command runs (--help defaults are plain data)', () => {
  const packages = reached(resolve(root, 'trainer/src/cli/main.ts'));
  assert.ok(packages.has('commander'), 'the walk sees the CLI’s own packages');
  const heavy = [...packages].filter(([p]) => p.startsWith('@tensorflow/'));
  assert.deepEqual(heavy, [], `tfjs reached from ${heavy.map(([, f]) => f).join(', ')}`);
});
