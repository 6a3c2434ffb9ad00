// Builds the extension and mode bundles with the repository's webpack.config.js (webpack's Node API).
import webpack from 'webpack';
import type { Configuration, Stats } from 'webpack';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

export async function buildBundles(projectRoot: string, mode: 'production' | 'development' = 'production'): Promise<Stats> {
  const configModule = (await import(pathToFileURL(join(projectRoot, 'webpack.config.js')).href)) as {
    default: Configuration | ((env: unknown, argv: { mode: string }) => Configuration);
  };
  const c = configModule.default;
  const config = typeof c === 'function' ? c({}, { mode }) : { ...c, mode };
  return new Promise((ok, fail) => {
    webpack(config, (err, stats) => {
      if (err) return fail(err);
      if (!stats) return fail(new Error('webpack returned no stats'));
      if (stats.hasErrors()) return fail(new Error(stats.toString({ all: false, errors: true, errorDetails: true })));
      ok(stats);
    });
  });
}
