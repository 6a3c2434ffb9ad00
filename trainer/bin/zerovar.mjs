#!/usr/bin/env node
// The CLI runs from TypeScript sources through tsx, so the trainer needs no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
