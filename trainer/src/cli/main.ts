// The `zerovar` command line. It keeps the paper's interface (`--dataset DIR --experiment_id ID`) and exposes
// the pipeline's steps as subcommands; `compress` runs them all.
import { Command, Option } from 'commander';
import type { PipelineOptions } from '../train/options.js';
import { DEFAULTS } from '../train/options.js';
import { fraction, nonNegativeNumber, positiveInt, positiveIntOrAuto } from './parse.js';
import { STEPS } from '../train/experiment.js';
import { addSegmenterCommand } from './segmenter.js';


/** Options shared by every command that reads a dataset and trains. */
function withPipelineOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--dataset <dir>', 'dataset folder: one folder per class (flat or Kaggle <Class>/images layout), or a CSV-labelled folder with --csv')
    .requiredOption('--experiment_id <id>', 'name of the experiment; everything is written to <experiments-dir>/<id>/')
    .option('--experiments-dir <dir>', 'where experiments are written', DEFAULTS.experimentsDir)
    .option('--csv <file>', 'label images from this CSV (e.g. metadata.csv of ieee8023), relative to --dataset')
    .option('--mapping <spec>', "CSV finding -> class mapping, e.g. 'COVID-19*=COVID,No Finding=Normal'", DEFAULTS.mapping)
    .option('--classes <list>', 'comma-separated subset of classes to use (default: all found)')
    .addOption(
      new Option('--backbone <name>', 'ImageNet backbone').choices(['mobilenet_v2_0.35', 'mobilenet_v1_0.25', 'vgg16']).default(DEFAULTS.backbone),
    )
    .option('--weights <path|url|none>', 'backbone weights: a tfjs LayersModel folder, model.json path or URL; default: the public ImageNet URL of the backbone (or $ZEROVAR_WEIGHTS_DIR)')
    .option('--input-size <px>', 'network input size (square)', positiveInt('--input-size'))
    .option('--fc1 <units>', 'width of fc1 (the paper: 4096)', positiveInt('--fc1'), DEFAULTS.fc1)
    .option('--fc2 <units>', 'width of fc2, the penultimate features (the paper: 4096)', positiveInt('--fc2'), DEFAULTS.fc2)
    .option('--l2 <lambda>', 'L2 penalty on the softmax layer (the paper: 0.05)', nonNegativeNumber('--l2'), DEFAULTS.l2)
    .option('--dropout <rate>', 'dropout between fc1 and fc2', nonNegativeNumber('--dropout'), DEFAULTS.dropout)
    .option('--epochs <n>', 'fine-tuning epochs (the paper: 30)', positiveInt('--epochs'), DEFAULTS.epochs)
    .option('--batch-size <n>', 'batch size (the paper: 32)', positiveInt('--batch-size'), DEFAULTS.batchSize)
    .option(
      '--micro-batch <n>',
      'most images alive at once in a training step: a larger batch accumulates its gradients over micro-batches into the same update (default: 8 when training through the backbone, else the whole batch)',
      positiveInt('--micro-batch'),
    )
    .option('--lr <rate>', 'Adam learning rate (the paper: 1e-4)', nonNegativeNumber('--lr'), DEFAULTS.learningRate)
    .option('--no-freeze-backbone', 'train the whole backbone (slow on CPU; see --trainable-from)')
    .option(
      '--trainable-from <layer>',
      'train from this layer on; layers before it stay frozen (default: the backbone\'s own, block_12_expand for MobileNetV2; fc1: the head only)',
    )
    .option(
      '--variance-threshold <v|auto>',
      "remove units whose variance over the training set is <= this fraction of their layer's mean unit variance (0: exactly constant, the paper's rule); auto: the largest threshold of a sweep up to which validation accuracy stays within 0.5 pt of the unpruned network's",
      (v: string) => (v === 'auto' ? 'auto' : nonNegativeNumber('--variance-threshold')(v)),
      DEFAULTS.varianceThreshold,
    )
    .option(
      '--head-thresholds <list|none>',
      `with --variance-threshold auto: the looser thresholds tried for fc1 and fc2, each followed by a head-only recovery fine-tune (comma-separated, relative like --variance-threshold; default ${DEFAULTS.headThresholds.join(',')}; none: no head search)`,
      (v: string) => (v === 'none' ? [] : v.split(',').map((x) => nonNegativeNumber('--head-thresholds')(x.trim()))),
    )
    .addOption(
      new Option('--head-recovery <fit>', "what the head's recovery fine-tune fits after a head threshold: 'distill', the unpruned network's logits on the training images, or 'labels'").choices(['distill', 'labels']).default(DEFAULTS.headRecovery),
    )
    .addOption(
      new Option('--head-refit <on|off>', "with a head threshold: refit fc1, fc2 and the logits by least squares to the unpruned network's pre-activations on the training images, before the recovery").choices(['on', 'off']).default(DEFAULTS.headRefit ? 'on' : 'off'),
    )
    .option('--dead-margin <sd>', "remove a dead ReLU unit only if its largest pre-activation on the training images is this many standard deviations below 0 (0: the paper's plain rule)", nonNegativeNumber('--dead-margin'), DEFAULTS.deadMargin)
    .addOption(
      new Option('--k-protocol <p>', "how k is chosen: 'validation' (ours) or 'paper' (on the test split: optimistic)").choices(['validation', 'paper']).default('validation'),
    )
    .addOption(
      new Option('--k-rule <rule>', "which k of the sweep: 'best' score, or 'compact': the smallest k within 0.5 pt of the best").choices(['best', 'compact']).default(DEFAULTS.kRule),
    )
    .addOption(
      new Option('--classifier <kind>', 'deployed classifier (auto: best on validation)')
        .choices(['auto', 'svm-poly', 'svm-rbf', 'svm-linear', 'logistic', 'knn', 'random-forest'])
        .default('auto'),
    )
    .option('--gradcam-samples <n>', 'test images per class drawn with Grad-CAM', positiveInt('--gradcam-samples'), DEFAULTS.gradcamSamples)
    .option('--limit <n>', 'use at most n images per class (quick runs)', positiveInt('--limit'))
    .option('--seed <n>', 'seed for splits, initialisation and shuffling', (v) => Number(v), DEFAULTS.seed)
    .addOption(new Option('--backend <name>', 'tfjs backend (auto: wasm, and fine-tuning on a GPU through WebGPU where one exists; webgpu: fine-tune on WebGPU or fail)').choices(['auto', 'wasm', 'cpu', 'webgpu']).default('auto'))
    .option('--threads <n>', "training threads: the native kernels' where their addon is built, else tfjs's threaded wasm build (the same results with any count); 'auto' (the default) times a few training steps with 1 and 2 (and more, on more cores) at the start and keeps the fastest, so a busy machine keeps one thread", positiveIntOrAuto('--threads'), 'auto')
    .addOption(new Option('--variant <v>', "'raw': whole images; 'masked': lungs only (dataset masks, else --segmenter's)").choices(['raw', 'masked']).default('raw'))
    .option('--segmenter <dir>', 'trained lung segmenter (zerovar segmenter train) for the masked variant; the bundle carries it')
    .option('--ood <dir...>', 'folders of out-of-distribution images (lateral views, CT slices...) to measure the guard on; synthetic ones are always added')
    .option('--resume', 'continue an interrupted experiment: finished steps and epochs are kept', false)
    .addOption(new Option('--redo <step>', 'run this step of an existing experiment again, and every step after it').choices([...STEPS]))
    .addOption(new Option('--weights-dtype <dtype>', "how the bundle stores the network's (and segmenter's) weights (mixed: uint8 dense kernels, float16 the rest; auto: mixed if validation accuracy stays within 0.5 pt of float16's); export checks the test probabilities after quantization").choices(['float32', 'float16', 'uint8', 'mixed', 'auto']).default(DEFAULTS.weightsDtype))
    .option('--export-unpruned', 'also write bundle-unpruned/: the fine-tuned network without surgery or selection, same classifier kind (a baseline for benchmarks)', false)
    .option('--quiet', 'no progress output', false);
}

