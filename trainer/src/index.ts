// The Node library of @zerovar/trainer: the pipeline, its steps as stages (prune, select), and the domain
// operations the CLI calls (evaluation on a dataset, the bias study), for programs that drive training,
// evaluation or export themselves. The browser-safe core is re-exported as is.
export * from './browser.js';
export { Pipeline } from './train/pipeline.js';
export { DEFAULTS, type PipelineOptions } from './train/options.js';
export { HEAD_LAYERS, BACKBONES, type BackboneInfo, type BackboneName } from './model/backbones.js';
export * as pruneStages from './train/prune-step.js';
export * as selectStages from './train/select-step.js';
export { pruneStep, type PruneOptions, type PruneResult } from './train/prune-step.js';
export { selectStep, type SelectOptions, type SelectResult, type ClassifierResult } from './train/select-step.js';
export { evaluateBundle, evaluateExternal, type EvaluateOptions, type EvaluateResult } from './train/evaluate.js';
export { predictFiles, predictWithModel, discoverInputs, predictionsToCsv, type PredictOptions, type PredictResult, type PredictedFile } from './train/predict.js';
export { runBiasStudy } from './train/bias-run.js';
export { writeReport } from './train/report.js';
export { writeBundle, fsFetcher } from './io/bundle-fs.js';
export { initBackend, trainingBackend, backendInfo } from './runtime/backend.js';
export { discoverDataset, discoverCsvDataset, DatasetError } from './data/dataset.js';
