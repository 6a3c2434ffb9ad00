// Lint configuration (ESLint 9 flat config): typescript-eslint's recommended rules on every source, test and
// script, React's hook rules on the extension. Syntax-only (no type information): the compiler already checks
// types in `npm run typecheck`, and the type-aware rule set took over a minute on two cores.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

export default tseslint.config(
  {
    // Build output, caches, experiment runs, screenshots and released bundles are not source.
    ignores: ['**/dist/', '**/.cache/', '**/node_modules/', 'experiments/', 'test-artifacts/', 'models/'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      // Node code (trainer, scripts, tests) and browser code (extension, workers) share one tree.
      globals: { ...globals.node, ...globals.browser },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A leading underscore marks a binding kept on purpose: a field left out of a rest copy
      // (`const { segmenter: _s, ...rest } = m`), a callback parameter required by a signature.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    // The panel and its hooks (any file of the extension may hold one).
    files: ['extension/src/**/*.{ts,tsx}'],
    ...reactHooks.configs.flat.recommended,
  },
);
