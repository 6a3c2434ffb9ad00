// Builds the OHIF extension and mode as native ES modules that the prebuilt viewer imports by URL
// (/zerovar/extension.js, /zerovar/mode.js). React is bundled (the viewer exposes none); OHIF and Cornerstone are
// never bundled: their objects come from the arguments OHIF passes at runtime. The inference Web Worker (tfjs and
// the trainer's browser-safe model code) is a separate ES module chunk, so the viewer's main thread never loads
// tfjs; tfjs-backend-wasm's .wasm binaries are emitted next to the bundles (/zerovar/*.wasm).
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** Emits tfjs-backend-wasm's binaries as assets (they are fetched at runtime, never imported). */
class EmitWasmBinaries {
  apply(compiler) {
    const dir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
    const { RawSource } = compiler.webpack.sources;
    compiler.hooks.thisCompilation.tap('EmitWasmBinaries', (compilation) => {
      compilation.hooks.processAssets.tap(
        { name: 'EmitWasmBinaries', stage: compiler.webpack.Compilation.PROCESS_ASSETS_STAGE_ADDITIONAL },
        () => {
          for (const name of readdirSync(dir).filter((n) => n.endsWith('.wasm'))) {
            compilation.emitAsset(name, new RawSource(readFileSync(join(dir, name))));
          }
        },
      );
    });
  }
}

/** Refuse runtime imports of the host's libraries: a second copy would not share the viewer's state. */
function hostLibrariesAreNotBundled({ request }, callback) {
  if (request && /^@(ohif|cornerstonejs)\//.test(request)) {
    return callback(new Error(`${request} must not be imported at runtime (use 'import type' and OHIF's arguments)`));
  }
  callback();
}

export default (_env, argv = {}) => {
  const mode = argv.mode === 'development' ? 'development' : 'production';
  return {
    mode,
    context: root,
    target: ['web', 'es2022'],
    entry: {
      extension: './extension/src/index.tsx',
      mode: './mode/src/index.ts',
    },
    output: {
      path: join(root, 'dist', 'zerovar'),
      filename: '[name].js',
      chunkFilename: 'chunks/[name].[contenthash:8].js',
      module: true,
      chunkFormat: 'module',
      library: { type: 'module' },
      workerChunkLoading: 'import',
      publicPath: '/zerovar/',
      clean: true,
    },
    experiments: { outputModule: true },
    externals: [hostLibrariesAreNotBundled],
    resolve: {
      extensions: ['.tsx', '.ts', '.js'],
      extensionAlias: { '.js': ['.ts', '.tsx', '.js'] },
      // tfjs-backend-wasm's Emscripten glue mentions Node modules on paths a browser never takes.
      fallback: { fs: false, path: false, crypto: false, os: false, worker_threads: false, perf_hooks: false },
    },
    plugins: [new EmitWasmBinaries()],
    module: {
      rules: [
        {
          test: /\.tsx?$/,
          exclude: /node_modules/,
          use: {
            loader: 'ts-loader',
            options: {
              transpileOnly: true,
              configFile: join(root, 'tsconfig.json'),
              compilerOptions: { noEmit: false, module: 'esnext', sourceMap: mode === 'development' },
            },
          },
        },
      ],
    },
    optimization: { splitChunks: false },
    devtool: mode === 'development' ? 'source-map' : false,
    performance: { hints: false },
    // tfjs makes a cold build take about a minute; the cache (git-ignored .cache/) makes rebuilds take seconds.
    cache: { type: 'filesystem', cacheDirectory: join(root, '.cache', 'webpack'), buildDependencies: { config: [fileURLToPath(import.meta.url)] } },
    stats: 'errors-warnings',
  };
};
