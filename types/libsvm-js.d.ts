// Minimal typings for libsvm-js (emscripten build of libsvm), the parts this project uses.
declare module 'libsvm-js/asm.js' {
  interface SVMOptions {
    type?: string;
    kernel?: string;
    degree?: number;
    gamma?: number;
    coef0?: number;
    cost?: number;
    nu?: number;
    epsilon?: number;
    cacheSize?: number;
    tolerance?: number;
    shrinking?: boolean;
    probabilityEstimates?: boolean;
    weight?: Record<string, number>;
    quiet?: boolean;
  }
  interface ProbabilityPrediction {
    prediction: number;
    estimates: { label: number; probability: number }[];
  }
  class SVM {
    constructor(options?: SVMOptions);
    /** Pointer to the libsvm svm_model in the emscripten heap (null before training). */
    model: number | null;
    train(samples: ArrayLike<number>[], labels: number[]): void;
    predict(samples: ArrayLike<number>[]): number[];
    predictOne(sample: ArrayLike<number>): number;
    predictProbability(samples: ArrayLike<number>[]): ProbabilityPrediction[];
    predictOneProbability(sample: ArrayLike<number>): ProbabilityPrediction;
    crossValidation(samples: ArrayLike<number>[], labels: number[], kFold: number): number[];
    getLabels(): number[];
    getSVIndices(): number[];
    serializeModel(): string;
    free(): void;
    static load(serializedModel: string): SVM;
    static SVM_TYPES: { C_SVC: string; NU_SVC: string; ONE_CLASS: string; EPSILON_SVR: string; NU_SVR: string };
    static KERNEL_TYPES: { LINEAR: string; POLYNOMIAL: string; RBF: string; SIGMOID: string; PRECOMPUTED: string };
  }
  export default SVM;
}
