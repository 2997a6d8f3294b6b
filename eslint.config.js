// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2023, sourceType: 'module' },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-console': 'error',
      // Imports go one way (STYLE.md convention 1): main → supervisor → actors → machines; workers never
      // load XState/Koa; http only talks to the supervisor through port types.
      'import-x/no-restricted-paths': ['error', {
        zones: [
          { target: './src/machines', from: ['./src/actors', './src/supervisor', './src/http', './src/store', './src/workers'] },
          { target: './src/workers', from: ['./src/machines', './src/actors', './src/supervisor', './src/http', './src/store'] },
          { target: './src/secrets', from: ['./src/machines', './src/actors', './src/supervisor', './src/http', './src/store'] },
          { target: './src/notify', from: ['./src/machines', './src/actors', './src/supervisor', './src/http'] },
          { target: './src/http', from: ['./src/actors', './src/workers'] },
        ],
      }],
    },
  },
  {
    files: ['src/cli/**', 'src/main.ts', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
);
