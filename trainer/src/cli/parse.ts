// Option parsers shared by the CLI's commands: they reject bad values with the option's name.
import { InvalidArgumentError } from 'commander';

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

export function nonNegativeNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number`);
    return n;
  };
}

/** A fraction strictly between 0 and 1. */
export function fraction(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`${name} must be a number between 0 and 1`);
    return n;
  };
}

/** A positive integer, or 'auto'. */
export function positiveIntOrAuto(name: string) {
  const int = positiveInt(name);
  return (v: string): number | 'auto' => {
    if (v === 'auto') return 'auto';
    try {
      return int(v);
    } catch {
      throw new InvalidArgumentError(`${name} must be a positive integer or 'auto'`);
    }
  };
}
