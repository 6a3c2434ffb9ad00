// The inference worker's loaded models, by bundle URL: each bundle is loaded once, concurrent requests for it
// share that one load, and a failed load is forgotten so that a fixed (or newly installed) bundle can be retried.
export class ModelCache<T> {
  private readonly entries = new Map<string, Promise<T>>();

  constructor(private readonly dispose: (value: T) => void = () => undefined) {}

  /** Whether `key` is loaded or loading (a request that finds it so is not a cold one). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The value for `key`, from `load` on first use (or after a failed load). */
  get(key: string, load: () => Promise<T>): Promise<T> {
    const existing = this.entries.get(key);
    if (existing) return existing;
    let entry: Promise<T>;
    try {
      entry = load();
    } catch (e) {
      entry = Promise.reject(e);
    }
    this.entries.set(key, entry);
    entry.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry;
  }

  /** Forgets every entry, disposing those that loaded (e.g. when the backend they live on is given up). */
  clear(): void {
    for (const entry of this.entries.values()) void entry.then((v) => this.dispose(v), () => undefined);
    this.entries.clear();
  }
}