type RawOptions = Record<string, unknown>;

function toPipelineOptions(o: RawOptions): PipelineOptions {
  return {
    dataset: String(o.dataset),
    experimentId: String(o.experiment_id),
    experimentsDir: String(o.experimentsDir),
    csv: o.csv as string | undefined,
    mapping: String(o.mapping),
    classes: o.classes ? String(o.classes).split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    backbone: o.backbone as PipelineOptions['backbone'],
    weights: o.weights as string | undefined,
    inputSize: o.inputSize as number | undefined,
    fc1: o.fc1 as number,
    fc2: o.fc2 as number,
    l2: o.l2 as number,
    dropout: o.dropout as number,
    epochs: o.epochs as number,
    batchSize: o.batchSize as number,
    microBatch: o.microBatch as number | undefined,
    learningRate: o.lr as number,
    freezeBackbone: o.freezeBackbone !== false,
    trainableFrom: o.trainableFrom as string | undefined,
    varianceThreshold: o.varianceThreshold as PipelineOptions['varianceThreshold'],
    headThresholds: o.headThresholds as number[] | undefined,
    headRecovery: o.headRecovery as PipelineOptions['headRecovery'],
    headRefit: o.headRefit === 'on',
    deadMargin: o.deadMargin as number,
    kProtocol: o.kProtocol as PipelineOptions['kProtocol'],
    kRule: o.kRule as PipelineOptions['kRule'],
    classifier: o.classifier as PipelineOptions['classifier'],
    gradcamSamples: o.gradcamSamples as number,
    limit: o.limit as number | undefined,
    seed: o.seed as number,
    backend: o.backend as PipelineOptions['backend'],
    threads: o.threads as PipelineOptions['threads'],
    resume: Boolean(o.resume) || o.redo !== undefined,
    redo: o.redo as PipelineOptions['redo'],
    quiet: Boolean(o.quiet),
    external: o.external as string | undefined,
    bundleOut: o.out as string | undefined,
    exportUnpruned: Boolean(o.exportUnpruned),
    variant: o.variant as PipelineOptions['variant'],
    segmenter: o.segmenter as string | undefined,
    ood: o.ood as string[] | undefined,
    weightsDtype: o.weightsDtype as PipelineOptions['weightsDtype'],
  };
}

