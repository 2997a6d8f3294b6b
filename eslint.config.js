// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

/** Files under `files` may not import from the listed sibling folders of src/. */
function layer(files, forbidden) {
  return {
    files: [files],
    rules: {
      'no-restricted-imports': ['error', {
        // Relative paths only (packages such as isomorphic-git/http/node must not match).
        patterns: [{ group: forbidden.flatMap((d) => ['../', '../../', '../../../'].map((up) => `${up}${d}/*`)), message: 'layer violation: imports go one way, see the layer rules in eslint.config.js' }],
      }],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2023, sourceType: 'module' },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-console': 'error',
    },
  },
  // Imports go one way: main → supervisor → actors → machines; worker-side code never
  // loads XState, Koa or the store; http talks to the supervisor only through port types.
  layer('src/machines/**', ['actors', 'supervisor', 'http', 'store', 'workers']),
  layer('src/workers/**', ['machines', 'actors', 'supervisor', 'http', 'store']),
  layer('src/git/**', ['machines', 'actors', 'supervisor', 'http', 'store']),
  layer('src/compose/**', ['machines', 'actors', 'supervisor', 'http', 'store']),
  layer('src/secrets/**', ['machines', 'actors', 'supervisor', 'http', 'store']),
  layer('src/notify/**', ['machines', 'actors', 'supervisor', 'http']),
  layer('src/store/**', ['machines', 'actors', 'supervisor', 'http', 'workers']),
  layer('src/http/**', ['actors', 'workers', 'supervisor', 'store']),
  // The daemon composes every layer; only the CLI (and main) sit above it.
  layer('src/daemon/**', ['cli']),
  {
    files: ['src/cli/**', 'src/main.ts', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
);
