// The layer graph of a tfjs LayersModel, read from its functional config: which layer feeds which, and the
// shape of every layer's output. Surgery rebuilds models from a modified copy of the same config, so both sides
// speak the config's (camelCase) dialect. Browser-safe.
import * as tf from '@tensorflow/tfjs';

/** One entry of a functional model's `getConfig().layers`. */
export interface LayerConfigEntry {
  name: string;
  className: string;
  config: Record<string, unknown>;
  inboundNodes: unknown[];
}

/** A functional model's `getConfig()`. */
export interface ModelConfig {
  name: string;
  layers: LayerConfigEntry[];
  inputLayers: [string, number, number][];
  outputLayers: [string, number, number][];
}

export interface LayerNode {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** Layers whose (single) output this layer reads, in argument order. */
  inputs: string[];
  /** Layers that read this layer's output. */
  consumers: string[];
  /** Output shape, batch dimension first (null). */
  outputShape: (number | null)[];
}

/** Every supported layer has one output tensor; a tensor is named after the layer that produces it. */
export interface LayerGraph {
  /** The functional model the graph describes (a Sequential's inner model). */
  model: tf.LayersModel;
  config: ModelConfig;
  nodes: Map<string, LayerNode>;
  /** Layer names in topological order (the config's order). */
  order: string[];
  inputs: string[];
  outputs: string[];
}

/** The functional model behind `model`: itself, or the inner model a Sequential builds. */
export function functionalModel(model: tf.LayersModel): tf.LayersModel {
  if (model instanceof tf.Sequential) {
    const holder = model as unknown as { model?: tf.LayersModel; build(): void };
    if (holder.model === undefined) holder.build();
    if (holder.model === undefined) throw new Error(`sequential model '${model.name}' has no input shape yet`);
    return holder.model;
  }
  return model;
}

function parseInbound(entry: LayerConfigEntry): string[] {
  const nodes = entry.inboundNodes as unknown[][];
  if (nodes.length === 0) return [];
  if (nodes.length > 1) {
    throw new Error(`layer '${entry.name}' is called ${nodes.length} times in the model; shared layers are not supported`);
  }
  return (nodes[0] as unknown[][]).map((arg) => {
    const [layer, , tensorIndex] = arg as [string, number, number];
    if (tensorIndex !== 0) throw new Error(`layer '${entry.name}' reads output ${tensorIndex} of '${layer}'; only single-output layers are supported`);
    return layer;
  });
}

export function buildLayerGraph(model: tf.LayersModel): LayerGraph {
  const fm = functionalModel(model);
  const config = JSON.parse(JSON.stringify(fm.getConfig())) as ModelConfig;
  const nodes = new Map<string, LayerNode>();
  for (const entry of config.layers) {
    const layer = fm.getLayer(entry.name);
    const shape = layer.outputShape;
    if (Array.isArray(shape[0])) throw new Error(`layer '${entry.name}' has several outputs; not supported`);
    nodes.set(entry.name, {
      name: entry.name,
      className: entry.className,
      config: entry.config,
      inputs: parseInbound(entry),
      consumers: [],
      outputShape: shape as (number | null)[],
    });
  }
  for (const node of nodes.values()) {
    for (const i of node.inputs) {
      const src = nodes.get(i);
      if (!src) throw new Error(`layer '${node.name}' reads unknown layer '${i}'`);
      if (!src.consumers.includes(node.name)) src.consumers.push(node.name);
    }
  }
  const io = (list: [string, number, number][], what: string) =>
    list.map(([name, , t]) => {
      if (t !== 0) throw new Error(`model ${what} '${name}' uses output ${t}; only single-output layers are supported`);
      return name;
    });
  return {
    model: fm,
    config,
    nodes,
    order: config.layers.map((l) => l.name),
    inputs: io(config.inputLayers, 'input'),
    outputs: io(config.outputLayers, 'output'),
  };
}

/** Number of channels (last dimension) of a layer's output. */
export function channelsOf(node: LayerNode): number {
  const c = node.outputShape[node.outputShape.length - 1];
  if (typeof c !== 'number') throw new Error(`layer '${node.name}' has an unknown channel count`);
  return c;
}

/** Rebuilds a model from a functional config without random weight initialisation. */
export function modelFromConfig(config: ModelConfig): tf.LayersModel {
  const ctor = tf.LayersModel as unknown as tf.serialization.SerializableConstructor<tf.LayersModel>;
  return tf.LayersModel.fromConfig(ctor, config as unknown as tf.serialization.ConfigDict, {}, true);
}
