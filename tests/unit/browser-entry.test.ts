// The browser-safe core stays browser-safe: walks the import graph from @zerovar/trainer/browser (and from every
// extension and mode source file) and fails on a Node built-in, a Node-only package, or an extension file that
// reaches into trainer/src by path instead of through the package entry.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
/** Packages the browser core may import: tfjs and pure-JS numerics. Anything else needs a look first. */
const BROWSER_PACKAGES = new Set(['@tensorflow/tfjs', 'ml-random-forest']);
const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Every module specifier a TypeScript source imports or re-exports (static, side-effect and dynamic). */
export function importSpecifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const re of [
    /\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]) {
    for (const m of code.matchAll(re)) out.push(m[1] as string);
  }
  return out;
}

function resolveRelative(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), base]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${relative(root, from)} imports ${spec}, which does not exist`);
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

/** Walks the graph from `entry`; returns the files reached and the bare packages each imports. */
function walkGraph(entry: string): { files: string[]; packages: Map<string, string> } {
  const seen = new Set<string>();
  const packages = new Map<string, string>();
  const stack = [entry];
  while (stack.length > 0) {
    const file = stack.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) stack.push(resolveRelative(file, spec));
      else if (!packages.has(spec)) packages.set(spec, relative(root, file));
    }
  }
  return { files: [...seen], packages };
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    return d.isDirectory() ? sources(p) : /\.tsx?$/.test(d.name) ? [p] : [];
  });
}

describe('the browser entry', () => {
  const { files, packages } = walkGraph(join(root, 'trainer/src/browser.ts'));

  test('reaches the shared core and no Node-only package', () => {
    assert.ok(files.some((f) => f.endsWith('model/inference.ts')), 'BundleModel is part of the browser entry');
    assert.ok(files.some((f) => f.endsWith('runtime/wasm/register.ts')), 'the wasm kernels are part of it');
    for (const [spec, file] of packages) {
      assert.ok(!NODE_BUILTINS.has(spec), `${file} imports the Node built-in ${spec}`);
      assert.ok(BROWSER_PACKAGES.has(packageName(spec)), `${file} imports ${spec}, not on the browser-safe list`);
    }
  });

  test('the extension and mode import the trainer only through @zerovar/trainer/browser', () => {
    const viewerFiles = [...sources(join(root, 'extension/src')), ...sources(join(root, 'mode/src'))];
    assert.ok(viewerFiles.length > 5);
    for (const file of viewerFiles) {
      for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
        const where = relative(root, file);
        assert.ok(!/trainer\/src/.test(spec), `${where} imports ${spec} by path`);
        assert.ok(!NODE_BUILTINS.has(spec), `${where} imports the Node built-in ${spec}`);
        if (spec.startsWith('@zerovar/trainer')) assert.equal(spec, '@zerovar/trainer/browser', `${where} imports ${spec}`);
      }
    }
  });

  test('the walker sees every import form', () => {
    const specs = importSpecifiers(
      "import a from 'a';\nimport type { B } from \"b\";\nexport { c } from './c.js';\nimport 'd';\n" +
        "const e = await import('e');\n// import x from 'commented';\nexport * from './f.js';",
    );
    assert.deepEqual(specs.sort(), ['./c.js', './f.js', 'a', 'b', 'd', 'e']);
  });
});