export function buildProgram(run: (command: string, opts: PipelineOptions | RawOptions) => Promise<void>): Command {
  const program = new Command('zerovar')
    .description('Removing zero-variance units of deep models for COVID-19 detection (research use only)')
    .showHelpAfterError()
    .exitOverride();

  withPipelineOptions(program.command('compress'))
    .description("the paper's model_compression.py end to end: fine-tune, remove zero-variance units, F-test selection, classifiers, Grad-CAM, report and bundle")
    .option('--out <dir>', 'also copy the exported bundle to this folder')
    .action((o: RawOptions) => run('compress', toPipelineOptions(o)));

  withPipelineOptions(program.command('xai'))
    .description("the paper's xai.py: a binary COVID vs Normal model with Grad-CAM figures, optionally tested on external data")
    .option('--external <dir>', 'external test data (folder per class, or CSV layout with --external-csv)')
    .option('--out <dir>', 'also copy the exported bundle to this folder')
    .action((o: RawOptions) => run('xai', toPipelineOptions(o)));

  for (const [name, what] of [
    ['train', 'discover and split the data, then fine-tune the backbone + head'],
    ['prune', 'measure unit variance on the training split and remove zero-variance units (exact surgery)'],
    ['select', 'F-test ranking of the penultimate features, k sweep, classifiers'],
    ['explain', 'Grad-CAM attention grids of the deployed model on test images'],
    ['export', 'write the model bundle (and the report)'],
  ] as const) {
    withPipelineOptions(program.command(name))
      .description(`${what} (a step of compress; earlier steps run first when missing)`)
      .option('--out <dir>', 'bundle destination (export)')
      .action((o: RawOptions) => run(name, toPipelineOptions(o)));
  }

  program
    .command('evaluate')
    .description('metrics of a bundle on a dataset (any layout the trainer reads)')
    .requiredOption('--bundle <dir>', 'bundle folder (manifest.json + model)')
    .requiredOption('--dataset <dir>', 'dataset folder')
    .option('--csv <file>', 'label images from this CSV, relative to --dataset')
    .option('--mapping <spec>', 'CSV finding -> class mapping', DEFAULTS.mapping)
    .option('--limit <n>', 'at most n images per class', positiveInt('--limit'))
    .option('--json', 'print the metrics as JSON on stdout', false)
    .option('--record <name>', "keep the figures in the bundle's manifest as external data NAME (shown by the viewer)")
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', 'wasm', 'cpu']).default('auto'))
    .action((o: RawOptions) => run('evaluate', o));

  program
    .command('guard')
    .description("add the out-of-distribution guard and the probability calibration to a bundle made without them, from the dataset it was trained on (same split)")
    .requiredOption('--bundle <dir>', 'bundle folder, rewritten in place (network and classifier unchanged)')
    .requiredOption('--dataset <dir>', 'the dataset the bundle was trained on')
    .option('--csv <file>', 'label images from this CSV, relative to --dataset')
    .option('--mapping <spec>', 'CSV finding -> class mapping', DEFAULTS.mapping)
    .option('--ood <dir...>', 'folders of out-of-distribution images to measure the guard on (each subfolder is a set)')
    .option('--components <n>', 'principal directions of the guard', positiveInt('--components'))
    .option('--acceptance <fraction>', 'fraction of the validation split the guard accepts', fraction('--acceptance'))
    .option('--json', 'print the guard and calibration as JSON on stdout', false)
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', 'wasm', 'cpu']).default('auto'))
    .action((o: RawOptions) => run('guard', o));

  program
    .command('predict')
    .description('score image files and folders with a bundle: calibrated probabilities and the out-of-distribution verdict per file (unreadable files are listed and skipped)')
    .requiredOption('--bundle <dir>', 'bundle folder (manifest.json + model)')
    .requiredOption('--input <paths...>', 'image files or folders (searched recursively for PNG, JPEG and DICOM files)')
    .addOption(new Option('--json', 'print one JSON object: the bundle, results per file, skipped files').conflicts('csv'))
    .option('--csv', 'print CSV: file, predicted, p_<class>..., outOfDistribution, oodScore, oodThreshold')
    .option('--out <file>', 'write the JSON or CSV to this file instead of stdout (format from --json/--csv, else the extension)')
    .option('--attention <dir>', "write each image's Grad-CAM overlay as a PNG at the image's size here")
    .option('--batch-size <n>', 'images per network pass', positiveInt('--batch-size'), 16)
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', 'wasm', 'cpu']).default('auto'))
    .option('--quiet', 'no progress output', false)
    .action((o: RawOptions) => run('predict', o));

  program
    .command('requantize')
    .description("store a bundle's numbers compactly: network and segmenter weights as float16 or uint8, the classifier's arrays in a binary file; with --dataset, the validation and test splits before and after")
    .requiredOption('--bundle <dir>', 'bundle folder, rewritten in place (unless --dry-run)')
    .addOption(new Option('--weights-dtype <dtype>', 'network and segmenter weights (mixed: uint8 dense kernels, float16 the rest)').choices(['float32', 'float16', 'uint8', 'mixed']).default(DEFAULTS.requantizeDtype))
    .addOption(new Option('--classifier-dtype <dtype>', "the classifier's large arrays ('inline': JSON numbers, as older bundles)").choices(['float64', 'float32', 'float16', 'inline']).default('float32'))
    .option('--dataset <dir>', 'the dataset the bundle was trained on: classify its validation and test splits before and after')
    .option('--csv <file>', 'label images from this CSV, relative to --dataset')
    .option('--mapping <spec>', 'CSV finding -> class mapping', DEFAULTS.mapping)
    .option('--dry-run', 'measure only; leave the bundle as it is', false)
    .option('--json', 'print the result as JSON on stdout', false)
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', 'wasm', 'cpu']).default('auto'))
    .action((o: RawOptions) => run('requantize', o));

  program
    .command('compare')
    .description("compare experiments that share a test split, image by image (McNemar's exact test), and pooled over several pairs (e.g. one per --seed)")
    .argument('<pairs...>', "REFERENCE:CANDIDATE experiment ids, each pair tested on the same split; ID@softmax: that experiment's fine-tuned network itself")
    .option('--experiments-dir <dir>', 'where the experiments are', 'experiments')
    .option('--json', 'print the comparison as JSON on stdout', false)
    .action((pairs: string[], o: RawOptions) => run('compare', { ...o, pairs }));

  addSegmenterCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const { runCommand } = await import('./commands.js');
  const program = buildProgram(runCommand);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 2;
    process.stderr.write(`zerovar: ${e.message ?? String(err)}\n`);
    return 1;
  }
}
