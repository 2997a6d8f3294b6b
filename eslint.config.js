// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

/**
 * Files under `files` may not import from the listed parts of src/: folder names (`git`) or top-level files
 * (`daemon.ts`). Relative paths only (packages such as isomorphic-git/http/node must not match).
 */
function layer(files, forbidden) {
  const group = forbidden.flatMap((d) =>
    ['../', '../../', '../../../'].map((up) => (d.endsWith('.ts') ? `${up}${d}` : `${up}${d}/*`)),
  );
  return {
    files: [files],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group, message: 'layer violation: imports go one way, see the layer rules in eslint.config.js' },
          ],
        },
      ],
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
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'no-console': 'error',
    },
  },
  // Imports go one way. Layers, bottom to top (a layer may import the ones below it, never above):
  //
  //   domain/ (types only) · lib/ · errors.ts · logger.ts   ← every layer; domain/ imports lib/ at most (errors.ts
  //                                                           imports domain/ types, so not the other way round)
  //   config/                                               ← schema + loading (imports domain, errors)
  //   git/ · compose/ · secrets/                            ← leaf effects: plain options in, TaskResult out
  //   workers/ (task contracts + Piscina tasks)             ← wraps git/compose/secrets
  //   machines/ (pure XState deploy machine)                ← config types only
  //   actors/ (effects for the machine)  · store/ · notify/ ← side by side, none imports the others
  //   supervisor/                                           ← actors + store types; never http/
  //   http/ (Koa, over ports.ts + domain types)             ← never supervisor/store/actors/workers code
  //   daemon/ · cli/ · main.ts                              ← wiring; nothing imports them
  //
  // git/, compose/ and secrets/ do not import config/ either: they take plain option objects (the actors translate
  // RepoConfig into task inputs), which keeps them usable from a worker thread without the config schema.
  layer('src/domain/**', [
    'errors.ts',
    'config',
    'git',
    'compose',
    'secrets',
    'workers',
    'machines',
    'actors',
    'store',
    'notify',
    'supervisor',
    'http',
    'cli',
    'logger.ts',
    'daemon',
    'main.ts',
  ]),
  layer('src/lib/**', [
    'config',
    'git',
    'compose',
    'secrets',
    'workers',
    'machines',
    'actors',
    'store',
    'notify',
    'supervisor',
    'http',
    'cli',
    'daemon',
    'main.ts',
  ]),
  layer('src/config/**', [
    'git',
    'compose',
    'secrets',
    'workers',
    'machines',
    'actors',
    'store',
    'notify',
    'supervisor',
    'http',
    'cli',
    'daemon',
    'main.ts',
  ]),
  ...['git', 'compose', 'secrets'].map((d) =>
    layer(`src/${d}/**`, [
      'config',
      'workers',
      'machines',
      'actors',
      'store',
      'notify',
      'supervisor',
      'http',
      'cli',
      'daemon',
      'main.ts',
    ]),
  ),
  layer('src/workers/**', [
    'config',
    'machines',
    'actors',
    'store',
    'notify',
    'supervisor',
    'http',
    'cli',
    'daemon',
    'main.ts',
  ]),
  layer('src/machines/**', [
    'git',
    'compose',
    'secrets',
    'workers',
    'actors',
    'store',
    'notify',
    'supervisor',
    'http',
    'cli',
    'daemon',
    'main.ts',
  ]),
  layer('src/actors/**', [
    'git',
    'compose',
    'secrets',
    'store',
    'notify',
    'supervisor',
    'http',
    'cli',
    'daemon',
    'main.ts',
  ]),
  layer('src/store/**', [
    'config',
    'git',
    'compose',
    'secrets',
    'workers',
    'machines',
    'actors',
    'notify',
    'supervisor',
    'http',
    'cli',
    'daemon',
    'main.ts',
  ]),
  layer('src/notify/**', [
    'git',
    'compose',
    'secrets',
    'workers',
    'machines',
    'actors',
    'store',
    'supervisor',
    'http',
    'cli',
    'daemon',
    'main.ts',
  ]),
  layer('src/supervisor/**', ['http', 'cli', 'daemon', 'main.ts']),
  layer('src/http/**', [
    'config',
    'git',
    'compose',
    'secrets',
    'workers',
    'machines',
    'actors',
    'store',
    'notify',
    'supervisor',
    'cli',
    'daemon',
    'main.ts',
  ]),
  // The daemon composes every layer; only the CLI (and main) sit above it.
  layer('src/daemon/**', ['cli', 'main.ts']),
  {
    files: ['src/cli/**', 'src/main.ts', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
);
