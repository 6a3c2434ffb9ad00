// The fine-tune's optimizer: tfjs's Adam, with each variable's update as one kernel call on the wasm backend
// (runtime/wasm/Adam.ts: the native addon's task, or the same ops in JS). tfjs's applyGradients makes fourteen
// small kernel calls per variable, more engine round trips than a MobileNetV2 step's forward and backward
// together; the fused update gives the same bits, and everything else (the moments' variables and names, the
// accumulated powers, the iteration count, getWeights / setWeights for checkpoints) is tfjs's own. Other
// backends: tfjs's update.
import * as tf from '@tensorflow/tfjs';
import { ADAM, type AdamAttrs } from '../runtime/wasm/Adam.js';
import { BACKEND } from '../runtime/wasm/shared.js';

/** AdamOptimizer's state, private in its typings. */
interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  accumulatedSecondMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
}

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  static override get className(): string {
    return 'Adam'; // serialized as tfjs's Adam: the same state, the same update
  }

  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (tf.getBackend() !== BACKEND || !tf.getKernel(ADAM, BACKEND)) {
      super.applyGradients(variableGradients);
      return;
    }
    const s = this as unknown as AdamState;
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    tf.tidy(() => {
      // As tfjs computes them: 1 - beta^t in float32 from the accumulated powers.
      const oneMinusAccBeta1 = Math.fround(1 - s.accBeta1.dataSync()[0]);
      const oneMinusAccBeta2 = Math.fround(1 - s.accBeta2.dataSync()[0]);
      const attrs: AdamAttrs = { beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, learningRate: this.learningRate, oneMinusAccBeta1, oneMinusAccBeta2 };
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name];
        s.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        s.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        const g = Array.isArray(variableGradients) ? variableGradients[i].tensor : variableGradients[name];
        if (g == null) return;
        const m = s.accumulatedFirstMoment[i]!.variable;
        const v = s.accumulatedSecondMoment[i]!.variable;
        if (value.dtype !== 'float32' || g.dtype !== 'float32') throw new Error(`Adam: ${name} is not float32`);
        const [newValue, newM, newV] = tf.engine().runKernel(ADAM, { value, m, v, g }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(newM);
        v.assign(newV);
        value.assign(newValue);
      });
      s.accBeta1.assign(tf.mul(s.accBeta1, this.beta1));
      s.accBeta2.assign(tf.mul(s.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }
}

/** tf.train.adam(learningRate) with the fused update. */
export function adam(learningRate: number): FusedAdamOptimizer {
  return new FusedAdamOptimizer(learningRate, 0.9, 0.999);
}
