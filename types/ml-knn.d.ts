// Minimal typings for ml-knn (k-nearest neighbours on a KD-tree), used as a reference in tests.
declare module 'ml-knn' {
  export default class KNN {
    constructor(dataset: number[][], labels: number[], options?: { k?: number; distance?: (a: number[], b: number[]) => number });
    predict(dataset: number[][]): number[];
    predict(sample: number[]): number;
    toJSON(): object;
    static load(model: object): KNN;
  }
}
