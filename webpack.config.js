// Builds the OHIF extension and mode as native ES modules that the prebuilt viewer imports by URL
// (/zerovar/extension.js, /zerovar/mode.js). React is bundled (the viewer exposes none); OHIF and Cornerstone are
// never bundled: their objects come from the arguments OHIF passes at runtime.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = dirname(fileURLToPath(import.meta.url));

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
      publicPath: '/zerovar/',
      clean: true,
    },
    experiments: { outputModule: true },
    externals: [hostLibrariesAreNotBundled],
    resolve: {
      extensions: ['.tsx', '.ts', '.js'],
      extensionAlias: { '.js': ['.ts', '.tsx', '.js'] },
    },
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
    stats: 'errors-warnings',
  };
};
