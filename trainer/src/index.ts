// The Node library of @zerovar/trainer: the pipeline's steps and the domain operations the CLI calls, for
// programs that drive training, evaluation or export themselves. The browser-safe core is re-exported as is.
export * from './browser.js';
export { Pipeline } from './train/pipeline.js';
export { DEFAULTS } from './train/options.js';
export { evaluateBundle } from './cli/commands.js';
export { writeBundle, fsFetcher } from './io/bundle-fs.js';
export { initBackend, trainingBackend, backendInfo } from './runtime/backend.js';
export { discoverDataset, discoverCsvDataset, DatasetError } from './data/dataset.js';
